"""The scraper's tables (SQLAlchemy Core). Changes here need an Alembic revision in migrations/.

- `series`: one row per (machine, metric, labels); labels as canonical JSON (sorted keys).
- `samples`: (series, time in integer milliseconds, value), stored as `bucket` (the time's
  minute, `time_ms // BUCKET_MS`), `series_id`, `offset_ms` (the milliseconds into the minute
  less `OFFSET_BIAS`: -30,000 to 29,999, which SQLite stores in 2 bytes where 0 to 59,999 took 3)
  and `value`, keyed (bucket, series_id, offset_ms) and, on SQLite, `WITHOUT ROWID`: the key
  is the table, ~22 bytes a sample on disk. Time first, so that a write of the samples of the last
  seconds lands in the last few pages of the table instead of one page per series all over it
  (revision 0011: ~6x the ingest of a series-first key on an hour's table); within a minute, a
  series' samples are together, so a series is read with one seek per minute. The key makes every
  insert idempotent, so a retried write or a backfill never duplicates a sample. Retention deletes
  from the start of the key, the oldest slices, and a minute's rollups read a range of it.
- `rollup_minute`, `rollup_hour`: per minute/hour bucket (start in ms) and series: min, max, sum
  and count (avg = sum / count), kept longer than samples. Keyed time first too (revision 0011):
  a build appends its bucket's rows at the end, retention deletes from the start, and a series is
  read with one seek per bucket. Built in SQL from the stored samples
  (an hour from its minutes) once the minute (hour) is over; `rollup_state.rolled_up_to_ms` says
  how far: the minutes before it and the hours before its hour are built (scraper/store_bulk.py).
- `machine_state`: the last view of each machine, so a restart shows the fleet as it was.
- `scraper_nodes`, `scraper_leases`: the live `millwatch scrape` processes and which machine each
  one scrapes (scraper/leases.py); times are the database's clock, Unix seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import sqlalchemy as sa

VERSION_TABLE = "scraper_alembic_version"
"""The scraper's own Alembic version table, so that other packages may keep their own migrations."""

metadata = sa.MetaData()

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("machine_id", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("labels_json", sa.Text, nullable=False),
    sa.UniqueConstraint("machine_id", "metric", "labels_json", name="uq_series_machine_metric_labels"),
)

BUCKET_MS = 60_000
"""The width of a `samples` slice: a minute. A minute's rollup reads one slice. Small, so that in
the slice being written a series has a few rows (4 at 15 s) and a write of a machine's scrape
touches a few pages (bench/README.md: five-minute slices fell from 310k to 210k rows/s as the slice
filled at 10,000 machines, minute slices stayed at 420k); a day of one series is 1,440 seeks. The
slice number takes 4 bytes on SQLite and the offset 2 (`OFFSET_BIAS`): as many as the time did."""

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("bucket", sa.BigInteger, nullable=False),
    # No foreign key: checking it costs a lookup per sample, and series rows are never deleted.
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("offset_ms", sa.Integer, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.PrimaryKeyConstraint("bucket", "series_id", "offset_ms", name="pk_samples"),
    sqlite_with_rowid=False,
)
OFFSET_BIAS = BUCKET_MS // 2
"""Subtracted from the milliseconds into the slice, so the stored offset fits 2 bytes on SQLite."""
SAMPLE_TIME_MS = samples.c.bucket * BUCKET_MS + samples.c.offset_ms + OFFSET_BIAS
"""A sample's time in milliseconds, as SQL."""


def sample_time_sql(alias: str = "") -> str:
    """A sample's time in milliseconds, as SQL text (`alias`: the samples table's, if any)."""
    prefix = f"{alias}." if alias else ""
    return f"({prefix}bucket * {BUCKET_MS} + {prefix}offset_ms + {OFFSET_BIAS})"


def split_time_sql(time_ms: str) -> tuple[str, str]:
    """SQL text of the bucket and the stored offset of a time in milliseconds (SQL text, >= 0)."""
    return f"{time_ms} / {BUCKET_MS}", f"{time_ms} % {BUCKET_MS} - {OFFSET_BIAS}"


def split_time(time_ms: int) -> tuple[int, int]:
    """The bucket and the stored offset of a time in milliseconds."""
    bucket, into = divmod(time_ms, BUCKET_MS)
    return bucket, into - OFFSET_BIAS


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("bucket_ms", sa.BigInteger, nullable=False),
        sa.Column("min", sa.Double, nullable=False),
        sa.Column("max", sa.Double, nullable=False),
        sa.Column("sum", sa.Double, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        # Time first, as `samples` (revision 0011): a build appends a bucket of every series.
        sa.PrimaryKeyConstraint("bucket_ms", "series_id", name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


rollup_minute = _rollup("rollup_minute")
rollup_hour = _rollup("rollup_hour")
ROLLUPS = {60_000: rollup_minute, 3_600_000: rollup_hour}
"""Bucket width in milliseconds -> its table."""

rollup_state = sa.Table(
    "rollup_state",
    metadata,
    # One row (id 1): the watermark, a whole minute in ms. A later sample is in no rollup yet.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rolled_up_to_ms", sa.BigInteger, nullable=False),
)

machine_state = sa.Table(
    "machine_state",
    metadata,
    sa.Column("machine_id", sa.String(200), primary_key=True),
    sa.Column("view_json", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

scraper_nodes = sa.Table(
    "scraper_nodes",
    metadata,
    sa.Column("node_id", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

scraper_leases = sa.Table(
    "scraper_leases",
    metadata,
    sa.Column("machine_id", sa.String(200), primary_key=True),
    sa.Column("node_id", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Index("ix_scraper_leases_node", "node_id"),
)


def labels_json(labels: Mapping[str, str]) -> str:
    """The canonical text of a label set: the same labels always give the same string."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
