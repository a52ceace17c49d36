"""The store's hot path: many samples into the database in one transaction; rollups built in SQL.

Rows arrive as `SampleRows` (scraper/sample_rows.py: column by column, no object per row), in
any order (the first of a key wins), and are stored as `samples`' (bucket, series_id, offset_ms,
value) (scraper/schema.py). The common case, every row new, goes straight into `samples` (SQLite:
`executemany` of one prepared statement of 64 rows, its parameters sliced from the columns, which
splits the time itself; PostgreSQL: one binary `COPY` whose payload is packed in C).
A write that repeats stored samples (a retry after an unclear failure, a backfill) is rolled back
to a savepoint and done through a temporary staging table, which keeps exactly the rows that were
new.

Rollups are not gathered per sample. `rollup_state.rolled_up_to_ms` (the watermark W, a whole
minute) says how far they are built:

- a sample with time >= W is in no rollup yet; a build (a write given `advance_to`, once a minute)
  later makes the minutes [W, W') from the stored samples in SQL (one `INSERT … SELECT … GROUP
  BY` reading the minute's slice in key order) and the hours then over from their minutes, and
  moves W to W' in the same transaction;
- a sample that arrives late, with time < W, is merged into its minute by the write that stores it
  (and into its hour too when it is before W's hour, whose row is then already built).

So each sample is counted once: the watermark moves in the transaction that builds what it covers,
and a write merges exactly the rows it found new. Nothing is held in memory: a crash or a restart
loses no rollup and counts none twice (the next build starts from the stored W). Building a
minute overwrites its row (it is a function of the stored samples), so a rebuilt minute is never
counted twice either; an hour likewise from its minutes.

PostgreSQL may have several writers: a write holds `rollup_state`'s row `FOR SHARE` (a build,
`FOR UPDATE`), so no build reads the samples while a write that saw the old W is uncommitted,
and both then lock rollup rows after that one row: no deadlock between them. There a build runs
before the write stores its own rows, so it reads committed samples only, and a big fleet's build
is split by series id over two connections at once (`build_postgres`).

These statements are plain SQL on the DBAPI connection: compiling them through SQLAlchemy for
every batch cost more CPU than the database itself (see bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from time import perf_counter
from typing import Any, Protocol

from scraper.sample_rows import SampleRows
from scraper.schema import BUCKET_MS, OFFSET_BIAS, ROLLUPS, sample_time_sql, split_time_sql

MINUTE_MS = min(ROLLUPS)
HOUR_MS = max(ROLLUPS)
# An hour is built from its minutes: it must be a whole number of them (and there are two tables).
assert len(ROLLUPS) == 2 and HOUR_MS % MINUTE_MS == 0
# A slice of `samples` is a minute: the build of one minute reads its slice whole.
assert BUCKET_MS == MINUTE_MS
# Behind by more minutes than this (a restart after a while), the build is one sorted pass.
_MINUTE_BY_MINUTE = 10
_MINUTE = ROLLUPS[MINUTE_MS].name
_HOUR = ROLLUPS[HOUR_MS].name

_SQLITE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_samples (series_id INTEGER NOT NULL, "
    "time_ms INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (series_id, time_ms)) WITHOUT ROWID"
)
_POSTGRES_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_samples (series_id integer NOT NULL, "
    "time_ms bigint NOT NULL, value double precision NOT NULL) ON COMMIT DELETE ROWS"
)
_SELECT_WATERMARK = "SELECT rolled_up_to_ms FROM rollup_state WHERE id = 1"


def hour_start(time_ms: int) -> int:
    return time_ms - time_ms % HOUR_MS


def _merge(table: str, least: str, greatest: str) -> str:
    return (
        f"ON CONFLICT (series_id, bucket_ms) DO UPDATE SET "
        f"min = {least}({table}.min, excluded.min), max = {greatest}({table}.max, excluded.max), "
        f"sum = {table}.sum + excluded.sum, count = {table}.count + excluded.count"
    )


_OVERWRITE = (
    "ON CONFLICT (series_id, bucket_ms) DO UPDATE SET "
    "min = excluded.min, max = excluded.max, sum = excluded.sum, count = excluded.count"
)


def _sqlite_late(table: str, width: int, placeholder: str) -> str:
    # Row by row, no GROUP BY: SQLite lets one statement update a row several times, and late
    # rows are few (a retry, a backfill).
    return (
        f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
        f"SELECT series_id, time_ms - time_ms % {width}, value, value, value, 1 "
        f"FROM staging_samples WHERE time_ms < {placeholder} " + _merge(table, "min", "max")
    )


def _postgres_late(source: str, table: str, width: int) -> str:
    # PostgreSQL updates a row once a statement: one row a series and bucket, in key order.
    return (
        f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
        f"SELECT series_id, time_ms - time_ms %% {width}, min(value), max(value), sum(value), count(*) "
        f"FROM {source} WHERE time_ms < %(before)s GROUP BY 1, 2 ORDER BY 1, 2 "
        + _merge(table, "LEAST", "GREATEST")
    )


# (PostgreSQL's statements take psycopg parameters: their modulo is written %%.)
# Building rollups: the minutes [start, end) are a range of `samples`' key, its slices from
# start's to end's (time first), read in key order with no index seek a series; the GROUP BY sorts
# a minute of every series (~15 MB at 10,000 machines). An hour is built from its minutes, a range
# of the minute rollups' key (time first too), sorted by series.
_TIME = sample_time_sql()
_SQLITE_BUILD_MINUTES = (
    f"INSERT INTO {_MINUTE} (series_id, bucket_ms, min, max, sum, count) "
    f"SELECT series_id, {_TIME} - {_TIME} % {MINUTE_MS}, min(value), max(value), sum(value), count(*) "
    f"FROM samples WHERE bucket >= ?1 / {BUCKET_MS} AND bucket <= (?2 - 1) / {BUCKET_MS} "
    f"AND {_TIME} >= ?1 AND {_TIME} < ?2 GROUP BY 1, 2 " + _OVERWRITE
)
# SQLite, the usual build of a minute or a few: a minute at a time, its slice read in the key's
# order, which is the series' order: grouped without a sort (a third of the cost of the sorted
# pass), and a quarter cheaper than one seek a series driven by `series` (1.3 against 1.7 µs a
# series; bench/README.md).
_SQLITE_BUILD_ONE_MINUTE = (
    f"INSERT INTO {_MINUTE} (series_id, bucket_ms, min, max, sum, count) "
    "SELECT series_id, ?1, min(value), max(value), sum(value), count(*) FROM samples "
    f"WHERE bucket = ?1 / {BUCKET_MS} GROUP BY series_id " + _OVERWRITE
)
_SQLITE_BUILD_HOURS = (
    f"INSERT INTO {_HOUR} (series_id, bucket_ms, min, max, sum, count) "
    f"SELECT series_id, bucket_ms - bucket_ms % {HOUR_MS}, min(min), max(max), sum(sum), sum(count) "
    f"FROM {_MINUTE} WHERE bucket_ms >= ? AND bucket_ms < ? GROUP BY 2, 1 " + _OVERWRITE
)
# PostgreSQL's builds take the series ids [low, high): a big fleet's build is split in two ranges
# of series built at once over two connections (`build_postgres`).
_POSTGRES_BUILD_MINUTES = (
    f"INSERT INTO {_MINUTE} (series_id, bucket_ms, min, max, sum, count) "
    f"SELECT series_id, {_TIME} - {_TIME} %% {MINUTE_MS}, min(value), max(value), sum(value), count(*) "
    f"FROM samples WHERE bucket >= %(start)s / {BUCKET_MS} AND bucket <= (%(end)s - 1) / {BUCKET_MS} "
    f"AND {_TIME} >= %(start)s AND {_TIME} < %(end)s "
    "AND series_id >= %(low)s AND series_id < %(high)s GROUP BY 1, 2 ORDER BY 2, 1"
)
# PostgreSQL, a minute at a time likewise: the slice's rows come in the key's order, grouped by
# series without a sort, and the rows go in in the rollup's key order.
_POSTGRES_BUILD_ONE_MINUTE = (
    f"INSERT INTO {_MINUTE} (series_id, bucket_ms, min, max, sum, count) "
    "SELECT series_id, %(start)s, min(value), max(value), sum(value), count(*) FROM samples "
    f"WHERE bucket = %(start)s / {BUCKET_MS} AND series_id >= %(low)s AND series_id < %(high)s "
    "GROUP BY series_id ORDER BY series_id"
)
_ALL_SERIES = (-(2**31), 2**31)  # `series.id` is a 4-byte integer
PARALLEL_BUILD_MIN_SERIES = 10_000
"""From this many series on, PostgreSQL builds a minute's rollups over two connections at once."""
_POSTGRES_BUILD_HOURS = (
    f"INSERT INTO {_HOUR} (series_id, bucket_ms, min, max, sum, count) "
    f"SELECT series_id, bucket_ms - bucket_ms %% {HOUR_MS}, min(min), max(max), sum(sum), sum(count) "
    f"FROM {_MINUTE} WHERE bucket_ms >= %(start)s AND bucket_ms < %(end)s "
    "AND series_id >= %(low)s AND series_id < %(high)s GROUP BY 2, 1 ORDER BY 2, 1"
)

