"""Fitting recordings just over 30 s into one Whisper window: WER and time, fitted or not.

Per engine, with vmgrade's defaults otherwise:

1. **Splices just over one window**: corpus clips (clean, and their phone
   copies) joined with 0.4-s gaps into recordings of 30.3-32.5 s, with their
   references joined likewise. Each is transcribed as recorded and fitted
   (:func:`vmgrade.asr.windows.fit_to_window`, for each ``--fit-s``): how many
   were fitted and how much faster, pooled WER, words placed off speech (the
   middle of a word more than 0.15 s from any speech that
   :func:`vmgrade.vad.detect_speech` finds: a mistimed word), and seconds of
   transcription.
2. **The price of playing faster**: every corpus clip transcribed as recorded
   and played ``--max-speedup`` times faster (the most fitting ever does):
   pooled WER, clean and phone.

Text is normalised with Whisper's English normaliser before jiwer scores it
(``bench/wer.py``). Without the corpus or jiwer it says so and stops.

Run: ``python bench/fit_window.py [--engines ENGINE ...] [--max-speedup 1.1] [--fit-s 29.3 ...]
[--no-faster]``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import wer  # noqa: E402  (bench/wer.py: corpus, normaliser, pooled WER, transcribers)

GAP_S = 0.4  # silence between joined clips, s
SPLICE_S = (30.3, 32.5)  # splice lengths kept, s: just over one window
MAX_SPLICES = 10


def splices(clips: list[dict], corpus: Path, channel: str) -> list[tuple[np.ndarray, str]]:
    """Pairs of clips joined into recordings of :data:`SPLICE_S` seconds: (samples, reference)."""
    from vmgrade.audio import load

    key = "file" if channel == "clean" else "phone_file"
    audio = {r[key]: load(corpus / r[key]).samples for r in clips}
    gap = np.zeros(int(GAP_S * 16000), np.float32)
    out = []
    for a, b in itertools.permutations(clips, 2):
        ya, yb = audio[a[key]], audio[b[key]]
        if SPLICE_S[0] <= (len(ya) + len(gap) + len(yb)) / 16000 <= SPLICE_S[1]:
            out.append((np.concatenate([ya, gap, yb]), f"{a['reference_text']} {b['reference_text']}"))
    return out[:MAX_SPLICES]


def transcriber(engine: str, fit_window: bool):
    """vmgrade's ``engine`` with its defaults, fitting or not: ``samples -> text`` (None: not installed)."""
    from vmgrade.asr.transcribe import engine_options, make_transcriber
    from vmgrade.audio import Audio, SourceInfo
    from vmgrade.errors import ModelError

    try:
        t = make_transcriber(engine, "base", engine_options(engine, fit_window=fit_window))
    except ModelError as exc:
        print(f"  skipped {engine}: {exc.message}")
        return None

    def run(y: np.ndarray):
        source = SourceInfo("splice", "WAV", "FLOAT", 16000, 1, len(y) / 16000, 4 * len(y), "numpy")
        return t.transcribe(Audio(samples=y, source=source))

    return run


def share_off_speech(words, speech: list[tuple[float, float]], pad_s: float = 0.15) -> tuple[int, int]:
    """(words whose middle lies outside every speech interval widened by ``pad_s``, words)."""
    off = sum(
        not any(a - pad_s <= (w.start + w.end) / 2 <= b + pad_s for a, b in speech) for w in words
    )
    return off, len(words)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["openai-whisper", "ctranslate2"])
    parser.add_argument("--max-speedup", type=float, default=None,
                        help="fit up to this much faster (default: vmgrade.asr.windows.MAX_SPEEDUP)")
    parser.add_argument("--fit-s", type=float, nargs="+", default=None,
                        help="lengths to fit to, s (default: vmgrade.asr.windows.FIT_S)")
    parser.add_argument("--no-faster", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)

    from vmgrade.asr import windows
    from vmgrade.audio import load
    from vmgrade.vad import detect_speech

    max_speedup = args.max_speedup or windows.MAX_SPEEDUP
    found = wer.available_corpus()
    if found is None:
        return 0
    corpus, clips = found

    fit_values = args.fit_s or [windows.FIT_S]
    print(f"1. Splices of {SPLICE_S[0]}-{SPLICE_S[1]} s (two corpus clips, {GAP_S} s apart), "
          f"fitted to FIT_S seconds, up to {max_speedup}x faster\n")
    print(f"{'engine':<16}{'channel':<8}{'FIT_S':<7}{'fitted':>8}{'speedup':>11}{'WER':>7}{'off speech':>12}"
          f"{'seconds':>9}")
    runs = {e: transcriber(e, fit_window=False) for e in args.engines}
    engines = [e for e, run in runs.items() if run is not None]
    for engine in engines:
        run = runs[engine]
        for channel in wer.CHANNELS:
            pairs = splices(clips, corpus, channel)
            refs = [ref for _, ref in pairs]
            speech = [detect_speech(y, 16000, vad="energy")[0] for y, _ in pairs]
            for fit_s in [None, *fit_values]:
                hyps, speedups, off, n_words, seconds = [], [], 0, 0, 0.0
                for (y, _), spans in zip(pairs, speech):
                    t0 = time.perf_counter()
                    fitted = (windows.AsrInput.as_recorded(y, 16000) if fit_s is None else
                              windows.fit_to_window(y, 16000, fit_s=fit_s, max_speedup=max_speedup))
                    transcript = run(fitted.samples)
                    seconds += time.perf_counter() - t0
                    hyps.append(transcript.text)
                    words = [dataclasses.replace(w, start=fitted.recording_s(w.start),
                                                 end=fitted.recording_s(w.end)) for w in transcript.words]
                    o, n = share_off_speech(words, spans)
                    off, n_words = off + o, n_words + n
                    if len(fitted.samples) != len(y):
                        speedups.append(fitted.speedup)
                label = "as is" if fit_s is None else f"{fit_s}"
                span = f"{min(speedups):.3f}-{max(speedups):.3f}" if speedups else "-"
                print(f"{engine:<16}{channel:<8}{label:<7}{len(speedups):>4}/{len(pairs):<3}{span:>12}"
                      f"{wer.pooled_wer(refs, hyps):>7.3f}{off:>7}/{n_words:<4}{seconds:>9.1f}", flush=True)

    if args.no_faster:
        return 0
    print(f"\n2. Every corpus clip ({len(clips)}) as recorded and played {max_speedup}x faster\n")
    print(f"{'engine':<16}{'channel':<8}{'WER as is':>11}{'WER faster':>12}")
    for engine in engines:
        run = runs[engine]
        for channel in wer.CHANNELS:
            key = "file" if channel == "clean" else "phone_file"
            refs, as_is, faster = [], [], []
            for row in clips:
                y = load(corpus / row[key]).samples
                refs.append(row["reference_text"])
                as_is.append(run(y).text)
                faster.append(run(windows.play_faster(y, 16000, max_speedup)).text)
            print(f"{engine:<16}{channel:<8}{wer.pooled_wer(refs, as_is):>11.3f}"
                  f"{wer.pooled_wer(refs, faster):>12.3f}", flush=True)
    print("\nWER pooled after Whisper's English normalisation; seconds: transcription (and fitting)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
