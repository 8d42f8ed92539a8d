"""The history store: every graded recording, in a database, for trends per rep.

SQLAlchemy 2 models on one declarative ``Base`` (the web app's tables derive
from it too), migrated by the alembic revisions packaged in
``vmgrade/migrations/``. SQLite in the data directory by default; any
SQLAlchemy URL (PostgreSQL) by ``$VMGRADE_DB_URL`` or an explicit ``url``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from .. import fileio
from .._version import __version__
from ..errors import RubricError, VmgradeError
from ..scoring import LATER_THRESHOLDS, Rubric, load_rubric
from ..timestamps import parse_timestamp

DATA_DIR_ENV = "VMGRADE_DATA_DIR"
DB_URL_ENV = "VMGRADE_DB_URL"
DEFAULT_DATA_DIR = Path("~/.local/share/vmgrade")
DB_FILENAME = "history.sqlite3"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
RUBRIC_VERSION_CHARS = 16  # hex digits of the rubric digest kept (64 bits)
# Batch workers and the web app write the same SQLite file: wait for the
# writer's lock rather than fail at once.
SQLITE_BUSY_TIMEOUT_S = 30.0
# The pause, drawn at random between these, before trying again to switch a new file to WAL.
SQLITE_WAL_RETRY_S = (0.01, 0.05)
# The PostgreSQL advisory lock nodes take to migrate one at a time (any fixed 64-bit number:
# the first eight bytes of sha256("vmgrade migrations"), as a signed bigint).
MIGRATION_LOCK_ID = -5036512890809282911
RECORD_ATTEMPTS = 3  # a concurrent insert of the same key loses the race at most once or twice

# Deterministic constraint names on every dialect, so that migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class HistoryError(VmgradeError):
    """The history database cannot be opened, migrated, read or written."""

    code = "history_error"


# What a damaged or foreign database raises: the driver's errors (not a database, a malformed
# image, a read-only file, a missing column), alembic's (an unknown revision stamped in it) and
# the decoders' on a row of the wrong types. Each becomes history_error naming the file.
DB_FAULTS: tuple[type[BaseException], ...] = (SQLAlchemyError, ValueError, TypeError, KeyError, OSError)
# The columns every vmgrade release reads: a table of that name without them is someone else's.
REQUIRED_COLUMNS = frozenset({"id", "content_hash", "rep_id", "file", "recorded_at", "graded_at", "score",
                              "letter", "dimensions", "metrics", "model", "engine", "rubric_version"})


def _where(engine: Engine) -> str:
    """The database as messages name it: a SQLite file's path, else the URL without its password."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def _problem(exc: BaseException) -> str:
    """One line on what is wrong with the database (the driver's own text, without the SQL)."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    low = text.lower()
    if "file is not a database" in low:
        return "not a SQLite database (file is not a database)"
    if "malformed" in low or "disk i/o error" in low:
        return f"the database file is damaged ({text})"
    if "readonly" in low or "read-only" in low:
        return f"the database is read-only ({text})"
    if "no such column" in low or "already exists" in low or "no such table" in low:
        return f"not a vmgrade history database, or another schema ({text})"
    return f"{type(orig).__name__}: {text}"


def _fault(engine: Engine, action: str, exc: BaseException) -> HistoryError:
    return HistoryError(f"{_where(engine)}: cannot {action} the history database: {_problem(exc)}; "
                        "point --db at another file, or move this one aside")


# The sha256 that keys a recording lives in vmgrade.fileio (content analysis checks model weights
# with it too); this name stays for callers of vmgrade.store.history.content_hash.
content_hash = fileio.content_hash


def rubric_version(rubric: Rubric | str | os.PathLike | None = None) -> str:
    """A stable hash of what a rubric grades by (hex, 16 characters).

    Covers the version label, letter bands, dimension labels and weights,
    thresholds and points: the content of :class:`vmgrade.scoring.Rubric`
    that changes a report. Leaves out the file's path, its comments and
    formatting, and the thresholds' cited sources, so a moved or re-commented
    rubric keeps its version while any changed number gets a new one.

    Parameters
    ----------
    rubric : Rubric, str, PathLike or None
        A loaded rubric, a rubric TOML path, or None for the packaged default.
    """
    if not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric)
    # A threshold added to the rubric later grades, at the packaged value, exactly as
    # a rubric without it (which takes that value): leave it out, so the rubrics and
    # batch resume keys from before it existed keep their versions.
    packaged = load_rubric().thresholds
    thresholds = {name: value for name, value in rubric.thresholds.items()
                  if not (name in LATER_THRESHOLDS and value == packaged[name])}
    content = {
        "version": rubric.version,
        "letters": rubric.letters,
        "labels": rubric.labels,
        "weights": rubric.weights,
        "thresholds": thresholds,
        "points": rubric.points,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:RUBRIC_VERSION_CHARS]


# -- models ----------------------------------------------------------------


class Base(DeclarativeBase):
    """Declarative base of every table of the project (history and web app)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every dialect (SQLite keeps no zone:
    values are stored in UTC and read back with ``tzinfo=UTC``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else _utc(value)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else _utc(value)


class Recording(Base):
    """One graded recording: one row per (content, model, engine, rubric, source key).

    ``source_key`` is empty for batch and CLI grades (a regrade of the same audio updates its
    row) and ``upload:<id>`` for a web upload (each upload is its own recording, whoever
    graded the same audio before).
    """

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("content_hash", "model", "engine", "rubric_version", "source_key",
                         name="uq_recordings_graded_once"),
        Index(None, "rep_id", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the audio bytes
    rep_id: Mapped[str | None] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(Text)  # the source file as graded
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    graded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    model: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(50))
    rubric_version: Mapped[str] = mapped_column(String(64))  # rubric_version(): content hash
    rubric_label: Mapped[str | None] = mapped_column(String(100))  # the rubric file's own version
    score: Mapped[float] = mapped_column(Float)
    letter: Mapped[str] = mapped_column(String(8))
    duration_s: Mapped[float | None] = mapped_column(Float)
    dimensions: Mapped[dict[str, float]] = mapped_column(JSON)  # dimension key -> score 0-100
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)  # the report's "metrics"
    report_path: Mapped[str | None] = mapped_column(Text)
    vmgrade_version: Mapped[str] = mapped_column(String(32))
    source_key: Mapped[str] = mapped_column(String(100), default="", server_default="")


