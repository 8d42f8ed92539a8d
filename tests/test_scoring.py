"""Rubric loading and scoring on the bundled samples (real Whisper, real librosa)."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLES

from vmgrade import Context, Grader
from vmgrade.errors import RubricError
from vmgrade.scoring import DIMENSIONS, band_score, default_rubric_path, load_rubric


def test_packaged_rubric_cites_a_source_for_every_threshold():
    rubric = load_rubric()
    assert set(rubric.weights) == set(DIMENSIONS)
    for name in rubric.thresholds:
        assert len(rubric.sources.get(name, "")) > 10, f"threshold {name} has no source"
    assert rubric.letter(95) == "A" and rubric.letter(10) == "F"


def test_band_score_shape():
    ideal, ok, flag = (140, 160), (130, 175), (120, 180)
    assert band_score(150, ideal, ok, flag) == 100
    assert band_score(175, ideal, ok, flag) == 75
    assert band_score(180, ideal, ok, flag) == 30
    assert band_score(250, ideal, ok, flag) == 0
    assert band_score(125, ideal, ok, flag) < band_score(135, ideal, ok, flag) < 100


def test_bad_rubric_files(tmp_path):
    with pytest.raises(RubricError, match="not found"):
        load_rubric(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(RubricError, match="not a valid TOML"):
        load_rubric(bad)
    text = default_rubric_path().read_text()
    partial = tmp_path / "partial.toml"
    partial.write_text(re.sub(r"(?m)^filler_bad_per_min.*$", "", text))
    with pytest.raises(RubricError, match="filler_bad_per_min"):
        load_rubric(partial)


@pytest.mark.parametrize("old, new", [
    ("weight = 10", "weight = nan"),
    ("weight = 10", "weight = inf"),
    ("weight = 10", "weight = 1e308"),
    ("one_clear_ask = 35", "one_clear_ask = -5"),
    ("B = 80", "B = 180"),
    ("rate_ideal_min_wpm = { value = 140.0", "rate_ideal_min_wpm = { value = nan"),
])
def test_rubric_numbers_must_be_finite_and_in_range(tmp_path, old, new):
    """NaN, infinite or absurd rubric numbers are refused with the file named (a 1e308 weight once gave
    a NaN score and invalid JSON)."""
    text = default_rubric_path().read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(RubricError, match="out of range") as caught:
        load_rubric(bad)
    assert str(bad) in str(caught.value) and caught.value.code == "rubric_invalid"


@pytest.fixture(scope="module")
def sample_grades(graded):
    names = ["strong_wideband.flac", "after_practice.wav", "followup_phone.wav",
             "before_practice.wav", "rambling_phone.wav"]
    return {n: graded(SAMPLES / n) for n in names}


def test_samples_rank_as_a_trainer_would(sample_grades):
    s = {n: r.grade.score for n, r in sample_grades.items()}
    order = ["strong_wideband.flac", "followup_phone.wav", "before_practice.wav", "rambling_phone.wav"]
    assert [s[n] for n in order] == sorted((s[n] for n in order), reverse=True), s
    assert s["after_practice.wav"] > s["before_practice.wav"] + 15  # the coached version is clearly better
    assert sample_grades["strong_wideband.flac"].grade.letter in ("A", "B")
    assert sample_grades["rambling_phone.wav"].grade.letter in ("D", "F")


def test_feedback_is_specific_and_timestamped(sample_grades):
    rambling = sample_grades["rambling_phone.wav"].grade
    codes = {f.code for f in rambling.findings}
    assert {"weak_phrase", "fillers", "number_once"} <= codes
    assert {"no_specific_reason", "vague_reason"} & codes  # "just checking in" is no reason
    weak = next(f for f in rambling.findings if f.code == "weak_phrase")
    assert "checking in" in weak.message and weak.start_s is not None and weak.end_s > weak.start_s
    tips = rambling.tips
    assert len(tips) == 3 and tips[0].gain >= tips[1].gain >= tips[2].gain > 0
    before = sample_grades["before_practice.wav"].grade
    once = next(f for f in before.findings if f.code == "number_once")
    assert re.search(r"once, at \d\.\d digits/s: say it twice, slower", once.message)
    strong = sample_grades["strong_wideband.flac"].grade
    assert any("number" in s and "times" in s for s in strong.strengths)


def test_wrong_callback_number_is_top_severity_and_caps_the_score(graded):
    report = graded(SAMPLES / "strong_wideband.flac", Context(callback_number="415-555-0199"))
    top = report.grade.findings[0]
    assert top.code == "number_mismatch" and top.severity == "critical"
    assert "415-555-0198" in top.message and "415-555-0199" in top.message
    assert report.grade.score <= load_rubric().t("number_mismatch_max_score")
    right = graded(SAMPLES / "strong_wideband.flac", Context(callback_number="415-555-0198"))
    assert "number_mismatch" not in {f.code for f in right.grade.findings}


def test_rubric_override_changes_the_score(tmp_path, transcriber):
    text = default_rubric_path().read_text()
    # all the weight on audio quality: a clean recording then scores its quality
    for dim in DIMENSIONS:
        weight = 100 if dim == "audio_quality" else 0
        text = re.sub(rf"(\[dimensions\.{dim}\]\nlabel = [^\n]*\nweight = )\d+", rf"\g<1>{weight}", text)
    path = tmp_path / "quality_only.toml"
    path.write_text(text)
    from vmgrade.pipeline import GradeOptions

    grader = Grader(GradeOptions(rubric=str(path)), transcriber=transcriber)
    report = grader.grade(SAMPLES / "rambling_phone.wav")
    quality = next(d for d in report.grade.dimensions if d.key == "audio_quality")
    assert report.grade.score == pytest.approx(quality.score)
    assert report.to_dict()["rubric"]["path"] == str(path)


# -- the rubric owns the label cut-offs; missing measurements are left out --------------------------


def _synthetic_grade_inputs():
    """Delivery metrics of a noisy 150 Hz tone and content of a handmade transcript (no Whisper)."""
    import numpy as np

    from vmgrade.asr.transcribe import Segment, Transcript, Word
    from vmgrade.audio import Audio, SourceInfo
    from vmgrade.content import analyze
    from vmgrade.delivery import measure

    sr = 16000
    t = np.arange(6 * sr) / sr
    y = (0.2 * np.sin(2 * np.pi * 150 * t * (1 + 0.05 * np.sin(2 * np.pi * 0.5 * t)))
         * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    y[: sr // 2] = 0.0
    y += np.random.default_rng(0).standard_normal(y.size).astype(np.float32) * 1e-3
    src = SourceInfo("synthetic.wav", "WAV", "FLOAT", sr, 1, len(y) / sr, 0, "soundfile")
    text = "Hi Dana, this is Mike Chen with Northwind Analytics. Call me back at 415-555-0198."
    words, start = [], 0.5
    for token in text.split():
        words.append(Word(token, start, start + 0.3, 0.9))
        start += 0.35
    tr = Transcript(text, "en", (Segment(0.0, start, text, -0.2, 0.01, 1.2, tuple(words)),), 0.01,
                    "openai-whisper", "base")
    metrics = measure(Audio(samples=y, source=src), tr)
    return metrics, analyze(tr, metrics)


def test_label_thresholds_default_to_the_packaged_rubric(tmp_path):
    from vmgrade.delivery import LabelThresholds
    from vmgrade.scoring import LATER_THRESHOLDS, label_thresholds

    packaged = label_thresholds(load_rubric())
    assert packaged == LabelThresholds() == label_thresholds()
    # a rubric written before the later thresholds takes them from the packaged file
    text = default_rubric_path().read_text()
    for name in LATER_THRESHOLDS:
        text = re.sub(rf"(?m)^{name} = .*$", "", text)
    text = re.sub(r"(?m)^long_pause_s = \{ value = [\d.]+", "long_pause_s = { value = 0.9", text)
    older = tmp_path / "older.toml"
    older.write_text(text)
    loaded = load_rubric(older)
    assert not set(LATER_THRESHOLDS) & set(loaded.thresholds)
    assert label_thresholds(loaded) == LabelThresholds(long_pause_s=0.9)


def test_a_missing_measurement_is_left_out_of_its_dimension():
    from dataclasses import replace

    from vmgrade.scoring import UNKNOWN_DIMENSION_SCORE, score

    metrics, content = _synthetic_grade_inputs()
    rubric = load_rubric()
    points = rubric.points["audio_quality"]
    share = rubric.weights["audio_quality"] / sum(rubric.weights.values())

    def dimension(grade, key):
        return next(d for d in grade.dimensions if d.key == key)

    # no SNR and clipped: the dimension scores its two measured checks, not SNR's full marks
    clipped = replace(metrics, snr_db=None, clipping_ratio=0.01, level_too_high=False, level_too_low=False)
    grade = score(clipped, content, rubric)
    measured = points["no_clipping"] + points["level"]
    assert dimension(grade, "audio_quality").score == pytest.approx(100 * points["level"] / measured)
    clipping = next(f for f in grade.findings if f.code == "clipping")
    assert clipping.gain == pytest.approx(100 * points["no_clipping"] / measured * share)
    assert "noisy" not in {f.code for f in grade.findings}
    # nothing measurable in a dimension: neither credit nor penalty
    silent_voice = replace(metrics, f0_sd_st=None, word_loudness_sd_db=None)
    assert dimension(score(silent_voice, content, rubric), "voice").score == UNKNOWN_DIMENSION_SCORE
    # with every measurement present nothing is rescaled
    full = score(replace(metrics, snr_db=30.0, clipping_ratio=0.0, level_too_high=False, level_too_low=False),
                 content, rubric)
    assert dimension(full, "audio_quality").score == pytest.approx(100.0)
