"""daemon.py: the nursery tree, signals, start/stop order and the reload swap.

    trio.run(daemon.run)
    └─ runtime (outbound httpx clients, closed last)
       └─ core nursery: spool workers, template-cache cleanup, watchdog, retiring old runtimes
          └─ edge nursery: hypercorn.trio.serve(app, shutdown_trigger=...), signal loop

Nesting order is shutdown order. SIGTERM/SIGINT: STOPPING=1, /ready turns 503, hypercorn
stops accepting and gives in-flight requests ``server.drain_timeout`` to finish, then the
clients are closed and ``run`` returns (exit 0). SIGHUP: load and build a new runtime; swap
only if everything validated and compiled, else keep the old one and say why.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from . import config as config_mod
from . import runtime as runtime_mod
from . import spool as spool_mod
from .errors import ConfigError
from .supervisor import per_worker_path
from .systemd import Notifier, status_line
from .web import AppState, create_app

if TYPE_CHECKING:
    import httpx
    from quart_trio import QuartTrio

    from .logs import Logger
    from .metrics import Metrics

CACHE_CLEANUP_INTERVAL_S = 60.0
# What hypercorn and the app were built with at start; a reload cannot change these (the
# rest of `server` -- auth, admin, limits, lockout, proxies -- is read per request).
RESTART_ONLY_SETTINGS = (
    "address",
    "tls",
    "read_timeout",
    "max_body_bytes",
    "max_header_bytes",
    "keep_alive_timeout",
    "drain_timeout",
)
STATUS_INTERVAL_S = 5.0  # how often STATUS= is refreshed (only sent when it changed)


class _ToLogger(logging.Handler):
    """Routes hypercorn's stdlib log records into our one-line format."""

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        if record.levelno < logging.WARNING:
            level = "debug"
        self._logger.log(level, record.getMessage(), logger=record.name)


def bind_address(address: str) -> str:
    """Go's ":8080" means all interfaces; hypercorn wants a host."""
    return "0.0.0.0" + address if address.startswith(":") else address


def hypercorn_config(state: AppState) -> HypercornConfig:
    server = state.runtime.config.server
    hc = HypercornConfig()
    hc.bind = [bind_address(server.address)]
    hc.graceful_timeout = float(server.drain_timeout)
    hc.read_timeout = max(1, round(float(server.read_timeout)))
    # Slow or oversized requests: read_timeout closes a connection that sends nothing for
    # that long (headers included); Quart's BODY_TIMEOUT (web.py) bounds reading a body;
    # keep_alive_timeout closes idle keep-alive connections; the header limits answer a
    # larger header block with 431/400.
    hc.h11_max_incomplete_size = int(server.max_header_bytes)
    hc.h2_max_header_list_size = int(server.max_header_bytes)
    hc.keep_alive_timeout = float(server.keep_alive_timeout)
    if server.tls is not None:
        hc.certfile = server.tls.cert_file
        hc.keyfile = server.tls.key_file
        if server.tls.client_ca_file:
            hc.ca_certs = server.tls.client_ca_file
            hc.verify_mode = ssl.CERT_REQUIRED  # mTLS: no client certificate, no handshake
    hc.accesslog = None  # web.py writes its own access line
    errlog = logging.getLogger("hypercorn.error")
    errlog.handlers = [_ToLogger(state.logger)]
    errlog.propagate = False
    errlog.setLevel(logging.WARNING)
    hc.errorlog = errlog
    return hc


