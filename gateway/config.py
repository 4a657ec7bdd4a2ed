"""config.py: the YAML file as frozen msgspec Structs — load, substitute, validate.

Owns: the schema (key names shared with the Go gateway this project succeeds), durations
("30s", "1m30s", "250ms") and sizes ("10MiB"), ``${env:NAME}`` / ``${env:NAME:-default}`` /
``${file:/path}`` / ``${cred:NAME}`` substitution inside string values (after YAML parsing,
so Mustache and ``$`` inside templates are untouched), collecting *every* problem with its
key path, and the set of substituted secrets that other modules mask.
Must not: compile templates, open clients or touch the network (that is runtime.py).

Public API: ``load_file``, ``load_text`` (both return ``Loaded`` or raise ``ConfigError``),
``parse_duration``, ``parse_size`` and the Structs below.

Why this module is longer than ~400 lines: the schema, the substitution mini-language and
the validator that turns msgspec's errors into "key.path: reason" lines are one job — the
path of a problem is only known while walking the parsed file — and splitting them would
spread that walk over three modules.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import math
import os
import re
import typing
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import msgspec
import yaml

from gateway import presets
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

# ---------------------------------------------------------------------------------------
# Scalar types with their own spelling in YAML.


class Duration(float):
    """Seconds. Written in YAML as "30s", "1m30s", "250ms", "2h" or a plain number of seconds."""


class ByteSize(int):
    """Bytes. Written in YAML as "10MiB", "512KiB", "1MB" or a plain integer."""


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


class Loaded(msgspec.Struct, frozen=True):
    """A validated config file and what other modules need to know about it."""

    config: Config
    secrets: frozenset[str]  # every value substituted from env/file/cred: mask it in output
    source: str  # the file path, or "<text>"
    sha256: str  # hex digest of the raw file bytes (tells a reload whether anything changed)


# ---------------------------------------------------------------------------------------
# Durations and sizes.
#
# Durations use Go's time.ParseDuration spelling (the Go gateway's configs must keep working)
# without its sign: a negative timeout or interval is always a mistake here.

DURATION_HINT: Final = "use e.g. 30s, 1m30s, 250ms"
SIZE_HINT: Final = "use e.g. 10MiB, 512KiB, 1MB or a number of bytes"

_DURATION_UNIT_S: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign, as Go accepts
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART: Final = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_PLAIN_NUMBER: Final = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")

_SIZE_UNIT_B: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)")


def parse_duration(text: str | int | float) -> float:
    """Seconds from "30s", "1m30s", "250ms", "2h", "1h2m3.5s", "500us" or a plain number.

    Raises ValueError (naming the value) for anything else, including negative durations.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"invalid duration {_show(text)} ({DURATION_HINT})")
    if isinstance(text, str):
        spelled = text.strip()
        if spelled.startswith("-"):
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        if _PLAIN_NUMBER.fullmatch(spelled):
            seconds = float(spelled)
        else:
            seconds, pos = 0.0, 0
            while pos < len(spelled):
                part = _DURATION_PART.match(spelled, pos)
                if part is None:
                    break
                seconds += float(part[1]) * _DURATION_UNIT_S[part[2]]
                pos = part.end()
            if not spelled or pos < len(spelled):
                raise ValueError(f"invalid duration {text!r} ({DURATION_HINT})")
    else:
        seconds = float(text)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {_show(text)} ({DURATION_HINT})")
    if seconds < 0:
        raise ValueError(f"invalid duration {_show(text)}: must not be negative")
    return seconds


def parse_size(text: str | int) -> int:
    """Bytes from "10MiB", "512KiB", "1GiB", "1MB", "1kB", "100B" or a plain integer.

    KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB powers of 1000 (units are not case
    sensitive). Raises ValueError for anything else, negative sizes and fractional bytes.
    """
    value: object = text
    if isinstance(value, bool):
        raise ValueError(f"invalid size {_show(value)} ({SIZE_HINT})")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float) and value.is_integer():
        size = int(value)
    elif isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"invalid size {value!r}: must not be negative")
        match = _SIZE.fullmatch(value.strip())
        if match is None or match[2].lower() not in _SIZE_UNIT_B:
            raise ValueError(f"invalid size {value!r} ({SIZE_HINT})")
        exact = Decimal(match[1]) * _SIZE_UNIT_B[match[2].lower()]
        if exact != exact.to_integral_value():
            raise ValueError(f"invalid size {value!r}: not a whole number of bytes")
        size = int(exact)
    else:
        raise ValueError(f"invalid size {_show(value)} ({SIZE_HINT})")
    if size < 0:
        raise ValueError(f"invalid size {size}: must not be negative")
    return size


