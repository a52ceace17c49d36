"""The store's hot path: many samples into the database in one transaction, rollups merged.

Rows arrive as `(series_id, time_ms, value)` tuples, in any order (the first of a key wins). They go
first into a per-connection temporary staging table (SQLite: `executemany`, one prepared statement
run in C; PostgreSQL: binary `COPY`), then one statement moves the new ones into `samples` and
another merges them into each rollup. Only samples that were not stored yet reach the rollups, so
writing a batch twice counts it once:

- SQLite has one writer at a time (the store holds its write lock for the whole transaction): the
  staged rows already in `samples` are deleted from the stage, the rest are inserted and rolled up.
- PostgreSQL may have several writers: one statement inserts with `ON CONFLICT DO NOTHING
  RETURNING` and rolls up exactly the rows it returns (data-modifying CTEs).

These statements are plain SQL on the DBAPI connection: compiling them through SQLAlchemy for
every batch cost more CPU than the database itself (see bench/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from scraper.schema import ROLLUPS

Row = tuple[int, int, float]

_SQLITE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_samples (series_id INTEGER NOT NULL, "
    "time_ms INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (series_id, time_ms)) WITHOUT ROWID"
)
_POSTGRES_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_samples (series_id integer NOT NULL, "
    "time_ms bigint NOT NULL, value double precision NOT NULL) ON COMMIT DELETE ROWS"
)


def _rollup_upsert(table: str, least: str, greatest: str) -> str:
    return (
        f"ON CONFLICT (series_id, bucket_ms) DO UPDATE SET "
        f"min = {least}({table}.min, excluded.min), max = {greatest}({table}.max, excluded.max), "
        f"sum = {table}.sum + excluded.sum, count = {table}.count + excluded.count"
    )


def _sqlite_rollup(table: str, width: int) -> str:
    # Row by row, no GROUP BY: SQLite lets one statement update a row several times, and the
    # sort a GROUP BY needs cost more than the upserts it saves (a batch rarely holds two
    # samples of a series in one bucket).
    return (
        f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
        f"SELECT series_id, time_ms - time_ms % {width}, value, value, value, 1 "
        f"FROM staging_samples WHERE true " + _rollup_upsert(table, "min", "max")
    )


_SQLITE_ROLLUPS = [_sqlite_rollup(table.name, width) for width, table in ROLLUPS.items()]


def _postgres_move() -> str:
    parts = [
        "WITH new AS (INSERT INTO samples (series_id, time_ms, value) "
        "SELECT series_id, time_ms, value FROM staging_samples ORDER BY series_id, time_ms "
        "ON CONFLICT DO NOTHING RETURNING series_id, time_ms, value)"
    ]
    for width, table in ROLLUPS.items():
        parts.append(
            f", {table.name}_new AS (INSERT INTO {table.name} (series_id, bucket_ms, min, max, sum, count) "
            f"SELECT series_id, time_ms - time_ms % {width}, min(value), max(value), sum(value), count(*) "
            f"FROM new GROUP BY 1, 2 {_rollup_upsert(table.name, 'LEAST', 'GREATEST')})"
        )
    parts.append(" SELECT count(*) FROM new")
    return "".join(parts)


_POSTGRES_MOVE = _postgres_move()


def insert_sqlite(dbapi_connection: Any, rows: Sequence[Row]) -> int:
    """Store the new rows among `rows` and merge them into the rollups; returns how many were new."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_SQLITE_STAGE)
        cursor.execute("DELETE FROM staging_samples")
        cursor.executemany("INSERT OR IGNORE INTO staging_samples VALUES (?, ?, ?)", rows)
        cursor.execute(
            "DELETE FROM staging_samples WHERE EXISTS (SELECT 1 FROM samples s "
            "WHERE s.series_id = staging_samples.series_id AND s.time_ms = staging_samples.time_ms)"
        )
        cursor.execute("INSERT INTO samples (series_id, time_ms, value) SELECT * FROM staging_samples")
        inserted = int(cursor.rowcount)
        if inserted:
            for statement in _SQLITE_ROLLUPS:
                cursor.execute(statement)
        cursor.execute("DELETE FROM staging_samples")
        return inserted
    finally:
        cursor.close()


