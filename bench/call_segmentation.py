"""Call-recording segmentation (vmgrade.calls): accuracy on built recordings, false beeps, speed.

Over the grid of ``tools/make_calls.py`` (US/UK/no ringback, DTMF, carrier and
person greetings, 1-2 beeps of 440-1,400 Hz and 0.2-1.2 s, mu-law/A-law/PCM,
mono and two-channel, hang-up tones and prompts after the message) prints:

* message-start error, s (median, max; goal <= 0.15 / <= 0.5);
* message-end error, s (median, max);
* beep recall and beeps found that are not there;
* false beeps / tones on every bundled sample voicemail (goal: none);
* ``pick_channel`` and ``conversation_evidence`` outcomes;
* ms of segmentation per 30 s of audio, warm (goal <= 100).

Score difference versus the message alone needs the segmentation wired into
the pipeline (``GradeOptions.whole_file``); until then that line says so.

Run: ``python bench/call_segmentation.py [--repeat 5] [--grade N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmgrade import audio  # noqa: E402
from vmgrade.calls import conversation_evidence, pick_channel, segment_call  # noqa: E402


def load_builder():
    spec = importlib.util.spec_from_file_location("make_calls_tool", ROOT / "tools" / "make_calls.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def mono(samples: np.ndarray) -> np.ndarray:
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def accuracy(make_calls, built) -> None:
    start_err, end_err, hits, truth_beeps, extra, picks, convs = [], [], 0, 0, 0, [], 0
    for _spec, b in built:
        seg = segment_call(mono(b.samples), b.rate_hz)
        if seg.message_start_s is None:
            start_err.append(float("inf"))
        else:
            start_err.append(abs(seg.message_start_s - b.truth["message_start_s"]))
            end_err.append(abs(seg.message_end_s - b.truth["message_end_s"]))
        found = [(s.start_s, s.end_s) for s in seg.beeps]
        for t0, t1 in b.truth["beeps"]:
            truth_beeps += 1
            hits += any(abs(s - t0) <= 0.1 and abs(e - t1) <= 0.1 for s, e in found)
        extra += max(0, len(found) - len(b.truth["beeps"]))
        if b.samples.ndim == 2:
            picks.append(pick_channel(b.samples.T, b.rate_hz)[0] == b.truth["rep_channel"])
        x = b.samples.T if b.samples.ndim == 2 else b.samples
        convs += conversation_evidence(x, b.rate_hz) is not None
    print(f"recordings: {len(built)} built call recordings (8 kHz)")
    print(f"message start error s: median {statistics.median(start_err):.3f}  max {max(start_err):.3f}")
    print(f"message end error s:   median {statistics.median(end_err):.3f}  max {max(end_err):.3f}")
    by_after: dict = {}
    for (spec, _), err in zip(built, end_err):
        by_after.setdefault(spec.after, []).append(err)
    for after, errs in by_after.items():
        print(f"    after={after!s:7s} end error max {max(errs):.2f} s over {len(errs)}")
    print(f"beep recall: {hits}/{truth_beeps}  extra beeps: {extra}")
    print(f"pick_channel right: {sum(picks)}/{len(picks)}  conversations flagged (want 0): {convs}")
    flagged = 0
    for channels in (2, 1):
        b = make_calls.build_conversation(channels=channels)
        x = b.samples.T if b.samples.ndim == 2 else b.samples
        flagged += conversation_evidence(x, b.rate_hz) is not None
    print(f"built live conversations flagged (want 2): {flagged}/2")


def false_tones() -> None:
    files = sorted(p for p in [*(ROOT / "samples").glob("*.*"), *(ROOT / "samples" / "validity").glob("*.*")]
                   if p.suffix in (".wav", ".flac") and not p.name.startswith("call_"))  # plain voicemails
    beeps = tones = calls = 0
    for path in files:
        seg = segment_call(audio.load(path).samples, audio.SAMPLE_RATE)
        beeps += len(seg.beeps)
        tones += len(seg.evidence["tones"])
        calls += seg.is_call_recording
    print(f"bundled voicemails: {len(files)}  false beeps {beeps}  false tones {tones}  "
          f"taken for calls {calls}")


def speed(built, repeat: int) -> None:
    # the pipeline's input: 16 kHz mono
    clips = [audio.resample(mono(b.samples), b.rate_hz, audio.SAMPLE_RATE) for _, b in built[:6]]
    for y in clips:
        segment_call(y, audio.SAMPLE_RATE)  # warm
    per_30s = []
    for y in clips:
        best = min(_timed(y) for _ in range(repeat))
        per_30s.append(best * 30.0 / (len(y) / audio.SAMPLE_RATE) * 1000.0)
    print(f"speed: {statistics.median(per_30s):.1f} ms per 30 s warm "
          f"(median of {len(clips)}, max {max(per_30s):.1f})")


def _timed(y: np.ndarray) -> float:
    t0 = time.perf_counter()
    segment_call(y, audio.SAMPLE_RATE)
    return time.perf_counter() - t0


def score_difference(built, n: int) -> None:
    from vmgrade.pipeline import GradeOptions, Grader

    if not hasattr(GradeOptions(), "whole_file"):
        print("score difference: needs the pipeline integration")
        return
    grader = Grader()
    diffs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (spec, b) in enumerate(built[:n]):
            call = Path(tmp) / f"call_{i}.wav"
            call.write_bytes(b.wav_bytes)
            alone = grader.grade(ROOT / "samples" / spec.message)
            whole = grader.grade(call)
            if alone.grade is None or whole.grade is None:
                print(f"    {call.name}: not graded ({whole.error or alone.error})")
                continue
            diffs.append(abs(whole.grade.score - alone.grade.score))
    if diffs:
        print(f"score difference vs the message alone: median {statistics.median(diffs):.1f}  "
              f"max {max(diffs):.1f} points over {len(diffs)} (goal <= 6)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats per clip (best is kept)")
    parser.add_argument("--grade", type=int, default=6, help="recordings to grade for the score difference")
    args = parser.parse_args(argv)
    make_calls = load_builder()
    built = [(spec, make_calls.build_call(spec)) for spec in make_calls.grid()]
    accuracy(make_calls, built)
    false_tones()
    speed(built, args.repeat)
    score_difference(built, args.grade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
