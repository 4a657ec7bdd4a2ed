"""SIGTERM while sync deliveries are in flight: they may finish within the drain time, and
the ones that cannot are answered 503 (Alertmanager re-sends) instead of being cut off."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from support.app import build_app

SINGLE = (Path(__file__).parent / "data" / "firing-single.json").read_bytes()
CONFIG = """
server: {address: "127.0.0.1:0"}
destinations:
  - name: quick
    url: http://sink.test/quick
    timeout: 30s
  - name: slow
    url: http://sink.test/slow
    timeout: 30s
"""


async def answer(request: httpx.Request) -> httpx.Response:
    await trio.sleep(2 if request.url.path == "/quick" else 60)
    return httpx.Response(200)


async def test_in_flight_finish_or_get_503_at_the_drain_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    built = build_app(CONFIG, httpx.MockTransport(answer))
    client = built.app.test_client()
    answers: dict[str, tuple[int, float, str | None]] = {}

    async def post(name: str) -> None:
        response = await client.post(f"/webhook/{name}", data=SINGLE)
        answers[name] = (
            response.status_code,
            trio.current_time(),
            response.headers.get("Retry-After"),
        )

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(post, "quick")
        nursery.start_soon(post, "slow")
        await trio.sleep(1)
        built.state.begin_drain(4.0)  # what SIGTERM does (0.9 x drain_timeout)
        response = await client.post("/webhook/quick", data=SINGLE)
        assert response.status_code == 503  # new work is refused at once
    assert answers["quick"][:2] == (200, start + 2)
    assert answers["slow"] == (503, start + 5, "5")
    await built.state.runtime.aclose()
