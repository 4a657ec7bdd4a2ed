"""floor.py: the framework floor — a bare quart-trio app on hypercorn answering 200 at once.

The same driver runs against this and against the gateway in one invocation; the ratio of
the two is the gateway's own overhead over the stack it is built on. ``--workers N`` runs N
processes sharing one listening socket, like ``server.workers``.
Must not: decode, render or forward anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response
from quart_trio import QuartTrio


def make_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.post("/webhook/<name>")
    async def webhook(name: str) -> Response:
        return Response(b'{"status":"success"}', content_type="application/json")

    return app


async def worker(fd: int) -> None:
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    stop = trio.Event()

    async def on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signal)
        await serve(make_app(), config, shutdown_trigger=stop.wait)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fd", type=int, help="(internal) serve this inherited socket")
    args = parser.parse_args()
    if args.fd is not None:
        trio.run(worker, args.fd)
        return
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    children = []
    import subprocess

    for _ in range(args.workers):
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "loadtest.floor", "--fd", str(sock.fileno())],
                pass_fds=[sock.fileno()],
            )
        )
    assert args.port_file is not None
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    os.replace(tmp, args.port_file)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.wait()


if __name__ == "__main__":
    main()
