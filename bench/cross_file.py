"""Cross-file batching: files transcribed at once against one at a time, with the same transcripts.

Two measurements, on one CPU thread per grading process (what ``vmgrade batch`` gives each of
its workers on a busy or small machine):

1. the recogniser alone: the bundled samples transcribed one by one, then by 2, 3 and 4
   threads at once through one model (:mod:`vmgrade.asr.speedups.cross_file`), with the sizes
   of the batched calls and whether every transcript came out the same;
2. where ``$VMGRADE_CORPUS`` names the speech corpus: the pooled WER of its clean and phone
   clips transcribed one at a time and three at once, and how many transcripts differ;
3. unless ``--no-batch``: ``vmgrade batch`` on a folder of varied copies, with each
   ``--files-at-once`` value, in rounds that alternate the values (a busy machine drifts),
   each round into a new output folder.

Each for every engine of ``--engines`` (both by default; each with its default options).

    python bench/cross_file.py [--engines openai-whisper ctranslate2] [--files 24] [--rounds 2]
        [--at-once 1 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _transcriber(engine: str, model: str):
    """``engine``'s transcriber with its default options, on one thread."""
    from vmgrade.asr.transcribe import engine_options, make_transcriber

    return make_transcriber(engine, model, engine_options(engine, threads=1))


def recogniser_alone(engine: str, model: str, at_once: list[int]) -> None:
    from vmgrade.audio import load

    paths = sorted([*ROOT.glob("samples/*.wav"), *ROOT.glob("samples/*.flac")])
    clips = [load(p) for p in paths]
    t = _transcriber(engine, model)
    t.transcribe(clips[0])  # load and warm
    t0 = time.perf_counter()
    alone = [t.transcribe(c) for c in clips]
    base_s = time.perf_counter() - t0
    audio_s = sum(c.duration_s for c in clips)
    print(f"== {engine}, the recogniser alone: {len(clips)} samples, {audio_s:.0f} s of audio, 1 thread")
    print(f"{'at once':>8}{'wall s':>9}{'ratio':>7}  same transcripts  batched calls")
    print(f"{1:>8}{base_s:>9.2f}{1.0:>7.2f}  yes")
    for n in at_once:
        if n <= 1:
            continue
        t.rendezvous.batches.clear()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            together = list(pool.map(t.transcribe, clips))
        wall = time.perf_counter() - t0
        same = all(a.text == b.text and _times(a) == _times(b) for a, b in zip(alone, together, strict=True))
        sizes = t.rendezvous.batches
        print(f"{n:>8}{wall:>9.2f}{wall / base_s:>7.2f}  {'yes' if same else 'NO':<16}  "
              f"{len(sizes)} calls, mean batch {statistics.mean(sizes):.1f}")
    print()


def corpus_wer(engine: str, model: str, at_once: int) -> None:
    import wer  # bench/wer.py

    found = wer.available_corpus()
    if found is None:
        return
    corpus, rows = found
    from vmgrade.audio import load

    t = _transcriber(engine, model)
    print(f"== {engine}, WER on the corpus ({len(rows)} clips a channel), one at a time and "
          f"{at_once} at once")
    for channel in wer.CHANNELS:
        clips = [load(corpus / (r["file"] if channel == "clean" else r["phone_file"])) for r in rows]
        refs = [r["reference_text"] for r in rows]
        alone = [t.transcribe(c).text for c in clips]
        with ThreadPoolExecutor(at_once) as pool:
            together = [tr.text for tr in pool.map(t.transcribe, clips)]
        differ = sum(a != b for a, b in zip(alone, together, strict=True))
        print(f"  {channel}: WER {wer.pooled_wer(refs, alone):.3f} one at a time, "
              f"{wer.pooled_wer(refs, together):.3f} {at_once} at once; "
              f"{differ} of {len(clips)} texts differ")
    print()


def _times(transcript) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in transcript.words]


def whole_batch(engine: str, model: str, n_files: int, at_once: list[int], rounds: int) -> None:
    import batch_throughput as bt  # bench/batch_throughput.py

    base = Path(tempfile.mkdtemp(prefix="vmgrade-cross-file-"))
    try:
        files, total_s = bt.build_folder(base / "calls", n_files)
        print(f"== vmgrade batch --engine {engine}: {len(files)} voicemails, {total_s:.0f} s of audio, "
              f"vmgrade's own workers and threads, {rounds} round(s)")
        walls: dict[int, list[float]] = {n: [] for n in at_once}
        rss: dict[int, float] = {}
        for r in range(rounds):
            for n in at_once:
                stats = bt.run(base / "calls", base / f"out-{r}-{n}", model, None, False, None,
                               ("--engine", engine, "--files-at-once", str(n)))
                assert stats["failed"] == 0 and stats["done"] == len(files), stats
                walls[n].append(stats["wall_s"])
                rss[n] = max(rss.get(n, 0.0), stats["worker_rss_mb"])
                print(f"  round {r + 1}, --files-at-once {n}: {stats['wall_s']:.1f} s", flush=True)
        first = statistics.median(walls[at_once[0]])
        print(f"{'--files-at-once':>16}{'median s':>10}{'ratio':>7}{'worker RSS':>12}")
        for n in at_once:
            wall = statistics.median(walls[n])
            print(f"{n:>16}{wall:>10.1f}{wall / first:>7.2f}{rss[n]:>10.0f}MB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["openai-whisper", "ctranslate2"])
    parser.add_argument("--model", default="base")
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--at-once", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-batch", action="store_true", help="only the recogniser alone")
    args = parser.parse_args()
    for engine in args.engines:
        recogniser_alone(engine, args.model, sorted(set(args.at_once) | {2, 3, 4}))
        corpus_wer(engine, args.model, 3)
        if not args.no_batch:
            whole_batch(engine, args.model, args.files, args.at_once, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
