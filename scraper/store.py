"""Storage of samples and machine views in SQLite (embedded default) or PostgreSQL.

The API is synchronous: the scraper service calls it from worker threads. Every failure is raised
as `StoreError` naming the operation. Inserts are idempotent (ON CONFLICT DO NOTHING on the
sample's (series, time) key), so writing the same batch twice stores it once.

No call waits for the database without a bound: SQLite waits at most `sqlite_busy_timeout` for a
lock held by another process, PostgreSQL cancels a statement after `postgres_statement_timeout`
(and drops a connection whose packets go unacknowledged, a network that swallows everything).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from math import isfinite
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from scraper import schema
from scraper.errors import StoreError
from scraper.exposition import ParsedSamples, Sample
from scraper.migration_lock import migration_lock
from scraper.sample_rows import SampleRows
from scraper.series_cache import SeriesCache, SeriesName
from scraper.state import MachineView
from scraper.store_bulk import (
    HOUR_MS,
    MINUTE_MS,
    build_postgres,
    hour_start,
    lock_watermark_postgres,
    store_rows_postgres,
    write_postgres,
    write_sqlite,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 5.0
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_STATEMENT_TIMEOUT_S = 10.0
PRUNE_BATCH_ROWS = 10_000
DEFAULT_ROLLUP_RETENTION_SECONDS = 400 * 86400.0
# Minute rollups hold a row per series and minute, 3 times the rows of 30 days of raw samples
# at 15 s if kept 400 days: they are kept as long as this, the hour rollups as long as the above.
DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS = 30 * 86400.0
DEFAULT_SERIES_CACHE_SIZE = 1_000_000  # ~110-200 bytes each: 10,000 machines of 60 series fit
SERIES_CACHE_PER_MACHINE = 200
"""Series ids the cache makes room for per machine of the inventory (`fit_series_cache`). Today's
exporter serves ~115 series; a cache smaller than the fleet's working set evicts each machine just
before its next scrape (an LRU over a cycle), so every scrape would look its ids up again."""
DEFAULT_MAX_SERIES_PER_MACHINE = 10_000
# A minute's rollups are built this long after it ends (by the first write then): a scrape of the
# minute written later than that is merged into them on its own, a slower path (store_bulk.py).
ROLLUP_GRACE_MS = 30_000
# PostgreSQL: a write of at least this many samples (and two machines) is stored over two
# connections at once (`Store._write_in_parallel`); a smaller one is not worth a second transaction.
PARALLEL_WRITE_MIN_SAMPLES = 10_000
_EMPTY_LABELS = schema.labels_json({})


_LABEL_TEXTS: dict[tuple[tuple[str, str], ...], str] = {}
_LABEL_TEXTS_MAX = 65536


def _labels_text(labels: dict[str, str]) -> str:
    # An exporter sends its label sets in the same order at every scrape: this is mostly a hit.
    # A plain dict (emptied when full) costs less per sample than functools.lru_cache.
    if not labels:
        return _EMPTY_LABELS
    items = tuple(labels.items())
    text = _LABEL_TEXTS.get(items)
    if text is None:
        if len(_LABEL_TEXTS) >= _LABEL_TEXTS_MAX:
            _LABEL_TEXTS.clear()
        text = _LABEL_TEXTS[items] = schema.labels_json(labels)
    return text


def _names_and_values(samples: Sequence[Sample]) -> tuple[list[SeriesName], list[float]]:
    """The series key and value of each sample; the parser's `ParsedSamples` has them ready."""
    if isinstance(samples, ParsedSamples):
        return samples.keys(), samples.values
    return [(s.name, _labels_text(s.labels)) for s in samples], [s.value for s in samples]


def _first_finite(found: list[int | None], sample_values: list[float]) -> dict[int, float]:
    """`series_id -> value`: the first value of each series, NaN, ±Inf and unknown series left out."""
    values: dict[int, float] = {}
    for series_id, value in zip(found, sample_values):
        if series_id is not None and series_id not in values and isfinite(value):
            values[series_id] = value
    return values


def history_resolution(step: float) -> tuple[float, str]:
    """The step (seconds) `Store.history` uses for `step`, and its source: "raw", "minute" or "hour".

    The coarsest source the step allows; a rollup's step is rounded down to whole buckets.
    ValueError for a step <= 0.
    """
    step_ms, width = _history_resolution(step)
    return step_ms / 1000, {None: "raw", 60_000: "minute", 3_600_000: "hour"}[width]


def _history_resolution(step: float) -> tuple[int, int | None]:
    # (step in ms, the rollup's bucket width in ms or None for the raw samples)
    if not step > 0:
        raise ValueError("step must be greater than 0")
    step_ms = max(1, round(step * 1000))
    for width in sorted(schema.ROLLUPS, reverse=True):
        if step_ms >= width:
            return step_ms - step_ms % width, width
    return step_ms, None


@dataclass(frozen=True)
class HistoryPoint:
    """One step of a series' history: the bucket's start (Unix seconds) and its aggregates."""

    time: float
    min: float
    avg: float
    max: float
    count: int


@dataclass(frozen=True)
class SampleBatch:
    """The samples of one scrape of one machine, all stamped with the scrape time.

    `samples` is a list of `Sample`s (backfill, push ingest) or the parser's `ParsedSamples`
    (scrapes), whose series keys and values the store reads without a `Sample` per line.
    """

    machine_id: str
    time: float
    samples: Sequence[Sample]


