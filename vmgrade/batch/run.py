"""The batch driver: :func:`run_batch` plans the work, hands it to workers and writes every output.

The driver hashes the inputs (:mod:`vmgrade.batch.ledger` keys), skips what
the ledger has, grades the rest in worker processes
(:func:`vmgrade.batch.workers.run_local`), on Ray actors
(:mod:`vmgrade.batch.cluster`) or in this process, and is the only writer:
per-file reports, ledger entries, the aggregates, ``summary.json`` and
``index.html`` (:mod:`vmgrade.render.batch_index`), and the history store.
The order of the writes is what makes a run crash-safe (:mod:`vmgrade.batch`).

What cannot be graded is found while planning and recorded here, without a
worker: a path that is no regular file (a FIFO or ``/dev/zero`` is never
opened), one that cannot be read, a folder that cannot be listed. A file
replaced after it was hashed is keyed by the bytes the worker graded
(:func:`vmgrade.batch.workers.grade_with` says which), never by the old hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..asr.threads import default_threads
from ..csvtable import csv_text
from ..errors import VmgradeError, file_error, printable, terminal_safe
from ..fileio import write_atomic
from ..pipeline import Context, GradeOptions, Grader
from ..render.batch_index import render_index_html
from ..report import ErrorInfo, Report, not_graded_kind
from ..scoring import DIMENSIONS
from .inputs import CONTEXT_COLUMNS, BatchError, ManifestRow, discover, read_manifest
from .ledger import (
    CSV_NAME,
    HTML_NAME,
    JSONL_NAME,
    LEDGER_DIR,
    LEDGER_VERSION,
    MAX_ATTEMPTS,
    REPORTS_DIR,
    RETRYABLE_CODES,
    SUMMARY_NAME,
    Row,
    Task,
    append_synced,
    check_out,
    clean_tmp,
    dumps,
    lock_out,
    previous_attempts,
    read_ledger,
    result_key,
    settings_of,
    shown,
    signature,
    unlock_out,
    writing,
)
from .summary import recorded_at, summarize
from .workers import grade_together, run_local

HTML_REFRESH_S = 5.0  # index.html is rewritten whole at most this often while running
CSV_COLUMNS = (
    "file", "status", "score", "grade", *(f"{d}_score" for d in DIMENSIONS), "duration_s",
    "rate_wpm", "top_tip", "error_code", "error_message", "rep_id", "recorded_at", "caller_name",
    "company", "callback_number", "prospect_name", "prospect_company", "duplicate_of", "content_hash",
    "key", "model", "engine", "rubric_version", "report_json", "report_html", "graded_at",
    "recording_kind",
)  # fmt: skip

EXIT_OK, EXIT_FILE_FAILED = 0, 1


@dataclass
class BatchOptions:
    """Settings for :func:`run_batch`.

    ``workers``: worker processes (or Ray actors); ``ray``: None for local
    processes, else a Ray address (``"local"`` starts or joins a Ray instance on
    this machine); ``db_url``: the history database (None: the default store);
    ``history``: False to skip it; ``follow_links``: follow symbolic links found in the input
    folders even where they lead out of them (by default such a link gets an ``outside_folder``
    record and is not read).

    ``team``: also record each graded file in the web app's team store, as an upload of its rep in
    this team (:mod:`vmgrade.store.intake`; needs the history database); ``rep``: the rep of the
    files whose manifest row names none (history and team store); ``storage``: where the team
    store keeps audio and reports, ``local`` (under ``data_dir``) or ``database`` (None: the web
    app's default for the database, :func:`vmgrade.store.blobs.default_storage`); ``data_dir``:
    the web app's data dir (None: :func:`vmgrade.store.history.data_dir`, as ``vmgrade serve``).
    """

    out: Path = Path("vmgrade-batch")
    workers: int | None = 1  # None: with Ray, one actor per cluster CPU
    manifest: Path | None = None
    grade: GradeOptions = field(default_factory=GradeOptions)
    ray: str | None = None
    db_url: str | None = None
    history: bool = True
    progress: bool = True
    follow_links: bool = False  # follow links found in input folders wherever they lead
    team: str | None = None  # also add the graded files to this team of the web app
    rep: str | None = None  # rep of the files the manifest gives none
    storage: str | None = None  # the team store's files: "local" or "database"; None: the DB's default
    data_dir: Path | None = None  # local storage's folder; None: the default data dir
    # files each worker grades at once, sharing batched decoder passes; None: the engine's
    # choice (vmgrade.asr.transcribe.files_at_once)
    files_at_once: int | None = None


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


def run_batch(inputs: Sequence[str | os.PathLike], options: BatchOptions | None = None,
              echo: Callable[[str], None] | None = None, grader: Grader | None = None) -> BatchResult:
    """Grade every recording named by ``inputs`` into ``options.out`` (:mod:`vmgrade.batch`: writes, resume).

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
    BatchError, ModelError, RubricError, HistoryError, TeamStoreError
        Before anything is graded: bad inputs or manifest, output folder in use,
        unusable model or rubric, unreachable history database, a ``team`` without
        the history or without any rep, a ``rep`` of another team. At any time:
        ``out_unwritable`` when the output folder cannot be written (read-only, full).
    """
    from ..asr.transcribe import make_transcriber
    from ..fileio import content_hash
    from ..scoring import load_rubric
    from ..store.history import rubric_version

    options = options or BatchOptions()
    _check_team_options(options)
    # every line escaped here: messages carry file names, and a name can hold an ANSI escape
    echo = echo or (lambda line: print(terminal_safe(line), file=sys.stderr, flush=True))
    out = Path(options.out).resolve()
    check_out(out)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        lock = lock_out(out)
    store = team = None
    try:
        manifest = read_manifest(options.manifest) if options.manifest else {}
        unreadable: list[tuple[Path, OSError]] = []
        outside: list[Path] = []
        paths = discover(inputs, exclude=out, unreadable=unreadable, outside=outside,
                         follow_links=options.follow_links)
        if not paths and not unreadable and not outside:
            raise BatchError(f"no audio files found in {', '.join(shown(os.fspath(i)) for i in inputs)}",
                             code="no_inputs")
        listed = set(paths)
        unlisted = [p for p in manifest if p not in listed]
        if unlisted:
            echo(f"vmgrade: note: {len(unlisted)} manifest file(s) are not among the inputs, "
                 f"e.g. {unlisted[0]}")

        grade_options = grader.options if grader is not None else options.grade
        if grade_options.threads is None and options.ray is None and grader is None:
            grade_options = replace(grade_options,
                                    threads=default_threads(processes=options.workers or 1))
        # Fail fast, before any worker starts: a bad model name or rubric stops the batch (exit 2).
        if grader is not None:
            rubric, model_name = grader.rubric, grader.transcriber.model_name
        else:
            rubric = load_rubric(grade_options.rubric)
            model_name = make_transcriber(grade_options.engine, grade_options.model).model_name
        settings = settings_of(grade_options, model_name, rubric_version(rubric))
        store = _open_history(options, echo)  # a bad database URL also stops the batch here
        team = _open_team(options, store)  # so does a --rep of another team

        rows, tasks = _plan(paths, manifest, settings, content_hash, unreadable, outside)
        with writing(out):
            for d in (LEDGER_DIR, REPORTS_DIR):
                (out / d).mkdir(exist_ok=True)
            clean_tmp(out)
        done = {t.key: rec for t in tasks if (rec := read_ledger(out, t.key)) is not None}
        todo = [t for t in tasks if t.key not in done]
        copies = sum(1 for r in rows if r.duplicate_of)
        echo(f"vmgrade batch: {len(rows)} file(s), {len(done)} already graded, {len(todo)} to grade"
             + (f", {copies} byte-identical cop{'y' if copies == 1 else 'ies'} graded once" if copies else "")
             + f"; writing to {shown(str(out))}")

        writer = _Writer(out, rows, settings)
        writer.rebuild(done)
        if store is not None:
            for key, record in done.items():  # idempotent: closes a crash gap between ledger and DB
                _record(store, team, writer, key, record, options.rep, echo)

        for folder, exc in unreadable:
            echo(f"vmgrade: warning: cannot read folder {shown(str(folder))} ({exc.strerror or exc}); "
                 "its recordings are not graded")
        try:
            graded = _grade_all(todo, grade_options, options, writer, store, team, done, grader, echo)
        finally:  # also on Ctrl-C: the aggregates end complete, sorted and duplicate-free
            summary = writer.finish(done)
        if team is not None and sum(team.counts.values()):
            counts = team.counts
            echo(f"vmgrade batch: {counts['added'] + counts['updated']} recording(s) in team {team.team} of "
                 f"the web app ({counts['added']} new)"
                 + (f"; {counts['kept']} uploaded there by their rep already" if counts["kept"] else ""))
    finally:
        if store is not None:
            store.close()
        unlock_out(lock)
    failed = summary["totals"]["errors"]
    return BatchResult(out=out, files=len(rows), graded=graded, skipped=len(tasks) - len(todo),
                       failed=failed, summary=summary)


def _plan(paths: list[Path], manifest: dict[Path, ManifestRow], settings: dict,
          hasher: Callable[[Path], str],
          unreadable: Sequence[tuple[Path, OSError]] = (),
          outside: Sequence[Path] = ()) -> tuple[list[Row], list[Task]]:
    """One row per path and one task per distinct key (copies share a task); one per unreadable folder
    and one per link that leads out of its input folder (``outside_folder``: never opened)."""
    rows: list[Row] = []
    first: dict[str, Row] = {}
    tasks: list[Task] = []
    for path in paths:
        entry = manifest.get(path)
        context = entry.context if entry else Context()
        sig, digest, error = _identify(path, hasher)
        task = Task(key=result_key(digest, settings, context), path=str(path), content_hash=digest,
                    context=context, signature=sig, error=error)
        row = Row(path=str(path), task=task, manifest=entry, signature=sig)
        if task.key in first:
            row.duplicate_of = first[task.key].path
            row.task = first[task.key].task
        else:
            first[task.key] = row
            tasks.append(task)
        rows.append(row)
    for folder in dict.fromkeys(f for f, _ in unreadable):  # a folder named twice is one row
        exc = next(e for f, e in unreadable if f == folder)
        digest = _path_digest("unreadable-folder", folder, exc.errno)
        message = (f"{shown(str(folder))}: cannot read this folder ({exc.strerror or exc}); "
                   "the recordings in it were not graded")
        task = Task(key=result_key(digest, settings), path=str(folder), content_hash=digest,
                    error=("unreadable", message))
        rows.append(Row(path=str(folder), task=task, manifest=None, folder=True))
        tasks.append(task)
    for link in dict.fromkeys(outside):
        message = (f"{shown(str(link))}: a symbolic link that leads out of the input folder; not read "
                   "(--follow-links follows it)")  # the target is not named: it is none of the inputs
        task = Task(key=result_key(_path_digest("outside_folder", link), settings), path=str(link),
                    content_hash=_path_digest("outside_folder", link), error=("outside_folder", message))
        rows.append(Row(path=str(link), task=task, manifest=None))
        tasks.append(task)
    rows.sort(key=lambda r: Path(r.path))  # stable: the files keep their order, folders join it
    return rows, tasks


def _identify(path: Path, hasher: Callable[[Path], str]) -> tuple[tuple | None, str, tuple[str, str] | None]:
    """``(signature, content hash, planned error)`` of one input; a type check comes before any open.

    A path that cannot be graded gets a digest of its path and the reason, so its
    error record is its own (never shared by copies) and final until that changes.
    """
    name = shown(str(path))
    try:
        st = os.stat(path)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # gone since listed, a dangling link
            return None, _path_digest("file_not_found", path), ("file_not_found", f"{name}: file not found")
        error = file_error(exc, str(path))  # symlink_loop or unreadable
        return None, _path_digest(error.code, path, exc.errno), (error.code, printable(error.message))
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block and /dev/zero never end: never opened
        return None, _path_digest("not_a_file", path), (
            "not_a_file", f"{name}: not a regular file (a FIFO, device or socket); not read")
    try:
        return signature(st), hasher(path), None  # signed before hashing: a later change shows
    except OSError as exc:  # unreadable: its own key, so the error record is per path (as before)
        raw = f"{path}|{exc}".encode("utf-8", "surrogateescape")
        digest = "unreadable:" + hashlib.sha256(raw).hexdigest()
        error = file_error(exc, str(path))
        return None, digest, (error.code, printable(error.message))


def _path_digest(code: str, path: Path, errno_: int | None = None) -> str:
    raw = os.fsencode(path) + (b"|%d" % errno_ if errno_ is not None else b"")
    return f"{code}:{hashlib.sha256(raw).hexdigest()}"


def _grade_all(todo: list[Task], grade_options: GradeOptions, options: BatchOptions, writer: _Writer,
               store, team, done: dict[str, dict], grader: Grader | None, echo: Callable[[str], None]) -> int:
    from tqdm import tqdm

    graded = 0
    for task in [t for t in todo if t.error is not None]:  # found while planning: nothing to grade
        record = writer.commit(task, writer.planned_result(task))
        done[task.key] = record
        graded += 1
        echo(f"vmgrade: {record['report']['error']['message']}")
    todo = [t for t in todo if t.error is None]
    if not todo:
        return graded
    bar = tqdm(total=len(todo), unit="file", desc="grading", file=sys.stderr, dynamic_ncols=True,
               disable=not options.progress, smoothing=0.1)
    warned: set[str] = set()

    def note(line: str) -> None:
        bar.write(terminal_safe(line), file=sys.stderr)  # above the bar, not through it

    try:
        while todo:
            followups: list[Task] = []  # copies of a file replaced mid-run: their bytes are still ungraded
            results = _results(todo, grade_options, options, grader, note)
            try:
                for task, result in results:
                    if "fatal" in result:
                        from ..errors import ModelError

                        raise ModelError(f"a worker could not load the model: {result['fatal']}",
                                         code="model_error")
                    problem = result.get("html_problem")
                    if problem and problem not in warned:  # "html_report not available" once, not per file
                        warned.add(problem)
                        note(f"vmgrade: warning: {problem}")
                    bar.update(1)
                    graded_hash = result.get("content_hash", task.content_hash)
                    if graded_hash != task.content_hash:
                        task, followup = writer.rekey(task, graded_hash)
                        note(f"vmgrade: note: {shown(task.path)} changed after it was hashed; "
                             "its result is keyed by the bytes that were graded")
                        if followup is not None:
                            followups.append(followup)
                            bar.total += 1
                        known = done.get(task.key) or read_ledger(writer.out, task.key)
                        if known is not None:  # those bytes were graded already: reuse, as for a copy
                            done[task.key] = known
                            writer.adopt(task.key, known)
                            continue
                    record = writer.commit(task, result)
                    done[task.key] = record
                    graded += 1
                    if not record["ok"]:
                        prefix = "not graded: " if not_graded_kind(record["report"]) else ""
                        note(f"vmgrade: {prefix}{record['report']['error']['message']}")
                    elif store is not None:
                        _record(store, team, writer, task.key, record, options.rep, note)
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()  # stops the workers (also on Ctrl-C)
            todo = followups
    finally:
        bar.close()
    return graded


def _results(todo: list[Task], grade_options: GradeOptions, options: BatchOptions, grader: Grader | None,
             note: Callable[[str], None]) -> Iterator[tuple[Task, dict]]:
    """``(task, result)`` pairs as they finish: in this process, on Ray actors, or in worker processes."""
    from ..asr.transcribe import files_at_once

    engine = grader.transcriber.engine if grader is not None else grade_options.engine
    at_once = options.files_at_once or files_at_once(engine)
    if grader is not None:
        return grade_together(grader, todo, at_once)
    if options.ray is not None:
        from .cluster import run_ray

        return run_ray(todo, grade_options, options.workers, options.ray, files_at_once=at_once)
    return run_local(todo, grade_options, min(options.workers or 1, len(todo)), note=note,
                     files_at_once=at_once)


# --- history (contract 3) ---


def _open_history(options: BatchOptions, echo: Callable[[str], None]):
    if not options.history:
        return None
    from ..store.history import open_store

    return open_store(options.db_url)


def _record(store, team, writer: _Writer, key: str, record: dict, default_rep: str | None,
            echo: Callable[[str], None]) -> None:
    """Record a finished key in the history store and, with ``--team``, in the team store."""
    if not record["ok"]:
        return
    rows = writer.by_key[key]
    recording_id = _record_history(store, writer.out, record, rows[0], default_rep, echo)
    if team is not None:
        _record_team(team, record, rows, _rep_of(rows[0], default_rep), recording_id, default_rep, echo)


def _rep_of(row: Row, default_rep: str | None) -> str | None:
    """The file's rep: its manifest row's ``rep_id``, else ``--rep``."""
    return (row.manifest.rep_id if row.manifest else None) or default_rep


def _record_history(store, out: Path, record: dict, row: Row, default_rep: str | None,
                    echo: Callable[[str], None]) -> int | None:
    """Record one result in the history store; its recording id, or None when it could not."""
    entry = row.manifest
    try:
        return store.record(record["report"], content_hash=record["content_hash"],
                            rep_id=_rep_of(row, default_rep),
                            recorded_at=entry.recorded_at if entry else None,
                            report_path=str(out / record["report_json"]),
                            rubric_version=record["rubric_version"],
                            graded_at=datetime.fromisoformat(record["graded_at"]))
    except Exception as exc:  # the ledger has the result; the next run records it again
        echo(f"vmgrade: warning: history store: could not record {row.path} ({type(exc).__name__}: {exc})")
        return None


# --- the web app's team store (--team; vmgrade.store.intake) ---


def _check_team_options(options: BatchOptions) -> None:
    """Refuse, before anything runs, team settings that cannot work."""
    from ..store.blobs import STORAGE_KINDS
    from ..store.intake import TeamStoreError, check_rep_name, check_team_name

    if options.team is None:
        extra = [name for name, value in (("--storage", options.storage), ("--data-dir", options.data_dir))
                 if value is not None]
        if extra:
            raise BatchError(f"{' and '.join(extra)} say where --team puts its files: give --team NAME too")
        return  # a --rep alone names the history's rep: any id goes there
    if not options.history:
        raise BatchError("--team records into the history database: leave out --no-history")
    if options.manifest is None and options.rep is None:
        raise BatchError("--team needs each file's rep: give --rep NAME (every file) or a --manifest with a "
                         "rep_id column")
    if options.storage is not None and options.storage not in STORAGE_KINDS:
        raise BatchError(f"--storage {options.storage!r}: use one of {', '.join(STORAGE_KINDS)}")
    _check_name(check_team_name, options.team, TeamStoreError)
    if options.rep is not None:
        _check_name(check_rep_name, options.rep, TeamStoreError)


def _check_name(check: Callable[[str], str], value: str, error: type[Exception]) -> None:
    try:
        check(value)
    except error as exc:
        raise BatchError(str(exc)) from exc


def _open_team(options: BatchOptions, store):
    """The team store's recorder for ``options.team`` (None without one); checks ``--rep`` against it.

    Raises
    ------
    TeamStoreError
        ``options.rep`` is a user of another team.
    """
    if options.team is None or store is None:
        return None
    from ..store.blobs import default_storage, open_blobs
    from ..store.history import data_dir
    from ..store.intake import TeamRecorder

    kind = options.storage or default_storage(store.url)
    directory = Path(options.data_dir).expanduser() if options.data_dir else data_dir()
    recorder = TeamRecorder(store.engine, open_blobs(kind, data_dir=directory, engine=store.engine),
                            options.team)
    if options.rep is not None:
        recorder.check_rep(options.rep)  # every file without a manifest rep would fail: say so now
    return recorder


def _record_team(team, record: dict, rows: list[Row], history_rep: str | None, recording_id: int | None,
                 default_rep: str | None, echo: Callable[[str], None]) -> None:
    """Add one graded key to the team store: one upload per rep among its rows (byte-identical copies)."""
    reps: set[str] = set()
    for row in rows:
        rep = _rep_of(row, default_rep)
        if rep is None:
            echo(f"vmgrade: warning: {shown(row.path)}: no rep (no rep_id in the manifest, no --rep): "
                 f"graded, but not added to team {team.team}")
            continue
        if rep.lower() in reps:  # a copy of the same rep's recording: one upload
            continue
        reps.add(rep.lower())
        entry = row.manifest
        try:
            done = team.record(rep=rep, audio_path=Path(row.path), report=record["report"],
                               content_hash=record["content_hash"],
                               recorded_at=entry.recorded_at if entry else None, context=record["context"],
                               graded_at=datetime.fromisoformat(record["graded_at"]),
                               recording_id=recording_id if rep == history_rep else None)
        except Exception as exc:  # the ledger has the result; the next run adds it again
            problem = exc.message if isinstance(exc, VmgradeError) else f"{type(exc).__name__}: {exc}"
            echo(f"vmgrade: warning: {shown(row.path)}: not added to team {team.team} ({problem})")
            continue
        if done.status == "kept":
            echo(f"vmgrade: note: {shown(row.path)}: {rep} uploaded this recording in the web app already; "
                 "that upload stands")


# --- outputs ---


class _Writer:
    """Writes ledger records, per-file reports and the aggregates (:mod:`vmgrade.batch`: write path).

    Every write goes through :func:`~vmgrade.batch.ledger.writing`: a read-only
    or full output folder stops the batch with ``out_unwritable``.
    """

    def __init__(self, out: Path, rows: list[Row], settings: dict):
        self.out = out
        self.rows = rows
        self.settings = settings
        self.by_key: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            self.by_key[row.task.key].append(row)
        self.records: dict[str, dict] = {}
        self.appended: set[str] = set()  # paths whose line is in the aggregates: each is written once
        self._html_at = 0.0

    def first_row(self, key: str) -> Row:
        """The row whose path stands for ``key`` (the first of byte-identical copies)."""
        return self.by_key[key][0]

    def planned_result(self, task: Task) -> dict:
        """The result of a task that failed while planning (``task.error``): its error report."""
        code, message = task.error
        report = Report(file=shown(task.path), context=task.context.to_dict(), error=ErrorInfo(code, message),
                        vmgrade_version=__version__)
        return {"report": report.to_dict(), "html": None, "html_problem": None, "worker": {}}

    def commit(self, task: Task, result: dict) -> dict:
        """Write one finished task: report files, then the ledger entry, then the aggregates."""
        report = result["report"]
        ok = "error" not in report
        code = None if ok else report["error"].get("code")
        # a failure that may not recur is graded again by the next MAX_ATTEMPTS - 1 runs, then final
        attempts = previous_attempts(self.out, task.key) + 1 if code in RETRYABLE_CODES else 1
        stem = re.sub(r"[^\w.-]+", "_", Path(task.path).stem)[:80] or "file"
        base = f"{REPORTS_DIR}/{stem}-{task.key[:12]}"
        with writing(self.out):
            write_atomic(self.out / f"{base}.json", dumps(report, indent=1))
            html_rel = None
            if result.get("html"):
                write_atomic(self.out / f"{base}.html", printable(result["html"]))
                html_rel = f"{base}.html"
            record = {
                "ledger_version": LEDGER_VERSION,
                "key": task.key,
                "content_hash": task.content_hash,
                **self.settings,
                "context": task.context.to_dict(),
                "file": shown(task.path),
                "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "ok": ok,
                "retryable": code in RETRYABLE_CODES and attempts < MAX_ATTEMPTS,
                **({"attempts": attempts} if code in RETRYABLE_CODES else {}),
                "report_json": f"{base}.json",
                "report_html": html_rel,
                "worker": result.get("worker", {}),
                "report": report,
            }
            write_atomic(self.out / LEDGER_DIR / f"{task.key}.json", dumps(record))
            self.records[task.key] = record
            self._append(task.key, record)
            if time.monotonic() - self._html_at > HTML_REFRESH_S:
                self._write_html()
        return record

    def adopt(self, key: str, record: dict) -> None:
        """Take ``record`` (already in the ledger) for ``key``'s rows not yet in the aggregates."""
        self.records[key] = record
        with writing(self.out):
            self._append(key, record)

    def _append(self, key: str, record: dict) -> None:
        rows = [r for r in self.by_key[key] if r.path not in self.appended]
        self.appended.update(r.path for r in rows)
        append_synced(self.out / JSONL_NAME, "".join(_jsonl_line(r, record) for r in rows))
        append_synced(self.out / CSV_NAME, csv_text(_csv_row(r, record) for r in rows))

    def rekey(self, task: Task, content_hash: str) -> tuple[Task, Task | None]:
        """``task.path`` held other bytes when graded (``content_hash``): move its row to their key.

        Returns
        -------
        (Task, Task or None)
            The task to record the result under; and, when other paths were
            copies of the bytes first hashed, the task that still grades them.
        """
        new = replace(task, key=result_key(content_hash, self.settings, task.context),
                      content_hash=content_hash, signature=None)
        moved = next(r for r in self.by_key[task.key] if r.path == task.path)
        left = [r for r in self.by_key[task.key] if r is not moved]
        followup = None
        if left:  # the copies keep the old key; the first of them now stands for it
            followup = replace(task, path=left[0].path, signature=left[0].signature)
            for r in left:
                r.task, r.duplicate_of = followup, (None if r is left[0] else left[0].path)
        joined = sorted([*self.by_key.get(new.key, []), moved], key=lambda r: Path(r.path))
        moved.task = new
        group_task = joined[0].task  # copies share the first path's task (sorted by path)
        for r in joined:
            r.task, r.duplicate_of = group_task, (None if r is joined[0] else joined[0].path)
        self.by_key = defaultdict(list)
        for row in self.rows:
            self.by_key[row.task.key].append(row)
        return group_task, followup

    def rebuild(self, done: dict[str, dict]) -> None:
        """Rewrite every aggregate from ledger records (atomically): rows of finished inputs, by path."""
        self.records.update(done)  # with any committed by this run (an interrupt may come mid-commit)
        finished = [(r, self.records[r.task.key]) for r in self.rows if r.task.key in self.records]
        with writing(self.out):
            write_atomic(self.out / JSONL_NAME, "".join(_jsonl_line(r, rec) for r, rec in finished))
            write_atomic(self.out / CSV_NAME, ",".join(CSV_COLUMNS) + "\r\n"
                         + csv_text(_csv_row(r, rec) for r, rec in finished))
            self.appended = {r.path for r, _ in finished}
            self._write_html()

    def finish(self, done: dict[str, dict]) -> dict:
        """Rebuild the aggregates, write ``summary.json`` and the final index page; the summary."""
        self.rebuild(done)
        summary = summarize(self.rows, self.records)
        with writing(self.out):
            write_atomic(self.out / SUMMARY_NAME, dumps(summary, indent=1))
            self._write_html(summary)
        return summary

    def _write_html(self, summary: dict | None = None) -> None:
        self._html_at = time.monotonic()
        summary = summary or summarize(self.rows, self.records)
        finished = [{"file": shown(r.path), "rep_id": r.manifest.rep_id if r.manifest else None,
                     "duplicate_of": shown(r.duplicate_of) if r.duplicate_of else None,
                     "recorded_at": recorded_at(r, self.records[r.task.key]["report"]),
                     "record": self.records[r.task.key]}
                    for r in self.rows if r.task.key in self.records]
        write_atomic(self.out / HTML_NAME, printable(render_index_html(finished, summary, out=self.out)))


def _jsonl_line(row: Row, record: dict) -> str:
    report = dict(record["report"])
    report["file"] = shown(row.path)
    report["batch"] = _batch_fields(row, record)
    return dumps(report) + "\n"


def _batch_fields(row: Row, record: dict) -> dict:
    entry = row.manifest
    return {
        "key": record["key"],
        "content_hash": record["content_hash"],
        "rep_id": entry.rep_id if entry else None,
        "recorded_at": entry.recorded_at.isoformat() if entry and entry.recorded_at else None,
        "duplicate_of": shown(row.duplicate_of) if row.duplicate_of else None,
        "report_json": record["report_json"],
        "report_html": record["report_html"],
        "graded_at": record["graded_at"],
    }


def _csv_row(row: Row, record: dict) -> list:
    report = record["report"]
    batch = _batch_fields(row, record)
    dims = {d["key"]: d["score"] for d in report.get("dimensions", [])}
    error = report.get("error") or {}
    tips = report.get("tips") or []
    context = record.get("context", {})
    values = {
        "file": shown(row.path),
        # "not_graded": the file is no rep's message (a greeting, a live call, no speech; recording_kind)
        "status": ("not_graded" if not_graded_kind(report) else "error") if error else "ok",
        "recording_kind": (report.get("recording") or {}).get("kind"),
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
