"""dedup.py: bounded memory of the parts that were delivered, so a re-sent notification
delivers only what failed before, and an exact duplicate sends nothing.

Alertmanager re-sends the whole notification when we answer 5xx, and an HA pair sends each
notification twice. A part is identified by (destination, group key, notification status,
the sorted (fingerprint, alert status) pairs it carries); it is remembered for ``window``
seconds after its delivery, in an LRU of at most ``max_entries`` keys (the oldest is
forgotten first — forgetting can only cause a repeat, never a loss).
Must not: send, or decide what a part is (dispatch.py makes the keys).
Lives in the daemon-level registry, so it survives config reloads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .alertmanager import Alert

Key = tuple[str, str, str, tuple[tuple[str, str], ...]]


def part_key(destination: str, group_key: str, status: str, alerts: Sequence[Alert]) -> Key:
    pairs = tuple(sorted((a.fingerprint, a.status) for a in alerts))
    return (destination, group_key, status, pairs)


class Dedup:
    def __init__(
        self,
        *,
        window_s: float = 600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[Key, float] = OrderedDict()  # key -> forget at

    def configure(self, *, window_s: float, max_entries: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._trim()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.window_s > 0

    def __len__(self) -> int:
        return len(self._seen)

    def delivered(self, key: Key) -> bool:
        """True if this part was delivered within the window."""
        expires = self._seen.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._seen[key]
            return False
        return True

    def remember(self, key: Key) -> None:
        if not self.enabled:
            return
        self._seen[key] = self._clock() + self.window_s
        self._seen.move_to_end(key)
        self._trim()

    def _trim(self) -> None:
        seen = self._seen
        while len(seen) > self.max_entries:
            seen.popitem(last=False)
        if not seen:  # nothing to expire; also keeps configure() usable outside trio.run
            return
        # Entries are in delivery order, so expired ones sit at the front.
        now = self._clock()
        while seen:
            key, expires = next(iter(seen.items()))
            if expires > now:
                break
            del seen[key]
