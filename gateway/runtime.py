"""runtime.py: the compiled configuration — what one unit of work snapshots and uses.

``build()`` is the only way in: it turns a loaded config into destinations with checked
templates, merged headers and their own outbound ``httpx.AsyncClient`` and limiter. It either
succeeds completely or raises ConfigError listing every problem, so a reload can keep the old
runtime on any error. A runtime counts the requests using it, so that after a reload the old
runtime's clients are closed only once its in-flight work has drained.
Must not: parse YAML (config.py), decide how alerts are split (dispatch.py) or build an
outbound client itself (clients.py does, from the destination's pool and TLS settings).
"""

from __future__ import annotations

import contextlib
import functools
import random
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING

import httpx
import trio

from . import USER_AGENT, alertmanager, templates
from . import config as config_mod
from .clients import client_key, error_reason, make_client, tls_problems
from .delivery import RetryPolicy, SuccessCheck
from .errors import ConfigError, TemplateError, UnknownDestination
from .jq_engine import JqProgram
from .targets import Targets

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Config, DefaultsConfig, DestinationConfig, Loaded

# httpx's own timeouts sit just under the trio deadline, so an attempt normally ends with a
# clean httpx timeout instead of a cancellation inside httpcore (see httpcore issue #1093).
HTTPX_TIMEOUT_FRACTION = 0.95
_CONTENT_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "xml": "application/xml",
    "text": "text/plain; charset=utf-8",
    "json_stream": "application/json",
}


@functools.cache
def builtin_samples() -> dict[str, alertmanager.Payload]:
    """Sample notifications shipped with the package, used to check templates at load."""
    folder = resources.files("gateway") / "samples"
    samples = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            samples[entry.name] = alertmanager.decode(entry.read_bytes())
    return samples


