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


class PendingRollups:
    """Rollup contributions of new SQLite samples, merged into the tables every `flush_seconds`.

    Merging each sample into two rollup tables costs two B-tree updates a sample; gathering them
    here first costs two dict updates, and the tables get one upsert per series and bucket per
    flush. Not thread-safe: the store holds its write lock. What is pending is lost if the process
    dies (the raw samples are not): at most `flush_seconds` of rollups.
    """

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.buckets: dict[int, dict[tuple[int, int], Aggregate]] = {width: {} for width in ROLLUPS}
        self.since = 0.0

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    def add(self, rows: Sequence[Row]) -> None:
        for width, buckets in self.buckets.items():
            get = buckets.get
            for series_id, time_ms, value in rows:
                key = (series_id, time_ms - time_ms % width)
                aggregate = get(key)
                if aggregate is None:
                    buckets[key] = [value, value, value, 1.0]
                else:
                    if value < aggregate[0]:
                        aggregate[0] = value
                    if value > aggregate[1]:
                        aggregate[1] = value
                    aggregate[2] += value
                    aggregate[3] += 1

    def flush(self, dbapi_connection: Any) -> None:
        """Merge everything pending into the rollup tables (in the caller's transaction)."""
        cursor = dbapi_connection.cursor()
        try:
            for width, buckets in self.buckets.items():
                if buckets:
                    table = ROLLUPS[width].name
                    cursor.executemany(
                        f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
                        "VALUES (?, ?, ?, ?, ?, ?) " + _rollup_upsert(table, "min", "max"),
                        [(s, b, a[0], a[1], a[2], int(a[3])) for (s, b), a in buckets.items()],
                    )
        finally:
            cursor.close()

    def clear(self, now: float) -> None:
        for buckets in self.buckets.values():
            buckets.clear()
        self.since = now


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
