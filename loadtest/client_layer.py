"""client_layer.py: what httpx's AsyncClient layer costs above our h11 transport.

    python -m loadtest.client_layer

Sends the same POST to the load-test sink (its own process, 127.0.0.1) N times through
``AsyncClient.request`` and N times straight through ``H11Transport.handle_async_request``,
and prints this process's CPU per request for each (best of two rounds). The difference is
what delivery.py would save by handing prebuilt requests to the transport.
Must not: be part of the gateway.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from gateway.h11pool import H11Transport

from .procs import REPO

REQUESTS = 4000
ROUNDS = 2
BODY = b'{"text": "disk full on db-1"}' * 20
HEADERS = {"User-Agent": "bench", "Content-Type": "application/json"}
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


async def measure(url: str) -> dict[str, float]:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    transport = H11Transport(limits=limits, fallback=httpx.AsyncHTTPTransport())
    best: dict[str, float] = {}
    async with httpx.AsyncClient(transport=transport, timeout=5.0, trust_env=False) as client:
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(REQUESTS):
                response = await client.request("POST", url, headers=HEADERS, content=BODY)
                assert response.status_code == 200
            cost = (time.process_time() - started) / REQUESTS * 1e6
            best["AsyncClient.request"] = min(cost, best.get("AsyncClient.request", cost))
            started = time.process_time()
            for _ in range(REQUESTS):
                request = httpx.Request(
                    "POST", url, headers=HEADERS, content=BODY, extensions={"timeout": TIMEOUTS}
                )
                response = await transport.handle_async_request(request)
                assert response.status_code == 200
            cost = (time.process_time() - started) / REQUESTS * 1e6
            best["transport directly"] = min(cost, best.get("transport directly", cost))
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "sink.port"
        sink = subprocess.Popen(
            [sys.executable, "-m", "loadtest.sink", "--port-file", str(port_file)], cwd=REPO
        )
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}/in"
            for name, us in trio.run(measure, url).items():
                print(f"{name:22} {us:7.1f} µs CPU per request (this process)")
        finally:
            sink.terminate()
            sink.wait(10)


if __name__ == "__main__":
    main()
