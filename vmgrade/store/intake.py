"""Batch results into the team store, so the web app shows them (``vmgrade batch --team NAME``).

A graded file becomes what a web upload becomes: an :class:`~vmgrade.store.team.Upload` of its rep
(``source="batch"``) with a finished :class:`~vmgrade.store.team.Job`, its audio under the same
content-addressed key (``uploads/<sha[:2]>/<sha>.<ext>``) and its report under
``reports/<upload id>.json`` in the file store (:mod:`vmgrade.store.blobs`). The rep's trainer then
finds it in ``/recordings`` and on the team dashboard.

Nothing here needs the web extra: the batch machine may have none.

Rules
-----
* A rep unknown to the database is created in the team (role ``rep``) with a password hash that
  never verifies: they cannot log in until a trainer runs ``vmgrade users set-password``. A rep
  of another team is refused (:class:`TeamStoreError`), never moved.
* One upload per (rep, audio bytes, context), as on the web: recording the same file again
  updates that upload's job and report instead of adding a second. An upload the rep made on the
  web with the same bytes and context is left as it is.
* The input file is copied, never moved; a file whose bytes are no longer the graded ones is
  refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import VmgradeError, printable
from .blobs import Blobs, LocalBlobs, audio_key, report_html_key, report_key
from .team import Job, Team, Upload, User, utcnow

# Usernames the web app accepts (keep in step with vmgrade.web.accounts.USERNAME_RE).
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
TEAM_NAME_MAX_CHARS = 100  # web_teams.name
FILENAME_MAX_CHARS = 255  # web_uploads.filename; the end of a long name keeps its extension
# Stored as the password hash of a rep created by a batch: not an argon2 hash, so every login
# check fails (argon2 raises InvalidHashError, which vmgrade.web.accounts counts as a wrong
# password) until a trainer sets a password with `vmgrade users set-password`.
NO_PASSWORD_HASH = "!no password yet (added by vmgrade batch): set one with vmgrade users set-password"
BATCH_WORKER = "batch"  # web_jobs.worker of a batch result
COPY_CHUNK_BYTES = 1 << 20
# Extension -> the media type the audio is served with (the web app's names where it has them).
MEDIA_TYPES = {
    "wav": "audio/x-wav", "wave": "audio/x-wav", "flac": "audio/x-flac", "ogg": "audio/ogg",
    "oga": "audio/ogg", "opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac",
    "amr": "audio/amr", "aif": "audio/x-aiff", "aiff": "audio/x-aiff", "webm": "video/webm",
    "mp4": "video/mp4", "mkv": "video/x-matroska", "3gp": "video/3gpp", "wma": "audio/x-ms-wma",
    "caf": "audio/x-caf",
}  # fmt: skip
UNKNOWN_MEDIA_TYPE = "application/octet-stream"


class TeamStoreError(VmgradeError):
    """A result that cannot go into the team store: a bad rep or team name, a rep of another
    team, audio that changed since it was graded."""

    code = "team_error"


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_batch_result` did.

    Attributes
    ----------
    upload_id : int
        The upload (``/recordings/<id>`` in the web app).
    status : str
        ``added`` (a new upload), ``updated`` (the batch's earlier upload of the same rep, bytes and
        context, now with this result) or ``kept`` (the rep uploaded it on the web: left as it is).
    """

    upload_id: int
    status: str


