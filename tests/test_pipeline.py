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
