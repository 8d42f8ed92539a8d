"""The grading queue: a ``web_jobs`` table and one worker thread that drains it.

A job is claimed with a compare-and-set UPDATE (``WHERE id = ? AND state =
'queued'``), so two workers can never take the same job, on SQLite or
PostgreSQL. Results go to ``reports/<upload id>.json`` (atomic write) and into
the history store through :meth:`HistoryStore.record`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..pipeline import Context, Grader
from .storage import write_json_atomic
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


def claim_next(sessions: sessionmaker, worker_id: str) -> int | None:
    """Atomically move the oldest queued job to 'running' for ``worker_id``; its id, or None."""
    with sessions() as s:
        while True:
            job_id = s.scalar(select(Job.id).where(Job.state == "queued").order_by(Job.id).limit(1))
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
    """How many queued or running jobs are ahead of ``job``."""
    return session.scalar(
        select(func.count(Job.id)).where(Job.state.in_(("queued", "running")), Job.id < job.id)
    ) or 0


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

            write_report_html(report, report_html_path(self.data_dir, upload_id), audio_path)
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
