"""daemon.py: run the real gateway daemon in-process (real sockets, no child process) in tests.

Owns: writing the config into the test's tmp_path, starting `Daemon.run` in a nursery with
a fresh metrics registry and its log in tmp_path/log.txt, and stopping it when the block ends.
Must not: assert anything about the gateway's behaviour (tests do that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from prometheus_client import CollectorRegistry

from gateway.daemon import Daemon
from gateway.logs import Logger
from gateway.metrics import Metrics


def log_destination_config(server_yaml: str) -> str:
    """A config listening on 127.0.0.1:0 with `server_yaml` (flow-style YAML, e.g.
    "read_timeout: 1s") added to its server block, and one `log` destination to post to."""
    return (
        f"server: {{address: '127.0.0.1:0', {server_yaml}}}\n"
        "destinations: [{name: log, kind: log, format: text}]\n"
    )


@asynccontextmanager
async def run_daemon(
    tmp_path: Path, config_text: str, *, guard_s: float
) -> AsyncIterator[tuple[Daemon, str]]:
    """Run the daemon on `config_text` (written to tmp_path/gateway.yaml, where a test may
    rewrite it before a reload) until the block ends; yields the daemon and the URL it
    listens on (e.g. "http://127.0.0.1:40123"). Its log goes to tmp_path/log.txt. Start-up,
    the block and the stop together must finish within `guard_s` seconds."""
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text)
    with (tmp_path / "log.txt").open("w") as stream, trio.fail_after(guard_s):
        daemon = Daemon(
            str(path),
            logger=Logger(stream=stream, journal=False),
            metrics=Metrics(CollectorRegistry()),
        )
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            yield daemon, binds[0]
            daemon.stop("test over")
