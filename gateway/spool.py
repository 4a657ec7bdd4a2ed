"""spool.py: the durable queue behind ``delivery: async`` — and its dead letters.

Owns: the spool's life on the event loop — opening its SQLite file (spool_db.py: WAL,
``synchronous=FULL``, so a commit is fsync'd before ``enqueue`` returns and the webhook's 202
means "on disk"), group commits (concurrent enqueues share one transaction, so throughput
does not collapse to one fsync per webhook),
the per-destination work queues and their workers (oldest first, at most ``workers`` at once
per destination, a destination that fails is paused for the delay its deliverer asks), and
the admin operations on dead letters.

What is stored is the raw webhook body, the destination name, the enqueue time (wall clock,
so ``max_age`` holds across restarts), the attempts so far and the last error; it is rendered
at delivery time with the runtime current then. An entry is deleted only after it was
delivered, so a crash (``kill -9``) can repeat a delivery but never lose one.

All database work runs in a worker thread (``trio.to_thread``), one call at a time, on one
connection; the in-memory index (ids and enqueue times per destination) mirrors the file.
Must not: render, send or retry by itself — the ``Deliver`` function given to ``run`` does one
delivery and says what to do next.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgspec
import trio

from .errors import Unavailable
from .spool_db import DB_NAME, DeadLetter, SpoolDB

__all__ = ["DB_NAME", "DeadLetter", "Deliver", "Outcome", "Spool", "SpoolStats", "default_path"]

FULL_RETRY_AFTER_S = 30.0
NO_DESTINATION_DELAY_S = 5.0  # a spooled destination missing from the config: look again later
T = TypeVar("T")


class SpoolStats(msgspec.Struct, frozen=True):
    depth: int
    oldest_age_s: float
    dead: int


class Outcome(msgspec.Struct, frozen=True):
    """What one delivery of a spooled entry came to."""

    ok: bool
    retryable: bool = True
    error: str | None = None
    delay_s: float = 0.0  # before the destination's next attempt (retryable failures)


Deliver = Callable[[str, bytes, int], Awaitable[Outcome]]  # (destination, body, failures)


class _Queue:
    def __init__(self) -> None:
        self.entries: dict[int, float] = {}  # id -> enqueued_at, oldest first
        self.ready: deque[int] = deque()
        self.lot = trio.lowlevel.ParkingLot()
        self.paused_until = 0.0  # trio time; the destination failed and asked for a pause
        self.failures = 0
        self.workers = False


class _Pending:
    def __init__(self, destination: str, payload: bytes, at: float) -> None:
        self.destination = destination
        self.payload = payload
        self.at = at
        self.id = 0
        self.error: BaseException | None = None
        self.done = trio.Event()


def default_path(environ: dict[str, str] | None = None) -> Path:
    """systemd's StateDirectory= (first entry of $STATE_DIRECTORY), else ./state."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path("state")


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_entries: int = 100_000,
        max_age_s: float = 86400.0,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self.workers = workers
        self._clock = clock
        self._db: SpoolDB | None = None
        self._one_at_a_time = trio.CapacityLimiter(1)
        self._queues: dict[str, _Queue] = {}
        self._total = 0
        self._dead: dict[str, int] = {}
        self._pending: list[_Pending] = []
        self._committing = False
        self._nursery: trio.Nursery | None = None
        self._deliver: Deliver | None = None
        self.on_dead: Callable[[str, str], None] | None = None  # (destination, error)
        self._taking = True
        self._busy = 0  # workers delivering right now, and the delete flusher
        self._deletes: list[int] = []  # delivered, not yet deleted from the file
        self._deleting = False
        self._idle = trio.Event()
        self._idle.set()

    # -- opening -------------------------------------------------------------------------

    def open_now(self) -> None:
        """``open`` for start-up, before any task uses the spool (blocks briefly)."""
        if self._db is None:
            self._install(*self._open_db())

    async def open(self) -> None:
        """Create or open the database and load the index of waiting entries."""
        if self._db is not None:
            return
        opened = await trio.to_thread.run_sync(self._open_db, limiter=self._one_at_a_time)
        if self._db is not None:  # opened by another task meanwhile
            opened[0].close()
            return
        self._install(*opened)

    def _open_db(self) -> tuple[SpoolDB, list[tuple[int, str, float]], dict[str, int]]:
        db = SpoolDB.open(self.directory)
        return db, db.waiting(), db.dead_counts()

    def _install(
        self, db: SpoolDB, entries: list[tuple[int, str, float]], dead: dict[str, int]
    ) -> None:
        self._db = db
        for id_, dest, at in entries:
            self._add(dest, id_, at)
        self._dead.update(dead)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[[SpoolDB], T]) -> T:
        """Run ``fn(db)`` in a thread, opening the database first if needed."""
        if self._db is None:
            await self.open()
        db = self._db
        assert db is not None
        return await trio.to_thread.run_sync(fn, db, limiter=self._one_at_a_time)

    def _add(self, dest: str, id_: int, at: float) -> _Queue:
        queue = self._queues.get(dest)
        if queue is None:
            queue = self._queues[dest] = _Queue()
        queue.entries[id_] = at
        queue.ready.append(id_)
        self._total += 1
        queue.lot.unpark()
        if not queue.workers and self._nursery is not None:
            self._start_workers(dest, queue)
        return queue

    def _delete_soon(self, id_: int) -> None:
        """Delete a delivered entry in the next batch: concurrent workers share one commit.
        Until it commits, a crash would deliver the entry again (never lose it); shutdown
        waits for it (``wait_idle``)."""
        self._deletes.append(id_)
        if not self._deleting and self._nursery is not None:
            self._deleting = True
            self._busy_begin()
            self._nursery.start_soon(self._flush_deletes)

    async def _flush_deletes(self) -> None:
        try:
            while self._deletes:
                batch, self._deletes = self._deletes, []
                await self._call(lambda db: db.delete_many(batch))  # noqa: B023 - awaited here
        finally:
            self._deleting = False
            self._busy_end()

    def _remove(self, dest: str, id_: int) -> None:
        queue = self._queues[dest]
        if queue.entries.pop(id_, None) is not None:
            self._total -= 1

    # -- enqueue (group commit) ----------------------------------------------------------

    async def enqueue(self, destination: str, payload: bytes) -> int:
        """Store the notification durably; return its id. Unavailable if the spool is full
        or cannot be written."""
        if self._total + len(self._pending) >= self.max_entries:
            raise Unavailable(
                f"spool full ({self.max_entries} entries)", retry_after_s=FULL_RETRY_AFTER_S
            )
        pending = _Pending(destination, payload, self._clock())
        self._pending.append(pending)
        if not self._committing:
            # This task commits for everyone waiting. Shielded: a client that goes away must
            # not strand the others' entries half-way.
            self._committing = True
            try:
                with trio.CancelScope(shield=True):
                    while self._pending:
                        batch, self._pending = self._pending, []
                        try:
                            rows = [(p.destination, p.payload, p.at) for p in batch]
                            ids = await self._call(functools.partial(SpoolDB.insert, batch=rows))
                        except (sqlite3.Error, OSError) as exc:
                            for p in batch:
                                p.error = exc
                                p.done.set()
                            continue
                        for p, id_ in zip(batch, ids, strict=True):
                            p.id = id_
                            self._add(p.destination, id_, p.at)
                            p.done.set()
            finally:
                self._committing = False
        await pending.done.wait()
        if pending.error is not None:
            raise Unavailable(
                f"spool not writable: {type(pending.error).__name__}: {pending.error}",
                retry_after_s=FULL_RETRY_AFTER_S,
            )
        return pending.id

    # -- workers -------------------------------------------------------------------------

    async def run(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver waiting entries until cancelled (the daemon's core nursery)."""
        self._deliver = deliver
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for dest, queue in self._queues.items():
                if queue.entries and not queue.workers:
                    self._start_workers(dest, queue)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def _start_workers(self, dest: str, queue: _Queue) -> None:
        assert self._nursery is not None
        queue.workers = True
        for _ in range(self.workers):
            self._nursery.start_soon(self._worker, dest, queue)

    def stop_taking(self) -> None:
        """Shutting down: workers finish what they deliver now and take nothing new."""
        self._taking = False

    async def wait_idle(self) -> None:
        """Until no worker is in the middle of a delivery and every delete is committed."""
        await self._idle.wait()

    async def _worker(self, dest: str, queue: _Queue) -> None:
        while True:
            while not queue.ready or not self._taking:
                await queue.lot.park()
            if queue.paused_until > trio.current_time():
                await trio.sleep_until(queue.paused_until)
                continue
            self._busy_begin()
            try:
                await self._work(dest, queue, queue.ready.popleft())
            finally:
                self._busy_end()

    def _busy_begin(self) -> None:
        self._busy += 1
        if self._idle.is_set():
            self._idle = trio.Event()

    def _busy_end(self) -> None:
        self._busy -= 1
        if not self._busy:
            self._idle.set()

    async def _work(self, dest: str, queue: _Queue, id_: int) -> None:
        assert self._deliver is not None
        enqueued_at = queue.entries.get(id_)
        if enqueued_at is None:
            return  # deleted meanwhile
        if self._clock() - enqueued_at > self.max_age_s:
            await self._kill(dest, id_, f"older than max_age ({self.max_age_s:g}s)")
            return
        payload = await self._call(lambda db: db.payload(id_))
        if payload is None:
            self._remove(dest, id_)
            return
        outcome = await self._deliver(dest, payload, queue.failures)
        if outcome.ok:
            queue.failures = 0
            self._remove(dest, id_)
            self._delete_soon(id_)
        elif not outcome.retryable:
            await self._kill(dest, id_, outcome.error or "not retryable")
        else:
            queue.failures += 1
            await self._call(lambda db: db.failed(id_, outcome.error))
            queue.ready.appendleft(id_)  # stays the oldest: delivered first next time
            queue.paused_until = max(queue.paused_until, trio.current_time() + outcome.delay_s)

    async def _kill(self, dest: str, id_: int, error: str) -> None:
        now = self._clock()
        await self._call(lambda db: db.to_dead(id_, error, now))
        self._remove(dest, id_)
        self._dead[dest] = self._dead.get(dest, 0) + 1
        if self.on_dead is not None:
            self.on_dead(dest, error)

    # -- statistics and admin --------------------------------------------------------------

    def statistics(self) -> dict[str, SpoolStats]:
        now = self._clock()
        stats = {}
        for dest in sorted(set(self._queues) | set(self._dead)):
            queue = self._queues.get(dest)
            oldest = next(iter(queue.entries.values()), now) if queue else now
            depth = len(queue.entries) if queue else 0
            stats[dest] = SpoolStats(depth, max(0.0, now - oldest), self._dead.get(dest, 0))
        return stats

    def _absent(self) -> bool:
        """No database yet: admin reads answer "nothing" instead of creating one."""
        return self._db is None and not (self.directory / DB_NAME).exists()

    async def list_dead(
        self, *, destination: str | None = None, after: int = 0, limit: int = 50
    ) -> list[DeadLetter]:
        if self._absent():
            return []
        return await self._call(lambda db: db.list_dead(destination, after, limit))

    async def get_dead(self, id_: int) -> DeadLetter | None:
        if self._absent():
            return None
        return await self._call(lambda db: db.get_dead(id_))

    async def delete_dead(self, id_: int) -> bool:
        if self._absent():
            return False
        dest = await self._call(lambda db: db.delete_dead(id_))
        if dest is None:
            return False
        self._dead[dest] = max(0, self._dead.get(dest, 0) - 1)
        return True

    async def replay(self, *, id_: int | None = None, destination: str | None = None) -> int:
        """Move one dead letter (or all of a destination's) back into the queue, with a fresh
        enqueue time and no attempts. Returns how many."""
        if self._absent():
            return 0
        room = self.max_entries - self._total - len(self._pending)
        if room <= 0:
            raise Unavailable("spool full", retry_after_s=FULL_RETRY_AFTER_S)
        now = self._clock()
        moved = await self._call(lambda db: db.replay(id_, destination, room, now))
        for dest, new_id, at in moved:
            self._dead[dest] = max(0, self._dead.get(dest, 0) - 1)
            self._add(dest, new_id, at)
        return len(moved)
