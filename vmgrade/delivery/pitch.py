"""Pitch: F0 by YIN, its summary statistics and a drawing contour.

Functions take a mono signal (or an F0 track) and return numpy arrays; F0 is
in Hz with NaN where a frame is unvoiced, frames step by
:data:`vmgrade.vad.HOP_S` and are centred (frame ``i`` at ``i * HOP_S`` s).

* :func:`yin`: F0 per frame (de Cheveigné & Kawahara 2002) in plain numpy,
  with YIN's aperiodicity as the voicing decision; no numba, so no cold-compile
  cost (``librosa.yin`` cost 34 s cold here, ``librosa.pyin`` 11 s).
* :func:`drop_octave_errors`: the one outlier filter, used by both the
  statistics and the contour.
* :func:`pitch_stats`: median, SD in semitones, PVQ.
* :func:`pitch_track`: the contour the report keeps (``metrics.pitch_track``)
  so a saved report can chart pitch without its audio.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..vad import HOP_S, POWER_FLOOR, frame_count, sliding_frames
from ._round import _r

F0_MIN_HZ = 50.0  # low male voices and creak (65 Hz lost frames of the corpus's low male voice)
F0_MAX_HZ = 400.0  # above most speaking voices, below their second harmonics
YIN_TROUGH_THRESHOLD = 0.15  # de Cheveigné & Kawahara 2002 absolute threshold (0.1-0.15)
YIN_SAMPLE_RATE_HZ = 8000  # pitch is analysed at 8 kHz (F0 <= 400 Hz needs no more)
YIN_WINDOW_S = 0.025  # YIN integration window (at least one longest period)
YIN_BLOCK_FRAMES = 512  # frames analysed per batch of FFTs (memory, not results)
YIN_VOICING_THRESHOLD = (
    0.45  # aperiodicity above this = unvoiced (best F1 vs librosa.pyin voicing on the corpus)
)
F0_OUTLIER_ST = 12.0  # voiced frames further than an octave from the median are octave errors
MIN_VOICED_FRAMES = 10  # fewer voiced frames than this give no statistics

# The drawing contour (statistics use the raw frames).
PITCH_SMOOTH_FRAMES = 7  # 70 ms running median
PITCH_MIN_RUN_FRAMES = 5  # voiced runs under 50 ms are not drawn
PITCH_TRACK_STEP_S = 0.1  # 10 points per second: enough for a chart, small in the JSON


@dataclass(frozen=True)
class PitchTrack:
    """The drawing contour: ``f0_hz`` (None where unvoiced) at ``times_s`` (s)."""

    times_s: tuple[float, ...]
    f0_hz: tuple[float | None, ...]

    def to_dict(self) -> dict:
        return {"times_s": [_r(t, 2) for t in self.times_s], "f0_hz": [_r(f, 1) for f in self.f0_hz]}


def yin(
    y: np.ndarray,
    sr: int,
    *,
    fmin_hz: float = F0_MIN_HZ,
    fmax_hz: float = F0_MAX_HZ,
    hop_s: float = HOP_S,
    trough_threshold: float = YIN_TROUGH_THRESHOLD,
    voicing_threshold: float = YIN_VOICING_THRESHOLD,
    analysis_sr: int = YIN_SAMPLE_RATE_HZ,
    frame_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 per centred frame by YIN (de Cheveigné & Kawahara 2002), numpy only.

    Parameters
    ----------
    y : np.ndarray
        Mono signal.
    sr : int
        Sample rate, Hz.
    fmin_hz, fmax_hz : float
        Search range, Hz (default 50-400).
    hop_s : float
        Frame step, s.
    trough_threshold : float
        First dip of the cumulative-mean-normalised difference below this wins.
    voicing_threshold : float
        Frames whose best dip (aperiodicity) is above this are unvoiced.
    analysis_sr : int
        The signal is resampled (soxr) to this rate first, Hz (default 8000:
        ample for F0 <= 400 Hz with parabolic interpolation; 4x less work).
    frame_mask : np.ndarray of bool, optional
        Analyse only these frames (e.g. speech); the rest come back unvoiced.

    Returns
    -------
    f0_hz : np.ndarray
        F0 in Hz, NaN where unvoiced.
    aperiodicity : np.ndarray
        Value of the normalised difference at the chosen lag (0 = periodic).
    """
    n_out = frame_count(len(y), int(round(hop_s * sr)))
    if analysis_sr and analysis_sr < sr:
        import soxr

        y = soxr.resample(y.astype(np.float32), sr, analysis_sr, quality="HQ")
        sr = analysis_sr
    min_lag = max(2, int(math.floor(sr / fmax_hz)))
    max_lag = int(math.ceil(sr / fmin_hz))
    win = max(max_lag, int(round(YIN_WINDOW_S * sr)))
    frame_len = win + max_lag + 1
    hop = int(round(hop_s * sr))
    frames = sliding_frames(y, frame_len, hop)[:n_out]
    if len(frames) < n_out:
        frames = np.concatenate([frames, np.zeros((n_out - len(frames), frame_len), frames.dtype)])
    f0_out = np.full(n_out, np.nan, np.float32)
    ap_out = np.ones(n_out, np.float32)
    rows_idx = (
        np.arange(n_out) if frame_mask is None else np.flatnonzero(np.asarray(frame_mask, bool)[:n_out])
    )
    if rows_idx.size == 0:
        return f0_out, ap_out
    # a block of frames at a time: every frame is analysed on its own, and the
    # FFT buffers of a whole 45-s message at once took ~150 MB
    for i in range(0, rows_idx.size, YIN_BLOCK_FRAMES):
        block = rows_idx[i : i + YIN_BLOCK_FRAMES]
        f0_out[block], ap_out[block] = _yin_frames(
            frames[block].astype(np.float64), sr, win, min_lag, max_lag, trough_threshold, voicing_threshold,
            fmin_hz, fmax_hz)
    return f0_out, ap_out


