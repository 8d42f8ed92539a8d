"""Team deployment: job leases (heartbeats), files stored in the database, one history row per upload,
each rep's last-served time for the queue's round-robin order.

Revision ID: 0004_team_deploy
Revises: 0003_web_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_team_deploy"
down_revision = "0003_web_sessions"
branch_labels = None
depends_on = None

OLD_UNIQUE = "uq_recordings_content_hash_model_engine_rubric_version"
NEW_UNIQUE = "uq_recordings_graded_once"


def upgrade() -> None:
    with op.batch_alter_table("web_jobs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("web_users") as batch:
        batch.add_column(sa.Column("last_served_at", sa.DateTime(), nullable=True))
    # the queue's round-robin order as it was: each rep's latest job start
    op.execute("UPDATE web_users SET last_served_at = (SELECT max(j.started_at) FROM web_jobs j "
               "JOIN web_uploads u ON j.upload_id = u.id WHERE u.user_id = web_users.id)")
    op.create_table(
        "web_blobs",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_blobs")),
    )
    # Each web upload is its own recording (its source key), even when the same audio was graded
    # before; batch rows keep the empty key, so a rerun still updates its row.
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("source_key", sa.String(100), nullable=False, server_default=""))
        batch.drop_constraint(OLD_UNIQUE, type_="unique")
        batch.create_unique_constraint(
            NEW_UNIQUE, ["content_hash", "model", "engine", "rubric_version", "source_key"])


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        batch.create_unique_constraint(OLD_UNIQUE, ["content_hash", "model", "engine", "rubric_version"])
        batch.drop_column("source_key")
    op.drop_table("web_blobs")
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("last_served_at")
    with op.batch_alter_table("web_jobs") as batch:
        batch.drop_column("heartbeat_at")
