"""delivery.py: one HTTP request to a destination and what came of it.

Knows nothing about splitting or templates: it gets a finished request and returns an
``Attempt``. Error texts are built from status codes and exception class names, never from
the URL (which may carry a token).
"""

from __future__ import annotations

from typing import Literal

import httpx
import msgspec

Outcome = Literal["success", "failure", "timeout", "invalid"]
RESPONSE_EXCERPT_CHARS = 200


class Request(msgspec.Struct, frozen=True):
    """A rendered, encoded request, ready to send (or to show, in previews)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


class Attempt(msgspec.Struct, frozen=True):
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None


def _excerpt(response: httpx.Response) -> str:
    text = response.text[:RESPONSE_EXCERPT_CHARS].strip()
    return f": {text}" if text else ""


async def send(client: httpx.AsyncClient, request: Request) -> Attempt:
    """Send once. Any 2xx is success; everything else is described, not raised."""
    try:
        response = await client.request(
            request.method, request.url, headers=request.headers, content=request.body
        )
    except httpx.TimeoutException as exc:
        return Attempt("timeout", error=f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        detail = str(exc).replace(request.url, "<url>") if str(exc) else ""
        return Attempt("failure", error=f"{type(exc).__name__}: {detail}".rstrip(": "))
    if 200 <= response.status_code < 300:
        return Attempt("success", status_code=response.status_code)
    return Attempt(
        "failure",
        status_code=response.status_code,
        error=f"HTTP {response.status_code}{_excerpt(response)}",
    )
