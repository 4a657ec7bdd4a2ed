"""server.workers: 2 — a real supervisor with two real worker processes on one socket:
they serve, READY=1 comes once both are up, SIGTERM stops all, a killed worker comes back."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest
import trio

from gateway.spool_db import DB_NAME
from support.procs import open_gateway
from support.sink import Sink

REPO = Path(__file__).resolve().parent.parent
SINGLE = (REPO / "tests" / "data" / "firing-single.json").read_bytes()
GUARD_S = 30
READY_LINE = "workers=2"  # the supervisor's own msg=listening line
WORKER_PID = re.compile(r'msg="worker started" worker=(\d) pid=(\d+)')

pytestmark = pytest.mark.slow


def config(sink: Sink) -> str:
    return f"""
server: {{address: "127.0.0.1:0", workers: 2}}
destinations:
  - name: sink
    url: "{sink.url}/hook"
"""


def worker_pids(log: str) -> dict[int, int]:
    """The latest PID of each worker index."""
    return {int(i): int(pid) for i, pid in WORKER_PID.findall(log)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def notification(n: int) -> bytes:
    """The single-alert sample as notification n: its own fingerprint, so no dedup memory
    takes it for a repeat of another."""
    payload = json.loads(SINGLE)
    payload["alerts"][0]["fingerprint"] = f"supervisor{n:04d}"
    return json.dumps(payload).encode()


async def post_many(url: str, count: int) -> list[int]:
    # No keep-alive: every request is a new connection the kernel may give to either worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10, limits=limits) as c:
        return [
            (await c.post("/webhook/sink", content=notification(n))).status_code
            for n in range(count)
        ]


async def test_two_workers_serve_notify_ready_once_and_stop_on_sigterm(
    sink: Sink, tmp_path: Path
) -> None:
    notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notify.bind(str(tmp_path / "notify.sock"))
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    with notify, trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, config(sink), env=env) as gw:
            await gw.wait_for_log(READY_LINE)
            message = (await notify.recv(4096)).decode()
            assert message.startswith("READY=1\nSTATUS=2 workers serving")
            pids = worker_pids(gw.log_text())
            assert sorted(pids) == [0, 1] and all(alive(p) for p in pids.values())

            assert await post_many(gw.url, 20) == [200] * 20
            assert len(await sink.wait_for(20)) == 20

            gw.proc.send_signal(signal.SIGHUP)  # reaches every worker
            await gw.wait_for_log("msg=reloaded", count=2)
            assert (await notify.recv(4096)).decode().startswith("RELOADING=1")
            assert (await notify.recv(4096)).decode().startswith("READY=1")

            gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0
            assert (await notify.recv(4096)).decode().startswith("STOPPING=1")
    log = gw.log_text()
    assert log.count("msg=stopped") == 3  # two workers, then the supervisor
    # The journal interleaves the workers' lines: each says which worker wrote it.
    stopped = [line for line in log.splitlines() if "msg=stopped" in line]
    assert sum(" worker=0" in line for line in stopped) == 1
    assert sum(" worker=1" in line for line in stopped) == 1
    delivered = [line for line in log.splitlines() if "msg=delivered" in line]
    assert delivered and all(re.search(r" worker=[01]( |$)", line) for line in delivered)
    assert not any(alive(p) for p in pids.values())


async def test_a_killed_worker_is_restarted_and_serving_goes_on(sink: Sink, tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, config(sink)) as gw:
            await gw.wait_for_log(READY_LINE)
            before = worker_pids(gw.log_text())
            os.kill(before[0], signal.SIGKILL)
            log = await gw.wait_for_log('msg="worker started" worker=0', count=2)
            assert "worker exited; restarting" in log
            after = worker_pids(log)
            assert after[0] != before[0] and after[1] == before[1]
            await gw.wait_for_log("msg=listening", count=4)  # 2 + supervisor + the new one
            assert await post_many(gw.url, 10) == [200] * 10


def test_state_on_disk_is_per_worker_only_under_a_supervisor(tmp_path: Path) -> None:
    from gateway.supervisor import per_worker_path

    assert per_worker_path(tmp_path, {}) == tmp_path  # workers: 1 keeps its old files
    assert per_worker_path(tmp_path, {"GATEWAY_WORKER_INDEX": "1"}) == tmp_path / "worker-1"


async def test_each_worker_keeps_its_own_spool(sink: Sink, tmp_path: Path) -> None:
    state = tmp_path / "state"
    config_text = f"""
server: {{address: "127.0.0.1:0", workers: 2}}
spool: {{path: "{state}"}}
destinations:
  - name: sink
    url: "{sink.url}/hook"
    delivery: async
"""
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, config_text) as gw:
            await gw.wait_for_log(READY_LINE)
            assert await post_many(gw.url, 10) == [202] * 10
            await sink.wait_for(10)
    spools = sorted(p.relative_to(state).as_posix() for p in state.rglob(DB_NAME))
    assert spools and all(re.fullmatch(rf"worker-[01]/{DB_NAME}", p) for p in spools), spools


async def test_post_reload_reaches_every_worker(sink: Sink, tmp_path: Path) -> None:
    admin = {"Authorization": "Bearer workers-admin-token"}
    text = config(sink).replace(
        "workers: 2}", "workers: 2, admin: {bearer_tokens: [workers-admin-token]}}"
    )
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, text) as gw:
            await gw.wait_for_log(READY_LINE)
            (tmp_path / "gateway.yaml").write_text(text.replace("name: sink", "name: renamed"))
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=10) as c:
                assert (await c.post("/-/reload", headers=admin)).status_code == 200
            # The worker that took the request reloaded, then the supervisor had both reload.
            await gw.wait_for_log("msg=reloaded", count=3)
            limits = httpx.Limits(max_keepalive_connections=0)  # connections to either worker
            async with httpx.AsyncClient(
                base_url=gw.url, trust_env=False, timeout=10, limits=limits
            ) as c:
                codes = [
                    (await c.post("/webhook/renamed", content=notification(n))).status_code
                    for n in range(20)
                ]
    assert codes == [200] * 20
