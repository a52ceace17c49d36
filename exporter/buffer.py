"""The local reading buffer: recent readings in a SQLite file, so an outage or a restart loses nothing.

The scraper (or any client) reads it page by page through `/history?since=T`. One connection is
shared under a lock (the reader thread writes, HTTP threads read). Each append is its own
committed transaction: at sensor rates (a line a second) that is cheap in WAL mode, and a reading
is on disk as soon as `append` returns. Rows older than the retention are pruned at most once a
minute, from whichever call comes first.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from exporter.errors import BufferStoreError

BufferedReading = tuple[float, str, float]
"""(Unix time, metric name, value)."""

PRUNE_EVERY = 60.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readings ("
    " time REAL NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (time, metric))"
)


class ReadingBuffer:
    """A SQLite file of (time, metric, value) rows with a retention.

    Opening creates the file and its folder when missing. Every method is thread-safe and raises
    BufferStoreError (with the path and the SQLite error) when the file cannot be used.
    """

    def __init__(self, path: str, retention_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_prune = 0.0
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
            # isolation_level=None: transactions are explicit below, nothing is left open by accident.
            self._db: sqlite3.Connection | None = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BufferStoreError(path, "open", str(exc)) from exc
        self.prune()

    def append(self, time: float, metric: str, value: float) -> None:
        """Store one reading (a second reading of a metric at the same time is ignored)."""
        self.append_many([(time, metric, value)])

    def append_many(self, rows: Iterable[BufferedReading]) -> None:
        """Store several readings in one transaction; they are on disk when this returns."""
        batch = list(rows)
        if not batch:
            return
        with self._lock:
            db = self._connection("write")
            try:
                with db:  # commits, or rolls back on error
                    db.execute("BEGIN")
                    db.executemany(
                        "INSERT OR IGNORE INTO readings (time, metric, value) VALUES (?, ?, ?)", batch
                    )
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "write", str(exc)) from exc
        self._maybe_prune()

    def since(self, since: float, limit: int) -> list[BufferedReading]:
        """Readings strictly newer than `since`, oldest first, about `limit` of them.

        The page never splits one timestamp: when the limit falls inside a group of readings with
        the same time, the whole group is returned, so a client that continues with
        `since=<last time>` misses nothing. Raises ValueError for a limit below 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._lock:
            db = self._connection("read")
            try:
                rows = db.execute(
                    "SELECT time, metric, value FROM readings WHERE time > ? ORDER BY time, metric LIMIT ?",
                    (since, limit),
                ).fetchall()
                if len(rows) == limit:
                    last = rows[-1][0]
                    rows = [r for r in rows if r[0] < last] + db.execute(
                        "SELECT time, metric, value FROM readings WHERE time = ? ORDER BY metric", (last,)
                    ).fetchall()
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return [(float(t), str(m), float(v)) for t, m, v in rows]

    def has_after(self, time: float) -> bool:
        """Whether any reading is newer than `time` (the client should ask for another page)."""
        with self._lock:
            db = self._connection("read")
            try:
                row = db.execute("SELECT 1 FROM readings WHERE time > ? LIMIT 1", (time,)).fetchone()
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return row is not None

    def count(self) -> int:
        with self._lock:
            db = self._connection("read")
            try:
                return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc

    def prune(self) -> int:
        """Delete readings older than the retention now; returns how many were removed."""
        cutoff = self._clock() - self.retention_seconds
        with self._lock:
            db = self._connection("prune")
            try:
                with db:
                    db.execute("BEGIN")
                    removed = db.execute("DELETE FROM readings WHERE time < ?", (cutoff,)).rowcount
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "prune", str(exc)) from exc
            self._last_prune = self._clock()
        return int(removed)

    def close(self) -> None:
        """Close the file. Later calls raise BufferStoreError; closing twice is harmless."""
        with self._lock:
            if self._db is not None:
                try:
                    self._db.close()
                finally:
                    self._db = None

    def _maybe_prune(self) -> None:
        if self._clock() - self._last_prune >= PRUNE_EVERY:
            self.prune()

    def _connection(self, operation: str) -> sqlite3.Connection:
        if self._db is None:
            raise BufferStoreError(self.path, operation, "the buffer is closed")
        return self._db


def rows_as_json(rows: Sequence[BufferedReading]) -> list[dict[str, object]]:
    """Rows in the `/history` JSON shape."""
    return [{"time": t, "metric": m, "value": v} for t, m, v in rows]
