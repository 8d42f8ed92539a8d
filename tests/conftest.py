"""Shared fixtures: the real default Whisper model (loaded once), samples, references."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CORPUS = Path(os.environ.get("VMGRADE_CORPUS", ROOT.parent / "shared" / "corpus"))
SR = 16000


def _load_sample_tool():
    spec = importlib.util.spec_from_file_location("make_samples_tool", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_samples = _load_sample_tool()


def reference_text(sample_name: str) -> str:
    """What the sample's script says (markers and comments removed)."""
    return make_samples.reference_text_for(sample_name)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's English normalisation (numbers as digits)."""
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()

    def norm(text: str) -> str:
        # "415-555-0198" and "four one five, five five five..." both become one digit string
        text = re.sub(r"(?<=\d)[-.,]\s?(?=\d)", "", text)
        text = normalise(text)
        return re.sub(r"(?<=\d) (?=\d)", "", text)

    return jiwer.wer(norm(reference), norm(hypothesis))


@pytest.fixture(scope="session")
def transcriber():
    from vmgrade.asr.transcribe import WhisperTranscriber

    return WhisperTranscriber("base")


@pytest.fixture(scope="session")
def grader(transcriber):
    from vmgrade.pipeline import Grader

    return Grader(transcriber=transcriber)


@pytest.fixture(scope="session")
def graded(grader):
    """``graded(path, context=None)``: grade once per session, reuse the report."""
    cache = {}

    def grade(path, context=None):
        key = (str(path), context)
        if key not in cache:
            cache[key] = grader.grade(path, context)
        return cache[key]

    return grade


def write_tone(path: Path, seconds: float = 2.0, freq_hz: float = 220.0, amplitude: float = 0.3) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), SR)
    return path