def _dec_hook(tp: type, obj: Any) -> Any:
    # msgspec treats subclasses of float/int as custom types and always asks this hook, so
    # Duration/ByteSize accept both their spelled form and plain numbers.
    if tp is Duration:
        return Duration(parse_duration(obj))
    if tp is ByteSize:
        return ByteSize(parse_size(obj))
    raise NotImplementedError(f"no decoder for {tp!r}")


# ---------------------------------------------------------------------------------------
# Problems: every one is "key.path: reason"; values that came from a secret never appear.

MIN_SECRET_CHARS: Final = 4  # shorter substituted values are not masked (they'd garble text)
MAX_VALUES: Final = 100_000  # YAML aliases can expand a small file enormously
MAX_SUBSTITUTED_FILE_BYTES: Final = 1024 * 1024  # ${file:...} / ${cred:...} read at most this
MASK: Final = "***"


class _TooManyValues(Exception):
    pass


@dataclasses.dataclass
class _Problems:
    """What one load found: problems, secrets, and the key paths that have a problem."""

    items: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason)
    secrets: set[str] = dataclasses.field(default_factory=set)
    bad_paths: set[str] = dataclasses.field(default_factory=set)
    file_order: dict[str, int] = dataclasses.field(default_factory=dict)  # path -> position

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))
        self.bad_paths.add(path)

    def usable(self, *paths: str) -> bool:
        """True if no problem was reported at or above any of ``paths``.

        A semantic check whose inputs already have a problem would only repeat it (or judge
        the default that stands in for the bad value), so it is skipped.
        """
        return not any(
            path == bad or path.startswith((bad + ".", bad + "["))
            for path in paths
            for bad in self.bad_paths
        )

    def clean(self, path: str) -> bool:
        """True if no problem was reported at, above or below ``path``."""
        return self.usable(path) and not any(
            bad.startswith((path + ".", path + "[")) for bad in self.bad_paths
        )

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def describe(self, value: object) -> str:
        """A short, secret-free rendering of a YAML value for a message."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            shown = self.mask(value)  # mask before truncating, or part of a secret could show
            return repr(shown if len(shown) <= 40 else shown[:37] + "...")
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        return type(value).__name__

    def raise_if_any(self, source: str) -> None:
        if self.items:
            # In the order of the file, whichever pass found them.
            ordered = sorted(self.items, key=lambda item: self._position(item[0]))
            lines = [f"{path}: {reason}" if path else reason for path, reason in ordered]
            raise ConfigError([self.mask(line) for line in lines], source=source)

    def _position(self, path: str) -> int:
        # A key that is missing from the file sorts with its nearest parent that is there.
        while path and path not in self.file_order:
            parent = _PARENT.sub("", path)
            path = parent if parent != path else ""
        return self.file_order.get(path, -1)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float) else type(value).__name__


_PARENT: Final = re.compile(r"(\.[^.\[]*|\[[0-9]+\])$")  # the last step of a key path


def _key_path(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# ---------------------------------------------------------------------------------------
# Substitution.
#
# It runs on the parsed tree, string values only, never on keys and never as a textual pass
# over the file: a substituted value can then contain YAML syntax, quotes or newlines without
# changing the structure, and a template's own `$` and `{{ }}` cannot be mistaken for one.
# Only `${env:`, `${file:` and `${cred:` start a substitution; `$${` writes a literal `${`.
# `${word:` with any other lower-case word is reported (it is almost surely a typo of one of
# them); every other `$` -- `$5`, `${HOME}`, `{{ x }}` -- is left as it is. Substituted values
# are not substituted again.

_REF_START: Final = re.compile(r"\$\{([a-z]+):")
_SCHEMES: Final = ("env", "file", "cred")
_SUBSTITUTION_HELP: Final = (
    "use ${env:NAME}, ${env:NAME:-default}, ${file:/path} or ${cred:NAME}; "
    "write $${ for a literal ${"
)


NOT_RESOLVED: Final = "not resolved:"
NOT_RESOLVED_WHY: Final = "(offline check: only the gateway's own load reads env/files/credentials)"


class _SubstitutionError(Exception):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class _Ref:
    scheme: str  # env, file or cred
    parts: tuple[str | _Ref, ...]  # what stands between "scheme:" and "}"


def _parse(text: str, pos: int, *, nested: bool) -> tuple[list[str | _Ref], int]:
    """Split ``text`` from ``pos`` into literal strings and references; return the end."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "$":
            if text.startswith("$${", pos):
                literal.append("${")
                pos += 3
                continue
            start = _REF_START.match(text, pos)
            if start is not None:
                if start[1] not in _SCHEMES:
                    raise _SubstitutionError(
                        f"unknown substitution '${{{start[1]}:...}}'; {_SUBSTITUTION_HELP}"
                    )
                if literal:
                    parts.append("".join(literal))
                    literal = []
                inner, pos = _parse(text, start.end(), nested=True)
                parts.append(_Ref(start[1], tuple(inner)))
                continue
        elif char == "}" and nested:
            if literal:
                parts.append("".join(literal))
            return parts, pos + 1
        literal.append(char)
        pos += 1
    if nested:
        raise _SubstitutionError(
            f"unterminated '${{' (a substitution needs a closing '}}'); {_SUBSTITUTION_HELP}"
        )
    if literal:
        parts.append("".join(literal))
    return parts, pos