class Store:
    """Samples, series and machine views in one SQL database (see `schema.py`).

    `url` is a SQLAlchemy URL: `sqlite:///path/millwatch.db` (WAL, busy timeout; the folder must
    exist) or `postgresql+psycopg://user@host/db`. A write waits at most `sqlite_busy_timeout`
    seconds for a SQLite file locked by another process; a PostgreSQL statement is cancelled after
    `postgres_statement_timeout` seconds (migrations excepted); both then raise StoreError.
    Raises `StoreError("open", ...)` for a URL it cannot use. Thread-safe: one Store is shared by
    every scrape job.
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_S,
        postgres_statement_timeout: float = POSTGRES_STATEMENT_TIMEOUT_S,
        rollup_retention: float = DEFAULT_ROLLUP_RETENTION_SECONDS,
        minute_rollup_retention: float = DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS,
        series_cache_size: int = DEFAULT_SERIES_CACHE_SIZE,
        max_series_per_machine: int = DEFAULT_MAX_SERIES_PER_MACHINE,
        clock: Callable[[], float] = time.time,
        parallel_writes: bool = True,
    ) -> None:
        if not sqlite_busy_timeout > 0 or not postgres_statement_timeout > 0:
            raise ValueError("the store's timeouts must be greater than 0")
        if not rollup_retention > 0 or not minute_rollup_retention > 0 or max_series_per_machine < 1:
            raise ValueError("rollup retentions must be greater than 0 and max_series_per_machine at least 1")
        self.rollup_retention = rollup_retention
        self.minute_rollup_retention = minute_rollup_retention
        self.max_series_per_machine = max_series_per_machine
        self.series_refused_total = 0
        # Seconds spent building rollups in SQL (within writes and on their own): the share of the
        # write path that is not the samples' insert (bench/ingest.py reports it apart).
        self.rollup_build_seconds = 0.0
        # When the rollups are due (and retention's "now"): the wall clock, or a bench's simulated one.
        self._clock = clock
        self.parallel_writes = parallel_writes
        self._sqlite_busy_ms = max(1, round(sqlite_busy_timeout * 1000))
        self._postgres_statement_ms = max(1, round(postgres_statement_timeout * 1000))
        try:
            parsed = sa.make_url(url)
        except ArgumentError as e:
            raise StoreError("open", f"not a database URL: {e}") from e
        self.url = parsed.render_as_string(hide_password=True)
        # The full URL, password included, for other components on the same database (the alert
        # store); never to be logged or shown: `url` is the printable one.
        self.sqlalchemy_url: sa.URL = parsed
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError("open", f"unsupported database {self.dialect!r} (use sqlite or postgresql)")
        try:
            self._engine = self._create_engine(parsed)
        except (SQLAlchemyError, ImportError) as e:
            raise StoreError("open", _detail(e)) from e
        self._series = SeriesCache(series_cache_size)
        self._series_cache_floor = series_cache_size
        # The rollups' watermark as this process last saw it (None: not read yet); another process
        # may have moved it since, which costs at most one needless lock (`_due_rollups`).
        self._rolled_up_ms: int | None = None
        # Plain SQL on the driver, as the samples' (store_bulk.py): run for every scrape's view,
        # SQLAlchemy's processing of each row's parameters cost more than the upsert itself.
        mark = "%s" if self.dialect == "postgresql" else "?"
        self._views_upsert = (
            "INSERT INTO machine_state (machine_id, view_json, updated_at) "
            f"VALUES ({mark}, {mark}, {mark}) ON CONFLICT (machine_id) DO UPDATE SET "
            "view_json = excluded.view_json, updated_at = excluded.updated_at"
        )
        # SQLite has one writer at a time; queueing our own writers here avoids lock-upgrade
        # failures (SQLITE_BUSY) that its busy timeout does not cover.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    def _create_engine(self, url: sa.URL) -> Engine:
        if self.dialect == "postgresql":
            connect_args = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                "options": f"-c statement_timeout={self._postgres_statement_ms}",
                # A server that stops acknowledging (host gone, network partition) would otherwise
                # hold a statement for the kernel's retransmission time, a quarter of an hour.
                "tcp_user_timeout": self._postgres_statement_ms + 5000,
            }
            return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        database = url.database or ""
        if database in ("", ":memory:"):
            engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            folder = Path(database).expanduser().absolute().parent
            if not folder.is_dir():
                raise StoreError("open", f"the folder {folder} of the SQLite database does not exist")
            engine = sa.create_engine(url)
        busy_ms = self._sqlite_busy_ms

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            _sqlite_pragmas(dbapi_connection, busy_ms)

        sa.event.listen(engine, "connect", pragmas)
        return engine

    # --- schema ----------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic, version table `scraper_alembic_version`).

        Not bound by the statement timeout: building an index on a big table takes its time.
        Safe to call from many processes at once (`migration_lock`).
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._operation("migrate"), self._engine.connect() as connection:
            # Already at head (every start but the first after an upgrade): no lock at all, so a
            # process starting beside a busy scraper never waits for the database's write lock.
            current = MigrationContext.configure(
                connection, opts={"version_table": schema.VERSION_TABLE}
            ).get_current_revision()
        if current == head:
            return
        with self._operation("migrate"), self._write_lock, self._engine.begin() as connection:
            # Any number of `serve` and `scrape` processes may start together on an empty
            # database: one migrates, the others wait for it and then find nothing to do.
            migration_lock(connection)
            if self.dialect == "postgresql":
                connection.execute(sa.text("SET LOCAL statement_timeout = 0"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # --- writes ----------------------------------------------------------------------------------

    def write_samples(self, machine_id: str, time: float, samples: list[Sample]) -> int:
        """Store one scrape's samples at `time`; returns how many rows were new.

        Non-finite values (NaN, ±Inf) are not stored: they are not measurements. Raises StoreError.
        """
        return self.write([SampleBatch(machine_id, time, samples)], operation="write_samples")

    def save_views(self, views: list[MachineView]) -> None:
        """Remember the latest view of each machine (replacing the previous one). Raises StoreError."""
        self.write([], views, operation="save_views")

    def write(
        self,
        batches: Sequence[SampleBatch],
        views: Sequence[MachineView] = (),
        *,
        operation: str = "write",
    ) -> int:
        """Store several batches and views in one transaction (all or nothing); returns new sample rows.

        Samples are stamped with their batch's time in whole milliseconds; the first value of a
        series at one time wins. A new sample of a minute whose rollups are built already is merged
        into them in the same transaction; once a minute, a write also builds the rollups of the
        minutes that are over (store_bulk.py). A machine that already has
        `max_series_per_machine` series gets no new one: the samples of refused series are
        dropped and counted in `series_refused_total`. Raises StoreError naming `operation`.

        PostgreSQL stores a fleet's write (`PARALLEL_WRITE_MIN_SAMPLES`, two machines or more) over
        two connections, split by machine: still all or nothing, but for one instant (the second
        transaction committed, the first's commit failing), after which the write raises and its
        retry stores the rest, each sample once (`_write_in_parallel`).
        """
        new_series: dict[str, dict[SeriesName, int]] = {}
        with self._operation(operation), self._write_lock:
            inserted = self._write_transaction(batches, views, new_series, self._due_rollups())
        # Only now: ids from a rolled-back transaction must never reach the cache.
        for machine_id, ids in new_series.items():
            self._series.put(machine_id, ids)
        return inserted

    def _write_transaction(
        self,
        batches: Sequence[SampleBatch],
        views: Sequence[MachineView],
        new_series: dict[str, dict[SeriesName, int]],
        advance_to: int | None,
    ) -> int:
        """One write's transaction; returns the new sample rows. `advance_to`: see `_insert_rows`."""
        with self._engine.begin() as connection:
            halves = self._parallel_halves(batches)
            if halves is not None:
                inserted = self._write_in_parallel(connection, halves, new_series, advance_to)
            else:
                rows = self._rows(connection, batches, new_series)
                # Batches of one machine at the same millisecond collide in the stage: the first wins.
                inserted = self._insert_rows(connection, rows, advance_to) if rows else 0
            self._upsert_views(connection, views)
        return inserted

    def _rows(
        self,
        connection: Connection,
        batches: Sequence[SampleBatch],
        new_series: dict[str, dict[SeriesName, int]],
    ) -> SampleRows:
        rows = SampleRows()
        for batch in batches:
            names, sample_values = _names_and_values(batch.samples)
            values = self._batch_values(connection, batch.machine_id, names, sample_values, new_series)
            rows.add(round(batch.time * 1000), values)
        return rows

    def _parallel_halves(
        self, batches: Sequence[SampleBatch]
    ) -> tuple[list[SampleBatch], list[SampleBatch]] | None:
        """PostgreSQL, a big write of several machines: its batches in two halves of about as many
        samples, each machine's batches in one half, in their order (so the halves' keys are
        disjoint: neither connection ever waits for a row of the other). None: one connection."""
        if self.dialect != "postgresql" or not self.parallel_writes:
            return None
        total = sum(len(batch.samples) for batch in batches)
        if total < PARALLEL_WRITE_MIN_SAMPLES:
            return None
        by_machine: dict[str, list[SampleBatch]] = {}
        for batch in batches:
            by_machine.setdefault(batch.machine_id, []).append(batch)
        first: list[SampleBatch] = []
        second: list[SampleBatch] = []
        count = 0
        for group in by_machine.values():
            (first if count < total // 2 else second).extend(group)
            count += sum(len(batch.samples) for batch in group)
        return (first, second) if first and second else None

    def _write_in_parallel(
        self,
        connection: Connection,
        halves: tuple[list[SampleBatch], list[SampleBatch]],
        new_series: dict[str, dict[SeriesName, int]],
        advance_to: int | None,
    ) -> int:
        """Store the second half's rows over a second connection while this one stores the first
        half's (the server's insert is most of a write's time and uses one core a connection).

        This transaction locks the watermark first and commits last: a build due now runs first
        (unless the second half holds samples of the minutes it builds: then last, once the second
        half is committed), then the second transaction (no lock of its own) stores its half with
        the watermark after the build and commits after both halves are stored and before this
        one, so a build in another process, waiting for this lock, sees every row of the write (a
        build and the second half at once were slower: three server processes on two cores). A
        failure before the second commit rolls both back; only this transaction's own commit
        failing after it (a connection lost at that moment) leaves the second half stored alone:
        the write raises, and its retry (writes are idempotent) stores the rest, each sample once.
        """
        first, second = halves
        rows_b = self._rows(connection, second, new_series)
        if new_series:
            # Series ids were looked up or created in this uncommitted transaction: the second
            # connection could not see new ones (a first scrape, a restart). One connection, then.
            rows = self._rows(connection, first, new_series)
            rows.extend(rows_b)
            return self._insert_rows(connection, rows, advance_to) if rows else 0
        dbapi_connection: Any = connection.connection.dbapi_connection
        oldest_b = rows_b.oldest()
        # The second half merging its samples of the minutes this write builds would wait for this
        # transaction's uncommitted rollup rows, and this one for its commit: such a write (a
        # backfill's, a late one) builds after both halves are stored, on this connection alone.
        build_first = advance_to is None or oldest_b is None or oldest_b >= advance_to
        with dbapi_connection.cursor() as cursor:
            watermark = lock_watermark_postgres(cursor, advance_to)
            if build_first:
                watermark, build_seconds = build_postgres(cursor, watermark, advance_to, self._beside)
                self.rollup_build_seconds += build_seconds
        side = _OtherConnection(
            self._engine,
            lambda cursor: store_rows_postgres(cursor, rows_b, watermark) if rows_b else 0,
            "second half",
        )
        side.start()
        try:
            # The first half's rows are built while the server stores the second half.
            rows_a = self._rows(connection, first, new_series)
            with dbapi_connection.cursor() as cursor:
                inserted = store_rows_postgres(cursor, rows_a, watermark) if rows_a else 0
        except BaseException:
            side.roll_back()
            raise
        inserted += side.commit()
        if not build_first:
            with dbapi_connection.cursor() as cursor:
                watermark, build_seconds = build_postgres(cursor, watermark, advance_to)
            self.rollup_build_seconds += build_seconds
        self._rolled_up_ms = watermark
        return inserted

    def _beside(self, work: Callable[[Any], object]) -> _OtherConnection[object]:
        """Start `work(cursor)` on another connection of the pool (store_bulk.Beside: half of a
        PostgreSQL rollup build); the caller commits it or rolls it back."""
        side = _OtherConnection(self._engine, work, "build beside")
        side.start()
        return side

    def _batch_values(
        self,
        connection: Connection,
        machine_id: str,
        names: list[SeriesName],
        sample_values: list[float],
        new_series: dict[str, dict[SeriesName, int]],
    ) -> dict[int, float]:
        """`series_id -> value` of one batch: the first value of a series wins; NaN and ±Inf are
        not measurements; samples of refused series are left out."""
        ids = new_series.get(machine_id) or self._series.get(machine_id)
        fresh = ids is None
        if ids is None:
            ids = self._series_ids(connection, machine_id, names, new_series)
        while True:
            found = list(map(ids.get, names))
            if None not in found:
                # The common batch, in C: every series known, each once, every value finite.
                values = dict(zip(cast("list[int]", found), sample_values))
                if len(values) == len(found) and all(map(isfinite, sample_values)):
                    return values
                return _first_finite(found, sample_values)
            if fresh:
                return _first_finite(found, sample_values)
            # A series not cached yet: create or load it, then once more.
            ids = self._series_ids(connection, machine_id, names, new_series)
            fresh = True

    def delete_views(self, machine_ids: Iterable[str]) -> None:
        """Forget the saved views of these machines (removed from the inventory). Raises StoreError."""
        ids = list(machine_ids)
        if not ids:
            return
        table = schema.machine_state
        with self._operation("delete_views"), self._write_lock, self._engine.begin() as connection:
            connection.execute(table.delete().where(table.c.machine_id.in_(ids)))
        for machine_id in ids:
            self._series.forget(machine_id)

    def prune(
        self,
        before: float,
        *,
        batch_rows: int = PRUNE_BATCH_ROWS,
        keep_going: Callable[[], bool] = lambda: True,
        rollups_before: float | None = None,
    ) -> int:
        """Delete every sample older than `before` (Unix seconds); returns how many were deleted.

        Goes along the primary key from its start, oldest samples first, about `batch_rows` rows
        a transaction, so that a big delete never holds the database's write lock for long: writes
        of the scraper go on between batches. Before each batch `keep_going()` is asked, and a
        False ends the prune there (a stopping service does not wait for the rest). Then the
        rollup buckets that started before `rollups_before` are deleted too (not counted in the
        result); by default the minute buckets older than the store's `minute_rollup_retention`
        and the hour buckets older than its `rollup_retention`. Series and saved views are kept.
        Raises StoreError; the batches deleted before the error stay deleted.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        before_ms = math.ceil(before * 1000)
        # Every sample about to go is in the rollups first (its minute ends by the watermark).
        watermark = self._advance_rollups(
            max(self._rollups_due_to(), _minute_floor(before_ms - 1) + MINUTE_MS), "prune"
        )
        # Batches along the key from its start (the oldest slices; time first): each finds where
        # it ends, `batch_rows` rows on, and deletes up to there. In the slice that holds `before`
        # the older rows are interleaved with the kept ones: the batches go on from where the last
        # one ended, so no kept row is read twice.
        last = (before_ms - 1) // schema.BUCKET_MS
        time_ms = schema.sample_time_sql()
        older = f"(bucket, series_id, offset_ms) > (:b, :s, :o) AND bucket <= :last AND {time_ms} < :before"
        find_end = sa.text(
            f"SELECT bucket, series_id, offset_ms FROM samples WHERE {older} "
            "ORDER BY bucket, series_id, offset_ms LIMIT 1 OFFSET :skip"
        )
        delete = sa.text(
            f"DELETE FROM samples WHERE {older} AND (bucket, series_id, offset_ms) <= (:eb, :es, :eo)"
        )
        # Past every key (the last batch deletes the rest).
        end_of_all = {"eb": last + 1, "es": 0, "eo": 0}
        params: dict[str, int] = {"b": -1, "s": -1, "o": -1, "last": last, "before": before_ms}
        deleted = 0
        while keep_going():
            with self._operation("prune"), self._write_lock, self._engine.begin() as connection:
                end = connection.execute(find_end, {**params, "skip": batch_rows - 1}).first()
                bounds = end_of_all if end is None else {"eb": end[0], "es": end[1], "eo": end[2]}
                deleted += connection.execute(delete, {**params, **bounds}).rowcount
            if end is None:
                break
            params.update(b=end[0], s=end[1], o=end[2])
        if keep_going():
            now = self._clock()
            minute = now - self.minute_rollup_retention if rollups_before is None else rollups_before
            # The hour not built yet is built from its minutes: they stay until then.
            minute = min(minute, hour_start(watermark) / 1000)
            hour = now - self.rollup_retention if rollups_before is None else rollups_before
            self._prune_rollups({schema.rollup_minute: minute, schema.rollup_hour: hour})
        return deleted

    def _prune_rollups(self, cutoffs: dict[sa.Table, float]) -> None:
        with self._operation("prune"), self._write_lock, self._engine.begin() as connection:
            for table, before in cutoffs.items():
                connection.execute(table.delete().where(table.c.bucket_ms < math.floor(before * 1000)))

    def fit_series_cache(self, machines: int) -> None:
        """Make the series-id cache hold `SERIES_CACHE_PER_MACHINE` ids per machine of a fleet of
        `machines` (never less than the size it was opened with)."""
        self._series.resize(max(self._series_cache_floor, machines * SERIES_CACHE_PER_MACHINE))

    def _series_ids(
        self,
        connection: Connection,
        machine_id: str,
        names: list[SeriesName],
        new: dict[str, dict[SeriesName, int]],
    ) -> dict[SeriesName, int]:
        """Ids of the machine's series named in `names`, creating missing ones (within the bound)."""
        found = self._load_series(connection, machine_id)
        missing = sorted(set(names) - found.keys())
        room = self.max_series_per_machine - len(found)
        if len(missing) > room:
            refused = len(missing) - max(room, 0)
            self.series_refused_total += refused
            log.warning(
                "machine %s: %d new series refused, it has %d (max_series_per_machine)",
                machine_id,
                refused,
                len(found),
            )
            missing = missing[: max(room, 0)]
        if missing:
            # Plain SQL, one statement run for many rows given as tuples: a compiled insert took a
            # parameter dict a row, which cost more than the insert (a 10,000-machine fleet's first
            # start creates a million series, and its writer fell minutes behind meanwhile).
            # SQLAlchemy still wraps the errors: a refusal stays an IntegrityError (store_writer).
            connection.exec_driver_sql(
                _INSERT_SERIES[self.dialect], [(machine_id, metric, labels) for metric, labels in missing]
            )
            found = self._load_series(connection, machine_id)
        new[machine_id] = found
        return found

    @staticmethod
    def _load_series(connection: Connection, machine_id: str) -> dict[SeriesName, int]:
        table = schema.series
        result = connection.execute(
            sa.select(table.c.id, table.c.metric, table.c.labels_json).where(table.c.machine_id == machine_id)
        )
        return {(metric, labels): series_id for series_id, metric, labels in result}

    def _insert_rows(self, connection: Connection, rows: SampleRows, advance_to: int | None) -> int:
        """Store the new rows among `rows` (their late rollups merged) and, given `advance_to`,
        build the rollups of the minutes before it; returns how many rows were new."""
        return self._write_rows(connection, rows, advance_to)[0]

    def _write_rows(
        self, connection: Connection, rows: SampleRows, advance_to: int | None
    ) -> tuple[int, int]:
        """`_insert_rows`, and the watermark after it."""
        dbapi_connection = connection.connection.dbapi_connection
        if self.dialect == "postgresql":
            inserted, watermark, build_seconds = write_postgres(
                dbapi_connection, rows, advance_to, self._beside
            )
        else:
            inserted, watermark, build_seconds = write_sqlite(dbapi_connection, rows, advance_to)
        self.rollup_build_seconds += build_seconds
        # Read under the lock: the value after this transaction, if it commits (if it does not, a
        # too-high guess only makes the next build come later; a build starts from the stored one).
        self._rolled_up_ms = watermark
        return inserted, watermark

    def _rollups_due_to(self) -> int:
        """The watermark due now: the start of the minute `ROLLUP_GRACE_MS` ago."""
        return _minute_floor(math.floor(self._clock() * 1000) - ROLLUP_GRACE_MS)

    def _due_rollups(self) -> int | None:
        """The watermark the rollups should be built up to now, or None when they are (as far as
        this process knows): the minutes that ended at least `ROLLUP_GRACE_MS` ago."""
        target = self._rollups_due_to()
        known = self._rolled_up_ms
        return target if known is None or target > known else None

    def _advance_rollups(self, target: int, operation: str) -> int:
        """Build the rollups up to `target` in a transaction of their own (no samples written);
        returns the watermark after it (another process may have moved it further)."""
        with self._operation(operation), self._write_lock, self._engine.begin() as connection:
            return self._write_rows(connection, SampleRows(), target)[1]

    def flush_rollups(self) -> None:
        """Build the rollups of every stored sample now, the minute being scraped and samples
        stamped in the future included (writes build those of closed minutes by themselves, and
        `history` reads the samples the rollups do not cover yet: this is for a bench or a test
        that wants the tables whole). Later samples of those minutes are then merged one by one,
        a slower path. Raises StoreError."""
        with self._operation("flush_rollups"), self._engine.connect() as connection:
            newest = connection.execute(sa.text(_NEWEST_SAMPLE)).scalar()
        now = math.floor(self._clock() * 1000)
        target = _minute_floor(max(now, -1 if newest is None else int(newest))) + MINUTE_MS
        self._advance_rollups(target, "flush_rollups")

    def _upsert_views(self, connection: Connection, views: Sequence[MachineView]) -> None:
        if not views:
            return
        now = time.time()
        latest = {v.id: v for v in views}  # the last view of a machine wins
        # Rows in key order: concurrent writers (several scraper processes) then lock rows in the
        # same order and cannot deadlock each other.
        rows = [(v.id, _VIEW_JSON(v.to_dict()), now) for _, v in sorted(latest.items())]
        # One prepared statement run for all the rows (executemany).
        dbapi_connection: Any = connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.executemany(self._views_upsert, rows)
        finally:
            cursor.close()

    # --- reads -----------------------------------------------------------------------------------

    def load_views(self, *, changed_since: float | None = None) -> list[MachineView]:
        """Every saved view, sorted by machine id; with `changed_since` (Unix seconds, the writers'
        clocks) only those saved after it. Unreadable rows are skipped (and logged)."""
        views: list[MachineView] = []
        for machine_id, text in self.load_view_texts(changed_since=changed_since):
            view = decode_view(machine_id, text)
            if view is not None:
                views.append(view)
        return views

    def load_view_texts(self, *, changed_since: float | None = None) -> list[tuple[str, str]]:
        """`(machine id, saved JSON text)` of every saved view, as `load_views` selects them, not
        decoded: a reader that keeps what it decoded before decodes only the texts that changed."""
        table = schema.machine_state
        query = sa.select(table.c.machine_id, table.c.view_json).order_by(table.c.machine_id)
        if changed_since is not None:
            query = query.where(table.c.updated_at > changed_since)
        with self._operation("load_views"), self._engine.connect() as connection:
            return [(machine_id, text) for machine_id, text in connection.execute(query)]

    def query_samples(
        self,
        machine_id: str,
        metric: str,
        start: float,
        end: float,
        labels: dict[str, str] | None = None,
    ) -> list[tuple[float, float]]:
        """(time, value) pairs of one series with start <= time <= end, oldest first.

        The series is (machine_id, metric, labels); labels default to none (the sensor readings).
        Raises StoreError.
        """
        start_ms, end_ms = math.ceil(start * 1000), math.floor(end * 1000)
        with self._operation("query_samples"), self._engine.connect() as connection:
            series_id = _series_id(connection, machine_id, metric, labels)
            stored = _stored_buckets(connection)
            if series_id is None or stored is None:
                return []
            buckets = _sample_slices(connection, start_ms, end_ms + 1, stored)
            found: list[tuple[float, float]] = []
            # In chunks: a statement's list of slices stays short whatever the range.
            for at in range(0, len(buckets), QUERY_BUCKETS):
                statement = _history_part(
                    schema.samples, series_id, start_ms, end_ms + 1, buckets=buckets[at : at + QUERY_BUCKETS]
                ).order_by("t")
                found.extend((t / 1000, float(v)) for t, v, *_ in connection.execute(statement))
            return found

    def history(
        self,
        machine_id: str,
        metric: str,
        start: float,
        end: float,
        step: float,
        labels: dict[str, str] | None = None,
    ) -> list[HistoryPoint]:
        """One series between `start` and `end` (Unix seconds) in steps of `step` seconds, oldest first.

        Each point covers [time, time + step) and aggregates what is stored there (steps without
        data are left out). The source is the coarsest that the step allows: the hour rollup for
        steps of an hour or more, the minute rollup for a minute or more, the raw samples below.
        A step is rounded down to a whole number of its source's buckets. Start and end select
        buckets (or samples) by their start time. The minutes and hours whose rollups are not
        built yet (the last one or two minutes, the current hour) are aggregated from the finer
        rollup and the samples, so a point is exact up to the newest sample. Raises StoreError;
        ValueError for a step <= 0.
        """
        step_ms, width = _history_resolution(step)
        start_ms, end_ms = math.ceil(start * 1000), math.floor(end * 1000)
        with self._operation("history"), self._engine.connect() as connection:
            series_id = _series_id(connection, machine_id, metric, labels)
            if series_id is None:
                return []
            return self._history(connection, series_id, start_ms, end_ms, step_ms, width)

    def _history(
        self,
        connection: Connection,
        series_id: int,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        width: int | None,
    ) -> list[HistoryPoint]:
        stored = _stored_buckets(connection)
        if width is None:
            buckets = _sample_slices(connection, start_ms, end_ms + 1, stored)
            parts = [_history_part(schema.samples, series_id, start_ms, end_ms + 1, buckets=buckets)]
        else:
            # Buckets are selected by their start: the rows (and samples) of the buckets that start
            # in [start, end] are those with a time in [lo, hi).
            lo = -(-start_ms // width) * width
            hi = end_ms - end_ms % width + width
            # One statement, so one snapshot: the watermark and the tables it describes agree.
            watermark = sa.select(schema.rollup_state.c.rolled_up_to_ms).scalar_subquery()
            # What the rollups do not hold yet comes from the finer rollup and the samples: the
            # slices from the watermark read now on (the statement's own can only be later).
            read = connection.execute(sa.select(schema.rollup_state.c.rolled_up_to_ms)).scalar()
            since = max(lo, 0 if read is None else int(read))
            buckets = _sample_slices(connection, since, hi, stored)
            parts = [_history_part(schema.samples, series_id, lo, hi, since=watermark, buckets=buckets)]
            # The rollups' buckets are read one seek each too (keyed time first), those stored.
            minute_key, hour_key = schema.rollup_minute.c.bucket_ms, schema.rollup_hour.c.bucket_ms
            minutes = _stored_span(connection, minute_key)
            if width == MINUTE_MS:
                buckets = _stored_steps(connection, minute_key, lo, hi, MINUTE_MS, minutes)
                parts.append(
                    _history_part(schema.rollup_minute, series_id, lo, hi, until=watermark, buckets=buckets)
                )
            else:
                hour = watermark - watermark % HOUR_MS
                # The minutes of the hour not built yet: from the hour of the watermark read now.
                first = max(lo, hour_start(since))
                buckets = _stored_steps(connection, minute_key, first, hi, MINUTE_MS, minutes)
                parts.append(
                    _history_part(
                        schema.rollup_minute, series_id, lo, hi, since=hour, until=watermark, buckets=buckets
                    )
                )
                hours = _stored_span(connection, hour_key)
                buckets = _stored_steps(connection, hour_key, lo, hi, HOUR_MS, hours)
                parts.append(
                    _history_part(schema.rollup_hour, series_id, lo, hi, until=hour, buckets=buckets)
                )
        rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
        bucket = (rows.c.t - rows.c.t % step_ms).label("bucket")
        statement = (
            sa.select(
                bucket,
                sa.func.min(rows.c.lo),
                sa.func.sum(rows.c.total),
                sa.func.max(rows.c.hi),
                sa.func.sum(rows.c.n),
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        return [
            HistoryPoint(int(t) / 1000, float(lo), float(total) / int(n), float(hi), int(n))
            for t, lo, total, hi, n in connection.execute(statement)
        ]

    def last_value(self, machine_id: str, metric: str, *, before: float | None = None) -> float | None:
        """The value of the newest sample of the unlabelled series (machine, metric) older than `before`.

        None when there is none. Raises StoreError. (The backfill's starting point.)
        """
        samples = schema.samples
        with self._operation("last_value"), self._engine.connect() as connection:
            series_id = _series_id(connection, machine_id, metric, None)
            stored = _stored_buckets(connection)
            if series_id is None or stored is None:
                return None
            first, top = stored
            statement = (
                sa.select(samples.c.value)
                .where(samples.c.series_id == series_id)
                .order_by(samples.c.bucket.desc(), samples.c.offset_ms.desc())
                .limit(1)
            )
            if before is not None:
                # A batch at `before` is stored at round(before * 1000) (`_write_transaction`):
                # strictly older is below that. (Below its ceiling, the ceiling once, let a scrape's
                # own sample through whenever its time rounded down: a backfill after a restart
                # then started at the reading that scrape saw and fetched nothing, losing the gap.)
                before_ms = round(before * 1000)
                statement = statement.where(schema.SAMPLE_TIME_MS < before_ms)
                top = min(top, (before_ms - 1) // schema.BUCKET_MS)
            # Newest slices first, a few hours of them a statement, until one holds the series.
            while top >= first:
                chunk = list(range(top, max(first, top - QUERY_BUCKETS + 1) - 1, -1))
                value = connection.execute(
                    statement.where(_in_buckets(samples.c.bucket, chunk))
                ).scalar_one_or_none()
                if value is not None:
                    return float(value)
                # The next stored slice below this chunk, one seek: an empty stretch costs one
                # statement however long it is.
                below = connection.execute(
                    sa.select(sa.func.max(samples.c.bucket)).where(samples.c.bucket <= top - QUERY_BUCKETS)
                ).scalar()
                if below is None:
                    break
                top = int(below)
        return None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the scraper's lease and notification helpers)."""
        return self._engine

    def ping(self) -> bool:
        """True when the database answers a trivial query now."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as e:
            log.debug("store ping failed: %s", _detail(e))
            return False
        return True

    @contextlib.contextmanager
    def transaction(self, operation: str) -> Iterator[Connection]:
        """A transaction for tables kept by other packages (the server's users, tokens, sessions).

        Queued behind this store's own SQLite writers, and failures raised as StoreError(operation).
        """
        with self._operation(operation), self._write_lock, self._engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def reading(self, operation: str) -> Iterator[Connection]:
        """A read-only connection for tables kept by other packages; failures raised as StoreError."""
        with self._operation(operation), self._engine.connect() as connection:
            yield connection

    def close(self) -> None:
        """Close every pooled connection; a later call opens new ones (the store stays usable).
        Nothing is held in memory: the rollups not built yet are built by the next write that finds
        them due, in this process or another."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _operation(self, name: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as e:
            raise StoreError(name, _detail(e)) from e
        except Exception as e:
            # The bulk writes use the driver's connection directly (store_bulk.py): its errors too.
            dbapi = self._engine.dialect.dbapi
            if dbapi is not None and isinstance(e, dbapi.Error):
                # Wrapped as SQLAlchemy wraps them, so that a refusal (IntegrityError, DataError)
                # reads as one whichever path raised it (store_writer.refused).
                wrapped = DBAPIError.instance(None, None, e, dbapi.Error, dialect=self._engine.dialect)
                raise StoreError(name, _detail(e)) from wrapped
            raise


T = TypeVar("T")


class _OtherConnection(threading.Thread, Generic[T]):
    """Work on a second connection beside the writing thread's (`store_bulk.Beside`): the second
    half of a parallel write (`Store._write_in_parallel`), half of a PostgreSQL rollup build. Runs
    `work(cursor)` in a transaction left open until `commit` or `roll_back`, which the writing
    thread calls."""

    def __init__(self, engine: Engine, work: Callable[[Any], T], name: str) -> None:
        super().__init__(name=f"millwatch store, {name}", daemon=True)
        self._engine = engine
        self._work = work
        self._connection: Connection | None = None
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._connection = self._engine.connect()
            self._connection.begin()
            dbapi_connection: Any = self._connection.connection.dbapi_connection
            with dbapi_connection.cursor() as cursor:
                self._result = self._work(cursor)
        except BaseException as e:  # raised in the writing thread by `commit`
            self._error = e

    def commit(self) -> T:
        """Wait for the work, commit it; returns what it returned. Raises what it raised."""
        self.join()
        try:
            if self._error is not None:
                raise self._error
            assert self._connection is not None
            self._connection.commit()
            return cast("T", self._result)
        finally:
            self._close()

    def roll_back(self) -> None:
        self.join()
        self._close()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()  # rolls back what is not committed
            self._connection = None


def decode_view(machine_id: str, text: str) -> MachineView | None:
    """A saved view from its JSON text; None (logged) when it cannot be read."""
    try:
        return MachineView.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        log.warning("skipping the unreadable saved view of %s: %s", machine_id, e)
        return None


def _history_part(
    table: sa.Table,
    series_id: Any,
    lo: int,
    hi: int,
    *,
    since: Any = None,
    until: Any = None,
    buckets: list[int] | None = None,
) -> sa.Select[Any]:
    """(t, lo, total, hi, n) of one series' samples or rollup rows with a time in [lo, hi), and in
    [since, until) when given (SQL expressions: the watermark). They are read in `buckets`, the
    samples' slices or the rollup's buckets that may hold them: a seek each."""
    if table is schema.samples:
        time_column = schema.SAMPLE_TIME_MS
        value = table.c.value
        extra = [_in_buckets(table.c.bucket, buckets or [])]
        columns = [time_column.label("t"), value.label("lo"), value.label("total"), value.label("hi")]
        columns.append(sa.literal(1, sa.BigInteger).label("n"))
    else:
        time_column = table.c.bucket_ms
        extra = [_in_buckets(time_column, buckets or [])]
        columns = [
            time_column.label("t"),
            table.c.min.label("lo"),
            table.c.sum.label("total"),
            table.c.max.label("hi"),
            table.c.count.label("n"),
        ]
    statement = sa.select(*columns).where(
        *extra, table.c.series_id == series_id, time_column >= lo, time_column < hi
    )
    if since is not None:
        statement = statement.where(time_column >= since)
    if until is not None:
        statement = statement.where(time_column < until)
    return statement


# A view's JSON as json.dumps(allow_nan=False) writes it; a view has no cycles to look for.
_VIEW_JSON = json.JSONEncoder(allow_nan=False, check_circular=False).encode
# The newest sample's time: the newest slice (one seek to the end of the key), read whole.
_NEWEST_SAMPLE = (
    f"SELECT max{schema.sample_time_sql()} FROM samples WHERE bucket = (SELECT max(bucket) FROM samples)"
)
# A machine's new series (another process may create the same ones at the same time).
_INSERT_SERIES = {
    dialect: f"INSERT INTO series (machine_id, metric, labels_json) VALUES ({mark}, {mark}, {mark}) "
    "ON CONFLICT DO NOTHING"
    for dialect, mark in (("sqlite", "?"), ("postgresql", "%s"))
}
# Slices a statement reads at most (4 hours): a series over a long range is read in chunks.
QUERY_BUCKETS = 240
# Keys listed before the next stored one is looked up (a day of minutes): see `_stored_steps`.
_KEY_RUN = 1440


def _in_buckets(column: sa.ColumnElement[int], buckets: list[int]) -> Any:
    # Written into the SQL, not bound one parameter a bucket: a long list stays one parameter-less
    # IN, which both engines answer with a seek a bucket on the key's first column.
    name = f"buckets_{column.table.name}"
    return column.in_(sa.bindparam(name, buckets, expanding=True, literal_execute=True))


def _stored_buckets(connection: Connection) -> tuple[int, int] | None:
    """The oldest and the newest slice holding samples (a seek to each end of the key), or None."""
    return _stored_span(connection, schema.samples.c.bucket)


def _stored_span(connection: Connection, column: sa.ColumnElement[int]) -> tuple[int, int] | None:
    """The least and the greatest of a key's first column (a seek to each end), or None."""
    # Two scalar subqueries in one statement: each is a seek (one SELECT min(), max() is a scan on
    # SQLite, which only optimizes a lone min or max).
    table = column.table
    row = connection.execute(
        sa.select(
            sa.select(sa.func.min(column)).select_from(table).scalar_subquery(),
            sa.select(sa.func.max(column)).select_from(table).scalar_subquery(),
        )
    ).one()
    return None if row[0] is None or row[1] is None else (int(row[0]), int(row[1]))


def _stored_steps(
    connection: Connection,
    column: sa.ColumnElement[int],
    first: int,
    stop: int,
    step: int,
    stored: tuple[int, int] | None,
) -> list[int]:
    """`first`, `first + step`, … below `stop` that may be stored in `column` (a key's first
    column; `stored` its least and greatest): computed in runs of `_KEY_RUN`, and where a run
    ends, the next stored key found with one seek, so an empty stretch costs one statement,
    however long (one old sample and years of nothing before now must not be a list of every
    minute in between)."""
    if stored is None:
        return []
    low, high = stored
    stop = min(stop, high + 1)
    if first < low:
        first += -(-(low - first) // step) * step
    keys: list[int] = []
    while first < stop:
        end = min(stop, first + step * _KEY_RUN)
        keys.extend(range(first, end, step))
        if end >= stop:
            break
        following = connection.execute(sa.select(sa.func.min(column)).where(column >= end)).scalar()
        if following is None:
            break
        first = end + -(-(int(following) - end) // step) * step
    return keys


def _sample_slices(
    connection: Connection, start_ms: int, end_ms: int, stored: tuple[int, int] | None
) -> list[int]:
    """The stored slices of `samples` that may hold times in [start_ms, end_ms)."""
    if end_ms <= start_ms:
        return []
    first, stop = start_ms // schema.BUCKET_MS, (end_ms - 1) // schema.BUCKET_MS + 1
    return _stored_steps(connection, schema.samples.c.bucket, first, stop, 1, stored)


def _series_id(
    connection: Connection, machine_id: str, metric: str, labels: dict[str, str] | None
) -> int | None:
    series = schema.series
    return connection.execute(
        sa.select(series.c.id).where(
            series.c.machine_id == machine_id,
            series.c.metric == metric,
            series.c.labels_json == schema.labels_json(labels or {}),
        )
    ).scalar_one_or_none()


def _minute_floor(time_ms: int) -> int:
    return time_ms - time_ms % MINUTE_MS


def _sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL loses at most the last transactions on power loss, never consistency.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # The staging table of every write is a temporary one: keep it off the disk.
        cursor.execute("PRAGMA temp_store = MEMORY")
    finally:
        cursor.close()


def _detail(error: BaseException) -> str:
    """A one-line cause without SQL text or parameters (which could be long, or hold data)."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = "; ".join(lines[:2]) if lines else type(cause).__name__
    return text[:300]