# --- SQLite -----------------------------------------------------------------------------------


def write_sqlite(dbapi_connection: Any, rows: SampleRows, advance_to: int | None) -> tuple[int, int, float]:
    """Store the new rows among `rows`, merge the late ones into the rollups and, given
    `advance_to`, build the rollups up to it. Returns (new rows, the watermark after, seconds spent
    building rollups).

    Runs in the caller's transaction, under the store's write lock (SQLite has one writer).
    """
    cursor = dbapi_connection.cursor()
    try:
        if not dbapi_connection.in_transaction:
            # Outside a transaction SAVEPOINT would open one of its own, and RELEASE commit it:
            # the samples must commit with the rest of the write (views, rollups), or not at all.
            # A build alone takes the write lock first: reading the watermark under a read lock
            # and then writing would fail (SQLITE_BUSY) if another process wrote in between.
            cursor.execute("BEGIN" if rows else "BEGIN IMMEDIATE")
        inserted = 0
        staged = False
        if rows:
            cursor.execute("SAVEPOINT millwatch_samples")
            before = dbapi_connection.total_changes
            _insert_sqlite(cursor, rows)
            if dbapi_connection.total_changes - before == len(rows):
                cursor.execute("RELEASE millwatch_samples")
                inserted = len(rows)
            else:
                cursor.execute("ROLLBACK TO millwatch_samples")
                cursor.execute("RELEASE millwatch_samples")
                inserted = _stage_new_sqlite(cursor, rows)
                staged = True
        # Read after the insert: this connection now holds SQLite's write lock, so no other process
        # can move the watermark before this transaction ends.
        cursor.execute(_SELECT_WATERMARK)
        (watermark,) = cursor.fetchone()
        if inserted:
            oldest = rows.oldest()
            if not staged and oldest is not None and oldest < watermark:
                cursor.execute(_SQLITE_STAGE)
                cursor.execute("DELETE FROM staging_samples")
                cursor.executemany(
                    "INSERT INTO staging_samples VALUES (?, ?, ?)", rows.before(watermark).tuples()
                )
                staged = True
            if staged:
                cursor.execute(_sqlite_late(_MINUTE, MINUTE_MS, "?"), (watermark,))
                cursor.execute(_sqlite_late(_HOUR, HOUR_MS, "?"), (hour_start(watermark),))
        if staged:
            cursor.execute("DELETE FROM staging_samples")
        build_seconds = 0.0
        if advance_to is not None and advance_to > watermark:
            started = perf_counter()
            if advance_to - watermark <= _MINUTE_BY_MINUTE * MINUTE_MS:
                for minute in range(watermark, advance_to, MINUTE_MS):
                    cursor.execute(_SQLITE_BUILD_ONE_MINUTE, (minute,))
            else:  # a long way behind (a restart after a while): one pass, sorted
                cursor.execute(_SQLITE_BUILD_MINUTES, (watermark, advance_to))
            if hour_start(advance_to) > hour_start(watermark):
                cursor.execute(_SQLITE_BUILD_HOURS, (hour_start(watermark), hour_start(advance_to)))
            cursor.execute("UPDATE rollup_state SET rolled_up_to_ms = ? WHERE id = 1", (advance_to,))
            watermark = advance_to
            build_seconds = perf_counter() - started
        return inserted, watermark, build_seconds
    finally:
        cursor.close()


