"""Full stack: a real Alertmanager notifies the real gateway daemon, which renders a JSON
body and delivers it to the loopback sink — first the firing alert, then its resolution.

Needs the `prometheus-alertmanager` binary (Debian package). Without it the test skips,
unless GATEWAY_REQUIRE_ALERTMANAGER is set (as in CI), where it fails instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from support.procs import open_alertmanager, open_gateway, rfc3339
from support.sink import Sink

pytestmark = pytest.mark.slow

# Alertmanager waits group_wait (1 s) before the first notification and group_interval (1 s)
# before the resolved one; the rest is process start-up. Generous for slow CI machines.
NOTIFY_TIMEOUT_S = 30.0

# Everything the JSON template must escape, and nothing chevron's HTML escaping may touch.
SUMMARY = 'P99 "high" <a> & ünï ✓ \\ done'

TEMPLATE = (
    '{"status": "{{status}}", "alerts": [{{#alerts}}{"name": "{{alertname}}", '
    '"status": "{{status}}", "summary": "{{summary}}"}{{^last}},{{/last}}{{/alerts}}]}'
)


def gateway_config(sink_url: str) -> str:
    # JSON is YAML, and json.dumps gets the quoting of the template right.
    return json.dumps(
        {
            "server": {"address": "127.0.0.1:0"},
            "destinations": [
                {"name": "sink", "url": f"{sink_url}/hook", "format": "json", "template": TEMPLATE}
            ],
        },
        indent=2,
    )


async def wait_for_status(sink: Sink, status: str) -> dict[str, Any]:
    """The first body delivered to /hook whose top-level status is `status`."""
    seen = 0
    while True:
        received = await sink.wait_for(seen + 1, path="/hook")
        for request in received[seen:]:
            assert request.headers.get("content-type", "").startswith("application/json")
            body: dict[str, Any] = json.loads(request.body)  # the gateway must send valid JSON
            if body["status"] == status:
                return body
        seen = len(received)


async def test_alertmanager_firing_and_resolved_arrive_rendered(
    tmp_path: Path, sink: Sink, alertmanager_binary: str
) -> None:
    starts_at = datetime.now(UTC) - timedelta(seconds=60)
    alert = {
        "labels": {"alertname": "E2EHighLatency", "severity": "critical"},
        "annotations": {"summary": SUMMARY},
        "startsAt": rfc3339(starts_at),
    }

    async with (
        open_gateway(tmp_path, gateway_config(sink.url)) as gw,
        open_alertmanager(tmp_path, f"{gw.url}/webhook/sink", binary=alertmanager_binary) as am,
    ):
        await am.post_alerts([alert])
        with trio.fail_after(NOTIFY_TIMEOUT_S):
            firing = await wait_for_status(sink, "firing")
        assert firing == {
            "status": "firing",
            "alerts": [{"name": "E2EHighLatency", "status": "firing", "summary": SUMMARY}],
        }

        await am.post_alerts([{**alert, "endsAt": rfc3339(datetime.now(UTC))}])
        with trio.fail_after(NOTIFY_TIMEOUT_S):
            resolved = await wait_for_status(sink, "resolved")
        assert resolved == {
            "status": "resolved",
            "alerts": [{"name": "E2EHighLatency", "status": "resolved", "summary": SUMMARY}],
        }
