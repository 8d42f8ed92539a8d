"""The grading queue: a ``web_jobs`` table, leases, and the workers that drain it.

Any number of workers, in web nodes (``vmgrade serve --workers N``) or on their own
(``vmgrade worker``), on any number of machines, share one queue in the database:

* **Claiming.** On PostgreSQL a worker takes the next job with ``SELECT … FOR UPDATE SKIP
  LOCKED`` (workers never wait on each other's rows); on SQLite (one machine) with a
  compare-and-set UPDATE. Either way two workers never take the same job. Reps take turns
  (the rep served least recently first), so one rep's pile does not hold the others back.
* **Leases.** A running job carries ``heartbeat_at``, touched every :data:`HEARTBEAT_S` by
  the worker grading it (the database's clock, so machines' clocks do not matter). A job whose
  heartbeat is older than the lease (:func:`lease_s`) belongs to a worker that stopped: any
  live worker puts it back in the queue (:func:`reap_expired`); a job whose worker died
  :data:`MAX_ATTEMPTS` times fails with ``worker_crashed``. A starting node touches no job of a
  live worker.
* **Isolation.** Grading runs in a child process (:mod:`vmgrade.web.grading`): a crash in a
  decoder or the model costs that job an attempt (``grading_crashed`` after
  :data:`MAX_ATTEMPTS`), never the node; a grading past the time limit is killed.

Results go to the file store (:mod:`vmgrade.store.blobs`: ``reports/<upload id>.json`` and
``.html``) and into the history store, one row per upload (source key ``upload:<id>``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import false, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..fileio import is_storage_full
from ..isolate import ChildFailed
from ..pipeline import Context, GradeOptions, Grader
from ..store.blobs import Blobs, LocalBlobs, report_key
from ..store.history import HistoryError
from ..store.team import Job, Upload, User, utcnow
from .limits import JOB_TIMEOUT_S

T = TypeVar("T")

log = logging.getLogger("vmgrade.web")

MAX_ATTEMPTS = 3  # a job that killed its worker (or its grading child) this often fails, not retried forever
IDLE_POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process
HEARTBEAT_S = 5.0  # how often the worker grading a job renews its lease
DEFAULT_LEASE_S = 30.0  # a running job unheard of this long is put back in the queue
LEASE_ENV = "VMGRADE_JOB_LEASE_S"  # the lease, seconds (every node and worker must agree)
REAP_EVERY_S = 5.0  # how often a worker looks for expired leases
# A database write of the worker (a job's result, the history row) is tried this often, the
# pause doubling from DB_RETRY_BACKOFF_S (0.5, 1, 2, 4 s: SQLite's own 30 s busy wait comes on
# top of each), before the job is failed with ``db_error``.
DB_RETRIES = 5
DB_RETRY_BACKOFF_S = 0.5
GROUPS_KEPT = 1000  # group sizes a worker remembers (Worker.groups)
ERROR_PAUSE_S = 1.0  # the worker's pause after an error it did not expect, before it goes on


class JobTimeout(Exception):
    """The grading ran past the worker's ``job_timeout_s``."""


class GradingCrashed(Exception):
    """The grading child died mid-job (``detail``: its signal or exit status)."""


def lease_s() -> float:
    """The job lease in seconds: ``$VMGRADE_JOB_LEASE_S``, else :data:`DEFAULT_LEASE_S`.

    At least three heartbeats long, so a busy worker never loses a lease it is renewing.
    """
    try:
        value = float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_S)
    except ValueError:
        value = DEFAULT_LEASE_S
    return max(value, 3 * HEARTBEAT_S) if value == value else DEFAULT_LEASE_S


def heartbeat_s(lease: float) -> float:
    """How often a worker renews a lease of ``lease`` seconds (a third of it, at most :data:`HEARTBEAT_S`)."""
    return min(HEARTBEAT_S, lease / 3)