_SQLITE_INSERT = "INSERT OR IGNORE INTO samples VALUES ({}, ?1, {}, ?3)".format(*split_time_sql("?2"))
# Rows per statement of the multi-row insert. Python's sqlite3 releases the GIL, takes the
# connection's mutex and resets the statement around every step: one row a step paid that per row
# (perf: ~9 % in the GIL and mutex alone); 64 rows a step insert about 1.7x as many rows per
# CPU-second (bench/README.md).
_SQLITE_ROWS_PER_STATEMENT = 64


def _sqlite_row(number: int) -> str:
    """The values of row `number` (from 0) of a multi-row insert of R rows, whose parameters are
    the R series ids, then the R times, then the R values (slices of the columns): its parameters
    are n+1, R+n+1 and 2R+n+1, the time split in SQL as `_SQLITE_INSERT` does."""
    rows = _SQLITE_ROWS_PER_STATEMENT
    bucket, offset = split_time_sql(f"?{rows + number + 1}")
    return f"({bucket}, ?{number + 1}, {offset}, ?{2 * rows + number + 1})"


_SQLITE_INSERT_MANY = "INSERT OR IGNORE INTO samples VALUES " + ", ".join(
    map(_sqlite_row, range(_SQLITE_ROWS_PER_STATEMENT))
)


