"""Level and recording quality: RMS, clipping, SNR, bandwidth.

Levels are dB re full scale (1.0): ``rms_dbfs`` of a full-scale sine is
-3 dBFS.  Whether a level is too low or too high for the report is the
rubric's call (:class:`vmgrade.delivery.metrics.LabelThresholds`); this module
only measures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..vad import POWER_FLOOR

# Clipping on the *resampled* 16 kHz signal: soxr's band-limiting turns a flat
# clipped plateau into ripple of about +-2% around full scale, so samples
# within 2% of full scale (|x| >= 0.98, -0.18 dBFS) count as clipped.  A
# recording normalised to a peak >= 0.98 without clipping also registers a few
# samples; the ratio, not its presence, carries the signal.
CLIP_LEVEL = 0.98
# Energy above this edge, re total, decides narrowband.  Not 3.8 kHz: 8 kHz
# telephone audio resampled by soxr keeps real (mu-law noise) energy up to
# ~3.95 kHz, which put the corpus's phone copies at -31..-51 dB above 3.8 kHz;
# above 4.1 kHz they are all below -50 dB while wideband clips are -7..-25 dB.
NARROWBAND_EDGE_HZ = 4100.0
NARROWBAND_MAX_HZ = 4000.0  # source sample rate <= 2x this is narrowband by construction
HF_ENERGY_NEGLIGIBLE_DB = -35.0  # energy above the edge this far below the total = narrowband
BANDWIDTH_FLOOR_DB = -60.0  # bandwidth_hz: highest frequency within this of the spectral peak
SNR_CAP_DB = 100.0  # digital silence would give an infinite SNR
MIN_NOISE_FRAMES = 20  # fewer non-speech frames than this: noise from a low percentile
NOISE_PERCENTILE = 5.0
# A noise floor below this (frame mean-square, dBFS) is digital silence, not noise: a phone export
# gated between words has none, and an SNR of 85-97 dB from it measures the gate, not the room.
NO_NOISE_DBFS = -80.0


def rms_dbfs(y: np.ndarray) -> float | None:
    """RMS level re full scale (1.0), dBFS; None for an empty array."""
    if y.size == 0:
        return None
    return 10.0 * math.log10(max(float(np.mean(np.square(y, dtype=np.float64))), POWER_FLOOR))


def span_levels_dbfs(
    y: np.ndarray, sr: int, spans: Sequence[tuple[float, float]], *, min_length_s: float = 0.03
) -> np.ndarray:
    """RMS dBFS of each span (s) via a cumulative sum; spans shorter than ``min_length_s`` skipped."""
    cs = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])
    out = []
    for s, e in spans:
        a, b = int(max(0, s) * sr), int(min(len(y) / sr, e) * sr)
        if b - a >= min_length_s * sr:
            out.append(10.0 * math.log10(max((cs[b] - cs[a]) / (b - a), POWER_FLOOR)))
    return np.asarray(out)


def clipping_ratio(y: np.ndarray, *, clip_level: float = CLIP_LEVEL) -> float:
    """Share of samples with ``|y| >= clip_level`` (see ``CLIP_LEVEL`` on resampled audio)."""
    if y.size == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(y) >= clip_level)) / y.size


def noise_floor_dbfs(frame_power: np.ndarray, speech_mask: np.ndarray) -> float:
    """The noise floor :func:`snr_db` uses, dBFS (frame mean-square power of non-speech frames)."""
    if frame_power.size == 0:
        return 10.0 * math.log10(POWER_FLOOR)
    noise_frames = frame_power[~speech_mask]
    if noise_frames.size >= MIN_NOISE_FRAMES:
        noise = float(np.median(noise_frames))
    else:
        noise = float(np.percentile(frame_power, NOISE_PERCENTILE))
    return 10.0 * math.log10(max(noise, POWER_FLOOR))


def snr_db(frame_power: np.ndarray, speech_mask: np.ndarray, *, cap_db: float = SNR_CAP_DB) -> float | None:
    """SNR (dB) from frame mean-square power: mean speech-frame power less the
    noise floor, over the noise floor.  Noise is the median of non-speech
    frames, or the 5th percentile of all frames when fewer than 20 are
    non-speech.  None when there is no speech frame."""
    if frame_power.size == 0 or not speech_mask.any():
        return None
    noise_frames = frame_power[~speech_mask]
    if noise_frames.size >= MIN_NOISE_FRAMES:
        noise = float(np.median(noise_frames))
    else:
        noise = float(np.percentile(frame_power, NOISE_PERCENTILE))
    noise = max(noise, POWER_FLOOR)
    signal = max(float(np.mean(frame_power[speech_mask])) - noise, POWER_FLOOR)
    return float(min(cap_db, 10.0 * math.log10(signal / noise)))


def bandwidth(
    power: np.ndarray,
    freqs_hz: np.ndarray,
    speech_mask: np.ndarray,
    source_sample_rate_hz: int | None,
    *,
    edge_hz: float = NARROWBAND_EDGE_HZ,
    negligible_db: float = HF_ENERGY_NEGLIGIBLE_DB,
    floor_db: float = BANDWIDTH_FLOOR_DB,
) -> tuple[str, float, float | None]:
    """("narrowband"|"wideband", bandwidth_hz, hf_energy_db).

    The long-term spectrum over speech frames (all frames if none) gives
    ``hf_energy_db`` (energy above ``edge_hz`` re total); the per-bin median
    spectrum gives ``bandwidth_hz`` (highest frequency within ``floor_db`` of
    its peak, after 250 Hz smoothing).  Narrowband when the source rate is <= 8 kHz or
    ``hf_energy_db < negligible_db``.
    """
    frames = power[speech_mask] if speech_mask.any() else power
    nyquist = float(freqs_hz[-1]) if freqs_hz.size else 0.0
    if frames.size == 0:
        return (
            (
                "narrowband"
                if source_sample_rate_hz and source_sample_rate_hz <= 2 * NARROWBAND_MAX_HZ
                else "wideband"
            ),
            0.0,
            None,
        )
    ltas = frames.mean(axis=0).astype(np.float64)
    total = float(ltas.sum())
    hf = float(ltas[freqs_hz > edge_hz].sum())
    hf_db = 10.0 * math.log10(max(hf, POWER_FLOOR) / max(total, POWER_FLOOR))
    bin_hz = freqs_hz[1] - freqs_hz[0] if freqs_hz.size > 1 else 1.0
    k = max(1, int(round(250.0 / bin_hz)))
    # median over frames: edge frames and clicks splatter energy over all frequencies
    smooth = np.convolve(np.median(frames, axis=0), np.ones(k) / k, mode="same")
    level = 10.0 * np.log10(np.maximum(smooth, POWER_FLOOR))
    above = np.flatnonzero(level >= level.max() + floor_db)
    bw_hz = float(min(freqs_hz[above[-1]], nyquist)) if above.size else 0.0
    if source_sample_rate_hz:
        bw_hz = min(bw_hz, source_sample_rate_hz / 2.0)
    narrow = (
        source_sample_rate_hz is not None and source_sample_rate_hz <= 2 * NARROWBAND_MAX_HZ
    ) or hf_db < negligible_db
    return ("narrowband" if narrow else "wideband"), bw_hz, hf_db
