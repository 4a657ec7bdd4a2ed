"""Idempotency: Alertmanager re-sends the whole notification after a 5xx, and an HA pair sends
it twice. Each part is delivered exactly once within the window; a full duplicate sends
nothing and says so."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import trio

from gateway.dedup import Dedup
from support.app import Built, build_app

DATA = Path(__file__).parent / "data"
GROUP = (DATA / "firing-group-unicode.json").read_bytes()
FINGERPRINTS = [a["fingerprint"] for a in json.loads(GROUP)["alerts"]]
CONFIG = """
server: {address: "127.0.0.1:0"}
defaults:
  retry: {max_attempts: 1}
dedup: {window: 10m}
destinations:
  - name: split
    url: http://sink.test/split
    split_alerts: true
    parallel_requests: 3
    template: '{"fp": "{{alert.fingerprint}}"}'
  - name: whole
    url: http://sink.test/whole
"""


class Flaky:
    """Fails the fingerprints in ``down``; counts what was delivered (answered 200)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.delivered: Counter[str] = Counter()
        self.sent = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        fp = json.loads(request.content).get("fp", "whole")
        if fp in self.down:
            return httpx.Response(503)
        self.delivered[fp] += 1
        return httpx.Response(200)


def make() -> tuple[Built, Flaky]:
    flaky = Flaky()
    return build_app(CONFIG, httpx.MockTransport(flaky)), flaky


async def post(built: Built, path: str, body: bytes = GROUP) -> tuple[int, Any]:
    response = await built.app.test_client().post(path, data=body)
    return response.status_code, await response.get_json()


async def test_a_resent_notification_delivers_only_the_parts_that_failed() -> None:
    built, flaky = make()
    flaky.down = {FINGERPRINTS[1]}
    code, body = await post(built, "/webhook/split")
    assert code == 502
    assert body["summary"] == {"total": 3, "successful": 2, "failed": 1}

    flaky.down = set()
    code, body = await post(built, "/webhook/split")  # Alertmanager's retry
    assert code == 200
    assert "duplicate" not in body  # one part was sent this time
    assert [r.get("duplicate", False) for r in body["results"]] == [True, False, True]
    assert flaky.delivered == {fp: 1 for fp in FINGERPRINTS}  # each part exactly once

    code, body = await post(built, "/webhook/split")  # the HA peer's copy
    assert code == 200
    assert body["duplicate"] is True
    assert flaky.sent == 4
    assert built.sample("gateway_duplicate_parts_total", destination="split") == 5


async def test_an_exact_duplicate_sends_nothing() -> None:
    built, flaky = make()
    assert (await post(built, "/webhook/whole"))[0] == 200
    code, body = await post(built, "/webhook/whole")
    assert (code, body["duplicate"]) == (200, True)
    assert flaky.sent == 1


async def test_a_change_of_status_is_not_a_duplicate() -> None:
    built, flaky = make()
    await post(built, "/webhook/whole")
    resolved = json.loads(GROUP)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    code, body = await post(built, "/webhook/whole", json.dumps(resolved).encode())
    assert code == 200
    assert "duplicate" not in body
    assert flaky.sent == 2


async def test_memory_is_bounded_and_forgets_after_the_window(
    autojump_clock: trio.abc.Clock,
) -> None:
    dedup = Dedup(window_s=60, max_entries=2)
    keys = [("d", "g", "firing", ((str(i), "firing"),)) for i in range(3)]
    for key in keys:
        dedup.remember(key)
    assert len(dedup) == 2
    assert not dedup.delivered(keys[0])  # the oldest was forgotten first
    assert dedup.delivered(keys[2])
    await trio.sleep(60)
    assert not dedup.delivered(keys[2])
