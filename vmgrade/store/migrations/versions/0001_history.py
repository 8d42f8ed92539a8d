"""History store: the recordings table.

Revision ID: 0001_history
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_history"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("rep_id", sa.String(length=200), nullable=True),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("engine", sa.String(length=50), nullable=False),
        sa.Column("rubric_version", sa.String(length=64), nullable=False),
        sa.Column("rubric_label", sa.String(length=100), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("letter", sa.String(length=8), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("dimensions", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("vmgrade_version", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("content_hash", "model", "engine", "rubric_version",
                            name=op.f("uq_recordings_content_hash_model_engine_rubric_version")),
    )
    op.create_index(op.f("ix_recordings_content_hash"), "recordings", ["content_hash"])
    op.create_index(op.f("ix_recordings_rep_id_recorded_at"), "recordings", ["rep_id", "recorded_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_recordings_rep_id_recorded_at"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_content_hash"), table_name="recordings")
    op.drop_table("recordings")
