"""preview.py: what a destination would send for a payload — shared by the admin API
(``POST /api/v1/test/<destination>``, ``/api/v1/emulate/<destination>``) and the ``render``
command, so both show exactly the same thing.

Owns: choosing the payload of a preview (a bare Alertmanager payload, ``{"webhook_data":
...}``, or nothing for a built-in sample), planning the requests exactly as a webhook would
(split, limits, truncation) and describing them with secrets masked; and the one real send
of an emulation.
Must not: answer HTTP (api_preview.py) or print (cli.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import trio

from . import alertmanager, redact
from .dispatch import mode_of, plan_requests
from .errors import PayloadError

if TYPE_CHECKING:
    from .delivery import Request
    from .runtime import Destination, Runtime

DEFAULT_SAMPLE = "mixed-status.json"
BODY_EXCERPT_CHARS = 2000


def payload_from(body: bytes, *, sample: str | None = None) -> alertmanager.Payload:
    """The payload to preview: ``body`` as an Alertmanager payload, or its ``webhook_data``
    member, or (empty body) the built-in sample ``sample`` (default mixed-status.json)."""
    from .runtime import builtin_samples

    if not body.strip():
        samples = builtin_samples()
        name = sample or DEFAULT_SAMPLE
        name = name if name.endswith(".json") else f"{name}.json"
        if name not in samples:
            raise PayloadError(f"sample: unknown {name[:64]!r}; one of {', '.join(samples)}")
        return samples[name]
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"body: malformed JSON: {exc}") from None
    if isinstance(doc, dict) and "webhook_data" in doc:
        return alertmanager.decode(msgspec.json.encode(doc["webhook_data"]))
    return alertmanager.decode(body)


def describe(request: Request, dest: Destination, secrets: frozenset[str]) -> dict[str, Any]:
    body = request.body.decode("utf-8", "replace") if request.body is not None else None
    return {
        "method": request.method,
        "url": (
            "(log)"
            if dest.cfg.kind == "log"
            else redact.mask_path_secrets(redact.mask_url(request.url, secrets))
        ),
        "headers": redact.mask_headers(request.headers, secrets),
        "body": redact.scrub(body, secrets) if body is not None else None,
        "body_bytes": len(request.body) if request.body is not None else 0,
    }


def preview(runtime: Runtime, name: str, payload: alertmanager.Payload) -> dict[str, Any]:
    """Every request the destination would send for ``payload``, per part, nothing sent.
    Raises UnknownDestination, or TemplateError when a part cannot be rendered."""
    return _preview(runtime, name, payload)[0]


def _preview(
    runtime: Runtime, name: str, payload: alertmanager.Payload
) -> tuple[dict[str, Any], Destination, Request]:
    dest = runtime.destination(name)
    tokens = runtime.templates.get(dest.template, where=dest.where)
    planned = plan_requests(dest, tokens, payload)
    count = len(planned.parts)
    shown = {
        "destination": dest.name,
        "kind": dest.cfg.kind,
        "preset": dest.cfg.preset or None,
        "mode": mode_of(dest.cfg),
        "alerts_count": len(payload.alerts),
        "group_key": payload.groupKey,
        "parts_added_by_limits": planned.split,
        "parts_truncated": planned.truncated,
        "requests": [
            {
                "part": i + 1,
                "of": count,
                "alerts": [a.fingerprint for a in part],
                **describe(request, dest, runtime.secrets),
            }
            for i, (part, request) in enumerate(planned.parts)
        ],
    }
    return shown, dest, planned.parts[0][1]


async def send_one(runtime: Runtime, name: str, payload: alertmanager.Payload) -> dict[str, Any]:
    """Preview, then really send the first request and report the destination's answer."""
    shown, dest, request = _preview(runtime, name, payload)
    secrets = runtime.secrets
    if dest.client is None:  # kind: log, or a runtime built without clients
        return {**shown, "sent": {"part": 1, "outcome": "not sent: no HTTP client (kind log)"}}
    answer: dict[str, Any] = {"part": 1}
    with trio.move_on_after(float(dest.cfg.timeout)) as scope:
        try:
            async with dest.pool_limiter:
                response = await dest.client.request(
                    request.method, request.url, headers=request.headers, content=request.body
                )
        except httpx.HTTPError as exc:
            answer["outcome"] = "failure"
            answer["error"] = type(exc).__name__
        else:
            answer["outcome"] = "success" if 200 <= response.status_code < 300 else "failure"
            answer["status_code"] = response.status_code
            answer["headers"] = redact.mask_headers(dict(response.headers), secrets)
            answer["body_excerpt"] = redact.scrub(response.text[:BODY_EXCERPT_CHARS], secrets)
    if scope.cancelled_caught:
        answer["outcome"] = "timeout"
    return {**shown, "sent": answer}