# -- results ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordingRow:
    """A recording as read back from the store (datetimes in UTC)."""

    id: int
    rep_id: str | None
    content_hash: str
    file: str
    recorded_at: datetime
    graded_at: datetime
    score: float
    letter: str
    dimensions: dict[str, float]
    metrics: dict[str, Any]
    report_path: str | None
    model: str = ""
    engine: str = ""
    rubric_version: str = ""
    rubric_label: str | None = None
    duration_s: float | None = None
    vmgrade_version: str = ""
    source_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["recorded_at"] = self.recorded_at.isoformat()
        out["graded_at"] = self.graded_at.isoformat()
        return out


@dataclass(frozen=True)
class Trend:
    """A rep's scores over time, oldest first: one point per recording content
    (its latest grading when a file was graded more than once)."""

    rep_id: str
    recording_ids: list[int] = field(default_factory=list)
    recorded_at: list[datetime] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    letters: list[str] = field(default_factory=list)
    dimensions: dict[str, list[float | None]] = field(default_factory=dict)  # None: not scored then

    def to_dict(self) -> dict[str, Any]:
        return {
            "rep_id": self.rep_id,
            "recording_ids": list(self.recording_ids),
            "recorded_at": [t.isoformat() for t in self.recorded_at],
            "score": list(self.score),
            "letters": list(self.letters),
            "dimensions": {k: list(v) for k, v in self.dimensions.items()},
        }


@dataclass(frozen=True)
class RepSummary:
    """One rep's recordings: count, mean and latest score, first and last recording time."""

    rep_id: str | None
    recordings: int
    mean_score: float
    last_score: float
    first_recorded_at: datetime
    last_recorded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["mean_score"] = round(self.mean_score, 1)
        out["first_recorded_at"] = self.first_recorded_at.isoformat()
        out["last_recorded_at"] = self.last_recorded_at.isoformat()
        return out


# -- locations -------------------------------------------------------------


def data_dir() -> Path:
    """Where vmgrade keeps its data: ``$VMGRADE_DATA_DIR``, else ``~/.local/share/vmgrade``."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def default_db_url() -> str:
    """``$VMGRADE_DB_URL``, else a SQLite file ``history.sqlite3`` in :func:`data_dir`."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{data_dir() / DB_FILENAME}"


# -- the store -------------------------------------------------------------


