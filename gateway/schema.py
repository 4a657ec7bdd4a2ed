"""schema.py: the config file's keys as frozen msgspec Structs.

Owns: every section and key, its type, its default and its ``msgspec.Meta`` constraints (key
names are shared with the Go gateway this project succeeds).
Must not: read files, substitute values, or check what one field's type cannot say (that is
config_check.py); nothing here runs at load time beyond msgspec's own conversion.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from gateway.units import ByteSize, Duration

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Format = Literal["json", "form", "query", "xml", "text", "json_stream"]
Markup = Literal["none", "html", "slack"]
Engine = Literal["mustache", "jq"]
Kind = Literal["http", "log"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["logfmt", "json"]

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class PoolConfig(Base, frozen=True):
    """Outbound connection pool of one destination (httpx.Limits)."""

    max_connections: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 16
    max_keepalive_connections: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 16
    keepalive_expiry: Duration = Duration(30.0)
    # "h11": our own pool (h11pool.py) for http:// URLs, httpcore for https://;
    # "httpcore": httpx's default transport for everything (the slower reference).
    transport: Literal["h11", "httpcore"] = "h11"


class AuthConfig(Base, frozen=True):
    """Inbound credentials: HTTP basic (``username`` + ``password``) and/or bearer tokens.

    Any one of them is accepted; several tokens let a token be rotated without downtime.
    """

    username: str = ""
    password: str = ""
    bearer_tokens: list[str] = []


class RateConfig(Base, frozen=True):
    """A token bucket: ``rate`` requests per second on average, bursts up to ``burst``."""

    rate: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # 0 = no limit
    burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20


class RateLimitConfig(Base, frozen=True):
    client: RateConfig = RateConfig()  # per client address, every guarded route
    destination: RateConfig = RateConfig()  # per destination, /webhook/<name>


class LockoutConfig(Base, frozen=True):
    """Brute-force protection: ``failures`` auth failures from one client address within
    ``window`` lock that address out for ``duration``. ``failures: 0`` turns it off."""

    failures: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 10
    window: Duration = Duration(60.0)
    duration: Duration = Duration(300.0)


class ServerTLSConfig(Base, frozen=True):
    cert_file: str
    key_file: str
    client_ca_file: str = ""  # set: clients must present a certificate signed by it (mTLS)


class ClientTLSConfig(Base, frozen=True):
    """Outbound TLS of one destination."""

    ca_file: str = ""  # trust this CA bundle instead of the system's
    cert_file: str = ""  # client certificate (mTLS); needs key_file
    key_file: str = ""
    insecure_skip_verify: bool = False  # never in production: logged as a warning


class LimitsConfig(Base, frozen=True):
    """What one request to the destination may hold (0 = no limit); limits.py enforces it by
    splitting the alerts over more requests, then truncating (docs/templates.md)."""

    max_body_bytes: ByteSize = ByteSize(0)
    max_text_chars: Annotated[int, msgspec.Meta(ge=0)] = 0  # longest string at text_paths
    max_items: Annotated[int, msgspec.Meta(ge=0)] = 0  # longest list at item_paths
    text_paths: list[str] = []  # e.g. "text", "blocks.*.text.text"; empty: every string
    item_paths: list[str] = []  # e.g. "blocks", "embeds"; empty: every list
    strategy: Literal["split", "truncate"] = "split"  # truncate: never split, only cut text


class RetryConfig(Base, frozen=True):
    """Retries of one part within its delivery (full jitter; see delivery.md)."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    initial_delay: Duration = Duration(0.5)
    max_delay: Duration = Duration(10.0)
    multiplier: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] = 2.0
    attempt_timeout: Duration = Duration(0.0)  # one attempt; 0 -> as long as the deadline allows


class BreakerConfig(Base, frozen=True):
    """Circuit breaker of one destination (breaker.py)."""

    enabled: bool = True
    failure_threshold: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 5  # consecutive
    failure_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0  # 0 = off
    window: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 20  # outcomes the ratio looks at
    open_duration: Duration = Duration(30.0)
    half_open_probes: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 1


class SuccessBodyConfig(Base, frozen=True):
    """What a 2xx body must look like to count as delivered (Teams answers 200 + error)."""

    contains: str = ""
    json_path: str = ""  # dotted path into a JSON body, e.g. "ok" or "result.status"
    equals: str | int | float | bool | None = None


