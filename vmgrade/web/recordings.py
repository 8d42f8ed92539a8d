"""Recordings as the routes see them: who may see which, upload intake, reports, team numbers.

A rep sees only their own uploads, a trainer their team's; anything else answers 404
(not 403, so the ids of others' recordings are not confirmed).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException, UploadFile
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audio import CHANNEL_CHOICES
from ..store.blobs import Blobs
from ..store.intake import context_key
from ..store.team import Job, Upload, User
from .deps import Settings, WebError
from .jobs import Workers, pending_count, queue_position, requeue_failed
from .schemas import RecordingOut
from .storage import UploadError, receive

if TYPE_CHECKING:
    from ..compare import Comparison

CONTEXT_FIELDS = ("caller_name", "company", "callback_number", "prospect_name", "prospect_company")
CONTEXT_MAX_CHARS = 200
FILENAME_MAX_CHARS = 255  # the column's width; the end of a long name keeps its extension
MAX_ID = 2**63 - 1  # the database's integer; a larger id in a URL is simply not there
# Where a missing recording is "found" by the report renderer: a folder never created.
NO_AUDIO_DIR = Path("tmp") / ".no-audio"


def visible_query(user: User) -> Select:
    """The uploads ``user`` may see, joined to their rep and job."""
    query = select(Upload).join(Upload.user).join(Upload.job)
    if user.is_trainer:
        return query.where(User.team_id == user.team_id)
    return query.where(Upload.user_id == user.id)


def visible(s: Session, user: User, upload_id: int) -> Upload:
    """Upload ``upload_id`` if ``user`` may see it, else 404."""
    upload = s.get(Upload, upload_id) if 0 < upload_id <= MAX_ID else None
    if upload is None or not _may_see(user, upload):
        raise HTTPException(404, f"no recording {upload_id} that you may see")
    return upload


def upload_context(values: dict[str, str | None]) -> dict[str, str]:
    """The non-empty call-context fields (a channel other than auto, whole_file when ticked), stripped.

    Over-long fields and an unknown channel raise :class:`UploadError` (400).
    """
    context = {}
    for name in CONTEXT_FIELDS:
        value = (values.get(name) or "").strip()
        if len(value) > CONTEXT_MAX_CHARS:
            raise UploadError(f"{name.replace('_', ' ')} is over {CONTEXT_MAX_CHARS} characters",
                              code="bad_context", status=400)
        if value:
            context[name] = value
    # the rep's side of a two-channel file rides with the context into Context(channel=...); "auto" is
    # the default, so it is left out (the upload's dedup key stays as before)
    channel = (values.get("channel") or "").strip().lower()
    if channel and channel not in CHANNEL_CHOICES:
        raise UploadError(f"channel must be one of {', '.join(CHANNEL_CHOICES)}", code="bad_context",
                          status=400)
    if channel and channel != "auto":
        context["channel"] = channel
    # "grade the whole file": the rep knows better than the segmentation (kept only when asked, so
    # the upload's dedup key stays as before otherwise)
    if (values.get("whole_file") or "").strip().lower() in ("on", "true", "1", "yes"):
        context["whole_file"] = True
    return context


def accept_upload(s: Session, user: User, file: UploadFile, context: dict[str, str], source: str,
                  settings: Settings, worker: Workers) -> tuple[Upload, bool]:
    """Store ``file`` and queue it for grading.

    Returns
    -------
    upload : Upload
    duplicate : bool
        True when the same rep already uploaded the same audio with the same context
        (then ``upload`` is that one and nothing new is queued). When that one's grading
        failed, it is queued again instead (and this is False).

    Raises
    ------
    UploadError
        The file is too large, not audio, or unusable; or the rep already has
        ``settings.max_queued_per_user`` recordings waiting (429 ``queue_full``).
    """
    # Reading and checking the file takes a while: the pooled connection (taken when the user was
    # looked up) goes back meanwhile, so uploads waiting for a check hold none.
    s.commit()
    stored = receive(file.file, settings.data_dir, file.filename or "upload",
                     max_bytes=settings.max_upload_bytes, max_duration_s=settings.max_duration_s,
                     owner=user.id, blobs=settings.files)
    key = context_key(context)
    existing = _find_upload(s, user.id, stored.sha256, key)
    if existing is not None and existing.job.state != "failed":
        return existing, True
    _check_quota(s, user, settings.max_queued_per_user)
    if existing is not None:
        if not requeue_failed(s, existing.job.id):  # another request requeued it just now
            return existing, True
        s.refresh(existing.job)
        worker.wake()
        return existing, False
    filename = os.path.basename(file.filename or "")[-FILENAME_MAX_CHARS:] \
        or f"recording.{stored.relpath.rsplit('.', 1)[1]}"
    upload = Upload(user_id=user.id, sha256=stored.sha256, stored_path=stored.relpath, filename=filename,
                    media_type=stored.media_type, size_bytes=stored.size_bytes,
                    duration_s=stored.duration_s, source=source, context=context, context_key=key)
    upload.job = Job(state="queued", attempts=0)
    s.add(upload)
    try:
        s.commit()
    except IntegrityError:  # the same upload raced in from a retried request
        s.rollback()
        existing = _find_upload(s, user.id, stored.sha256, key)
        if existing is None:
            raise
        return existing, True
    worker.wake()
    return upload, False


def recording_out(s: Session, upload: Upload, duplicate: bool = False) -> RecordingOut:
    """The API's view of an upload and its job."""
    job = upload.job
    return RecordingOut(
        id=upload.id, rep=upload.user.username, filename=upload.filename, source=upload.source,
        media_type=upload.media_type, size_bytes=upload.size_bytes, duration_s=upload.duration_s,
        context=upload.context or {}, created_at=upload.created_at, state=job.state,
        queue_position=queue_position(s, job) if job.state == "queued" else None,
        score=job.score, grade=job.letter, error_code=job.error_code, error=job.error_message,
        started_at=job.started_at, finished_at=job.finished_at,
        report_url=f"/recordings/{upload.id}/report" if job.state == "done" else None,
        page_url=f"/recordings/{upload.id}", duplicate=duplicate,
    )


