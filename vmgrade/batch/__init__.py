"""Batch grading: a folder (or globs) of recordings, many workers, resumable, nothing lost or doubled.

``vmgrade batch`` is a shell over :class:`vmgrade.pipeline.Grader`: each worker
process (or Ray actor, :mod:`vmgrade.batch.cluster`) builds one ``Grader`` and
loads the model once; the driver process hashes files, hands out work and does
all the writing.

Write path and crash safety
---------------------------
Every result is keyed by ``key = sha256(content hash, model, engine, rubric
version, language, filler prompt, max duration, manifest context)``: the file's
bytes and everything that changes its grade, not its name. The one source of
truth is the *ledger*, ``OUT/results/<key>.json``: one small file per result,
written to a temporary name in the same folder, fsynced, then renamed over the
final name with :func:`os.replace` and the folder fsynced. A rename is atomic,
so a ledger file is either absent or complete: Ctrl-C, SIGKILL or a power cut
can lose at most the result being written, never leave half of one.

The per-file report (``reports/<stem>-<key12>.json`` and ``.html``) is written
(atomically) *before* the ledger file, so a ledger entry always points at a
complete report. Only then is the result appended to the aggregates
(``results.jsonl``, ``summary.csv``) with one ``write()`` of the whole line on
an ``O_APPEND`` descriptor, fsynced, and recorded in the history store.

The aggregates are derived data. Each run starts by rebuilding them from the
ledger (atomic rewrite) for its inputs that are already done, then appends
each new key exactly once as it finishes, and ends (also on Ctrl-C) by
rebuilding them once more, sorted by path. A crash therefore cannot leave a
duplicate (a key is appended only if the ledger lacked it when the run began,
and only once), and the worst it can leave is a torn last line after a power
cut, which the next run's rebuild repairs. ``index.html`` and
``summary.json`` are only ever rewritten whole (atomically).

Resume: a rerun hashes every input and skips keys with a ledger entry; files
that failed for a reason of their own (corrupt, empty, not audio, too long…)
are final, since the same bytes fail the same way; ``internal_error`` and
``worker_crashed`` records are retried. History recording is idempotent per
(content hash, model, rubric version), so a rerun re-records finished keys,
which closes the gap a crash between ledger and database could leave.

Byte-identical copies under different names (with the same context) share a
key: they are graded once, each path still gets its row (``duplicate_of``
names the first path, in sorted order), and the summary and history count the
recording once. A lock file refuses a second batch writing to the same folder.

Exit status (:func:`run_batch` ``.exit_status``): 0 every file graded, 1 at
least one file has an error record.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import html
import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ..asr.transcribe import cpu_cores
from ..csvtable import raise_listed, read_table
from ..errors import VmgradeError
from ..fileio import write_atomic
from ..pipeline import Context, GradeOptions, Grader
from ..scoring import DIMENSIONS
from ..timestamps import parse_timestamp

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".amr",
    ".webm", ".3gp", ".wma", ".aif", ".aiff", ".caf",
})  # fmt: skip
MANIFEST_COLUMNS = ("file", "rep_id", "caller_name", "company", "callback_number",
                    "prospect_name", "prospect_company", "recorded_at")
CONTEXT_COLUMNS = ("caller_name", "company", "callback_number", "prospect_name", "prospect_company")
LEDGER_DIR, REPORTS_DIR = "results", "reports"
JSONL_NAME, CSV_NAME, HTML_NAME, SUMMARY_NAME = "results.jsonl", "summary.csv", "index.html", "summary.json"
LOCK_NAME = ".vmgrade-batch.lock"
LEDGER_VERSION = 1
RETRYABLE_CODES = frozenset({"internal_error", "worker_crashed"})
MAX_CRASHES_PER_FILE = 2  # a file that kills its worker this often gets a worker_crashed record
HTML_REFRESH_S = 5.0  # index.html is rewritten whole at most this often while running
TOP_FINDINGS = 10
PARENT_POLL_S = 2.0  # workers exit when the driver is gone (e.g. SIGKILLed)
# Peak RSS of one worker grading with `base` was 1.13-1.22 GB (bench/batch_throughput.py).
WORKER_MEMORY_BYTES = int(1.3 * 2**30)
CSV_COLUMNS = (
    "file", "status", "score", "grade", *(f"{d}_score" for d in DIMENSIONS), "duration_s",
    "rate_wpm", "top_tip", "error_code", "error_message", "rep_id", "recorded_at", "caller_name",
    "company", "callback_number", "prospect_name", "prospect_company", "duplicate_of", "content_hash",
    "key", "model", "engine", "rubric_version", "report_json", "report_html", "graded_at",
)  # fmt: skip

EXIT_OK, EXIT_FILE_FAILED = 0, 1


class BatchError(VmgradeError):
    """The batch cannot start: bad manifest, no inputs, output folder in use."""

    code = "batch_error"


# --- inputs: discovery and manifest ---


def discover(inputs: Sequence[str | os.PathLike], exclude: str | os.PathLike | None = None) -> list[Path]:
    """Audio files named by ``inputs``: files, folders (searched recursively) and globs.

    Parameters
    ----------
    inputs : sequence of str or PathLike
        A file is taken whatever its extension (a bad one gets an error
        record); a folder contributes its files with an audio extension
        (:data:`AUDIO_EXTENSIONS`), hidden files and folders left out; a glob
        (``*``, ``?``, ``[``; ``**`` recursive) expands to files and folders.
    exclude : str or PathLike, optional
        A folder to leave out (the batch's own output folder).

    Returns
    -------
    list of Path
        Absolute, de-duplicated by path, sorted.

    Raises
    ------
    BatchError
        ``input_not_found`` when an input matches nothing.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: set[Path] = set()
    missing: list[str] = []
    for raw in inputs:
        text = os.fspath(raw)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
        else:
            matches = [Path(text).expanduser()] if Path(text).expanduser().exists() else []
        if not matches:
            missing.append(text)
        for match in matches:
            if match.is_dir():
                found.update(_walk(match.resolve(), skip))
            elif not (skip and _inside(match.resolve(), skip)):
                found.add(match.resolve())
    if missing:
        raise BatchError(f"no such file, folder or match: {', '.join(missing)}", code="input_not_found")
    return sorted(found)


def _walk(folder: Path, skip: Path | None) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (skip and here / d == skip))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                yield here / name


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class ManifestRow:
    """One manifest line: who recorded the file, when, and the call's context."""

    file: Path
    line: int
    rep_id: str | None = None
    recorded_at: datetime | None = None
    context: Context = field(default_factory=Context)


def read_manifest(path: str | os.PathLike) -> dict[Path, ManifestRow]:
    """Read and check a manifest CSV (columns: :data:`MANIFEST_COLUMNS`).

    ``file`` is required (relative paths are resolved against the CSV's
    folder); the other columns are optional and may be empty. ``recorded_at``
    is an ISO 8601 date or date-time (``2026-11-02``, ``2026-11-02T14:05``,
    ``…Z`` or ``…+01:00``); a time without a zone is taken as UTC. Column
    names are case-insensitive; unknown columns are an error (a typo would
    otherwise drop the context silently).

    Returns
    -------
    dict
        Resolved absolute file path to its :class:`ManifestRow`.

    Raises
    ------
    BatchError
        ``manifest_not_found`` or ``manifest_invalid``, naming the file and
        every bad line (up to 20).
    """
    path = Path(path)
    columns, lines = read_table(path, what="manifest", error=BatchError, not_found_code="manifest_not_found",
                                invalid_code="manifest_invalid", expected_columns=MANIFEST_COLUMNS)
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    if unknown or "file" not in columns or len(set(columns)) != len(columns):
        problem = (f"unknown column(s) {', '.join(unknown)}" if unknown else
                   "no 'file' column" if "file" not in columns else "a column is repeated")
        raise BatchError(f"{path} line 1: {problem}; the columns are {', '.join(MANIFEST_COLUMNS)} "
                         f"(only file is required)", code="manifest_invalid")
    rows: dict[Path, ManifestRow] = {}
    errors: list[str] = []
    for line, cells in lines:
        if len(cells) > len(columns):
            errors.append(f"{path} line {line}: {len(cells)} cells for {len(columns)} columns "
                          f"(quote values that contain commas)")
            continue
        cell = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(columns)}
        if not cell["file"]:
            errors.append(f"{path} line {line}: empty file column")
            continue
        recorded_at, problem = _parse_time(cell.get("recorded_at", ""))
        if problem:
            errors.append(f"{path} line {line}: {problem}")
            continue
        file = Path(cell["file"]).expanduser()
        file = (file if file.is_absolute() else path.parent / file).resolve()
        if file in rows:
            errors.append(f"{path} line {line}: {cell['file']} is already listed on line {rows[file].line}")
            continue
        rows[file] = ManifestRow(
            file=file, line=line, rep_id=cell.get("rep_id") or None, recorded_at=recorded_at,
            context=Context(**{c: cell.get(c) or None for c in CONTEXT_COLUMNS}),
        )
    raise_listed(errors, title="bad manifest", error=BatchError, code="manifest_invalid")
    return rows


