"""Transcription speed: openai-whisper base vs ctranslate2 (faster-whisper) base int8.

Times :meth:`Transcriber.transcribe` alone (no decoding of the file, no
delivery metrics or scoring) on ``samples/strong_wideband.flac`` and, when
present, ``$VMGRADE_CORPUS/clips/mfa_acoustic_corpus.wav``:

* warm: median of ``--repeat`` calls in one process, after one untimed call;
* cold: a new Python process doing the imports, the model load and one
  transcription, timed from outside (``total``) and inside (``load`` = imports +
  model load, ``first`` = the first transcription).

Model conversion / assembly is done once before timing, so cold runs see a
warm model cache, as every run after a user's first does. Both engines use
``--threads`` CPU threads (default: all cores).

Run: ``python bench/asr_speed.py [--repeat 5] [--threads 2] [--model base]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, engine, beam_size); None keeps the engine's default (greedy on both). Each
# engine runs with its default filler setting (openai-whisper: the probe; ctranslate2: none).
CONFIGS: tuple[tuple[str, str, int | None], ...] = (
    ("openai-whisper fp32", "openai-whisper", None),
    ("ctranslate2 int8 beam 1", "ctranslate2", None),
    ("ctranslate2 int8 beam 5", "ctranslate2", 5),
)


def files() -> list[Path]:
    """The sample voicemail, plus the corpus clip when the corpus is beside the repo."""
    corpus = corpus_dir()
    out = [ROOT / "samples" / "strong_wideband.flac"]
    clip = corpus / "clips" / "mfa_acoustic_corpus.wav"
    if clip.is_file():
        out.append(clip)
    return out


def build(engine: str, model: str, beam: int | None, threads: int | None):
    """A transcriber for ``engine``, its model loaded."""
    from vmgrade.asr.transcribe import engine_options, make_transcriber

    transcriber = make_transcriber(engine, model, engine_options(engine, beam_size=beam, threads=threads))
    transcriber.model  # noqa: B018  (load now, not inside the first timed call)
    return transcriber


def cold_child(engine: str, model: str, beam: int | None, threads: int | None, path: str) -> None:
    """Run in a fresh process: imports + load, then one transcription; print JSON timings."""
    t0 = time.perf_counter()
    from vmgrade.audio import load

    audio = load(path)
    transcriber = build(engine, model, beam, threads)
    t1 = time.perf_counter()
    transcriber.transcribe(audio)
    t2 = time.perf_counter()
    print(json.dumps({"load": t1 - t0, "first": t2 - t1}))


def cold(engine: str, model: str, beam: int | None, threads: int | None, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--cold-child", engine, "--model", model, str(path)]
    if beam is not None:
        cmd += ["--beam", str(beam)]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    total = time.perf_counter() - t0
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"total": total, **inner}


def warm(transcriber, audio, repeat: int) -> float:
    transcriber.transcribe(audio)  # untimed: numba / allocator warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        transcriber.transcribe(audio)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="warm calls per cell (median reported)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both engines")
    ap.add_argument("--model", default="base")
    ap.add_argument("--no-cold", action="store_true", help="skip the new-process timings")
    ap.add_argument("--cold-child", metavar="ENGINE", help=argparse.SUPPRESS)
    ap.add_argument("--beam", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cold_child:
        cold_child(args.cold_child, args.model, args.beam, args.threads, args.path)
        return 0

    from vmgrade.asr import weights as models
    from vmgrade.audio import load

    models.resolve(args.model)  # convert / assemble once, outside every timing
    models.ctranslate2_dir(args.model)
    clips = [(p, load(p)) for p in files()]
    print(f"model {args.model}, {args.threads} threads, warm = median of {args.repeat}; seconds per file\n")
    header = f"{'file':<26} {'dur s':>6}  {'engine':<25} {'warm':>6} {'xRT':>5}"
    if not args.no_cold:
        header += f"  {'cold total':>10} {'(load':>6} {'+ first)':>8}"
    print(header)
    print("-" * len(header))
    for label, engine, beam in CONFIGS:
        transcriber = build(engine, args.model, beam, args.threads)
        for path, audio in clips:
            w = warm(transcriber, audio, args.repeat)
            dur = audio.duration_s
            line = f"{path.name:<26} {dur:>6.1f}  {label:<25} {w:>6.2f} {dur / w:>5.1f}"
            if not args.no_cold:
                c = cold(engine, args.model, beam, args.threads, path)
                line += f"  {c['total']:>10.2f} {c['load']:>6.2f} {c['first']:>8.2f}"
            print(line, flush=True)
        del transcriber
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
