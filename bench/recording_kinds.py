"""What is being graded: recording kinds, channel choice, false beeps and voice speed, on a labelled set.

The set is built by ``tools/make_kinds.py`` (written apart from the detectors in
``vmgrade/calls``: its greetings, messages and dialogues were never used to tune
them): 114 files of five kinds -- voicemails (clean, a sharp and a gentle phone
band, G.711, GSM 6.10, car, cafe and babble noise at 5-20 dB), call recordings
(ringback, greetings in other voices, beeps of 400-1,500 Hz, some without a
beep, some two-channel), greeting-only files, live calls of two and three
real corpus speakers (or TTS voices when ``$VMGRADE_CORPUS`` is unset), and
no-speech files (silence, hiss, hum, ringback, a lone beep, line noise).

Every file is graded with the default pipeline (Whisper included), and the
report's ``recording.kind`` is compared with the label.  Printed:

* per kind: precision and recall, and the confusion matrix;
* single-voice files refused as live calls (target 0);
* channel choice on two-channel files with a known rep side (target 100%);
* end tones: complete messages followed by a tone that were still graded;
* false beeps on speech: ``detect_tones`` over every single-voice file of the
  set, the samples and (when set) the corpus (target 0);
* speaker analysis time per 30 s of speech, warm (target <= 0.3 s);
* a good message graded alone and inside call exports (target: within 6 points).

Run: ``python bench/recording_kinds.py [--set DIR] [--limit N]`` (about 10 min on 2 cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import corpus_dir  # noqa: E402

from vmgrade import calls  # noqa: E402
from vmgrade.audio import resample  # noqa: E402
from vmgrade.calls.kinds import RECORDING_KINDS  # noqa: E402
from vmgrade.calls.speakers import embed_runs, voices  # noqa: E402
from vmgrade.pipeline import GradeOptions, Grader  # noqa: E402
from vmgrade.vad import detect_speech  # noqa: E402

SINGLE_VOICE_KINDS = ("voicemail",)
GOOD_MESSAGE = "validity/strong_phone.wav"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _predicted(report) -> str:
    if report.recording is not None:
        return report.recording.kind
    return "error:" + (report.error.code if report.error else "none")


def _load_mono(path: Path, rate_hz: int = 8000) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return resample(y, sr, rate_hz) if sr != rate_hz else y


def grade_set(set_dir: Path, labels: list[dict], grader: Grader) -> list[dict]:
    rows = []
    for i, lab in enumerate(labels):
        t0 = time.perf_counter()
        report = grader.grade(set_dir / lab["file"])
        d = report.to_dict()
        rows.append({**lab, "predicted": _predicted(report), "error": d.get("error", {}).get("code"),
                     "channel_used": d.get("audio", {}).get("channel_used"), "score": d.get("score"),
                     "message_start_found_s": d.get("message_start_s"), "seconds": time.perf_counter() - t0})
        print(f"  [{i + 1}/{len(labels)}] {lab['file']} {lab['kind']} -> {rows[-1]['predicted']}"
              f" ({rows[-1]['seconds']:.1f} s)", file=sys.stderr, flush=True)
    return rows


def report_kinds(rows: list[dict]) -> None:
    truth = [r["kind"] for r in rows]
    pred = [r["predicted"] for r in rows]
    print(f"files: {len(rows)}  " + ", ".join(f"{k} {truth.count(k)}" for k in RECORDING_KINDS))
    print("\nkind             precision   recall")
    for k in RECORDING_KINDS:
        tp = sum(t == k and p == k for t, p in zip(truth, pred))
        n_pred, n_true = pred.count(k), truth.count(k)
        prec = f"{tp}/{n_pred} = {tp / n_pred:.2f}" if n_pred else "-"
        rec = f"{tp}/{n_true} = {tp / n_true:.2f}" if n_true else "-"
        print(f"{k:16s} {prec:>11s}  {rec:>11s}")
    print("\nconfusion (rows: label, columns: found)")
    cols = list(RECORDING_KINDS) + sorted({p for p in pred if p not in RECORDING_KINDS})
    print(" " * 16 + "".join(f"{c[:10]:>11s}" for c in cols))
    for k in RECORDING_KINDS:
        counts = Counter(p for t, p in zip(truth, pred) if t == k)
        print(f"{k:16s}" + "".join(f"{counts.get(c, 0):>11d}" for c in cols))
    singles = [r for r in rows if r["kind"] in SINGLE_VOICE_KINDS or (r["kind"] == "call_recording")]
    refused_live = [r["file"] for r in singles if r["predicted"] == "live_call"]
    print(f"\nsingle-voice messages refused as live calls: {len(refused_live)} {refused_live}")
    live = [r for r in rows if r["kind"] == "live_call"]
    print(f"live calls detected: {sum(r['predicted'] == 'live_call' for r in live)}/{len(live)}")
    greet = [r for r in rows if r["kind"] == "greeting_only"]
    found_greet = sum(r["predicted"] == "greeting_only" for r in greet)
    print(f"greeting-only files recognised: {found_greet}/{len(greet)}")
    two = [r for r in rows if r["channels"] == 2 and r["graded"] and r["rep_channel"] is not None]
    ok = sum(r["channel_used"] == ("left", "right")[r["rep_channel"]] for r in two)
    print(f"channel choice (two-channel graded files): {ok}/{len(two)}")
    ends = [r for r in rows if r.get("end_tone")]
    graded_ends = sum(r["predicted"] in ("voicemail", "call_recording") for r in ends)
    print(f"complete messages ending in a tone, graded: {graded_ends}/{len(ends)}")
    calls_ = [r for r in rows if r["kind"] == "call_recording" and r["message_start_found_s"] is not None]
    if calls_:
        err = [abs(r["message_start_found_s"] - r["message_start_s"]) for r in calls_]
        print(f"call recordings: message start error median {np.median(err):.2f} s, "
              f"within 0.5 s: {sum(e <= 0.5 for e in err)}/{len(err)}")
    wrong = [(r["file"], r["kind"], r["predicted"],
              [t for t in r["tags"] if not t.startswith(("rate:", "codec:"))][:6])
             for r in rows if r["kind"] != r["predicted"]]
    if wrong:
        print("\nwrong:")
        for w in wrong:
            print("  ", *w)


def false_beeps(set_dir: Path, labels: list[dict]) -> None:
    speech = ("voicemail", "live_call")
    files = [set_dir / r["file"] for r in labels if r["kind"] in speech and not r.get("end_tone")]
    # the samples' own voicemails (not call_export_*, which holds a real beep)
    files += [p for p in sorted(ROOT.glob("samples/*.*")) if p.suffix in (".wav", ".flac")
              and not p.name.startswith("call_")]
    files += sorted((ROOT / "samples").glob("validity*/*.flac"))
    if corpus_dir().is_dir():
        files += sorted((corpus_dir() / "clips").glob("*")) + sorted((corpus_dir() / "phone").glob("*"))
    total_s, found = 0.0, []
    for f in files:
        y = _load_mono(f)
        total_s += len(y) / 8000
        beeps = [t for t in calls.tones.detect_tones(y, 8000)[0] if t.kind == "beep"]
        found += [(f.name, round(t.start_s, 2)) for t in beeps]
    print(f"\nfalse beeps on speech: {len(found)} in {total_s / 3600:.2f} h ({len(files)} files) "
          f"{found[:10]}")


def voice_speed() -> None:
    y = _load_mono(ROOT / "samples" / "rambling_phone.wav", 16000)[: 30 * 16000]
    speech, _ = detect_speech(y, 16000, vad="energy")
    voices(embed_runs(y, 16000, speech))  # warm: the model loaded
    t0 = time.perf_counter()
    for _ in range(3):
        voices(embed_runs(y, 16000, speech))
    print(f"speaker analysis: {(time.perf_counter() - t0) / 3:.3f} s per 30 s of speech (warm)")


def call_export_delta(grader: Grader) -> None:
    make_calls = _tool("make_calls")
    alone = grader.grade(ROOT / "samples" / GOOD_MESSAGE).grade
    deltas = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate((
            make_calls.CallSpec(message=GOOD_MESSAGE),
            make_calls.CallSpec(message=GOOD_MESSAGE, greeting="greeting_tiffany", ringback="uk",
                                beep_hz=1400.0),
            make_calls.CallSpec(message=GOOD_MESSAGE, channels=2, rep_channel=1, encoding="alaw"),
        )):
            path = Path(tmp) / f"call_{i}.wav"
            path.write_bytes(make_calls.build_call(spec).wav_bytes)
            r = grader.grade(path)
            codes = sorted(f.code for f in r.grade.findings) if r.grade else [r.error.code]
            deltas.append((round(r.grade.score - alone.score, 1) if r.grade else None, codes))
    print(f"good message alone: {alone.score}; inside call exports: deltas {[d for d, _ in deltas]}")
    extra = [set(c) - {f.code for f in alone.findings} for _, c in deltas]
    print(f"findings the exports add: {[sorted(e) for e in extra]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, help="a set built by tools/make_kinds.py (default: build one)")
    ap.add_argument("--limit", type=int, help="grade only the first N files")
    ap.add_argument("--json", type=Path, help="write the per-file rows here")
    args = ap.parse_args(argv)
    set_dir = args.set
    if set_dir is None:
        set_dir = Path(tempfile.mkdtemp(prefix="kinds_"))
        _tool("make_kinds").build_set(set_dir, corpus_dir() if corpus_dir().is_dir() else None)
    lines = (set_dir / "labels.jsonl").read_text().splitlines()
    labels = [json.loads(line) for line in lines if line.strip()]
    labels = labels[: args.limit] if args.limit else labels
    voice_speed()
    false_beeps(set_dir, labels)
    grader = Grader(GradeOptions())
    call_export_delta(grader)
    rows = grade_set(set_dir, labels, grader)
    print()
    report_kinds(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
