"""delivery_api.py: the admin endpoints of reliable delivery (a Quart blueprint).

    POST   /api/v1/destinations/<name>/breaker/reset     close a destination's breaker
    GET    /api/v1/destinations/<name>/breaker           its state
    GET    /api/v1/spool                                 depth, oldest age, dead letters
    GET    /api/v1/dead-letters?destination=&after=&limit=   list (paged by id)
    GET    /api/v1/dead-letters/<id>                     one, with its payload
    POST   /api/v1/dead-letters/<id>/replay              back into the spool
    POST   /api/v1/dead-letters/replay?destination=<name>    all of a destination's
    DELETE /api/v1/dead-letters/<id>

Admin auth is applied by path prefix elsewhere (every route here is under /api/v1/).
Payloads are Alertmanager's own JSON and errors quote a destination's answer; both are
scrubbed of configured secrets, and nothing here shows a URL or a header.
Must not: deliver anything itself (the spool workers do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, request

from .errors import GatewayError, PayloadError, Unavailable, UnknownDestination
from .redact import scrub

if TYPE_CHECKING:
    from .spool import DeadLetter, Spool
    from .web import AppState

MAX_PAGE = 500
DEFAULT_PAGE = 50


class NotFound(UnknownDestination):
    """404 for an admin object that does not exist."""


def _letter(letter: DeadLetter, secrets: frozenset[str]) -> dict[str, Any]:
    # Errors quote up to 200 characters of a destination's answer: scrub configured secrets
    # from them (and from the payload), as the log does.
    answer: dict[str, Any] = {
        "id": letter.id,
        "destination": letter.destination,
        "enqueued_at": letter.enqueued_at,
        "attempts": letter.attempts,
        "last_error": scrub(letter.last_error, secrets) if letter.last_error else None,
        "dead_at": letter.dead_at,
    }
    if letter.payload is not None:
        answer["payload"] = scrub(letter.payload.decode("utf-8", errors="replace"), secrets)
    return answer


def blueprint(state: AppState) -> Blueprint:
    from .web import error_response, json_response  # web registers this blueprint

    bp = Blueprint("delivery_api", __name__, url_prefix="/api/v1")

    @bp.errorhandler(GatewayError)
    async def gateway_error(exc: GatewayError) -> Response:
        return error_response(exc)

    def spool() -> Spool:
        if state.guards.spool is None:
            raise Unavailable("no spool is open (no destination uses delivery: async)")
        return state.guards.spool

    def int_arg(name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        text = request.args.get(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise PayloadError(f"query {name}: expected an integer, got {text[:32]!r}") from None
        if value < low or (high is not None and value > high):
            raise PayloadError(f"query {name}: must be {low}..{high}, got {value}")
        return value

    @bp.get("/destinations/<name>/breaker")
    async def breaker_state(name: str) -> Response:
        dest = state.runtime.destination(name)
        breaker = state.guards.breaker(dest)
        if breaker is None:
            return json_response(200, {"destination": name, "state": "disabled"})
        return json_response(
            200,
            {
                "destination": name,
                "state": breaker.state,
                "consecutive_failures": breaker.consecutive,
                "retry_after_s": round(breaker.retry_after_s(), 3)
                if breaker.state == "open"
                else None,
            },
        )

    @bp.post("/destinations/<name>/breaker/reset")
    async def breaker_reset(name: str) -> Response:
        breaker = state.guards.breakers.find(name)
        if breaker is None:
            state.runtime.destination(name)  # 404 for a name the config does not know
            return json_response(200, {"destination": name, "state": "closed"})
        breaker.reset()
        return json_response(200, {"destination": name, "state": breaker.state})

    @bp.get("/spool")
    async def spool_stats() -> Response:
        stats = spool().statistics()
        return json_response(
            200,
            {
                "destinations": {
                    name: {
                        "depth": s.depth,
                        "oldest_age_s": round(s.oldest_age_s, 3),
                        "dead": s.dead,
                    }
                    for name, s in stats.items()
                }
            },
        )

    @bp.get("/dead-letters")
    async def dead_list() -> Response:
        limit = int_arg("limit", DEFAULT_PAGE, low=1, high=MAX_PAGE)
        after = int_arg("after", 0)
        destination = request.args.get("destination")
        letters = await spool().list_dead(destination=destination, after=after, limit=limit)
        secrets = state.runtime.secrets
        body: dict[str, Any] = {"dead_letters": [_letter(x, secrets) for x in letters]}
        if len(letters) == limit:
            body["next_after"] = letters[-1].id
        return json_response(200, body)

    @bp.get("/dead-letters/<int:id_>")
    async def dead_show(id_: int) -> Response:
        letter = await spool().get_dead(id_)
        if letter is None:
            raise NotFound(f"dead letter {id_}: not found")
        return json_response(200, _letter(letter, state.runtime.secrets))

    @bp.post("/dead-letters/<int:id_>/replay")
    async def dead_replay(id_: int) -> Response:
        moved = await spool().replay(id_=id_)
        if not moved:
            raise NotFound(f"dead letter {id_}: not found")
        return json_response(200, {"replayed": moved})

    @bp.post("/dead-letters/replay")
    async def dead_replay_all() -> Response:
        destination = request.args.get("destination")
        if not destination:
            raise PayloadError("query destination: required (replay all of one destination)")
        moved = await spool().replay(destination=destination)
        return json_response(200, {"destination": destination, "replayed": moved})

    @bp.delete("/dead-letters/<int:id_>")
    async def dead_delete(id_: int) -> Response:
        if not await spool().delete_dead(id_):
            raise NotFound(f"dead letter {id_}: not found")
        return json_response(200, {"deleted": id_})

    return bp
