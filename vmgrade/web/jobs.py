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
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..pipeline import Context, Grader
from ..store.history import HistoryError
from .limits import JOB_TIMEOUT_S
from .storage import is_storage_full, make_private, write_json_atomic
from .tables import Job, Upload, utcnow

T = TypeVar("T")

log = logging.getLogger("vmgrade.web")

MAX_ATTEMPTS = 3  # a job whose grading killed the server this often is failed, not retried forever
IDLE_POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process
# A database write of the worker (a job's result, the history row) is tried this often, the
# pause doubling from DB_RETRY_BACKOFF_S (0.5, 1, 2, 4 s: SQLite's own 30 s busy wait comes on
# top of each), before the job is failed with ``db_error``.
DB_RETRIES = 5
DB_RETRY_BACKOFF_S = 0.5
ERROR_PAUSE_S = 1.0  # the worker's pause after an error it did not expect, before it goes on


class JobTimeout(Exception):
    """The grading ran past the worker's ``job_timeout_s``."""


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
        Builds the Grader; called on the first job (model load takes seconds), and again
        after a job timed out.
    job_timeout_s : float
        Longest grading of one job. Grading runs in its own thread, which Python cannot kill:
        past the limit the job is failed with ``job_timeout`` at once and its grading runs on
        with its result thrown away; the next job gets a fresh Grader from the factory (or,
        when the factory hands out the same one, waits for that grading to end). At most one
        such leftover runs at a time: a second timeout waits for the first to end.
    db_retries : int
        Tries of each database write before the job is failed with ``db_error``.
    db_backoff_s : float
        First pause between those tries, doubled after each.

    The thread never dies of an exception: a failing database is retried, a job whose
    result cannot be written is failed with ``db_error``, and a job that cannot even be marked
    failed is retried at every turn of the loop until it can.
    """

    def __init__(self, sessions: sessionmaker, store, data_dir: Path,
                 grader_factory: Callable[[], Grader], *, job_timeout_s: float = JOB_TIMEOUT_S,
                 db_retries: int = DB_RETRIES, db_backoff_s: float = DB_RETRY_BACKOFF_S):
        self.sessions = sessions
        self.store = store
        self.data_dir = Path(data_dir)
        self.grader_factory = grader_factory
        self.grader: Grader | None = None
        self.job_timeout_s, self.db_retries, self.db_backoff_s = job_timeout_s, db_retries, db_backoff_s
        self._stranded: dict[int, dict] = {}  # job id -> final values not written yet
        self._runaway: threading.Thread | None = None  # a timed-out grading still running
        self._runaway_grader: Grader | None = None
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
                self._step()
            except Exception:  # never let the thread die: the queue would stall for good
                log.exception("grading worker error; going on")
                self._stop.wait(ERROR_PAUSE_S)

    def _step(self) -> None:
        """Write what could not be written before, then claim and run one job (or wait for one)."""
        for job_id, values in list(self._stranded.items()):
            self._finish(job_id, **values)
            del self._stranded[job_id]
        job_id = claim_next(self.sessions, self.id)  # the DB may be briefly locked: _run pauses
        if job_id is None:
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()
            return
        try:
            self.run_job(job_id)
        except JobTimeout:
            log.error("job %s: grading ran over %g s; failed with job_timeout", job_id, self.job_timeout_s)
            self._give_up(job_id, "job_timeout", f"grading took longer than {self.job_timeout_s:g} s and was "
                                                 "given up; upload it again, or a shorter recording")
        except (SQLAlchemyError, HistoryError) as exc:
            log.exception("job %s: the database failed", job_id)
            self._give_up(job_id, "db_error", "the database was unavailable while this recording was graded "
                                              f"({type(exc).__name__}); upload it again")
        except Exception as exc:
            log.exception("job %s failed", job_id)
            if is_storage_full(exc):
                self._give_up(job_id, "storage_full", "the server's storage is full, so the report could not "
                                                      "be saved; upload it again later")
            else:
                self._give_up(job_id, "internal_error",
                              f"grading failed unexpectedly: {type(exc).__name__}: {exc}")

    def _give_up(self, job_id: int, code: str, message: str) -> None:
        """Mark the job failed; when even that cannot be written, keep it to retry at the next turn."""
        values = dict(state="failed", error_code=code, error_message=message)
        try:
            self._finish(job_id, **values)
        except (SQLAlchemyError, HistoryError):
            log.exception("job %s: could not be marked failed; retrying later", job_id)
            self._stranded[job_id] = values

    def _retrying(self, what: str, action: Callable[[], T]) -> T:
        """``action()``, tried :attr:`db_retries` times on database errors with a doubling pause."""
        pause_s = self.db_backoff_s
        for attempt in range(1, self.db_retries + 1):
            try:
                return action()
            except (SQLAlchemyError, HistoryError) as exc:
                if attempt == self.db_retries:
                    raise
                log.warning("%s failed (%s); try %d of %d in %g s", what, exc, attempt + 1, self.db_retries,
                            pause_s)
                self._stop.wait(pause_s)
                pause_s *= 2
        raise AssertionError("unreachable")

    def _grade(self, audio_path: Path, context: Context):
        """Grade in a thread of its own, waiting at most :attr:`job_timeout_s`.

        Raises
        ------
        JobTimeout
            The grading still runs at the limit (it goes on; its result is thrown away).
        """
        if self.grader is None:
            self.grader = self.grader_factory()
        runaway = self._runaway
        if runaway is not None and runaway.is_alive() and self.grader is self._runaway_grader:
            runaway.join()  # one Grader never grades two files at once
        result: dict = {}

        def grade() -> None:
            try:
                result["report"] = grader.grade(audio_path, context)
            except BaseException as exc:  # handed to the worker thread below
                result["error"] = exc

        grader = self.grader
        thread = threading.Thread(target=grade, name="vmgrade-grading", daemon=True)
        thread.start()
        thread.join(self.job_timeout_s)
        if thread.is_alive():
            if runaway is not None and runaway.is_alive():
                runaway.join()  # at most one timed-out grading runs on
            self._runaway, self._runaway_grader = thread, grader
            self.grader = None  # the next job gets a fresh one
            raise JobTimeout()
        if "error" in result:
            raise result["error"]
        return result["report"]

    def run_job(self, job_id: int) -> None:
        """Grade one claimed job and store its result."""
        def read():
            with self.sessions() as s:
                upload: Upload = s.get(Job, job_id).upload
                return (upload.stored_path, dict(upload.context or {}), upload.filename, upload.sha256,
                        upload.user.username, upload.created_at, upload.id)

        stored_path, context, filename, sha, rep_id, created_at, upload_id = self._retrying(
            f"job {job_id}: reading it", read)
        audio_path = self.data_dir / stored_path
        context = Context(**{k: v for k, v in context.items() if v})
        report = self._grade(audio_path, context).to_dict()
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
        owner = self._retrying(f"job {job_id}: history lookup", lambda: self._history_owner(sha))
        if owner in (None, rep_id):
            # The history keeps one row per audio content: byte-identical audio from a
            # second rep stays attributed to the first (the web app shows it to both).
            recording_id = self._retrying(f"job {job_id}: history record", lambda: self.store.record(
                report, content_hash=sha, rep_id=rep_id, recorded_at=created_at,
                report_path=str(report_file)))
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
        """Write a job's end (retried, :meth:`_retrying`); raises the database's error when it cannot."""
        def write() -> None:
            with self.sessions() as s:
                s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker == self.id, Job.state == "running")
                    .values(finished_at=utcnow(), **values)
                )
                s.commit()

        self._retrying(f"job {job_id}: writing its result", write)