def _parse_time(raw: str) -> tuple[datetime | None, str | None]:
    if not raw:
        return None, None
    try:
        return parse_timestamp(raw), None
    except ValueError:
        return None, f"recorded_at {raw!r} is not an ISO 8601 date or date-time (e.g. 2026-11-02T14:05:00Z)"


# --- keys and the ledger ---


@dataclass(frozen=True)
class Task:
    """One unit of work: grade ``path`` (whose bytes hash to ``content_hash``) with ``context``."""

    key: str
    path: str
    content_hash: str
    context: Context = field(default_factory=Context)


def settings_of(options: GradeOptions, model_name: str, rubric_version: str) -> dict:
    """The grade settings that go into every key (what changes a report, not how fast).

    Engine defaults are recorded as the values they stand for, so a default
    that changes regrades what it changes and nothing else.
    """
    from ..asr.transcribe import CTRANSLATE2_BEAM_SIZE

    filler_prompt = options.uses_filler_prompt()
    beam_size = options.beam_size
    if beam_size is None and options.engine == "ctranslate2":
        beam_size = CTRANSLATE2_BEAM_SIZE  # was faster-whisper's 5 (keys without a beam) before
    return {
        "model": model_name,
        "engine": options.engine,
        "rubric_version": rubric_version,
        "language": options.language,
        "filler_prompt": filler_prompt,
        "max_duration_s": options.max_duration_s,
        # openai-whisper's only when set, so keys of runs with its default beam stay as they were
        **({"beam_size": beam_size} if beam_size is not None else {}),
        **({} if options.int8_logits else {"int8_logits": False}),
        # openai-whisper's fillers come from the filler probe (vmgrade.asr.speedups.filler_probe), not a
        # prompted decode: its transcripts differ from those of earlier versions
        **({"fillers": "probe"} if options.engine == "openai-whisper" and filler_prompt else {}),
    }