def db_now(session: Session) -> datetime:
    """The database's time, naive UTC (PostgreSQL's clock, so workers' clocks need not agree)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(text("SELECT timezone('UTC', clock_timestamp())"))
    return utcnow()  # SQLite: one machine, one clock


def requeue_failed(session: Session, job_id: int) -> bool:
    """Queue a failed job again (its rep uploaded the same file again); whether it was failed. Commits."""
    requeued = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "failed")
        .values(state="queued", attempts=0, worker=None, queued_at=utcnow(), started_at=None,
                heartbeat_at=None, finished_at=None, error_code=None, error_message=None, score=None,
                letter=None, finding_codes=None, report_path=None, recording_id=None)
    ).rowcount
    session.commit()
    return requeued == 1


def pending_count(session: Session, user_id: int) -> int:
    """How many of the user's uploads are queued or being graded."""
    return session.scalar(
        select(func.count(Job.id)).join(Upload, Job.upload_id == Upload.id)
        .where(Upload.user_id == user_id, Job.state.in_(("queued", "running")))
    ) or 0


def next_queued(session: Session, *, skip_locked: bool = False) -> tuple[int, int] | None:
    """The queued job to grade next, and its rep's user id: the oldest job of the rep served least
    recently (never served: first).

    ``skip_locked`` (PostgreSQL): lock its row, passing over rows other workers hold.
    """
    query = (select(Job.id, Upload.user_id).join(Upload, Job.upload_id == Upload.id)
             .join(User, Upload.user_id == User.id).where(Job.state == "queued")
             .order_by(User.last_served_at.asc().nulls_first(), Job.id).limit(1))
    if skip_locked:
        query = query.with_for_update(of=Job, skip_locked=True)
    row = session.execute(query).first()
    return (row[0], row[1]) if row else None


def claim_next(sessions: sessionmaker, worker_id: str) -> int | None:
    """Move the next queued job (:func:`next_queued`) to 'running' for ``worker_id``, with a fresh lease.

    Returns its id, or None when nothing is queued.
    """
    with sessions() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        while True:
            found = next_queued(s, skip_locked=postgres)
            if found is None:
                s.rollback()
                return None
            job_id, user_id = found
            now = db_now(s)
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(state="running", worker=worker_id, started_at=now, heartbeat_at=now,
                        attempts=Job.attempts + 1)
            ).rowcount
            if claimed == 1:
                s.execute(update(User).where(User.id == user_id).values(last_served_at=now))
            s.commit()
            if claimed == 1:
                return job_id
            # SQLite: another worker won this one between the read and the write; try the next


def queued_count(sessions: sessionmaker) -> int:
    """Jobs waiting in the queue now."""
    with sessions() as s:
        return s.execute(select(func.count()).select_from(Job).where(Job.state == "queued")).scalar_one()


def heartbeat(sessions: sessionmaker, job_id: int, worker_id: str) -> bool:
    """Renew ``worker_id``'s lease on ``job_id``; False when the job is no longer its own."""
    with sessions() as s:
        renewed = s.execute(update(Job).where(Job.id == job_id, Job.worker == worker_id,
                                              Job.state == "running")
                            .values(heartbeat_at=db_now(s))).rowcount
        s.commit()
    return renewed == 1


def release(sessions: sessionmaker, job_id: int, worker_id: str, *, count_attempt: bool = False) -> bool:
    """Put ``worker_id``'s running job back in the queue (a worker stopping; a grading child that died).

    ``count_attempt`` False: the attempt is given back (the worker was told to stop).
    """
    with sessions() as s:
        released = s.execute(
            update(Job).where(Job.id == job_id, Job.worker == worker_id, Job.state == "running")
            .values(state="queued", worker=None, started_at=None, heartbeat_at=None,
                    attempts=Job.attempts if count_attempt else Job.attempts - 1)
        ).rowcount
        s.commit()
    return released == 1


