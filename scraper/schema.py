"""The scraper's tables (SQLAlchemy Core). Changes here need an Alembic revision in migrations/.

- `series`: one row per (machine, metric, labels); labels as canonical JSON (sorted keys).
- `samples`: (series, time, value); the primary key makes every insert idempotent, so a retried
  write or a backfill never duplicates a sample. The index on time lets retention delete the
  oldest samples without reading the whole table.
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

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), nullable=False),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.PrimaryKeyConstraint("series_id", "time", name="pk_samples"),
    sa.Index("ix_samples_time", "time"),
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