class DefaultsConfig(Base, frozen=True):
    """Used by every destination that has no section of its own (replaced, not merged)."""

    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()


class DedupConfig(Base, frozen=True):
    window: Duration = Duration(600.0)
    max_entries: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = (
        10_000  # 0 = off; ~300-400 bytes each
    )


class SpoolConfig(Base, frozen=True):
    """Durable queue of destinations with ``delivery: async`` (spool.py)."""

    path: str = ""  # directory; "" -> $STATE_DIRECTORY (systemd) or ./state
    max_entries: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000
    max_age: Duration = Duration(86400.0)
    workers: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 4  # per destination


class DestinationConfig(Base, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=128)]
    kind: Kind = "http"
    url: str = ""  # required for kind=http; http:// or https:// only
    method: Method = "POST"
    format: Format = "json"
    headers: dict[str, str] = {}
    template: str = ""  # Mustache source; empty -> the built-in default for the format
    enabled: bool = True
    split_alerts: bool = False
    batch_size: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0  # 0 or 1 -> one alert a part
    parallel_requests: Annotated[int, msgspec.Meta(ge=0, le=1_000)] = 0  # 0 or 1 -> sequential
    timeout: Duration = Duration(10.0)  # deadline of the whole delivery of one webhook
    pool: PoolConfig = PoolConfig()
    preset: str = ""  # gateway/presets/<name>.yaml supplies every key not given here
    params: dict[str, str | dict[str, str]] = {}  # the template's {{params.*}}
    markup: Markup = "none"  # values escaped for html (Telegram) or slack (mrkdwn) first
    limits: LimitsConfig = LimitsConfig()
    engine: Engine = "mustache"  # jq: the body is the output of `transform` (extra [jq])
    transform: str = ""  # the jq program, for engine: jq
    delivery: Literal["sync", "async"] = "sync"
    retry: RetryConfig | None = None  # None -> defaults.retry
    breaker: BreakerConfig | None = None  # None -> defaults.breaker
    success_body: SuccessBodyConfig | None = None
    auth: AuthConfig | None = None  # replaces server.auth for this destination's webhook
    rate_limit: RateConfig | None = None  # replaces server.rate_limit.destination
    tls: ClientTLSConfig = ClientTLSConfig()
    proxy_url: str = ""  # http(s):// proxy for this destination's requests
    http2: bool = False  # try HTTP/2 (ALPN) on https:// URLs


class ServerConfig(Base, frozen=True):
    address: str = ":8080"  # host:port; empty host = all interfaces
    read_timeout: Duration = Duration(30.0)
    write_timeout: Duration = Duration(30.0)
    max_body_bytes: ByteSize = ByteSize(10 * 1024 * 1024)
    drain_timeout: Duration = Duration(10.0)  # SIGTERM: how long in-flight requests may finish
    # Worker processes sharing the listening socket (supervisor.py); 1 = serve in-process.
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    auth: AuthConfig | None = None  # webhook credentials (Go gateway key)
    admin: AuthConfig | None = None  # /api/v1/*, /-/reload, /debug/*; unset = disabled
    metrics_auth: bool = False  # true: /metrics needs the admin credentials
    trusted_proxies: list[str] = []  # CIDRs whose X-Forwarded-For is believed
    lockout: LockoutConfig = LockoutConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    tls: ServerTLSConfig | None = None
    max_concurrent_requests: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024
    max_header_bytes: ByteSize = ByteSize(16 * 1024)
    keep_alive_timeout: Duration = Duration(5.0)


class LoggingConfig(Base, frozen=True):
    level: LogLevel = "info"
    format: LogFormat = "logfmt"


class TemplateCacheConfig(Base, frozen=True):
    size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256
    ttl: Duration = Duration(3600.0)


class DebugConfig(Base, frozen=True):
    profiling: bool = False  # /debug/profile, /debug/memory, /debug/tasks (debug.py)


class Config(Base, frozen=True):
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()
    template_cache: TemplateCacheConfig = TemplateCacheConfig()
    destinations: list[DestinationConfig] = []
    defaults: DefaultsConfig = DefaultsConfig()
    dedup: DedupConfig = DedupConfig()
    spool: SpoolConfig = SpoolConfig()
    debug: DebugConfig = DebugConfig()