def reap_expired(sessions: sessionmaker, lease: float | None = None) -> tuple[int, int]:
    """Put running jobs whose lease expired back in the queue; fail those tried :data:`MAX_ATTEMPTS` times.

    A job is expired when its heartbeat is older than ``lease`` seconds (default :func:`lease_s`)
    by the database's clock, or when its worker ran on this machine and that process is gone
    (a node restarted after a crash: its job is queued again at once). Returns (requeued, failed).
    """
    lease = lease_s() if lease is None else lease
    with sessions() as s:
        cutoff = db_now(s) - timedelta(seconds=lease)
        last_heard = func.coalesce(Job.heartbeat_at, Job.started_at, Job.queued_at)
        stale = [Job.state == "running", last_heard < cutoff]
        dead = _dead_local_workers(s)
        ids = set(s.scalars(select(Job.id).where(*stale)))
        if dead:
            ids |= set(s.scalars(select(Job.id).where(Job.state == "running", Job.worker.in_(dead))))
        if not ids:
            s.rollback()
            return 0, 0
        # Each UPDATE names the job's expiry again, so a job renewed meanwhile is left alone.
        expired = [Job.id.in_(ids), Job.state == "running",
                   (last_heard < cutoff) | (Job.worker.in_(dead) if dead else false())]
        failed = s.execute(
            update(Job).where(*expired, Job.attempts >= MAX_ATTEMPTS)
            .values(state="failed", finished_at=utcnow(), error_code="worker_crashed",
                    error_message=f"the worker grading this recording stopped {MAX_ATTEMPTS} times; "
                                  "upload it again, or tell the administrator")
        ).rowcount
        requeued = s.execute(
            update(Job).where(*expired)
            .values(state="queued", worker=None, started_at=None, heartbeat_at=None)
        ).rowcount
        s.commit()
    if requeued or failed:
        log.warning("leases expired: requeued %d job(s); failed %d after %d attempts", requeued, failed,
                    MAX_ATTEMPTS)
    return requeued, failed


