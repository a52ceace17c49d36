"""Machine keys for push mode: one row per key, the key itself stored only as its SHA-256.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machine_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("machine_id", sa.String(200), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double, nullable=True),
        sa.UniqueConstraint("key_sha256", name="uq_machine_keys_sha256"),
    )
    op.create_index("ix_machine_keys_machine_id", "machine_keys", ["machine_id"])


def downgrade() -> None:
    op.drop_index("ix_machine_keys_machine_id", table_name="machine_keys")
    op.drop_table("machine_keys")
