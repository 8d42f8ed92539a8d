"""The team store: teams, users, uploads, grading jobs and stored files, in the history database.

The web app and its grading workers use these tables, and so does ``vmgrade batch --db URL
--team NAME`` (its results appear in the web app). They derive from
``vmgrade.store.history.Base``; created by the alembic revisions ``0002_web``,
``0003_web_sessions`` and ``0004_team_deploy`` (``vmgrade/store/migrations/versions/``); keep
the two in step (``tests/test_web_api.py`` and ``tests/test_history.py`` compare them).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .history import Base

ROLES = ("rep", "trainer")


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every timestamp here is UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Team(Base):
    __tablename__ = "web_teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="team")


class User(Base):
    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # "rep" or "trainer"
    team_id: Mapped[int] = mapped_column(ForeignKey("web_teams.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Copied into the session cookie at login; bumping it (logout, password change, disabling)
    # ends every session of the user, cookies copied elsewhere included.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a worker last took a job of this user: the queue serves the rep served least recently
    # first. Kept here, set at each claim, so that a claim reads one value per rep instead of
    # every job the rep ever had (with 1000 jobs queued a claim took 6 ms on PostgreSQL, not 55:
    # bench/queue_claims.py).
    last_served_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    team: Mapped[Team] = relationship(back_populates="users", lazy="joined")

    @property
    def is_trainer(self) -> bool:
        return self.role == "trainer"


class Upload(Base):
    """One recording a rep handed in: the stored audio plus the call context.

    Dedup: the same user handing in the same bytes with the same context is
    the same upload (a retried request), so it is graded once.
    """

    __tablename__ = "web_uploads"
    __table_args__ = (UniqueConstraint("user_id", "sha256", "context_key", name="uq_web_upload_dedup"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str] = mapped_column(String(255))  # its key in the file store (vmgrade.store.blobs)
    filename: Mapped[str] = mapped_column(String(255))  # as the client named it; display only
    media_type: Mapped[str] = mapped_column(String(64))  # sniffed from the bytes
    size_bytes: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # "upload", "browser" (MediaRecorder) or "batch"
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    context_key: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical context JSON
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    user: Mapped[User] = relationship(lazy="joined")
    job: Mapped[Job] = relationship(back_populates="upload", uselist=False, lazy="joined")


class Job(Base):
    """Grading of one upload. States: queued -> running -> done | failed."""

    __tablename__ = "web_jobs"
    __table_args__ = (Index("ix_web_jobs_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("web_uploads.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done or failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The lease: the worker grading the job touches this every few seconds (the database's clock);
    # a running job whose heartbeat is older than the lease goes back to the queue.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    letter: Mapped[str | None] = mapped_column(String(4), nullable=True)
    finding_codes: Mapped[list | None] = mapped_column(JSON, nullable=True)
    report_path: Mapped[str | None] = mapped_column(String(255), nullable=True)  # its key in the file store
    recording_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the history store's id

    upload: Mapped[Upload] = relationship(back_populates="job")


class LoginFailure(Base):
    """Login attempts per (username, client address), kept in the DB so a restart forgets nothing.

    ``ip`` is ``accounts.ANY_ADDRESS`` for the per-account count across all addresses.
    """

    __tablename__ = "web_login_failures"
    __table_args__ = (UniqueConstraint("username", "ip", name="uq_web_login_failure"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Blob(Base):
    """A stored file (an upload's audio, a report's JSON or HTML) when files live in the database.

    ``vmgrade.store.blobs.DatabaseBlobs`` reads and writes it; keys are the paths the local store
    would use (``uploads/ab/<sha256>.wav``, ``reports/12.json``).
    """

    __tablename__ = "web_blobs"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