def _split_default(
    parts: tuple[str | _Ref, ...],
) -> tuple[tuple[str | _Ref, ...], tuple[str | _Ref, ...] | None]:
    """``NAME:-default`` -> (NAME parts, default parts); the default may hold references."""
    for index, part in enumerate(parts):
        if isinstance(part, str) and ":-" in part:
            name, default = part.split(":-", 1)
            head = (*parts[:index], name) if name else parts[:index]
            tail = (default, *parts[index + 1 :]) if default else parts[index + 1 :]
            return head, tail
    return parts, None


@dataclasses.dataclass
class _Resolver:
    environ: Mapping[str, str]
    base_dir: Path | None  # relative ${file:...} paths are relative to the config file
    problems: _Problems
    offline: bool = False  # resolve nothing: the text came from outside (POST /api/v1/...)

    def render(self, parts: typing.Iterable[str | _Ref], *, secret: bool) -> str:
        """Join ``parts``; ``secret`` says whether the result ends up in a config value."""
        return "".join(p if isinstance(p, str) else self.resolve(p, secret=secret) for p in parts)

    def resolve(self, ref: _Ref, *, secret: bool) -> str:
        if self.offline:
            # A posted config must not learn the host's environment, files or credentials.
            raise _SubstitutionError(f"{NOT_RESOLVED} ${{{ref.scheme}:...}} {NOT_RESOLVED_WHY}")
        if ref.scheme == "env":
            name_parts, default = _split_default(ref.parts)
            name = self.render(name_parts, secret=False)
            if not name:
                raise _SubstitutionError("${env:...} needs a variable name")
            value = self.environ.get(name)
            if default is not None and not value:
                # The default is written in the file, so it is no secret; but a reference
                # inside it (`${env:A:-${file:/x}}`) still is.
                return self.render(default, secret=secret)
            if value is None:
                raise _SubstitutionError(
                    f"environment variable {name} is not set (${{env:{name}}})"
                )
        elif ref.scheme == "file":
            path = self.render(ref.parts, secret=False)
            if not path:
                raise _SubstitutionError("${file:...} needs a path")
            value = self._read(path, f"file {path}")
        else:
            name = self.render(ref.parts, secret=False)
            directory = self.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise _SubstitutionError(
                    f"${{cred:{name}}} needs $CREDENTIALS_DIRECTORY, which is not set "
                    "(systemd sets it for units with LoadCredential=)"
                )
            if not name or "/" in name or name in (".", ".."):
                raise _SubstitutionError(f"invalid credential name {name!r} in ${{cred:...}}")
            value = self._read(os.path.join(directory, name), f"credential {name}")
        if secret and len(value) >= MIN_SECRET_CHARS:
            self.problems.secrets.add(value)
        return value

    def _read(self, path: str, what: str) -> str:
        # The message names the path, never the content.
        full = Path(path)
        if self.base_dir is not None and not full.is_absolute():
            full = self.base_dir / full
        try:
            with full.open("rb") as file:
                data = file.read(MAX_SUBSTITUTED_FILE_BYTES + 1)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise _SubstitutionError(f"cannot read {what}: {reason}") from None
        if len(data) > MAX_SUBSTITUTED_FILE_BYTES:
            raise _SubstitutionError(
                f"cannot use {what}: larger than {MAX_SUBSTITUTED_FILE_BYTES} bytes"
            )
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _SubstitutionError(f"cannot use {what}: not UTF-8 text") from None
        # One trailing newline is how editors and `echo` end a file; it is never meant.
        if value.endswith("\r\n"):
            return value[:-2]
        return value.removesuffix("\n")


