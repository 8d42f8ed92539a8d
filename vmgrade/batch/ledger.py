"""The ledger: resume keys and the one-file-per-result record of what is finished.

A result's key (:func:`result_key`) hashes the file's bytes with everything
that changes its grade (:func:`settings_of`) and its manifest context. The
ledger entry ``OUT/results/<key>.json`` is written atomically, so it is either
absent or complete; the aggregates (``results.jsonl``, ``summary.csv``) are
appended with :func:`append_synced` and rebuilt from the ledger on each run
(:mod:`vmgrade.batch`, "Write path and crash safety").
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..content import CONTENT_VERSION
from ..errors import printable
from ..fileio import append_whole
from ..pipeline import Context, GradeOptions
from .inputs import BatchError, ManifestRow

LEDGER_DIR, REPORTS_DIR = "results", "reports"
JSONL_NAME, CSV_NAME, HTML_NAME, SUMMARY_NAME = "results.jsonl", "summary.csv", "index.html", "summary.json"
LOCK_NAME = ".vmgrade-batch.lock"
LEDGER_VERSION = 1
# Failures that may not recur (a bug, a dead worker, a file changing while graded) are graded again
# by the next run, up to MAX_ATTEMPTS runs; every other error record is final: same bytes, same error.
# decode_timeout too: a decode stopped at 20 s on a host busy enough to slow a 1-s decode that far
RETRYABLE_CODES = frozenset({"internal_error", "worker_crashed", "file_changed", "decode_timeout"})
MAX_ATTEMPTS = 3
# A file's identity when it was hashed: inode, size, modification and change times (ns). Not the
# device: one shared file has another st_dev on each node of a Ray cluster.
Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class Task:
    """One unit of work: grade ``path`` (whose bytes hash to ``content_hash``) with ``context``.

    ``signature`` is the file's :func:`signature` from before it was hashed: a worker that finds
    another has the file changed since. ``error`` (code, message) is a failure found while planning
    (not a regular file, unreadable, an unreadable folder): recorded by the driver, never graded.
    """

    key: str
    path: str
    content_hash: str
    context: Context = field(default_factory=Context)
    signature: Signature | None = None
    error: tuple[str, str] | None = None


@dataclass
class Row:
    """One input path's line in the aggregates; byte-identical copies share the first path's task."""

    path: str
    task: Task
    manifest: ManifestRow | None
    duplicate_of: str | None = None
    signature: Signature | None = None  # this path's (copies share the first path's task, not its file)
    folder: bool = False  # a folder that could not be read: its row stands for the files not found


def signature(st: os.stat_result) -> Signature:
    """What changes when a file is written or replaced (:data:`Signature`)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def shown(path: str) -> str:
    """A path as every output shows it: undecodable bytes as ``\\xNN`` (:func:`~vmgrade.errors.printable`).

    One form everywhere (ledger, reports, JSONL, CSV, summary, index page); the
    original name stays in :class:`Task` and :class:`Row` to open the file.
    """
    return printable(path)


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
        **({} if options.bf16_encoder else {"bf16_encoder": False}),
        # openai-whisper's fillers come from the filler probe (vmgrade.asr.speedups.filler_probe), not a
        # prompted decode: its transcripts differ from those of earlier versions
        **({"fillers": "probe"} if options.engine == "openai-whisper" and filler_prompt else {}),
        # call-recording options only when not the defaults, so keys of earlier runs stay as they were
        **({"whole_file": True} if options.whole_file else {}),
        **({"channel": options.channel} if options.channel != "auto" else {}),
        # the content stage reads moves by meaning (vmgrade.content.CONTENT_VERSION): grades made
        # before it are not reused
        "content": CONTENT_VERSION,
        **({"content_engine": options.content_engine} if options.content_engine != "auto" else {}),
        # a device asked for by name (fp16 on a GPU transcribes a little differently); "auto" is not
        # resolved here, so the driver need not import torch: each report's model.precision says
        **({"device": options.device} if options.device != "auto" else {}),
    }


