"""procs.py: run the real gateway daemon and a real Alertmanager as child processes in tests.

Owns: writing their config files into the test's tmp_path, starting them, waiting
(bounded) until they are ready, and stopping them by PID — SIGTERM, then SIGKILL.
Output goes to log files in tmp_path, and any failure to start raises with that log.
Must not: assert anything about the gateway's behaviour (tests do that).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import trio

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0  # SIGTERM -> exit, before we SIGKILL
POLL_INTERVAL_S = 0.05  # for things with no event to wait on: a log file, /-/ready
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")  # Debian, upstream

# The daemon logs e.g. `level=info msg=listening url=http://127.0.0.1:40123` (logfmt).
LISTENING_MSG = re.compile(r'(?:^|\s)msg="?listening"?(?:\s|$)')
LISTENING_URL = re.compile(r'(?:^|\s)url="?(https?://[^\s"]+)')


class ProcessFailed(RuntimeError):
    """A child process exited early, never got ready, or would not stop."""


def free_port() -> int:
    """A port that was free a moment ago (for programs that cannot listen on port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def find_alertmanager() -> str | None:
    """Path of the Alertmanager binary on PATH, or None."""
    for name in ALERTMANAGER_NAMES:
        if path := shutil.which(name):
            return path
    return None


def _read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _failure(what: str, log_path: Path) -> ProcessFailed:
    return ProcessFailed(f"{what}; log {log_path}:\n{_read_log(log_path)}")


@asynccontextmanager
async def _child(
    command: Sequence[str], log_path: Path, *, cwd: Path, env: dict[str, str]
) -> AsyncIterator[trio.Process]:
    """Start `command` with stdout+stderr appended to `log_path`; stop it by PID on exit."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        proc = await trio.lowlevel.open_process(
            list(command), stdout=log_fd, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
    finally:
        os.close(log_fd)  # the child has its own copy
    killed = False
    try:
        yield proc
    finally:
        # Shielded: this must run even when the test was cancelled (fail_after expired).
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(STOP_TIMEOUT_S):
                    await proc.wait()
            if proc.returncode is None:
                killed = True
                proc.kill()
                await proc.wait()
    if killed:  # only reached when the body raised nothing
        raise _failure(
            f"{command[0]} (pid {proc.pid}) ignored SIGTERM for {STOP_TIMEOUT_S}s", log_path
        )


# -- the gateway daemon ----------------------------------------------------------------


@dataclass
class Gateway:
    url: str  # e.g. "http://127.0.0.1:40123", from the daemon's `msg=listening` log line
    proc: trio.Process
    log_path: Path

    def log_text(self) -> str:
        return _read_log(self.log_path)

    async def wait_for_log(self, text: str, *, count: int = 1) -> str:
        """Wait until the log holds `text` at least `count` times; returns the log.
        A log file offers no event to wait on, so this polls (callers add fail_after)."""
        while (log := self.log_text()).count(text) < count:  # noqa: ASYNC110
            await trio.sleep(POLL_INTERVAL_S)
        return log


@asynccontextmanager
async def open_gateway(
    tmp_path: Path,
    config_text: str,
    *,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[Gateway]:
    """Run `python -m gateway run --config tmp_path/gateway.yaml *args` until the block ends.

    The config should listen on `127.0.0.1:0`; the real URL is read from the log.
    """
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(config_text, encoding="utf-8")
    log_path = tmp_path / "gateway.log"
    command = [sys.executable, "-m", "gateway", "run", "--config", str(config_path), *args]
    # Run this checkout's gateway/ whatever is installed (an editable install made before
    # gateway/__init__.py existed imports it as a namespace package), and unbuffered so the
    # log file shows the listening line at once.
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    child_env = {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1", **(env or {})}
    async with _child(command, log_path, cwd=tmp_path, env=child_env) as proc:
        url = await _wait_listening(proc, log_path)
        yield Gateway(url=url, proc=proc, log_path=log_path)


async def _wait_listening(proc: trio.Process, log_path: Path) -> str:
    with trio.move_on_after(READY_TIMEOUT_S):
        while True:
            for line in _read_log(log_path).splitlines():
                if LISTENING_MSG.search(line) and (match := LISTENING_URL.search(line)):
                    return match.group(1)
            if proc.poll() is not None:
                raise _failure(f"gateway exited with {proc.returncode} before listening", log_path)
            await trio.sleep(POLL_INTERVAL_S)
    raise _failure(f"gateway logged no msg=listening within {READY_TIMEOUT_S}s", log_path)


# -- Alertmanager ------------------------------------------------------------------------


@dataclass
class Alertmanager:
    url: str
    proc: trio.Process
    log_path: Path
    client: httpx.AsyncClient

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does; raises on a non-2xx answer."""
        response = await self.client.post(f"{self.url}/api/v2/alerts", json=alerts)
        response.raise_for_status()

    def log_text(self) -> str:
        return _read_log(self.log_path)


def rfc3339(moment: datetime) -> str:
    """An aware datetime as Alertmanager's API writes times: "2024-05-01T12:00:00.000Z"."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alertmanager_config(webhook_url: str, http_config: dict[str, Any] | None = None) -> str:
    """One route, one webhook receiver, short group timers so tests run in seconds.
    ``http_config`` is the receiver's (credentials, TLS), as in alertmanager.yml."""
    receiver: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
    if http_config:
        receiver["http_config"] = http_config
    config = {
        "route": {
            "receiver": "gateway",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "gateway",
                "webhook_configs": [receiver],
            }
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@asynccontextmanager
async def open_alertmanager(
    tmp_path: Path,
    webhook_url: str,
    *,
    binary: str | None = None,
    http_config: dict[str, Any] | None = None,
) -> AsyncIterator[Alertmanager]:
    """Run a single (non-clustered) Alertmanager sending every alert to `webhook_url`."""
    binary = binary or find_alertmanager()
    if binary is None:
        raise ProcessFailed(f"none of {ALERTMANAGER_NAMES} is on PATH")
    workdir = tmp_path / "alertmanager"
    (workdir / "data").mkdir(parents=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(alertmanager_config(webhook_url, http_config), encoding="utf-8")
    log_path = workdir / "alertmanager.log"
    url = f"http://{HOST}:{free_port()}"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",  # empty: no gossip, no port 9094, ready at once
        "--log.level=debug",  # logs each notification attempt: useful when a test fails
    ]
    async with (
        _child(command, log_path, cwd=workdir, env=dict(os.environ)) as proc,
        httpx.AsyncClient(trust_env=False, timeout=5.0) as client,
    ):
        await _wait_ready(proc, client, url, log_path)
        yield Alertmanager(url=url, proc=proc, log_path=log_path, client=client)


async def _wait_ready(
    proc: trio.Process, client: httpx.AsyncClient, url: str, log_path: Path
) -> None:
    with trio.move_on_after(READY_TIMEOUT_S):
        while True:
            try:
                if (await client.get(f"{url}/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if proc.poll() is not None:
                raise _failure(f"alertmanager exited with {proc.returncode}", log_path)
            await trio.sleep(POLL_INTERVAL_S)
    raise _failure(f"alertmanager not ready at {url} within {READY_TIMEOUT_S}s", log_path)
