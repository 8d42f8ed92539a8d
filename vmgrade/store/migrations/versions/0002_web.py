"""Web app tables: teams, users, uploads, jobs, failed logins.

Revision ID: 0002_web
Revises: 0001_history
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_web"
down_revision = "0001_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("web_teams.id"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_web_users_team_id", "web_users", ["team_id"])
    op.create_table(
        "web_uploads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("web_users.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_path", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("context_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "sha256", "context_key", name="uq_web_upload_dedup"),
    )
    op.create_index("ix_web_uploads_user_id", "web_uploads", ["user_id"])
    op.create_index("ix_web_uploads_sha256", "web_uploads", ["sha256"])
    op.create_index("ix_web_uploads_created_at", "web_uploads", ["created_at"])
    op.create_table(
        "web_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("web_uploads.id"), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("letter", sa.String(4), nullable=True),
        sa.Column("finding_codes", sa.JSON(), nullable=True),
        sa.Column("report_path", sa.String(255), nullable=True),
        sa.Column("recording_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_web_jobs_state_id", "web_jobs", ["state", "id"])
    op.create_table(
        "web_login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("username", "ip", name="uq_web_login_failure"),
    )


def downgrade() -> None:
    op.drop_table("web_login_failures")
    op.drop_index("ix_web_jobs_state_id", table_name="web_jobs")
    op.drop_table("web_jobs")
    for name in ("ix_web_uploads_created_at", "ix_web_uploads_sha256", "ix_web_uploads_user_id"):
        op.drop_index(name, table_name="web_uploads")
    op.drop_table("web_uploads")
    op.drop_index("ix_web_users_team_id", table_name="web_users")
    op.drop_table("web_users")
    op.drop_table("web_teams")
