#!/usr/bin/env python3
"""Print duration, sample rate, speech span and words/min of every validity item.

    python samples/validity/check.py              # numbers only
    python samples/validity/check.py --whisper    # also Whisper "base" transcripts
                                                  # (needs VMGRADE_MODEL_DIR with the model)

Speech span = first to last sample above -40 dB re peak (20 ms frames);
wpm = words of the reference transcript / speech span.  Dev aid only.
"""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
ms = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ms)


def speech_span(x, rate, frame_s=0.02, threshold_db=-40.0):
    hop = int(frame_s * rate)
    n = len(x) // hop
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    loud = np.flatnonzero(e > e.max() * 10 ** (threshold_db / 20))
    return loud[0] * frame_s, (loud[-1] + 1) * frame_s


def main():
    whisper = "--whisper" in sys.argv
    if whisper:
        from vmgrade.audio import load
        from vmgrade.transcribe import WhisperTranscriber

        asr = WhisperTranscriber("base")
    total = 0
    for s in ms.load_manifest(HERE / "manifest.toml"):
        info = sf.info(str(s.output_path))
        x, rate = sf.read(str(s.output_path), dtype="float64")
        t0, t1 = speech_span(x, rate)
        words = len(ms.reference_text(s.script_path.read_text()).split())
        total += s.output_path.stat().st_size
        print(
            f"{s.name:24s} tier {s.expect.get('tier')}  {info.samplerate:5d} Hz  "
            f"{info.duration:5.1f} s  speech {t0:4.1f}-{t1:4.1f} s ({t1 - t0:4.1f} s)  "
            f"{words:3d} words  {60 * words / (t1 - t0):5.0f} wpm  "
            f"{s.output_path.stat().st_size / 1024:5.0f} KiB"
        )
        if whisper:
            text = asr.transcribe(load(str(s.output_path))).text
            digits = re.sub(r"\D", "", text)
            want = s.expect.get("callback_number", "")
            print(f"    whisper: {text.strip()}")
            print(f"    number {want or '-'} found {digits.count(want) if want else '-'}x in digits {digits}")
    print(f"total {total / 1024 / 1024:.2f} MiB")


if __name__ == "__main__":
    main()
