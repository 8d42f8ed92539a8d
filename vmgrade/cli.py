"""Command line: a thin shell over :func:`vmgrade.grade`.

Exit status: 0 all files graded, 1 some file failed (its record says why),
2 bad usage or an unusable model.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .asr.transcribe import DEVICES
from .asr.weights import DEFAULT_MODEL
from .audio import CHANNEL_CHOICES, DEFAULT_MAX_DURATION_S
from .errors import VmgradeError, terminal_safe

EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2


# Commands that print progress on a terminal (vmgrade.progress).
TALKING_COMMANDS = ("grade", "compare", "batch", "calibrate")
# Threads may exceed the idle cores by this much before the user is warned (a short sample is noisy).
BUSY_CORES_MARGIN = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrade",
        description="Grade recorded sales voicemails offline (Whisper + librosa).",
    )
    parser.add_argument("--version", action="version", version=f"vmgrade {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one or more recordings")
    g.add_argument("files", nargs="+", metavar="FILE",
                   help="audio files (wav, flac, mp3, ogg, m4a, amr, webm…)")
    g.add_argument("--format", choices=("text", "json"), default="text",
                   help="text summary (default) or JSON, one object per line")
    g.add_argument("--html", metavar="FILE|DIR", default=None,
                   help="also write a self-contained HTML report: to FILE for one recording; "
                        "for several (or when DIR exists or ends in /) one DIR/NAME.html each")
    _add_grading_args(g)
    rec = g.add_argument_group("history store (opt-in; see docs/history.md)")
    rec.add_argument("--record", action="store_true",
                     help="also record each graded file in the history store")
    rec.add_argument("--db", metavar="URL", default=None,
                     help="history database URL (implies --record; default $VMGRADE_DB_URL or "
                          "SQLite in the data dir)")
    rec.add_argument("--rep", metavar="ID", default=None,
                     help="rep id to record the files under (implies --record)")

    cmp = sub.add_parser("compare", help="compare recordings of one rep: before/after, or a trend over 3+")
    cmp.add_argument("files", nargs="+", metavar="FILE",
                     help="BEFORE AFTER [MORE...]: audio files, or report JSON saved by "
                          "`vmgrade grade --format json` (not re-graded)")
    cmp.add_argument("--format", choices=("text", "json"), default="text",
                     help="text (default) or the comparison as one JSON object")
    cmp.add_argument("--html", metavar="FILE", default=None,
                     help="also write a self-contained HTML comparison page to FILE")
    cmp.add_argument("--label", action="append", default=None, metavar="LABEL", dest="labels",
                     help="name for each recording, in order (repeat; default: file names)")
    cmp.add_argument("--by-time", action="store_true",
                     help="order by recording time (recorded_at in the report JSON, else the audio file's "
                          "modification time) instead of as given")
    _add_grading_args(cmp)

    m = sub.add_parser("models", help="list the Whisper models available offline")
    m.add_argument("--info", action="store_true",
                   help="also what this machine offers the recognisers: CPU, instruction sets (AVX-512 "
                        "VNNI/BF16, AMX), torch's kernels, oneDNN, ctranslate2, numpy's BLAS")

    h = sub.add_parser("history", help="a rep's graded recordings and trend, or every rep's averages")
    h.add_argument("--rep", metavar="ID", default=None, help="the rep to show (default: list every rep)")
    h.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default $VMGRADE_DB_URL, else SQLite in $VMGRADE_DATA_DIR)")
    h.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON")

    c = sub.add_parser("calibrate", help="fit the rubric's dimension weights to a trainer's scores")
    c.add_argument("ratings", metavar="RATINGS.csv",
                   help="CSV with columns file, score (0-100) and optional caller_name, company, "
                        "callback_number, prospect_name, prospect_company")
    c.add_argument("--out", metavar="FILE", default=None,
                   help="calibrated rubric to write (default rubric.calibrated.toml beside the CSV)")
    c.add_argument("--rubric", metavar="BASE", default=None,
                   help="rubric to start from (default: the packaged one)")
    c.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"Whisper model name or .pt path (default {DEFAULT_MODEL})")
    c.add_argument("--min-weight", type=float, default=0.0, metavar="W",
                   help="lowest weight any dimension may get, in points of 100 (default 0)")
    c.add_argument("--ridge", type=float, default=None, metavar="R",
                   help="pull toward the base weights (default: none with at least 9 rated files, "
                        "1 with fewer)")

    s = sub.add_parser("serve",
                       help="run the web app (needs the web extra: pip install \".[web]\" in the repository)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument("--data-dir", metavar="DIR", default=None,
                   help="uploads, reports and the SQLite database (default $VMGRADE_DATA_DIR, "
                        "else ~/.local/share/vmgrade)")
    s.add_argument("--db", "--db-url", dest="db_url", metavar="URL", default=None,
                   help="SQLAlchemy URL of the history database (default $VMGRADE_DB_URL, "
                        "else sqlite in the data dir)")
    _add_model_args(s, threads_help="CPU threads per grading process (default: the idle cores / --workers)")
    s.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="refuse uploads larger than this (default 20)")
    s.add_argument("--https-only", action="store_true",
                   help="mark the session cookie Secure (set when served behind HTTPS)")
    s.add_argument("--forwarded-allow-ips", metavar="IPS", default=None,
                   help="comma-separated addresses of reverse proxies whose X-Forwarded-For and "
                        "X-Forwarded-Proto to trust, or '*' (default: none, not even 127.0.0.1)")
    s.add_argument("--max-queued-per-user", type=int, default=10, metavar="N",
                   help="most recordings one user may have waiting to be graded (default 10)")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="grading workers in this node, each in a child process holding a model (~1 GB each; "
                        "default: one per idle core, as many as the free memory holds; "
                        "0: a web node only, graded by `vmgrade worker` processes)")
    _add_team_db_args(s)
    s.add_argument("--secret-key-file", metavar="FILE", default=None,
                   help="file holding the session secret every node shares (default $VMGRADE_SECRET_KEY, "
                        "else $VMGRADE_SECRET_KEY_FILE; required on a shared database)")

    w = sub.add_parser("worker", help="grade the web app's queued uploads (any number, on any machine)",
                       description="Claim uploads queued by `vmgrade serve` nodes from the shared database "
                                   "and grade them, each in a child process, until stopped (SIGTERM or "
                                   "Ctrl-C: jobs under way go back to the queue). docs/deploy.md.")
    w.add_argument("--db", "--db-url", dest="db_url", metavar="URL", default=None,
                   help="the database the web nodes use (default $VMGRADE_DB_URL)")
    w.add_argument("--data-dir", metavar="DIR", default=None,
                   help="temporary copies (and the files, with --storage local); default as for "
                        "`vmgrade serve`")
    w.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="jobs graded at once, each in a child process holding a model (~1 GB each; "
                        "default: one per idle core, as many as the free memory holds)")
    _add_team_db_args(w)
    _add_model_args(w, threads_help="CPU threads per grading process (default: idle cores / --concurrency)")

    u = sub.add_parser("users", help="manage web app accounts")
    usub = u.add_subparsers(dest="users_command", required=True)
    ua = usub.add_parser("add", help="create a rep or trainer account")
    ua.add_argument("--username", required=True)
    ua.add_argument("--role", choices=("rep", "trainer"), required=True)
    ua.add_argument("--team", required=True, help="team name (created if new)")
    ua.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input (else prompt)")
    ul = usub.add_parser("list", help="list accounts")
    ud = usub.add_parser("disable", help="disable an account and end its sessions")
    ue = usub.add_parser("enable", help="enable a disabled account")
    up = usub.add_parser("set-password", help="change a password and end the account's sessions")
    for p in (ud, ue, up):
        p.add_argument("--username", required=True)
    up.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input (else prompt)")
    for p in (ua, ul, ud, ue, up):
        p.add_argument("--data-dir", metavar="DIR", default=None, help="as for `vmgrade serve`")
        p.add_argument("--db", "--db-url", dest="db_url", metavar="URL", default=None,
                       help="as for `vmgrade serve`")

    b = sub.add_parser("batch", help="grade a folder of recordings: resumable, parallel, with summaries",
                       description="Grade every recording under the given files, folders and globs. "
                                   "Outputs in --out: results.jsonl, summary.csv, index.html, summary.json, "
                                   "reports/. A rerun skips files already graded (README: 'Batch grading').")
    b.add_argument("inputs", nargs="+", metavar="PATH_OR_GLOB",
                   help="audio files, folders (searched recursively) or globs ('calls/**/*.m4a')")
    b.add_argument("--out", metavar="DIR", default="vmgrade-batch",
                   help="output folder (default vmgrade-batch)")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes, each loading the model once (default: one per CPU core, as "
                        "many as free memory holds at ~1.3 GB each; with --ray: one actor per cluster CPU)")
    b.add_argument("--files-at-once", type=int, default=None, metavar="N",
                   help="files each worker grades at the same time, sharing batched decoder passes "
                        "(default: 3 with --engine ctranslate2 on a CPU without AMX, else 1)")
    b.add_argument("--manifest", metavar="CONTEXT.csv", default=None,
                   help="per-file context: file, rep_id, caller_name, company, callback_number, "
                        "prospect_name, prospect_company, recorded_at")
    b.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="grade on Ray actors: no value starts or joins Ray on this machine; else a cluster "
                        "address ('auto', 'HOST:6379', 'ray://HOST:10001'); needs vmgrade[ray]")
    _add_model_args(b, threads_help="CPU threads per worker (default: the idle cores / workers; 1 per "
                                    "actor with --ray)")
    b.add_argument("--db", metavar="URL", default=None,
                   help="history database URL (default $VMGRADE_DB_URL, else SQLite in the data dir)")
    b.add_argument("--no-history", action="store_true", help="do not record results in the history store")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--follow-links", action="store_true",
                   help="follow symbolic links in the input folders even where they lead out of them "
                        "(default: such a link gets an outside_folder record and is not read)")
    bt = b.add_argument_group("into the web app (docs/batch.md, 'Into the web app: --team')")
    bt.add_argument("--team", metavar="NAME", default=None,
                    help="also add each graded file to this team of the web app (created if new), as an "
                         "upload of its rep, for the team's trainer; needs --rep or a manifest rep_id, and "
                         "the history database (--db: the web app's)")
    bt.add_argument("--rep", metavar="NAME", default=None,
                    help="rep of every file whose manifest row names none (history and --team); with --team "
                         "a new rep gets a web account without a password (vmgrade users set-password)")
    bt.add_argument("--storage", choices=("local", "database"), default=None,
                    help="with --team: where audio and reports go, as for `vmgrade serve` (default: database "
                         "on PostgreSQL, local on SQLite)")
    bt.add_argument("--data-dir", metavar="DIR", default=None,
                    help="with --team and local storage: the web app's data dir (default $VMGRADE_DATA_DIR, "
                         "else ~/.local/share/vmgrade)")
    return parser


def _add_team_db_args(p: argparse.ArgumentParser) -> None:
    """Where the web app's files live (serve, worker)."""
    p.add_argument("--storage", choices=("local", "database"), default=None,
                   help="where uploads and reports live: local (the data dir) or database (every node reads "
                        "them); default database on PostgreSQL, local on SQLite")


