"""supervisor.py: ``server.workers: N`` — N worker processes serving one listening socket.

The process systemd starts stays the one it talks to: it creates and binds the listening
socket, starts N workers (``alertmanager-gateway run --worker-fd FD``) that inherit it (the
kernel spreads accepted connections over them), and

- sends ``READY=1`` once every worker has said it is ready. Each worker gets its own private
  ``NOTIFY_SOCKET`` (an abstract AF_UNIX datagram socket of the supervisor), so a worker's
  ordinary sd_notify calls become messages to the supervisor;
- forwards SIGTERM/SIGINT (drain and stop) and SIGHUP (reload) to every worker, and exits
  once all have exited — 0 after a clean drain. On SIGHUP it sends ``RELOADING=1`` and then
  ``READY=1`` once every worker has answered its reload (``Type=notify-reload``);
- restarts a worker that dies while the gateway is running (after ``RESTART_DELAY_S``,
  doubling up to ``RESTART_DELAY_MAX_S`` while it keeps crashing). A worker that dies before
  the gateway first became ready stops everything instead (a broken config must not loop).

If the supervisor itself is killed (SIGKILL), systemd's default ``KillMode=control-group``
stops the workers with it. (``PR_SET_PDEATHSIG`` cannot do this here: trio forks from a
worker thread, and the signal fires when that *thread* exits — after 10 s idle.)

Per-worker state: everything in a worker's memory is per worker — the runtime and its
outbound connection pools, template cache, metrics (each worker's /metrics shows only its
own counters; a scrape reaches whichever worker accepts it), circuit breakers and the dedup
memory (a retry that lands on another worker is not recognised as one). The spool on disk
is per worker too: ``per_worker_path(base)`` gives ``base/worker-N`` (N from
``$GATEWAY_WORKER_INDEX``), which daemon.py uses for ``spool.path``.
Must not: serve HTTP itself or load templates — workers do all the work.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from . import config as config_mod
from .errors import ConfigError
from .systemd import Notifier, status_line

if TYPE_CHECKING:
    from .logs import Logger

RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 10.0
STABLE_AFTER_S = 30.0  # a worker that ran this long resets the restart delay
LISTEN_BACKLOG = 1024
NOTIFY_MAX_BYTES = 4096
WORKER_INDEX_ENV = "GATEWAY_WORKER_INDEX"


def listen_socket(address: str) -> socket.socket:
    """Bind ``server.address`` ("host:port", ":port" = all interfaces) and listen."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(
        self,
        config_path: str,
        workers: int,
        *,
        logger: Logger,
        worker_args: list[str],
        notify: Notifier | None = None,
    ) -> None:
        self.config_path = config_path
        self.count = workers
        self.logger = logger
        self.worker_args = worker_args  # e.g. --log-level, passed through
        self.notify = notify if notify is not None else Notifier()
        self.procs: dict[int, trio.Process] = {}
        self.ready: set[int] = set()
        self.all_ready = trio.Event()
        self.announced = False  # our own READY=1 went out: relay worker 0's STATUS after it
        self.reloading: set[int] = set()  # workers that have not said READY since SIGHUP
        self.stopping = False
        self.exit_code = 0

    async def run(self, address: str) -> int:
        sock = listen_socket(address)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._signals, nursery)
                if self.notify.watchdog_s:
                    nursery.start_soon(self._watchdog, self.notify.watchdog_s)
                for index in range(self.count):
                    await nursery.start(self._keep_worker, index, sock.fileno(), nursery)
                await self.all_ready.wait()
                self.logger.info(
                    "listening", url=self.url, workers=self.count, config=self.config_path
                )
                self.notify("READY=1\n" + status_line(f"{self.count} workers serving"))
                self.announced = True
        finally:
            sock.close()
        self.logger.info("stopped", workers=self.count)
        return self.exit_code

    def _worker_command(self, fd: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            self.config_path,
            "--worker-fd",
            str(fd),
            *self.worker_args,
        ]

    async def _keep_worker(
        self,
        index: int,
        fd: int,
        nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run worker ``index``; restart it whenever it dies while we are serving."""
        notify_sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"@alertmanager-gateway-{os.getpid()}-{index}-{id(self)}"
        await notify_sock.bind("\0" + name[1:])
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
        env.update({"NOTIFY_SOCKET": name, WORKER_INDEX_ENV: str(index)})
        delay = RESTART_DELAY_S
        with notify_sock:
            nursery.start_soon(self._read_notify, index, notify_sock)
            task_status.started()
            while not self.stopping:
                started = trio.current_time()
                proc = await trio.lowlevel.open_process(
                    self._worker_command(fd), pass_fds=(fd,), env=env
                )
                self.procs[index] = proc
                self.logger.info("worker started", worker=index, pid=proc.pid)
                code = await proc.wait()
                self.ready.discard(index)
                if self.stopping:
                    if code != 0:
                        self.exit_code = 1
                    break
                if not self.all_ready.is_set():
                    self.logger.error("worker exited while starting", worker=index, code=code)
                    self.exit_code = code if code > 0 else 1
                    self.stop_all("a worker failed to start")
                    break
                self.logger.error("worker exited; restarting", worker=index, code=code, in_s=delay)
                await trio.sleep(delay)
                ran_s = trio.current_time() - started
                delay = (
                    RESTART_DELAY_S
                    if ran_s > STABLE_AFTER_S
                    else min(delay * 2, RESTART_DELAY_MAX_S)
                )
            self.procs.pop(index, None)
        if all(i not in self.procs for i in range(self.count)):
            nursery.cancel_scope.cancel(reason="all workers exited")

    async def _read_notify(self, index: int, sock: trio.socket.SocketType) -> None:
        while True:
            data = await sock.recv(NOTIFY_MAX_BYTES)
            lines = data.decode("utf-8", "replace").splitlines()
            if "READY=1" in lines:
                self.ready.add(index)
                if len(self.ready) == self.count and not self.all_ready.is_set():
                    self.all_ready.set()
                if index in self.reloading:
                    self.reloading.discard(index)
                    if not self.reloading:  # systemd's notify-reload: READY ends RELOADING
                        status = next((x for x in lines if x.startswith("STATUS=")), "")
                        self.notify(f"READY=1\n{status}".rstrip())
                    continue
            for line in lines:
                if line.startswith("STATUS=") and index == 0 and self.announced:
                    self.notify(f"{line} ({self.count} workers)")

    def stop_all(self, reason: str) -> None:
        self._forward(signal.SIGTERM)
        if not self.stopping:
            self.stopping = True
            self.logger.info("stopping", reason=reason, workers=self.count)
            self.notify("STOPPING=1\n" + status_line(f"stopping: {reason}"))

    def _forward(self, signum: int) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signum)

    async def _signals(self, nursery: trio.Nursery) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.logger.info("reload: forwarding SIGHUP", workers=len(self.procs))
                    self.reloading = {i for i, p in self.procs.items() if p.returncode is None}
                    if self.reloading:
                        self.notify.reloading()
                    self._forward(signal.SIGHUP)
                else:
                    self.stop_all(signal.Signals(signum).name)

    async def _watchdog(self, interval_s: float) -> None:
        while True:
            self.notify("WATCHDOG=1")
            await trio.sleep(interval_s / 2)


def worker_index(environ: Mapping[str, str] | None = None) -> int | None:
    """This process's worker index under a supervisor, or None when serving alone."""
    value = (os.environ if environ is None else environ).get(WORKER_INDEX_ENV, "")
    return int(value) if value.isdigit() else None


def per_worker_path(base: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a worker keeps state on disk that must not be shared (a spool database):
    ``base/worker-N`` under a supervisor, ``base`` itself when serving alone — so a
    ``workers: 1`` gateway keeps its existing files. Each worker index is one process at a
    time (a restarted worker gets the index, and so the files, of the one it replaces)."""
    index = worker_index(environ)
    return base if index is None else base / f"worker-{index}"


def workers_of(config_path: str) -> int:
    """``server.workers`` from the file, or 1 if the file does not load (the daemon then
    reports the problems itself)."""
    try:
        loaded = config_mod.load_file(config_path)
    except ConfigError:
        return 1
    return loaded.config.server.workers


def run(
    config_path: str,
    workers: int,
    *,
    logger: Logger,
    log_level: str | None = None,
    log_format: str | None = None,
) -> int:
    """The supervisor's ``trio.run``. Logs like its workers: the file's logging settings,
    with --log-level/--log-format winning (and passed on to the workers)."""
    loaded = config_mod.load_file(config_path)
    logging_cfg = loaded.config.logging
    logger.configure(
        level=log_level or logging_cfg.level,
        fmt=log_format or logging_cfg.format,
        secrets=loaded.secrets,
    )
    worker_args = [f"--log-level={log_level}"] if log_level else []
    worker_args += [f"--log-format={log_format}"] if log_format else []
    supervisor = Supervisor(config_path, workers, logger=logger, worker_args=worker_args)
    return trio.run(supervisor.run, loaded.config.server.address)