def load_report(upload: Upload, blobs: Blobs) -> dict:
    """The upload's JSON report, from the file store.

    Raises
    ------
    HTTPException
        409 while it is not graded, 404 when its file is gone.
    WebError
        422 ``report_damaged`` when the file is not a JSON report (truncated, corrupt, not an
        object, no numeric score nor error).
    """
    job = upload.job
    if job.state != "done" or not job.report_path:
        raise HTTPException(409, f"recording {upload.id} is {job.state}, not graded yet")
    try:
        data = blobs.read(job.report_path)
        if data is None:
            raise HTTPException(404, f"the report of recording {upload.id} is missing; "
                                     "upload the recording again")
        report = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise report_damaged(upload.id) from exc
    # a report has a score, or (a failed one) an error; anything else is not one of ours
    if not isinstance(report, dict) or not ("error" in report or _is_number(report.get("score"))):
        raise report_damaged(upload.id)
    return report


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def report_damaged(upload_id: int) -> WebError:
    """422 ``report_damaged``: the stored report of a recording cannot be read or shown."""
    return WebError(422, f"the report of recording {upload_id} is damaged and cannot be shown; "
                         "upload the recording again to grade it anew", code="report_damaged")


def without_audio(report: dict, data_dir: Path) -> dict:
    """``report`` with its ``file`` pointing nowhere, so the renderer draws it without audio.

    (It would otherwise look the rep's file name up relative to the server's working folder.)
    """
    name = Path(str(report.get("file") or "recording")).name
    return {**report, "file": str(data_dir / NO_AUDIO_DIR / name)}


def comparison_for(s: Session, user: User, ids: list[int], blobs: Blobs, data_dir: Path,
                   files: ExitStack) -> Comparison:
    """Compare the graded recordings ``ids`` (two or more that ``user`` may see), oldest first.

    Their audio is read from ``blobs`` into files that ``files`` keeps until it closes (the
    comparison and its page read them): keep it open until the page is rendered.
    """
    if len(ids) < 2:
        raise HTTPException(400, "pick two or more recordings to compare")
    # Recording order, so two picks read before -> after whatever order they were ticked in.
    uploads = sorted((visible(s, user, i) for i in dict.fromkeys(ids)),
                     key=lambda u: (u.created_at, u.id))
    if len(uploads) < 2:
        raise HTTPException(400, "pick two or more different recordings to compare")
    # The stored audio (so the comparison embeds it) and the upload time (its timeline).
    reports = []
    for u in uploads:
        report = load_report(u, blobs)
        audio = files.enter_context(blobs.local_file(u.stored_path))
        reports.append({**(report if audio else without_audio(report, data_dir)),
                        **({"file": str(audio)} if audio else {}),
                        "recorded_at": u.created_at.isoformat() + "Z"})
    labels = [f"{u.user.username} {u.created_at:%Y-%m-%d %H:%M} #{u.id}" for u in uploads]
    from ..compare import compare_reports

    try:
        return compare_reports(reports, labels)
    except Exception as exc:  # noqa: BLE001 - a report of the wrong shape
        raise WebError(422, "a report of these recordings is damaged and cannot be compared; "
                            "upload it again to grade it anew", code="report_damaged") from exc


def _check_quota(s: Session, user: User, limit: int) -> None:
    waiting = pending_count(s, user.id)
    if waiting >= limit:
        raise UploadError(f"you have {waiting} recordings waiting to be graded (the limit is {limit}); "
                          "upload more when they are done", code="queue_full", status=429)


def _may_see(user: User, upload: Upload) -> bool:
    if user.is_trainer:
        return upload.user.team_id == user.team_id
    return upload.user_id == user.id


def _find_upload(s: Session, user_id: int, sha: str, key: str) -> Upload | None:
    return s.scalar(select(Upload).where(Upload.user_id == user_id, Upload.sha256 == sha,
                                         Upload.context_key == key))
