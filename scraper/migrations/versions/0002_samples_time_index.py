"""An index on samples.time, so that retention deletes the oldest samples by an index range.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_samples_time", "samples", ["time"])


def downgrade() -> None:
    op.drop_index("ix_samples_time", table_name="samples")
