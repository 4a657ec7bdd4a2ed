"""guards.py: delivery state that must outlive a config reload — every destination's circuit
breaker, the dedup memory and the spool — and the delivery of one spooled notification.

The daemon makes one ``Guards`` (it hangs off ``AppState``); a reload only re-``configure``s
it, so a destination whose name persists keeps its breaker state and its memory of what was
delivered. ``deliver_spooled`` is the spool workers' ``Deliver``: it snapshots the runtime
current *now* (so a reload's new template applies to entries still waiting), renders and
dispatches with the same retry policy, breaker and dedup as the synchronous path.
Must not: answer HTTP (web.py) or own tasks (daemon.py / spool.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from . import alertmanager
from .breaker import Breaker, Breakers
from .dedup import Dedup
from .dispatch import dispatch
from .errors import PayloadError, TemplateError, Unavailable
from .spool import NO_DESTINATION_DELAY_S, Outcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Config
    from .logs import Logger
    from .metrics import Metrics
    from .runtime import Destination, Runtime
    from .spool import Spool


class Guards:
    def __init__(
        self,
        metrics: Metrics,
        logger: Logger,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.metrics = metrics
        self.logger = logger
        self.breakers = Breakers(metrics, logger, clock=clock)
        self.dedup = Dedup(clock=clock)
        self.spool: Spool | None = None

    def configure(self, config: Config) -> None:
        """Apply a (re)loaded config's numbers; state is kept."""
        self.dedup.configure(
            window_s=float(config.dedup.window), max_entries=config.dedup.max_entries
        )
        if self.spool is not None:
            self.spool.max_entries = config.spool.max_entries
            self.spool.max_age_s = float(config.spool.max_age)

    def breaker(self, dest: Destination) -> Breaker | None:
        if dest.cfg.kind != "http" or not dest.breaker.enabled:
            return None
        return self.breakers.get(dest.name, dest.breaker)

    def attach_spool(self, spool: Spool) -> None:
        self.spool = spool
        spool.on_dead = self._dead

    def _dead(self, destination: str, error: str) -> None:
        self.metrics.dead_letters.labels(destination).inc()
        self.logger.error("dead letter", destination=destination, error=error)

    async def deliver_spooled(
        self, runtime: Runtime, name: str, body: bytes, failures: int
    ) -> Outcome:
        """One delivery of a spooled notification (``failures`` = earlier failed runs)."""
        dest = runtime.destinations.get(name)
        if dest is None or not dest.cfg.enabled:
            return Outcome(
                False, error=f"destination {name}: not configured", delay_s=NO_DESTINATION_DELAY_S
            )
        with runtime.use():
            try:
                payload = alertmanager.decode(body)
            except PayloadError as exc:
                return Outcome(False, retryable=False, error=str(exc))
            breaker = self.breaker(dest)
            if breaker is not None:
                try:
                    breaker.allow()
                except Unavailable as exc:
                    return Outcome(False, error=exc.message, delay_s=exc.retry_after_s)
            recorded = False
            try:
                tokens = runtime.templates.get(dest.template, where=dest.where)
                result = await dispatch(
                    dest,
                    payload,
                    tokens=tokens,
                    metrics=self.metrics,
                    logger=self.logger,
                    dedup=self.dedup,
                )
                if breaker is not None and not result.duplicate:
                    breaker.record(result.ok)
                    recorded = True
            except TemplateError as exc:
                # Fixed by a reload, perhaps: wait long, and let max_age decide.
                return Outcome(False, error=str(exc), delay_s=dest.policy.max_delay_s)
            finally:
                if breaker is not None and not recorded:
                    breaker.release()
        if result.ok:
            return Outcome(True)
        failed = [p for p in result.parts if p.status != "success"]
        error = failed[0].error
        if not result.retryable:
            return Outcome(False, retryable=False, error=error)
        delay = dest.policy.backoff_s(failures + 1, dest.rand)
        asked = max((p.retry_after_s or 0.0 for p in failed), default=0.0)
        return Outcome(False, error=error, delay_s=max(delay, min(asked, dest.policy.max_delay_s)))
