"""The speaker check's numpy features against librosa's and scipy's own, on the bundled speech."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from vmgrade.audio import load, resample
from vmgrade.calls import spectra
from vmgrade.calls.speakers import (
    CHANNEL_BAND_HZ,
    CHANNEL_ORDER,
    F0_RANGE_HZ,
    FRAME_S,
    MEL_BANDS,
    MEL_WINDOW_SAMPLES,
    RATE_HZ,
    YIN_FRAME,
    _phone_band,
    phone_band_response,
)

librosa = pytest.importorskip("librosa")
HOP = int(RATE_HZ * FRAME_S)


def _speech(name: str) -> np.ndarray:
    audio = load(ROOT / "samples" / name)
    y = np.asarray(audio.samples, dtype=np.float32)
    return y if audio.sample_rate == RATE_HZ else resample(y, audio.sample_rate, RATE_HZ).astype(np.float32)


@pytest.mark.parametrize("name", ["before_practice.wav", "strong_wideband.flac"])
def test_the_mel_spectrogram_is_librosas(name):
    y = _speech(name)
    for signal in (y, y.astype(np.float64), y[:1234]):
        ref = librosa.feature.melspectrogram(y=signal, sr=RATE_HZ, n_fft=MEL_WINDOW_SAMPLES, hop_length=HOP,
                                             n_mels=MEL_BANDS).astype(np.float32).T
        ours = spectra.mel_power(signal, RATE_HZ, MEL_WINDOW_SAMPLES, HOP, MEL_BANDS)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9 * ref.max())


def test_the_mel_filters_are_librosas():
    np.testing.assert_allclose(spectra.mel_filters(RATE_HZ, MEL_WINDOW_SAMPLES, MEL_BANDS),
                               librosa.filters.mel(sr=RATE_HZ, n_fft=MEL_WINDOW_SAMPLES, n_mels=MEL_BANDS),
                               rtol=1e-6, atol=1e-9)
    hz = np.array([0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(spectra.hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-9)
    np.testing.assert_allclose(spectra.mel_to_hz(spectra.hz_to_mel(hz)), hz, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("rate_hz", "band_hz", "order"), [
    (RATE_HZ, CHANNEL_BAND_HZ, CHANNEL_ORDER), (8000, (300.0, 3400.0), 4), (16000, (80.0, 7000.0), 3)])
def test_the_phone_band_is_scipys_butterworth(rate_hz, band_hz, order):
    signal = pytest.importorskip("scipy.signal")
    sos = signal.butter(order, band_hz, btype="bandpass", fs=rate_hz, output="sos")
    freqs_hz, ref = signal.sosfreqz(sos, worN=2048, fs=rate_hz)
    ours = phone_band_response(freqs_hz, rate_hz, band_hz, order)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    assert ours[0] == 0 and abs(ours[np.searchsorted(freqs_hz, np.sqrt(band_hz[0] * band_hz[1]))]) > 0.99


@pytest.mark.parametrize("name", ["before_practice.wav", "call_export_mulaw.wav"])
def test_the_phone_band_filters_as_scipy_does_from_rest(name):
    signal = pytest.importorskip("scipy.signal")
    sos = signal.butter(CHANNEL_ORDER, CHANNEL_BAND_HZ, btype="bandpass", fs=RATE_HZ, output="sos")
    y = _speech(name)
    for piece in (y, y[:1234], y[5000:5000 + 16001]):
        ours = _phone_band(piece)
        assert ours.shape == piece.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, signal.sosfilt(sos, piece), rtol=0, atol=1e-5 * np.abs(piece).max())


@pytest.mark.parametrize("name", ["before_practice.wav", "strong_wideband.flac"])
def test_yin_is_librosas_but_for_float_rounding(name):
    y = _speech(name)
    frames = agree = 0
    for start in range(0, len(y) - 3 * RATE_HZ, RATE_HZ):
        run = y[start : start + 3 * RATE_HZ]
        ref = librosa.yin(run, fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=RATE_HZ, frame_length=YIN_FRAME,
                          hop_length=HOP)
        ours = spectra.yin(run, F0_RANGE_HZ[0], F0_RANGE_HZ[1], RATE_HZ, YIN_FRAME, HOP)
        assert ours.shape == ref.shape
        frames += len(ref)
        agree += int(np.sum(np.abs(ours - ref) < 0.01))
        # what the speaker check keeps of it: a run's median in-range F0
        keep = (ref > F0_RANGE_HZ[0] * 1.05) & (ref < F0_RANGE_HZ[1] * 0.95)
        if keep.sum() > 20:
            ours_keep = (ours > F0_RANGE_HZ[0] * 1.05) & (ours < F0_RANGE_HZ[1] * 0.95)
            # a flipped frame can move the median of a two-cluster run a little; the check's own
            # rule needs half an octave
            assert abs(np.log2(np.median(ours[ours_keep]) / np.median(ref[keep]))) < 0.05
    # librosa's numba kernels round differently: a frame whose trough sits on the threshold may flip
    assert agree >= 0.998 * frames, (agree, frames)


def test_yin_finds_a_pure_tone():
    t = np.arange(RATE_HZ) / RATE_HZ
    for f0 in (90.0, 155.0, 310.0):
        tone = np.sin(2 * np.pi * f0 * t).astype(np.float32)
        track = spectra.yin(tone, *F0_RANGE_HZ, RATE_HZ, YIN_FRAME, HOP)
        assert np.median(track[5:-5]) == pytest.approx(f0, rel=0.01)  # YIN's own bias, as librosa's
