"""Fitting a recording into one Whisper window: synthesised audio with known speech times."""

from __future__ import annotations

import numpy as np
import pytest

from vmgrade.asr.windows import EDGE_PAD_S, FIT_S, MAX_SPEEDUP, fit_to_window

SR = 16000


def bursts(duration_s: float, spans: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Silence (a -70 dBFS noise bed) with speech-band "syllables" over ``spans`` (s)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 10 ** (-70 / 20), int(duration_s * SR)).astype(np.float32)
    t = np.arange(len(y)) / SR
    # 4 syllables a second, harmonics of 140 Hz: energy in the VAD's 100-4000 Hz band
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    for a, b in spans:
        lo, hi = int(a * SR), int(b * SR)
        y[lo:hi] += (0.1 * envelope[lo:hi] * voice[lo:hi]).astype(np.float32)
    return y


def onset_s(y: np.ndarray, after_s: float = 0.0) -> float:
    """First time (s) after ``after_s`` at which |y| exceeds a level no noise bed reaches."""
    start = int(after_s * SR)
    return (start + int(np.argmax(np.abs(y[start:]) > 0.01))) / SR


def test_a_recording_of_one_window_is_not_touched():
    y = bursts(29.9, [(0.1, 29.8)])
    fitted = fit_to_window(y, SR)
    assert fitted.offset_s == 0.0 and fitted.speedup == 1.0
    assert np.array_equal(fitted.samples, y)


def test_silent_edges_are_trimmed_when_that_saves_a_window():
    y = bursts(32.0, [(1.5, 14.0), (14.6, 29.0)])
    fitted = fit_to_window(y, SR)
    assert fitted.speedup == 1.0
    assert fitted.offset_s == pytest.approx(1.5 - EDGE_PAD_S, abs=0.03)
    assert len(fitted.samples) / SR == pytest.approx(29.0 - 1.5 + 2 * EDGE_PAD_S, abs=0.05)
    # the same samples, shifted: no resampling when trimming is enough
    lo = int(round(fitted.offset_s * SR))
    assert np.array_equal(fitted.samples, y[lo : lo + len(fitted.samples)])


def test_speech_just_over_a_window_is_played_faster_and_maps_back():
    # speech from 0.5 s to 30.8 s: 30.9 s with the edges, 4.7% over FIT_S
    marker_s = 20.0
    y = bursts(31.5, [(0.5, 12.0), (12.5, 19.5), (marker_s, 30.8)])
    fitted = fit_to_window(y, SR)
    expected = (30.8 - 0.5 + 2 * EDGE_PAD_S) / FIT_S
    assert fitted.speedup == pytest.approx(expected, rel=2e-3)
    assert 1.0 < fitted.speedup <= MAX_SPEEDUP
    assert len(fitted.samples) / SR == pytest.approx(FIT_S, abs=0.02)
    assert fitted.offset_s == pytest.approx(0.5 - EDGE_PAD_S, abs=0.03)
    # the speech after the 0.5-s gap begins, in the fitted samples, where the map says
    heard_s = onset_s(fitted.samples, after_s=(19.6 - fitted.offset_s) / fitted.speedup)
    assert fitted.recording_s(heard_s) == pytest.approx(marker_s, abs=0.02)
    # played faster, as a tape is: the 140-Hz fundamental comes out that much higher
    spectrum = np.abs(np.fft.rfft(fitted.samples[: 8 * SR]))
    peak_hz = np.argmax(spectrum) * SR / (8 * SR)
    assert peak_hz == pytest.approx(140 * fitted.speedup, abs=1.0)


def test_speech_far_over_a_window_is_not_touched():
    y = bursts(34.0, [(0.3, 33.5)])  # would need 14% faster
    fitted = fit_to_window(y, SR)
    assert fitted.offset_s == 0.0 and fitted.speedup == 1.0
    assert np.array_equal(fitted.samples, y)


def test_a_long_recording_without_speech_is_not_touched():
    y = np.zeros(31 * SR, np.float32)
    fitted = fit_to_window(y, SR)
    assert fitted.offset_s == 0.0 and fitted.speedup == 1.0 and len(fitted.samples) == len(y)
