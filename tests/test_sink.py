"""The loopback sink other tests rely on: it records, keeps connections alive, injects faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from support.sink import Behaviour, Sink

GUARD_S = 10.0  # generous bound on anything that should take milliseconds


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=GUARD_S / 2) as client:
        yield client


async def test_records_method_path_query_headers_and_body(
    sink: Sink, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(GUARD_S):
        response = await client.post(
            f"{sink.url}/hook/a?x=1&y=2", content=b'{"a": 1}', headers={"X-Token": "s3cret"}
        )

    assert (response.status_code, response.content) == (200, b"ok")
    [got] = sink.received
    assert (got.method, got.path, got.query) == ("POST", "/hook/a", "x=1&y=2")
    assert got.body == b'{"a": 1}'
    assert got.headers["x-token"] == "s3cret"
    assert got.headers["content-length"] == "8"
    assert sink.for_path("/hook/a") == [got]
    assert sink.for_path("/hook") == []


async def test_chunked_body_is_reassembled(sink: Sink, client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            yield part

    with trio.fail_after(GUARD_S):
        response = await client.put(f"{sink.url}/chunked", content=chunks())

    assert response.status_code == 200
    [got] = sink.received
    assert got.headers["transfer-encoding"] == "chunked"
    assert got.body == b"one,two,three"


async def test_keep_alive_serves_many_requests_on_one_connection(
    sink: Sink, client: httpx.AsyncClient
) -> None:
    local_ports = set()
    with trio.fail_after(GUARD_S):
        for i in range(5):
            response = await client.post(f"{sink.url}/k", content=str(i).encode())
            assert response.status_code == 200
            # httpx reuses its pooled connection only if the server kept it open.
            local_ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))

    assert [r.body for r in sink.for_path("/k")] == [b"0", b"1", b"2", b"3", b"4"]
    assert len(local_ports) == 1


async def test_behaviour_sets_status_body_and_headers_by_longest_prefix(
    sink: Sink, client: httpx.AsyncClient
) -> None:
    sink.behave("/api", Behaviour(status=202, body=b"api"))
    sink.behave("/api/teapot", Behaviour(status=418, body=b"short", headers={"x-kind": "tea"}))

    with trio.fail_after(GUARD_S):
        api = await client.post(f"{sink.url}/api/x")
        teapot = await client.post(f"{sink.url}/api/teapot/1")
        other = await client.post(f"{sink.url}/other")

    assert (api.status_code, api.content) == (202, b"api")
    assert (teapot.status_code, teapot.content, teapot.headers["x-kind"]) == (418, b"short", "tea")
    assert (other.status_code, other.content) == (200, b"ok")


async def test_fail_first_then_succeed(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave("/flaky", Behaviour(fail_first=2, fail_status=502))

    with trio.fail_after(GUARD_S):
        statuses = [(await client.post(f"{sink.url}/flaky")).status_code for _ in range(4)]

    assert statuses == [502, 502, 200, 200]
    assert len(sink.for_path("/flaky")) == 4


async def test_delay_holds_the_answer(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave("/slow", Behaviour(delay_s=0.3))

    with trio.fail_after(GUARD_S):
        start = trio.current_time()
        response = await client.post(f"{sink.url}/slow")
        elapsed = trio.current_time() - start

    assert response.status_code == 200
    assert 0.3 <= elapsed < GUARD_S
    # Recorded on arrival, before the delay.
    assert sink.received[0].at - start < 0.3


async def test_reset_closes_without_answer(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave("/reset", Behaviour(reset=True))

    with trio.fail_after(GUARD_S), pytest.raises(httpx.RemoteProtocolError):
        await client.post(f"{sink.url}/reset", content=b"lost?")

    assert [r.body for r in sink.for_path("/reset")] == [b"lost?"]
    with trio.fail_after(GUARD_S):  # the sink itself is still fine
        assert (await client.get(f"{sink.url}/after")).status_code == 200


async def test_hang_never_answers_but_records(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave("/hang", Behaviour(hang=True))

    answers: list[httpx.Response] = []

    async def post() -> None:
        answers.append(await client.post(f"{sink.url}/hang", timeout=None))

    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            await sink.wait_for(1, path="/hang")
            await trio.sleep(0.2)  # give a wrong answer time to arrive
            nursery.cancel_scope.cancel(reason="test done")

    assert answers == []


async def test_wait_for_wakes_on_arrival(sink: Sink, client: httpx.AsyncClient) -> None:
    results: list[list[str]] = []

    async def waiter() -> None:
        got = await sink.wait_for(3, path="/w")
        results.append([r.query for r in got])

    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await client.post(f"{sink.url}/w?n=1")
            await client.post(f"{sink.url}/elsewhere")
            await client.post(f"{sink.url}/w?n=2")
            assert results == []
            await client.post(f"{sink.url}/w?n=3")

    assert results == [["n=1", "n=2", "n=3"]]
    assert len(await sink.wait_for(4)) == 4  # already satisfied: returns at once


async def test_concurrent_connections(sink: Sink) -> None:
    # Each request on its own connection, all in flight at once behind a delay: a sink that
    # served connections one at a time would take 10 x 0.3 s.
    sink.behave("/c", Behaviour(delay_s=0.3))

    async def one(i: int) -> None:
        async with httpx.AsyncClient(trust_env=False) as own:
            assert (await own.post(f"{sink.url}/c", content=b"%d" % i)).status_code == 200

    with trio.fail_after(GUARD_S):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(one, i)
        elapsed = trio.current_time() - start

    assert elapsed < 2.0
    assert sorted(r.body for r in sink.for_path("/c")) == sorted(b"%d" % i for i in range(10))
