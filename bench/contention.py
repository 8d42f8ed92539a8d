"""A CLI grade on a quiet machine and beside a spinning process, for each engine: the busy/quiet ratio.

Each round runs ``vmgrade grade FILE --format json`` in a new process (the converted-model
cache warm) quiet, then again while ``--spinners`` processes (default 1) spin a core each, and
prints the median of each, their ratio (the goal: at most 2, docs/performance.md) and the
threads the recogniser chose (the report's ``model.threads``). ``--env NAME=VALUE`` sets a
variable in the graded processes (to compare OpenMP wait policies: ``OMP_WAIT_POLICY=ACTIVE``),
``--flags`` adds CLI flags (``--threads 2``: the old default, every core).

Run: ``python bench/contention.py [--rounds 3] [--spinners 1] [--engine E ...] [--env N=V] [FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "samples" / "before_practice.wav"
GOAL_BUSY_RATIO = 2.0
# Give a spinner this long to take its core before timing starts (as a user's load would have).
SPIN_UP_S = 1.0
SPIN_LIMIT_S = 600


@contextmanager
def spinning(count: int):
    """``count`` processes that each spin one core until the block ends."""
    # bounded: a spinner outlives no killed benchmark by more than SPIN_LIMIT_S
    code = f"import time\nend = time.monotonic() + {SPIN_LIMIT_S}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        time.sleep(SPIN_UP_S if procs else 0)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def grade_once(path: Path, engine: str, flags: list[str], env: dict[str, str]) -> tuple[float, int | None]:
    """One new ``vmgrade grade`` process: (wall seconds, the recogniser's threads from its report)."""
    cmd = [sys.executable, "-m", "vmgrade", "grade", str(path), "--format", "json", "--quiet",
           "--engine", engine, *flags]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{shlex.join(cmd)} failed: {proc.stderr[-500:]}")
    report = json.loads(proc.stdout.splitlines()[-1])
    return wall, report.get("model", {}).get("threads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spinners", type=int, default=1)
    parser.add_argument("--engine", action="append", choices=("openai-whisper", "ctranslate2"))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--flags", default="", help="extra vmgrade grade flags, one string")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    flags = shlex.split(args.flags)
    engines = args.engine or ["openai-whisper", "ctranslate2"]
    print(f"{args.file.name}, {args.rounds} rounds, {args.spinners} spinner(s), env {env or '-'}, "
          f"flags {flags or '-'}; {os.cpu_count()} CPUs")
    for engine in engines:
        grade_once(args.file, engine, flags, env)  # page the model and libraries in
        quiet, busy, threads = [], [], {}
        for _ in range(args.rounds):
            wall, threads["quiet"] = grade_once(args.file, engine, flags, env)
            quiet.append(wall)
            with spinning(args.spinners):
                wall, threads["busy"] = grade_once(args.file, engine, flags, env)
            busy.append(wall)
        ratio = statistics.median(busy) / statistics.median(quiet)
        verdict = "met" if ratio <= GOAL_BUSY_RATIO else "NOT met"
        print(f"{engine:<15} quiet {statistics.median(quiet):5.2f} s ({threads['quiet']} threads)  "
              f"busy {statistics.median(busy):5.2f} s ({threads['busy']} threads)  "
              f"ratio {ratio:4.2f} (goal <= {GOAL_BUSY_RATIO:g}: {verdict})"
              f"  [quiet {', '.join(f'{w:.2f}' for w in quiet)}; busy {', '.join(f'{w:.2f}' for w in busy)}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
