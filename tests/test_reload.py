"""Hot reload with the real daemon (in-process, real sockets, POST /-/reload): unchanged
destinations keep their client, replaced clients close only after their requests finish,
log level follows the file, and reloading under load fails no request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from gateway.daemon import Daemon
from support.daemon import run_daemon
from support.sink import Behaviour, Sink

GROUP = (Path(__file__).parent / "data" / "firing-group-unicode.json").read_bytes()
GUARD_S = 60
ADMIN = {"Authorization": "Bearer reload-admin-token"}


def config(
    sink: Sink, *, a_template: str = "a", b_timeout: str = "10s", level: str = "info"
) -> str:
    return f"""
server: {{address: "127.0.0.1:0", admin: {{bearer_tokens: [reload-admin-token]}}}}
logging: {{level: {level}}}
dedup: {{max_entries: 0}}  # the same sample is posted again and again: send it every time
destinations:
  - name: a
    url: "{sink.url}/a"
    template: '{{"v": "{a_template}"}}'
  - name: b
    url: "{sink.url}/b"
    timeout: {b_timeout}
"""


@asynccontextmanager
async def running(tmp_path: Path, text: str) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient]]:
    async with (
        run_daemon(tmp_path, text, guard_s=GUARD_S) as (daemon, url),
        httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as client,
    ):
        yield daemon, client


async def reload(client: httpx.AsyncClient, tmp_path: Path, text: str) -> httpx.Response:
    (tmp_path / "gateway.yaml").write_text(text)
    return await client.post("/-/reload", headers=ADMIN)


@asynccontextmanager
async def b_in_flight(sink: Sink, client: httpx.AsyncClient) -> AsyncIterator[list[int]]:
    """Post to destination b, which the sink answers only after 0.5 s, and run the block
    while that delivery is in flight; yields a list that holds the gateway's answer to the
    post once the block has ended (the post is awaited before leaving)."""
    sink.behave("/b", Behaviour(delay_s=0.5))
    answers: list[int] = []

    async def post_b() -> None:
        answers.append((await client.post("/webhook/b", content=GROUP)).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post_b)
        await sink.wait_for(1, path="/b")  # b's delivery is in flight on its current client
        yield answers


async def test_reload_keeps_unchanged_clients_and_closes_replaced_ones_after_drain(
    sink: Sink, tmp_path: Path
) -> None:
    async with running(tmp_path, config(sink)) as (daemon, client):
        assert daemon.state is not None
        old = daemon.state.runtime
        old_a, old_b = old.destinations["a"].client, old.destinations["b"].client
        assert old_a is not None and old_b is not None
        async with b_in_flight(sink, client) as answers:  # on the old client
            # a: only the template changes (per request) -> same client; b: timeout -> new.
            answer = await reload(client, tmp_path, config(sink, a_template="a2", b_timeout="9s"))
            assert answer.status_code == 200, answer.text
            new = daemon.state.runtime
            assert new is not old
            assert new.destinations["a"].client is old_a
            assert new.destinations["b"].client is not old_b
            assert not old_b.is_closed  # its request has not finished yet
        assert answers == [200]
        await trio.testing.wait_all_tasks_blocked()
        assert old_b.is_closed  # drained, then closed
        assert not old_a.is_closed  # still serving a
        response = await client.post("/webhook/a", content=GROUP)
        assert response.status_code == 200
        assert sink.for_path("/a")[-1].body == b'{"v": "a2"}'


async def test_reload_failure_keeps_old_config_and_answers_400(sink: Sink, tmp_path: Path) -> None:
    async with running(tmp_path, config(sink)) as (daemon, client):
        assert daemon.state is not None
        before = daemon.state.runtime
        answer = await reload(client, tmp_path, config(sink).replace(sink.url, "ftp://x", 1))
        assert answer.status_code == 400
        assert answer.json() == {
            "status": "error",
            "errors": ["destinations[0].url: must start with http:// or https://"],
        }
        assert daemon.state.runtime is before
        assert not before.destinations["a"].client.is_closed  # type: ignore[union-attr]
        assert (await client.post("/webhook/a", content=GROUP)).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'gateway_config_reloads_total{result="failure"} 1.0' in metrics
        assert "gateway_config_last_reload_successful 0.0" in metrics


async def test_log_level_follows_the_file_on_reload(sink: Sink, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    async with running(tmp_path, config(sink)) as (_daemon, client):
        assert (await client.post("/webhook/a", content=GROUP)).status_code == 200
        assert log.read_text().count("msg=delivered destination=a") == 1
        assert (await reload(client, tmp_path, config(sink, level="error"))).status_code == 200
        assert (await client.post("/webhook/a", content=GROUP)).status_code == 200
        assert log.read_text().count("msg=delivered destination=a") == 1  # info is off
        (tmp_path / "gateway.yaml").write_text(config(sink, level="info"))
        assert (await client.post("/-/reload", headers=ADMIN)).status_code == 200
        assert (await client.post("/webhook/a", content=GROUP)).status_code == 200
        assert log.read_text().count("msg=delivered destination=a") == 2
        # What only a restart can change is said, not silently ignored.
        text = config(sink).replace('address: "127.0.0.1:0"', 'address: "127.0.0.1:1"')
        assert (await reload(client, tmp_path, text)).status_code == 200
        assert (
            'msg="changed settings take effect only after a restart" settings=server.address'
            in log.read_text()
        )


async def test_reload_during_load_fails_no_request(sink: Sink, tmp_path: Path) -> None:
    sink.behave("/", Behaviour(delay_s=0.01))
    requests_per_worker, workers, reloads = 25, 8, 6
    codes: list[int] = []
    async with running(tmp_path, config(sink)) as (_daemon, client):

        async def worker(name: str) -> None:
            for _ in range(requests_per_worker):
                response = await client.post(f"/webhook/{name}", content=GROUP)
                codes.append(response.status_code)

        async with trio.open_nursery() as nursery:
            for i in range(workers):
                nursery.start_soon(worker, "ab"[i % 2])
            for i in range(reloads):
                await sink.wait_for((i + 1) * 20)
                # Alternate: b's client is replaced every time, a's template changes.
                text = config(sink, a_template=f"a{i}", b_timeout=f"{9 + i % 2}s")
                answer = await reload(client, tmp_path, text)
                assert answer.status_code == 200, answer.text
        metrics = (await client.get("/metrics")).text
    assert len(codes) == requests_per_worker * workers
    assert set(codes) == {200}
    assert len(sink.received) == len(codes)
    assert f'gateway_config_reloads_total{{result="success"}} {reloads}.0' in metrics


async def test_two_quick_reloads_do_not_close_a_shared_client_under_a_request(
    sink: Sink, tmp_path: Path
) -> None:
    async with running(tmp_path, config(sink)) as (daemon, client):
        assert daemon.state is not None
        first_b = daemon.state.runtime.destinations["b"].client
        assert first_b is not None
        async with b_in_flight(sink, client) as answers:  # on the first runtime's b client
            # Reload 1 keeps b's client (shared by two runtimes); reload 2 replaces it. The
            # second runtime has no request of its own, but must not close the shared client
            # while the first runtime's request still uses it.
            assert (await reload(client, tmp_path, config(sink, a_template="x"))).status_code == 200
            assert daemon.state.runtime.destinations["b"].client is first_b
            assert (await reload(client, tmp_path, config(sink, b_timeout="9s"))).status_code == 200
            await trio.testing.wait_all_tasks_blocked()
            assert not first_b.is_closed
        assert answers == [200]
        await trio.testing.wait_all_tasks_blocked()
        assert first_b.is_closed