class _Unresolved:
    """Stands for a value whose substitution failed (already reported): checks skip it."""


_UNRESOLVED: Final = _Unresolved()


def _substitute(node: Any, path: str, resolver: _Resolver) -> Any:
    problems = resolver.problems
    problems.file_order.setdefault(path, len(problems.file_order))
    if len(problems.file_order) > MAX_VALUES:
        raise _TooManyValues
    if isinstance(node, dict):
        return {
            key: _substitute(value, _key_path(path, key), resolver) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_substitute(item, f"{path}[{i}]", resolver) for i, item in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        try:
            parts, _ = _parse(node, 0, nested=False)
            return resolver.render(parts, secret=True)
        except _SubstitutionError as exc:
            problems.add(path, str(exc))
            return _UNRESOLVED
    return node


# ---------------------------------------------------------------------------------------
# Schema validation.
#
# msgspec.convert stops at the first error, and its paths read `$.pool.max_connections`. To
# report every problem under its YAML key path, the Structs are walked here field by field:
# each leaf is converted on its own (so msgspec still applies the types and Meta constraints)
# and the Structs are built from the converted leaves. A bad leaf is left out, so its Struct
# holds the default there and the semantic checks can still look at the rest (they skip
# what `_Problems.usable` says is bad); such a Config is never returned. Lax mode lets
# numbers and booleans arrive as strings, which is what `${env:...}` produces.


class _Invalid:
    """The value at this path has a reported problem and nothing can stand in for it."""


_INVALID: Final = _Invalid()

_EXPECTED_GOT: Final = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_EXPECTED: Final = re.compile(r"Expected `([^`]+)`(.*)")
_AT_PATH: Final = re.compile(r" - at `\$[^`]*`$")
_TYPE_WORDS: Final = {"object": "a mapping", "array": "a list", "null": "null"}


def _reason(tp: Any, value: object, message: str, problems: _Problems) -> str:
    """Rewrite one msgspec error into 'expected ..., got ...' text."""
    message = _AT_PATH.sub("", message)
    got = problems.describe(value)
    if typing.get_origin(tp) is Literal:
        choices = ", ".join(str(choice) for choice in typing.get_args(tp))
        return f"expected one of {choices}, got {got}"
    if match := _EXPECTED_GOT.fullmatch(message):
        quote = isinstance(value, int | float | bool) and match[1] == "str"
        return f"expected {_TYPE_WORDS.get(match[1], match[1])}, got {got}" + (
            " (quote it in YAML)" if quote else ""
        )
    if match := _EXPECTED.fullmatch(message):
        return f"expected {match[1]}{match[2].replace('`', '')}, got {got}"
    return message[:1].lower() + message[1:]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _value(tp: Any, value: Any, path: str, problems: _Problems) -> Any:
    """``value`` converted to ``tp`` (bad parts left out, and reported), or _INVALID."""
    if _is_struct(tp):
        return _struct(tp, value, path, problems)
    optional = _optional_struct(tp)
    if optional is not None:  # `retry: RetryConfig | None`: walk the section for key paths
        return None if value is None else _struct(optional, value, path, problems)
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {problems.describe(value)}")
            return _INVALID
        (item_tp,) = typing.get_args(tp)
        items = [
            _value(item_tp, item, f"{path}[{i}]", problems)
            for i, item in enumerate(value)
            if item is not _UNRESOLVED
        ]
        return [item for item in items if item is not _INVALID]
    if origin is dict:
        if not isinstance(value, dict):
            problems.add(path, f"expected a mapping, got {problems.describe(value)}")
            return _INVALID
        _, item_tp = typing.get_args(tp)
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(path, f"key {problems.describe(key)} must be a string (quote it)")
            elif item is not _UNRESOLVED:
                result = _value(item_tp, item, _key_path(path, key), problems)
                if result is not _INVALID:
                    converted[key] = result
        return converted
    try:
        return msgspec.convert(value, tp, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        problems.add(path, _reason(tp, value, str(exc), problems))
        return _INVALID


def _struct(cls: type[msgspec.Struct], raw: Any, path: str, problems: _Problems) -> Any:
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping, got {problems.describe(raw)}")
        return _INVALID
    fields = {field.encode_name: field for field in msgspec.structs.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.add(_key_path(path, key), f"unknown key{hint}")
    complete = True  # every required field has a value
    kwargs: dict[str, Any] = {}
    for key, field in fields.items():
        value = raw.get(key)
        if key not in raw or (value is None and _is_section(field.type)):
            # A section written with nothing under it (`pool:`) means its defaults.
            if field.required:
                problems.add(_key_path(path, key), "missing (required)")
                complete = False
            continue
        converted = (
            _INVALID
            if value is _UNRESOLVED
            else _value(field.type, value, _key_path(path, key), problems)
        )
        if converted is not _INVALID:
            kwargs[field.name] = converted
        elif field.required:
            complete = False
    return cls(**kwargs) if complete else _INVALID


def _optional_struct(tp: Any) -> Any:
    """S for ``S | None`` where S is a Struct, else None."""
    args = typing.get_args(tp)
    if len(args) == 2 and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return inner if _is_struct(inner) else None
    return None


def _is_section(tp: Any) -> bool:
    return _is_struct(tp) or typing.get_origin(tp) in (list, dict)


# ---------------------------------------------------------------------------------------
# Semantic checks: what one field's type cannot say.

_HTTP_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_BODYLESS_METHODS: Final = ("GET", "DELETE")


def _address_problem(address: str) -> str | None:
    """None if ``address`` is host:port, :port or [ipv6]:port; else the reason."""
    host, colon, port = address.rpartition(":")
    if not colon:
        return f"expected host:port or :port, got {address!r}"
    if host.startswith("["):
        if not host.endswith("]"):
            return f"expected [ipv6]:port, got {address!r}"
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"invalid IPv6 address {host!r}"
    elif ":" in host:
        return f"write an IPv6 address in brackets, e.g. [::1]:8080, got {address!r}"
    elif host and not _HOSTNAME.fullmatch(host):
        return f"invalid host {host!r}"
    if not _PORT.fullmatch(port) or int(port) > 65535:
        return f"port must be 0..65535, got {port!r}"
    return None


def _url_problem(url: str) -> str | None:
    """None if ``url`` is a usable http(s) URL; else a reason that never quotes the URL.

    URLs carry secrets (userinfo, tokens in the query, and e.g. Slack and Telegram put them
    in the path), so no part of one is repeated here.
    """
    if not url:
        return "missing (kind: http needs an http:// or https:// URL)"
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number 0..65535
    except ValueError:
        return "not a valid URL (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def _check_server(server: ServerConfig, problems: _Problems) -> None:
    if problems.usable("server.address"):
        reason = _address_problem(server.address)
        if reason:
            problems.add("server.address", reason)
    for name in ("read_timeout", "write_timeout", "drain_timeout"):
        if getattr(server, name) <= 0:
            problems.add(f"server.{name}", "must be more than 0s")
    if server.max_body_bytes < 1:
        problems.add("server.max_body_bytes", "must be at least 1 byte")
    for name, auth in (("auth", server.auth), ("admin", server.admin)):
        _check_auth(auth, f"server.{name}", problems)
    if server.metrics_auth and server.admin is None and problems.usable("server.admin"):
        problems.add("server.metrics_auth", "needs server.admin (its credentials guard /metrics)")
    for index, cidr in enumerate(server.trusted_proxies):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.add(f"server.trusted_proxies[{index}]", f"not an IP address or CIDR: {cidr!r}")
    if server.lockout.failures and (server.lockout.window <= 0 or server.lockout.duration <= 0):
        problems.add("server.lockout", "window and duration must be more than 0s")
    if server.max_header_bytes < 1024:
        problems.add("server.max_header_bytes", "must be at least 1KiB")


def _check_auth(auth: AuthConfig | None, path: str, problems: _Problems) -> None:
    if auth is None or not problems.usable(path):
        return
    if bool(auth.username) != bool(auth.password):
        problems.add(path, "username and password go together (HTTP basic auth)")
    elif not auth.username and not auth.bearer_tokens:
        problems.add(path, "set username and password, or bearer_tokens (or remove the section)")
    for index, token in enumerate(auth.bearer_tokens):
        if not token or any(char.isspace() for char in token):
            problems.add(f"{path}.bearer_tokens[{index}]", "must be non-empty without spaces")
    if ":" in auth.username:
        problems.add(f"{path}.username", "must not contain ':' (HTTP basic auth)")


def _check_destination(
    dest: DestinationConfig, raw: dict[str, Any], path: str, problems: _Problems
) -> DestinationConfig:
    """Report what is wrong with ``dest``; return it with derived defaults filled in."""
    usable = problems.usable
    if dest.kind == "http" and usable(f"{path}.kind"):
        if usable(f"{path}.url"):
            reason = _url_problem(dest.url)
            if reason:
                problems.add(f"{path}.url", reason)
        if (
            dest.method in _BODYLESS_METHODS
            and dest.format != "query"
            and usable(f"{path}.method", f"{path}.format")
        ):
            problems.add(f"{path}.method", f"{dest.method} sends no body; use format: query")
    if dest.timeout <= 0:
        problems.add(f"{path}.timeout", "must be more than 0s")
    for name, value in dest.headers.items():
        if not _HTTP_TOKEN.fullmatch(name):
            problems.add(f"{path}.headers", f"invalid header name {name!r}")
        if any(char in value for char in "\r\n\0"):
            problems.add(f"{path}.headers.{name}", "value must not contain CR, LF or NUL")

    if dest.retry is not None and dest.retry.max_delay < dest.retry.initial_delay:
        problems.add(f"{path}.retry.max_delay", "must not be less than retry.initial_delay")
    body = dest.success_body
    if body is not None and not body.contains and not body.json_path:
        problems.add(f"{path}.success_body", "set contains or json_path (or remove it)")
    _check_auth(dest.auth, f"{path}.auth", problems)
    if dest.proxy_url and usable(f"{path}.proxy_url"):
        reason = _url_problem(dest.proxy_url)
        if reason:
            problems.add(f"{path}.proxy_url", reason)
    tls = dest.tls
    if bool(tls.cert_file) != bool(tls.key_file) and usable(f"{path}.tls"):
        problems.add(f"{path}.tls", "cert_file and key_file go together (client certificate)")

    pool, pool_path = dest.pool, f"{path}.pool"
    if pool.max_keepalive_connections > pool.max_connections and usable(
        f"{pool_path}.max_connections", f"{pool_path}.max_keepalive_connections"
    ):
        problems.add(
            f"{pool_path}.max_keepalive_connections",
            f"{pool.max_keepalive_connections} is more than "
            f"pool.max_connections ({pool.max_connections})",
        )
    if dest.parallel_requests > pool.max_connections:
        if raw.get("pool") is None:
            # Without a pool section the pool follows parallel_requests, so that setting is
            # never silently capped by a default it did not mention.
            wider = msgspec.structs.replace(
                pool,
                max_connections=dest.parallel_requests,
                max_keepalive_connections=dest.parallel_requests,
            )
            return msgspec.structs.replace(dest, pool=wider)
        if usable(f"{path}.parallel_requests", f"{pool_path}.max_connections"):
            problems.add(
                f"{path}.parallel_requests",
                f"{dest.parallel_requests} is more than pool.max_connections "
                f"({pool.max_connections}); the extra requests would only wait for a "
                "connection - raise pool.max_connections or lower parallel_requests",
            )
    return dest


# Checks the loader cannot do itself (runtime.py compiles and test-renders templates): given a
# destination with no problem so far, return (key under the destination, reason) pairs.
DestinationCheck = typing.Callable[[DestinationConfig], list[tuple[str, str]]]


def _validate(
    tree: dict[Any, Any], problems: _Problems, check: DestinationCheck | None = None
) -> Config:
    """The Config for ``tree``; usable only if ``problems`` stayed empty."""
    # Destinations are validated one by one so that a bad one does not hide the others,
    # and the semantic checks run on every destination that has a name.
    others = {key: value for key, value in tree.items() if key != "destinations"}
    sections = _struct(Config, others, "", problems)
    assert isinstance(sections, Config)  # Config has no required field; tree is a mapping
    _check_server(sections.server, problems)
    retry = sections.defaults.retry
    if retry.max_delay < retry.initial_delay:
        problems.add("defaults.retry.max_delay", "must not be less than retry.initial_delay")

    raw_dests = tree.get("destinations")
    if raw_dests is None or raw_dests is _UNRESOLVED:
        raw_dests = []
    elif not isinstance(raw_dests, list):
        problems.add("destinations", f"expected a list, got {problems.describe(raw_dests)}")
        raw_dests = []
    dests: list[DestinationConfig] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_dests):
        path = f"destinations[{index}]"
        if raw is _UNRESOLVED:
            continue
        if isinstance(raw, dict):
            raw = presets.expand(raw, path, problems.add)
        dest = _value(DestinationConfig, raw, path, problems)
        if not isinstance(dest, DestinationConfig):
            continue  # not a mapping, or no usable name: already reported
        if dest.name in first_index:
            problems.add(f"{path}.name", f"duplicate of destinations[{first_index[dest.name]}]")
        else:
            first_index[dest.name] = index
        dest = _check_destination(dest, raw, path, problems)
        if check is not None and problems.clean(path):
            for key, reason in check(dest):
                problems.add(f"{path}.{key}", reason)
        dests.append(dest)
    return msgspec.structs.replace(sections, destinations=dests)


# ---------------------------------------------------------------------------------------
# YAML.


class _Loader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error.

    Plain YAML keeps the last of two equal keys silently, which hides the first setting.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        if exc.context:
            where = exc.context_mark
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            text += f" ({exc.context}{at})"
        return text
    return f"invalid YAML: {exc}"


# ---------------------------------------------------------------------------------------
# Entry points.


def load_text(
    text: str,
    *,
    source: str = "<text>",
    environ: Mapping[str, str] | None = None,
    check_destination: DestinationCheck | None = None,
    offline: bool = False,
) -> Loaded:
    """Parse, substitute and validate config ``text`` (YAML or JSON).

    ``environ`` defaults to os.environ. Relative ``${file:...}`` paths are relative to the
    working directory. ``offline`` resolves no substitution at all: each one is reported as
    a problem starting with ``NOT_RESOLVED`` (for text from untrusted callers). Raises
    ConfigError listing every problem found.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _load(
        text,
        digest=digest,
        source=source,
        environ=environ,
        base_dir=None,
        check=check_destination,
        offline=offline,
    )


def load_file(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_destination: DestinationCheck | None = None,
) -> Loaded:
    """Read, parse, substitute and validate the config file at ``path``.

    Relative ``${file:...}`` paths are relative to the file's directory. Raises ConfigError
    listing every problem found, each prefixed with ``path`` when printed.
    """
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"cannot read the file: {reason}"], source=source) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], source=source) from exc
    digest = hashlib.sha256(data).hexdigest()
    base_dir = Path(source).parent
    return _load(
        text,
        digest=digest,
        source=source,
        environ=environ,
        base_dir=base_dir,
        check=check_destination,
    )


def _load(
    text: str,
    *,
    digest: str,
    source: str,
    environ: Mapping[str, str] | None,
    base_dir: Path | None,
    check: DestinationCheck | None = None,
    offline: bool = False,
) -> Loaded:
    try:
        tree = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source=source) from exc
    problems = _Problems()
    if tree is None:
        problems.add("", "the file is empty; expected a mapping of settings ({} means defaults)")
    elif not isinstance(tree, dict):
        problems.add("", f"expected a mapping of settings, got {problems.describe(tree)}")
    problems.raise_if_any(source)

    resolver = _Resolver(
        os.environ if environ is None else environ, base_dir, problems, offline=offline
    )
    try:
        tree = _substitute(tree, "", resolver)
    except _TooManyValues:
        problems.add("", f"more than {MAX_VALUES} values (YAML aliases expanding?)")
        problems.raise_if_any(source)
    config = _validate(tree, problems, check)
    problems.raise_if_any(source)
    return Loaded(config=config, secrets=frozenset(problems.secrets), source=source, sha256=digest)
