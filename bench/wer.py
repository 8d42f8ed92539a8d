"""Word error rate on the speech corpus, clean and telephone copies, per engine and model.

Each clip of ``$VMGRADE_CORPUS/manifest.csv`` and its
8-kHz mu-law phone copy is transcribed by:

* ``plain``: openai-whisper's own ``transcribe()`` with its defaults (greedy,
  temperature fallback, no prompt, no word timestamps): the reference that
  vmgrade's default path must not fall behind;
* ``openai-whisper``: vmgrade's default transcriber (unprompted decode with
  fillers placed by the filler-prompted model, word timestamps, int8
  vocabulary projection, encoder reuse, hallucination filter);
* ``ctranslate2``: vmgrade's fast engine with its defaults (faster-whisper
  int8, greedy, no filler prompt), when installed; ``ctranslate2-beam5`` with
  a beam of 5 (faster-whisper's own default) instead.

Text is normalised with Whisper's ``EnglishTextNormalizer`` (case, punctuation,
spelled-out numbers, fillers) before jiwer scores it; WER is pooled over the
clips (total errors / total reference words). What is missing (corpus, engine,
model) is skipped with a note.

Run: ``python bench/wer.py [--models base tiny.en] [--engines plain openai-whisper ctranslate2 ...]``
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENGINES = ("plain", "openai-whisper", "ctranslate2", "ctranslate2-beam5")
CHANNELS = ("clean", "phone")


def corpus_clips(corpus: Path) -> list[dict[str, str]]:
    """Manifest rows whose clean and phone files both exist."""
    manifest = corpus / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if (corpus / r["file"]).is_file() and (corpus / r["phone_file"]).is_file()]


def available_corpus() -> tuple[Path, list[dict[str, str]]] | None:
    """The corpus folder and its clips; None, having said what is missing (the corpus, jiwer)."""
    corpus = corpus_dir()
    clips = corpus_clips(corpus)
    if not clips:
        print(f"skipped: no corpus at {corpus} (set VMGRADE_CORPUS)")
        return None
    try:
        import jiwer  # noqa: F401
    except ImportError:
        print("skipped: jiwer is not installed (pip install -e '.[test]')")
        return None
    return corpus, clips


def normaliser():
    """A function making reference and hypothesis comparable (Whisper's English normaliser)."""
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def pooled_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER of normalised texts: total edits over total reference words."""
    import jiwer

    norm = normaliser()
    refs = [norm(r) for r in references]
    hyps = [norm(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r.strip()]
    return jiwer.wer([refs[i] for i in keep], [hyps[i] for i in keep])


def plain_transcriber(model_name: str, *, word_timestamps: bool = False):
    """openai-whisper's ``transcribe()`` with its defaults, as an ``Audio -> text`` function."""
    from vmgrade.asr import weights as models

    model = models.load_whisper(models.resolve(model_name))

    def run(audio) -> str:
        return model.transcribe(audio.samples, language="en", fp16=False, verbose=None,
                                word_timestamps=word_timestamps)["text"]

    return run


def vmgrade_transcriber(engine: str, model_name: str, *, filler_prompt: bool | None = None,
                        filler_probe: bool = True):
    """vmgrade's transcriber for ``engine`` as an ``Audio -> text`` function (None: not installed).

    ``filler_prompt=None`` is the engine's default.
    """
    from vmgrade.asr.transcribe import (
        FILLER_PROMPT,
        TranscribeOptions,
        default_filler_prompt,
        make_transcriber,
    )
    from vmgrade.errors import ModelError

    engine, _, beam = engine.partition("-beam")
    if filler_prompt is None:
        filler_prompt = default_filler_prompt(engine)
    try:
        options = TranscribeOptions(beam_size=int(beam) if beam else None,
                                    initial_prompt=FILLER_PROMPT if filler_prompt else None,
                                    filler_probe=filler_probe)
        transcriber = make_transcriber(engine, model_name, options)
    except ModelError as exc:
        print(f"  skipped {engine} {model_name}: {exc.message}")
        return None

    return lambda audio: transcriber.transcribe(audio).text


def evaluate(run, clips: list[dict[str, str]], corpus: Path) -> dict[str, tuple[float, float]]:
    """``{channel: (pooled WER, seconds of transcription)}`` for one transcriber."""
    from vmgrade.audio import load

    out = {}
    for channel in CHANNELS:
        refs, hyps, seconds = [], [], 0.0
        for row in clips:
            path = corpus / (row["file"] if channel == "clean" else row["phone_file"])
            audio = load(path)
            t0 = time.perf_counter()
            hyps.append(run(audio))
            seconds += time.perf_counter() - t0
            refs.append(row["reference_text"])
        out[channel] = (pooled_wer(refs, hyps), seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["base", "tiny.en"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    args = parser.parse_args(argv)

    found = available_corpus()
    if found is None:
        return 0
    corpus, clips = found
    audio_s = sum(float(r["duration_s"]) for r in clips)
    print(f"{len(clips)} clips, {audio_s:.0f} s of speech, clean and phone copies\n")
    print(f"{'model':<9}{'engine':<16}{'WER clean':>10}{'WER phone':>10}{'s clean':>9}{'s phone':>9}")
    for model_name in args.models:
        for engine in args.engines:
            if engine == "plain":
                run = plain_transcriber(model_name)
            else:
                run = vmgrade_transcriber(engine, model_name)
            if run is None:
                continue
            res = evaluate(run, clips, corpus)
            (w_c, s_c), (w_p, s_p) = res["clean"], res["phone"]
            print(f"{model_name:<9}{engine:<16}{w_c:>10.3f}{w_p:>10.3f}{s_c:>9.1f}{s_p:>9.1f}", flush=True)
    print("\nWER pooled over clips after Whisper's English normalisation; seconds: transcription only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
