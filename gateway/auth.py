"""auth.py: who may call what — inbound credentials, brute-force lockout, rate and
concurrency limits — decided by PATH PREFIX in one ``before_request`` hook.

    /health /ready /-/healthy /-/ready      open
    /metrics                                open; admin credentials if server.metrics_auth
    /api/...  /-/reload  /debug/...          admin credentials (server.admin); without
                                             server.admin these answer 403 (disabled)
    /webhook/<name>                          the destination's ``auth``, else server.auth
                                             (none configured: open)

Routes added later under an admin prefix are covered without touching this module. The
order for a guarded request: lockout (a locked-out address gets no credential check at
all; admin and webhook failures lock out separately), per-client rate, concurrency,
credentials, then the per-destination rate (after auth, so strangers cannot spend a
destination's budget). Webhooks that cannot be served now answer 503 + Retry-After
(Alertmanager drops 4xx but retries 5xx); the admin API and /metrics answer 429.
Must not: know about payloads, templates or delivery; hold secrets in anything it logs.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import trio
from quart import Response, g, request

from .metrics import UNKNOWN_DESTINATION

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from .config import AuthConfig, RateConfig, ServerConfig
    from .web import AppState

ADMIN_PREFIXES = ("/api/", "/-/reload", "/debug/")
OPEN_PATHS = frozenset({"/health", "/-/healthy", "/ready", "/-/ready"})
WEBHOOK_PREFIX = "/webhook/"
REALM = "alertmanager-gateway"
MAX_TRACKED_ADDRESSES = 10_000  # per table; bounds memory under a spray of source addresses
BUSY_RETRY_AFTER_S = 1.0
_encode = msgspec.json.Encoder().encode


def _answer(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    body = _encode({"status": "error", "error": text})
    return Response(body, status=status, headers=headers, content_type="application/json")


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PREFIXES) or path == "/-/reload"


# ---------------------------------------------------------------------------------------
# Credentials.


def check_credentials(auth: AuthConfig, header: str) -> bool:
    """True if the Authorization ``header`` carries one of ``auth``'s credentials.

    Every configured credential is compared, each with hmac.compare_digest, so the time
    taken does not tell which part of a guess was right.
    """
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    ok = False
    if scheme.lower() == "basic" and auth.username:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        user, _, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, auth.username.encode())
        password_ok = hmac.compare_digest(password, auth.password.encode())
        ok = user_ok and password_ok
    elif scheme.lower() == "bearer":
        given = value.encode()
        for token in auth.bearer_tokens:
            ok |= hmac.compare_digest(given, token.encode())
    return ok


def challenge(auth: AuthConfig) -> str:
    schemes = []
    if auth.username:
        schemes.append(f'Basic realm="{REALM}", charset="UTF-8"')
    if auth.bearer_tokens:
        schemes.append(f'Bearer realm="{REALM}"')
    return ", ".join(schemes)


# ---------------------------------------------------------------------------------------
# Client address.


def client_address(peer: str, forwarded_for: str, trusted: list[str]) -> str:
    """The peer address, or — when the peer is a trusted proxy — the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (the left part is client-written)."""
    if not trusted or not forwarded_for or not _in(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, trusted):
            return hop
    return peer


def _in(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


# ---------------------------------------------------------------------------------------
# Token buckets and lockout.


@dataclass
class Buckets:
    """Token buckets by key. A bucket that has refilled is the same as no bucket, which is
    what keeps the table small: full ones are dropped when it grows."""

    clock: Callable[[], float]
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> tokens, at

    def take(self, key: str, limit: RateConfig) -> float:
        """0.0 if a request may go now (one token taken), else seconds until it may."""
        if limit.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._state.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - at) * limit.rate)
        if tokens < 1.0:
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / limit.rate
        self._state[key] = (tokens - 1.0, now)
        if len(self._state) > MAX_TRACKED_ADDRESSES:
            self._prune(limit)
        return 0.0

    def _prune(self, limit: RateConfig) -> None:
        now = self.clock()
        for key, (tokens, at) in list(self._state.items()):
            if tokens + (now - at) * limit.rate >= limit.burst:
                del self._state[key]
        while len(self._state) > MAX_TRACKED_ADDRESSES:  # all busy: forget the oldest
            del self._state[next(iter(self._state))]


@dataclass
class Lockout:
    clock: Callable[[], float]
    _failures: dict[str, collections.deque[float]] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def remaining(self, address: str) -> float:
        until = self._until.get(address)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._until[address]
            return 0.0
        return left

    def failed(self, address: str, server: ServerConfig) -> bool:
        """Record one failure; True if it locked ``address`` out."""
        cfg = server.lockout
        if cfg.failures <= 0:
            return False
        now = self.clock()
        times = self._failures.setdefault(address, collections.deque())
        times.append(now)
        while times and times[0] <= now - cfg.window:
            times.popleft()
        if len(times) >= cfg.failures:
            del self._failures[address]
            self._until[address] = now + cfg.duration
            if len(self._until) > MAX_TRACKED_ADDRESSES:
                for key, until in list(self._until.items()):
                    if until <= now:
                        del self._until[key]
                while len(self._until) > MAX_TRACKED_ADDRESSES:  # forget the oldest lockout
                    del self._until[next(iter(self._until))]
            return True
        if len(self._failures) > MAX_TRACKED_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        return False

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


# ---------------------------------------------------------------------------------------
# The hook.


class Gatekeeper:
    """Decides, per request, whether it may reach its route (see the module docstring).
    Not to be confused with web.AppState.guards (breakers, dedup, spool: delivery side)."""

    def __init__(self, state: AppState, *, clock: Callable[[], float] = trio.current_time):
        self.state = state
        self.buckets = Buckets(clock)
        self.lockout = Lockout(clock)
        self.active = 0  # requests past the guard and not yet torn down

    def _refuse(self, label: str | None, text: str, retry_after_s: float) -> Response:
        """503 for a webhook (``label`` = its metric label), 429 for anything else."""
        headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}
        if label is None:
            return _answer(429, text, headers)
        self.state.metrics.webhooks.labels(label, "503").inc()
        return _answer(503, text, headers)

    async def before(self) -> Response | None:
        path = request.path
        if path in OPEN_PATHS:
            return None
        server = self.state.runtime.config.server
        webhook = path.startswith(WEBHOOK_PREFIX)
        admin = is_admin_path(path) or (path == "/metrics" and server.metrics_auth)
        if not (webhook or admin):
            return None  # /metrics, and 404s for everything else
        metrics, logger = self.state.metrics, self.state.logger
        peer = request.remote_addr or ""
        address = client_address(
            peer, request.headers.get("X-Forwarded-For", ""), server.trusted_proxies
        )
        dest_name = path[len(WEBHOOK_PREFIX) :] if webhook else ""
        dest = self.state.runtime.destinations.get(dest_name) if webhook else None
        label = (dest_name if dest is not None else UNKNOWN_DESTINATION) if webhook else None

        # Admin and webhook failures are counted apart: an operator mistyping the admin
        # token on the Alertmanager host must not lock that Alertmanager's webhooks out.
        scope = "admin" if admin else "webhook"
        lockout_key = f"{scope} {address}"
        locked = self.lockout.remaining(lockout_key)
        if locked:
            metrics.rate_limited.labels("lockout").inc()
            return self._refuse(
                label, "too many failed authentication attempts; retry later", locked
            )
        wait = self.buckets.take(f"client {address}", server.rate_limit.client)
        if wait:
            metrics.rate_limited.labels("client").inc()
            return self._refuse(label, "rate limit exceeded for this client", wait)
        if self.active >= server.max_concurrent_requests:
            metrics.rate_limited.labels("concurrency").inc()
            return self._refuse(label, "too many requests in progress", BUSY_RETRY_AFTER_S)

        if admin:
            auth = server.admin
            if auth is None:
                return _answer(
                    403, "admin endpoints are disabled: configure server.admin credentials"
                )
        else:
            auth = dest.cfg.auth if dest is not None and dest.cfg.auth else server.auth
        if auth is not None:
            if not check_credentials(auth, request.headers.get("Authorization", "")):
                metrics.auth_failures.labels(scope).inc()
                if self.lockout.failed(lockout_key, server):
                    metrics.lockouts.inc()
                    logger.warning(
                        "client locked out after repeated authentication failures",
                        remote=address,
                        scope=scope,
                        seconds=float(server.lockout.duration),
                    )
                if label is not None:
                    metrics.webhooks.labels(label, "401").inc()
                return _answer(
                    401, "credentials missing or wrong", {"WWW-Authenticate": challenge(auth)}
                )
            self.lockout.succeeded(lockout_key)

        if dest is not None:
            limit = dest.cfg.rate_limit or server.rate_limit.destination
            wait = self.buckets.take(f"destination {dest_name}", limit)
            if wait:
                metrics.rate_limited.labels("destination").inc()
                return self._refuse(label, f"rate limit exceeded for destination {dest_name}", wait)
        self.active += 1
        g.guard_counted = True
        return None

    async def after(self, response: Response) -> Response:
        # An answer given before the request body has fully arrived (refused here, or a
        # 404 for an unknown destination) must end the connection: hypercorn cannot start
        # the next request on it cleanly, and a client reusing it (Alertmanager keeps
        # connections alive) could wait for an answer that never comes.
        complete = getattr(getattr(request, "body", None), "_complete", None)
        if complete is not None and not complete.is_set():
            response.headers["Connection"] = "close"
        return response

    async def teardown(self, _exc: BaseException | None) -> None:
        if g.get("guard_counted"):
            g.guard_counted = False
            self.active -= 1


def install(app: QuartTrio, state: AppState) -> Gatekeeper:
    """Guard every request of ``app`` (call once, before any other before_request hook)."""
    guard = Gatekeeper(state)
    app.before_request(guard.before)
    app.after_request(guard.after)
    app.teardown_request(guard.teardown)
    app.extensions["gateway_gatekeeper"] = guard  # for introspection and tests
    return guard
