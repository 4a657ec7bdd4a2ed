"""sink.py: the load test's destination — a fast asyncio HTTP/1.1 server on 127.0.0.1.

Counts every delivered alert by key (the fingerprint the driver made unique, which ends in
the alert's status), so duplicates and losses are exact, and counts arrivals per second.
``--delay-ms`` answers late (the ``slow`` scenario); ``--fail-every N`` answers 503 to every
Nth request and does not count it as delivered (``faults``: N=20 is 5%).

    POST <any path>   count the fingerprints in the body; answer 200 (or 503 / late)
    GET  /count       JSON: requests, alerts (cheap; for progress lines)
    GET  /stats       JSON: requests, failed, keys {key: count}, per_second {unix_s: alerts}
    POST /reset       forget everything (between calibration and the measured run)

Must not: know about the gateway's config — it only reads fingerprints out of bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

from .http import MessageProtocol, response

# Keys the driver writes: L<proc>x<seq>-<index>-<status>, inside "fingerprint": "..."
KEY = re.compile(rb'"(L\d+x\d+-\d+-(?:firing|resolved))"')
OK_BODY = b'{"ok":true}'


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.failed = 0
        self.keys: Counter[str] = Counter()
        self.per_second: Counter[int] = Counter()

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "failed": self.failed,
                "keys": self.keys,
                "per_second": self.per_second,
            }
        ).encode()


class SinkProtocol(MessageProtocol):
    def __init__(self, stats: Stats, delay_s: float, fail_every: int) -> None:
        super().__init__()
        self.stats = stats
        self.delay_s = delay_s
        self.fail_every = fail_every

    def bad_stream(self, exc: Exception) -> None:
        assert self.transport is not None
        self.transport.close()

    def message(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        stats = self.stats
        if head.startswith(b"GET /stats"):
            self.transport.write(response(200, stats.as_json()))
            return
        if head.startswith(b"GET /count"):
            alerts = sum(stats.keys.values())
            body = b'{"requests":%d,"alerts":%d}' % (stats.requests, alerts)
            self.transport.write(response(200, body))
            return
        if head.startswith(b"POST /reset"):
            stats.reset()
            self.transport.write(response(200, OK_BODY))
            return
        stats.requests += 1
        if self.fail_every and stats.requests % self.fail_every == 0:
            stats.failed += 1
            answer = response(503, b'{"error":"injected"}', b"Service Unavailable")
        else:
            keys = [k.decode() for k in KEY.findall(body)]
            stats.keys.update(keys)
            stats.per_second[int(time.time())] += len(keys)
            answer = response(200, OK_BODY)
        if self.delay_s:
            asyncio.get_running_loop().call_later(self.delay_s, self._write, answer)
        else:
            self.transport.write(answer)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port_file: Path, delay_s: float, fail_every: int) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SinkProtocol(stats, delay_s, fail_every), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, port_file)  # appears whole
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.port_file, args.delay_ms / 1000, args.fail_every))


if __name__ == "__main__":
    main()
