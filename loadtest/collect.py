"""collect.py: ``make profile`` — while the gateway is under load, collect a CPU profile
(/debug/profile, speedscope and text), a tracemalloc top list (/debug/memory, traced for
about a second after the profiles), the trio task tree (/debug/tasks) and a /metrics snapshot
into one folder. Runs in a thread beside the load phase.

With ``server.workers > 1`` each request reaches whichever worker accepts it, so the files
describe one worker (named in the /debug/tasks answer's process, not guaranteed the same).
Must not: drive load (driver.py) or judge results (report.py).
"""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

TIMEOUT_S = 180.0
MEMORY_WINDOW_S = 1.0


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body
    finally:
        conn.close()


class Collector(threading.Thread):
    def __init__(self, port: int, duration: float, out_dir: Path) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.duration = duration
        self.out = out_dir / "profile"
        self.out.mkdir(parents=True, exist_ok=True)
        self.errors: list[str] = []

    def _save(self, name: str, path: str) -> None:
        try:
            (self.out / name).write_bytes(_get(self.port, path))
        except (OSError, RuntimeError) as exc:
            self.errors.append(f"{name}: {exc}")

    def run(self) -> None:
        # CPU profile first: tracemalloc slows the process down a lot while it traces.
        time.sleep(min(1.0, self.duration / 4))
        seconds = max(1.0, min(self.duration / 2, 30.0))
        self._save(
            "profile.speedscope.json", f"/debug/profile?seconds={seconds:g}&format=speedscope"
        )
        self._save("profile.txt", f"/debug/profile?seconds={min(seconds, 3.0):g}&format=text")
        self._save("tasks.json", "/debug/tasks")
        self._save("memory-start.json", "/debug/memory")  # starts tracemalloc
        time.sleep(MEMORY_WINDOW_S)
        self._save("memory-top.json", "/debug/memory?limit=40")
        self._save("memory-stop.json", "/debug/memory?stop=1")
        self._save("metrics.txt", "/metrics")
        (self.out / "README.txt").write_text(
            "profile.speedscope.json: open in https://www.speedscope.app (drag and drop)\n"
            "profile.txt: pyinstrument text tree; memory-top.json: tracemalloc top list\n"
            "tasks.json: trio task tree under load; metrics.txt: /metrics at the end\n"
            + "".join(f"error: {e}\n" for e in self.errors)
        )
