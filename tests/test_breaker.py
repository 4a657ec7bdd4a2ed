"""The circuit breaker as Alertmanager and an operator see it: 503 + Retry-After at once
while open (nothing sent), a probe after open_duration, metrics, the reset endpoint, and
its state surviving a config reload."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry

from gateway import config, runtime
from gateway.daemon import Daemon
from gateway.logs import Logger
from gateway.metrics import Metrics
from support.app import Built, build_app

SINGLE = (Path(__file__).parent / "data" / "firing-single.json").read_bytes()
# Admin routes (/api/...) need the admin credentials (auth.py, by path prefix).
ADMIN = {"Authorization": "Bearer test-admin-token"}
CONFIG = """
server: {address: "127.0.0.1:0", admin: {bearer_tokens: [test-admin-token]}}
defaults:
  retry: {max_attempts: 1}
  breaker: {failure_threshold: 3, open_duration: 10s, half_open_probes: 1}
destinations:
  - name: hook
    url: http://sink.test/hook
  - name: ratio
    url: http://sink.test/ratio
    breaker: {failure_threshold: 100, failure_ratio: 0.5, window: 4, open_duration: 1m}
"""


class Switch:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200 if self.up else 503)


def make() -> tuple[Built, Switch]:
    switch = Switch()
    return build_app(CONFIG, httpx.MockTransport(switch)), switch


def notification(n: int) -> bytes:
    """A distinct notification (else dedup answers the repeats without sending)."""
    body = SINGLE.replace(b'"groupKey":"', b'"groupKey":"%d-' % n, 1)
    assert body != SINGLE
    return body


async def post(
    built: Built, path: str, method: str = "POST", body: bytes = SINGLE
) -> tuple[int, Any, Any]:
    response = await built.app.test_client().open(path, method=method, data=body, headers=ADMIN)
    return response.status_code, await response.get_json(), response.headers


async def test_opens_answers_503_without_sending_then_recovers(
    autojump_clock: trio.abc.Clock,
) -> None:
    built, switch = make()
    for _ in range(3):
        assert (await post(built, "/webhook/hook"))[0] == 502
    assert switch.calls == 3
    assert built.sample("gateway_breaker_state", destination="hook") == 1
    assert "transition=closed->open" in built.log_text()

    await trio.sleep(4)
    code, body, headers = await post(built, "/webhook/hook")
    assert code == 503
    assert headers["Retry-After"] == "6"
    assert "circuit open" in body["error"]
    assert switch.calls == 3  # the destination was not called

    await trio.sleep(6)  # open_duration over: one probe goes through
    code, _, _ = await post(built, "/webhook/hook")
    assert code == 502  # the probe failed: open again, for another 10s
    assert switch.calls == 4
    assert (await post(built, "/webhook/hook"))[0] == 503

    await trio.sleep(10)
    switch.up = True
    assert (await post(built, "/webhook/hook"))[0] == 200
    assert built.sample("gateway_breaker_state", destination="hook") == 0
    for state, count in (("open", 2), ("half_open", 2), ("closed", 1)):
        sample = built.sample("gateway_breaker_transitions_total", destination="hook", state=state)
        assert sample == count, state


async def test_failure_ratio_over_a_window(autojump_clock: trio.abc.Clock) -> None:
    built, switch = make()
    outcomes = []
    for n, up in enumerate((True, False, True, False)):  # 2 of 4 failed: ratio 0.5 reached
        switch.up = up
        outcomes.append((await post(built, "/webhook/ratio", body=notification(n)))[0])
    assert outcomes == [200, 502, 200, 502]
    switch.up = True
    assert (await post(built, "/webhook/ratio"))[0] == 503


async def test_reset_endpoint_closes_it(autojump_clock: trio.abc.Clock) -> None:
    built, switch = make()
    for _ in range(3):
        await post(built, "/webhook/hook")
    code, body, _ = await post(built, "/api/v1/destinations/hook/breaker", method="GET")
    assert (code, body["state"]) == (200, "open")
    switch.up = True
    code, body, _ = await post(built, "/api/v1/destinations/hook/breaker/reset")
    assert (code, body) == (200, {"destination": "hook", "state": "closed"})
    assert (await post(built, "/webhook/hook"))[0] == 200
    assert (await post(built, "/api/v1/destinations/nope/breaker/reset"))[0] == 404


async def test_state_survives_a_reload(autojump_clock: trio.abc.Clock) -> None:
    built, switch = make()
    for _ in range(3):
        await post(built, "/webhook/hook")
    # What the daemon does on SIGHUP: build a new runtime, swap it, re-configure the guards.
    loaded = config.load_text(
        CONFIG.replace("open_duration: 10s", "open_duration: 20s"), environ={}
    )
    built.state.runtime = runtime.build(loaded, transport=httpx.MockTransport(switch))
    built.state.guards.configure(loaded.config)
    code, _, headers = await post(built, "/webhook/hook")
    assert code == 503
    assert headers["Retry-After"] == "20"  # same breaker, new open_duration
    assert switch.calls == 3


async def test_a_real_sighup_reload_keeps_the_open_breaker(tmp_path: Path) -> None:
    """The daemon's own reload path: the destination whose name persists keeps its breaker;
    a renamed one starts closed."""
    text = CONFIG.replace("server: {", f"spool: {{path: '{tmp_path}'}}\nserver: {{")
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    switch = Switch()
    daemon = Daemon(
        str(path),
        logger=Logger(stream=io.StringIO(), journal=False),
        metrics=Metrics(CollectorRegistry()),
        transport=httpx.MockTransport(switch),
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            async with httpx.AsyncClient(base_url=binds[0], trust_env=False) as client:
                for n in range(3):
                    response = await client.post("/webhook/hook", content=notification(n))
                    assert response.status_code == 502
                path.write_text(text.replace("name: ratio", "name: renamed"))
                assert await daemon.reload() is None
                response = await client.post("/webhook/hook", content=notification(9))
                assert response.status_code == 503
                assert switch.calls == 3
                switch.up = True
                response = await client.post("/webhook/renamed", content=notification(9))
                assert response.status_code == 200
            daemon.stop("test over")
