"""Leases of machines to scraper processes, so several `millwatch scrape` share one fleet.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scraper_nodes",
        sa.Column("node_id", sa.String(200), primary_key=True),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_table(
        "scraper_leases",
        sa.Column("machine_id", sa.String(200), primary_key=True),
        sa.Column("node_id", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_scraper_leases_node", "scraper_leases", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_scraper_leases_node", table_name="scraper_leases")
    op.drop_table("scraper_leases")
    op.drop_table("scraper_nodes")
