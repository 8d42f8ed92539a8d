"""Batch workers: one loaded ``Grader`` per process, and the local process pool that runs them.

The same :func:`grade_with` runs in a process-pool worker (:func:`run_local`)
and in a Ray actor (:mod:`vmgrade.batch.cluster`). It never raises for a bad
file or a bug: it returns the report dict (an error report if need be), the
per-file HTML page, the content hash of the bytes it graded, and facts about
the worker (pid, host, peak RSS). The driver does all the writing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from ..asr.threads import WORKER_MEMORY_BYTES, default_workers  # noqa: F401  (re-exported)
from ..errors import VmgradeError, printable
from ..memory import release_freed_memory
from ..pipeline import GradeOptions, Grader
from .ledger import Signature, Task, signature

log = logging.getLogger(__name__)

MAX_CRASHES_PER_FILE = 2  # a file that kills its worker this often gets a worker_crashed record
PARENT_POLL_S = 2.0  # workers exit when the driver is gone (e.g. SIGKILLed)
# A file that changes while it is graded is graded again this often, then gets a file_changed record.
MAX_CHANGED_GRADES = 3

_GRADER: Grader | None = None
_INIT_ERROR: str | None = None


def init_worker(options: GradeOptions, watch_parent: bool = True) -> None:
    """Process-pool initializer: build this process's one ``Grader`` and load its model now."""
    global _GRADER, _INIT_ERROR
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if watch_parent:
        _watch_parent(os.getppid())
    try:  # the model's load caps numpy's BLAS and torch at options.threads too (threads.limit_threads)
        _GRADER = make_grader(options)
    except VmgradeError as exc:  # reported by the first task: the driver stops the batch
        _INIT_ERROR = f"[{exc.code}] {exc.message}"


def make_grader(options: GradeOptions) -> Grader:
    """A ``Grader`` with its model already loaded (engines load lazily otherwise)."""
    grader = Grader(options)
    getattr(grader.transcriber, "model", None)
    return grader


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)  # the driver died (SIGKILL, power loss): do not grade for nobody

    threading.Thread(target=watch, daemon=True, name="vmgrade-parent-watch").start()


def grade_tasks(tasks: list[Task]) -> list[dict]:
    """Grade tasks in a worker, together (:func:`grade_together`); their results in their order.

    Never raises for a bad file or a bug: such a task's result is an error report.
    """
    if _INIT_ERROR is not None:
        return [{"fatal": _INIT_ERROR} for _ in tasks]
    return grade_group(_GRADER, tasks)


def grade_group(grader: Grader, tasks: list[Task]) -> list[dict]:
    """Grade ``tasks`` all at once with ``grader`` (:func:`grade_together`); results in their order."""
    results = {id(task): result for task, result in grade_together(grader, tasks, len(tasks))}
    return [results[id(task)] for task in tasks]


def grade_together(grader: Grader, tasks: Iterable[Task], at_once: int) -> Iterator[tuple[Task, dict]]:
    """Grade ``tasks`` with one ``grader``, ``at_once`` at a time in threads; yield each as it finishes.

    Files transcribed at the same time share the engine's batched decoder passes where it has
    them (:mod:`vmgrade.asr.speedups.cross_file`); elsewhere the threads take turns on the model.
    """
    if at_once <= 1:
        yield from ((task, grade_with(grader, task)) for task in tasks)
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending = iter(tasks)
    with ThreadPoolExecutor(at_once, thread_name_prefix="vmgrade-grade") as pool:
        inflight = {pool.submit(grade_with, grader, task): task for task in islice(pending, at_once)}
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                task = inflight.pop(fut)
                for more in islice(pending, 1):
                    inflight[pool.submit(grade_with, grader, more)] = more
                yield task, fut.result()


def grade_with(grader: Grader, task: Task) -> dict:
    """Grade ``task`` with ``grader``: the report dict, the per-file HTML page, and worker facts.

    ``content_hash`` in the result is the hash of the bytes that were graded:
    ``task.content_hash`` unless the file's :func:`~vmgrade.batch.ledger.signature`
    is no longer the one it had when the driver hashed it (replaced or rewritten
    since), in which case the file is hashed again here, before grading. A file
    that changes *while* it is graded is graded again, up to
    :data:`MAX_CHANGED_GRADES` times, then gets a ``file_changed`` record.
    """
    t0 = time.perf_counter()
    digest = task.content_hash
    for _ in range(MAX_CHANGED_GRADES):
        before = _signature_of(task.path)
        if task.signature is not None and before != task.signature:
            digest = _rehash(task.path)
        report = _grade(grader, task)
        if task.signature is None or _signature_of(task.path) == before:
            break
    else:
        message = (f"{printable(task.path)}: the file changed while it was graded, "
                   f"{MAX_CHANGED_GRADES} times; graded again by the next run")
        report = {"file": printable(task.path), "error": {"code": "file_changed", "message": message}}
    page, html_problem = None, None
    if "error" not in report:
        page, html_problem = _render_html(report, task.path)
    release_freed_memory()
    return {
        "report": report,
        "html": page,
        "html_problem": html_problem,
        "content_hash": digest,
        "worker": {"pid": os.getpid(), "host": _hostname(), "grade_s": round(time.perf_counter() - t0, 3),
                   "peak_rss_mb": round(peak_rss_mb(), 1)},
    }


