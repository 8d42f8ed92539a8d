"""Ray backend for ``vmgrade batch --ray``: the same per-file grading on Ray actors.

One actor per worker, each holding one :class:`vmgrade.pipeline.Grader` (the
model loads once per actor). The driver keeps one group in flight per actor and
does all the writing (:mod:`vmgrade.batch.run`), so outputs, keys and resume are
exactly those of a local run. Each actor grades up to ``files_at_once`` files
together (the engine's cross-file batching). An actor that dies (a node lost,
killed for memory) is replaced and its files retried, one at a time; a file
that kills its actor :data:`vmgrade.batch.workers.MAX_CRASHES_PER_FILE` times
gets a ``worker_crashed`` record.

The input files are read by path on the workers: on a cluster every node must
see them at the same path (a shared filesystem), and have vmgrade and its
models installed. ``ray`` is the optional extra ``vmgrade[ray]``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator

from ..errors import VmgradeError
from ..pipeline import GradeOptions
from .ledger import Task
from .workers import MAX_CRASHES_PER_FILE, crash_report, grade_group, make_grader, next_group

LOCAL = "local"  # --ray with no address: start (or join) a Ray instance on this machine
RAY_EXTRA_HINT = 'pip install ".[ray]" (in the vmgrade repository)'


class RayError(VmgradeError):
    code = "ray_error"


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise RayError(f"--ray needs Ray, which is not installed ({exc}). Fix: {RAY_EXTRA_HINT}",
                       code="ray_not_installed") from exc
    return ray


def connect(address: str | None = LOCAL) -> None:
    """Join the Ray cluster at ``address`` (``"local"``/None: this machine's, started if none runs).

    A Ray session the caller already opened (``ray.init`` in the same process) is reused.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        if address in (None, LOCAL):
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayError(f"cannot reach the Ray cluster at {address} ({exc})", code="ray_unreachable") from exc


class _GraderActor:
    """Holds one Grader; ``grade_many`` returns :func:`vmgrade.batch.workers.grade_with`'s result per task."""

    def __init__(self, options: GradeOptions):
        self.init_error = None
        try:
            self.grader = make_grader(options)
        except VmgradeError as exc:
            self.grader = None
            self.init_error = f"[{exc.code}] {exc.message}"

    def grade_many(self, tasks: list[Task]) -> list[dict]:
        if self.init_error is not None:
            return [{"fatal": self.init_error} for _ in tasks]
        return grade_group(self.grader, tasks)


def run_ray(tasks: Iterable[Task], options: GradeOptions, workers: int | None,
            address: str | None = LOCAL, files_at_once: int = 1) -> Iterator[tuple[Task, dict]]:
    """Grade ``tasks`` on Ray actors; yield ``(task, result)`` as each finishes.

    Each actor grades up to ``files_at_once`` files together, fewer near the end, as the local
    workers do (:func:`vmgrade.batch.workers.run_local`). When an actor dies on a group, the
    group's files are graded again one at a time, and only a file that kills its actor alone
    counts a crash.

    Parameters
    ----------
    tasks : iterable of Task
    options : GradeOptions
        ``threads`` is each actor's CPU count (default 1: on CPUs several
        one-thread models outrun one many-thread model).
    workers : int or None
        Actors to start; None: as many as the cluster's CPUs allow.
    address : str or None
        Ray address (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``) or ``"local"``.
    files_at_once : int
        Files an actor grades together (:func:`vmgrade.asr.transcribe.files_at_once`).
    """
    ray = _ray()
    connect(address)
    from dataclasses import replace

    threads = options.threads or 1
    options = replace(options, threads=threads)
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    pending = deque(tasks)
    suspects: deque[Task] = deque()  # on an actor that died with others: graded alone
    workers = max(1, min(workers, len(pending)))
    actor_class = ray.remote(num_cpus=threads, max_restarts=0)(_GraderActor)
    actors = [actor_class.remote(options) for _ in range(workers)]  # every actor started, to stop at the end
    idle = deque(actors)
    inflight: dict = {}  # ObjectRef -> (actor, group of tasks)
    crashes: Counter[str] = Counter()
    died = tuple(getattr(ray.exceptions, name) for name in ("RayActorError", "WorkerCrashedError",
                                                            "OutOfMemoryError", "NodeDiedError")
                 if hasattr(ray.exceptions, name))
    try:
        while pending or suspects or inflight:
            while idle and (pending or suspects):
                group = [suspects.popleft()] if suspects else next_group(pending, workers, files_at_once)
                actor = idle.popleft()
                inflight[actor.grade_many.remote(group)] = (actor, group)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                actor, group = inflight.pop(ref)
                try:
                    results = ray.get(ref)
                except died as exc:
                    ray.kill(actor, no_restart=True)
                    actors.append(actor_class.remote(options))
                    idle.append(actors[-1])
                    if len(group) > 1:  # which file killed it is not known
                        suspects.extend(group)
                        continue
                    task = group[0]
                    crashes[task.key] += 1
                    if crashes[task.key] >= MAX_CRASHES_PER_FILE:
                        reason = (f"the Ray worker died {crashes[task.key]} times on this file "
                                  f"({type(exc).__name__})")
                        yield task, crash_report(task, reason)
                    else:
                        suspects.appendleft(task)
                    continue
                idle.append(actor)
                yield from zip(group, results, strict=True)
    finally:  # killing an actor also ends the task it is running (Ctrl-C, an error in the driver)
        for actor in actors:
            ray.kill(actor, no_restart=True)
