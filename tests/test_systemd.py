"""sd_notify against the real daemon process: a real datagram socket as $NOTIFY_SOCKET
(a path in tmp_path, and an abstract one), real signals, the exact message sequence."""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from support.procs import Gateway, open_gateway
from support.sink import Behaviour, Sink

GUARD_S = 30
GROUP = (Path(__file__).parent / "data" / "firing-group-unicode.json").read_bytes()
CONFIG = """
server: {address: "127.0.0.1:0", drain_timeout: 5s}
destinations:
  - name: log
    kind: log
    format: text
  - name: second
    kind: log
    format: text
"""

pytestmark = pytest.mark.slow


class Listener:
    """The systemd side: one datagram per notification."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.messages: list[str] = []

    async def next(self, *, skip_watchdog: bool = True) -> str:
        while True:
            data = await self.sock.recv(65536)
            message = data.decode()
            self.messages.append(message)
            if skip_watchdog and message == "WATCHDOG=1":
                continue
            if skip_watchdog and message.startswith("STATUS=") and "\n" not in message:
                continue  # a periodic STATUS refresh, not a state change
            return message


@asynccontextmanager
async def notify_socket(address: str) -> AsyncIterator[Listener]:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.bind(address)
        yield Listener(sock)


def fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.splitlines())


async def reload_and_expect(gw: Gateway, listener: Listener) -> tuple[dict[str, str], int, int]:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    gw.proc.send_signal(signal.SIGHUP)
    reloading = fields(await listener.next())
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert set(reloading) == {"RELOADING", "MONOTONIC_USEC"}
    assert reloading["RELOADING"] == "1"
    return reloading, before, after


async def test_notify_sequence_start_reload_failed_reload_stop(tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with notify_socket(str(tmp_path / "notify.sock")) as listener:
            env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
            async with open_gateway(tmp_path, CONFIG, env=env) as gw:
                ready = fields(await listener.next())
                assert ready == {
                    "READY": "1",
                    "STATUS": "serving 2 destination(s), 0 in flight, queue depth 0",
                }

                # A good reload: RELOADING=1 with our CLOCK_MONOTONIC, then READY=1.
                config_path = tmp_path / "gateway.yaml"
                config_path.write_text(CONFIG.replace("  - name: second\n", "  - name: other\n"))
                reloading, before, after = await reload_and_expect(gw, listener)
                assert before <= int(reloading["MONOTONIC_USEC"]) <= after
                assert fields(await listener.next()) == ready

                # A failed reload still ends with READY=1, and STATUS= says why.
                config_path.write_text(CONFIG + "  - name: log\n    kind: log\n")
                await reload_and_expect(gw, listener)
                failed = fields(await listener.next())
                assert failed["READY"] == "1"
                assert failed["STATUS"] == (
                    "serving 2 destination(s), 0 in flight, queue depth 0; reload failed, "
                    "kept the running config: destinations[2].name: duplicate of destinations[0]"
                )
                async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
                    response = await client.post("/webhook/other", content=GROUP)
                    assert response.status_code == 200  # the first reload's config serves

                gw.proc.send_signal(signal.SIGTERM)
                stopping = fields(await listener.next())
                assert stopping == {"STOPPING": "1", "STATUS": "stopping: SIGTERM"}
                assert await gw.proc.wait() == 0
    # Nothing but watchdog-free state changes were sent, in exactly this order.
    kinds = [m.splitlines()[0].split("=")[0] for m in listener.messages]
    assert kinds == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"]


async def test_abstract_socket_and_watchdog_pings(tmp_path: Path) -> None:
    name = f"alertmanager-gateway-test-{os.getpid()}-{tmp_path.name}"
    with trio.fail_after(GUARD_S):
        async with notify_socket("\0" + name) as listener:
            # WATCHDOG_USEC=0.4s: the daemon pings every 0.2s from its event loop.
            env = {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000"}
            async with open_gateway(tmp_path, CONFIG, env=env) as gw:
                pings = 0
                saw_ready = False
                while pings < 3 or not saw_ready:
                    message = await listener.next(skip_watchdog=False)
                    pings += message == "WATCHDOG=1"
                    saw_ready = saw_ready or message.startswith("READY=1")
                gw.proc.send_signal(signal.SIGTERM)
                assert await gw.proc.wait() == 0
    # The watchdog task pings once as soon as it starts, before the server is listening.
    assert listener.messages.index("WATCHDOG=1") < next(
        i for i, m in enumerate(listener.messages) if m.startswith("READY=1")
    )


async def test_watchdog_pid_of_another_process_means_no_pings(tmp_path: Path) -> None:
    with trio.fail_after(GUARD_S):
        async with notify_socket(str(tmp_path / "n.sock")) as listener:
            env = {
                "NOTIFY_SOCKET": str(tmp_path / "n.sock"),
                "WATCHDOG_USEC": "200000",
                "WATCHDOG_PID": "1",  # the watchdog is meant for PID 1, not for us
            }
            async with open_gateway(tmp_path, CONFIG, env=env) as gw:
                assert (await listener.next()).startswith("READY=1")
                gw.proc.send_signal(signal.SIGTERM)
                assert (await listener.next()).startswith("STOPPING=1")
                assert await gw.proc.wait() == 0
    # With the watchdog on, the first ping comes before READY (test above); here none came.
    assert "WATCHDOG=1" not in listener.messages


async def test_status_counts_webhooks_in_flight(tmp_path: Path, sink: Sink) -> None:
    sink.behave("/slow", Behaviour(delay_s=2.0))
    config = f"""
server: {{address: "127.0.0.1:0"}}
destinations:
  - name: slow
    url: "{sink.url}/slow"
"""
    with trio.fail_after(GUARD_S):
        async with notify_socket(str(tmp_path / "notify.sock")) as listener:
            env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
            async with open_gateway(tmp_path, config, env=env) as gw:
                assert fields(await listener.next())["STATUS"].startswith(
                    "serving 1 destination(s), 0 in flight"
                )
                async with (
                    httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=20) as client,
                    trio.open_nursery() as nursery,
                ):
                    nursery.start_soon(
                        functools.partial(client.post, "/webhook/slow", content=GROUP)
                    )
                    await sink.wait_for(1)
                    # The READY after a reload carries the summary of that moment.
                    await reload_and_expect(gw, listener)
                    status = fields(await listener.next())["STATUS"]
                    assert status == "serving 1 destination(s), 1 in flight, queue depth 0"


async def test_credentials_from_systemd_load_credential(tmp_path: Path) -> None:
    # What LoadCredential= does: files in a private directory named by $CREDENTIALS_DIRECTORY.
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "admin-token").write_text("cred-admin-token-123456\n")
    config = CONFIG.replace(
        "drain_timeout: 5s}", 'drain_timeout: 5s, admin: {bearer_tokens: ["${cred:admin-token}"]}}'
    )
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, config, env={"CREDENTIALS_DIRECTORY": str(creds)}) as gw:
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
                wrong = await client.get("/api/v1/info", headers={"Authorization": "Bearer x"})
                assert wrong.status_code == 401
                right = await client.get(
                    "/api/v1/info", headers={"Authorization": "Bearer cred-admin-token-123456"}
                )
                assert right.status_code == 200
            gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0
    assert "cred-admin-token-123456" not in gw.log_text() + right.text
