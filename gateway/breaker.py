"""breaker.py: one circuit breaker per destination — closed, open, half_open.

Closed: every delivery goes through; ``failure_threshold`` consecutive failures (or, when
``failure_ratio`` is set, that share of failures among the last ``window`` outcomes, once
the window is full) open it. Open: ``allow()`` raises Unavailable with the seconds left, so
the webhook answers 503 + Retry-After without calling the destination. After
``open_duration`` it is half_open: ``half_open_probes`` deliveries may go through at once; a
success closes it, a failure opens it again. The clock is injected (trio's by default, so
tests can use ``autojump_clock``).
Must not: send anything or know what a delivery is; callers report ``success``/``failure``.
Breakers live in the daemon-level ``Breakers`` registry, so they survive config reloads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Literal

import trio

from .errors import Unavailable

if TYPE_CHECKING:
    from .config import BreakerConfig
    from .logs import Logger
    from .metrics import Metrics

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")


class Breaker:
    def __init__(
        self,
        name: str,
        cfg: BreakerConfig,
        *,
        clock: Callable[[], float] = trio.current_time,
        on_change: Callable[[Breaker, State, State, str], None] | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self._clock = clock
        self._on_change = on_change
        self.state: State = "closed"
        self.consecutive = 0
        self._window: deque[bool] = deque(maxlen=cfg.window)  # True = failure
        self._opened_at = 0.0
        self._probes = 0  # probes in flight while half_open

    def configure(self, cfg: BreakerConfig) -> None:
        """A reload changed the settings: keep the state, use the new numbers."""
        if cfg.window != self.cfg.window:
            self._window = deque(self._window, maxlen=cfg.window)
        self.cfg = cfg  # also when equal: the registry compares by identity

    def retry_after_s(self) -> float:
        return max(0.0, self._opened_at + float(self.cfg.open_duration) - self._clock())

    def allow(self) -> None:
        """Raise Unavailable unless a delivery may go through now."""
        if not self.cfg.enabled or self.state == "closed":
            return
        if self.state == "open":
            left = self.retry_after_s()
            if left > 0:
                raise Unavailable(
                    f"destination {self.name}: circuit open after repeated failures",
                    retry_after_s=left,
                )
            self._move("half_open", "open_duration passed")
        if self._probes >= self.cfg.half_open_probes:
            raise Unavailable(
                f"destination {self.name}: circuit half-open, probe in flight", retry_after_s=1.0
            )
        self._probes += 1

    def record(self, ok: bool) -> None:
        if not self.cfg.enabled:
            return
        if self.state == "half_open":
            self._probes = max(0, self._probes - 1)
            if ok:
                self._reset_counts()
                self._move("closed", "probe succeeded")
            else:
                self._open("probe failed")
            return
        if self.state == "open":
            return  # a delivery that started before the breaker opened
        self._window.append(not ok)
        if ok:
            self.consecutive = 0
            return
        self.consecutive += 1
        if self.consecutive >= self.cfg.failure_threshold:
            self._open(f"{self.consecutive} consecutive failures")
            return
        ratio = self.cfg.failure_ratio
        window = self._window
        if ratio > 0 and len(window) == window.maxlen and sum(window) >= ratio * len(window):
            self._open(f"{sum(window)} of the last {len(window)} deliveries failed")

    def release(self) -> None:
        """An allowed delivery ended without an outcome (cancelled, nothing sent)."""
        if self.state == "half_open":
            self._probes = max(0, self._probes - 1)

    def reset(self, reason: str = "reset by an operator") -> None:
        self._reset_counts()
        self._probes = 0
        if self.state != "closed":
            self._move("closed", reason)

    def _reset_counts(self) -> None:
        self.consecutive = 0
        self._window.clear()

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._probes = 0
        self._move("open", reason)

    def _move(self, new: State, reason: str) -> None:
        old, self.state = self.state, new
        if self._on_change is not None and old != new:
            self._on_change(self, old, new, reason)


@dataclass(eq=False)
class Breakers:
    """Every destination's breaker by name; kept by the daemon across reloads."""

    metrics: Metrics
    logger: Logger
    _: KW_ONLY
    clock: Callable[[], float] = trio.current_time
    _by_name: dict[str, Breaker] = field(default_factory=dict, init=False)

    def get(self, name: str, cfg: BreakerConfig) -> Breaker:
        breaker = self._by_name.get(name)
        if breaker is None:
            breaker = Breaker(name, cfg, clock=self.clock, on_change=self._changed)
            self._by_name[name] = breaker
            self.metrics.breaker_state.labels(name).set(0)
        elif breaker.cfg is not cfg:
            breaker.configure(cfg)
        return breaker

    def find(self, name: str) -> Breaker | None:
        return self._by_name.get(name)

    def _changed(self, breaker: Breaker, old: State, new: State, reason: str) -> None:
        self.metrics.breaker_state.labels(breaker.name).set(STATES.index(new))
        self.metrics.breaker_transitions.labels(breaker.name, new).inc()
        log = self.logger.warning if new == "open" else self.logger.info
        log(
            "circuit breaker",
            destination=breaker.name,
            transition=f"{old}->{new}",
            reason=reason,
            retry_after_s=round(breaker.retry_after_s(), 3) if new == "open" else None,
        )
