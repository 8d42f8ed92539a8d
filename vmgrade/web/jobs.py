"""The grading queue: a ``web_jobs`` table and one worker thread that drains it.

A job is claimed with a compare-and-set UPDATE (``WHERE id = ? AND state =
'queued'``), so two workers can never take the same job, on SQLite or
PostgreSQL. Reps take turns (:func:`next_queued`), so one rep's pile of uploads
does not hold the others back. Results go to ``reports/<upload id>.json`` (atomic
write, 0600) and into the history store through :meth:`HistoryStore.record`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..pipeline import Context, Grader
from .storage import make_private, write_json_atomic
from .tables import Job, Upload, utcnow

log = logging.getLogger("vmgrade.web")

MAX_ATTEMPTS = 3  # a job whose grading killed the server this often is failed, not retried forever
IDLE_POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process


def requeue_interrupted(sessions: sessionmaker) -> tuple[int, int]:
    """At startup: jobs left 'running' by a server that died go back to 'queued'.

    One server process per database is assumed, so every 'running' job at
    startup belongs to a dead worker. Returns (requeued, given up).
    """
    with sessions() as s:
        given_up = s.execute(
            update(Job)
            .where(Job.state == "running", Job.attempts >= MAX_ATTEMPTS)
            .values(state="failed", finished_at=utcnow(), error_code="worker_crashed",
                    error_message=f"grading was interrupted {MAX_ATTEMPTS} times; upload it again")
        ).rowcount
        requeued = s.execute(
            update(Job).where(Job.state == "running").values(state="queued", worker=None, started_at=None)
        ).rowcount
        s.commit()
    return requeued, given_up


def requeue_failed(session: Session, job_id: int) -> bool:
    """Queue a failed job again (its rep uploaded the same file again); whether it was failed. Commits."""
    requeued = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "failed")
        .values(state="queued", attempts=0, worker=None, queued_at=utcnow(), started_at=None,
                finished_at=None, error_code=None, error_message=None, score=None, letter=None,
                finding_codes=None, report_path=None, recording_id=None)
    ).rowcount
    session.commit()
    return requeued == 1


def pending_count(session: Session, user_id: int) -> int:
    """How many of the user's uploads are queued or being graded."""
    return session.scalar(
        select(func.count(Job.id)).join(Upload, Job.upload_id == Upload.id)
        .where(Upload.user_id == user_id, Job.state.in_(("queued", "running")))
    ) or 0


def next_queued(session: Session) -> int | None:
    """The queued job to grade next: the oldest of the rep served least recently.

    Round-robin over reps, so one rep's dozen uploads do not hold everyone else's back.
    """
    heads = session.execute(
        select(Upload.user_id, func.min(Job.id)).join(Upload, Job.upload_id == Upload.id)
        .where(Job.state == "queued").group_by(Upload.user_id)
    ).all()
    if len(heads) <= 1:
        return heads[0][1] if heads else None
    last_served = dict(session.execute(
        select(Upload.user_id, func.max(Job.started_at)).join(Upload, Job.upload_id == Upload.id)
        .where(Upload.user_id.in_([user_id for user_id, _ in heads]), Job.started_at.is_not(None))
        .group_by(Upload.user_id)
    ).all())
    return min(heads, key=lambda head: (last_served.get(head[0]) or datetime.min, head[1]))[1]


def claim_next(sessions: sessionmaker, worker_id: str) -> int | None:
    """Atomically move the next queued job (:func:`next_queued`) to 'running' for ``worker_id``.

    Returns its id, or None when nothing is queued.
    """
    with sessions() as s:
        while True:
            job_id = next_queued(s)
            if job_id is None:
                return None
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(state="running", worker=worker_id, started_at=utcnow(), attempts=Job.attempts + 1)
            ).rowcount
            s.commit()
            if claimed == 1:
                return job_id
            # another worker won this one; try the next


def report_html_path(data_dir: Path, upload_id: int) -> Path:
    """Where the rendered HTML report of an upload is kept."""
    return Path(data_dir) / "reports" / f"{upload_id}.html"