def _insert_sqlite(cursor: Any, rows: SampleRows) -> None:
    """`INSERT OR IGNORE` every row: whole statements of `_SQLITE_ROWS_PER_STATEMENT` rows (their
    parameters three slices of the columns), the rest one row a step."""
    ids, times, values = rows.series_ids, rows.times(), rows.values
    step = _SQLITE_ROWS_PER_STATEMENT
    whole = len(ids) - len(ids) % step
    if whole:
        cursor.executemany(
            _SQLITE_INSERT_MANY,
            (ids[i : i + step] + times[i : i + step] + values[i : i + step] for i in range(0, whole, step)),
        )
    if whole < len(ids):
        cursor.executemany(_SQLITE_INSERT, zip(ids[whole:], times[whole:], values[whole:]))


_STAGED_BUCKET, _STAGED_OFFSET = split_time_sql("staging_samples.time_ms")


def _stage_new_sqlite(cursor: Any, rows: SampleRows) -> int:
    """Insert the rows not stored yet; they stay in `staging_samples` (for their rollups)."""
    cursor.execute(_SQLITE_STAGE)
    cursor.execute("DELETE FROM staging_samples")
    cursor.executemany("INSERT OR IGNORE INTO staging_samples VALUES (?, ?, ?)", rows.tuples())
    cursor.execute(
        "DELETE FROM staging_samples WHERE EXISTS (SELECT 1 FROM samples s "
        f"WHERE s.bucket = {_STAGED_BUCKET} AND s.series_id = staging_samples.series_id "
        f"AND s.offset_ms = {_STAGED_OFFSET})"
    )
    cursor.execute(
        "INSERT INTO samples (bucket, series_id, offset_ms, value) "
        f"SELECT {_STAGED_BUCKET}, series_id, {_STAGED_OFFSET}, value FROM staging_samples"
    )
    return int(cursor.rowcount)


