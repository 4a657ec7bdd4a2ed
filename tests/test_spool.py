"""delivery: async — the webhook answers 202 once the notification is on disk; workers
deliver it (retrying), dead-letter what can never succeed, and the admin API replays it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from gateway.spool import DB_NAME, Spool
from gateway.spool_db import SpoolDB
from support.app import Built, build_app

DATA = Path(__file__).parent / "data"
SINGLE = (DATA / "firing-single.json").read_bytes()
GUARD_S = 10.0
# Admin routes (/api/...) need the admin credentials (auth.py, by path prefix).
ADMIN = {"Authorization": "Bearer test-admin-token"}
CONFIG = """
server: {address: "127.0.0.1:0", admin: {bearer_tokens: [test-admin-token]}}
defaults:
  retry: {max_attempts: 2, initial_delay: 10ms, max_delay: 20ms}
  breaker: {enabled: false}
destinations:
  - name: queued
    url: http://sink.test/queued
    delivery: async
    template: '{"group": "{{groupKey}}"}'
"""


def notification(n: int) -> bytes:
    body = SINGLE.replace(b'"groupKey":"', b'"groupKey":"n%d-' % n, 1)
    assert body != SINGLE
    return body


class Target:
    """The destination: answers ``status`` (then 200 once ``fixed``); records group keys."""

    def __init__(self) -> None:
        self.status = 200
        self.text = "no such channel"
        self.delivered: list[str] = []
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.status != 200:
            return httpx.Response(self.status, text=self.text)
        self.delivered.append(json.loads(request.content)["group"])
        return httpx.Response(200)


@asynccontextmanager
async def spooled(
    tmp_path: Path, *, max_entries: int = 1000, clock: Any = None
) -> AsyncIterator[tuple[Built, Target, Spool]]:
    target = Target()
    built = build_app(CONFIG, httpx.MockTransport(target))
    kwargs = {"clock": clock} if clock else {}
    spool = Spool(tmp_path / "state", max_entries=max_entries, workers=2, **kwargs)
    guards = built.state.guards
    guards.attach_spool(spool)
    built.state.metrics.watch_spool(spool.statistics)

    async def deliver(name: str, body: bytes, failures: int) -> Any:
        return await guards.deliver_spooled(built.state.runtime, name, body, failures)

    async with trio.open_nursery() as nursery:
        await nursery.start(spool.run, deliver)
        try:
            yield built, target, spool
        finally:
            nursery.cancel_scope.cancel()
    spool.close()


async def post(built: Built, path: str, body: bytes = SINGLE, method: str = "POST") -> Any:
    response = await built.app.test_client().open(path, method=method, data=body, headers=ADMIN)
    return response.status_code, await response.get_json(), response.headers


async def wait_until(check: Any) -> None:
    while not check():  # noqa: ASYNC110 - the workers offer no event to wait on
        await trio.sleep(0.01)


async def test_202_means_on_disk_and_every_notification_is_delivered(tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with spooled(tmp_path) as (built, target, spool):
            answers = []

            async def send(n: int) -> None:
                answers.append(await post(built, "/webhook/queued", notification(n)))

            async with trio.open_nursery() as nursery:
                for n in range(40):
                    nursery.start_soon(send, n)
            assert {code for code, _, _ in answers} == {202}
            assert all(body["status"] == "queued" for _, body, _ in answers)
            await wait_until(lambda: len(target.delivered) == 40)
            await wait_until(lambda: not spool.statistics()["queued"].depth)
            await spool.wait_idle()  # deletes are committed in batches; shutdown waits too
    assert len(set(target.delivered)) == 40  # each once
    with sqlite3.connect(tmp_path / "state" / DB_NAME) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (0,)


async def test_concurrent_enqueues_share_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = 0
    insert = SpoolDB.insert

    def counting(db: SpoolDB, batch: Any) -> list[int]:
        nonlocal commits
        commits += 1
        return insert(db, batch)

    monkeypatch.setattr(SpoolDB, "insert", counting)
    spool = Spool(tmp_path, max_entries=1000)
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(spool.enqueue, "d", notification(n))
    assert spool.statistics()["d"].depth == 100
    assert commits < 100  # group commit: concurrent enqueues share transactions
    spool.close()


async def test_full_spool_answers_503_and_keeps_what_it_has(tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with spooled(tmp_path, max_entries=2) as (built, target, spool):
            target.status = 503  # nothing drains
            assert (await post(built, "/webhook/queued", notification(1)))[0] == 202
            assert (await post(built, "/webhook/queued", notification(2)))[0] == 202
            code, body, headers = await post(built, "/webhook/queued", notification(3))
            assert code == 503
            assert "spool full" in body["error"]
            assert int(headers["Retry-After"]) > 0
            assert spool.statistics()["queued"].depth == 2
            target.status = 200
            await wait_until(lambda: len(target.delivered) == 2)


async def test_refused_notifications_become_dead_letters_and_can_be_replayed(
    tmp_path: Path,
) -> None:
    with trio.fail_after(GUARD_S):
        async with spooled(tmp_path) as (built, target, spool):
            target.status = 404  # e.g. a deleted Slack channel: retrying cannot help
            for n in range(3):
                assert (await post(built, "/webhook/queued", notification(n)))[0] == 202
            await wait_until(lambda: spool.statistics()["queued"].dead == 3)
            assert target.calls == 3  # not retried
            assert built.sample("gateway_dead_letters_total", destination="queued") == 3
            assert built.sample("gateway_spool_depth", destination="queued") == 0

            code, page, _ = await post(built, "/api/v1/dead-letters?limit=2", method="GET")
            assert code == 200
            assert [x["last_error"] for x in page["dead_letters"]] == [
                "HTTP 404: no such channel"
            ] * 2
            code, rest, _ = await post(
                built, f"/api/v1/dead-letters?after={page['next_after']}", method="GET"
            )
            assert len(rest["dead_letters"]) == 1
            first = page["dead_letters"][0]["id"]
            code, one, _ = await post(built, f"/api/v1/dead-letters/{first}", method="GET")
            assert json.loads(one["payload"])["groupKey"].startswith("n0-")

            target.status = 200  # the channel is back
            code, body, _ = await post(built, f"/api/v1/dead-letters/{first}/replay")
            assert (code, body) == (200, {"replayed": 1})
            await wait_until(lambda: len(target.delivered) == 1)
            last = rest["dead_letters"][0]["id"]
            assert (await post(built, f"/api/v1/dead-letters/{last}", method="DELETE"))[0] == 200
            code, body, _ = await post(built, "/api/v1/dead-letters/replay?destination=queued")
            assert body["replayed"] == 1
            await wait_until(lambda: len(target.delivered) == 2)
            assert spool.statistics()["queued"].dead == 0
            assert (await post(built, f"/api/v1/dead-letters/{last}", method="GET"))[0] == 404


async def test_entries_older_than_max_age_become_dead_letters(tmp_path: Path) -> None:
    now = [1000.0]
    with trio.fail_after(GUARD_S):
        async with spooled(tmp_path, clock=lambda: now[0]) as (built, target, spool):
            spool.max_age_s = 60.0
            target.status = 503
            assert (await post(built, "/webhook/queued"))[0] == 202
            await wait_until(lambda: target.calls >= 2)
            now[0] += 30
            assert built.sample("gateway_spool_depth", destination="queued") == 1
            assert built.sample("gateway_spool_oldest_age_seconds", destination="queued") == 30
            code, body, _ = await post(built, "/api/v1/spool", method="GET")
            assert code == 200
            assert body == {"destinations": {"queued": {"depth": 1, "oldest_age_s": 30, "dead": 0}}}
            now[0] += 31
            await wait_until(lambda: spool.statistics()["queued"].dead == 1)
            letters = await spool.list_dead()
            assert letters[0].last_error == "older than max_age (60s)"


async def test_admin_reads_create_no_spool(tmp_path: Path) -> None:
    built = build_app(CONFIG)
    built.state.guards.attach_spool(Spool(tmp_path / "state"))
    code, body, _ = await post(built, "/api/v1/dead-letters", method="GET")
    assert (code, body) == (200, {"dead_letters": []})
    assert (await post(built, "/api/v1/dead-letters/1/replay"))[0] == 404
    assert not (tmp_path / "state").exists()
    await built.state.runtime.aclose()


async def test_dead_letters_never_show_a_configured_secret(tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with spooled(tmp_path) as (built, target, spool):
            built.state.runtime.secrets = frozenset({"xoxb-s3cret"})  # as if from ${env:...}
            target.status, target.text = 403, "invalid token xoxb-s3cret"
            assert (await post(built, "/webhook/queued"))[0] == 202
            await wait_until(lambda: spool.statistics()["queued"].dead == 1)
            _, page, _ = await post(built, "/api/v1/dead-letters", method="GET")
            assert page["dead_letters"][0]["last_error"] == "HTTP 403: invalid token ***"
            letter = page["dead_letters"][0]["id"]
            _, one, _ = await post(built, f"/api/v1/dead-letters/{letter}", method="GET")
            assert "xoxb-s3cret" not in json.dumps(one)