def result_key(content_hash: str, settings: dict, context: Context | None = None) -> str:
    """The resume key (sha256 hex): content hash + grade settings + manifest context."""
    parts = {"content_hash": content_hash, **settings, "context": (context or Context()).to_dict()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def _append(path: Path, text: str) -> None:
    """Append ``text`` with one write() on an O_APPEND descriptor, then fsync."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_ledger(out: Path, key: str) -> dict | None:
    """The finished record for ``key``, or None (absent, unreadable, or retryable)."""
    try:
        record = json.loads((out / LEDGER_DIR / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("ledger_version") != LEDGER_VERSION or record.get("key") != key:
        return None
    return None if record.get("retryable") else record


# --- workers (the same function runs in a process pool and in Ray actors) ---

_GRADER: Grader | None = None
_INIT_ERROR: str | None = None


def init_worker(options: GradeOptions, watch_parent: bool = True) -> None:
    """Process-pool initializer: build this process's one ``Grader`` and load its model now."""
    global _GRADER, _INIT_ERROR
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if watch_parent:
        _watch_parent(os.getppid())
    try:
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


def grade_task(task: Task) -> dict:
    """Grade one task in a worker; never raises for a bad file or a bug (returns an error report)."""
    if _INIT_ERROR is not None:
        return {"fatal": _INIT_ERROR}
    return grade_with(_GRADER, task)


def grade_with(grader: Grader, task: Task) -> dict:
    """Grade ``task`` with ``grader``: the report dict, the per-file HTML page, and worker facts."""
    t0 = time.perf_counter()
    try:
        report = grader.grade(task.path, task.context).to_dict()
    except Exception as exc:  # a bug must not stop the batch: error record, retried next run
        log.exception("grading %s failed", task.path)
        message = f"{task.path}: internal error ({type(exc).__name__}: {exc})"
        report = {"file": task.path, "error": {"code": "internal_error", "message": message}}
    page, html_problem = None, None
    if "error" not in report:
        page, html_problem = _render_html(report, task.path)
    return {
        "report": report,
        "html": page,
        "html_problem": html_problem,
        "worker": {"pid": os.getpid(), "host": _hostname(), "grade_s": round(time.perf_counter() - t0, 3),
                   "peak_rss_mb": round(peak_rss_mb(), 1)},
    }


def _render_html(report: dict, audio_path: str) -> tuple[str | None, str | None]:
    """The per-file HTML page (contract 1, ``vmgrade.render.html``), rendered where the audio is."""
    try:
        from ..render.html import render_report_html
    except ImportError as exc:
        return None, f"per-file HTML skipped: vmgrade.render.html is not available ({exc})"
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
    error = {"code": "worker_crashed", "message": f"{task.path}: {reason}"}
    return {"report": {"file": task.path, "error": error}, "html": None, "html_problem": None, "worker": {}}


# --- the local backend: a process pool, one Grader per process ---


def run_local(tasks: Iterable[Task], options: GradeOptions, workers: int,
              note: Callable[[str], None] | None = None) -> Iterator[tuple[Task, dict]]:
    """Grade ``tasks`` in ``workers`` processes; yield ``(task, result)`` as each finishes.

    At most ``workers`` tasks are in flight, so when a worker dies (killed for
    memory, a crash in native code) the suspects are known: they are retried
    one at a time, and one that kills its worker :data:`MAX_CRASHES_PER_FILE`
    times gets a ``worker_crashed`` record. The pool uses "spawn" (torch and
    fork do not mix).
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
                    task = suspects.popleft()
                    retrying.add(task.key)
                else:
                    task = pending.popleft()
                inflight[pool.submit(grade_task, task)] = task
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken: list[Task] = []
            for fut in done:
                task = inflight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broken.append(task)
                    continue
                retrying.discard(task.key)
                yield task, result
            if broken:
                broken.extend(inflight.values())
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


def _stop_pool(pool) -> None:
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
    else:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


# --- the driver ---


def default_workers() -> int:
    """One worker process per CPU core, as many as the free memory holds.

    One-thread workers beat fewer many-thread ones: on 2 cores, 2 workers x 1
    thread graded 2.2x as fast as 1 worker x 2 threads (bench/batch_throughput.py).
    """
    try:
        free_bytes = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on Linux: trust the cores
        free_bytes = None
    by_memory = max(1, free_bytes // WORKER_MEMORY_BYTES) if free_bytes else cpu_cores()
    return max(1, min(cpu_cores(), by_memory))


@dataclass
class BatchOptions:
    """Settings for :func:`run_batch`.

    ``workers``: worker processes (or Ray actors); ``ray``: None for local
    processes, else a Ray address (``"local"`` starts or joins a Ray instance on
    this machine); ``db_url``: the history database (None: the default store);
    ``history``: False to skip it.
    """

    out: Path = Path("vmgrade-batch")
    workers: int | None = 1  # None: with Ray, one actor per cluster CPU
    manifest: Path | None = None
    grade: GradeOptions = field(default_factory=GradeOptions)
    ray: str | None = None
    db_url: str | None = None
    history: bool = True
    progress: bool = True


@dataclass
class BatchResult:
    """What a run did; ``exit_status`` is the CLI's."""

    out: Path
    files: int
    graded: int
    skipped: int
    failed: int
    summary: dict

    @property
    def exit_status(self) -> int:
        return EXIT_FILE_FAILED if self.failed else EXIT_OK


@dataclass
class _Row:
    """One input path's line in the aggregates."""

    path: str
    task: Task
    manifest: ManifestRow | None
    duplicate_of: str | None = None


def run_batch(inputs: Sequence[str | os.PathLike], options: BatchOptions | None = None,
              echo: Callable[[str], None] | None = None, grader: Grader | None = None) -> BatchResult:
    """Grade every recording named by ``inputs`` into ``options.out`` (see the module docstring).

    Parameters
    ----------
    inputs : sequence of str or PathLike
        Files, folders and globs (:func:`discover`).
    options : BatchOptions
    grader : Grader, optional
        Grade in this process with this (already loaded) ``Grader`` instead of
        starting workers; its options replace ``options.grade``.
    echo : callable, optional
        Receives progress notes and warnings (default: stderr). The summary is
        returned (``BatchResult.summary``; :func:`format_summary` prints it).

    Returns
    -------
    BatchResult
        ``graded``: results written by this run (errors included); ``skipped``:
        recordings already in the ledger; ``failed``: input paths with an error record.

    Raises
    ------
    BatchError, ModelError, RubricError, HistoryError
        Before anything is graded: bad inputs or manifest, output folder in use,
        unusable model or rubric, unreachable history database.
    """
    from ..asr.transcribe import make_transcriber
    from ..scoring import load_rubric
    from ..store.history import content_hash, rubric_version

    options = options or BatchOptions()
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(options.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    store = None
    try:
        manifest = read_manifest(options.manifest) if options.manifest else {}
        paths = discover(inputs, exclude=out)
        if not paths:
            raise BatchError(f"no audio files found in {', '.join(map(os.fspath, inputs))}", code="no_inputs")
        listed = set(paths)
        unlisted = [p for p in manifest if p not in listed]
        if unlisted:
            echo(f"vmgrade: note: {len(unlisted)} manifest file(s) are not among the inputs, "
                 f"e.g. {unlisted[0]}")

        grade_options = grader.options if grader is not None else options.grade
        if grade_options.threads is None and options.ray is None and grader is None:
            grade_options = replace(grade_options,
                                    threads=max(1, cpu_cores() // (options.workers or 1)))
        # Fail fast, before any worker starts: a bad model name or rubric stops the batch (exit 2).
        if grader is not None:
            rubric, model_name = grader.rubric, grader.transcriber.model_name
        else:
            rubric = load_rubric(grade_options.rubric)
            model_name = make_transcriber(grade_options.engine, grade_options.model).model_name
        settings = settings_of(grade_options, model_name, rubric_version(rubric))
        store = _open_history(options, echo)  # a bad database URL also stops the batch here

        rows, tasks = _plan(paths, manifest, settings, content_hash)
        for d in (LEDGER_DIR, REPORTS_DIR):
            (out / d).mkdir(exist_ok=True)
        _clean_tmp(out)
        done = {t.key: rec for t in tasks if (rec := read_ledger(out, t.key)) is not None}
        todo = [t for t in tasks if t.key not in done]
        copies = sum(1 for r in rows if r.duplicate_of)
        echo(f"vmgrade batch: {len(rows)} file(s), {len(done)} already graded, {len(todo)} to grade"
             + (f", {copies} byte-identical cop{'y' if copies == 1 else 'ies'} graded once" if copies else "")
             + f"; writing to {out}")

        writer = _Writer(out, rows, settings)
        writer.rebuild(done)
        if store is not None:
            for key, record in done.items():  # idempotent: closes a crash gap between ledger and DB
                _record_history(store, out, record, writer.first_row(key), echo)

        try:
            graded = _grade_all(todo, grade_options, options, writer, store, done, grader)
        finally:  # also on Ctrl-C: the aggregates end complete, sorted and duplicate-free
            summary = writer.finish(done)
    finally:
        if store is not None:
            store.close()
        _unlock(lock)
    failed = summary["totals"]["errors"]
    return BatchResult(out=out, files=len(rows), graded=graded, skipped=len(tasks) - len(todo),
                       failed=failed, summary=summary)


def _plan(paths: list[Path], manifest: dict[Path, ManifestRow], settings: dict,
          hasher: Callable[[Path], str]) -> tuple[list[_Row], list[Task]]:
    """One row per path and one task per distinct key (copies share a task)."""
    rows: list[_Row] = []
    first: dict[str, _Row] = {}
    tasks: list[Task] = []
    for path in paths:
        entry = manifest.get(path)
        context = entry.context if entry else Context()
        try:
            digest = hasher(path)
        except OSError as exc:  # unreadable: its own key, so the error record is per path
            digest = "unreadable:" + hashlib.sha256(f"{path}|{exc}".encode()).hexdigest()
        task = Task(key=result_key(digest, settings, context), path=str(path), content_hash=digest,
                    context=context)
        row = _Row(path=str(path), task=task, manifest=entry)
        if task.key in first:
            row.duplicate_of = first[task.key].path
            row.task = first[task.key].task
        else:
            first[task.key] = row
            tasks.append(task)
        rows.append(row)
    return rows, tasks


def _grade_all(todo: list[Task], grade_options: GradeOptions, options: BatchOptions, writer: _Writer,
               store, done: dict[str, dict], grader: Grader | None) -> int:
    from tqdm import tqdm

    if not todo:
        return 0
    if grader is not None:
        results = ((task, grade_with(grader, task)) for task in todo)
    elif options.ray is not None:
        from .cluster import run_ray

        results = run_ray(todo, grade_options, options.workers, options.ray)
    else:
        results = run_local(todo, grade_options, min(options.workers or 1, len(todo)),
                            note=lambda line: tqdm.write(line, file=sys.stderr))
    bar = tqdm(total=len(todo), unit="file", desc="grading", file=sys.stderr, dynamic_ncols=True,
               disable=not options.progress, smoothing=0.1)
    warned: set[str] = set()
    graded = 0

    def note(line: str) -> None:
        bar.write(line, file=sys.stderr)  # above the bar, not through it

    try:
        for task, result in results:
            if "fatal" in result:
                from ..errors import ModelError

                raise ModelError(f"a worker could not load the model: {result['fatal']}", code="model_error")
            problem = result.get("html_problem")
            if problem and problem not in warned:  # "html_report not available" once, not per file
                warned.add(problem)
                note(f"vmgrade: warning: {problem}")
            record = writer.commit(task, result)
            done[task.key] = record
            graded += 1
            if not record["ok"]:
                note(f"vmgrade: {record['report']['error']['message']}")
            elif store is not None:
                _record_history(store, writer.out, record, writer.first_row(task.key), note)
            bar.update(1)
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the workers (also on Ctrl-C)
        bar.close()
    return graded


# --- history (contract 3) ---


def _open_history(options: BatchOptions, echo: Callable[[str], None]):
    if not options.history:
        return None
    from ..store.history import open_store

    return open_store(options.db_url)


def _record_history(store, out: Path, record: dict, row: _Row, echo: Callable[[str], None]) -> None:
    if not record["ok"]:
        return
    entry = row.manifest
    try:
        store.record(record["report"], content_hash=record["content_hash"],
                     rep_id=entry.rep_id if entry else None,
                     recorded_at=entry.recorded_at if entry else None,
                     report_path=str(out / record["report_json"]),
                     rubric_version=record["rubric_version"],
                     graded_at=datetime.fromisoformat(record["graded_at"]))
    except Exception as exc:  # the ledger has the result; the next run records it again
        echo(f"vmgrade: warning: history store: could not record {row.path} ({type(exc).__name__}: {exc})")


# --- outputs ---


class _Writer:
    """Writes ledger records, per-file reports and the aggregates (module docstring: write path)."""

    def __init__(self, out: Path, rows: list[_Row], settings: dict):
        self.out = out
        self.rows = rows
        self.settings = settings
        self.by_key: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            self.by_key[row.task.key].append(row)
        self.records: dict[str, dict] = {}
        self._html_at = 0.0

    def first_row(self, key: str) -> _Row:
        return self.by_key[key][0]

    def commit(self, task: Task, result: dict) -> dict:
        """Write one finished task: report files, then the ledger entry, then the aggregates."""
        report = result["report"]
        ok = "error" not in report
        code = None if ok else report["error"].get("code")
        stem = re.sub(r"[^\w.-]+", "_", Path(task.path).stem)[:80] or "file"
        base = f"{REPORTS_DIR}/{stem}-{task.key[:12]}"
        write_atomic(self.out / f"{base}.json", json.dumps(report, indent=1, ensure_ascii=False))
        html_rel = None
        if result.get("html"):
            write_atomic(self.out / f"{base}.html", result["html"])
            html_rel = f"{base}.html"
        record = {
            "ledger_version": LEDGER_VERSION,
            "key": task.key,
            "content_hash": task.content_hash,
            **self.settings,
            "context": task.context.to_dict(),
            "file": task.path,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "ok": ok,
            "retryable": code in RETRYABLE_CODES,
            "report_json": f"{base}.json",
            "report_html": html_rel,
            "worker": result.get("worker", {}),
            "report": report,
        }
        write_atomic(self.out / LEDGER_DIR / f"{task.key}.json", json.dumps(record, ensure_ascii=False))
        self.records[task.key] = record
        rows = self.by_key[task.key]
        _append(self.out / JSONL_NAME, "".join(_jsonl_line(r, record) for r in rows))
        _append(self.out / CSV_NAME, _csv_text([_csv_row(r, record) for r in rows]))
        if time.monotonic() - self._html_at > HTML_REFRESH_S:
            self._write_html()
        return record

    def rebuild(self, done: dict[str, dict]) -> None:
        """Rewrite every aggregate from ledger records (atomically): rows of finished inputs, by path."""
        self.records.update(done)  # with any committed by this run (an interrupt may come mid-commit)
        finished = [(r, self.records[r.task.key]) for r in self.rows if r.task.key in self.records]
        write_atomic(self.out / JSONL_NAME, "".join(_jsonl_line(r, rec) for r, rec in finished))
        write_atomic(self.out / CSV_NAME, ",".join(CSV_COLUMNS) + "\r\n"
                     + _csv_text([_csv_row(r, rec) for r, rec in finished]))
        self._write_html()

    def finish(self, done: dict[str, dict]) -> dict:
        self.rebuild(done)
        summary = summarize(self.rows, self.records)
        write_atomic(self.out / SUMMARY_NAME, json.dumps(summary, indent=1, ensure_ascii=False))
        self._write_html(summary)
        return summary

    def _write_html(self, summary: dict | None = None) -> None:
        self._html_at = time.monotonic()
        summary = summary or summarize(self.rows, self.records)
        write_atomic(self.out / HTML_NAME, render_index_html(self.rows, self.records, summary))


def _jsonl_line(row: _Row, record: dict) -> str:
    report = dict(record["report"])
    report["file"] = row.path
    report["batch"] = _batch_fields(row, record)
    return json.dumps(report, ensure_ascii=False) + "\n"


def _batch_fields(row: _Row, record: dict) -> dict:
    entry = row.manifest
    return {
        "key": record["key"],
        "content_hash": record["content_hash"],
        "rep_id": entry.rep_id if entry else None,
        "recorded_at": entry.recorded_at.isoformat() if entry and entry.recorded_at else None,
        "duplicate_of": row.duplicate_of,
        "report_json": record["report_json"],
        "report_html": record["report_html"],
        "graded_at": record["graded_at"],
    }


def _csv_row(row: _Row, record: dict) -> list:
    report = record["report"]
    batch = _batch_fields(row, record)
    dims = {d["key"]: d["score"] for d in report.get("dimensions", [])}
    error = report.get("error") or {}
    tips = report.get("tips") or []
    context = record.get("context", {})
    values = {
        "file": row.path,
        "status": "error" if error else "ok",
        "score": report.get("score"),
        "grade": report.get("grade"),
        **{f"{d}_score": dims.get(d) for d in DIMENSIONS},
        "duration_s": report.get("duration_s"),
        "rate_wpm": (report.get("metrics") or {}).get("rate_wpm"),
        "top_tip": tips[0]["message"] if tips else None,
        "error_code": error.get("code"),
        "error_message": error.get("message"),
        **{c: context.get(c) for c in CONTEXT_COLUMNS},
        "model": record["model"],
        "engine": record["engine"],
        "rubric_version": record["rubric_version"],
        **batch,
    }
    return ["" if values.get(c) is None else values[c] for c in CSV_COLUMNS]


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _clean_tmp(out: Path) -> None:
    """Remove temporary files a killed run left (we hold the lock: no writer is active)."""
    for folder in (out, out / LEDGER_DIR, out / REPORTS_DIR):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def _lock(out: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; one batch per folder is then up to the user
        return None
    handle = open(out / LOCK_NAME, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise BatchError(f"{out}: another vmgrade batch is writing to this folder",
                         code="out_in_use") from exc
    return handle


def _unlock(handle) -> None:
    if handle is not None:
        handle.close()  # closing releases the flock


# --- the summary ---


def summarize(rows: Sequence[_Row], records: dict[str, dict]) -> dict:
    """Grade distribution, most common findings, per-rep averages, error counts.

    Each recording (key) counts once, under its first path's rep; copies do not.
    """
    seen: set[str] = set()
    letters: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    reps: dict[str, list[dict]] = defaultdict(list)
    scores: list[float] = []
    pending = 0
    for row in rows:
        record = records.get(row.task.key)
        if record is None:
            pending += 1
            continue
        report = record["report"]
        if not record["ok"]:  # every bad path counts (two empty files are two failures)
            errors[report["error"]["code"]] += 1
            continue
        if row.task.key in seen:
            continue
        seen.add(row.task.key)
        letters[report["grade"]] += 1
        scores.append(report["score"])
        findings.update({f["code"] for f in report.get("feedback", [])})
        reps[(row.manifest.rep_id if row.manifest else None) or "(none)"].append(report)
    graded = len(scores)
    return {
        "totals": {"files": len(rows), "graded": graded,
                   "errors": sum(errors.values()), "pending": pending,
                   "duplicates": sum(1 for r in rows if r.duplicate_of)},
        "mean_score": round(sum(scores) / graded, 1) if graded else None,
        "grade_distribution": {k: letters.get(k, 0) for k in ("A", "B", "C", "D", "F")},
        "top_findings": [{"code": code, "files": n, "share": round(n / graded, 3)} for code, n in
                         sorted(findings.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FINDINGS]],
        "errors": dict(sorted(errors.items())),
        "reps": {rep: _rep_stats(reports) for rep, reports in sorted(reps.items())},
    }


def _rep_stats(reports: list[dict]) -> dict:
    dims: dict[str, list[float]] = defaultdict(list)
    for r in reports:
        for d in r.get("dimensions", []):
            dims[d["key"]].append(d["score"])
    return {
        "recordings": len(reports),
        "mean_score": round(sum(r["score"] for r in reports) / len(reports), 1),
        "grades": dict(sorted(Counter(r["grade"] for r in reports).items())),
        "mean_dimensions": {k: round(sum(v) / len(v), 1) for k, v in dims.items()},
    }


def format_summary(summary: dict) -> str:
    """The end-of-run summary as text."""
    t = summary["totals"]
    copies = t["duplicates"]
    lines = [f"\n{t['files']} file(s): {t['graded']} graded, {t['errors']} failed"
             + (f", {copies} cop{'y' if copies == 1 else 'ies'} of others" if copies else "")
             + (f", {t['pending']} not finished" if t["pending"] else "")
             + (f"; mean score {summary['mean_score']}" if summary["mean_score"] is not None else "")]
    dist = summary["grade_distribution"]
    lines.append("Grades: " + "  ".join(f"{k} {v}" for k, v in dist.items()))
    if summary["top_findings"]:
        lines.append("Most common findings:")
        lines += [f"  {f['code']:<24} {f['files']:>5} ({f['share']:.0%})" for f in summary["top_findings"]]
    if summary["errors"]:
        lines.append("Errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    if summary["reps"]:
        lines.append(f"{'Rep':<20} {'files':>5} {'mean':>6}  grades")
        for rep, s in summary["reps"].items():
            grades = " ".join(f"{k}{v}" for k, v in s["grades"].items())
            lines.append(f"{rep[:20]:<20} {s['recordings']:>5} {s['mean_score']:>6.1f}  {grades}")
    return "\n".join(lines)


# --- index.html ---

_INDEX_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
th{cursor:pointer;background:#f4f4f4;user-select:none}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.error td{color:#a00}.summary{display:flex;gap:3em;flex-wrap:wrap}.muted{color:#777}
"""
_INDEX_SCRIPT = """
document.querySelectorAll('th').forEach(function(th){th.addEventListener('click', function(){
  var col=th.cellIndex, tbody=th.closest('table').tBodies[0], asc=th.getAttribute('aria-sort')!=='ascending';
  th.parentNode.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort')});
  th.setAttribute('aria-sort', asc?'ascending':'descending');
  var rows=Array.prototype.slice.call(tbody.rows), key=function(r){
    var v=r.cells[col].getAttribute('data-v'); var n=parseFloat(v); return isNaN(n)?v.toLowerCase():n};
  rows.sort(function(a,b){var x=key(a),y=key(b);  // numbers in order, blanks and text after them
    if(typeof x!==typeof y) return typeof x==='number'?-1:1; var c=x<y?-1:x>y?1:0; return asc?c:-c});
  rows.forEach(function(r){tbody.appendChild(r)});});});
"""


def render_index_html(rows: Sequence[_Row], records: dict[str, dict], summary: dict) -> str:
    """The summary page: totals, grade distribution, findings, reps, and a sortable table of files."""
    e = html.escape
    t = summary["totals"]
    head = ["File", "Rep", "Score", "Grade", "Duration (s)", "Top tip / error", "Copy of"]
    body = []
    for row in rows:
        record = records.get(row.task.key)
        if record is None:
            continue
        report = record["report"]
        link = record["report_html"] or record["report_json"]
        err = report.get("error")
        cells = [
            (row.path, f'<a href="{e(link)}">{e(row.path)}</a>'),
            ((row.manifest.rep_id if row.manifest else None) or "", None),
            (report.get("score", ""), None),
            (report.get("grade", ""), None),
            (report.get("duration_s", ""), None),
            (f"[{err['code']}] {err['message']}" if err else _top_tip(report),
             None),
            (row.duplicate_of or "", None),
        ]
        tds = "".join(
            f'<td data-v="{e(str(v))}"{" class=num" if isinstance(v, (int, float)) else ""}>'
            f"{shown if shown is not None else e(str(v))}</td>"
            for v, shown in cells
        )
        body.append(f'<tr{" class=error" if err else ""}>{tds}</tr>')
    dist = " ".join(f"{k}&nbsp;{v}" for k, v in summary["grade_distribution"].items())
    findings = "".join(f"<li>{e(f['code'])}: {f['files']} ({f['share']:.0%})</li>"
                       for f in summary["top_findings"])
    reps = "".join(f"<tr><td>{e(rep)}</td><td class=num>{s['recordings']}</td>"
                   f"<td class=num>{s['mean_score']}</td></tr>" for rep, s in summary["reps"].items())
    updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    status = (f"{t['graded']} graded, {t['errors']} failed, {t['pending']} not finished, "
              f"{t['duplicates']} copies, of {t['files']} files")
    mean = "" if summary["mean_score"] is None else f"; mean score {summary['mean_score']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmgrade batch</title><style>{_INDEX_STYLE}</style></head>
<body><h1>vmgrade batch</h1>
<p>{e(status)}{e(mean)}. <span class="muted">Updated {e(updated)}.
Click a column to sort.</span></p>
<div class="summary"><div><h2>Grades</h2><p>{dist}</p></div>
<div><h2>Most common findings</h2><ol>{findings}</ol></div>
<div><h2>Reps</h2><table><thead><tr><th>Rep</th><th>Files</th><th>Mean</th></tr></thead><tbody>{reps}</tbody></table></div></div>
<h2>Files</h2>
<table id="files"><thead><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
<script>{_INDEX_SCRIPT}</script></body></html>
"""


def _top_tip(report: dict) -> str:
    tips = report.get("tips") or []
    return tips[0]["message"] if tips else ""


def worker_report(records: Iterable[dict]) -> dict[str, float]:
    """Peak RSS (MB) per worker pid over ``records`` (for the benchmark)."""
    peaks: dict[str, float] = {}
    for rec in records:
        w = rec.get("worker") or {}
        if "pid" in w:
            k = f"{w.get('host', '')}:{w['pid']}"
            peaks[k] = max(peaks.get(k, 0.0), w.get("peak_rss_mb", 0.0))
    return peaks


__all__ = [
    "AUDIO_EXTENSIONS", "BatchError", "BatchOptions", "BatchResult", "CSV_COLUMNS", "ManifestRow", "Task",
    "discover", "format_summary", "read_manifest", "result_key", "run_batch", "summarize",
]  # fmt: skip

