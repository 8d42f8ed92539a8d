"""Accuracy of vmgrade.delivery's length, pause and rate metrics on spliced real speech.

Ground truth: corpus clips (``$VMGRADE_CORPUS``) are
resampled to 16 kHz, their own leading/trailing silence trimmed (10 ms frames more
than 35 dB below the clip's loudest frame or less than 12 dB above its
10th-percentile floor; a level criterion, which favours the energy VAD
somewhat), and four at a time spliced
with inserted silences of 0.4, 1.0 and 2.5 s, 0.7 s of leading and 1.3 s of
trailing silence.  A -65 dBFS white noise bed covers the whole file so the
gaps are not digital silence.  The same is done with the telephone copies
(``phone/``).

Scored, per VAD (silero, energy) and channel (clips, phone):

* inserted pauses: found (a detected pause overlapping the inserted gap),
  both edges within +-0.15 s, median |edge error|; detected pauses that
  overlap no inserted gap are the clips' own pauses, counted separately;
* leading/trailing silence within +-0.1 s;
* rate_wpm within +-10% of the true rate (reference words / true message
  length) using the reference word count with the measured message length,
  and using a Whisper "base" transcript (``--no-whisper`` skips it).

Run: ``VMGRADE_MODEL_DIR=/tmp/vmcache python bench/delivery_accuracy.py``.
Exits 0 with a message when the corpus is absent.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmgrade import audio as vm_audio  # noqa: E402
from vmgrade import delivery  # noqa: E402

SR = 16000
GAPS_S = (0.4, 1.0, 2.5)
LEAD_S = 0.7
TAIL_S = 1.3
NOISE_DBFS = -65.0
TRIM_BELOW_PEAK_DB = 35.0
TRIM_ABOVE_FLOOR_DB = 12.0  # noisy clips (VCTK, MFA): stay clear of the clip's own noise floor
PAUSE_TOL_S = 0.15
EDGE_TOL_S = 0.1
RATE_TOL = 0.10


def trim(y: np.ndarray) -> np.ndarray:
    """Cut leading/trailing frames more than TRIM_BELOW_PEAK_DB below the loudest 10 ms frame."""
    hop = SR // 100
    n = len(y) // hop
    level = 10 * np.log10(np.maximum(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1), 1e-12))
    floor = np.percentile(level, 10)
    on = np.flatnonzero(level >= max(level.max() - TRIM_BELOW_PEAK_DB, floor + TRIM_ABOVE_FLOOR_DB))
    return y[on[0] * hop : (on[-1] + 1) * hop]


def splice(
    clips: list[np.ndarray], seed: int, snr_db: float | None = None
) -> tuple[np.ndarray, list[tuple[float, float]], float, float]:
    """Return (signal, inserted gaps [(start_s, end_s)], true speech start, true speech end)."""
    parts = [np.zeros(int(LEAD_S * SR), np.float32)]
    gaps = []
    t = LEAD_S
    for i, c in enumerate(clips):
        parts.append(c)
        t += len(c) / SR
        if i < len(clips) - 1:
            g = GAPS_S[i % len(GAPS_S)]
            parts.append(np.zeros(int(g * SR), np.float32))
            gaps.append((t, t + int(g * SR) / SR))
            t += int(g * SR) / SR
    end = t
    parts.append(np.zeros(int(TAIL_S * SR), np.float32))
    y = np.concatenate(parts)
    rng = np.random.default_rng(seed)
    if snr_db is None:
        noise_rms = 10 ** (NOISE_DBFS / 20)
    else:  # pink-ish noise (white, 1-pole low-passed) at snr_db re the clips' RMS
        noise_rms = float(np.sqrt(np.mean(np.concatenate(clips) ** 2))) * 10 ** (-snr_db / 20)
    noise = rng.standard_normal(len(y))
    if snr_db is not None:
        noise = np.convolve(noise, [0.5, 0.3, 0.2], mode="same")
    y = y + (noise / noise.std() * noise_rms).astype(np.float32)
    return y.astype(np.float32), gaps, LEAD_S, end


def ref_words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9']+", text))


def score(m: delivery.DeliveryMetrics, gaps, start, end, n_ref: int, n_whisper: int | None) -> dict:
    found, within, errs = 0, 0, []
    matched = set()
    for gs, ge in gaps:
        cands = [p for p in m.pauses if p.start_s < ge and p.end_s > gs]
        if not cands:
            continue
        p = max(cands, key=lambda p: min(p.end_s, ge) - max(p.start_s, gs))
        matched.add(p)
        found += 1
        e = max(abs(p.start_s - gs), abs(p.end_s - ge))
        errs.append(e)
        within += e <= PAUSE_TOL_S
    true_rate = n_ref / (end - start) * 60
    ref_rate = n_ref / m.message_length_s * 60 if m.message_length_s else 0.0
    w_rate = n_whisper / m.message_length_s * 60 if (n_whisper is not None and m.message_length_s) else None
    return {
        "gaps": len(gaps),
        "found": found,
        "within": within,
        "errs": errs,
        "extra": len([p for p in m.pauses if p not in matched]),
        "lead_err": m.leading_silence_s - start,
        "tail_err": m.trailing_silence_s - TAIL_S,
        "rate_ref_err": ref_rate / true_rate - 1,
        "rate_whisper_err": None if w_rate is None else w_rate / true_rate - 1,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-whisper", action="store_true", help="skip the Whisper transcript column")
    ap.add_argument("--model", default="base")
    ap.add_argument("--channels", default="clips,phone", help="comma list of clips, phone")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N splices per channel")
    ap.add_argument(
        "--snr-db", type=float, default=None, help="add noise at this SNR instead of the -65 dBFS bed"
    )
    args = ap.parse_args()

    root = corpus_dir()
    manifest = root / "manifest.csv"
    if not manifest.exists():
        print(f"corpus not found at {root} (set VMGRADE_CORPUS); skipping")
        return 0
    rows = list(csv.DictReader(manifest.open()))
    transcriber = None
    if not args.no_whisper:
        from vmgrade.asr.transcribe import WhisperTranscriber

        transcriber = WhisperTranscriber(args.model)

    results: dict[tuple[str, str], list[dict]] = {}
    wanted = set(args.channels.split(","))
    for channel, col in (("clips", "file"), ("phone", "phone_file")):
        if channel not in wanted:
            continue
        clips = []
        for r in rows:
            a = vm_audio.load(root / r[col])
            clips.append((trim(a.samples), ref_words(r["reference_text"]), a.source))
        for i in range(min(len(clips), args.limit or len(clips))):
            group = [clips[(i + k) % len(clips)] for k in range(4)]
            y, gaps, start, end = splice([c[0] for c in group], seed=i, snr_db=args.snr_db)
            n_ref = sum(c[1] for c in group)
            src = replace(group[0][2], path=f"splice-{channel}-{i}", duration_s=len(y) / SR)
            au = vm_audio.Audio(samples=y, source=src, sample_rate=SR)
            n_whisper = None
            if transcriber is not None:
                t0 = time.perf_counter()
                tr = transcriber.transcribe(au)
                n_whisper = sum(1 for w in tr.words if delivery.normalise_token(w.word))
                dt = time.perf_counter() - t0
                print(f"  whisper {channel} #{i}: {n_whisper} words (ref {n_ref}) in {dt:.1f} s", flush=True)
            for vad in ("silero", "energy"):
                m = delivery.measure(au, vad=vad)
                results.setdefault((vad, channel), []).append(score(m, gaps, start, end, n_ref, n_whisper))

    hdr = (
        f"{'vad':7s} {'channel':7s} {'pauses found':>12s} {'<=0.15s':>8s} {'med|err|':>9s} {'max|err|':>9s} "
        f"{'extra':>5s} {'lead<=.1':>8s} {'tail<=.1':>8s} {'med lead':>8s} {'med tail':>8s} "
        f"{'wpm(ref)<=10%':>13s} {'wpm(whisper)<=10%':>17s}"
    )
    print("\n" + hdr)
    for (vad, channel), rs in results.items():
        n_gaps = sum(r["gaps"] for r in rs)
        errs = [e for r in rs for e in r["errs"]]
        lead = np.array([r["lead_err"] for r in rs])
        tail = np.array([r["tail_err"] for r in rs])
        rr = np.array([r["rate_ref_err"] for r in rs])
        wr = [r["rate_whisper_err"] for r in rs if r["rate_whisper_err"] is not None]
        wcol = (
            f"{sum(abs(x) <= RATE_TOL for x in wr)}/{len(wr)} ({np.median(np.abs(wr)) * 100:.1f}%)"
            if wr
            else "n/a"
        )
        found = sum(r["found"] for r in rs)
        within = sum(r["within"] for r in rs)
        med_err = np.median(errs) if errs else float("nan")
        max_err = max(errs) if errs else float("nan")
        extra = sum(r["extra"] for r in rs)
        lead_ok = int(np.sum(np.abs(lead) <= EDGE_TOL_S))
        tail_ok = int(np.sum(np.abs(tail) <= EDGE_TOL_S))
        rate_ok = int(np.sum(np.abs(rr) <= RATE_TOL))
        rcol = f"{rate_ok}/{len(rs)} ({np.median(np.abs(rr)) * 100:.1f}%)"
        print(
            f"{vad:7s} {channel:7s} {found:>5d}/{n_gaps:<6d} {within:>4d}/{n_gaps:<3d} {med_err:9.3f} "
            f"{max_err:9.3f} {extra:5d} {lead_ok:>4d}/{len(rs):<3d} {tail_ok:>4d}/{len(rs):<3d} "
            f"{np.median(lead):+8.3f} {np.median(tail):+8.3f} {rcol:>13s} {wcol:>17s}"
        )
    print(
        "\npauses: inserted gaps overlapped by a detected pause; <=0.15s: both edges within 0.15 s; "
        "extra: detected pauses overlapping no inserted gap (the clips' own pauses or false splits); "
        "lead/tail: signed median error (s); wpm: share within 10% of the true rate (median |error|)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
