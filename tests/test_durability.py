"""Fault injection against real sockets: a loopback sink that fails, rate-limits, resets,
hangs and answers slowly; the real gateway process killed with -9 while its spool is full.
Every test counts what arrived: nothing accepted may be lost."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from support.app import build_app
from support.procs import open_gateway
from support.sink import Behaviour, Sink

DATA = Path(__file__).parent / "data"
SINGLE = (DATA / "firing-single.json").read_bytes()
GUARD_S = 30.0


def notification(n: int) -> bytes:
    body = SINGLE.replace(b'"groupKey":"', b'"groupKey":"n%d-' % n, 1)
    assert body != SINGLE
    return body


def groups(sink: Sink, path: str) -> Counter[str]:
    return Counter(json.loads(r.body)["group"] for r in sink.for_path(path))


def config(sink: Sink, state: Path | None = None, **dest: str) -> str:
    options = "".join(f"\n    {k}: {v}" for k, v in dest.items())
    spool = f"spool: {{path: '{state}', workers: 2}}\n" if state else ""
    return f"""
server: {{address: "127.0.0.1:0", drain_timeout: 5s}}
{spool}defaults:
  retry: {{max_attempts: 4, initial_delay: 10ms, max_delay: 100ms}}
destinations:
  - name: d
    url: "{sink.url}/hook"
    template: '{{"group": "{{{{groupKey}}}}"}}'{options}
"""


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(fail_first=2, fail_status=503),
        Behaviour(fail_first=2, fail_status=429, fail_headers={"Retry-After": "0"}),
        Behaviour(fail_first=1, fail_status=200, fail_body=b"error: throttled"),
        Behaviour(fail_first=2, fail_reset=True),
        Behaviour(fail_first=1, fail_hang=True),
        Behaviour(fail_first=1, delay_s=0.05),  # every answer slow; the first is a 503
    ],
    ids=["503", "429-retry-after", "200-error-body", "reset", "hang", "slow"],
)
async def test_transient_faults_deliver_every_alert_once(sink: Sink, behaviour: Behaviour) -> None:
    sink.behave("/hook", behaviour)
    # attempt_timeout lets a hung attempt end early enough to retry within the 5s deadline.
    text = config(sink, success_body="{contains: ok}", timeout="5s")
    built = build_app(text.replace("max_delay: 100ms", "max_delay: 100ms, attempt_timeout: 300ms"))
    client = built.app.test_client()
    with trio.fail_after(GUARD_S):
        for n in range(5):
            response = await client.post("/webhook/d", data=notification(n))
            assert response.status_code == 200, await response.get_json()
    delivered = groups(sink, "/hook")
    # Each failure answer was for notification 0; every notification arrived, the failed
    # attempts plus exactly one success each.
    assert len(delivered) == 5
    assert len(sink.for_path("/hook")) == 5 + behaviour.fail_first
    await built.state.runtime.aclose()


async def test_a_cancelled_delivery_never_breaks_the_pool(sink: Sink) -> None:
    """httpcore #1093: requests cancelled by their deadline while a tiny pool is busy must not
    leave the pool unusable. 20 deliveries to a sink slower than their deadline, then fast
    ones must still succeed."""
    sink.behave("/hook", Behaviour(delay_s=3.0))
    text = config(
        sink,
        timeout="1s",  # generous for the fast deliveries on a loaded machine
        pool="{max_connections: 2, max_keepalive_connections: 2}",
        breaker="{enabled: false}",
    )
    built = build_app(text.replace("max_attempts: 4", "max_attempts: 1"))
    client = built.app.test_client()
    codes: list[int] = []

    async def send(n: int) -> None:
        codes.append((await client.post("/webhook/d", data=notification(n))).status_code)

    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(send, n)
        assert set(codes) <= {502, 504}
        sink.behave("/hook", Behaviour())
        for n in range(100, 105):
            response = await client.post("/webhook/d", data=notification(n))
            assert response.status_code == 200, await response.get_json()
    await built.state.runtime.aclose()


@pytest.mark.slow
async def test_async_spool_survives_kill_9_and_delivers_everything_after_restart(
    sink: Sink, tmp_path: Path
) -> None:
    count = 30
    sink.behave("/hook", Behaviour(delay_s=0.3))  # slow: most entries still wait at the kill
    text = config(sink, tmp_path / "state", delivery="async")
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, text) as gw:
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
                codes: list[int] = []

                async def send(n: int) -> None:
                    response = await client.post("/webhook/d", content=notification(n))
                    codes.append(response.status_code)

                async with trio.open_nursery() as nursery:
                    for n in range(count):
                        nursery.start_soon(send, n)
            assert codes == [202] * count
            await sink.wait_for(2, path="/hook")
            gw.proc.send_signal(signal.SIGKILL)
            await gw.proc.wait()
        delivered_before = len(groups(sink, "/hook"))
        assert delivered_before < count

        sink.behave("/hook", Behaviour())
        async with open_gateway(tmp_path, text) as gw:
            while len(groups(sink, "/hook")) < count:
                await sink.wait_for(len(sink.for_path("/hook")) + 1, path="/hook")
            log = gw.log_text()
    delivered = groups(sink, "/hook")
    assert set(delivered) == {json.loads(notification(n))["groupKey"] for n in range(count)}
    # At-least-once: only what was in flight at the kill (2 workers) may arrive twice.
    assert sum(delivered.values()) - count <= 2
    assert 'msg="spool opened"' in log or "msg=spool opened" in log


@pytest.mark.slow
async def test_sigterm_under_load_finishes_spooled_deliveries_in_flight_and_keeps_the_rest(
    sink: Sink, tmp_path: Path
) -> None:
    count = 10
    sink.behave("/hook", Behaviour(delay_s=0.5))
    text = config(sink, tmp_path / "state", delivery="async", timeout="5s")
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, text) as gw:
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
                for n in range(count):
                    response = await client.post("/webhook/d", content=notification(n))
                    assert response.status_code == 202
            await sink.wait_for(1, path="/hook")
            gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0
        before = len(groups(sink, "/hook"))
        assert before < count  # the rest stayed in the spool
        sink.behave("/hook", Behaviour())
        async with open_gateway(tmp_path, text):
            while len(groups(sink, "/hook")) < count:
                await sink.wait_for(len(sink.for_path("/hook")) + 1, path="/hook")
    delivered = groups(sink, "/hook")
    assert len(delivered) == count
    # The deliveries in flight at SIGTERM finished (and left the spool): none is repeated.
    assert set(delivered.values()) == {1}