class HistoryStore:
    """The history database: record graded reports, read recordings and trends.

    ``engine`` is the SQLAlchemy engine; ``session()`` a new
    :class:`sqlalchemy.orm.Session` (use as ``with store.session() as s:``;
    it does not commit by itself).
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(
        self,
        report: dict,
        *,
        content_hash: str,
        rep_id: str | None = None,
        recorded_at: datetime | None = None,
        report_path: str | None = None,
        rubric_version: str | None = None,
        graded_at: datetime | None = None,
        source_key: str = "",
    ) -> int:
        """Store one graded report; the same recording graded again updates its row.

        Parameters
        ----------
        report : dict
            A successful report, as ``Report.to_dict()`` gives.
        content_hash : str
            :func:`content_hash` of the audio file.
        rep_id : str, optional
            Who left the voicemail; default the report's ``context["rep_id"]``.
        recorded_at : datetime, optional
            When the call was recorded (naive means UTC); default the report's
            ``context["recorded_at"]``, else the file's modification time,
            else ``graded_at``.
        report_path : str, optional
            Where the full JSON report was written.
        rubric_version : str, optional
            :func:`rubric_version` of the rubric graded with; default computed
            from the rubric file named in the report (see README).
        graded_at : datetime, optional
            Default now.
        source_key : str
            What makes this recording its own beside others of the same audio: ``upload:<id>``
            for a web upload; empty (the default) for batch and CLI grades.

        Returns
        -------
        int
            The recording id, the same for every record of one
            (content_hash, model, engine, rubric_version, source_key).

        Raises
        ------
        ValueError
            When ``report`` is an error record or lacks a score.
        HistoryError
            When the database cannot be written.
        """
        if "error" in report:
            raise ValueError(f"{report.get('file')}: a failed report has no grade to record")
        if "score" not in report or "grade" not in report:
            raise ValueError(f"{report.get('file')}: report has no score or grade to record")
        context = report.get("context") or {}
        model = report.get("model") or {}
        graded_at = _utc(graded_at) if graded_at else datetime.now(timezone.utc)
        key = dict(
            content_hash=content_hash,
            model=str(model.get("name") or ""),
            engine=str(model.get("engine") or ""),
            rubric_version=rubric_version or _report_rubric_version(report),
            source_key=source_key,
        )
        values = dict(
            rep_id=rep_id or context.get("rep_id") or None,
            file=str(report.get("file", "")),
            recorded_at=_recorded_at(recorded_at, context, report.get("file"), graded_at),
            graded_at=graded_at,
            rubric_label=(report.get("rubric") or {}).get("version"),
            score=float(report["score"]),
            letter=str(report["grade"]),
            duration_s=report.get("duration_s"),
            dimensions={d["key"]: float(d["score"]) for d in report.get("dimensions", [])},
            metrics=report.get("metrics") or {},
            report_path=None if report_path is None else str(report_path),
            vmgrade_version=str(report.get("vmgrade_version") or __version__),
        )
        # Explicit arguments win; a regrade without them keeps what was known.
        keep_if_missing = {"rep_id": rep_id, "recorded_at": recorded_at, "report_path": report_path}
        for attempt in range(RECORD_ATTEMPTS):
            try:
                with self.session() as session, session.begin():
                    self._lock_for_write(session)
                    row = session.scalars(select(Recording).filter_by(**key)).one_or_none()
                    if row is None:
                        row = Recording(**key, **values)
                        session.add(row)
                    else:
                        for name, value in values.items():
                            if name in keep_if_missing and keep_if_missing[name] is None \
                                    and getattr(row, name) is not None:
                                continue
                            setattr(row, name, value)
                    session.flush()
                    recording_id = row.id
                return recording_id
            except IntegrityError:
                # Another writer inserted the same key between our read and write.
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
            except SQLAlchemyError as exc:
                raise HistoryError(f"{_where(self.engine)}: cannot record {values['file']} in the history "
                                   f"database: {_problem(exc)}") from exc
        raise AssertionError("unreachable")

    def recordings(self, rep_id: str | None = None, team_rep_ids: Iterable[str] | None = None
                   ) -> list[RecordingRow]:
        """Recordings, oldest first (by ``recorded_at``, then ``graded_at``).

        Parameters
        ----------
        rep_id : str, optional
            Only this rep's recordings.
        team_rep_ids : iterable of str, optional
            Only recordings of these reps (with ``rep_id``: both must hold).
        """
        query = select(Recording).order_by(Recording.recorded_at, Recording.graded_at, Recording.id)
        if rep_id is not None:
            query = query.where(Recording.rep_id == rep_id)
        if team_rep_ids is not None:
            team = sorted(set(team_rep_ids))
            if not team:
                return []
            query = query.where(Recording.rep_id.in_(team))
        try:
            with self.session() as session:
                return [_row(r) for r in session.scalars(query)]
        except DB_FAULTS as exc:  # a damaged page or a row of the wrong types: no traceback
            raise _fault(self.engine, "read", exc) from exc

    def trend(self, rep_id: str) -> Trend:
        """A rep's score and per-dimension series, oldest first, one point per
        recording content (its most recent grading)."""
        rows = _latest_per_content(self.recordings(rep_id))
        keys = list(dict.fromkeys(k for r in rows for k in r.dimensions))
        return Trend(
            rep_id=rep_id,
            recording_ids=[r.id for r in rows],
            recorded_at=[r.recorded_at for r in rows],
            score=[r.score for r in rows],
            letters=[r.letter for r in rows],
            dimensions={k: [r.dimensions.get(k) for r in rows] for k in keys},
        )

    def reps(self) -> list[RepSummary]:
        """Every rep with recordings (``rep_id`` None: recordings without a rep), by rep id."""
        by_rep: dict[str | None, list[RecordingRow]] = {}
        for row in _latest_per_content(self.recordings()):
            by_rep.setdefault(row.rep_id, []).append(row)
        try:
            return self._summaries(by_rep)
        except DB_FAULTS as exc:  # a score stored as text: someone else's rows
            raise _fault(self.engine, "read", exc) from exc

    @staticmethod
    def _summaries(by_rep: dict[str | None, list[RecordingRow]]) -> list[RepSummary]:
        return [
            RepSummary(
                rep_id=rep,
                recordings=len(rows),
                mean_score=sum(r.score for r in rows) / len(rows),
                last_score=rows[-1].score,
                first_recorded_at=rows[0].recorded_at,
                last_recorded_at=rows[-1].recorded_at,
            )
            for rep, rows in sorted(by_rep.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]

    def _lock_for_write(self, session: Session) -> None:
        # SQLite: take the write lock before reading, so that two writers queue on
        # the busy timeout instead of one failing when upgrading a read lock.
        if self.engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def open_store(url: str | None = None) -> HistoryStore:
    """Open the history database, creating or migrating it to the latest schema.

    Parameters
    ----------
    url : str, optional
        Any SQLAlchemy URL (``postgresql+psycopg://user@host/db``,
        ``sqlite:///path.sqlite3``); default :func:`default_db_url`.

    Raises
    ------
    HistoryError
        When the URL is malformed, its driver is missing, or the database
        cannot be reached or migrated.
    """
    from alembic.util import CommandError

    url = url or default_db_url()
    engine = _create_engine(url)
    try:
        _upgrade(engine)
        _check_schema(engine)
    except (*DB_FAULTS, CommandError) as exc:
        engine.dispose()
        raise _fault(engine, "open", exc) from exc
    except HistoryError:
        engine.dispose()
        raise
    return HistoryStore(engine)


def _check_schema(engine: Engine) -> None:
    """Refuse a database whose ``recordings`` table lacks the columns vmgrade reads (another schema)."""
    from sqlalchemy import inspect

    columns = {c["name"] for c in inspect(engine).get_columns(Recording.__tablename__)}
    missing = sorted(REQUIRED_COLUMNS - columns)
    if missing:
        raise HistoryError(f"{_where(engine)}: not a vmgrade history database, or another schema: its "
                           f"{Recording.__tablename__} table lacks {', '.join(missing)}; point --db at "
                           "another file, or move this one aside")


# -- migrations ------------------------------------------------------------


def migration_config(url: str | None = None):
    """An alembic ``Config`` for the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser interpolates '%': URL-encoded passwords must be doubled.
    config.set_main_option("sqlalchemy.url", (url or default_db_url()).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration revision id."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migration_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: empty or never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(engine: Engine) -> None:
    from alembic import command

    if current_revision(engine) == head_revision():
        return
    config = migration_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        # One process migrates; others starting at the same time wait, then find the database at
        # head (alembic reads the revision again inside the lock).
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            # A transaction-scoped advisory lock: released at commit, or when a killed node's
            # connection closes, so no stale lock outlives a crash.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


# -- helpers ---------------------------------------------------------------


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        shown = re.sub(r":[^:@/]*@", ":***@", url)  # a password, even in a malformed URL
        raise HistoryError(f"{shown!r}: not a database URL ({str(exc).replace(url, shown)})") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            # One in-memory database shared by every session of this engine.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        elif not database.startswith("file:"):
            path = Path(database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"{path.parent}: cannot create the data directory ({exc})") from exc
            parsed = parsed.set(database=str(path))
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        hint = "; install its driver (PostgreSQL: pip install 'vmgrade[postgres]')" \
            if isinstance(exc, ImportError) else ""
        raise HistoryError(f"{parsed.render_as_string(hide_password=True)}: cannot use this database "
                           f"({type(exc).__name__}: {exc}){hint}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    # WAL: readers (the web app) never block the writer (a batch) nor the reverse.
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """Set WAL mode, waiting out other connections that switch the same new file at once.

    Two connections that both hold a read lock and both ask for WAL would deadlock, so SQLite
    answers one of them "database is locked" at once, without its busy timeout; that one tries
    again until the busy timeout has passed. Once the file is in WAL mode the pragma is a no-op.
    """
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(*SQLITE_WAL_RETRY_S))


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _recorded_at(explicit: datetime | None, context: dict, file: str | None, graded_at: datetime) -> datetime:
    if explicit is not None:
        return _utc(explicit)
    stated = context.get("recorded_at")
    if stated:
        try:
            return _utc(parse_timestamp(str(stated)))
        except ValueError:
            pass
    if file and os.path.exists(file):
        return datetime.fromtimestamp(os.path.getmtime(file), tz=timezone.utc)
    return graded_at


def _report_rubric_version(report: dict) -> str:
    """The rubric_version of the rubric file a report names, else its label."""
    rubric = report.get("rubric") or {}
    path = rubric.get("path")
    if path and os.path.exists(path):
        try:
            return rubric_version(path)
        except RubricError:
            pass
    # The file is gone: its version label is the best key left.
    return f"label:{rubric.get('version', 'unknown')}"[:64]


def _row(r: Recording) -> RecordingRow:
    """A stored recording as a :class:`RecordingRow`, its values checked (ValueError names the row).

    Rows written by another program (or a hand edit) may hold text where a score goes, NaN, or
    NULL where the schema of another version allowed it: refused here, never rendered.
    """
    _check_row(r)
    return RecordingRow(
        id=r.id, rep_id=r.rep_id, content_hash=r.content_hash, file=r.file,
        recorded_at=r.recorded_at, graded_at=r.graded_at, score=r.score, letter=r.letter,
        dimensions=dict(r.dimensions or {}), metrics=dict(r.metrics or {}), report_path=r.report_path,
        model=r.model, engine=r.engine, rubric_version=r.rubric_version, rubric_label=r.rubric_label,
        duration_s=r.duration_s, vmgrade_version=r.vmgrade_version, source_key=r.source_key or "",
    )


def _check_row(r: Recording) -> None:
    def bad(name: str, what: str) -> ValueError:
        return ValueError(f"recording {r.id}: {name} {what}")

    for name in ("recorded_at", "graded_at"):
        if not isinstance(getattr(r, name), datetime):
            raise bad(name, "is not a time")
    if not _finite(r.score) or not 0 <= r.score <= 100:
        raise bad("score", "is not a number from 0 to 100")
    for name in ("content_hash", "file", "letter"):
        if not isinstance(getattr(r, name), str):
            raise bad(name, "is not text")
    for name in ("rep_id", "report_path", "model", "engine", "rubric_version", "rubric_label",
                  "vmgrade_version"):
        if getattr(r, name) is not None and not isinstance(getattr(r, name), str):
            raise bad(name, "is not text")
    if r.duration_s is not None and not _finite(r.duration_s):
        raise bad("duration_s", "is not a number")
    dims = r.dimensions if r.dimensions is not None else {}
    if not isinstance(dims, dict) or not all(isinstance(k, str) and _finite(v) for k, v in dims.items()):
        raise bad("dimensions", "must map names to numbers")
    if r.metrics is not None and not isinstance(r.metrics, dict):
        raise bad("metrics", "is not a mapping")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _latest_per_content(rows: list[RecordingRow]) -> list[RecordingRow]:
    """One row per recording: per content hash and source key (the latest graded), in the original order."""
    latest: dict[tuple[str, str], RecordingRow] = {}
    for row in rows:
        key = (row.content_hash, row.source_key)
        kept = latest.get(key)
        if kept is None or (row.graded_at, row.id) > (kept.graded_at, kept.id):
            latest[key] = row
    chosen = {id(r) for r in latest.values()}
    return [r for r in rows if id(r) in chosen]
