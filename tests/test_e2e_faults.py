"""Full stack under faults: a real Alertmanager, the real gateway, a sink that fails. The
first notification is only partly delivered (502), Alertmanager re-sends all of it, and the
gateway delivers only the parts that failed: every alert arrives exactly once.

Needs the `prometheus-alertmanager` binary; skips without it (see the
`alertmanager_binary` fixture in conftest.py).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from support.procs import open_alertmanager, open_gateway, rfc3339
from support.sink import Behaviour, Sink

pytestmark = pytest.mark.slow
NOTIFY_TIMEOUT_S = 30.0
ALERTS = 5
FAILED_FIRST = 2


def gateway_config(sink_url: str) -> str:
    return json.dumps(
        {
            "server": {"address": "127.0.0.1:0"},
            "defaults": {"retry": {"max_attempts": 1}},  # leave the retry to Alertmanager
            "destinations": [
                {
                    "name": "sink",
                    "url": f"{sink_url}/hook",
                    "split_alerts": True,
                    "template": '{"instance": "{{alert.labels.instance}}"}',
                }
            ],
        }
    )


async def test_partly_failed_notification_is_completed_without_repeats(
    tmp_path: Path, sink: Sink, alertmanager_binary: str
) -> None:
    sink.behave("/hook", Behaviour(fail_first=FAILED_FIRST, fail_status=503))
    starts_at = rfc3339(datetime.now(UTC) - timedelta(seconds=60))
    alerts = [
        {"labels": {"alertname": "E2EFaults", "instance": f"i{n}"}, "startsAt": starts_at}
        for n in range(ALERTS)
    ]
    async with (
        open_gateway(tmp_path, gateway_config(sink.url)) as gw,
        open_alertmanager(tmp_path, f"{gw.url}/webhook/sink", binary=alertmanager_binary) as am,
    ):
        await am.post_alerts(alerts)
        with trio.fail_after(NOTIFY_TIMEOUT_S):
            received = await sink.wait_for(ALERTS + FAILED_FIRST, path="/hook")
            await trio.sleep(1.0)  # room for a repeat that must not come
        log = gw.log_text()
    received = sink.for_path("/hook")
    assert len(received) == ALERTS + FAILED_FIRST
    instances = [json.loads(r.body)["instance"] for r in received]
    # The first FAILED_FIRST requests were answered 503; everything after was delivered.
    delivered = Counter(instances[FAILED_FIRST:])
    assert delivered == {f"i{n}": 1 for n in range(ALERTS)}
    assert "code=502" in log and "code=200" in log
