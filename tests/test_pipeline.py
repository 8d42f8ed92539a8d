"""grade() end to end on the bundled samples: every stage filled, facts the generator fixed."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES

from vmgrade import Context
from vmgrade.delivery import spoken_word_counts
from vmgrade.scoring import DIMENSIONS


def test_strong_sample_report(graded):
    report = graded(SAMPLES / "strong_wideband.flac", Context(callback_number="415-555-0198"))
    assert report.ok
    d = json.loads(report.to_json())
    m = d["metrics"]
    # tools/make_samples.py rendered 0.5 s of lead and 1.0 s of tail silence
    assert m["leading_silence_s"] == pytest.approx(0.5, abs=0.1)
    assert m["trailing_silence_s"] == pytest.approx(1.0, abs=0.1)
    assert m["bandwidth"] == "wideband"
    assert 110 < m["rate_wpm"] < 190
    # the number said twice is two tokens in the transcript but 20 words spoken
    tokens = d["transcript"]["words"]
    assert m["word_count"] == sum(spoken_word_counts([w["word"] for w in tokens])) >= len(tokens) + 14
    assert m["long_pause_count"] == 0
    assert set(d["timings_s"]) >= {"decode", "asr", "delivery", "content", "scoring"}
    # the grade stage's public keys
    assert 0 <= d["score"] <= 100 and d["grade"] in "ABCDF"
    assert [x["key"] for x in d["dimensions"]] == list(DIMENSIONS)
    for f in d["feedback"]:
        assert set(f) >= {"code", "severity", "message", "start_s", "end_s"}
    assert d["content"]["callback"]["matches_expected"] is True
    assert d["content"]["callback"]["times_said"] == 2


def test_phone_sample_is_narrowband_with_fillers(graded):
    report = graded(SAMPLES / "rambling_phone.wav")
    m = report.metrics
    assert m.bandwidth == "narrowband"
    assert m.filler_count >= 5
    assert m.filler_rate_per_min > 5


class _Deaf:
    """A recogniser that hears no words (no model load)."""

    engine, model_name, precision = "stub", "stub", "fp32"

    def transcribe(self, audio):
        from vmgrade.asr.transcribe import Transcript

        return Transcript(text="", language="en", segments=(), no_speech_prob=0.0, engine="stub",
                          model_name="stub")


def _deaf_grader():
    from vmgrade.pipeline import Grader

    return Grader(transcriber=_Deaf())


def test_noise_and_hum_are_no_speech_not_a_grade(tmp_path):
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 10) / 16000
    grader = _deaf_grader()
    for name, x in [("noise.wav", rng.uniform(-1, 1, t.size)), ("hum.wav", 0.2 * np.sin(2 * np.pi * 60 * t))]:
        sf.write(str(tmp_path / name), x.astype(np.float32), 16000)
        report = grader.grade(tmp_path / name)
        assert report.error is not None and report.error.code == "no_speech", (name, report.error)
        d = report.to_dict()
        assert "grade" not in d and "feedback" not in d and "tips" not in d  # no coaching on it


def test_speech_is_graded_even_when_the_recogniser_hears_nothing():
    # the VAD's evidence alone keeps a real recording from being called noise
    report = _deaf_grader().grade(SAMPLES / "followup_phone.wav")
    assert report.ok


@pytest.mark.parametrize("exc,code", [
    (PermissionError(13, "Permission denied"), "unreadable"),
    (OSError(40, "Too many levels of symbolic links"), "symlink_loop"),
    (RuntimeError("boom"), "internal_error"),
    (MemoryError(), "internal_error"),
])
def test_any_failure_becomes_the_files_error_record(monkeypatch, tmp_path, exc, code):
    from vmgrade import pipeline

    def failing_load(*args, **kwargs):
        raise exc

    monkeypatch.setattr(pipeline, "load", failing_load)
    report = _deaf_grader().grade(tmp_path / "x.wav")
    assert report.error.code == code
    assert str(tmp_path / "x.wav") in report.error.message
    if code == "internal_error":
        assert type(exc).__name__ in report.error.message


def test_name_that_is_not_utf8_is_reported_as_text(tmp_path):
    import os

    raw = os.path.join(os.fsencode(tmp_path), b"bad\xff.wav")
    with open(raw, "wb") as f:
        f.write(b"not audio" * 20)
    report = _deaf_grader().grade(os.fsdecode(raw))
    assert report.error.code == "not_audio"
    assert report.file.endswith("bad\\xff.wav")
    report.to_json().encode("utf-8")  # a UTF-8 stream takes it


@pytest.mark.slow
def test_white_noise_behind_a_valid_header_is_no_speech(graded, tmp_path):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "noise.wav"
    sf.write(str(path), np.random.default_rng(1).uniform(-1, 1, 16000 * 20).astype(np.float32), 16000)
    assert graded(path).error.code == "no_speech"


@pytest.mark.slow
@pytest.mark.parametrize("sample", sorted(
    p.relative_to(SAMPLES).as_posix() for p in [*SAMPLES.glob("*.wav"), *SAMPLES.glob("*.flac"),
                                                 *(SAMPLES / "validity").glob("*.*")]
    if p.suffix in (".wav", ".flac")))
def test_every_bundled_sample_is_still_graded(graded, sample):
    report = graded(SAMPLES / sample)
    assert report.ok, report.error


def test_docs_list_every_error_code():
    import re

    from conftest import ROOT

    from vmgrade.errors import FILE_ERROR_CODES

    docs = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "vmgrade").rglob("*.py"))
    used = set(re.findall(r'\bcode(?:=| = |": )"([a-z_]+)"', source)) | set(FILE_ERROR_CODES)
    missing = sorted(code for code in used if f"`{code}`" not in docs)
    assert not missing, f"docs/errors.md does not list {missing}"
