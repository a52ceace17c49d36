"""The local reading buffer: recent readings in a SQLite file, so an outage or a restart loses nothing.

The scraper (or any client) reads it page by page through `/history?since=T`. One connection is
shared under a lock (the reader thread writes, HTTP threads read). Each append is its own
committed transaction: at sensor rates (a line a second) that is cheap in WAL mode, and a reading
is on disk as soon as `append` returns. Rows older than the retention are pruned at most once a
minute, from whichever call comes first.

A size cap (`buffer.max_bytes`) may stand beside the retention: after a write that takes the
data past it, the oldest readings are deleted until the data is back under 90 % of the cap (so the
cut is not redone at every line), and counted (`evicted`). The size is what the rows take in the
database (pages in use, `PRAGMA page_count - freelist_count`); freed pages are reused by later
writes, so the file stops growing at about the cap, plus SQLite's write-ahead log (a few MB at most,
emptied at each checkpoint).

Health: every failed write is counted and the last failure kept (`health()`), so a full disk or an
unwritable file shows on the status page and in `millwatch_buffer_*` while the live values keep
being served; the next successful write clears the failure.

Only finite numbers go in, and only finite numbers come out: a buffer file written by an older
version may hold `Inf` (or text) values, which /history cannot write as JSON, so the reading
queries skip every row whose time or value is not a finite number.

Memory: SQLite's page cache is held to `_CACHE_KIB` per connection instead of its default 2 MB. A
day of readings is tens of MB, so the default cache fills completely and stays resident; appends
touch only the last pages, and /history pages are read sequentially from the OS's file cache, so a
small cache costs no measurable time (bench/README.md, `exporter_vs_node.py`: 1.1 MB less RSS).
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.errors import BufferStoreError

BufferedReading = tuple[float, str, float]
"""(Unix time, metric name, value)."""

PositionedReading = tuple[int, float, str, float]
"""(position, Unix time, metric name, value): the position orders readings as they were appended."""

PRUNE_EVERY = 60.0
CAP_LOW_WATER = 0.9
"""After the cap is passed, the oldest readings go until the data is under this share of it."""


@dataclass(frozen=True)
class BufferHealth:
    """What the status page and the metrics show about the buffer."""

    rows: int
    size_bytes: int
    oldest: float | None
    evicted_total: int
    write_errors_total: int
    last_error: str | None
    """The last write failure, None once a later write succeeded."""
    max_bytes: int | None


_CACHE_KIB = 256  # SQLite page cache per connection (default 2000 KiB); see the module docstring

# In SQLite NULL, text and blobs never compare within a numeric range, and ±Inf lie outside it.
_FINITE_ROW = "time BETWEEN :lowest AND :highest AND value BETWEEN :lowest AND :highest"
_FINITE_BOUNDS = {"lowest": -sys.float_info.max, "highest": sys.float_info.max}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readings ("
    " time REAL NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (time, metric))"
)


class ReadingBuffer:
    """A SQLite file of (time, metric, value) rows with a retention.

    Opening creates the file and its folder when missing. Every method is thread-safe and raises
    BufferStoreError (with the path and the SQLite error) when the file cannot be used; a
    constructor that raises leaves no connection open.
    """

    def __init__(
        self,
        path: str,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
        max_bytes: int | None = None,
    ) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._last_prune = 0.0
        self._evicted = 0
        self._rows = 0  # kept up to date by every write and delete: counting 250k rows per scrape is slow
        self._page_size = 0  # read once: a database's page size does not change while it is open
        self._write_errors = 0
        self._last_error: str | None = None
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
            # isolation_level=None: transactions are explicit below, nothing is left open by accident.
            self._db: sqlite3.Connection | None = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise BufferStoreError(path, "open", str(exc)) from exc
        try:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
                self._db.execute(_SCHEMA)
                self._rows = int(self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
            except sqlite3.Error as exc:
                raise BufferStoreError(path, "open", str(exc)) from exc
            self.prune()
            self._enforce_cap()
        except BaseException:
            # Nobody gets this object to close: without this the file stays open (and locked on
            # Windows) until the garbage collector finds the connection.
            self.close()
            raise

    def append(self, time: float, metric: str, value: float) -> None:
        """Store one reading (a second reading of a metric at the same time is ignored)."""
        self.append_many([(time, metric, value)])

    def append_many(self, rows: Iterable[BufferedReading]) -> None:
        """Store several readings in one transaction; they are on disk when this returns.

        Raises ValueError, storing nothing, when a time or value is not finite (NaN, ±Inf).
        """
        batch = list(rows)
        if not batch:
            return
        for at, metric, value in batch:
            if not (math.isfinite(at) and math.isfinite(value)):
                raise ValueError(f"{metric}: only finite readings are buffered, got {value!r} at {at!r}")
        with self._lock:
            db = self._connection("write")
            try:
                with db:  # commits, or rolls back on error
                    db.execute("BEGIN")
                    inserted = db.executemany(
                        "INSERT OR IGNORE INTO readings (time, metric, value) VALUES (?, ?, ?)", batch
                    ).rowcount
            except sqlite3.Error as exc:
                self._write_errors += 1
                self._last_error = f"write failed: {exc}"
                raise BufferStoreError(self.path, "write", str(exc)) from exc
            self._last_error = None
            self._rows += max(0, inserted)
        self._maybe_prune()
        self._enforce_cap()

    def size_bytes(self) -> int:
        """Bytes the readings take in the file (pages in use)."""
        with self._lock:
            return self._size_locked(self._connection("read"))

    def health(self) -> BufferHealth:
        """Rows, size, oldest reading and the failure counters, in one look."""
        with self._lock:
            db = self._connection("read")
            try:
                oldest = db.execute("SELECT MIN(time) FROM readings").fetchone()[0]
                size = self._size_locked(db)
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
            return BufferHealth(
                rows=self._rows,
                size_bytes=size,
                oldest=None if oldest is None else float(oldest),
                evicted_total=self._evicted,
                write_errors_total=self._write_errors,
                last_error=self._last_error,
                max_bytes=self.max_bytes,
            )

    def _size_locked(self, db: sqlite3.Connection) -> int:
        try:
            pages = int(db.execute("PRAGMA page_count").fetchone()[0])
            free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
            if not self._page_size:
                self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        except sqlite3.Error as exc:
            raise BufferStoreError(self.path, "read", str(exc)) from exc
        return (pages - free) * self._page_size

    def _enforce_cap(self) -> int:
        """Delete the oldest readings while the data is over `max_bytes`; returns how many went."""
        if self.max_bytes is None:
            return 0
        removed_total = 0
        with self._lock:
            db = self._connection("prune")
            target = int(self.max_bytes * CAP_LOW_WATER)
            # Each round deletes a share of the rows sized from how far over the target the data is;
            # SQLite frees pages only as whole pages empty, so a few rounds may be needed.
            for _ in range(20):
                size = self._size_locked(db)
                if size <= (self.max_bytes if removed_total == 0 else target):
                    break
                rows = self._rows
                if rows == 0:
                    break
                share = min(1.0, (size - target) / size + 0.01)
                batch = max(1, int(rows * share))
                try:
                    with db:
                        db.execute("BEGIN")
                        removed = db.execute(
                            "DELETE FROM readings WHERE rowid IN "
                            "(SELECT rowid FROM readings ORDER BY time LIMIT ?)",
                            (batch,),
                        ).rowcount
                except sqlite3.Error as exc:
                    raise BufferStoreError(self.path, "prune", str(exc)) from exc
                removed_total += int(removed)
                self._rows -= int(removed)
                self._evicted += int(removed)
        return removed_total

    def since(self, since: float, limit: int) -> list[BufferedReading]:
        """Readings strictly newer than `since`, oldest first, about `limit` of them.

        The page never splits one timestamp: when the limit falls inside a group of readings with
        the same time, the whole group is returned, so a client that continues with
        `since=<last time>` misses nothing. Rows whose time or value is not a finite number are
        skipped. Raises ValueError for a limit below 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._lock:
            db = self._connection("read")
            try:
                rows = db.execute(
                    f"SELECT time, metric, value FROM readings WHERE time > :since AND {_FINITE_ROW}"
                    " ORDER BY time, metric LIMIT :limit",
                    {"since": since, "limit": limit, **_FINITE_BOUNDS},
                ).fetchall()
                if len(rows) == limit:
                    last = rows[-1][0]
                    rows = [r for r in rows if r[0] < last] + db.execute(
                        f"SELECT time, metric, value FROM readings WHERE time = :last AND {_FINITE_ROW}"
                        " ORDER BY metric",
                        {"last": last, **_FINITE_BOUNDS},
                    ).fetchall()
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return [(float(t), str(m), float(v)) for t, m, v in rows]

    def has_after(self, time: float) -> bool:
        """Whether any reading that `since` would return is newer than `time` (ask for another page)."""
        with self._lock:
            db = self._connection("read")
            try:
                row = db.execute(
                    f"SELECT 1 FROM readings WHERE time > :since AND {_FINITE_ROW} LIMIT 1",
                    {"since": time, **_FINITE_BOUNDS},
                ).fetchone()
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return row is not None

    def after_position(self, position: int, limit: int) -> list[PositionedReading]:
        """Readings appended after `position` (SQLite's rowid, growing with each append), oldest first.

        The push client's query: positions follow the order of appending, not the readings' own
        times, so a clock set back on the machine PC never hides a reading from it. At most
        `limit` rows; rows whose time or value is not finite are skipped.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._lock:
            db = self._connection("read")
            try:
                rows = db.execute(
                    "SELECT rowid, time, metric, value FROM readings"
                    f" WHERE rowid > :position AND {_FINITE_ROW} ORDER BY rowid LIMIT :limit",
                    {"position": position, "limit": limit, **_FINITE_BOUNDS},
                ).fetchall()
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return [(int(p), float(t), str(m), float(v)) for p, t, m, v in rows]

    def positions(self, after: int) -> tuple[int, int]:
        """(the last position in the buffer, 0 when empty; how many readings lie after `after`)."""
        with self._lock:
            db = self._connection("read")
            try:
                last = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0]
                pending = db.execute("SELECT COUNT(*) FROM readings WHERE rowid > ?", (after,)).fetchone()[0]
            except sqlite3.Error as exc:
                raise BufferStoreError(self.path, "read", str(exc)) from exc
        return int(last), int(pending)

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
            self._rows -= int(removed)
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