def _add_grading_args(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that grade audio given on the command line (grade, compare)."""
    _add_model_args(p)
    ctx = p.add_argument_group("call context (all optional)")
    ctx.add_argument("--caller-name", help="the rep's name as it should be said")
    ctx.add_argument("--company", help="the rep's company")
    ctx.add_argument("--callback-number", help="the number the rep should leave, e.g. 415-555-0198")
    ctx.add_argument("--prospect-name", help="who the voicemail is for")
    ctx.add_argument("--prospect-company", help="the prospect's company")


def _add_model_args(p: argparse.ArgumentParser,
                    threads_help: str = "CPU threads for the model (default: the cores left idle)") -> None:
    """How to grade: model, engine, rubric, limits (grade, compare, batch)."""
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"Whisper model name or .pt path (default {DEFAULT_MODEL}; see `vmgrade models`)")
    p.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION_S, metavar="SECONDS",
                   help=f"refuse recordings longer than this (default {DEFAULT_MAX_DURATION_S:.0f})")
    p.add_argument("--rubric", metavar="FILE", default=None,
                   help="rubric TOML overriding the packaged one (format: docs/rubric.md)")
    p.add_argument("--language", default="en", help="spoken language code (default en)")
    fillers = p.add_mutually_exclusive_group()
    fillers.add_argument("--filler-prompt", action="store_const", const=True, dest="filler_prompt",
                         help="use the filler prompt so transcripts keep um/uh (the default for "
                              "openai-whisper, which only places fillers with it; ctranslate2 decodes "
                              "every word with it: slower, less accurate)")
    fillers.add_argument("--no-filler-prompt", action="store_const", const=False, dest="filler_prompt",
                         help="no filler prompt: fillers come from the audio only (the default for "
                              "ctranslate2)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help=threads_help)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress or notices on stderr (they are shown only on a terminal anyway); "
                        "errors are still printed")
    p.add_argument("--engine", choices=("openai-whisper", "ctranslate2"), default="openai-whisper",
                   help="speech recogniser: openai-whisper (default) or ctranslate2 (faster-whisper, int8; "
                        'needs pip install ".[fast]" in the repository)')
    p.add_argument("--content-engine", choices=("auto", "embedding", "phrases"), default="auto",
                   help="what reads each sentence's moves: auto (sentence embeddings when the model "
                        "package is installed, else the phrase lists; the report says which), embedding, "
                        "or phrases")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the recogniser runs: auto (default: a CUDA GPU when the engine's library "
                        "sees one, fp16; else the CPU), cpu, or cuda (an error without a GPU)")
    p.add_argument("--beam-size", type=int, default=None, metavar="N",
                   help="beam search width (default 1, greedy, on both engines; openai-whisper's "
                        "wider beams skip its speed-ups)")
    p.add_argument("--fp32-logits", action="store_true",
                   help="openai-whisper: compute the vocabulary projection in fp32 instead of int8 with "
                        "exact rescoring (slower; the same transcripts on the benchmark corpus)")
    p.add_argument("--fp32-encoder", action="store_true",
                   help="openai-whisper: keep the encoder in fp32 on CPUs with bf16 matrix units (AMX), "
                        "where it otherwise runs in bf16 (faster; the same transcripts on the benchmark "
                        "corpus)")
    call = p.add_argument_group("call recordings (docs/calls.md)")
    call.add_argument("--channel", choices=CHANNEL_CHOICES, default="auto",
                      help="the rep's side of a two-channel recording: auto (default: the side that speaks "
                           "after the beep), left, right or mix")
    call.add_argument("--whole-file", action="store_true",
                      help="grade the whole file: no ringback/greeting/beep segmentation, no live-call check "
                           "(the behaviour before call recordings were recognised)")


def run() -> None:
    """The ``vmgrade`` command (and ``python -m vmgrade``): :func:`main`, and exit with its status.

    Before the exit, every object is frozen out of the cyclic collector (:func:`gc.freeze`):
    the interpreter's last sweep over torch's objects took 0.2-0.35 s of every CLI run
    (docs/performance.md). Only cycles are skipped; the rest is freed as before, and the
    exit handlers run (the decoding child is reaped, files are flushed).
    """
    status = main()
    gc.freeze()
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import progress

    # a one-line notice and a bar while a model converts or loads, per-file progress: on a terminal only
    progress.enable(args.command in TALKING_COMMANDS and not getattr(args, "quiet", False)
                    and _stderr_is_terminal())
    try:
        if args.command == "grade":
            return _grade(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "models":
            return _models(args.info)
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "history":
            return _history(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "users":
            return _users(args)
    except VmgradeError as exc:
        print(f"vmgrade: error [{exc.code}]: {terminal_safe(exc.message)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vmgrade: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _warn_if_cores_are_busy(args: argparse.Namespace, processes: int = 1, idle: float | None = None) -> None:
    """Warn when the threads asked for (``--threads`` x ``--workers``) exceed the cores left idle.

    The defaults take the idle cores themselves (:func:`vmgrade.asr.threads.default_threads`);
    threads that find their cores busy wait on each other: on a loaded machine two files took
    40-95 s with two threads each, against 6.7 s with ``--threads 1``.
    """
    if getattr(args, "quiet", False) or not (args.threads or processes > 1):
        return  # the defaults fit themselves to the idle cores
    from .asr.threads import cpu_cores, default_threads, idle_cores

    idle = idle_cores() if idle is None else idle
    threads = (args.threads or default_threads(idle, processes)) * processes
    if threads > idle + BUSY_CORES_MARGIN:
        print(f"vmgrade: warning: grading with {threads} thread(s), but other work leaves only {idle:.1f} of "
              f"{cpu_cores()} cores idle: every file will be slower; "
              f"{_fitting_flags(idle, processes)} may be faster", file=sys.stderr)


def _fitting_flags(idle: float, processes: int) -> str:
    """The ``--threads`` (and ``--workers``) that fit ``idle`` cores."""
    if processes > 1:
        return f"--workers {max(1, int(idle))} --threads 1"
    return f"--threads {max(1, int(idle))}"


def _grade_options(args: argparse.Namespace):
    from .pipeline import GradeOptions

    return GradeOptions(
        model=args.model,
        language=args.language,
        max_duration_s=args.max_duration,
        rubric=args.rubric,
        filler_prompt=args.filler_prompt,
        threads=args.threads,
        engine=args.engine,
        beam_size=args.beam_size,
        int8_logits=not args.fp32_logits,
        bf16_encoder=not getattr(args, "fp32_encoder", False),
        whole_file=getattr(args, "whole_file", False),
        channel=getattr(args, "channel", "auto"),
        content_engine=getattr(args, "content_engine", "auto"),
        device=getattr(args, "device", "auto"),
    )


def _grader(args: argparse.Namespace):
    from .pipeline import Grader

    return Grader(_grade_options(args), load_ahead=True)  # a cold process: load while the file is read


def _context(args: argparse.Namespace):
    from .pipeline import Context

    return Context(
        caller_name=args.caller_name,
        company=args.company,
        callback_number=args.callback_number,
        prospect_name=args.prospect_name,
        prospect_company=args.prospect_company,
    )


def _grade(args: argparse.Namespace) -> int:
    from . import progress
    from .render.terminal import print_report

    _warn_if_cores_are_busy(args)
    grader, context = _grader(args), _context(args)
    store = None
    if args.record or args.db or args.rep:
        from .fileio import content_hash
        from .store.history import open_store, rubric_version

        store, version = open_store(args.db), rubric_version(grader.rubric)
    status = EXIT_OK
    html_paths = _html_paths(args.html, args.files) if args.html else {}
    files = progress.bar(args.files, desc="grading", unit="file") if len(args.files) > 1 else args.files
    for path in files:
        if files is not args.files:
            files.set_postfix_str(terminal_safe(os.path.basename(path)))
        report = grader.grade(path, context)
        if files is not args.files:
            files.clear()  # the bar goes above the report, not through it
        if path in html_paths and not _write_html(report, html_paths[path]):
            status = EXIT_FILE_FAILED
        if report.not_graded:  # a greeting, a live call, no speech: said, not a failure of the run
            print(f"vmgrade: not graded: {terminal_safe(report.error.message)}", file=sys.stderr)
        elif not report.ok:
            status = EXIT_FILE_FAILED
            print(f"vmgrade: {terminal_safe(report.error.message)}", file=sys.stderr)
        if args.format == "json":
            print(_json_line(report.to_json()), flush=True)
        elif report.not_graded:
            print_report(_for_terminal(report))
        elif report.ok:
            print_report(_for_terminal(report))
            if len(args.files) > 1:
                print(flush=True)  # a blank line between reports
        if store is not None and report.ok:
            try:
                store.record(report.to_dict(), content_hash=content_hash(path), rep_id=args.rep,
                             rubric_version=version)
            except VmgradeError as exc:
                status = EXIT_FILE_FAILED
                print(f"vmgrade: {terminal_safe(path)}: not recorded: {terminal_safe(exc.message)}",
                      file=sys.stderr)
    return status


def _json_line(text: str) -> str:
    """JSON text any UTF-8 stream takes: a lone surrogate (an undecodable byte of a file name or
    argument, kept by ``json.dumps``) becomes its ``\\udcXX`` escape, still valid JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _for_terminal(report) -> dict:
    """The report dict with control characters in the file name escaped: a name cannot fake a line."""

    out = report.to_dict()
    out["file"] = terminal_safe(out["file"])
    return out


def _compare(args: argparse.Namespace) -> int:
    from .compare import is_report_json

    json_files = [p for p in args.files if is_report_json(p)]
    try:
        return _compare_files(args)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        if not json_files:
            raise  # from our own reports: a bug, with its traceback
        # Report JSON passed its checks (vmgrade.compare.validate) but holds a value the comparison
        # cannot use: still the user's file at fault, said as such, never a traceback.
        names = ", ".join(terminal_safe(str(p)) for p in json_files)
        raise VmgradeError(f"{names}: a report holds a value compare cannot use ({type(exc).__name__}: "
                           f"{terminal_safe(str(exc))[:120]})", code="report_invalid") from exc


def _compare_files(args: argparse.Namespace) -> int:
    import json

    from .compare import compare_reports, is_report_json, load_reports

    reports: list[dict] = []
    grader = None
    for path in args.files:
        if is_report_json(path):
            reports.extend(load_reports(path))
            continue
        if grader is None:
            _warn_if_cores_are_busy(args)
        grader = grader or _grader(args)  # the model loads only when some input is audio
        reports.append(grader.grade(path, _context(args)).to_dict())
    if len(reports) < 2:
        print("vmgrade: compare needs at least two recordings (BEFORE AFTER)", file=sys.stderr)
        return EXIT_USAGE
    if args.labels is not None and len(args.labels) != len(reports):
        print(f"vmgrade: {len(args.labels)} --label for {len(reports)} recordings", file=sys.stderr)
        return EXIT_USAGE
    comparison = compare_reports(reports, args.labels, args.rubric,
                                 order="recorded_at" if args.by_time else "given")
    for message in comparison.errors:
        print(f"vmgrade: {terminal_safe(message)}", file=sys.stderr)
    status = EXIT_OK if comparison.ok and all(r.ok for r in comparison.recordings) else EXIT_FILE_FAILED
    if args.html:
        from .render.html import write_comparison_html

        try:
            print(f"vmgrade: wrote {terminal_safe(str(write_comparison_html(comparison, args.html)))}",
                  file=sys.stderr)
        except OSError as exc:
            print(f"vmgrade: {terminal_safe(args.html)}: cannot write the HTML comparison "
                  f"({exc.strerror or exc})", file=sys.stderr)
            status = EXIT_FILE_FAILED
    if args.format == "json":
        print(_json_line(json.dumps(comparison.to_dict(), ensure_ascii=False)), flush=True)
    else:
        from .render.terminal import print_comparison

        print_comparison(comparison)
    return status


def _html_paths(target: str, files: Sequence[str]) -> dict[str, Path]:
    """Where each recording's HTML report goes (see ``--html``)."""
    out = Path(target)
    if len(files) == 1 and not (out.is_dir() or target.endswith(("/", os.sep))):
        return {files[0]: out}
    stems = [Path(f).stem for f in files]
    # a.wav and a.flac would both be a.html: keep the extension in the name then
    return {f: out / (f"{stem}.html" if stems.count(stem) == 1 else f"{Path(f).name}.html")
            for f, stem in zip(files, stems)}


def _write_html(report, path: Path) -> bool:
    from .render.html import write_report_html

    try:
        write_report_html(report.to_dict(), path)
    except OSError as exc:
        print(f"vmgrade: {terminal_safe(str(path))}: cannot write the HTML report ({exc.strerror or exc})",
              file=sys.stderr)
        return False
    print(f"vmgrade: wrote {terminal_safe(str(path))}", file=sys.stderr)
    return True


def _calibrate(args: argparse.Namespace) -> int:
    from .calibrate import format_report, run
    from .pipeline import GradeOptions

    result = run(args.ratings, out=args.out, options=GradeOptions(model=args.model, rubric=args.rubric),
                 ridge=args.ridge, min_weight=args.min_weight,
                 progress=lambda line: print(terminal_safe(line), file=sys.stderr, flush=True))
    for message in result.skipped:
        print(f"vmgrade: {terminal_safe(message)}", file=sys.stderr)
    print("\n".join(terminal_safe(line) for line in format_report(result.calibration, result.scores.files)
                    .split("\n")))
    print(f"\nWrote {terminal_safe(str(result.out_path))} (rubric {result.rubric.version}); use it with "
          f"`vmgrade grade --rubric {result.out_path}`.")
    return EXIT_FILE_FAILED if result.skipped else EXIT_OK


def _models(info: bool = False) -> int:
    from .asr.weights import cache_dir, list_models

    rows = list_models()
    print(f"{'NAME':<12} {'SOURCE':<14} {'SIZE':>9}  STATUS / PATH")
    for row in rows:
        size = f"{row.size_bytes / 1e6:.0f} MB" if row.size_bytes else "-"
        print(f"{row.name:<12} {row.source:<14} {size:>9}  {row.status}\n{'':<38}{row.path}")
    print(f"\nConverted checkpoints are cached in {cache_dir()} (set VMGRADE_MODEL_DIR to move it).")
    if info:
        from .asr.host import host_info

        print("\nThis machine:\n" + "\n".join(f"  {line}" for line in host_info().lines()))
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from .batch import BatchOptions, format_summary, run_batch

    # `--ray` takes an optional value, so `--ray calls/` would read the folder as an address:
    # a value that is no Ray address is an input.
    if args.ray not in (None, "local") and not re.fullmatch(r"auto|local|ray://\S+|[\w.-]+:\d+", args.ray):
        args.inputs.append(args.ray)
        args.ray = "local"
    for flag, value in (("--workers", args.workers), ("--files-at-once", args.files_at_once)):
        if value is not None and value < 1:
            print(f"vmgrade: error: {flag} must be at least 1", file=sys.stderr)
            return EXIT_USAGE
    workers, grade_options = args.workers, _grade_options(args)
    if not args.ray:
        from .asr.threads import idle_cores

        idle = idle_cores()  # measured once: the workers, their threads and the warning
        workers, grade_options = _sized_to_machine(args, args.workers, idle)
        if args.workers or args.threads:
            _warn_if_cores_are_busy(args, workers, idle)
    result = run_batch(args.inputs, BatchOptions(
        out=Path(args.out),
        workers=workers,
        manifest=Path(args.manifest) if args.manifest else None,
        grade=grade_options,
        ray=args.ray,
        db_url=args.db,
        history=not args.no_history,
        progress=not (args.no_progress or args.quiet),
        follow_links=args.follow_links,
        team=args.team,
        rep=args.rep,
        storage=args.storage,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else None,
        files_at_once=args.files_at_once,
    ))
    print(format_summary(result.summary))
    print(f"\nWrote {result.out}/index.html, results.jsonl, summary.csv, summary.json and reports/.")
    return result.exit_status


def _history(args: argparse.Namespace) -> int:
    from .store import history

    store = history.open_store(args.db)  # a damaged or foreign database: history_error, exit 2
    try:
        return _history_tables(args, store)
    finally:
        store.close()


def _history_tables(args: argparse.Namespace, store) -> int:
    import json

    from .render.history_table import print_tables, recordings_table, reps_table, trend_table
    from .scoring import load_rubric

    if args.rep is None:
        reps = store.reps()
        if args.format == "json":
            print(json.dumps({"db": store.url, "reps": [r.to_dict() for r in reps]}, indent=2))
        elif not reps:
            print(f"No recordings in {store.url}.")
        else:
            print_tables(f"{_count(len(reps), 'rep')} in {store.url}", [reps_table(reps)])
        return EXIT_OK
    rows = store.recordings(args.rep)
    trend = store.trend(args.rep)
    if args.format == "json":
        print(json.dumps({"db": store.url, "rep_id": args.rep, "recordings": [r.to_dict() for r in rows],
                          "trend": trend.to_dict()}, indent=2, ensure_ascii=False))
    if not rows:
        print(f"vmgrade: no recordings for rep {args.rep!r} in {store.url}", file=sys.stderr)
        return EXIT_FILE_FAILED
    if args.format == "text":
        print_tables(f"Rep {args.rep}: {_count(len(rows), 'recording')} in {store.url}", [
            recordings_table(rows),
            trend_table(trend, load_rubric().labels),
        ])
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _web_db(args: argparse.Namespace):
    """(data dir, DB URL) for `serve` and `users`: --db-url, $VMGRADE_DB_URL, else SQLite in the data dir."""
    from .store.history import data_dir

    directory = Path(args.data_dir).expanduser() if args.data_dir else data_dir()
    url = args.db_url or os.environ.get("VMGRADE_DB_URL") or f"sqlite:///{directory / 'history.sqlite3'}"
    return directory, url


def _sized_to_machine(args: argparse.Namespace, processes: int | None, idle: float | None = None):
    """The grading processes of a batch, web node or worker (default: one per idle core, within
    memory) and their GradeOptions, with the threads each gets (default: its share of the idle cores)."""
    from dataclasses import replace

    from .asr.threads import default_threads, default_workers, idle_cores

    idle = idle_cores() if idle is None else idle
    processes = default_workers(idle) if processes is None else processes
    options = _grade_options(args)
    if options.threads is None and processes:
        options = replace(options, threads=default_threads(idle, processes))
    return processes, options


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .web.app import create_app
    except ImportError as exc:
        print(f'vmgrade: the web app needs its extra: pip install ".[web]" in the vmgrade repository ({exc})',
              file=sys.stderr)
        return EXIT_USAGE
    from .web.accounts import count_users
    from .web.storage import PRIVATE_DIR_MODE, lock_data_dir, unlock_data_dir

    directory, url = _web_db(args)
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # One server per data dir (DataDirInUse: exit 2), before this one requeues anything.
    lock = lock_data_dir(directory)
    try:
        workers, grade_options = _sized_to_machine(args, args.workers)
        app = create_app(directory, url, grade_options=grade_options, workers=workers,
                         storage=args.storage, secret_key_file=args.secret_key_file,
                         max_upload_bytes=int(args.max_upload_mb * 2**20), max_duration_s=args.max_duration,
                         https_only=args.https_only, max_queued_per_user=args.max_queued_per_user)
    except BaseException:
        unlock_data_dir(lock)
        raise
    app.state.data_dir_lock = lock
    with app.state.sessions() as session:
        if count_users(session) == 0:
            where = f" --data-dir {directory}" if args.data_dir else ""
            print("vmgrade: no accounts yet. Create the first trainer (then reps) with:\n"
                  f"  vmgrade users add --username NAME --role trainer --team TEAM{where}\n"
                  "and log in at the address below.", file=sys.stderr)
    print(f"vmgrade: serving on http://{args.host}:{args.port}/ (data in {directory})", file=sys.stderr)
    # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default: every login guess could
    # claim a new address. Proxies are trusted only when named.
    from .web.server import server_config

    try:
        # connection limits a slow client cannot exhaust (vmgrade.web.server, docs/web.md "Limits")
        uvicorn.Server(server_config(app, args.host, args.port, trusted=args.forwarded_allow_ips or "")).run()
    finally:
        unlock_data_dir(lock)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    import logging

    from .web.worker import run_worker

    directory, url = _web_db(args)
    if args.concurrency is not None and args.concurrency < 1:
        print("vmgrade: error: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not its plugin set-up at every start
    concurrency, options = _sized_to_machine(args, args.concurrency)
    return run_worker(url, data_dir=directory, options=options, concurrency=concurrency,
                      storage=args.storage)


def _users(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .store.history import DB_FILENAME, open_store
    from .store.team import User
    from .web.accounts import add_user, set_active, set_password
    from .web.storage import ensure_layout

    directory, url = _web_db(args)
    if url.startswith("sqlite:///"):
        # the database holds password hashes: 0600 in a 0700 folder, as `vmgrade serve` makes it
        own_db = url == f"sqlite:///{directory / DB_FILENAME}"
        ensure_layout(directory, private_files=(DB_FILENAME,) if own_db else ())
    store = open_store(url)
    with Session(store.engine, expire_on_commit=False) as session:
        if args.users_command == "list":
            print(f"{'USERNAME':<24} {'ROLE':<8} TEAM")
            for user in session.scalars(select(User).order_by(User.username)):
                print(f"{user.username:<24} {user.role:<8} {user.team.name}"
                      + ("" if user.active else "  (disabled)"))
            return EXIT_OK
        if args.users_command in ("disable", "enable"):
            user = set_active(session, args.username, args.users_command == "enable")
            print(f"{user.username} is {'enabled' if user.active else 'disabled; their sessions ended'}.")
            return EXIT_OK
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            import getpass

            password = getpass.getpass(f"Password for {args.username}: ")
            if password != getpass.getpass("Repeat it: "):
                print("vmgrade: the passwords differ", file=sys.stderr)
                return EXIT_USAGE
        if args.users_command == "set-password":
            user = set_password(session, args.username, password)
            print(f"Changed the password of {user.username}; their sessions ended.")
            return EXIT_OK
        user = add_user(session, args.username, password, args.role, args.team)
        print(f"Created {user.role} {user.username} in team {user.team.name} ({store.url}).")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