def _dead_local_workers(s: Session) -> list[str]:
    """Worker ids of running jobs whose process ran on this machine and is gone."""
    prefix = f"{socket.gethostname()}:"
    dead = []
    for worker in s.scalars(select(Job.worker).where(Job.state == "running", Job.worker.like(f"{prefix}%"))
                            .distinct()):
        try:
            pid = int(worker[len(prefix):].split(":", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue  # our own: alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(worker)
        except PermissionError:  # another user's live process
            pass
    return dead


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


def new_worker_id() -> str:
    """``host:pid:random``: unique across machines; :func:`reap_expired` reads the host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _stored_audio(upload: Upload) -> tuple[str, dict]:
    """An upload's stored audio path and its context (the non-empty fields)."""
    return upload.stored_path, {k: v for k, v in (upload.context or {}).items() if v}


class Worker:
    """One thread that grades queued jobs, each in a grading child process.

    Parameters
    ----------
    sessions : sessionmaker
        Sessions on the team database.
    store : HistoryStore
        Where finished grades are recorded.
    blobs : LocalBlobs or DatabaseBlobs
        Where uploads are read from and reports written to.
    options : GradeOptions, optional
        The grading child's model, engine, rubric and threads.
    grader : Grader, optional
        Grade in this process with this Grader instead of a child (tests and embedding share one
        loaded model; a crash then takes the process down).
    job_timeout_s : float
        Longest grading of one job: past it the child is killed and the job fails ``job_timeout``.
    lease : float, optional
        The job lease, seconds (default :func:`lease_s`).
    db_retries : int
        Tries of each database write before the job is failed with ``db_error``.
    db_backoff_s : float
        First pause between those tries, doubled after each.
    files_at_once : int, optional
        Jobs graded together in the child when the queue has a backlog, their decoder passes
        batched (:mod:`vmgrade.asr.speedups.cross_file`); default: the engine's
        (:func:`vmgrade.asr.transcribe.files_at_once`). 1 with an in-process ``grader``.

    The thread never dies of an exception: a failing database is retried, a job whose
    result cannot be written is failed with ``db_error``, and a job that cannot even be marked
    failed is retried at every turn of the loop until it can.
    """

    def __init__(self, sessions: sessionmaker, store, blobs: Blobs, options: GradeOptions | None = None, *,
                 grader: Grader | None = None, job_timeout_s: float = JOB_TIMEOUT_S,
                 lease: float | None = None, db_retries: int = DB_RETRIES,
                 db_backoff_s: float = DB_RETRY_BACKOFF_S, files_at_once: int | None = None):
        self.sessions = sessions
        self.store = store
        self.blobs = blobs
        self.options = options or GradeOptions()
        self.grader = grader
        self._child = None
        if grader is None:
            from .grading import ChildGrader

            self._child = ChildGrader(self.options)
        self.job_timeout_s, self.db_retries, self.db_backoff_s = job_timeout_s, db_retries, db_backoff_s
        self.lease = lease_s() if lease is None else lease
        self._stranded: dict[int, dict] = {}  # job id -> final values not written yet
        self._runaway: threading.Thread | None = None  # an in-process grading that timed out
        self.id = new_worker_id()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_reap = 0.0
        self.current_job: int | None = None
        self._loading = False  # the child is loading its model (_preload)
        if grader is not None:
            files_at_once = 1
        elif files_at_once is None:
            from ..asr.transcribe import files_at_once as engine_files_at_once

            files_at_once = engine_files_at_once(self.options.engine)
        self.files_at_once = max(1, files_at_once)
        self.peers = 1  # the grading workers of this process (Workers sets it)
        # the sizes of the latest groups graded together (tests, benchmarks); bounded: workers run for days
        self.groups: deque[int] = deque(maxlen=GROUPS_KEPT)

    @property
    def child_pid(self) -> int | None:
        """The grading child's process id, while it runs (None with an in-process grader)."""
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vmgrade-grader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (called after a job is queued)."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop: a job under way in a child is cut short and goes back to the queue; the child ends."""
        self._stop.set()
        self._wake.set()
        if self._child is not None and (self.current_job is not None or self._loading):
            self._child.kill()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._child is not None:
            self._child.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        self._preload()
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # never let the thread die: the queue would stall for good
                log.exception("grading worker error; going on")
                self._stop.wait(ERROR_PAUSE_S)

    def _preload(self) -> None:
        """Load the grading child's model before the first claim, so the first rep served does not
        wait for it under a running job (11-19 s for tiny.en, longer for bigger models)."""
        if self._child is None:
            return
        self._loading = True
        try:
            self._child.load()
        except Exception as exc:  # the first job tries again, and fails with the model's error
            if not self._stop.is_set():
                log.warning("grading worker: could not load the model yet (%s: %s)", type(exc).__name__, exc)
        finally:
            self._loading = False

    def _step(self) -> None:
        """Write what could not be written before, reap expired leases, claim and run one job."""
        for job_id, values in list(self._stranded.items()):
            self._finish(job_id, **values)
            del self._stranded[job_id]
        if time.monotonic() >= self._next_reap:
            self._next_reap = time.monotonic() + min(REAP_EVERY_S, self.lease / 3)
            reap_expired(self.sessions, self.lease)
        job_id = claim_next(self.sessions, self.id)  # the DB may be briefly locked: _run pauses
        if job_id is None:
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()
            return
        self.current_job = job_id
        try:
            group = [job_id, *self._claim_more()]
            if len(group) == 1:
                self._run_claimed(job_id)
            else:
                self._run_group(group)
        finally:
            self.current_job = None

    def _claim_more(self) -> list[int]:
        """More queued jobs to grade with the one just claimed: only from a backlog.

        A job is never held back to gather others, and a worker takes extra jobs only while more
        are queued than this process has workers, so that idle workers are not passed over.
        """
        more: list[int] = []
        while len(more) + 1 < self.files_at_once and not self._stop.is_set():
            try:
                if queued_count(self.sessions) < self.peers:
                    break
                job_id = claim_next(self.sessions, self.id)
            except SQLAlchemyError:
                break  # the ones in hand are graded; the queue is read again next turn
            if job_id is None:
                break
            more.append(job_id)
        return more

    def _run_group(self, job_ids: list[int]) -> None:
        """Grade claimed jobs together in the child; any the group could not grade, one at a time.

        A group that crashes its child or runs past its time limit proves nothing about any one
        job, so each is then graded alone, where a crash or a timeout is counted as usual.
        """
        graded: dict[int, tuple[dict, Path]] = {}
        with ExitStack() as leases:
            for job_id in job_ids:  # held until the last job of the group is written
                leases.enter_context(self._lease(job_id))
            with ExitStack() as files:
                items: list[tuple[int, Path, dict]] = []
                for job_id in job_ids:
                    try:
                        stored_path, context = self._retrying(
                            f"job {job_id}: reading it",
                            lambda j=job_id: self._read(lambda s: _stored_audio(s.get(Job, j).upload)))
                        audio_path = files.enter_context(self.blobs.local_file(stored_path))
                    except Exception:  # noqa: BLE001 - alone, the job meets it again, with its handling
                        continue
                    if audio_path is not None:  # else alone: failed with audio_missing
                        items.append((job_id, audio_path, context))
                if len(items) > 1:
                    self.groups.append(len(items))
                    try:
                        results = self._child.grade_many([(path, context) for _, path, context in items],
                                                          self.job_timeout_s * len(items))
                    except Exception as exc:  # noqa: BLE001 - a crash, a timeout: every job goes alone
                        log.warning("jobs %s graded together failed (%s); grading them one at a time",
                                    [job_id for job_id, _, _ in items], exc)
                        results = [None] * len(items)
                    graded = {job_id: (report, path) for (job_id, path, _), report
                              in zip(items, results, strict=True) if report is not None}
            if self._stop.is_set():  # told to stop: the jobs not graded go back to the queue, uncounted
                for job_id in job_ids:
                    if job_id not in graded:
                        release(self.sessions, job_id, self.id)
                job_ids = [job_id for job_id in job_ids if job_id in graded]
            for job_id in job_ids:
                self.current_job = job_id
                self._run_claimed(job_id, graded.get(job_id))

    def _run_claimed(self, job_id: int, graded: tuple[dict, Path] | None = None) -> None:
        try:
            self.run_job(job_id, graded)
        except GradingCrashed as exc:
            if self._stop.is_set():  # killed because this worker was told to stop: not the job's fault
                release(self.sessions, job_id, self.id)
                return
            attempts = self._retrying(f"job {job_id}: reading it",
                                      lambda: self._read(lambda s: s.get(Job, job_id).attempts))
            log.error("job %s: the grading process died (%s); attempt %d of %d", job_id, exc, attempts,
                      MAX_ATTEMPTS)
            if attempts >= MAX_ATTEMPTS:
                self._give_up(job_id, "grading_crashed",
                              f"grading this recording crashed {attempts} times ({exc}); it may be damaged: "
                              "upload it again, or another recording")
            else:
                release(self.sessions, job_id, self.id, count_attempt=True)
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

    def _read(self, read: Callable[[Session], T]) -> T:
        with self.sessions() as s:
            return read(s)

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

    @contextmanager
    def _lease(self, job_id: int) -> Iterator[None]:
        """Renew the job's lease every :func:`heartbeat_s` while the block runs."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat_s(self.lease)):
                try:
                    if not heartbeat(self.sessions, job_id, self.id):
                        log.warning("job %s: lease lost (another worker has it now); its result will be "
                                    "dropped", job_id)
                        return
                except SQLAlchemyError as exc:  # the next beat may get through before the lease ends
                    log.warning("job %s: heartbeat failed (%s)", job_id, exc)

        thread = threading.Thread(target=beat, name=f"vmgrade-lease-{job_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _grade(self, audio_path: Path, context: dict) -> dict:
        """The report dict, graded in the child (or in this process), within :attr:`job_timeout_s`.

        Raises
        ------
        JobTimeout
            The grading ran past the limit (the child was killed).
        GradingCrashed
            The grading child died.
        """
        if self._child is None:
            return self._grade_here(audio_path, context)
        try:
            return self._child.grade(audio_path, context, self.job_timeout_s)
        except ChildFailed as exc:
            if exc.reason == "timeout":
                raise JobTimeout() from exc
            raise GradingCrashed(exc.detail) from exc

    def _grade_here(self, audio_path: Path, context: dict) -> dict:
        """In-process grading in a thread of its own (Python cannot kill it: past the limit its result
        is thrown away, and the next job waits for it, since one Grader grades one file at a time)."""
        if self._runaway is not None and self._runaway.is_alive():
            self._runaway.join()
        result: dict = {}
        grader = self.grader

        def grade() -> None:
            try:
                result["report"] = grader.grade(audio_path, Context(**context)).to_dict()
            except BaseException as exc:  # handed to the worker thread below
                result["error"] = exc

        thread = threading.Thread(target=grade, name="vmgrade-grading", daemon=True)
        thread.start()
        thread.join(self.job_timeout_s)
        if thread.is_alive():
            self._runaway = thread
            raise JobTimeout()
        if "error" in result:
            raise result["error"]
        return result["report"]

    def run_job(self, job_id: int, graded: tuple[dict, Path] | None = None) -> None:
        """Grade one claimed job and store its result; ``graded``: its report already, and the path
        it was graded at (a group, :meth:`_run_group`)."""
        def read(s: Session):
            upload: Upload = s.get(Job, job_id).upload
            return (*_stored_audio(upload), upload.filename, upload.sha256, upload.user.username,
                    upload.created_at, upload.id)

        stored_path, context, filename, sha, rep_id, created_at, upload_id = self._retrying(
            f"job {job_id}: reading it", lambda: self._read(read))
        if graded is not None:
            report, audio_path = graded
        else:
            with self.blobs.local_file(stored_path) as audio_path:
                if audio_path is None:
                    self._finish(job_id, state="failed", error_code="audio_missing",
                                 error_message=f"{filename}: the stored audio is missing; upload it again")
                    return
                with self._lease(job_id):
                    report = self._grade(audio_path, context)
        report["file"] = filename  # the rep's name for it, not the stored one
        if "error" in report:
            message = report["error"]["message"].replace(str(audio_path), filename)
            self._finish(job_id, state="failed", error_code=report["error"]["code"], error_message=message)
            return
        key = report_key(upload_id)
        self.blobs.write(key, json.dumps(report, ensure_ascii=False).encode())
        # no HTML here: the report page renders it at its first view (0.2-0.6 s of charts
        # that would hold up the next job; many reports are only ever read as JSON)
        where = str(self.blobs.path(key)) if isinstance(self.blobs, LocalBlobs) else f"web_blobs:{key}"
        # Every upload is its own recording in the history, the rep's who uploaded it.
        recording_id = self._retrying(f"job {job_id}: history record", lambda: self.store.record(
            report, content_hash=sha, rep_id=rep_id, recorded_at=created_at, report_path=where,
            source_key=f"upload:{upload_id}"))
        codes = [f.get("code") for f in report.get("feedback", []) if f.get("code")]
        self._finish(job_id, state="done", score=report.get("score"), letter=report.get("grade"),
                     finding_codes=codes, report_path=key, recording_id=recording_id)

    def _finish(self, job_id: int, **values) -> None:
        """Write a job's end (retried, :meth:`_retrying`); raises the database's error when it cannot.

        Only while the job is still this worker's: a result after the lease was lost is dropped.
        """
        def write() -> None:
            with self.sessions() as s:
                s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker == self.id, Job.state == "running")
                    .values(finished_at=utcnow(), heartbeat_at=None, **values)
                )
                s.commit()

        self._retrying(f"job {job_id}: writing its result", write)


class Workers:
    """The grading workers of one process (``vmgrade serve --workers N``, ``vmgrade worker --concurrency N``).

    Parameters
    ----------
    workers : list of Worker
        Possibly none: a web node whose grading is done by ``vmgrade worker`` processes.
    """

    def __init__(self, workers: list[Worker]):
        self.workers = list(workers)
        for worker in self.workers:
            worker.peers = len(self.workers)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
            worker.wake()

    def wake(self) -> None:
        """Look for work now (a job was queued); workers elsewhere find it within :data:`IDLE_POLL_S`."""
        for worker in self.workers:
            worker.wake()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every worker; jobs cut short go back to the queue."""
        for worker in self.workers:
            worker._stop.set()  # all stop claiming at once, then each is stopped in turn
        for worker in self.workers:
            worker.stop(timeout_s)

    @property
    def alive(self) -> bool:
        return any(worker.alive for worker in self.workers)
