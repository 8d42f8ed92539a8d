"""Full-grade speed per stage, peak memory, and a cold CLI run, per engine.

For each engine: grade ``FILE`` (default ``samples/strong_wideband.flac``)
once untimed, then ``--repeat`` times, and print the median seconds of each
stage (``Report.timings_s``: decode, asr, delivery, content, scoring) and of
the whole grade; the process's peak RSS; and the wall time of a cold
``vmgrade grade FILE --format json`` in a new process (imports and model load
included, converted-model cache warm). Engines whose package is missing are
skipped with a note.

Run: ``python bench/grade_speed.py [--repeat 3] [--engines openai-whisper ctranslate2] [FILE]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "asr", "delivery", "content", "scoring")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(ROOT / "samples" / "strong_wideband.flac"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="base")
    parser.add_argument("--engines", nargs="+", default=["openai-whisper", "ctranslate2"])
    args = parser.parse_args()

    from vmgrade import GradeOptions, Grader
    from vmgrade.audio import load
    from vmgrade.errors import ModelError

    duration_s = load(args.file).duration_s
    print(f"{args.file}: {duration_s:.1f} s, model {args.model}, {args.repeat} warm runs\n")
    print(f"{'engine':<16}" + "".join(f"{s:>10}" for s in STAGES) + f"{'grade':>10}{'cold CLI':>10}")
    for engine in args.engines:
        try:
            grader = Grader(GradeOptions(model=args.model, engine=engine))
        except ModelError as exc:
            print(f"{engine:<16} skipped: {exc.message}")
            continue
        grader.grade(args.file)  # load the model, compile, fill caches
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = grader.grade(args.file)
            runs.append((report.timings_s, time.perf_counter() - t0))
        stage = {s: statistics.median(t.get(s, 0.0) for t, _ in runs) for s in STAGES}
        total = statistics.median(w for _, w in runs)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vmgrade", "grade", args.file, "--format", "json",
                        "--model", args.model, "--engine", engine],
                       check=True, capture_output=True)
        cold = time.perf_counter() - t0
        row = "".join(f"{stage[s]:>10.3f}" for s in STAGES)
        print(f"{engine:<16}{row}{total:>10.2f}{cold:>10.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (all engines loaded): {peak_mb:.0f} MB; seconds per stage, median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
