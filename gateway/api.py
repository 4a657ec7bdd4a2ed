"""api.py: the admin API — destinations, info, config validation, reload — as a Blueprint.

Every route here sits under an admin prefix (``/api/``, ``/-/reload``), so auth.py guards
it with the admin credentials; this module does no auth of its own.

Each destination shows its circuit breaker (state, consecutive failures, seconds until a
probe) once the breaker has seen traffic.

Secrets never leave through it: URLs show scheme and host only (path, query and userinfo
masked: Slack, Telegram and others put tokens in the path), Authorization-like headers show
their scheme word, credentials are reported as what kind and how many, templates as a hash,
and every string is scrubbed of the values substituted from ``${env:..}``, ``${file:..}``
and ``${cred:..}``.

``POST /api/v1/config/validate`` checks posted text *offline*: no ``${env:..}``,
``${file:..}`` or ``${cred:..}`` is resolved (a caller must not read the host's
environment, files or credentials through it); each is listed under ``unresolved`` with
its key path, and checks that depend on such a value are skipped.
Must not: own tasks or swap runtimes itself (the daemon's ``reload`` does that).
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from quart import Blueprint, Response, request

from . import __version__, redact, templates
from . import config as config_mod
from .errors import ConfigError
from .runtime import template_problems

if TYPE_CHECKING:
    from .breaker import Breaker
    from .config import AuthConfig
    from .metrics import Metrics
    from .runtime import Destination, Runtime
    from .web import AppState

_encode = msgspec.json.Encoder().encode
_PROBLEM_PATH = re.compile(r"([A-Za-z0-9_.\[\]-]+): (.*)", re.DOTALL)
VALIDATE_CACHE_SIZE = 64


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(_encode(body), status=status, content_type="application/json")


def show_url(url: str, secrets: frozenset[str]) -> str:
    """scheme://host[:port] and ``/***`` for any path; userinfo and query masked."""
    if not url:
        return ""
    masked = redact.mask_url(url, secrets)
    scheme, sep, rest = masked.partition("://")
    if not sep:
        return redact.MASK
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = f"{redact.MASK}@{host.rpartition('@')[2]}"
    return f"{scheme}://{host}" + ("/" + redact.MASK if path or "?" in host else slash)


def _auth_summary(auth: AuthConfig | None) -> dict[str, Any] | None:
    if auth is None:
        return None
    return {"basic": bool(auth.username), "bearer_tokens": len(auth.bearer_tokens)}


def _counts(metrics: Metrics, name: str) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = {"webhooks": {}, "deliveries": {}}
    for key, counter, label in (
        ("webhooks", metrics.webhooks, "code"),
        ("deliveries", metrics.deliveries, "outcome"),
    ):
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["destination"] == name:
                    counts[key][sample.labels[label]] = sample.value
    return counts


def describe(
    dest: Destination, rt: Runtime, metrics: Metrics, breaker: Breaker | None = None
) -> dict[str, Any]:
    """One destination as an operator may see it: no secret, not even in part."""
    cfg, secrets = dest.cfg, rt.secrets
    template = dest.template.encode()
    view: dict[str, Any] = {
        "name": cfg.name,
        "kind": cfg.kind,
        "enabled": cfg.enabled,
        "url": show_url(cfg.url, secrets),
        "method": cfg.method,
        "format": cfg.format,
        "headers": redact.mask_headers(dest.headers, secrets),
        "template": {
            "builtin": not cfg.template,
            "sha256": hashlib.sha256(template).hexdigest()[:16],
        },
        "split_alerts": cfg.split_alerts,
        "batch_size": cfg.batch_size,
        "parallel_requests": cfg.parallel_requests,
        "timeout_s": float(cfg.timeout),
        "pool": {
            "max_connections": cfg.pool.max_connections,
            "max_keepalive_connections": cfg.pool.max_keepalive_connections,
            "keepalive_expiry_s": float(cfg.pool.keepalive_expiry),
        },
        "auth": _auth_summary(cfg.auth),
        "rate_limit": msgspec.to_builtins(cfg.rate_limit),
        "tls": msgspec.to_builtins(cfg.tls),
        "proxy_url": show_url(cfg.proxy_url, secrets),
        "http2": cfg.http2,
        "in_flight": dest.pool_limiter.borrowed_tokens,
        "counts": _counts(metrics, cfg.name),
    }
    if breaker is not None:
        view["breaker"] = {
            "state": breaker.state,
            "consecutive_failures": breaker.consecutive,
            "retry_after_s": round(breaker.retry_after_s(), 3) if breaker.state == "open" else 0,
        }
    shown: dict[str, Any] = _scrubbed(view, secrets)
    return shown


