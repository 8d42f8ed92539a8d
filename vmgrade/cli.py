"""Command line: a thin shell over :func:`vmgrade.grade`.

Exit status: 0 all files graded, 1 some file failed (its record says why),
2 bad usage or an unusable model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .audio import DEFAULT_MAX_DURATION_S
from .errors import VmgradeError
from .models import DEFAULT_MODEL

EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2


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
    g.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"Whisper model name or .pt path (default {DEFAULT_MODEL}; see `vmgrade models`)")
    g.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION_S, metavar="SECONDS",
                   help=f"refuse recordings longer than this (default {DEFAULT_MAX_DURATION_S:.0f})")
    g.add_argument("--rubric", metavar="FILE", default=None,
                   help="rubric TOML overriding the packaged one (format: README, 'Rubric file')")
    g.add_argument("--language", default="en", help="spoken language code (default en)")
    g.add_argument("--no-filler-prompt", action="store_true",
                   help="do not prompt Whisper to keep filler words (um, uh)")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    g.add_argument("--engine", choices=("openai-whisper", "ctranslate2"), default="openai-whisper",
                   help="speech recogniser: openai-whisper (default) or ctranslate2 (faster-whisper, int8; "
                        'needs pip install "vmgrade[fast]")')
    ctx = g.add_argument_group("call context (all optional)")
    ctx.add_argument("--caller-name", help="the rep's name as it should be said")
    ctx.add_argument("--company", help="the rep's company")
    ctx.add_argument("--callback-number", help="the number the rep should leave, e.g. 415-555-0198")
    ctx.add_argument("--prospect-name", help="who the voicemail is for")
    ctx.add_argument("--prospect-company", help="the prospect's company")

    sub.add_parser("models", help="list the Whisper models available offline")

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

    s = sub.add_parser("serve", help="run the web app (pip install \"vmgrade[web]\")")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument("--data-dir", metavar="DIR", default=None,
                   help="uploads, reports and the SQLite database (default $VMGRADE_DATA_DIR, "
                        "else ~/.local/share/vmgrade)")
    s.add_argument("--db-url", metavar="URL", default=None,
                   help="SQLAlchemy URL of the history database (default $VMGRADE_DB_URL, "
                        "else sqlite in the data dir)")
    s.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"Whisper model for grading (default {DEFAULT_MODEL})")
    s.add_argument("--engine", choices=("openai-whisper", "ctranslate2"), default="openai-whisper",
                   help="speech recogniser (default openai-whisper)")
    s.add_argument("--rubric", metavar="FILE", default=None, help="rubric TOML (default: the packaged one)")
    s.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION_S, metavar="SECONDS",
                   help=f"refuse recordings longer than this (default {DEFAULT_MAX_DURATION_S:.0f})")
    s.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="refuse uploads larger than this (default 20)")
    s.add_argument("--https-only", action="store_true",
                   help="mark the session cookie Secure (set when served behind HTTPS)")

    u = sub.add_parser("users", help="manage web app accounts")
    usub = u.add_subparsers(dest="users_command", required=True)
    ua = usub.add_parser("add", help="create a rep or trainer account")
    ua.add_argument("--username", required=True)
    ua.add_argument("--role", choices=("rep", "trainer"), required=True)
    ua.add_argument("--team", required=True, help="team name (created if new)")
    ua.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input (else prompt)")
    ul = usub.add_parser("list", help="list accounts")
    for p in (ua, ul):
        p.add_argument("--data-dir", metavar="DIR", default=None, help="as for `vmgrade serve`")
        p.add_argument("--db-url", metavar="URL", default=None, help="as for `vmgrade serve`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "grade":
            return _grade(args)
        if args.command == "models":
            return _models()
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "users":
            return _users(args)
    except VmgradeError as exc:
        print(f"vmgrade: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vmgrade: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


def _grade(args: argparse.Namespace) -> int:
    from .pipeline import Context, GradeOptions, Grader
    from .report import to_text

    grader = Grader(
        GradeOptions(
            model=args.model,
            language=args.language,
            max_duration_s=args.max_duration,
            rubric=args.rubric,
            filler_prompt=not args.no_filler_prompt,
            threads=args.threads,
            engine=args.engine,
        )
    )
    context = Context(
        caller_name=args.caller_name,
        company=args.company,
        callback_number=args.callback_number,
        prospect_name=args.prospect_name,
        prospect_company=args.prospect_company,
    )
    status = EXIT_OK
    for path in args.files:
        report = grader.grade(path, context)
        if not report.ok:
            status = EXIT_FILE_FAILED
            print(f"vmgrade: {report.error.message}", file=sys.stderr)
        if args.format == "json":
            print(report.to_json(), flush=True)
        elif report.ok:
            print(to_text(report), flush=True)
    return status


def _calibrate(args: argparse.Namespace) -> int:
    from .calibrate import format_report, run
    from .pipeline import GradeOptions

    result = run(args.ratings, out=args.out, options=GradeOptions(model=args.model, rubric=args.rubric),
                 ridge=args.ridge, min_weight=args.min_weight,
                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    for message in result.skipped:
        print(f"vmgrade: {message}", file=sys.stderr)
    print(format_report(result.calibration, result.scores.files))
    print(f"\nWrote {result.out_path} (rubric {result.rubric.version}); use it with "
          f"`vmgrade grade --rubric {result.out_path}`.")
    return EXIT_FILE_FAILED if result.skipped else EXIT_OK


def _web_db(args: argparse.Namespace):
    """(data dir, DB URL) for `serve` and `users`: --db-url, $VMGRADE_DB_URL, else SQLite in the data dir."""
    import os
    from pathlib import Path

    from .history import data_dir

    directory = Path(args.data_dir).expanduser() if args.data_dir else data_dir()
    url = args.db_url or os.environ.get("VMGRADE_DB_URL") or f"sqlite:///{directory / 'history.sqlite3'}"
    return directory, url


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .web.app import create_app
    except ImportError as exc:
        print(f'vmgrade: the web app needs its extra: pip install "vmgrade[web]" ({exc})', file=sys.stderr)
        return EXIT_USAGE
    from .pipeline import GradeOptions
    from .web.accounts import count_users

    directory, url = _web_db(args)
    app = create_app(directory, url, grade_options=GradeOptions(
        model=args.model, engine=args.engine, rubric=args.rubric, max_duration_s=args.max_duration),
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_duration_s=args.max_duration,
        https_only=args.https_only)
    with app.state.sessions() as session:
        if count_users(session) == 0:
            where = f" --data-dir {directory}" if args.data_dir else ""
            print("vmgrade: no accounts yet. Create the first trainer (then reps) with:\n"
                  f"  vmgrade users add --username NAME --role trainer --team TEAM{where}\n"
                  "and log in at the address below.", file=sys.stderr)
    print(f"vmgrade: serving on http://{args.host}:{args.port}/ (data in {directory})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def _users(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .history import open_store
    from .web.accounts import add_user
    from .web.models import User

    directory, url = _web_db(args)
    if url.startswith("sqlite:///"):
        directory.mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    with Session(store.engine, expire_on_commit=False) as session:
        if args.users_command == "list":
            print(f"{'USERNAME':<24} {'ROLE':<8} TEAM")
            for user in session.scalars(select(User).order_by(User.username)):
                print(f"{user.username:<24} {user.role:<8} {user.team.name}")
            return EXIT_OK
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            import getpass

            password = getpass.getpass(f"Password for {args.username}: ")
            if password != getpass.getpass("Repeat it: "):
                print("vmgrade: the passwords differ", file=sys.stderr)
                return EXIT_USAGE
        user = add_user(session, args.username, password, args.role, args.team)
        print(f"Created {user.role} {user.username} in team {user.team.name} ({url}).")
    return EXIT_OK


def _models() -> int:
    from .models import cache_dir, list_models

    rows = list_models()
    print(f"{'NAME':<12} {'SOURCE':<14} {'SIZE':>9}  STATUS / PATH")
    for row in rows:
        size = f"{row.size_bytes / 1e6:.0f} MB" if row.size_bytes else "-"
        print(f"{row.name:<12} {row.source:<14} {size:>9}  {row.status}\n{'':<38}{row.path}")
    print(f"\nConverted checkpoints are cached in {cache_dir()} (set VMGRADE_MODEL_DIR to move it).")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