class Destination:
    """One configured destination, ready to render and send."""

    def __init__(
        self,
        cfg: DestinationConfig,
        *,
        client: httpx.AsyncClient | None,
        defaults: DefaultsConfig | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.client = client
        # What `client` was built from, certificate files' stamps as they were then; a
        # reload compares it with the new config's (hand_over).
        self.client_key: tuple[object, ...] | None = None
        self.template = cfg.template or templates.DEFAULT_TEMPLATES[cfg.format]
        self.where = f"destination {cfg.name}: template"
        # Configured headers win over the defaults (case-insensitively).
        headers = {"User-Agent": USER_AGENT}
        if cfg.format in _CONTENT_TYPES and cfg.method not in ("GET", "DELETE"):
            headers["Content-Type"] = _CONTENT_TYPES[cfg.format]
        configured = {k.lower() for k in cfg.headers}
        self.headers = {k: v for k, v in headers.items() if k.lower() not in configured}
        self.headers.update(cfg.headers)
        # Bounds this destination's concurrent requests across all webhooks to the pool size,
        # so no request ever queues inside httpcore's pool (where cancellation is unsafe).
        self.pool_limiter = trio.CapacityLimiter(cfg.pool.max_connections)
        # Templated url/headers; template_problems has reported any compile problem already.
        self.targets = Targets(cfg.url, cfg.headers)
        self.jq: JqProgram | None = None
        # A program that does not compile: template_problems reports it and build() refuses
        # the runtime.
        if cfg.engine == "jq":
            with contextlib.suppress(TemplateError):
                self.jq = JqProgram(cfg.transform, cfg.format)
        # Delivery policy, resolved once here so the hot path allocates nothing per request.
        if defaults is None:
            defaults = config_mod.DefaultsConfig()
        self.retry = cfg.retry if cfg.retry is not None else defaults.retry
        self.breaker = cfg.breaker if cfg.breaker is not None else defaults.breaker
        self.policy = RetryPolicy.from_config(self.retry)
        self.check = SuccessCheck(cfg.success_body) if cfg.success_body is not None else None
        # httpx's timeout: one attempt's, or just under the whole deadline.
        self.client_timeout_s = float(cfg.timeout) * HTTPX_TIMEOUT_FRACTION
        if 0 < self.policy.attempt_timeout_s < self.client_timeout_s:
            self.client_timeout_s = self.policy.attempt_timeout_s
        self.rand = rand

    @property
    def parallel(self) -> int:
        return max(1, self.cfg.parallel_requests)


def template_problems(
    cfg: DestinationConfig, cache: templates.TemplateCache
) -> list[tuple[str, str]]:
    """Compile the destination's body, URL and header templates (or its jq program), then
    plan its requests for every built-in sample exactly as a webhook would — split as
    configured, then re-split or truncated to its limits: every request must encode as a
    valid body for the format and fit the limits. Returns (key, reason) pairs for
    config.load_file's ``check_destination`` hook, naming the sample and the part."""
    from .dispatch import plan_parts, plan_requests  # dispatch imports runtime's types

    problems: list[tuple[str, str]] = []
    if cfg.engine == "jq":
        if not cfg.transform.strip():
            return [("transform", "missing (engine: jq needs a jq program)")]
        try:
            JqProgram(cfg.transform, cfg.format)
        except TemplateError as exc:
            return [("transform", str(exc))]
    elif cfg.transform:
        problems.append(("transform", "only used with engine: jq"))
    source = cfg.template or templates.DEFAULT_TEMPLATES[cfg.format]
    try:
        tokens = cache.get(source, where="template")
    except TemplateError as exc:
        problems.append(("template", str(exc).removeprefix("template: ")))
    problems.extend(Targets(cfg.url, cfg.headers).problems)
    if problems:
        return problems
    dest = Destination(cfg, client=None)
    key = "transform" if cfg.engine == "jq" else "template"
    for sample_name, payload in builtin_samples().items():
        try:
            planned = plan_requests(dest, tokens, payload)
        except TemplateError as exc:
            reason = str(exc).removeprefix(f"destination {cfg.name}: ")
            return [(key, f"destination {cfg.name}, sample {sample_name}: {reason}")]
        sent = [a.fingerprint for part, _ in planned.parts for a in part]
        expected = [a.fingerprint for part in plan_parts(payload.alerts, cfg) for a in part]
        assert sent == expected, "limits.plan must send every alert exactly once, in order"
    return []


def new_cache(cfg: Config) -> templates.TemplateCache:
    return templates.TemplateCache(
        max_size=cfg.template_cache.size, ttl_s=float(cfg.template_cache.ttl)
    )


def load(
    path: str,
    *,
    cache: templates.TemplateCache | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clients: bool = True,
) -> Runtime:
    """Load the file, check every destination's template while loading (so that one
    ConfigError lists config and template problems together), and build the runtime."""
    # Template problems are found with a scratch cache: the loaded file may set other
    # cache limits than the running one.
    scratch = cache or templates.TemplateCache(max_size=1024, ttl_s=3600.0)
    loaded = config_mod.load_file(path, check_destination=lambda d: template_problems(d, scratch))
    return build(loaded, cache=cache, transport=transport, clients=clients, checked=True)


class Runtime:
    def __init__(
        self,
        loaded: Loaded,
        destinations: dict[str, Destination],
        cache: templates.TemplateCache,
    ) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.secrets = loaded.secrets
        self.destinations = destinations
        self.templates = cache
        self._active = 0
        self._retired = False
        self._drained = trio.Event()
        self._handed_over: set[int] = set()  # id() of clients a newer runtime now owns
        self.warnings: list[str] = []  # for the log: e.g. TLS verification turned off
        self.closed = trio.Event()
        # Set when this runtime shares clients with an older one (an Event, not the runtime:
        # holding the runtime would chain every old config in memory).
        self._predecessor_closed: trio.Event | None = None

    def destination(self, name: str) -> Destination:
        dest = self.destinations.get(name)
        if dest is None or not dest.cfg.enabled:
            raise UnknownDestination(f"destination {name[:128]!r}: not configured or disabled")
        return dest

    @contextmanager
    def use(self) -> Iterator[Runtime]:
        """Mark one unit of work as using this runtime until it finishes."""
        self._active += 1
        try:
            yield self
        finally:
            self._active -= 1
            if self._retired and self._active == 0:
                self._drained.set()

    @property
    def active(self) -> int:
        return self._active

    async def retire(self) -> None:
        """Wait for in-flight work that snapshotted this runtime, then close its clients.

        Clients this runtime took over from its predecessor may still carry that one's
        requests (two reloads in quick succession), so it also waits for the predecessor
        to be closed first.
        """
        self._retired = True
        if self._active:
            await self._drained.wait()
        if self._predecessor_closed is not None:
            await self._predecessor_closed.wait()
        await self.aclose()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            for dest in self.destinations.values():
                if dest.client is not None and id(dest.client) not in self._handed_over:
                    await dest.client.aclose()
        self.closed.set()

    def hand_over(self, new: Destination) -> Destination | None:
        """The running destination of ``new``'s name if its client can serve ``new``
        unchanged; its client (and pool limiter, which bounds that client's pool) then
        belong to the caller, and ``aclose`` leaves them open."""
        dest = self.destinations.get(new.name)
        if (
            dest is None
            or dest.client is None
            or dest.client_key != client_key(new.cfg)
            or dest.client_timeout_s != new.client_timeout_s  # also follows defaults.retry
        ):
            return None
        self._handed_over.add(id(dest.client))
        return dest


def build(
    loaded: Loaded,
    *,
    cache: templates.TemplateCache | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clients: bool = True,
    checked: bool = False,
    previous: Runtime | None = None,
) -> Runtime:
    """Compile every template and check it against the samples (unless ``checked``: the
    loader already did, through template_problems); then create clients, reusing
    ``previous``'s where nothing they are built from changed.
    Raises ConfigError with every problem found; creates no client unless all is well."""
    cfg = loaded.config
    if cache is None:
        cache = new_cache(cfg)
    problems: list[str] = []
    destinations: dict[str, Destination] = {}
    for index, dcfg in enumerate(cfg.destinations):
        if not checked:
            problems.extend(
                f"destinations[{index}].{key}: {reason}"
                for key, reason in template_problems(dcfg, cache)
            )
        destinations[dcfg.name] = Destination(dcfg, client=None, defaults=cfg.defaults)
    problems.extend(tls_problems(cfg))
    if problems:
        raise ConfigError(problems, source=loaded.source)
    warnings = [
        f"destination {d.name}: tls.insecure_skip_verify is on; its server's certificate "
        "is NOT checked"
        for d in destinations.values()
        if d.cfg.tls.insecure_skip_verify and d.cfg.enabled
    ]
    shared = False
    if clients:
        shared = _open_clients(destinations, transport, previous, loaded.source)
    rt = Runtime(loaded, destinations, cache)
    rt.warnings = warnings
    if shared and previous is not None:
        rt._predecessor_closed = previous.closed
    return rt


def _open_clients(
    destinations: dict[str, Destination],
    transport: httpx.AsyncBaseTransport | None,
    previous: Runtime | None,
    source: str,
) -> bool:
    """Give every enabled http destination a client: the previous runtime's where nothing
    it is built from changed, else a new one. All or nothing: on a problem, the clients
    made here are dropped unopened (they hold no connection yet) and ConfigError is raised.
    Returns whether any client was taken over from ``previous``."""
    problems: list[str] = []
    reused: list[tuple[Destination, Destination]] = []
    for index, dest in enumerate(destinations.values()):
        if dest.cfg.kind != "http" or not dest.cfg.enabled:
            continue
        running = previous.hand_over(dest) if previous is not None else None
        if running is not None:
            reused.append((dest, running))
            continue
        try:
            dest.client_key = client_key(dest.cfg)  # before reading the files
            dest.client = make_client(dest.cfg, transport, dest.client_timeout_s)
        except (OSError, ssl.SSLError) as exc:  # a file changed since tls_problems read it
            problems.append(
                f"destinations[{index}].tls: cannot load a certificate: {error_reason(exc)}"
            )
    if problems:
        if previous is not None:
            previous._handed_over.clear()
        raise ConfigError(problems, source=source)
    for dest, running in reused:
        dest.client, dest.pool_limiter = running.client, running.pool_limiter
        dest.client_key = running.client_key
    return bool(reused)