def _scrubbed(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact.scrub(value, secrets)
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value


def _problem(text: str) -> dict[str, str]:
    match = _PROBLEM_PATH.fullmatch(text)
    if match:
        return {"path": match[1], "message": match[2]}
    return {"path": "", "message": text}


def validate_text(text: str) -> tuple[bool, list[dict[str, str]], list[str]]:
    """(valid, errors, unresolved key paths) for posted config text; nothing is read."""
    cache = templates.TemplateCache(max_size=VALIDATE_CACHE_SIZE, ttl_s=60.0)
    try:
        config_mod.load_text(
            text,
            source="",
            environ={},
            offline=True,
            check_destination=lambda d: template_problems(d, cache),
        )
    except ConfigError as exc:
        problems = [_problem(p) for p in exc.problems]
        unresolved = [p["path"] for p in problems if config_mod.NOT_RESOLVED in p["message"]]
        errors = [p for p in problems if config_mod.NOT_RESOLVED not in p["message"]]
        return not errors, errors, unresolved
    return True, [], []


def blueprint(state: AppState) -> Blueprint:
    bp = Blueprint("admin_api", __name__)

    @bp.get("/api/v1/destinations")
    async def destinations() -> Response:
        rt = state.runtime
        find = state.guards.breakers.find
        dests = [describe(d, rt, state.metrics, find(d.name)) for d in rt.destinations.values()]
        return _json(200, {"destinations": dests})

    @bp.get("/api/v1/destinations/<name>")
    async def destination(name: str) -> Response:
        rt = state.runtime
        dest = rt.destinations.get(name)
        if dest is None:
            return _json(404, {"status": "error", "error": f"no destination {name[:128]!r}"})
        return _json(200, describe(dest, rt, state.metrics, state.guards.breakers.find(name)))

    @bp.get("/api/v1/info")
    async def info() -> Response:
        rt = state.runtime
        return _json(
            200,
            {
                "version": __version__,
                "uptime_s": round(time.monotonic() - state.started_at, 3),
                "config": {"path": rt.loaded.source, "sha256": rt.loaded.sha256},
                "destinations": len(rt.destinations),
                "ready": state.ready and not state.draining,
                "last_reload": _scrubbed(state.last_reload, rt.secrets),
            },
        )

    @bp.post("/api/v1/config/validate")
    async def validate() -> Response:
        body = await request.get_data(cache=False, as_text=False)
        assert isinstance(body, bytes)
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            error = {"path": "", "message": f"not UTF-8 text (byte {exc.start})"}
            return _json(422, {"valid": False, "errors": [error], "unresolved": []})
        # Test-rendering every template can take a while for a big file: off the event
        # loop, so webhooks (and the watchdog pings) are not held up by an admin call.
        valid, errors, unresolved = await trio.to_thread.run_sync(validate_text, text)
        answer = {"valid": valid, "errors": errors, "unresolved": unresolved}
        return _json(200 if valid else 422, answer)

    @bp.post("/-/reload")
    async def reload() -> Response:
        if state.reload is None:
            return _json(503, {"status": "error", "error": "reload is not available here"})
        failed = await state.reload()
        rt = state.runtime
        if failed is not None:
            return _json(400, {"status": "error", "errors": failed.problems})
        return _json(
            200,
            {"status": "success", "sha256": rt.loaded.sha256, "destinations": len(rt.destinations)},
        )

    return bp