def context_key(context: dict[str, str]) -> str:
    """A stable hash of the call context (part of the upload dedup key, web and batch alike)."""
    canonical = json.dumps({k: v for k, v in sorted(context.items()) if v}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upload_context(context: dict | None) -> dict:
    """The context an upload keeps: the set fields, without the default channel ``auto`` (as the web)."""
    return {k: v for k, v in (context or {}).items() if v and not (k == "channel" and v == "auto")}


def audio_extension(filename: str) -> str:
    """The extension the audio is stored under: the file's own, lower case (``bin`` without one)."""
    ext = Path(filename).suffix.lower().lstrip(".")
    return ext if re.fullmatch(r"[a-z0-9]{1,10}", ext) else "bin"


def check_team_name(team: str) -> str:
    """``team`` stripped, or TeamStoreError when empty or too long."""
    name = (team or "").strip()
    if not name or len(name) > TEAM_NAME_MAX_CHARS:
        raise TeamStoreError(f"team {team!r}: give a name of 1-{TEAM_NAME_MAX_CHARS} characters")
    return name


def check_rep_name(rep: str) -> str:
    """``rep`` when the web app accepts it as a username, else TeamStoreError."""
    if not USERNAME_RE.match(rep or ""):
        raise TeamStoreError(f"rep {printable(str(rep))!r} cannot be a web app username: use 1-64 letters, "
                             "digits or _ . @ -")
    return rep


class TeamRecorder:
    """Records graded files of one team; remembers the reps it has looked up.

    Parameters
    ----------
    engine : Engine
        The history/team database (migrated: :func:`vmgrade.store.history.open_store`).
    blobs : Blobs
        Where the audio and reports go (:func:`vmgrade.store.blobs.open_blobs`): the store the web
        app reads, so ``local`` under the data dir the web app uses, or ``database``.
    team : str
        The team's name; created when new.
    """

    def __init__(self, engine: Engine, blobs: Blobs, team: str):
        self.engine = engine
        self.blobs = blobs
        self.team = check_team_name(team)
        self._users: dict[str, int] = {}  # lower-cased username -> id
        self.counts: Counter[str] = Counter()  # Recorded.status -> how many

    def check_rep(self, rep: str) -> int:
        """The id of ``rep``'s user in the team, created (without a password) when new.

        Raises
        ------
        TeamStoreError
            ``rep`` is no valid username, or is a user of another team.
        """
        check_rep_name(rep)
        known = self._users.get(rep.lower())
        if known is not None:
            return known
        for attempt in range(3):
            with Session(self.engine) as s:
                user = s.scalar(select(User).where(func.lower(User.username) == rep.lower()))
                if user is not None:
                    if user.team.name != self.team:
                        raise TeamStoreError(f"rep {user.username!r} is in team {user.team.name!r}, not "
                                             f"{self.team!r}; vmgrade batch does not move reps between teams")
                    self._users[rep.lower()] = user.id
                    return user.id
                team = s.scalar(select(Team).where(Team.name == self.team)) or Team(name=self.team)
                user = User(username=rep, password_hash=NO_PASSWORD_HASH, role="rep", team=team)
                s.add(user)
                try:
                    s.commit()
                except IntegrityError:  # another process added the team or the rep meanwhile
                    s.rollback()
                    if attempt == 2:
                        raise
                    continue
                self._users[rep.lower()] = user.id
                return user.id
        raise AssertionError("unreachable")

    def record(self, *, rep: str, audio_path: Path, report: dict, content_hash: str,
               recorded_at: datetime | None = None, context: dict | None = None,
               graded_at: datetime | None = None, recording_id: int | None = None) -> Recorded:
        """Add (or update) ``rep``'s upload of ``audio_path`` graded as ``report``.

        Parameters
        ----------
        rep : str
            The rep's username (created in the team when new).
        audio_path : Path
            The graded file; copied into the store (never moved) unless its bytes are there.
        report : dict
            The report (``Report.to_dict()``); its ``file`` becomes the file's name, as on the web.
        content_hash : str
            sha256 of the graded bytes.
        recorded_at : datetime, optional
            When the call was recorded (naive: UTC); the upload's time, which the dashboard's date
            range filters on. Default: ``graded_at`` for a new upload; an earlier upload keeps its time.
        context : dict, optional
            The call context graded with (:meth:`vmgrade.pipeline.Context.to_dict`).
        graded_at : datetime, optional
            When it was graded (the job's start and finish); default now.
        recording_id : int, optional
            The history store's row of this grade.

        Raises
        ------
        ValueError
            ``report`` is an error record or has no score.
        TeamStoreError
            A bad rep (:meth:`check_rep`), or the file's bytes are no longer ``content_hash``.
        """
        if "error" in report or not isinstance(report.get("score"), (int, float)):
            raise ValueError(f"{report.get('file')}: a report without a grade is not recorded")
        user_id = self.check_rep(rep)
        audio_path = Path(audio_path)
        filename = printable(audio_path.name)[-FILENAME_MAX_CHARS:] or "recording"
        key = audio_key(content_hash, audio_extension(audio_path.name))
        size = self._store_audio(key, audio_path, content_hash)
        ctx = upload_context(context)
        ctx_key = context_key(ctx)
        finished = _naive_utc(graded_at) if graded_at is not None else utcnow()
        shown = {**report, "file": filename}  # the rep's name for it, as the web keeps it
        codes = [f.get("code") for f in report.get("feedback") or [] if f.get("code")]
        upload_values = dict(stored_path=key, filename=filename,
                             media_type=MEDIA_TYPES.get(key.rsplit(".", 1)[1], UNKNOWN_MEDIA_TYPE),
                             size_bytes=size, duration_s=float(report.get("duration_s") or 0.0), context=ctx)
        if recorded_at is not None:
            upload_values["created_at"] = _naive_utc(recorded_at)
        job_values = dict(state="done", attempts=1, worker=BATCH_WORKER, queued_at=finished,
                          started_at=finished, heartbeat_at=None, finished_at=finished, error_code=None,
                          error_message=None,
                          score=float(report["score"]), letter=str(report.get("grade") or ""),
                          finding_codes=codes, recording_id=recording_id)
        for attempt in range(3):
            try:
                with Session(self.engine) as s, s.begin():
                    _write_lock(s)
                    upload = s.scalar(select(Upload).where(Upload.user_id == user_id,
                                                           Upload.sha256 == content_hash,
                                                           Upload.context_key == ctx_key))
                    if upload is not None and upload.source != "batch":
                        self.counts["kept"] += 1
                        return Recorded(upload.id, "kept")  # the rep's own upload: graded on the web
                    status = "updated" if upload is not None else "added"
                    if upload is None:
                        upload = Upload(user_id=user_id, sha256=content_hash, source="batch",
                                        context_key=ctx_key, **{"created_at": finished, **upload_values})
                        upload.job = Job(**job_values)
                        s.add(upload)
                    else:
                        for name, value in upload_values.items():
                            setattr(upload, name, value)
                        for name, value in job_values.items():
                            setattr(upload.job, name, value)
                    s.flush()
                    upload_id = upload.id
                    upload.job.report_path = report_key(upload_id)
                break
            except IntegrityError:  # the same upload added by another process meanwhile: update it
                if attempt == 2:
                    raise
        # After the commit (the file store may be this database): a crash in between leaves the
        # recording without its report until the batch runs again, which writes it.
        data = json.dumps(shown, ensure_ascii=False).encode("utf-8", "backslashreplace")
        key = report_key(upload_id)
        if self.blobs.read(key) != data:
            self.blobs.write(key, data)
        self.blobs.delete(report_html_key(upload_id))  # a page rendered from an older report
        self.counts[status] += 1
        return Recorded(upload_id, status)

    def _store_audio(self, key: str, path: Path, content_hash: str) -> int:
        """Copy ``path`` in under ``key`` unless stored already; its size in bytes.

        Raises
        ------
        TeamStoreError
            The file's bytes are not ``content_hash`` any more.
        """
        if self.blobs.exists(key):
            return os.stat(path).st_size
        # local: the copy sits beside its final name, so the store's move is a rename
        folder = self.blobs.path(key).parent if isinstance(self.blobs, LocalBlobs) else None
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".batch-", suffix=".tmp", dir=folder)
        tmp = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            if digest.hexdigest() != content_hash:
                raise TeamStoreError(f"{printable(str(path))}: the file changed since it was graded; "
                                     "not added (the next run grades it again)")
            self.blobs.add_file(key, tmp)  # moves the copy in (the input file stays where it is)
        finally:
            tmp.unlink(missing_ok=True)
        return size


def record_batch_result(engine: Engine, blobs: Blobs, *, team: str, rep: str, audio_path: Path, report: dict,
                        content_hash: str, recorded_at: datetime | None = None, context: dict | None = None,
                        graded_at: datetime | None = None, recording_id: int | None = None) -> Recorded:
    """Record one graded file as ``rep``'s upload in ``team`` (:meth:`TeamRecorder.record`)."""
    return TeamRecorder(engine, blobs, team).record(
        rep=rep, audio_path=audio_path, report=report, content_hash=content_hash, recorded_at=recorded_at,
        context=context, graded_at=graded_at, recording_id=recording_id)


def _write_lock(session: Session) -> None:
    # SQLite: take the write lock before reading, so that two writers queue on the busy timeout
    # instead of one failing when its read lock cannot be upgraded (as HistoryStore.record does).
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def _naive_utc(value: datetime) -> datetime:
    """Naive UTC, as the team tables keep time (a naive value is UTC already)."""
    return value if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)
