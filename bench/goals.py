"""The speed and accuracy goals, measured side by side in one run.

For each FILE (default: ``samples/before_practice.wav``, 23 s, and
``samples/strong_wideband.flac``, 31.5 s), warm (each contender in a process
of its own, as in real use, one untimed call of each first, then ``--repeat``
rounds in which each takes its turn; medians, and ratios as the median of
each round's ratio):

* ``faster-whisper alone``: faster-whisper's own ``transcribe()`` on the same
  base model, int8, word timestamps on, its default beam of 5: the yardstick;
* ``plain openai-whisper``: openai-whisper's ``transcribe()`` with word
  timestamps and its defaults (what vmgrade started from);
* ``grade openai-whisper`` / ``grade ctranslate2``: vmgrade's whole grade with
  each engine's defaults, and the fast engine with its former defaults
  (``--beam-size 5 --filler-prompt``), split into stages: decode, ASR (less word timing),
  word timing, delivery, content, scoring, report (JSON + terminal text);

then cold: ``vmgrade grade FILE --format json`` in a new process (imports and
model load included; converted model cache warm, as on every run after a
user's first), median of ``--cold`` rounds (every file and setup in turn), with
the largest peak RSS.
Then, unless ``--batch 0``: a folder of ``--batch`` voicemails (default 24,
varied copies of the samples: ``bench/batch_throughput.py``) graded by
``vmgrade batch`` with its default outputs (per-file HTML included) and each
engine, against faster-whisper transcribing the same files one after another
in a new process, model load included (int8, beam 5, word timestamps, all
cores): wall-clock ratios, and the highest peak RSS of a batch worker.
Then, unless ``--busy 0``: a cold CLI grade quiet and beside a process spinning one core
(``bench/contention.py``), the ratio of the medians.
Last, unless ``--no-wer``: WER on the speech corpus ($VMGRADE_CORPUS) (clean and phone) of plain
openai-whisper base against vmgrade's default path (``bench/wer.py``).

Run: ``python bench/goals.py [--repeat 3] [--cold 3] [--batch 24] [--busy 3] [--no-wer] [FILE ...]``
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import wer  # noqa: E402  (bench/wer.py: corpus WER and plain openai-whisper)

DEFAULT_FILES = (ROOT / "samples" / "before_practice.wav", ROOT / "samples" / "strong_wideband.flac")
# (label, engine, GradeOptions settings, CLI flags): the default of each engine,
# and the fast engine with its former defaults (faster-whisper's beam of 5, the
# filler prompt on every word)
SETUPS = (
    ("openai-whisper", "openai-whisper", {}, []),
    ("ctranslate2", "ctranslate2", {}, []),
    ("ct2 beam 5, prompt", "ctranslate2", {"beam_size": 5, "filler_prompt": True},
     ["--beam-size", "5", "--filler-prompt"]),
)
STAGES = ("decode", "segment", "voices", "asr", "word timing", "delivery", "content", "scoring", "report")
# The goals (issue 30, docs/performance.md): one warm grade / faster-whisper alone, cold CLI
# seconds, a batch's wall / faster-whisper's sequential wall, RSS per batch worker, and a cold
# CLI grade beside a spinning process / its quiet time.
GOAL_DEFAULT_RATIO = 0.8
GOAL_FAST_RATIO = 0.6
GOAL_COLD_S = {"openai-whisper": 2.5, "ctranslate2": 2.0}
GOAL_BATCH_DEFAULT_RATIO = 0.6
GOAL_BATCH_FAST_RATIO = 0.45
GOAL_WORKER_RSS_MB = 1000.0
GOAL_BUSY_RATIO = 2.0
# Idle seconds after each timed call: torch's and CTranslate2's OpenMP threads
# spin a while after their work, and would slow the next contender.
SETTLE_S = 0.5
# The warm contenders besides the setups: faster-whisper alone and plain openai-whisper.
YARDSTICK, PLAIN = "yardstick", "plain"


def interleaved(calls: dict, rounds: int) -> dict[str, list]:
    """Call each of ``calls`` (label -> no-argument function) once per round, in turn.

    One untimed call of each first (load, compile, fill caches). Taking turns
    means a slow spell of a shared machine slows every contender alike, so
    the ratios of one round compare like with like. Returns each label's
    results, one per round (what its function returns).
    """
    for fn in calls.values():
        fn()
        time.sleep(SETTLE_S)
    results: dict[str, list] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, fn in calls.items():
            results[label].append(fn())
            time.sleep(SETTLE_S)
    return results


def timed(fn, *args):
    """A no-argument function returning the seconds ``fn(*args)`` takes."""
    def run() -> float:
        t0 = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t0

    return run


@contextmanager
def word_timing_clock(seconds: list[float]):
    """Add the time each engine spends aligning words to ``seconds`` (bench-only instrumentation)."""
    patches = []
    # ``import whisper.transcribe`` would give the function the package re-exports
    wt = importlib.import_module("whisper.transcribe")

    original = wt.add_word_timestamps

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - t0)

    wt.add_word_timestamps = timed
    patches.append((wt, "add_word_timestamps", original))
    try:
        from faster_whisper import WhisperModel

        fw_original = WhisperModel.add_word_timestamps

        def fw_timed(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fw_original(self, *args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - t0)

        WhisperModel.add_word_timestamps = fw_timed
        patches.append((WhisperModel, "add_word_timestamps", fw_original))
    except ImportError:
        pass
    try:
        yield
    finally:
        for owner, name, value in patches:
            setattr(owner, name, value)


def grade_stages(grader, path: Path):
    """A no-argument function: one whole grade (report rendering included) -> (seconds, {stage: seconds})."""
    from vmgrade.render.terminal import to_text

    def run() -> tuple[float, dict[str, float]]:
        aligning: list[float] = []
        t0 = time.perf_counter()
        with word_timing_clock(aligning):
            report = grader.grade(path)
        t1 = time.perf_counter()
        report.to_json()
        to_text(report)
        t2 = time.perf_counter()
        stages = dict(report.timings_s)
        stages["word timing"] = sum(aligning)
        stages["asr"] = stages.get("asr", 0.0) - stages["word timing"]
        stages["report"] = t2 - t1
        return t2 - t0, {s: stages.get(s, 0.0) for s in STAGES}

    return run


def cold_cli(path: Path, engine: str, model: str, flags: list[str]):
    """A no-argument function: one new ``vmgrade grade`` process -> (wall seconds, peak RSS in MB)."""
    cmd = [sys.executable, "-m", "vmgrade", "grade", str(path), "--format", "json",
           "--engine", engine, "--model", model, *flags]

    def run() -> tuple[float, float]:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-500:]}")
        proc.stderr.close()
        return wall, usage.ru_maxrss / 1024

    return run


class Contender:
    """One warm contender in a process of its own (``goals.py --serve LABEL``), called by pipe.

    Each runs alone in its process, as the engines do in real use: CTranslate2
    and torch each bring an OpenMP runtime (two copies of libgomp), and once
    CTranslate2's has run a parallel region, torch's small parallel products in
    the same process run about 3x slower for the rest of its life (measured:
    docs/performance.md, "Two engines in one process"), which would charge
    the default engine for the bench's own set-up.
    """

    def __init__(self, label: str, model: str):
        self.label = label
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", label, "--model", model],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self._reply()  # {} once built, or {"skipped": reason}
        self.threads = None

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"contender {self.label!r} exited ({self.proc.wait()})")
        return json.loads(line)

    def call(self, path: Path):
        """A no-argument function: one call on ``path`` -> (seconds, {stage: seconds})."""
        def run() -> tuple[float, dict[str, float]]:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
            reply = self._reply()
            self.threads = reply["threads"]
            return reply["seconds"], reply["stages"]

        return run

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def serve(label: str, model: str) -> int:
    """The contender ``label``'s side of :class:`Contender`: a path per line in, a JSON line out."""
    from vmgrade import GradeOptions, Grader
    from vmgrade.asr import weights as models
    from vmgrade.asr.threads import cpu_cores
    from vmgrade.audio import load
    from vmgrade.errors import ModelError

    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # notices and prints stay off the pipe
    threads = None
    try:
        if label == YARDSTICK:
            run_fw = faster_whisper_alone(models.ctranslate2_dir(model))
            run = lambda path: (timed(run_fw, load(path).samples)(), {})  # noqa: E731
        elif label == PLAIN:
            run_plain = wer.plain_transcriber(model, word_timestamps=True)
            run = lambda path: (timed(run_plain, load(path))(), {})  # noqa: E731
        else:
            engine, settings = next((e, st) for lb, e, st, _ in SETUPS if lb == label)
            # every core, as a quiet machine gives: the idle-core fit would see the other
            # contenders' turns (bench/contention.py and --busy measure that fit)
            grader = Grader(GradeOptions(model=model, engine=engine, threads=cpu_cores(), **settings))
            run = lambda path: grade_stages(grader, path)()  # noqa: E731
    except ModelError as exc:
        print(json.dumps({"skipped": exc.message}), file=out, flush=True)
        return 0
    print(json.dumps({}), file=out, flush=True)
    for line in sys.stdin:
        seconds, stages = run(Path(line.strip()))
        if label not in (YARDSTICK, PLAIN):
            threads = getattr(grader.transcriber, "threads", None)  # set once the model has loaded
        print(json.dumps({"seconds": seconds, "stages": stages, "threads": threads}), file=out, flush=True)
    return 0


