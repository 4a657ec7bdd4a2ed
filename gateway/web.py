"""web.py: the QuartTrio app — webhook, health, readiness, metrics — and the one place
where outcomes become HTTP answers to Alertmanager.

The contract (DESIGN.md): 2xx only when every part was delivered; 4xx only for input that
can never succeed (Alertmanager drops those); 5xx for everything that may succeed later
(Alertmanager retries those). Every answer, errors included, is JSON.
Must not: own nurseries or long-lived tasks (daemon.py) or know how alerts are split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import __version__, alertmanager, api, auth, debug, delivery_api
from .dispatch import dispatch
from .errors import GatewayError, PayloadTooLarge, TemplateError, Unavailable, UnknownDestination
from .guards import Guards
from .metrics import UNKNOWN_DESTINATION
from .redact import scrub

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .dispatch import DispatchResult, PartResult
    from .errors import ConfigError
    from .logs import Logger
    from .metrics import Metrics
    from .runtime import Runtime

_encode = msgspec.json.Encoder().encode
# Paths polled by probes and scrapers: no access log line for them.
QUIET_PATHS = frozenset({"/health", "/ready", "/-/healthy", "/-/ready", "/metrics"})
DRAINING_RETRY_AFTER_S = 5


@dataclass
class AppState:
    """What the app reads on every request. The daemon swaps ``runtime`` on reload; each
    request reads it once and uses only that snapshot."""

    runtime: Runtime
    metrics: Metrics
    logger: Logger
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    draining: bool = False
    # The daemon's reload (POST /-/reload); None where there is no daemon (tests, tools).
    reload: Callable[[], Awaitable[ConfigError | None]] | None = None
    last_reload: dict[str, object] = field(default_factory=dict)  # GET /api/v1/info
    # Breakers, dedup memory and spool: kept across reloads (the daemon re-configures them).
    guards: Guards = field(init=False)

    # Sync deliveries in flight: on SIGTERM their deadline becomes the drain deadline, so each
    # one answers (503) before hypercorn's graceful timeout would cut it off unanswered.
    drain_deadline: float = math.inf
    _in_flight: set[trio.CancelScope] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.guards = Guards(self.metrics, self.logger)
        self.guards.configure(self.runtime.config)

    def begin_drain(self, grace_s: float) -> None:
        """Refuse new webhooks; give sync deliveries in flight ``grace_s`` to finish."""
        self.draining = True
        self.drain_deadline = trio.current_time() + grace_s
        for scope in self._in_flight:
            scope.deadline = min(scope.deadline, self.drain_deadline)

    @contextmanager
    def drain_scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope(deadline=self.drain_deadline) as scope:
            self._in_flight.add(scope)
            try:
                yield scope
            finally:
                self._in_flight.discard(scope)


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(_encode(body), status=status, headers=headers, content_type="application/json")


def error_response(exc: GatewayError, extra: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"status": "error", "error": exc.message}
    if extra:
        body.update(extra)
    headers = None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return json_response(exc.status_code, body, headers)


def _answer(
    result: DispatchResult,
    dest_name: str,
    payload: alertmanager.Payload,
    started: float,
    secrets: frozenset[str],
) -> Response:
    body: dict[str, Any] = {
        "status": "success" if result.ok else "error",
        "destination": dest_name,
        "alerts_count": len(payload.alerts),
        "group_key": payload.groupKey,
        "processing_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if result.duplicate:
        body["duplicate"] = True  # delivered before: nothing was sent this time
    # A single-mode notification that the destination's size limits split is reported per
    # part too, so Alertmanager's log shows which alerts went in which request.
    if result.mode != "single" or len(result.parts) > 1:
        body["mode"] = "split"
        body["split_mode"] = result.mode
        body["results"] = [_part_answer(p, secrets) for p in result.parts]
        body["summary"] = {
            "total": len(result.parts),
            "successful": len(result.parts) - result.failed,
            "failed": result.failed,
        }
    if result.ok:
        return json_response(200, body)
    failed = [p for p in result.parts if p.status != "success"]
    error = scrub(failed[0].error or "", secrets)
    body["error"] = (
        f"{len(failed)} of {len(result.parts)} part(s) not delivered: {error}"
        if len(result.parts) > 1
        else f"not delivered: {error}"
    )
    return json_response(504 if result.timed_out else 502, body)


def _part_answer(part: PartResult, secrets: frozenset[str]) -> dict[str, Any]:
    # Errors quote a destination's answer, which may echo a configured secret back.
    answer: dict[str, Any] = {
        "alerts": list(part.alerts),
        "status": part.status,
        "response_code": part.response_code,
        "error": scrub(part.error, secrets) if part.error else None,
    }
    if part.duplicate:
        answer["duplicate"] = True
    if part.attempts > 1:
        answer["attempts"] = part.attempts
    return answer


def create_app(state: AppState) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(state.runtime.config.server.max_body_bytes)
    app.config["BODY_TIMEOUT"] = float(state.runtime.config.server.read_timeout)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    logger, metrics = state.logger, state.metrics
    auth.install(app, state)  # first hook: every route is guarded by its path prefix
    app.register_blueprint(api.blueprint(state))

    @app.post("/webhook/<destination>")
    async def webhook(destination: str) -> Response:
        started = time.perf_counter()
        runtime = state.runtime  # one snapshot for the whole request
        label = destination if destination in runtime.destinations else UNKNOWN_DESTINATION
        metrics.in_flight.inc()
        try:
            with runtime.use():
                response = await _webhook(runtime, destination, started)
        finally:
            metrics.in_flight.dec()
        metrics.webhooks.labels(label, str(response.status_code)).inc()
        metrics.request_seconds.labels(label).observe(time.perf_counter() - started)
        return response

    async def _webhook(runtime: Runtime, name: str, started: float) -> Response:
        try:
            # The body is read before any early answer (404, 503): a keep-alive connection
            # whose request body was left unread stalls the client's next request on it.
            try:
                body = await request.get_data(cache=False, as_text=False)
            except RequestEntityTooLarge:
                limit = int(runtime.config.server.max_body_bytes)
                raise PayloadTooLarge(f"body: larger than max_body_bytes ({limit} bytes)") from None
            assert isinstance(body, bytes)  # as_text=False
            if state.draining:
                raise Unavailable("shutting down", retry_after_s=DRAINING_RETRY_AFTER_S)
            dest = runtime.destination(name)
            guards = state.guards
            breaker = None if dest.cfg.delivery == "async" else guards.breaker(dest)
            if breaker is not None:
                breaker.allow()  # open: 503 + Retry-After at once, nothing sent
            recorded = False
            try:
                payload = alertmanager.decode(body)
                for alert in payload.alerts:
                    metrics.alerts.labels(dest.name, alert.status).inc()
                if dest.cfg.delivery == "async":
                    return await _enqueue(dest.name, payload, body, started)
                tokens = runtime.templates.get(dest.template, where=dest.where)
                write_timeout = float(runtime.config.server.write_timeout)
                with state.drain_scope() as scope:
                    result = await dispatch(
                        dest,
                        payload,
                        tokens=tokens,
                        metrics=metrics,
                        logger=logger,
                        deadline_s=write_timeout,
                        dedup=guards.dedup,
                    )
                if scope.cancelled_caught:
                    raise Unavailable(
                        "shutting down: the drain deadline passed before delivery finished",
                        retry_after_s=DRAINING_RETRY_AFTER_S,
                    )
                if breaker is not None and not result.duplicate:
                    breaker.record(result.ok)
                    recorded = True
            finally:
                if breaker is not None and not recorded:
                    breaker.release()  # nothing sent (bad payload, template) or cancelled
        except TemplateError as exc:
            # A template that renders an invalid body for this payload: nothing was sent.
            # 500, not 4xx, so Alertmanager retries once the template is fixed and reloaded.
            logger.error("render failed", destination=name, error=str(exc))
            return error_response(exc)
        except UnknownDestination as exc:
            return error_response(exc)
        except GatewayError as exc:
            logger.warning(
                "webhook rejected", destination=name, code=exc.status_code, error=str(exc)
            )
            return error_response(exc)
        return _answer(result, name, payload, started, runtime.secrets)

    async def _enqueue(
        name: str, payload: alertmanager.Payload, body: bytes, started: float
    ) -> Response:
        spool = state.guards.spool
        if spool is None:
            raise Unavailable(f"destination {name}: delivery: async, but no spool is open")
        entry = await spool.enqueue(name, body)  # returns once fsync'd
        return json_response(
            202,
            {
                "status": "queued",
                "destination": name,
                "alerts_count": len(payload.alerts),
                "group_key": payload.groupKey,
                "id": entry,
                "processing_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    app.register_blueprint(delivery_api.blueprint(state))

    @app.get("/health")
    @app.get("/-/healthy")
    async def health() -> Response:
        return json_response(
            200,
            {
                "status": "ok",
                "version": __version__,
                "uptime_s": round(time.monotonic() - state.started_at, 3),
                "destinations": sum(d.cfg.enabled for d in state.runtime.destinations.values()),
            },
        )

    @app.get("/ready")
    @app.get("/-/ready")
    async def ready() -> Response:
        if state.ready and not state.draining:
            return json_response(200, {"status": "ready"})
        reason = "draining" if state.draining else "starting"
        return json_response(503, {"status": reason}, {"Retry-After": str(DRAINING_RETRY_AFTER_S)})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    from .api_preview import blueprint as preview_blueprint  # it imports this module

    app.register_blueprint(preview_blueprint(state))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        text = exc.name.lower() if exc.name else "error"
        if code == 405:
            text = f"method {request.method} not allowed for {request.path}"
        elif code == 404:
            text = f"no such endpoint: {request.path[:200]}"
        return json_response(code, {"status": "error", "error": text}, headers)

    @app.after_request
    async def access_log(response: Response) -> Response:
        if request.path not in QUIET_PATHS and logger.enabled("info"):
            logger.info(
                "request",
                method=request.method,
                path=request.path[:200],
                code=response.status_code,
                remote=request.remote_addr,
            )
        return response

    debug.register(app, state)  # /debug/* only when profiling is on
    return app