def insert_postgres(dbapi_connection: Any, rows: Sequence[Row]) -> int:
    """As `insert_sqlite`, through a binary COPY into the stage (psycopg 3)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_POSTGRES_STAGE)
        with cursor.copy(
            "COPY staging_samples (series_id, time_ms, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "float8"])
            for row in rows:
                copy.write_row(row)
        cursor.execute(_POSTGRES_MOVE)
        (inserted,) = cursor.fetchone()
        # ON COMMIT DELETE ROWS empties the stage at commit; a second write in this transaction
        # must not see these rows again.
        cursor.execute("TRUNCATE staging_samples")
        return int(inserted)


Aggregate = list[float]  # [min, max, sum, count]
RollupRows = dict[int, list[tuple[int, int, float, float, float, int]]]  # width -> rows

_FINEST = min(ROLLUPS)
# Coarser rollups are built from the finest one's buckets: each must be a whole number of them.
assert all(width % _FINEST == 0 for width in ROLLUPS)


Pending = dict[int, dict[int, list[float]]]  # finest bucket_ms -> series_id -> values
Chunk = tuple[int, dict[int, float]]  # one batch: time_ms, series_id -> value


class PendingRollups:
    """Rollup contributions of new samples, merged into the tables every `flush_seconds`.

    Merging each sample into two rollup tables costs two B-tree updates a sample; gathering them
    here costs one dict look-up and one list append a sample (a batch's samples share one time,
    so one minute bucket): the values of each series and minute are kept as they come, and only
    at the flush are they reduced (min, max, sum, count, in C) and combined into the coarser
    buckets (an hour from its minutes: one step a minute bucket instead of one a sample). The
    tables then get one upsert per series and bucket per flush. Thread-safe (PostgreSQL lets
    several writers in at once): a flush `take`s what is pending and, if its transaction fails,
    `restore`s it. What is pending is lost if the process dies (the raw samples are not): at
    most `flush_seconds` of rollups.
    """

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.values: Pending = {}
        self.since = 0.0
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Series-buckets pending."""
        return self._size

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Gather the new samples of these batches (their values already stored)."""
        with self._lock:
            pending = self.values
            for time_ms, batch in chunks:
                bucket = time_ms - time_ms % _FINEST
                series = pending.get(bucket)
                if series is None:
                    pending[bucket] = {series_id: [value] for series_id, value in batch.items()}
                    self._size += len(batch)
                    continue
                if series.keys().isdisjoint(batch):
                    # The common case: this machine's first scrape in the bucket.
                    series.update({series_id: [value] for series_id, value in batch.items()})
                    self._size += len(batch)
                    continue
                get = series.get
                for series_id, value in batch.items():
                    held = get(series_id)
                    if held is None:
                        series[series_id] = [value]
                        self._size += 1
                    else:
                        held.append(value)

    def take(self, now: float, closed_before_ms: int | None = None) -> Pending:
        """What is pending, which is then no longer held here: every bucket, or with
        `closed_before_ms` only the buckets that ended by then (a minute still being scraped
        stays, so that it is merged once, whole, instead of once per flush)."""
        with self._lock:
            self.since = now
            if closed_before_ms is None:
                taken, self.values = self.values, {}
                self._size = 0
                return taken
            taken = {b: s for b, s in self.values.items() if b + _FINEST <= closed_before_ms}
            for bucket, series in taken.items():
                del self.values[bucket]
                self._size -= len(series)
            return taken

    def restore(self, taken: Pending) -> None:
        """Hold `taken` again (its flush did not commit)."""
        with self._lock:
            for bucket, batch in taken.items():
                series = self.values.setdefault(bucket, {})
                for series_id, held in batch.items():
                    present = series.get(series_id)
                    if present is None:
                        series[series_id] = held
                        self._size += 1
                    else:
                        present.extend(held)


def rollup_rows(taken: Pending) -> RollupRows:
    """The rows `(series_id, bucket_ms, min, max, sum, count)` of every rollup table for `taken`."""
    finest: list[tuple[int, int, float, float, float, int]] = []
    coarser: dict[int, dict[tuple[int, int], Aggregate]] = {w: {} for w in ROLLUPS if w != _FINEST}
    for bucket, series in taken.items():
        for series_id, held in series.items():
            low, high, total, count = min(held), max(held), sum(held), len(held)
            finest.append((series_id, bucket, low, high, total, count))
            for width, buckets in coarser.items():
                key = (series_id, bucket - bucket % width)
                aggregate = buckets.get(key)
                if aggregate is None:
                    buckets[key] = [low, high, total, count]
                else:
                    if low < aggregate[0]:
                        aggregate[0] = low
                    if high > aggregate[1]:
                        aggregate[1] = high
                    aggregate[2] += total
                    aggregate[3] += count
    rows: RollupRows = {_FINEST: finest}
    for width, buckets in coarser.items():
        rows[width] = [(s, b, a[0], a[1], a[2], int(a[3])) for (s, b), a in buckets.items()]
    return rows


def flush_sqlite(dbapi_connection: Any, rows: RollupRows) -> None:
    """Merge rollup rows into their tables (in the caller's transaction)."""
    cursor = dbapi_connection.cursor()
    try:
        for width, table_rows in rows.items():
            if table_rows:
                table = ROLLUPS[width].name
                cursor.executemany(
                    f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
                    "VALUES (?, ?, ?, ?, ?, ?) " + _rollup_upsert(table, "min", "max"),
                    table_rows,
                )
    finally:
        cursor.close()


_POSTGRES_ROLLUP_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_rollups (series_id integer NOT NULL, "
    "bucket_ms bigint NOT NULL, min double precision NOT NULL, max double precision NOT NULL, "
    "sum double precision NOT NULL, count bigint NOT NULL) ON COMMIT DELETE ROWS"
)


def flush_postgres(dbapi_connection: Any, rows: RollupRows) -> None:
    """As `flush_sqlite`: a binary COPY into a stage, one upsert per table in key order (several
    scrapers merging into the same rows then lock them in the same order: no deadlock)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_POSTGRES_ROLLUP_STAGE)
        for width, table_rows in rows.items():
            if not table_rows:
                continue
            table = ROLLUPS[width].name
            with cursor.copy("COPY staging_rollups FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "int8", "float8", "float8", "float8", "int8"])
                for row in table_rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
                "SELECT * FROM staging_rollups ORDER BY series_id, bucket_ms "
                + _rollup_upsert(table, "LEAST", "GREATEST")
            )
            cursor.execute("TRUNCATE staging_rollups")


def insert_sqlite_new(dbapi_connection: Any, rows: Sequence[Row]) -> tuple[int, bool]:
    """The common case fast: when every row is new, insert them straight; their rollups are then
    left to the caller's `PendingRollups` (the second value is True) once the transaction commits.

    A write that repeats stored samples (a retry after an unclear failure, a backfill) is rolled
    back to a savepoint and done by `insert_sqlite`, which rolls up exactly the new ones.
    """
    cursor = dbapi_connection.cursor()
    try:
        if not dbapi_connection.in_transaction:
            # Outside a transaction SAVEPOINT would open one of its own, and RELEASE commit it:
            # the samples must commit with the rest of the write (views, rollups), or not at all.
            cursor.execute("BEGIN")
        cursor.execute("SAVEPOINT millwatch_samples")
        before = dbapi_connection.total_changes
        cursor.executemany("INSERT OR IGNORE INTO samples VALUES (?, ?, ?)", rows)
        if dbapi_connection.total_changes - before == len(rows):
            cursor.execute("RELEASE millwatch_samples")
            return len(rows), True
        cursor.execute("ROLLBACK TO millwatch_samples")
        cursor.execute("RELEASE millwatch_samples")
    finally:
        cursor.close()
    return insert_sqlite(dbapi_connection, rows), False


_UNIQUE_VIOLATION = "23505"


def insert_postgres_new(dbapi_connection: Any, rows: Sequence[Row]) -> tuple[int, bool]:
    """As `insert_sqlite_new` on PostgreSQL: a binary COPY straight into `samples` under a
    savepoint (no stage, no second statement); a row already stored makes the COPY fail with a
    unique violation, and the write is then rolled back to the savepoint and done by
    `insert_postgres` (ON CONFLICT DO NOTHING, rollups of exactly the new rows in SQL)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SAVEPOINT millwatch_samples")
        try:
            with cursor.copy("COPY samples (series_id, time_ms, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "int8", "float8"])
                for row in rows:
                    copy.write_row(row)
        except Exception as e:
            if getattr(e, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT millwatch_samples")
            cursor.execute("RELEASE SAVEPOINT millwatch_samples")
            return insert_postgres(dbapi_connection, rows), False
        cursor.execute("RELEASE SAVEPOINT millwatch_samples")
        return len(rows), True
