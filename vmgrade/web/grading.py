"""Grading in a child process: a crash in a decoder or the model costs one job, never the node.

A :class:`ChildGrader` keeps one long-lived child (:class:`vmgrade.isolate.Isolated`, no
address-space cap) that loads the model once and grades file after file. When the child
dies mid-job (a segfault, the kernel's OOM killer, a SIGKILL) or runs past the job's time
limit, the parent sees :class:`vmgrade.isolate.ChildFailed` and the next job gets a fresh
child. Killing the child on a timeout ends the grading for good (a thread could not be
stopped), so a job that timed out costs no CPU afterwards.

The functions :func:`load_in_child` and :func:`grade_in_child` run in the child.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..isolate import ChildFailed, Isolated
from ..pipeline import GradeOptions

# The model's load (and, on the first use of a model, its conversion) in the child: minutes at most.
LOAD_TIMEOUT_S = 900.0
_MODULE = __name__

_graders: dict[str, object] = {}  # in the child: the Grader of the options it was asked for


class ChildGrader:
    """Grades files in a child process holding one :class:`vmgrade.pipeline.Grader`.

    Parameters
    ----------
    options : GradeOptions
        The model, engine, rubric and threads of the child's Grader.

    Calls take turns (one child, one call at a time): :meth:`grade` grades one file,
    :meth:`grade_many` several together; a worker wanting two calls at once holds two.
    """

    def __init__(self, options: GradeOptions):
        self.options = options
        threads = str(options.threads) if options.threads else None
        # The child's BLAS and OpenMP pools take the Grader's thread count (None: their defaults).
        env = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
               } if threads else {}
        self._child = Isolated(address_space_bytes=None, env=env, whole_package=True)
        self._loaded = False

    @property
    def pid(self) -> int | None:
        """The grading child's process id, while it runs."""
        return self._child.pid

    def load(self, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Start the child and load the model now (else the first :meth:`grade` does).

        Raises
        ------
        ModelError
            The model cannot be loaded (re-raised from the child).
        ChildFailed
            The child died or took longer than ``timeout_s``.
        """
        self._child.call(_MODULE, "load_in_child", {"options": self.options}, timeout_s)
        self._loaded = True

    def grade(self, audio_path: Path, context: dict, timeout_s: float) -> dict:
        """The report dict of ``audio_path``, graded in the child within ``timeout_s`` seconds.

        Raises
        ------
        ChildFailed
            ``reason`` ``"crashed"`` (the child died: its signal or exit status in ``detail``) or
            ``"timeout"`` (killed at the limit). The next call starts a fresh child.
        VmgradeError, ChildError
            What the Grader raised (a model that cannot load; a bug), as :meth:`Isolated.call` says.
        """
        return self._call("grade_in_child", {"audio_path": str(audio_path), "context": context}, timeout_s)

    def grade_many(self, items: list[tuple[Path, dict]], timeout_s: float) -> list[dict | None]:
        """The report dicts of several ``(audio_path, context)`` graded together in the child, in one call.

        Their decoder passes are batched where the engine can (:mod:`vmgrade.asr.speedups.cross_file`).
        An item whose grading raised is None here (graded again alone, it raises in :meth:`grade`).

        Raises
        ------
        ChildFailed
            As :meth:`grade`: the child died or ran past ``timeout_s`` (every item is lost).
        """
        return self._call("grade_many_in_child",
                          {"items": [(str(path), context) for path, context in items]}, timeout_s)

    def _call(self, function: str, kwargs: dict, timeout_s: float):
        """``function(**kwargs, options=...)`` in the child, loading the model first if need be."""
        if not self._loaded or self._child.pid is None:
            self.load()
        try:
            return self._child.call(_MODULE, function, {**kwargs, "options": self.options}, timeout_s)
        except ChildFailed:
            self._loaded = False
            raise

    def stop(self) -> None:
        """End the child (killed when a grading is under way)."""
        self._child.stop()
        self._loaded = False

    def kill(self) -> None:
        """End the child at once, even mid-grading (a worker told to stop)."""
        pid = self._child.pid
        if pid is not None:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self._loaded = False


def load_in_child(options: GradeOptions) -> None:
    """In the child: build the Grader of ``options`` and load its model (both engines load on ``.model``)."""
    _ = _grader(options).transcriber.model


def grade_in_child(audio_path: str, context: dict, options: GradeOptions) -> dict:
    """In the child: the report of ``audio_path`` as a dict (an error record for a file it cannot grade)."""
    from ..pipeline import Context

    return _grader(options).grade(Path(audio_path), Context(**context)).to_dict()


def grade_many_in_child(items: list[tuple[str, dict]], options: GradeOptions) -> list[dict | None]:
    """In the child: the reports of ``items`` graded at once in threads (None for one that raised)."""
    from concurrent.futures import ThreadPoolExecutor

    grader = _grader(options)

    def one(item: tuple[str, dict]) -> dict | None:
        try:
            return grade_in_child(item[0], item[1], options)
        except Exception:  # noqa: BLE001 - the parent grades it again alone, where the error is reported
            return None

    _ = grader.transcriber.model  # loaded before the threads ask for it
    with ThreadPoolExecutor(len(items), thread_name_prefix="vmgrade-grade") as pool:
        return list(pool.map(one, items))


def _grader(options: GradeOptions):
    from ..pipeline import Grader

    key = repr(options)
    grader = _graders.get(key)
    if grader is None:
        _graders.clear()
        grader = _graders[key] = Grader(options)
    return grader