def result_key(content_hash: str, settings: dict, context: Context | None = None) -> str:
    """The resume key (sha256 hex): content hash + grade settings + manifest context."""
    parts = {"content_hash": content_hash, **settings, "context": (context or Context()).to_dict()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def dumps(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose result any UTF-8 writer takes: a lone surrogate in a string becomes ``\\xNN``."""
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(_printable_strings(data), ensure_ascii=False, **kwargs)
    return text


def _printable_strings(data: Any) -> Any:
    if isinstance(data, str):
        return printable(data)
    if isinstance(data, dict):
        return {_printable_strings(k): _printable_strings(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_printable_strings(v) for v in data]
    return data


def append_synced(path: Path, text: str) -> None:
    """Append ``text`` all or nothing (:func:`vmgrade.fileio.append_whole`): a full disk tears no line."""
    append_whole(path, text)


def check_out(out: Path) -> None:
    """Refuse an output folder that holds files but is no batch output (a site, someone's documents).

    A batch writes ``index.html``, ``summary.csv`` … into ``--out``: pointed at a
    folder of other files it would overwrite them. An empty or missing folder is
    fine, and so is an earlier batch's output (its lock file :data:`LOCK_NAME`, or
    its ledger folder beside ``results.jsonl``), which a rerun resumes.

    Raises
    ------
    BatchError
        ``out_not_batch``.
    """
    try:
        if not out.is_dir():
            return  # missing (made later), or a file in the way (out_unwritable when it is made)
        with os.scandir(out) as listing:
            names = {entry.name for entry in listing}
    except OSError:
        return  # cannot be listed: making and locking it says why (out_unwritable)
    if not names or LOCK_NAME in names or (LEDGER_DIR in names and JSONL_NAME in names):
        return
    shown_names = ", ".join(sorted(printable(n) for n in names)[:3]) + (", …" if len(names) > 3 else "")
    raise BatchError(f"{shown(str(out))} holds other files ({shown_names}) and is no vmgrade batch output; "
                     "a batch would overwrite its index.html and summaries: give --out an empty or new "
                     "folder (or an earlier batch's output to resume it)", code="out_not_batch")


def read_ledger(out: Path, key: str) -> dict | None:
    """The finished record for ``key``, or None (absent, unreadable, or retryable)."""
    try:
        record = json.loads((out / LEDGER_DIR / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("ledger_version") != LEDGER_VERSION or record.get("key") != key:
        return None
    return None if record.get("retryable") else record


def previous_attempts(out: Path, key: str) -> int:
    """How many runs already graded ``key`` and got a retryable error (0: none, or not retryable)."""
    try:
        record = json.loads((out / LEDGER_DIR / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    if not isinstance(record, dict) or not record.get("retryable"):
        return 0
    return int(record.get("attempts", 1))


def clean_tmp(out: Path) -> None:
    """Remove temporary files a killed run left (we hold the lock: no writer is active)."""
    for folder in (out, out / LEDGER_DIR, out / REPORTS_DIR):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


@contextmanager
def writing(out: Path) -> Iterator[None]:
    """Turn a failed write in the output folder (read-only, full, gone) into ``out_unwritable``.

    The batch cannot go on, and exit status 1 means "a file failed": the CLI
    gives a :class:`BatchError` exit status 2.
    """
    try:
        yield
    except OSError as exc:
        why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
        where = f" ({shown(os.fsdecode(exc.filename))})" if exc.filename else ""
        raise BatchError(f"cannot write to the output folder {shown(str(out))}: {why}{where}; "
                         "free space or pick another --out, then rerun (what finished is kept)",
                         code="out_unwritable") from exc


def lock_out(out: Path) -> IO | None:
    """Hold the output folder's lock file (None where the platform has no advisory lock).

    Raises
    ------
    BatchError
        ``out_in_use`` when another batch holds it.
    """
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


def unlock_out(handle: IO | None) -> None:
    """Release :func:`lock_out`'s lock."""
    if handle is not None:
        handle.close()  # closing releases the flock
