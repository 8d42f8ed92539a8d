"""Speed of vmgrade.delivery.measure(): cold (first call in the process) and warm.

Goal: <= 0.5 s per 30 s of audio, warm.  Uses a 30 s excerpt of a corpus clip
(``$VMGRADE_CORPUS``), or a synthetic speech-like
signal when the corpus is absent.  Prints per-step times (vad, pitch,
syllables, words, quality) for both VADs.

Run: ``python bench/delivery_speed.py [--repeat 9]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmgrade import audio as vm_audio  # noqa: E402

SR = 16000
TARGET_S = 30.0


def clip_30s() -> tuple[vm_audio.Audio, str]:
    path = corpus_dir() / "clips" / "mfa_acoustic_corpus.wav"
    if path.exists():
        a = vm_audio.load(path)
        y = np.tile(a.samples, int(np.ceil(TARGET_S * SR / len(a.samples))))[: int(TARGET_S * SR)]
        return vm_audio.Audio(samples=y, source=a.source, sample_rate=SR), str(path)
    print(f"corpus not found at {corpus_dir()}; timing a synthetic signal")
    t = np.arange(int(TARGET_S * SR)) / SR
    y = (
        0.3
        * np.sin(2 * np.pi * 140 * t)
        * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
        * (np.sin(2 * np.pi * 0.2 * t) > -0.5)
    ).astype(np.float32)
    src = vm_audio.SourceInfo("synthetic", "WAV", "PCM_16", SR, 1, TARGET_S, 0, "soundfile")
    return vm_audio.Audio(samples=y, source=src, sample_rate=SR), "synthetic"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    audio, name = clip_30s()
    print(f"audio: {name}, {audio.duration_s:.1f} s")

    t0 = time.perf_counter()
    from vmgrade import delivery

    print(f"import vmgrade.delivery: {time.perf_counter() - t0:.3f} s")
    steps = ("vad", "pitch", "syllables", "words", "quality", "total")
    print(f"{'vad':7s} {'call':6s} " + " ".join(f"{s:>9s}" for s in steps))
    for vad in ("energy", "silero"):
        cold: dict[str, float] = {}
        delivery.measure(audio, vad=vad, timings=cold)
        print(f"{vad:7s} {'cold':6s} " + " ".join(f"{cold[s]:9.3f}" for s in steps))
        runs = []
        for _ in range(args.repeat):
            t: dict[str, float] = {}
            delivery.measure(audio, vad=vad, timings=t)
            runs.append(t)
        med = {s: statistics.median(r[s] for r in runs) for s in steps}
        print(f"{vad:7s} {'warm':6s} " + " ".join(f"{med[s]:9.3f}" for s in steps))
        per30 = med["total"] / audio.duration_s * 30
        print(
            f"{vad:7s} warm median {per30:.3f} s per 30 s of audio (goal 0.5): "
            + ("OK" if per30 <= 0.5 else "SLOW")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