def _yin_frames(frames: np.ndarray, sr: int, win: int, min_lag: int, max_lag: int, trough_threshold: float,
                voicing_threshold: float, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """YIN's F0 (Hz, NaN unvoiced) and aperiodicity for each row of ``frames`` (samples at ``sr``)."""
    n_fft = 1 << int(math.ceil(math.log2(frames.shape[1] + win)))
    a = np.fft.rfft(frames[:, :win], n_fft, axis=1)
    b = np.fft.rfft(frames, n_fft, axis=1)
    r = np.fft.irfft(np.conj(a) * b, n_fft, axis=1)[:, : max_lag + 2]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 2)
    e_tau = sq[:, lags + win] - sq[:, lags]
    d = np.maximum(e_tau[:, :1] + e_tau - 2.0 * r, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmndf = np.ones_like(d)
    cmndf[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
    seg = cmndf[:, min_lag - 1 : max_lag + 2]  # includes neighbours for local-minimum tests
    mid = seg[:, 1:-1]
    is_min = (mid < seg[:, :-2]) & (mid <= seg[:, 2:])
    below = is_min & (mid < trough_threshold)
    first = np.where(
        below.any(axis=1), below.argmax(axis=1), np.argmin(np.where(is_min, mid, np.inf), axis=1)
    )
    rows = np.arange(len(frames))
    best = mid[rows, first]
    no_min = ~is_min.any(axis=1)
    # parabolic interpolation around the chosen lag
    left, centre, right = seg[rows, first], seg[rows, first + 1], seg[rows, first + 2]
    denom = left - 2 * centre + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    lag = first + min_lag + np.clip(shift, -1, 1)
    energy = e_tau[:, 0]
    voiced = (best < voicing_threshold) & ~no_min & (energy > POWER_FLOOR * win)
    f0 = np.where(voiced, sr / lag, np.nan)
    f0[(f0 < fmin_hz * 0.97) | (f0 > fmax_hz * 1.03)] = np.nan
    return f0, np.where(no_min, 1.0, best)


def drop_octave_errors(f0_hz: np.ndarray, *, outlier_st: float = F0_OUTLIER_ST) -> np.ndarray:
    """``f0_hz`` with NaN where a voiced frame lies more than ``outlier_st``
    semitones from the median of the voiced frames (YIN's octave errors)."""
    voiced = f0_hz[np.isfinite(f0_hz)]
    if voiced.size == 0:
        return f0_hz.copy()
    median = float(np.median(voiced))
    with np.errstate(invalid="ignore"):
        keep = np.abs(12.0 * np.log2(f0_hz / median)) <= outlier_st
    return np.where(keep, f0_hz, np.nan)


def pitch_stats(
    f0_hz: np.ndarray, *, outlier_st: float = F0_OUTLIER_ST
) -> tuple[float | None, float | None, float | None]:
    """(median Hz, SD in semitones re median, PVQ = SD/mean Hz) of voiced frames.

    Octave errors are dropped first (:func:`drop_octave_errors`).  All None
    when fewer than ``MIN_VOICED_FRAMES`` frames are voiced.
    """
    if np.count_nonzero(np.isfinite(f0_hz)) < MIN_VOICED_FRAMES:
        return None, None, None
    kept = drop_octave_errors(f0_hz, outlier_st=outlier_st)
    v = kept[np.isfinite(kept)]
    med = float(np.median(v))
    st = 12.0 * np.log2(v / med)
    return med, float(np.std(st)), float(np.std(v) / np.mean(v))


def smooth_contour(f0_hz: np.ndarray, *, window: int = PITCH_SMOOTH_FRAMES,
                   min_run: int = PITCH_MIN_RUN_FRAMES) -> np.ndarray:
    """A pitch contour fit to look at, for drawing only (statistics use the raw track).

    A running median over ``window`` frames, kept where at least half the
    window is voiced: it removes YIN's single-frame octave jumps and isolated
    frames and bridges one- or two-frame dropouts; voiced runs still shorter
    than ``min_run`` frames are dropped.
    """
    f0 = np.asarray(f0_hz, np.float64)
    half = window // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(f0, half, constant_values=np.nan), window)
    voiced_share = np.isfinite(windows).mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
        smooth = np.nanmedian(windows, axis=1)
    smooth[voiced_share < 0.5] = np.nan
    voiced = np.isfinite(smooth)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start < min_run:
            smooth[start:end] = np.nan
    return smooth


def pitch_track(
    f0_hz: np.ndarray, *, hop_s: float = HOP_S, step_s: float = PITCH_TRACK_STEP_S
) -> PitchTrack:
    """The drawing contour of a YIN track: octave errors dropped, smoothed
    (:func:`smooth_contour`), then one frame every ``step_s`` s.

    Parameters
    ----------
    f0_hz : np.ndarray
        F0 per frame (Hz, NaN where unvoiced), as :func:`yin` returns it.
    hop_s : float
        Frame step of ``f0_hz``, s.
    step_s : float
        Spacing of the kept points, s.
    """
    contour = smooth_contour(drop_octave_errors(np.asarray(f0_hz)))
    step = max(1, int(round(step_s / hop_s)))
    idx = np.arange(step // 2, len(contour), step)
    return PitchTrack(
        times_s=tuple(float(i * hop_s) for i in idx),
        f0_hz=tuple(None if not np.isfinite(f) else float(f) for f in contour[idx]),
    )


def pitch_track_from_audio(
    samples: np.ndarray, sr: int, speech_intervals: Sequence[Sequence[float]]
) -> PitchTrack:
    """:func:`pitch_track` of :func:`yin` run on the speech frames of ``samples``.

    For reports saved before ``metrics.pitch_track`` existed, when their audio
    is at hand.  ``speech_intervals`` are (start_s, end_s) pairs (the report's
    ``metrics.speech_intervals``).
    """
    hop = int(round(HOP_S * sr))
    times = np.arange(frame_count(len(samples), hop)) * hop / sr
    mask = np.zeros(times.shape, bool)
    for start, end in speech_intervals:
        mask[np.searchsorted(times, start) : np.searchsorted(times, end)] = True
    f0, _ = yin(np.asarray(samples, np.float32), sr, frame_mask=mask)
    return pitch_track(f0)
