"""Does Whisper keep "uh"/"um", without a prompt, prompted, and with vmgrade's filler probe?

Transcribes the corpus's spontaneous clips (``mfa_*``, clean and phone) three
ways: no prompt; ``vmgrade.asr.transcribe.FILLER_PROMPT`` conditioning every word
(whisper's ``initial_prompt``); and the default, an unprompted decode in which
the prompted model only places fillers (``vmgrade.asr.speedups.filler_probe``). Prints, per
clip, the fillers in the reference, the fillers recovered, and WER (fillers
excluded by Whisper's normaliser). Skips when $VMGRADE_CORPUS is not set.

    python bench/filler_prompt.py [--model base]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

from corpus import corpus_dir  # bench/corpus.py: $VMGRADE_CORPUS

ROOT = Path(__file__).resolve().parents[1]
CORPUS = corpus_dir()
FILLER = re.compile(r"\b(uh|um|umm|uhm|er|ah|hmm)\b")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    args = parser.parse_args()
    manifest = CORPUS / "manifest.csv"
    if not manifest.exists():
        print(f"skipped: corpus not found at {CORPUS} (set VMGRADE_CORPUS)")
        return 0

    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    from vmgrade.asr.transcribe import FILLER_PROMPT, TranscribeOptions, WhisperTranscriber
    from vmgrade.audio import load

    normalise = EnglishTextNormalizer()
    rows = [r for r in csv.DictReader(manifest.open()) if r["name"].startswith("mfa_")]
    engines = {
        "no prompt": WhisperTranscriber(args.model, TranscribeOptions(initial_prompt=None)),
        "prompted": WhisperTranscriber(
            args.model, TranscribeOptions(initial_prompt=FILLER_PROMPT, filler_probe=False)),
        "filler probe": WhisperTranscriber(args.model, TranscribeOptions(initial_prompt=FILLER_PROMPT)),
    }
    print(f"model {args.model}; prompt: {FILLER_PROMPT!r}\n")
    print(f"{'clip':<28} {'channel':<7} {'setting':<14} {'ref fillers':>11} {'found':>6} {'WER':>6} {'s':>6}")
    for row in rows:
        reference = row["reference_text"]
        ref_fillers = len(FILLER.findall(reference.lower()))
        for channel, rel in (("clean", row["file"]), ("phone", row["phone_file"])):
            audio = load(CORPUS / rel)
            for setting, engine in engines.items():
                t0 = time.perf_counter()
                text = engine.transcribe(audio).text
                seconds = time.perf_counter() - t0
                found = len(FILLER.findall(text.lower()))
                wer = jiwer.wer(normalise(reference), normalise(text))
                print(f"{row['name']:<28} {channel:<7} {setting:<14} {ref_fillers:>11} {found:>6} "
                      f"{wer:>6.3f} {seconds:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