def queue_position(session: Session, job: Job) -> int:
    """About how many jobs will be graded before ``job``: the running ones, then round-robin.

    Ahead of it are its rep's older queued jobs and, from every other rep, as many queued
    jobs as that (one more from a rep whose oldest was queued before it).
    """
    running = session.scalar(select(func.count(Job.id)).where(Job.state == "running")) or 0
    user_id = session.scalar(select(Upload.user_id).where(Upload.id == job.upload_id))
    queued = session.execute(
        select(Upload.user_id, func.count(Job.id), func.min(Job.id)).join(Upload, Job.upload_id == Upload.id)
        .where(Job.state == "queued").group_by(Upload.user_id)
    ).all()
    mine_ahead = session.scalar(
        select(func.count(Job.id)).join(Upload, Job.upload_id == Upload.id)
        .where(Upload.user_id == user_id, Job.state == "queued", Job.id < job.id)
    ) or 0
    others = sum(min(count, mine_ahead + (first_id < job.id))
                 for other, count, first_id in queued if other != user_id)
    return running + mine_ahead + others


class Worker:
    """One background thread that grades queued jobs with a single :class:`Grader`.

    Parameters
    ----------
    sessions : sessionmaker
        Sessions on the history database.
    store : HistoryStore
        Where finished grades are recorded.
    data_dir : Path
    grader_factory : callable
        Builds the Grader; called once, on the first job (model load takes seconds).
    """

    def __init__(self, sessions: sessionmaker, store, data_dir: Path,
                 grader_factory: Callable[[], Grader]):
        self.sessions = sessions
        self.store = store
        self.data_dir = Path(data_dir)
        self.grader_factory = grader_factory
        self.grader: Grader | None = None
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vmgrade-grader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (called after a job is queued)."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the current job; a job cut short stays 'running' and is requeued at startup."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = claim_next(self.sessions, self.id)
            except Exception:  # the DB may be briefly locked; never let the thread die
                log.exception("claiming a job failed")
                job_id = None
            if job_id is None:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            try:
                self.run_job(job_id)
            except Exception as exc:
                log.exception("job %s failed", job_id)
                self._finish(job_id, state="failed", error_code="internal_error",
                             error_message=f"grading failed unexpectedly: {type(exc).__name__}: {exc}")

    def run_job(self, job_id: int) -> None:
        """Grade one claimed job and store its result."""
        with self.sessions() as s:
            job = s.get(Job, job_id)
            upload: Upload = job.upload
            audio_path = self.data_dir / upload.stored_path
            context = Context(**{k: v for k, v in (upload.context or {}).items() if v})
            filename, sha, rep_id, created_at = (upload.filename, upload.sha256, upload.user.username,
                                                 upload.created_at)
            upload_id = upload.id
        if self.grader is None:
            self.grader = self.grader_factory()
        report = self.grader.grade(audio_path, context).to_dict()
        report["file"] = filename  # the rep's name for it, not the content-addressed one
        if "error" in report:
            message = report["error"]["message"].replace(str(audio_path), filename)
            self._finish(job_id, state="failed", error_code=report["error"]["code"], error_message=message)
            return
        relpath = f"reports/{upload_id}.json"
        report_file = self.data_dir / relpath
        write_json_atomic(report_file, report)
        self._write_html(report, upload_id, audio_path)
        recording_id = None
        if self._history_owner(sha) in (None, rep_id):
            # The history keeps one row per audio content: byte-identical audio from a
            # second rep stays attributed to the first (the web app shows it to both).
            recording_id = self.store.record(report, content_hash=sha, rep_id=rep_id, recorded_at=created_at,
                                             report_path=str(report_file))
        codes = [f.get("code") for f in report.get("feedback", []) if f.get("code")]
        self._finish(job_id, state="done", score=report.get("score"), letter=report.get("grade"),
                     finding_codes=codes, report_path=relpath, recording_id=recording_id)

    def _write_html(self, report: dict, upload_id: int, audio_path: Path) -> None:
        """Render the HTML report now (charts take a second or more), so pages serve a file."""
        try:
            from ..render.html import write_report_html

            make_private(write_report_html(report, report_html_path(self.data_dir, upload_id), audio_path))
        except Exception:  # a derived page: the report page renders it on demand instead
            log.exception("HTML report for upload %s not written", upload_id)

    def _history_owner(self, sha: str) -> str | None:
        from ..store.history import Recording

        with self.sessions() as s:
            return s.scalar(select(Recording.rep_id).where(Recording.content_hash == sha,
                                                           Recording.rep_id.is_not(None)).limit(1))

    def _finish(self, job_id: int, **values) -> None:
        with self.sessions() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == self.id, Job.state == "running")
                .values(finished_at=utcnow(), **values)
            )
            s.commit()
