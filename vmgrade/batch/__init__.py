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
are final, since the same bytes fail the same way; ``internal_error``,
``worker_crashed`` and ``file_changed`` records are retried by the next runs,
up to ``ledger.MAX_ATTEMPTS`` in all. A file replaced after it was hashed is
recorded under the hash of the bytes the worker graded (``workers.grade_with``).
History recording is idempotent per
(content hash, model, rubric version), so a rerun re-records finished keys,
which closes the gap a crash between ledger and database could leave.

Byte-identical copies under different names (with the same context) share a
key: they are graded once, each path still gets its row (``duplicate_of``
names the first path, in sorted order), and the summary and history count the
recording once. A lock file refuses a second batch writing to the same folder.

Exit status (:func:`run_batch` ``.exit_status``): 0 every file graded, 1 at
least one file (or unreadable folder) has an error record. A batch that
cannot run raises :class:`BatchError` (the CLI's exit status 2), also midway
when the output folder cannot be written (``out_unwritable``).

Modules
-------
:mod:`~vmgrade.batch.inputs`
    discovering the audio files; the manifest (rep, time, call context).
:mod:`~vmgrade.batch.ledger`
    resume keys, ledger records, appends, the output folder's lock.
:mod:`~vmgrade.batch.workers`
    one loaded ``Grader`` per process; the local process pool.
:mod:`~vmgrade.batch.cluster`
    the same work on Ray actors (``--ray``).
:mod:`~vmgrade.batch.summary`
    the summary (``summary.json``) and its text.
:mod:`~vmgrade.batch.run`
    :func:`run_batch`: plans the work and writes every output (the index
    page is drawn by :mod:`vmgrade.render.batch_index`).
"""

from .inputs import AUDIO_EXTENSIONS, BatchError, ManifestRow, discover, read_manifest
from .ledger import Task, result_key, settings_of
from .run import CSV_COLUMNS, BatchOptions, BatchResult, run_batch
from .summary import format_summary, summarize, worker_report
from .workers import default_workers

__all__ = [
    "AUDIO_EXTENSIONS", "BatchError", "BatchOptions", "BatchResult", "CSV_COLUMNS", "ManifestRow", "Task",
    "default_workers", "discover", "format_summary", "read_manifest", "result_key", "run_batch",
    "settings_of", "summarize", "worker_report",
]  # fmt: skip
