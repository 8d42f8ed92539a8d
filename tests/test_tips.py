"""Every tip's numbers come from the rubric and never contradict themselves.

Each template is rendered at its rubric line, a hair past it and a little
past it: the measurement a tip quotes must read as past the line it quotes
("went by at 2.5 digits/s: slow to about 2.5" is the bug this guards).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from vmgrade.asr.transcribe import Segment, Transcript, Word
from vmgrade.audio import Audio, SourceInfo
from vmgrade.content import analyze
from vmgrade.delivery import measure
from vmgrade.scoring import load_rubric, score
from vmgrade.scoring.grade import past

RUBRIC = load_rubric()
T = RUBRIC.t
# how far past the line each case is pushed: a rounding hair, then a visible step
OFFSETS = (1e-6, 0.004, 0.04, 0.4)


def _numbers(message: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\d:])-?\d+(?:\.\d+)?(?![\d:])", message)]


@pytest.fixture(scope="module")
def base():
    """Real delivery metrics of a synthetic voiced tone with timed words (librosa, no model)."""
    sr = 16000
    t = np.arange(int(sr * 6.0)) / sr
    y = (0.2 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 0.5 * t)) * t)
         * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    y += np.random.default_rng(0).standard_normal(y.size).astype(np.float32) * 1e-3
    src = SourceInfo("synthetic.wav", "WAV", "FLOAT", sr, 1, len(y) / sr, 0, "soundfile")
    text = "Hi Dana, this is Mike Chen with Northwind Analytics. Call me back at 415-555-0198."
    words, start = [], 0.5
    for token in text.split():
        words.append(Word(" " + token, start, start + 0.3, 0.9))
        start += 0.35
    tr = Transcript(text, "en", (Segment(0.0, start, text, -0.2, 0.01, 1.2, tuple(words)),), 0.01,
                    "openai-whisper", "base")
    metrics = measure(Audio(samples=y, source=src), tr)
    return metrics, analyze(tr, metrics)


def _finding(metrics, content, code):
    found = [f for f in score(metrics, content, RUBRIC).findings if f.code == code]
    assert found, f"no {code} finding"
    return found[0].message


@pytest.mark.parametrize("offset", OFFSETS)
def test_delivery_tips_quote_a_value_past_the_line(base, offset):
    metrics, content = base
    checks = [
        # (metrics change, finding code, the line, which side the value must read)
        (dict(message_length_s=T("length_ideal_max_s") + offset), "too_long", T("length_ideal_max_s"), ">"),
        (dict(message_length_s=T("length_ideal_min_s") - offset), "too_short", T("length_ideal_min_s"), "<"),
        (dict(rate_wpm=T("rate_ideal_max_wpm") + offset), "too_fast", T("rate_ideal_max_wpm"), ">"),
        (dict(rate_wpm=T("rate_ideal_min_wpm") - offset), "too_slow", T("rate_ideal_min_wpm"), "<"),
        (dict(f0_sd_st=T("lively_sd_st") - offset), "monotone", T("lively_sd_st"), "<"),
        (dict(word_loudness_sd_db=T("word_loudness_sd_min_db") - offset), "flat_loudness",
         T("word_loudness_sd_min_db"), "<"),
        (dict(snr_db=T("snr_good_db") - offset), "noisy", T("snr_good_db"), "<"),
        (dict(leading_silence_s=T("leading_silence_max_s") + offset), "late_start",
         T("leading_silence_max_s"), ">"),
        (dict(clipping_ratio=T("clipping_max_ratio") * (1 + offset)), "clipping",
         100 * T("clipping_max_ratio"), ">"),
        (dict(loudness_dbfs=T("level_low_dbfs") - offset, level_too_low=True), "level_too_low",
         T("level_low_dbfs"), "<"),
    ]
    for change, code, line, side in checks:
        message = _finding(replace(metrics, **change), content, code)
        shown = _numbers(message)[0]
        assert (shown > line) if side == ">" else (shown < line), f"{code} at {change}: {message}"
        if code in ("too_long", "too_short", "too_fast", "too_slow"):  # the range it quotes
            lo, hi = _numbers(message)[1:3]
            assert (shown > hi) if side == ">" else (shown < lo), message


@pytest.mark.parametrize("offset", OFFSETS)
def test_number_and_opening_tips_quote_a_value_past_the_line(base, offset):
    metrics, content = base
    max_dps = T("number_max_digits_per_s")
    (mention,) = content.callback.mentions
    fast = replace(content, callback=replace(content.callback, mentions=(
        replace(mention, digits_per_s=max_dps + offset),)))
    message = _finding(metrics, fast, "number_fast")
    assert _numbers(message)[0] > _numbers(message)[1] == max_dps, message
    # said once, slowly: the tip asks for a second saying, not for "slower"
    slow = replace(content, callback=replace(content.callback, mentions=(
        replace(mention, digits_per_s=max_dps - offset),)))
    assert "slower" not in _finding(metrics, slow, "number_once")
    # a name said past the opening window reads as past it
    window = T("opening_window_s")
    ident = content.identity
    start = metrics.speech_start_s
    late = replace(content, identity=replace(ident, name_mentions=(
        replace(ident.name_mentions[0], start_s=start + window + offset),)))
    message = _finding(metrics, late, "late_caller_name")
    assert _numbers(message)[0] > window == _numbers(message)[-1], message


@pytest.mark.parametrize("value,limit,decimals,shown", [
    (2.54, 2.5, 1, "2.6"), (2.5000001, 2.5, 1, "2.6"), (2.46, 2.5, 1, "2.4"), (2.7, 2.5, 1, "2.7"),
    (160.4, 160, 0, "161"), (19.7, 20, 0, "19"), (-35.2, -35, 0, "-36"), (2.5, 2.5, 1, "2.5"),
])
def test_past_rounds_away_from_the_line_only_when_it_must(value, limit, decimals, shown):
    assert past(value, limit, decimals) == shown
