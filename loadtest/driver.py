"""driver.py: one load-driver process — asyncio, raw HTTP/1.1 keep-alive connections.

Why our own driver and not wrk: the report must be exact about losses and duplicates, so
the driver must know which notification got which final answer, and it must re-send a
notification answered 5xx as Alertmanager does (wrk can do neither without a large Lua
script, and gives no latency over time). It stays cheap: bodies are pre-split byte strings
joined with a unique id, responses are framed by hand (``http.py``), and ``run.py`` shows in
every report that the driver against the sink alone is several times faster than the gateway.

Each notification gets the id ``L<proc>x<seq>``; alert i's fingerprint becomes
``<id>-<i>-<status>``, so the sink can count every delivered alert exactly.
Writes one JSON result file; bounded by ``--duration``, ``--max-requests`` and a drain
deadline for re-sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from .http import MessageProtocol, ProtocolError, post, status_of

REPO = Path(__file__).resolve().parents[1]
SAMPLES = {
    "single": "firing-single.json",
    "group": "firing-group-unicode.json",
    "storm": "storm-250-alerts.json",
    "slow": "firing-single.json",
    "faults": "firing-group-unicode.json",
}
MARK = "@@ID@@"
MAX_ATTEMPTS = 10  # re-sends of one notification answered 5xx
RESEND_DELAY_S = 0.05  # Alertmanager backs off; a short pause keeps the run bounded
DRAIN_S = 10.0  # after --duration: time for in-flight requests and re-sends to finish
CONNECT_RETRY_S = 0.05
MAX_LAG_S = 0.5  # --rate: how far behind schedule the driver may catch up


def payload_template(scenario: str) -> tuple[list[bytes], list[str]]:
    """The sample, with fingerprints replaced by a marker: (byte pieces to join with the
    id, the key suffix of every alert)."""
    data = json.loads((REPO / "tests" / "data" / SAMPLES[scenario]).read_text())
    suffixes = []
    for i, alert in enumerate(data["alerts"]):
        suffix = f"{i}-{alert['status']}"
        alert["fingerprint"] = f"{MARK}-{suffix}"
        suffixes.append(suffix)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return [piece.encode() for piece in text.split(MARK)], suffixes


class Connection(MessageProtocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.waiter: asyncio.Future[int] | None = None
        self.closing = False  # the server said "connection: close" (hypercorn does after
        # keep_alive_max_requests): reconnect before the next request instead of failing it

    def message(self, head: bytes, body: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            if b"connection: close" in head.lower():
                self.closing = True
            self.waiter.set_result(status_of(head))

    def bad_stream(self, exc: Exception) -> None:
        self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("closed by server"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pieces, self.suffixes = payload_template(args.scenario)
        self.host = f"127.0.0.1:{args.port}"
        self.seq = 0
        self.sent = 0
        self.codes: dict[int, int] = {}
        self.errors = 0
        self.ok_ids: list[str] = []
        self.failed_ids: list[str] = []  # gave up after MAX_ATTEMPTS or the drain deadline
        self.resends = 0
        self.samples: list[tuple[float, float]] = []  # (answered at unix s, latency ms)
        self.interval = args.procs / args.rate if args.rate else 0.0
        self.next_slot = 0.0

    async def _pace(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        # Slots no connection was free for are made up (bounded), so a brief stall does not
        # lower the rate asked for: the schedule is kept, not restarted from "now".
        slot = max(self.next_slot, now - MAX_LAG_S)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            try:
                _, conn = await loop.create_connection(Connection, "127.0.0.1", self.args.port)
                return conn
            except OSError:
                self.errors += 1
                await asyncio.sleep(CONNECT_RETRY_S)

    async def worker(self, stop_at: float, give_up_at: float) -> None:
        conn = await self._connect()
        args = self.args
        while time.monotonic() < stop_at and self.seq < args.max_requests:
            await self._pace()
            self.seq += 1
            nid = f"L{args.proc}x{self.seq}"
            data = post(args.path, self.host, nid.encode().join(self.pieces))
            attempts = 0
            while True:
                attempts += 1
                self.sent += 1
                started = time.perf_counter()
                try:
                    if conn.transport is None or conn.closing:
                        if conn.transport is not None:
                            conn.transport.close()
                        conn = await self._connect()
                    code = await conn.request(data)
                except (OSError, ProtocolError, ValueError):
                    self.errors += 1
                    conn = await self._connect()
                    code = 0
                else:
                    self.samples.append((time.time(), (time.perf_counter() - started) * 1000))
                    self.codes[code] = self.codes.get(code, 0) + 1
                if 200 <= code < 300:
                    self.ok_ids.append(nid)
                    break
                if (code and code < 500) or attempts >= MAX_ATTEMPTS:
                    self.failed_ids.append(nid)
                    break
                if time.monotonic() > give_up_at:
                    self.failed_ids.append(nid)
                    break
                self.resends += 1
                await asyncio.sleep(RESEND_DELAY_S)
        if conn.transport is not None:
            conn.transport.close()

    async def run(self) -> dict[str, object]:
        start = time.monotonic()
        self.next_slot = start  # --rate's schedule starts now, not 0.5 s in the past
        stop_at = start + self.args.duration
        give_up_at = stop_at + DRAIN_S
        started_unix = time.time()
        await asyncio.gather(
            *(self.worker(stop_at, give_up_at) for _ in range(self.args.concurrency))
        )
        return {
            "proc": self.args.proc,
            "started": started_unix,
            "elapsed_s": time.monotonic() - start,
            "notifications": self.seq,
            "sent": self.sent,
            "codes": self.codes,
            "errors": self.errors,
            "resends": self.resends,
            "ok_ids": self.ok_ids,
            "failed_ids": self.failed_ids,
            "suffixes": self.suffixes,
            "samples": self.samples,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/webhook/load")
    parser.add_argument("--scenario", choices=sorted(SAMPLES), default="single")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16, help="connections of this proc")
    parser.add_argument("--rate", type=float, default=0.0, help="total notifications/s, 0=max")
    parser.add_argument("--procs", type=int, default=1, help="driver processes in total")
    parser.add_argument("--proc", type=int, default=0, help="this process's index")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = asyncio.run(Driver(args).run())
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
