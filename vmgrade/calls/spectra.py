"""The speaker check's signal features in plain numpy: librosa's mel power spectrogram and YIN.

The same numbers as ``librosa.feature.melspectrogram`` (as Resemblyzer computes its input)
and ``librosa.yin`` with the speaker check's settings (``tests/test_spectra.py`` compares them
on real speech), without the import: any of librosa's spectral or pitch modules loads numba
and llvmlite, 1.0-1.7 s of a cold grade and 129 MB of every grading process (issue 30) for
two small functions. The delivery stage's own pitch tracker is numpy for the same reason
(:mod:`vmgrade.delivery.pitch`).
"""

from __future__ import annotations

import numpy as np

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
MEL_LINEAR_HZ_PER_MEL = 200.0 / 3
MEL_LOG_START_HZ = 1000.0
MEL_LOG_STEP = np.log(6.4) / 27.0
YIN_TROUGH_THRESHOLD = 0.1  # librosa.yin's default: the first trough below this is the period


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mels of frequencies in Hz."""
    hz = np.asanyarray(hz, dtype=float)
    mels = hz / MEL_LINEAR_HZ_PER_MEL
    log_start = MEL_LOG_START_HZ / MEL_LINEAR_HZ_PER_MEL
    high = hz >= MEL_LOG_START_HZ
    return np.where(high, log_start + np.log(np.maximum(hz, 1e-300) / MEL_LOG_START_HZ) / MEL_LOG_STEP, mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Frequencies in Hz of Slaney mels."""
    mels = np.asanyarray(mels, dtype=float)
    log_start = MEL_LOG_START_HZ / MEL_LINEAR_HZ_PER_MEL
    return np.where(mels >= log_start, MEL_LOG_START_HZ * np.exp(MEL_LOG_STEP * (mels - log_start)),
                    MEL_LINEAR_HZ_PER_MEL * mels)


def mel_filters(sample_rate_hz: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters from 0 Hz to Nyquist, each of unit area (Slaney).

    Returns shape (n_mels, n_fft // 2 + 1), float32.
    """
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate_hz)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2.0), n_mels + 2))
    widths_hz = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, fft_hz)
    weights = np.zeros((n_mels, len(fft_hz)), dtype=np.float32)
    for i in range(n_mels):
        rising, falling = -ramps[i] / widths_hz[i], ramps[i + 2] / widths_hz[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2 : n_mels + 2] - edges_hz[:n_mels]))[:, np.newaxis]
    return weights


def frames(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Overlapping frames of ``y`` as a view, shape (frame_length, n_frames)."""
    count = 1 + (len(y) - frame_length) // hop_length
    return np.lib.stride_tricks.as_strided(y, shape=(frame_length, count),
                                           strides=(y.strides[0], y.strides[0] * hop_length), writeable=False)


def mel_power(y: np.ndarray, sample_rate_hz: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """Mel power spectrogram, shape (n_frames, n_mels), float32: frames centred on ``i * hop_length``
    (zero-padded ends), a periodic Hann window, power 2, :func:`mel_filters`."""
    y = np.asarray(y)
    padded = np.pad(y, n_fft // 2, mode="constant")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spectrum = np.fft.rfft(window[:, np.newaxis] * frames(padded, n_fft, hop_length), axis=0)
    spectrum = spectrum.astype(np.complex64 if y.dtype == np.float32 else np.complex128)
    power = np.abs(spectrum) ** 2
    return (mel_filters(sample_rate_hz, n_fft, n_mels) @ power).astype(np.float32).T


def yin(y: np.ndarray, fmin_hz: float, fmax_hz: float, sample_rate_hz: int, frame_length: int,
        hop_length: int, trough_threshold: float = YIN_TROUGH_THRESHOLD) -> np.ndarray:
    """F0 per frame in Hz by YIN (de Cheveigné & Kawahara 2002), frames centred on ``i * hop_length``.

    The cumulative mean normalised difference of each frame; its first trough under
    ``trough_threshold`` (else its lowest point) is the period, refined by a parabola through
    its neighbours. Every frame gets a value (no voicing decision).
    """
    y = np.pad(np.asarray(y), frame_length // 2, mode="constant")
    framed = frames(y, frame_length, hop_length)
    min_period = int(np.floor(sample_rate_hz / fmax_hz))
    max_period = min(int(np.ceil(sample_rate_hz / fmin_hz)), frame_length - 1)
    cmnd = _cumulative_mean_normalized_difference(framed, min_period, max_period)
    shifts = _parabola_shifts(cmnd)
    trough = np.zeros_like(cmnd, dtype=bool)
    trough[0] = cmnd[0] < cmnd[1]
    trough[1:-1] = (cmnd[1:-1] < cmnd[:-2]) & (cmnd[1:-1] <= cmnd[2:])
    trough[-1] = cmnd[-1] < cmnd[-2]
    below = trough & (cmnd < trough_threshold)
    period = np.where(below.any(axis=0), np.argmax(below, axis=0), np.argmin(cmnd, axis=0))
    refined = min_period + period + np.take_along_axis(shifts, period[np.newaxis], axis=0)[0]
    return sample_rate_hz / refined


def _cumulative_mean_normalized_difference(framed: np.ndarray, min_period: int,
                                           max_period: int) -> np.ndarray:
    """d'(tau) for tau in [min_period, max_period], shape (periods, n_frames)."""
    n_fft = _next_fast_len(2 * framed.shape[0] - 1)
    spectrum = np.fft.rfft(framed, n=n_fft, axis=0)
    autocorr = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, axis=0)[: max_period + 1]
    energy = np.cumsum(np.square(framed), axis=0)
    diff = np.empty((max_period + 1, framed.shape[1]), dtype=energy.dtype)
    diff[0] = 0
    # d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2
    diff[1:] = 2 * (autocorr[0:1] - autocorr[1 : max_period + 1]) - energy[:max_period]
    lags = np.arange(1, max_period + 1)[:, np.newaxis]
    mean = np.cumsum(diff[1:], axis=0) / lags
    denominator = mean[min_period - 1 : max_period]
    return diff[min_period : max_period + 1] / (denominator + np.finfo(denominator.dtype).tiny)


def _parabola_shifts(x: np.ndarray) -> np.ndarray:
    """Per row, the offset (-1..1) of the optimum of a parabola through it and its neighbours;
    0 at the ends and where the optimum falls outside them."""
    shifts = np.zeros_like(x)
    a = x[2:] + x[:-2] - 2 * x[1:-1]
    b = (x[2:] - x[:-2]) / 2
    inside = np.abs(b) < np.abs(a)
    shifts[1:-1] = np.where(inside, -b / np.where(inside, a, 1), 0)
    return shifts


def _next_fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c 7^d 11^e >= n (scipy.fft.next_fast_len for real input)."""
    from scipy.fft import next_fast_len

    return next_fast_len(n, real=True)
