"""procs.py: start the load test's processes, find their ports, measure them, stop them.

Every child is started with ``subprocess.Popen`` and stopped by its own PID (SIGTERM, then
SIGKILL after a bound). CPU and RSS are read from /proc for a process and its children
(the gateway's supervisor and its workers count as one gateway).
Must not: interpret results (report.py) or decide what to run (run.py).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class StartFailed(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def start(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Child:
    log = workdir / f"{name}.log"
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=child_env
        )
    return Child(name, popen, log)


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_port_file(child: Child, path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            return int(path.read_text())
        if child.popen.poll() is not None:
            break
        time.sleep(0.05)
    raise StartFailed(f"{child.name} did not start; log {child.log}:\n{child.log.read_text()}")


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(child: Child, port: int) -> None:
    """Until GET /ready answers 200 (bounded). With workers, the supervisor's socket is
    bound before any worker serves, so this waits for the first worker; run.py then lets
    the gateway settle before measuring idle RSS."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise StartFailed(f"{child.name} is not ready; log {child.log}:\n{child.log.read_text()}")


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> tuple[float, float, int]:
    """(own cpu s, reaped children cpu s, rss bytes)"""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after ")": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14 ... rss=21
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, reaped, int(fields[21]) * PAGE


def tree_usage(pid: int) -> tuple[float, int, dict[int, int]]:
    """CPU seconds used so far by ``pid`` and its children (live and reaped) and their
    RSS: (cpu_s, total rss bytes, {pid: rss})."""
    cpu, reaped, rss = _stat(pid)
    total_cpu = cpu + reaped
    per = {pid: rss}
    for child in _children_of(pid):
        try:
            c_cpu, c_reaped, c_rss = _stat(child)
        except OSError:
            continue
        total_cpu += c_cpu + c_reaped
        per[child] = c_rss
    return total_cpu, sum(per.values()), per
