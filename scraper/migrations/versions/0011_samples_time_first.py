"""Samples keyed time first: (bucket, series_id, offset_ms), the time split into its minute and
the milliseconds into it; the minute and hour rollups keyed (bucket_ms, series_id).

Keyed (series_id, time_ms), a write of the last seconds' samples put one row at the end of every
series' key range: one page a series, all over the table, each copied whole into SQLite's WAL (or
logged as a full-page image by PostgreSQL after a checkpoint) for a row of ~22 bytes; the ingest
fell as the table grew (bench/README.md). Time first, those rows land in the last slice's pages.
The minute number (4 bytes on SQLite) and the offset, stored less 30,000 so that it fits 2 bytes,
take what the millisecond time took: ~22 bytes a sample on SQLite.

The rollups had the same pattern: each minute's build wrote one row per series, a page per series.

Every sample and rollup row is copied in key order, then the old tables (and PostgreSQL's BRIN
index on the samples' time, revision 0010, which the new key makes useless) are dropped. This
rewrites the tables: on a big database it takes a while (docs/operations.md has a figure) and needs
their size again in free disk until it ends.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Fixed here, not imported: a migration must keep doing what it did when later code changes.
BUCKET_MS = 60_000
OFFSET_BIAS = 30_000
_BRIN = "ix_samples_time_brin"


_ROLLUPS = ("rollup_minute", "rollup_hour")


def _rollup_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("bucket_ms", sa.BigInteger, nullable=False),
        sa.Column("min", sa.Double, nullable=False),
        sa.Column("max", sa.Double, nullable=False),
        sa.Column("sum", sa.Double, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    ]


def _rekey_rollups(key: list[str]) -> None:
    for table in _ROLLUPS:
        _replace(table, f"{table}_rekeyed", _rollup_columns(), key, f"SELECT * FROM {table}")


def _replace(old: str, new: str, columns: list[sa.Column[object]], key: list[str], select: str) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        new,
        *columns,
        sa.PrimaryKeyConstraint(*key, name=f"pk_{new}"),
        sqlite_with_rowid=False,
    )
    names = ", ".join(c.name for c in columns)
    # In key order (by position: the select's columns are the new table's).
    order = ", ".join(str(1 + [c.name for c in columns].index(k)) for k in key)
    op.execute(f"INSERT INTO {new} ({names}) {select} ORDER BY {order}")
    op.drop_table(old)
    op.rename_table(new, old)
    if postgres:
        # PostgreSQL's constraint (and index) names are the schema's: the new one took its own.
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{new} TO pk_{old}")


def upgrade() -> None:
    _replace(
        "samples",
        "samples_time_first",
        [
            sa.Column("bucket", sa.BigInteger, nullable=False),
            sa.Column("series_id", sa.Integer, nullable=False),
            sa.Column("offset_ms", sa.Integer, nullable=False),
            sa.Column("value", sa.Double, nullable=False),
        ],
        ["bucket", "series_id", "offset_ms"],
        f"SELECT time_ms / {BUCKET_MS}, series_id, time_ms % {BUCKET_MS} - {OFFSET_BIAS}, value FROM samples",
    )
    _rekey_rollups(["bucket_ms", "series_id"])


def downgrade() -> None:
    _rekey_rollups(["series_id", "bucket_ms"])
    _replace(
        "samples",
        "samples_by_series",
        [
            sa.Column("series_id", sa.Integer, nullable=False),
            sa.Column("time_ms", sa.BigInteger, nullable=False),
            sa.Column("value", sa.Double, nullable=False),
        ],
        ["series_id", "time_ms"],
        f"SELECT series_id, bucket * {BUCKET_MS} + offset_ms + {OFFSET_BIAS}, value FROM samples",
    )
    if op.get_bind().dialect.name == "postgresql":
        # Revision 0010's index, as it made it.
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {_BRIN} ON samples USING brin (time_ms) "
            "WITH (pages_per_range = 32, autosummarize = on)"
        )
