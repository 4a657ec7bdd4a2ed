"""Split strategies, exactly as the Go gateway's split_alerts / batch_size / parallel_requests:
which alerts travel together, in what order, and how many requests are in flight at once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio

from gateway.config import DestinationConfig
from gateway.dispatch import mode_of, plan_parts
from support.app import build_app

STORM = (Path(__file__).parent / "data" / "storm-250-alerts.json").read_bytes()
STORM_FPS = [a["fingerprint"] for a in json.loads(STORM)["alerts"]]
TEMPLATE = '{"fps": [{{#alerts}}"{{fingerprint}}"{{^last}},{{/last}}{{/alerts}}]}'


@pytest.mark.parametrize(
    ("split", "batch", "parallel", "mode"),
    [
        (False, 0, 0, "single"),
        (False, 10, 8, "single"),
        (True, 0, 0, "sequential"),
        (True, 1, 1, "sequential"),
        (True, 1, 4, "parallel"),
        (True, 10, 1, "batch"),
        (True, 10, 4, "batch-parallel"),
    ],
)
def test_mode_of(split: bool, batch: int, parallel: int, mode: str) -> None:
    cfg = DestinationConfig(
        name="x", url="http://x/", split_alerts=split, batch_size=batch, parallel_requests=parallel
    )
    assert mode_of(cfg) == mode


def test_plan_parts_keeps_order_and_every_alert() -> None:
    from gateway.alertmanager import decode

    alerts = decode(STORM).alerts
    cfg = DestinationConfig(name="x", url="http://x/", split_alerts=True, batch_size=40)
    parts = plan_parts(alerts, cfg)
    assert [len(p) for p in parts] == [40] * 6 + [10]
    assert [a.fingerprint for p in parts for a in p] == STORM_FPS


class Concurrency:
    """A transport whose requests take 1 s (virtual time) and that tracks how many overlap."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.order: list[list[str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.order.append(json.loads(request.content)["fps"])
        self.now += 1
        self.peak = max(self.peak, self.now)
        await trio.sleep(1)
        self.now -= 1
        return httpx.Response(200)


@pytest.mark.parametrize(
    ("options", "requests", "peak", "seconds"),
    [
        ("split_alerts: true", 250, 1, 250),
        ("split_alerts: true\n    parallel_requests: 32", 250, 32, 8),
        ("split_alerts: true\n    batch_size: 100", 3, 1, 3),
        ("split_alerts: true\n    batch_size: 10\n    parallel_requests: 5", 25, 5, 5),
        ("split_alerts: false", 1, 1, 1),
    ],
    ids=["sequential", "parallel-32-not-capped", "batch", "batch-parallel", "single"],
)
async def test_strategies_deliver_every_alert_with_bounded_concurrency(
    autojump_clock: trio.abc.Clock, options: str, requests: int, peak: int, seconds: int
) -> None:
    transport = Concurrency()
    built = build_app(
        f"""
server: {{write_timeout: 10m}}
destinations:
  - name: d
    url: http://sink.test/
    timeout: 10m
    template: '{TEMPLATE}'
    {options}
""",
        httpx.MockTransport(transport),
    )
    started = trio.current_time()
    response = await built.app.test_client().post("/webhook/d", data=STORM)
    assert response.status_code == 200
    assert len(transport.order) == requests
    assert sorted(fp for part in transport.order for fp in part) == sorted(STORM_FPS)
    assert transport.peak == peak
    assert trio.current_time() - started == seconds
    if peak == 1:  # sequential modes keep Alertmanager's order
        assert [fp for part in transport.order for fp in part] == STORM_FPS
