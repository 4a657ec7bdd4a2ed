"""The h11 keep-alive pool against the real loopback sink: reuse, stale connections,
timeouts, cancellation, limits, and the https fallback."""

from __future__ import annotations

import httpx
import pytest
import trio

from gateway.h11pool import H11Transport
from support.sink import Behaviour, Sink

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=30.0)
GUARD_S = 10.0


def _fallback_mock() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(299, content=b"fallback"))


async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> None:
    await client.post(url, content=body)


def _client(limits: httpx.Limits = LIMITS, timeout: float = 5.0) -> httpx.AsyncClient:
    transport = H11Transport(limits=limits, fallback=_fallback_mock())
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


async def test_posts_reach_the_sink_over_one_kept_alive_connection(sink: Sink) -> None:
    sink.behave("/", Behaviour(status=201, body=b'{"ok": true}', headers={"x-a": "1"}))
    with trio.fail_after(GUARD_S):
        async with _client() as client:
            for i in range(3):
                response = await client.post(f"{sink.url}/in?x={i}", content=b"body%d" % i)
                assert response.status_code == 201
                assert response.json() == {"ok": True}
                assert response.headers["x-a"] == "1"
            transport = client._transport
            assert isinstance(transport, H11Transport)
            assert transport.idle_connections() == 1
    assert [(r.path, r.query, r.body) for r in sink.received] == [
        ("/in", f"x={i}", b"body%d" % i) for i in range(3)
    ]
    assert sink.received[0].headers["content-length"] == "5"


async def test_a_connection_the_server_closed_is_not_reused(sink: Sink) -> None:
    with trio.fail_after(GUARD_S):
        async with _client() as client:
            assert (await client.post(f"{sink.url}/a", content=b"1")).status_code == 200
            # The sink drops the next connection's request without answering ...
            sink.behave("/reset", Behaviour(reset=True))
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(f"{sink.url}/reset", content=b"2")
            # ... and the pool has not kept that dead connection.
            assert (await client.post(f"{sink.url}/a", content=b"3")).status_code == 200


async def test_a_hanging_destination_raises_read_timeout_and_the_pool_stays_usable(
    sink: Sink,
) -> None:
    sink.behave("/hang", Behaviour(hang=True))
    with trio.fail_after(GUARD_S):
        async with _client(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(f"{sink.url}/hang", content=b"x")
            assert (await client.post(f"{sink.url}/ok", content=b"y")).status_code == 200


async def test_cancelled_requests_leave_the_pool_usable(sink: Sink) -> None:
    """httpcore #1093's shape: requests cancelled while waiting must not wedge the pool."""
    sink.behave("/slow", Behaviour(delay_s=5.0))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with trio.fail_after(GUARD_S):
        async with _client(limits) as client:
            with trio.move_on_after(0.2):
                async with trio.open_nursery() as nursery:
                    for _ in range(3):  # one holds the only slot, two wait for it
                        nursery.start_soon(_post, client, f"{sink.url}/slow", b"x")
            response = await client.post(f"{sink.url}/ok", content=b"after")
            assert response.status_code == 200


async def test_waiting_longer_than_the_pool_timeout_raises_pool_timeout(sink: Sink) -> None:
    sink.behave("/slow", Behaviour(delay_s=1.0))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(5.0, pool=0.1)
    transport = H11Transport(limits=limits, fallback=_fallback_mock())
    with trio.fail_after(GUARD_S):
        async with (
            httpx.AsyncClient(transport=transport, timeout=timeout) as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_post, client, f"{sink.url}/slow", b"first")
            await sink.wait_for(1)
            with pytest.raises(httpx.PoolTimeout):
                await client.post(f"{sink.url}/slow", content=b"second")


async def test_connection_refused_is_a_connect_error() -> None:
    with trio.fail_after(GUARD_S):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        await listeners[0].aclose()  # nothing listens there now
        async with _client() as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.post(f"http://127.0.0.1:{port}/", content=b"x")
    assert str(caught.value) == "connect failed: Connection refused"  # no address in it


async def test_https_goes_to_the_fallback_transport() -> None:
    async with _client() as client:
        response = await client.post("https://example.invalid/x", content=b"x")
    assert (response.status_code, response.content) == (299, b"fallback")
