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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from scraper import schema
from scraper.errors import StoreError
from scraper.exposition import Sample
from scraper.state import MachineView

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 5.0
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_STATEMENT_TIMEOUT_S = 10.0
PRUNE_BATCH_ROWS = 10_000
_ROWS_PER_STATEMENT = 1000  # 3 parameters a row: well under SQLite's and PostgreSQL's limits

SeriesKey = tuple[str, str, str]  # machine_id, metric, labels_json


@dataclass(frozen=True)
class SampleBatch:
    """The samples of one scrape of one machine, all stamped with the scrape time."""

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
    ) -> None:
        if not sqlite_busy_timeout > 0 or not postgres_statement_timeout > 0:
            raise ValueError("the store's timeouts must be greater than 0")
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
        self._series: dict[SeriesKey, int] = {}
        self._cache_lock = threading.Lock()
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
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._operation("migrate"), self._write_lock, self._engine.begin() as connection:
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

        Raises StoreError naming `operation`.
        """
        new_series: dict[SeriesKey, int] = {}
        with self._operation(operation), self._write_lock, self._engine.begin() as connection:
            rows: list[dict[str, Any]] = []
            for batch in batches:
                keyed = [
                    ((batch.machine_id, s.name, schema.labels_json(s.labels)), s.value)
                    for s in batch.samples
                    if math.isfinite(s.value)
                ]
                ids = self._series_ids(connection, batch.machine_id, {k for k, _ in keyed}, new_series)
                seen: set[int] = set()
                for key, value in keyed:
                    series_id = ids[key]
                    if series_id not in seen:  # one value per series and time, the first one
                        seen.add(series_id)
                        rows.append({"series_id": series_id, "time": batch.time, "value": value})
            rows.sort(key=lambda row: (row["series_id"], row["time"]))  # key order, as for the views
            inserted = self._insert_samples(connection, rows)
            self._upsert_views(connection, views)
        # Only now: ids from a rolled-back transaction must never reach the cache.
        with self._cache_lock:
            self._series.update(new_series)
        return inserted

    def delete_views(self, machine_ids: Iterable[str]) -> None:
        """Forget the saved views of these machines (removed from the inventory). Raises StoreError."""
        ids = list(machine_ids)
        if not ids:
            return
        table = schema.machine_state
        with self._operation("delete_views"), self._write_lock, self._engine.begin() as connection:
            connection.execute(table.delete().where(table.c.machine_id.in_(ids)))

    def prune(
        self,
        before: float,
        *,
        batch_rows: int = PRUNE_BATCH_ROWS,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> int:
        """Delete every sample older than `before` (Unix seconds); returns how many were deleted.

        Deletes the oldest first, about `batch_rows` at a time, each batch its own transaction, so
        that a big delete never holds the database's write lock for long: writes of the scraper go
        on between batches. Before each batch `keep_going()` is asked, and a False ends the prune
        there (a stopping service does not wait for the rest). Series and saved views are kept.
        Raises StoreError; the batches deleted before the error stay deleted.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        samples = schema.samples
        # The time of the batch_rows-th oldest sample: deleting up to it is one index range.
        # (Samples of one scrape share their time, so a batch may be a few rows bigger.)
        nth_oldest = (
            sa.select(samples.c.time)
            .where(samples.c.time < before)
            .order_by(samples.c.time)
            .limit(1)
            .offset(batch_rows - 1)
        )
        deleted = 0
        while keep_going():
            with self._operation("prune"), self._write_lock, self._engine.begin() as connection:
                cutoff = connection.execute(nth_oldest).scalar_one_or_none()
                last = cutoff is None
                condition = samples.c.time < before if cutoff is None else samples.c.time <= cutoff
                deleted += connection.execute(samples.delete().where(condition)).rowcount
            if last:
                break
        return deleted

    def _series_ids(
        self, connection: Connection, machine_id: str, keys: set[SeriesKey], new: dict[SeriesKey, int]
    ) -> dict[SeriesKey, int]:
        with self._cache_lock:
            known = {k: self._series[k] for k in keys if k in self._series}
        known.update({k: new[k] for k in keys if k in new})
        missing = keys - known.keys()
        if not missing:
            return known
        found = self._load_series(connection, machine_id)
        if missing - found.keys():
            statement = (
                self._dialect_insert(schema.series)
                .values(
                    [
                        {"machine_id": m, "metric": metric, "labels_json": labels}
                        for m, metric, labels in sorted(missing - found.keys())
                    ]
                )
                .on_conflict_do_nothing()
            )
            connection.execute(statement)
            found = self._load_series(connection, machine_id)
        new.update(found)
        known.update({k: found[k] for k in missing})
        return known

    @staticmethod
    def _load_series(connection: Connection, machine_id: str) -> dict[SeriesKey, int]:
        table = schema.series
        result = connection.execute(
            sa.select(table.c.id, table.c.metric, table.c.labels_json).where(table.c.machine_id == machine_id)
        )
        return {(machine_id, metric, labels): series_id for series_id, metric, labels in result}

    def _insert_samples(self, connection: Connection, rows: list[dict[str, Any]]) -> int:
        inserted = 0
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            # RETURNING lists exactly the new rows; rowcount is not reliable for multi-row inserts.
            statement = (
                self._dialect_insert(schema.samples)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(schema.samples.c.series_id)
            )
            inserted += len(connection.execute(statement).all())
        return inserted

    def _upsert_views(self, connection: Connection, views: Sequence[MachineView]) -> None:
        if not views:
            return
        now = time.time()
        latest = {v.id: v for v in views}  # the last view of a machine wins
        # Rows in key order: concurrent writers (several scraper processes) then lock rows in the
        # same order and cannot deadlock each other.
        rows = [
            {"machine_id": v.id, "view_json": json.dumps(v.to_dict(), allow_nan=False), "updated_at": now}
            for _, v in sorted(latest.items())
        ]
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            insert = self._dialect_insert(schema.machine_state).values(chunk)
            statement = insert.on_conflict_do_update(
                index_elements=[schema.machine_state.c.machine_id],
                set_={"view_json": insert.excluded.view_json, "updated_at": insert.excluded.updated_at},
            )
            connection.execute(statement)

    def _dialect_insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    # --- reads -----------------------------------------------------------------------------------

    def load_views(self) -> list[MachineView]:
        """Every saved view, sorted by machine id. Unreadable rows are skipped (and logged)."""
        table = schema.machine_state
        with self._operation("load_views"), self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.machine_id, table.c.view_json).order_by(table.c.machine_id)
            ).all()
        views: list[MachineView] = []
        for machine_id, text in rows:
            try:
                views.append(MachineView.from_dict(json.loads(text)))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("skipping the unreadable saved view of %s: %s", machine_id, e)
        return views

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
        series, samples = schema.series, schema.samples
        statement = (
            sa.select(samples.c.time, samples.c.value)
            .join(series, series.c.id == samples.c.series_id)
            .where(
                series.c.machine_id == machine_id,
                series.c.metric == metric,
                series.c.labels_json == schema.labels_json(labels or {}),
                samples.c.time >= start,
                samples.c.time <= end,
            )
            .order_by(samples.c.time)
        )
        with self._operation("query_samples"), self._engine.connect() as connection:
            return [(float(t), float(v)) for t, v in connection.execute(statement)]

    def ping(self) -> bool:
        """True when the database answers a trivial query now."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as e:
            log.debug("store ping failed: %s", _detail(e))
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection. A later call opens new ones (the store stays usable)."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _operation(self, name: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as e:
            raise StoreError(name, _detail(e)) from e


def _sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL loses at most the last transactions on power loss, never consistency.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
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
