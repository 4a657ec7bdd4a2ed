"""spool_db.py: the spool's SQLite file — schema, transactions, and every statement.

Blocking code only: spool.py calls each method through ``trio.to_thread`` one at a time, on
this one connection. WAL mode with ``synchronous=FULL``, so a returned commit is on disk
(fsync'd) — what lets the webhook answer 202. Ids come from AUTOINCREMENT and are never
reused, so a dead letter keeps its entry's id and a replay gets a new one.
Must not: keep queue state, know about destinations' settings, or touch the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

DB_NAME = "spool.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_destination ON dead_letters (destination, id);
"""
_DEAD_COLUMNS = "id, destination, enqueued_at, attempts, last_error, dead_at"


class DeadLetter(msgspec.Struct, frozen=True):
    id: int
    destination: str
    enqueued_at: float  # unix seconds
    attempts: int
    last_error: str | None
    dead_at: float  # unix seconds
    payload: bytes | None = None  # only when showing one


class SpoolDB:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, directory: Path) -> SpoolDB:
        directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(directory / DB_NAME, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- entries ---------------------------------------------------------------------------

    def waiting(self) -> list[tuple[int, str, float]]:
        """(id, destination, enqueued_at) of every entry, oldest first."""
        return self._conn.execute(
            "SELECT id, destination, enqueued_at FROM entries ORDER BY id"
        ).fetchall()

    def insert(self, batch: Sequence[tuple[str, bytes, float]]) -> list[int]:
        """One transaction (one fsync) for the whole batch; the new ids in order."""
        ids = []
        with self._transaction() as conn:
            for destination, payload, at in batch:
                cur = conn.execute(
                    "INSERT INTO entries (destination, payload, enqueued_at) VALUES (?, ?, ?)",
                    (destination, payload, at),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    def payload(self, id_: int) -> bytes | None:
        row = self._conn.execute("SELECT payload FROM entries WHERE id = ?", (id_,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_many(self, ids: Sequence[int]) -> None:
        """One transaction (one fsync) for all of them."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM entries WHERE id = ?", [(id_,) for id_ in ids])

    def failed(self, id_: int, error: str | None) -> None:
        self._conn.execute(
            "UPDATE entries SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error, id_),
        )

    def to_dead(self, id_: int, error: str, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO dead_letters (id, destination, payload, enqueued_at, attempts,"
                " last_error, dead_at) SELECT id, destination, payload, enqueued_at,"
                " attempts + 1, ?, ? FROM entries WHERE id = ?",
                (error, now, id_),
            )
            conn.execute("DELETE FROM entries WHERE id = ?", (id_,))

    # -- dead letters ------------------------------------------------------------------------

    def dead_counts(self) -> dict[str, int]:
        return dict(
            self._conn.execute(
                "SELECT destination, count(*) FROM dead_letters GROUP BY destination"
            )
        )

    def list_dead(self, destination: str | None, after: int, limit: int) -> list[DeadLetter]:
        query = f"SELECT {_DEAD_COLUMNS} FROM dead_letters WHERE id > ?"
        args: list[Any] = [after]
        if destination is not None:
            query += " AND destination = ?"
            args.append(destination)
        query += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [DeadLetter(*row) for row in self._conn.execute(query, args)]

    def get_dead(self, id_: int) -> DeadLetter | None:
        row = self._conn.execute(
            f"SELECT {_DEAD_COLUMNS}, payload FROM dead_letters WHERE id = ?", (id_,)
        ).fetchone()
        if row is None:
            return None
        id_, dest, enqueued_at, attempts, error, dead_at, payload = row
        return DeadLetter(id_, dest, enqueued_at, attempts, error, dead_at, bytes(payload))

    def delete_dead(self, id_: int) -> str | None:
        """The deleted letter's destination, or None if there was no such letter."""
        row = self._conn.execute(
            "DELETE FROM dead_letters WHERE id = ? RETURNING destination", (id_,)
        ).fetchone()
        return None if row is None else str(row[0])

    def replay(
        self, id_: int | None, destination: str | None, limit: int, now: float
    ) -> list[tuple[str, int, float]]:
        """Move dead letters back into entries (fresh enqueue time, no attempts) in one
        transaction; (destination, new id, enqueued_at) of each."""
        with self._transaction() as conn:
            if id_ is not None:
                rows = conn.execute(
                    "SELECT id, destination, payload FROM dead_letters WHERE id = ?", (id_,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT id, destination, payload FROM dead_letters WHERE destination = ?"
                    " ORDER BY id LIMIT ?",
                    (destination, limit),
                ).fetchall()
            moved = []
            for old_id, dest, payload in rows:
                cur = conn.execute(
                    "INSERT INTO entries (destination, payload, enqueued_at) VALUES (?, ?, ?)",
                    (dest, payload, now),
                )
                conn.execute("DELETE FROM dead_letters WHERE id = ?", (old_id,))
                assert cur.lastrowid is not None
                moved.append((str(dest), cur.lastrowid, now))
        return moved