class Daemon:
    def __init__(
        self,
        config_path: str,
        *,
        logger: Logger,
        metrics: Metrics,
        notify: Notifier | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
        listen_fd: int | None = None,
    ) -> None:
        self.config_path = config_path
        # A worker of supervisor.py serves the socket it inherited instead of binding.
        self.listen_fd = listen_fd
        # Command-line --log-level/--log-format win over the file, also across reloads.
        self.log_level = log_level
        self.log_format = log_format
        self.logger = logger
        self.metrics = metrics
        self.notify = notify if notify is not None else Notifier()
        self.transport = transport
        self.stopping = trio.Event()
        self.state: AppState | None = None
        self.last_reload: dict[str, object] = {}
        # Work accepted but not yet delivered; a durable queue plugs its size in here.
        self.queue_depth: Callable[[], int] = lambda: 0
        self._reload_lock = trio.Lock()  # SIGHUP and POST /-/reload may overlap
        self._core: trio.Nursery | None = None
        self._last_status = ""
        self._status_note = ""  # "; reload failed: ..." until a reload succeeds

    def _configure_logging(self, loaded: config_mod.Loaded) -> None:
        logging_cfg = loaded.config.logging
        self.logger.configure(
            level=self.log_level or logging_cfg.level,
            fmt=self.log_format or logging_cfg.format,
            secrets=loaded.secrets,
        )

    def _summary(self) -> str:
        """The STATUS= line systemctl status shows: what is served and how busy it is."""
        assert self.state is not None
        rt = self.state.runtime
        enabled = sum(d.cfg.enabled for d in rt.destinations.values())
        in_flight = int(self.metrics.registry.get_sample_value("gateway_webhooks_in_flight") or 0)
        return (
            f"serving {enabled} destination(s), {in_flight} in flight, "
            f"queue depth {self.queue_depth()}{self._status_note}"
        )

    def _log_warnings(self, rt: runtime_mod.Runtime) -> None:
        for warning in rt.warnings:
            self.logger.warning(warning)

    async def run(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        rt = runtime_mod.load(self.config_path, transport=self.transport)
        self._configure_logging(rt.loaded)
        self.metrics.watch_template_cache(rt.templates.statistics)
        self.metrics.reloads.labels("success")
        self.metrics.reloads.labels("failure")
        self.metrics.last_reload_success.set(1)
        self._log_warnings(rt)
        self.state = state = AppState(runtime=rt, metrics=self.metrics, logger=self.logger)
        state.last_reload = {"result": "success", "at": time.time(), "sha256": rt.loaded.sha256}
        app = create_app(state)
        spool = self._spool(rt.config)
        self.queue_depth = lambda: sum(s.depth for s in spool.statistics().values())
        try:
            async with trio.open_nursery() as core:
                self._core = core
                state.reload = self._reload_from_api
                await core.start(spool.run, self._deliver_spooled)
                core.start_soon(self._cache_cleanup)
                if self.notify.watchdog_s:
                    core.start_soon(self._watchdog, self.notify.watchdog_s)
                if self.notify.enabled:
                    core.start_soon(self._status_loop)
                async with trio.open_nursery() as edge:
                    await edge.start(self._signal_loop, core)
                    hc = hypercorn_config(state)
                    if self.listen_fd is not None:
                        hc.bind = [f"fd://{self.listen_fd}"]
                    binds = await edge.start(self._serve, app, hc, edge)
                    state.ready = True
                    for url in binds:
                        self.logger.info("listening", url=url, config=self.config_path)
                    self._last_status = status_line(self._summary())
                    self.notify("READY=1\n" + self._last_status)
                    task_status.started(binds)
                # hypercorn has returned: in-flight requests finished or were cancelled. Spooled
                # deliveries in flight may finish too (else they would be sent again after the
                # restart); entries not started stay in the spool.
                with trio.move_on_after(float(state.runtime.config.server.drain_timeout)):
                    await spool.wait_idle()
                core.cancel_scope.cancel(reason="server stopped")
        finally:
            await state.runtime.aclose()
            spool.close()
            self.logger.info("stopped")
            self.notify.close()

    def _spool(self, config: config_mod.Config) -> spool_mod.Spool:
        """The spool of ``delivery: async`` destinations. Its database is opened at start when
        it exists (entries from before a restart are delivered) and otherwise on first use."""
        assert self.state is not None
        cfg = config.spool
        # One spool per worker under server.workers (supervisor.py): its file is mirrored
        # by this process's in-memory index, so two workers must never share one.
        directory = per_worker_path(Path(cfg.path) if cfg.path else spool_mod.default_path())
        spool = spool_mod.Spool(
            directory,
            max_entries=cfg.max_entries,
            max_age_s=float(cfg.max_age),
            workers=cfg.workers,
        )
        self.state.guards.attach_spool(spool)
        self.metrics.watch_spool(spool.statistics)
        if (directory / spool_mod.DB_NAME).exists():
            spool.open_now()
            depth = sum(s.depth for s in spool.statistics().values())
            self.logger.info("spool opened", path=str(directory), waiting=depth)
        return spool

    async def _deliver_spooled(self, name: str, body: bytes, failures: int) -> spool_mod.Outcome:
        assert self.state is not None
        return await self.state.guards.deliver_spooled(self.state.runtime, name, body, failures)

    async def _serve(
        self,
        app: QuartTrio,
        hc: HypercornConfig,
        edge: trio.Nursery,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """hypercorn until ``stop()``; then the rest of the edge (the signal loop) ends too."""
        await serve(app, hc, shutdown_trigger=self.stopping.wait, task_status=task_status)
        edge.cancel_scope.cancel(reason="server stopped")

    def stop(self, reason: str) -> None:
        if self.stopping.is_set():
            return
        assert self.state is not None
        self.logger.info("stopping", reason=reason, in_flight=self.state.runtime.active)
        self.notify("STOPPING=1\n" + status_line(f"stopping: {reason}"))
        # Sync deliveries in flight get most of the drain time, then answer 503 (Alertmanager
        # re-sends), before hypercorn's graceful timeout would cut them off unanswered.
        self.state.begin_drain(float(self.state.runtime.config.server.drain_timeout) * 0.9)
        assert self.state.guards.spool is not None
        self.state.guards.spool.stop_taking()
        self.state.ready = False
        self.stopping.set()

    async def _signal_loop(
        self, core: trio.Nursery, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                else:
                    self.stop(signal.Signals(signum).name)
                    return

    async def reload(self) -> ConfigError | None:
        """Build a new runtime from the file and swap it in; on any error keep the old one.

        Unchanged destinations keep their client (and warm connections); the old runtime's
        other clients are closed once the requests that snapshotted it have finished.
        """
        async with self._reload_lock:
            return await self._reload()

    async def _reload_from_api(self) -> ConfigError | None:
        """POST /-/reload. A worker of supervisor.py (server.workers > 1) reloads itself to
        answer with its result, then, if that worked, has the supervisor send SIGHUP to every
        worker -- otherwise only the worker that took the request would serve the new file."""
        failed = await self.reload()
        if failed is None and self.listen_fd is not None:
            os.kill(os.getppid(), signal.SIGHUP)
        return failed

    async def _reload(self) -> ConfigError | None:
        assert self.state is not None and self._core is not None
        self.notify.reloading()
        started = time.monotonic()
        try:
            loaded = await trio.to_thread.run_sync(config_mod.load_file, self.config_path)
            new = runtime_mod.build(
                loaded,
                cache=self.state.runtime.templates,
                transport=self.transport,
                previous=self.state.runtime,
            )
        except ConfigError as exc:
            self.metrics.reloads.labels("failure").inc()
            self.metrics.last_reload_success.set(0)
            self.logger.error("reload failed; keeping the running configuration", error=str(exc))
            self.last_reload = {"result": "failure", "error": str(exc), "at": time.time()}
            self.state.last_reload = self.last_reload
            self._status_note = f"; reload failed, kept the running config: {exc.problems[0]}"
            self._last_status = status_line(self._summary())
            self.notify("READY=1\n" + self._last_status)
            return exc
        old, self.state.runtime = self.state.runtime, new
        self.state.guards.configure(new.config)
        before, after = old.config.spool, new.config.spool
        if (before.path, before.workers) != (after.path, after.workers):
            self.logger.warning("spool.path and spool.workers take effect at the next start")
        self._configure_logging(loaded)
        self._log_warnings(new)
        changed = [
            f"server.{key}"
            for key in RESTART_ONLY_SETTINGS
            if getattr(old.config.server, key) != getattr(new.config.server, key)
        ]
        if changed:
            self.logger.warning(
                "changed settings take effect only after a restart", settings=",".join(changed)
            )
        self._core.start_soon(old.retire)
        self.metrics.reloads.labels("success").inc()
        self.metrics.last_reload_success.set(1)
        self.last_reload = {"result": "success", "at": time.time(), "sha256": loaded.sha256}
        self.state.last_reload = self.last_reload
        self.logger.info(
            "reloaded",
            destinations=len(new.destinations),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        self._status_note = ""
        self._last_status = status_line(self._summary())
        self.notify("READY=1\n" + self._last_status)
        return None

    async def _status_loop(self) -> None:
        # Keeps `systemctl status` current without a datagram per request.
        while True:
            await trio.sleep(STATUS_INTERVAL_S)
            if self.stopping.is_set():
                return
            line = status_line(self._summary())
            if line != self._last_status:
                self._last_status = line
                self.notify(line)

    async def _cache_cleanup(self) -> None:
        while True:
            await trio.sleep(CACHE_CLEANUP_INTERVAL_S)
            assert self.state is not None
            self.state.runtime.templates.cleanup()

    async def _watchdog(self, interval_s: float) -> None:
        # Pinging from a task on the event loop means a stuck loop stops the pings and
        # systemd restarts us — which is the point.
        while True:
            self.notify("WATCHDOG=1")
            await trio.sleep(interval_s / 2)