# --- PostgreSQL -------------------------------------------------------------------------------

_UNIQUE_VIOLATION = "23505"
# One binary COPY row: field count, then (length, value) per field. The lengths and the count are
# constants, written into the zero padding after packing (fewer arguments for struct to take).
# The staging tables' rows are (int4 series_id, int8 time_ms, float8 value); `samples`' rows
# (int8 bucket, int4 series_id, int4 offset_ms, float8 value).
_STAGE_ROW = Struct(">6xi4xq4xd")
_STAGE_CONSTANTS = ((1, b"\x03"), (5, b"\x04"), (13, b"\x08"), (25, b"\x08"))
_SAMPLE_ROW = Struct(">6xq4xi4xi4xd")
_SAMPLE_CONSTANTS = ((1, b"\x04"), (5, b"\x08"), (17, b"\x04"), (25, b"\x04"), (33, b"\x08"))
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"


def _copy_stream(body: bytearray, size: int, count: int, constants: tuple[tuple[int, bytes], ...]) -> bytes:
    for offset, byte in constants:
        body[offset::size] = byte * count
    return _COPY_SIGNATURE + bytes(body) + _COPY_TRAILER


def copy_payload(rows: SampleRows) -> bytes:
    """The whole binary COPY stream of `(int4, int8, float8)` rows (the staging tables), packed in
    C (no per-row Python: psycopg's `write_row` cost about a microsecond a row)."""
    body = bytearray(b"".join(map(_STAGE_ROW.pack, rows.series_ids, rows.times(), rows.values)))
    return _copy_stream(body, _STAGE_ROW.size, len(rows), _STAGE_CONSTANTS)


