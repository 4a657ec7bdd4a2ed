"""api_preview.py: the admin endpoints that show what a destination would send.

    POST /api/v1/test/<destination>      the requests, per part, nothing sent
    POST /api/v1/emulate/<destination>   the same; with dry_run false, the first request is
                                         really sent and the destination's answer returned

The body is a bare Alertmanager payload, or ``{"webhook_data": <payload>, "dry_run": ...}``,
or empty (a built-in sample; ``?sample=<name>`` picks one). ``dry_run`` may also be given as
``?dry_run=false``; it defaults to true. URLs, headers and bodies are shown with secrets
masked. Admin auth is applied by path prefix elsewhere (issue 5), not here.
Must not: plan or render (preview.py does) or hold state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from quart import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import preview
from .errors import GatewayError, PayloadTooLarge, TemplateError

if TYPE_CHECKING:
    from .web import AppState

TEMPLATE_ERROR_STATUS = 422  # the template cannot render this payload: show why


def _dry_run(body: bytes, query_value: str | None) -> bool:
    if query_value is not None:
        return query_value.lower() not in ("false", "0", "no")
    try:
        doc = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        return True  # preview.payload_from reports the malformed body
    if isinstance(doc, dict) and isinstance(doc.get("dry_run"), bool):
        return bool(doc["dry_run"])
    return True


def blueprint(state: AppState) -> Blueprint:
    from .web import error_response, json_response  # web imports this module's blueprint

    bp = Blueprint("preview", __name__, url_prefix="/api/v1")

    async def _body() -> bytes:
        try:
            data = await request.get_data(cache=False, as_text=False)
        except RequestEntityTooLarge as exc:
            raise PayloadTooLarge("body: larger than server.max_body_bytes") from exc
        assert isinstance(data, bytes)
        return data

    @bp.post("/test/<destination>")
    async def test(destination: str) -> Response:
        runtime = state.runtime
        try:
            with runtime.use():
                payload = preview.payload_from(await _body(), sample=request.args.get("sample"))
                return json_response(200, preview.preview(runtime, destination, payload))
        except TemplateError as exc:
            return json_response(TEMPLATE_ERROR_STATUS, {"status": "error", "error": str(exc)})
        except GatewayError as exc:
            return error_response(exc)

    @bp.post("/emulate/<destination>")
    async def emulate(destination: str) -> Response:
        runtime = state.runtime
        try:
            with runtime.use():
                body = await _body()
                payload = preview.payload_from(body, sample=request.args.get("sample"))
                if _dry_run(body, request.args.get("dry_run")):
                    shown = preview.preview(runtime, destination, payload)
                    return json_response(200, {**shown, "dry_run": True})
                sent = await preview.send_one(runtime, destination, payload)
                state.logger.info(
                    "emulated delivery",
                    destination=destination,
                    outcome=sent["sent"].get("outcome"),
                    code=sent["sent"].get("status_code"),
                )
                return json_response(200, {**sent, "dry_run": False})
        except TemplateError as exc:
            return json_response(TEMPLATE_ERROR_STATUS, {"status": "error", "error": str(exc)})
        except GatewayError as exc:
            return error_response(exc)

    return bp