def _grade(grader: Grader, task: Task) -> dict:
    try:
        return grader.grade(task.path, task.context).to_dict()
    except Exception as exc:  # a bug must not stop the batch: error record, retried next run
        log.exception("grading %s failed", printable(task.path))
        message = f"{printable(task.path)}: internal error ({type(exc).__name__}: {printable(str(exc))})"
        return {"file": printable(task.path), "error": {"code": "internal_error", "message": message}}


def _signature_of(path: str) -> Signature | None:
    try:
        return signature(os.stat(path))
    except OSError:
        return None


def _rehash(path: str) -> str:
    """The content hash of ``path`` now; if it is gone or unreadable, a hash of its path instead."""
    import hashlib

    from ..fileio import content_hash

    try:
        return content_hash(path)
    except OSError:
        return "changed:" + hashlib.sha256(os.fsencode(path)).hexdigest()


def _render_html(report: dict, audio_path: str) -> tuple[str | None, str | None]:
    """The per-file HTML page (``vmgrade.render.html``), rendered here, where the audio is."""
    from ..render.html import render_report_html  # lazily: a worker pays for it at its first page

    try:
        return render_report_html(report, audio_path=audio_path), None
    except Exception as exc:  # a page that fails to render must not lose the grade
        return None, f"per-file HTML for {audio_path} failed ({type(exc).__name__}: {exc})"


def peak_rss_mb() -> float:
    """This process's peak resident set size, MB (0 where the platform cannot say)."""
    try:
        import resource
    except ImportError:
        return 0.0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _hostname() -> str:
    import socket

    return socket.gethostname()


def crash_report(task: Task, reason: str) -> dict:
    """The result of a task whose worker died: a ``worker_crashed`` error report (retried next run)."""
    error = {"code": "worker_crashed", "message": f"{printable(task.path)}: {reason}"}
    return {"report": {"file": printable(task.path), "error": error}, "html": None, "html_problem": None,
            "worker": {}}


# --- the local backend: a process pool, one Grader per process ---


def run_local(tasks: Iterable[Task], options: GradeOptions, workers: int,
              note: Callable[[str], None] | None = None,
              files_at_once: int = 1) -> Iterator[tuple[Task, dict]]:
    """Grade ``tasks`` in ``workers`` processes; yield ``(task, result)`` as each finishes.

    Each worker grades up to ``files_at_once`` files together (:func:`grade_tasks`), fewer
    near the end so that every worker keeps a share. At most ``workers`` groups are in
    flight, so when a worker dies (killed for memory, a crash in native code) the suspects
    are known: they are retried one at a time, and one that kills its worker
    :data:`MAX_CRASHES_PER_FILE` times gets a ``worker_crashed`` record. The pool uses
    "spawn" (torch and fork do not mix).
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = deque(tasks)
    suspects: deque[Task] = deque()  # in flight when a worker died: retried one at a time
    retrying: set[str] = set()
    crashes: Counter[str] = Counter()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=init_worker, initargs=(options,))

    pool = new_pool()
    inflight: dict = {}
    finished = False
    try:
        while pending or suspects or inflight:
            limit = 1 if suspects or retrying else workers
            while len(inflight) < limit and (suspects or pending):
                if suspects:
                    group = [suspects.popleft()]
                    retrying.add(group[0].key)
                else:
                    group = next_group(pending, workers, files_at_once)
                inflight[pool.submit(grade_tasks, group)] = group
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken: list[Task] = []
            for fut in done:
                group = inflight.pop(fut)
                try:
                    results = fut.result()
                except BrokenProcessPool:
                    broken.extend(group)
                    continue
                for task, result in zip(group, results, strict=True):
                    retrying.discard(task.key)
                    yield task, result
            if broken:
                broken.extend(task for group in inflight.values() for task in group)
                inflight.clear()
                _stop_pool(pool)
                if note is not None:
                    note(f"vmgrade: warning: a worker process died; retrying {len(broken)} file(s) "
                         "one at a time")
                alone = len(broken) == 1  # only then is the dead worker's file known
                for task in broken:
                    retrying.discard(task.key)
                    crashes[task.key] += 1 if alone else 0
                    if crashes[task.key] >= MAX_CRASHES_PER_FILE:
                        reason = (f"the worker process died {crashes[task.key]} times grading this file "
                                  "(out of memory, or a decoder crash)")
                        yield task, crash_report(task, reason)
                    else:
                        suspects.append(task)
                pool = new_pool()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # Ctrl-C, an error, or the consumer stopped: do not wait for files in progress
            _stop_pool(pool)


def next_group(pending: deque[Task], workers: int, files_at_once: int) -> list[Task]:
    """Take the next group for a worker off ``pending``: ``files_at_once`` tasks, fewer near the end.

    Near the end each of the ``workers`` gets a share (three files left for three workers: one
    each, not three for one).
    """
    share = -(-len(pending) // workers)
    return [pending.popleft() for _ in range(max(1, min(files_at_once, share, len(pending))))]


def _stop_pool(pool) -> None:
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
    else:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