def samples_payload(rows: SampleRows) -> bytes:
    """The binary COPY stream of `rows` as `samples`' rows (the time split into bucket and offset,
    once a run: `schema.split_time` written out)."""
    buckets = rows.per_row([t // BUCKET_MS for t, _ in rows.runs])
    offsets = rows.per_row([t % BUCKET_MS - OFFSET_BIAS for t, _ in rows.runs])
    body = bytearray(b"".join(map(_SAMPLE_ROW.pack, buckets, rows.series_ids, offsets, rows.values)))
    return _copy_stream(body, _SAMPLE_ROW.size, len(rows), _SAMPLE_CONSTANTS)


class BesideWork(Protocol):
    """Work started on another connection (the Store's `_OtherConnection`), its transaction open
    until the caller commits it (raising what the work raised) or rolls it back."""

    def commit(self) -> object: ...

    def roll_back(self) -> None: ...


Beside = Callable[[Callable[[Any], object]], BesideWork]
"""Starts `work(cursor)` on another connection while the caller goes on (the Store's `_beside`)."""


def write_postgres(
    dbapi_connection: Any, rows: SampleRows, advance_to: int | None, beside: Beside | None = None
) -> tuple[int, int, float]:
    """As `write_sqlite`, but the rollups due are built first (`build_postgres`), then the rows
    stored with the watermark after the build: a binary COPY straight into `samples` under a
    savepoint; a row already stored makes the COPY fail with a unique violation, and the write is
    then rolled back to the savepoint and done through the stage (`INSERT … ON CONFLICT DO NOTHING
    RETURNING`, the late ones among exactly the rows it returns merged into the rollups)."""
    with dbapi_connection.cursor() as cursor:
        watermark = lock_watermark_postgres(cursor, advance_to)
        watermark, build_seconds = build_postgres(cursor, watermark, advance_to, beside)
        inserted = store_rows_postgres(cursor, rows, watermark) if rows else 0
        return inserted, watermark, build_seconds


def lock_watermark_postgres(cursor: Any, advance_to: int | None) -> int:
    """The watermark, locked until the transaction ends: `FOR SHARE` to write samples, `FOR
    UPDATE` to build too. Before anything else: a build waits for the writes that saw the old
    watermark, or a write for the build."""
    lock = "FOR SHARE" if advance_to is None else "FOR UPDATE"
    cursor.execute(f"{_SELECT_WATERMARK} {lock}")
    (watermark,) = cursor.fetchone()
    return int(watermark)


def store_rows_postgres(cursor: Any, rows: SampleRows, watermark: int) -> int:
    """Store the new rows among `rows` (non-empty) and merge the late ones (time < `watermark`)
    into the rollups; returns how many were new. The caller holds the watermark (a lock on it, in
    this transaction or in one that commits after this one)."""
    cursor.execute("SAVEPOINT millwatch_samples")
    try:
        with cursor.copy(
            "COPY samples (bucket, series_id, offset_ms, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(samples_payload(rows))
    except Exception as e:
        if getattr(e, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT millwatch_samples")
        cursor.execute("RELEASE SAVEPOINT millwatch_samples")
        return _insert_new_postgres(cursor, copy_payload(rows), watermark)
    cursor.execute("RELEASE SAVEPOINT millwatch_samples")
    oldest = rows.oldest()
    if oldest is not None and oldest < watermark:
        _copy_stage(cursor, copy_payload(rows.before(watermark)))
        _merge_late_postgres(cursor, "staging_samples", watermark)
        cursor.execute("TRUNCATE staging_samples")
    return len(rows)


def build_postgres(
    cursor: Any, watermark: int, advance_to: int | None, beside: Beside | None = None
) -> tuple[int, float]:
    """Given `advance_to` past `watermark` (locked `FOR UPDATE`), build the rollups up to it;
    returns the watermark after and the seconds it took.

    Runs before the write's own rows are stored: the build then reads committed samples only (the
    lock waited for every write that saw the old watermark, and holds off the next), so that with
    `beside` and a fleet of `PARALLEL_BUILD_MIN_SERIES` series or more, the upper half of the
    series ids is built on another connection at once (the server's aggregate and insert use one
    core a connection), minutes and hours alike (an hour is built from its own series' minutes).
    That half commits before this transaction (it is rolled back if this half fails); should this
    one then fail, its buckets lie above
    the stored watermark, where nothing reads them, and the next build overwrites them
    (`_build_postgres`).
    """
    if advance_to is None or advance_to <= watermark:
        return watermark, 0.0
    started = perf_counter()
    split = _split_point(cursor) if beside is not None else None
    if beside is None or split is None:
        _build_series(cursor, watermark, advance_to, _ALL_SERIES)
    else:
        upper = (split, _ALL_SERIES[1])
        side = beside(lambda other: _build_series(other, watermark, advance_to, upper))
        try:
            _build_series(cursor, watermark, advance_to, (_ALL_SERIES[0], split))
        except BaseException:
            side.roll_back()
            raise
        side.commit()
    cursor.execute("UPDATE rollup_state SET rolled_up_to_ms = %s WHERE id = 1", (advance_to,))
    return advance_to, perf_counter() - started


def _split_point(cursor: Any) -> int | None:
    """The series id that splits the fleet's series in two halves of about as many (ids are handed
    out in order, and rarely deleted), or None below `PARALLEL_BUILD_MIN_SERIES`. Two index reads:
    a count(*) would read the table (9 ms at 60,000 series, at every build)."""
    cursor.execute("SELECT min(id), max(id) FROM series")
    low, high = cursor.fetchone()
    if low is None or high - low + 1 < PARALLEL_BUILD_MIN_SERIES:
        return None
    return int(low + (high - low) // 2 + 1)


def _build_series(cursor: Any, start: int, end: int, series: tuple[int, int]) -> None:
    """The rollups of the minutes [start, end) and of the hours then over, for the series ids in
    [series[0], series[1]): an hour from its minutes, those of earlier builds (committed) and those
    just built in this transaction."""
    # The GROUP BY of a minute of every series: sorted in memory, not in temporary files (the
    # default 4 MB holds ~20,000 series). A minute read in the key's order (an index scan) comes
    # grouped by series: no hash table, no sort; without statistics the planner took a bitmap
    # scan, a hash aggregate and a sort (150-180 ms against 135 for a minute of 60,000 series).
    # For the build's statements only: the write goes on in this transaction.
    cursor.execute("SET LOCAL work_mem = '64MB'")
    cursor.execute("SET LOCAL enable_bitmapscan = off")
    if end - start <= _MINUTE_BY_MINUTE * MINUTE_MS:
        for minute in range(start, end, MINUTE_MS):
            _build_postgres(cursor, _POSTGRES_BUILD_ONE_MINUTE, minute, minute + MINUTE_MS, series)
    else:
        _build_postgres(cursor, _POSTGRES_BUILD_MINUTES, start, end, series)
    if hour_start(end) > hour_start(start):
        _build_postgres(cursor, _POSTGRES_BUILD_HOURS, hour_start(start), hour_start(end), series)
    cursor.execute("SET LOCAL enable_bitmapscan TO DEFAULT")
    cursor.execute("SET LOCAL work_mem TO DEFAULT")


def _build_postgres(
    cursor: Any, statement: str, start: int, end: int, series: tuple[int, int] = _ALL_SERIES
) -> None:
    """Build the buckets in [start, end) (of the series ids in `series`: the minutes): a plain
    insert, since none of them has a row yet (a quarter cheaper on the server than an upsert);
    should one have a row all the same (a database restored, a process of the previous version
    still writing, the half of a build whose other half failed), overwrite it instead."""
    params = {"start": start, "end": end, "low": series[0], "high": series[1]}
    cursor.execute("SAVEPOINT millwatch_build")
    try:
        cursor.execute(statement, params)
    except Exception as e:
        if getattr(e, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT millwatch_build")
        cursor.execute(f"{statement} {_OVERWRITE}", params)
    cursor.execute("RELEASE SAVEPOINT millwatch_build")


def _copy_stage(cursor: Any, payload: bytes) -> None:
    cursor.execute(_POSTGRES_STAGE)
    with cursor.copy("COPY staging_samples (series_id, time_ms, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(payload)


def _merge_late_postgres(cursor: Any, source: str, watermark: int) -> None:
    cursor.execute(_postgres_late(source, _MINUTE, MINUTE_MS), {"before": watermark})
    cursor.execute(_postgres_late(source, _HOUR, HOUR_MS), {"before": hour_start(watermark)})


def _insert_new_postgres(cursor: Any, payload: bytes, watermark: int) -> int:
    """Insert the rows not stored yet (several writers may race: ON CONFLICT DO NOTHING) and merge
    the late ones among them into the rollups; returns how many were new."""
    _copy_stage(cursor, payload)
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS new_samples (series_id integer NOT NULL, "
        "time_ms bigint NOT NULL, value double precision NOT NULL) ON COMMIT DELETE ROWS"
    )
    # Run without parameters: psycopg passes its % through as it is.
    cursor.execute(
        "WITH new AS (INSERT INTO samples (bucket, series_id, offset_ms, value) "
        f"SELECT {_STAGED_BUCKET}, series_id, {_STAGED_OFFSET}, value FROM staging_samples "
        f"ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING RETURNING series_id, {_TIME}, value) "
        "INSERT INTO new_samples SELECT * FROM new"
    )
    inserted = int(cursor.rowcount)
    _merge_late_postgres(cursor, "new_samples", watermark)
    # ON COMMIT DELETE ROWS empties both at commit; a second write in this transaction must not see
    # these rows again.
    cursor.execute("TRUNCATE staging_samples, new_samples")
    return inserted