def faster_whisper_alone(model_dir: Path):
    """faster-whisper's own ``transcribe()`` as ``samples -> words`` (int8, words on, default beam)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", local_files_only=True)

    def run(samples):
        segments, _ = model.transcribe(samples, language="en", word_timestamps=True)
        return [w for s in segments for w in s.words]

    return run


FW_SEQUENTIAL = """
import sys, time
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", local_files_only=True)
for path in sys.argv[2:]:
    segments, _ = model.transcribe(path, language="en", word_timestamps=True)
    words = [w for s in segments for w in s.words]
"""


def batch_goals(n_files: int, model: str) -> list[tuple]:
    """The batch goals: ``vmgrade batch`` (each engine, default outputs) against faster-whisper alone,
    sequential, on one folder, each in a new process (imports and model load included)."""
    import shutil
    import tempfile

    import batch_throughput as bt  # bench/batch_throughput.py

    from vmgrade.asr import weights as models

    base = Path(tempfile.mkdtemp(prefix="vmgrade-goals-"))
    try:
        files, total_s = bt.build_folder(base / "calls", n_files)
        print(f"== batch: {len(files)} voicemails, {total_s:.0f} s of audio")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", FW_SEQUENTIAL, str(models.ctranslate2_dir(model)),
                        *map(str, files)], check=True)
        fw_s = time.perf_counter() - t0
        print(f"{'faster-whisper alone, sequential':<40}{fw_s:>8.0f} s   1.00")
        goals = []
        for label, flags, target in (("vmgrade batch", (), GOAL_BATCH_DEFAULT_RATIO),
                                     ("vmgrade batch --engine ctranslate2", ("--engine", "ctranslate2"),
                                      GOAL_BATCH_FAST_RATIO)):
            stats = bt.run(base / "calls", base / f"out-{len(goals)}", model, None, False, None, flags)
            ratio = stats["wall_s"] / fw_s
            print(f"{label:<40}{stats['wall_s']:>8.0f} s{ratio:>7.2f}   "
                  f"{stats['files_per_min']:.1f} files/min, worker RSS {stats['worker_rss_mb']:.0f} MB, "
                  f"{stats['failed']} failed", flush=True)
            goals.append((f"batch: {label} / faster-whisper sequential", f"<= {target}", f"{ratio:.2f}",
                          ratio <= target))
            if not flags:
                rss = stats["worker_rss_mb"]
                goals.append(("batch: peak RSS per worker, default engine", f"<= {GOAL_WORKER_RSS_MB:.0f} MB",
                              f"{rss:.0f} MB", rss <= GOAL_WORKER_RSS_MB))
        print()
        return goals
    finally:
        shutil.rmtree(base, ignore_errors=True)


def warm_goals(path: Path, contenders: dict[str, Contender], graders: list[str],
               cold: dict, rounds: int) -> list[tuple]:
    """The warm goals on ``path``: each contender in turn, ``rounds`` times; prints the stage table."""
    from vmgrade.audio import load

    print(f"== {path.name}: {load(path).duration_s:.1f} s")
    runs = interleaved({label: c.call(path) for label, c in contenders.items()}, rounds)
    yardstick = statistics.median(t for t, _ in runs[YARDSTICK]) if YARDSTICK in runs else None
    if yardstick:
        print(f"{'faster-whisper alone (int8, beam 5, words)':<46}{yardstick:>8.2f} s")
    print(f"{'plain openai-whisper (fp32, greedy, words)':<46}"
          f"{statistics.median(t for t, _ in runs[PLAIN]):>8.2f} s")
    print(f"\n{'whole grade':<22}" + "".join(f"{s:>12}" for s in STAGES) + f"{'total':>9}"
          + f"{'÷ fw':>7}{'cold CLI':>10}{'peak RSS':>10}{'threads':>9}")
    goals = []
    for label in graders:
        total = statistics.median(t for t, _ in runs[label])
        stages = {s: statistics.median(st[s] for _, st in runs[label]) for s in STAGES}
        cold_s, rss_mb = cold[path, label]
        # the median of each round's ratio: grade and yardstick measured side by side
        ratio = (statistics.median(t / y for (t, _), (y, _) in zip(runs[label], runs[YARDSTICK]))
                 if yardstick else float("nan"))
        print(f"{label:<22}" + "".join(f"{stages[s]:>12.3f}" for s in STAGES)
              + f"{total:>9.2f}{ratio:>7.2f}{cold_s:>9.2f}s{rss_mb:>8.0f}MB"
              + f"{contenders[label].threads or '-':>9}", flush=True)
        target = GOAL_DEFAULT_RATIO if label == "openai-whisper" else GOAL_FAST_RATIO
        goals.append((f"{path.name}: grade {label} / faster-whisper alone", f"<= {target}",
                      f"{ratio:.2f}", ratio <= target))
        if label in GOAL_COLD_S:
            goals.append((f"{path.name}: cold CLI {label}", f"<= {GOAL_COLD_S[label]:g} s",
                          f"{cold_s:.2f} s", cold_s <= GOAL_COLD_S[label]))
    print()
    return goals


def busy_goals(path: Path, engines: list[str], rounds: int, model: str) -> list[tuple]:
    """A cold CLI grade of ``path`` quiet, then beside a process spinning one core, per engine
    (``bench/contention.py``): the ratio of the medians."""
    import contention

    goals = []
    print(f"== busy machine: {path.name}, {rounds} rounds, one spinning process")
    for engine in engines:
        contention.grade_once(path, engine, ["--model", model], {})  # page it in
        quiet, busy = [], []
        for _ in range(rounds):
            quiet.append(contention.grade_once(path, engine, ["--model", model], {}))
            with contention.spinning(1):
                busy.append(contention.grade_once(path, engine, ["--model", model], {}))
        q, b = (statistics.median(w for w, _ in runs) for runs in (quiet, busy))
        print(f"{engine:<15} quiet {q:.2f} s ({quiet[-1][1]} threads), beside a spinner {b:.2f} s "
              f"({busy[-1][1]} threads): {b / q:.2f}x")
        goals.append((f"cold CLI {engine} beside a spinning process / quiet", f"<= {GOAL_BUSY_RATIO:g}",
                      f"{b / q:.2f}", b / q <= GOAL_BUSY_RATIO))
    print()
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=list(DEFAULT_FILES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--model", default="base")
    parser.add_argument("--no-wer", action="store_true")
    parser.add_argument("--busy", type=int, default=3, metavar="N",
                        help="rounds of a cold CLI grade quiet and beside a spinning process (0: skip)")
    parser.add_argument("--batch", type=int, default=24, metavar="N",
                        help="voicemails in the batch folder (0: skip the batch goals)")
    parser.add_argument("--serve", metavar="LABEL", help=argparse.SUPPRESS)  # a Contender's process
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.model)

    from vmgrade.asr.host import host_info
    from vmgrade.asr.threads import cpu_cores

    print("\n".join(host_info().lines()))  # figures of two hosts compare only with these beside them
    print(f"model {args.model}, {cpu_cores()} cores, warm = median of {args.repeat}, "
          f"cold = median of {args.cold} new processes\n")
    # Cold runs first, while this process is small: a child's peak RSS counts the
    # parent's resident memory at fork, which would hide the CLI's own.
    setups = [s for s in SETUPS if s[1] != "ctranslate2" or importlib.util.find_spec("faster_whisper")]
    if len(setups) < len(SETUPS):
        print("skipped ctranslate2 and faster-whisper alone: faster-whisper is not installed")
    cold_runs = interleaved({(path, label): cold_cli(path, engine, args.model, flags)
                             for path in args.files for label, engine, _, flags in setups}, args.cold)
    cold = {key: (statistics.median(wall for wall, _ in runs), max(rss for _, rss in runs))
            for key, runs in cold_runs.items()}
    contenders: dict[str, Contender] = {}
    labels = ([YARDSTICK] if any(engine == "ctranslate2" for _, engine, _, _ in setups) else []) + [PLAIN]
    for label in labels + [label for label, _, _, _ in setups]:
        contender = Contender(label, args.model)
        if "skipped" in contender.info:
            print(f"skipped {label}: {contender.info['skipped']}")
            contender.close()
        else:
            contenders[label] = contender
    graders = [label for label, _, _, _ in setups if label in contenders]
    fw = YARDSTICK in contenders

    goals = []
    try:
        for path in args.files:
            goals += warm_goals(path, contenders, graders, cold, args.repeat)
    finally:
        for contender in contenders.values():
            contender.close()

    if args.batch and fw:
        goals += batch_goals(args.batch, args.model)

    if args.busy:
        goals += busy_goals(args.files[0], [label for label, engine, settings, _ in setups if not settings],
                            args.busy, args.model)

    if not args.no_wer:
        clips = wer.corpus_clips(corpus_dir())
        if not clips:
            print(f"WER skipped: no corpus at {corpus_dir()}")
        else:
            corpus = corpus_dir()
            base = wer.evaluate(wer.plain_transcriber(args.model), clips, corpus)
            print(f"WER on {len(clips)} corpus clips ({args.model}; plain openai-whisper: clean "
                  f"{base['clean'][0]:.3f}, phone {base['phone'][0]:.3f})")
            variants = [("vmgrade default", "openai-whisper", {}),
                        ("vmgrade, prompt on every word", "openai-whisper", {"filler_probe": False}),
                        ("vmgrade --no-filler-prompt", "openai-whisper", {"filler_prompt": False})]
            if "ctranslate2" in graders:
                variants += [("vmgrade ctranslate2", "ctranslate2", {}),
                             ("vmgrade ctranslate2 beam 5, prompt", "ctranslate2-beam5",
                              {"filler_prompt": True})]
            for label, engine, settings in variants:
                run = wer.vmgrade_transcriber(engine, args.model, **settings)
                res = wer.evaluate(run, clips, corpus)
                print(f"  {label:<40} clean {res['clean'][0]:.3f}  phone {res['phone'][0]:.3f}")
                for channel in wer.CHANNELS:
                    b, m = base[channel][0], res[channel][0]
                    goals.append((f"WER {channel}: {label} vs plain", f"<= {b:.3f}", f"{m:.3f}", m <= b))

    print("\n| goal | target | measured | met |\n|---|---|---|---|")
    for name, target, measured, met in goals:
        print(f"| {name} | {target} | {measured} | {'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
