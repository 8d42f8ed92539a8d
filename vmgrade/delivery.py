"""Delivery metrics: how a voicemail was spoken, measured from audio (+ words).

The module measures only; it knows nothing of content, rubric or scores.
Every cut-off that is a judgement (pause length, long pause, monotone) is a
keyword parameter whose default cites its source (see
``../shared/docs/rubric-sources.md``).

Entry points
------------
:func:`measure` turns an :class:`~vmgrade.audio.Audio` (and optionally a
:class:`~vmgrade.asr.transcribe.Transcript`) into :class:`DeliveryMetrics`, whose
``to_dict()`` fills the report's ``metrics`` key.  :func:`span_pace` gives the
pace, digit rate and preceding pause of any time span (e.g. the callback
number) from the transcript words and a ``DeliveryMetrics``, without
re-reading audio.

Methods
-------
* Speech/non-speech: :func:`vmgrade.vad.detect_speech` (band energy by
  default, or Silero; the module documents how each measured).
* F0: YIN (de Cheveigné & Kawahara 2002) in plain numpy, with YIN's
  aperiodicity as the voicing decision; no numba, so no cold-compile cost
  (``librosa.yin`` cost 34 s cold here, ``librosa.pyin`` 11 s).
* Syllables: the syllable-nuclei method of de Jong & Wempe (2009),
  re-implemented (their Praat script is GPL): intensity peaks above
  (99th percentile - 25 dB), separated by dips of at least 2 dB, kept only
  where F0 is voiced.

Message length and pace (``python bench/delivery_accuracy.py``, on the
spliced files that :mod:`vmgrade.vad` describes): rate_wpm from reference
word counts over the measured message length was within 10% on 22/22 energy
splices (median |error| 0.0%), 20/22 at 15 dB SNR.
With Whisper "base" word counts instead (first 9 "clips" splices, partial
run): 7/9 within 10%; the two misses are Whisper dropping 40% of the words
(splices holding the MFA and Asterisk clips), not the message length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import numbers
from .asr.transcribe import Transcript, Word
from .vad import (
    HOP_S,
    POWER_FLOOR,
    clean_intervals,
    detect_speech,
    frame_count,
    frame_times,
    intervals_from_mask,
    power_spectrogram,
    sliding_frames,
)

if TYPE_CHECKING:
    from .audio import Audio

# --------------------------------------------------------------------------
# Constants (units in names).  Judgement cut-offs cite their source.
# --------------------------------------------------------------------------
INTENSITY_WINDOW_S = (
    0.064  # = 3.2 / 50 Hz, Praat's intensity window for min pitch 50 Hz (de Jong & Wempe 2009)
)

# Pauses. De Jong & Bosker 2013: 250 ms is the silent-pause threshold that best
# predicts fluency (rubric-sources.md, "silent pause").
MIN_PAUSE_MS = 250.0
# Gong (deliberate pause ~1.5 s); rubric-sources.md "dead air / long pause" (1.5-2 s).
LONG_PAUSE_S = 1.5

# Pitch.
F0_MIN_HZ = 50.0  # low male voices and creak (65 Hz lost frames of the corpus's low male voice)
F0_MAX_HZ = 400.0  # above most speaking voices, below their second harmonics
YIN_TROUGH_THRESHOLD = 0.15  # de Cheveigné & Kawahara 2002 absolute threshold (0.1-0.15)
YIN_SAMPLE_RATE_HZ = 8000  # pitch is analysed at 8 kHz (F0 <= 400 Hz needs no more)
YIN_WINDOW_S = 0.025  # YIN integration window (at least one longest period)
YIN_VOICING_THRESHOLD = (
    0.45  # aperiodicity above this = unvoiced (best F1 vs librosa.pyin voicing on the corpus)
)
F0_OUTLIER_ST = 12.0  # voiced frames further than an octave from the median are octave errors
# Hincks 2005 (PVQ vs liveliness); Grawunder & Bose 2008 (2-3 st discrimination):
# rubric-sources.md "pitch variation (monotone)". No validated cut-off.
MONOTONE_SD_ST = 2.0

# Syllable nuclei, de Jong & Wempe 2009 (their Praat script's defaults).
SYLLABLE_SILENCE_DB = -25.0  # peaks must exceed the 99th-percentile intensity + this
SYLLABLE_MIN_DIP_DB = 2.0  # dip between successive peaks
# Average English syllables per word, ~1.5 (e.g. Yaruss 2000 "converting
# between word and syllable counts", 1.5 syll/word in adult conversation);
# used only for the wpm cross-check.
SYLLABLES_PER_WORD = 1.5

PACE_WINDOW_S = 5.0  # pace plot resolution, s

# Fillers.
FILLER_PAUSE_S = 0.25  # a comma-like pause around "like"/"you know" (same as MIN_PAUSE_MS)
WORD_PAD_S = 0.15  # Whisper word times are good to ~0.1-0.2 s (offline-whisper.md)
ACOUSTIC_FILLER_MIN_S = 0.2  # an uncovered voiced stretch at least this long
ACOUSTIC_FILLER_MAX_S = 1.2  # longer uncovered speech is untranscribed speech, not a filler
VOICED_BRIDGE_S = 0.05  # voiced frames closer than this form one stretch

# Level and quality.
LEVEL_LOW_DBFS = -35.0  # speech RMS below this is too quiet (RMS re full scale: a full-scale sine is -3 dBFS)
PEAK_HIGH_DBFS = -0.1  # peak at or above this, with clipping, is too loud
# Clipping on the *resampled* 16 kHz signal: soxr's band-limiting turns a flat
# clipped plateau into ripple of about +-2% around full scale, so samples
# within 2% of full scale (|x| >= 0.98, -0.18 dBFS) count as clipped.  A
# recording normalised to a peak >= 0.98 without clipping also registers a few
# samples; the ratio, not its presence, carries the signal.
CLIP_LEVEL = 0.98
CLIP_RATIO_HIGH = 1e-3  # this share of clipped samples makes level_too_high on its own
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


# --------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """A silent gap between two stretches of speech."""

    start_s: float
    end_s: float

    @property
    def duration_ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0

    def to_dict(self) -> dict:
        return {
            "start_s": _r(self.start_s, 3),
            "end_s": _r(self.end_s, 3),
            "duration_ms": _r(self.duration_ms, 0),
        }


@dataclass(frozen=True)
class PaceWindow:
    """Speaking rate inside one window of the message."""

    start_s: float
    end_s: float
    rate_wpm: float

    def to_dict(self) -> dict:
        return {"start_s": _r(self.start_s, 3), "end_s": _r(self.end_s, 3), "rate_wpm": _r(self.rate_wpm, 1)}


@dataclass(frozen=True)
class Filler:
    """A filler: a transcript token (``source="transcript"``) or an uncovered
    voiced stretch (``source="acoustic"``, ``word=""``)."""

    word: str
    start_s: float
    end_s: float
    source: str = "transcript"

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "start_s": _r(self.start_s, 3),
            "end_s": _r(self.end_s, 3),
            "source": self.source,
        }


@dataclass(frozen=True)
class SpanPace:
    """Pace inside a time span (e.g. the callback number)."""

    start_s: float
    end_s: float
    duration_s: float
    word_count: int
    words_per_s: float
    digit_count: int
    digits_per_s: float
    pause_before_ms: float | None  # None when nothing precedes the span

    def to_dict(self) -> dict:
        return {
            "start_s": _r(self.start_s, 3),
            "end_s": _r(self.end_s, 3),
            "duration_s": _r(self.duration_s, 3),
            "word_count": self.word_count,
            "words_per_s": _r(self.words_per_s, 2),
            "digit_count": self.digit_count,
            "digits_per_s": _r(self.digits_per_s, 2),
            "pause_before_ms": _r(self.pause_before_ms, 0),
        }


@dataclass(frozen=True)
class DeliveryMetrics:
    """Everything :func:`measure` finds.  ``to_dict()`` keys equal field names.

    Length (s): ``duration_s`` (whole file), ``speech_start_s``,
    ``speech_end_s`` (first/last speech per VAD), ``leading_silence_s``,
    ``trailing_silence_s``, ``message_length_s`` (speech start to end),
    ``speech_time_s`` (message length minus pauses).

    Pace: ``word_count`` (words said: transcript tokens, fillers included, a
    written digit run such as "415-555-0198" counted digit by digit; None without a
    transcript), ``rate_wpm`` (words / message length), ``articulation_rate_wpm``
    (words / speech time), ``pace_windows`` (list of {start_s, end_s, rate_wpm}
    per ``PACE_WINDOW_S`` of the message), ``pace_source`` ("transcript", or
    "syllables" when windows come from syllable nuclei / 1.5),
    ``syllable_count``, ``syllable_rate_per_s`` (syllables / message length),
    ``syllable_wpm_estimate`` (syllable rate * 60 / ``SYLLABLES_PER_WORD``).

    Pauses: ``pauses`` (list of {start_s, end_s, duration_ms}, gaps >=
    ``min_pause_ms`` between speech), ``pause_count``, ``long_pause_count``,
    ``longest_pause_ms``, ``pause_ratio`` (pause time / message length),
    ``speech_intervals`` (list of [start_s, end_s], the VAD track),
    ``vad`` (detector used).

    Fillers (None without a transcript): ``filler_token_count``, ``fillers``
    (list of {word, start_s, end_s, source}), ``uncovered_voiced`` (list of
    {start_s, end_s, duration_ms}: voiced speech no padded word covers),
    ``acoustic_filler_count`` (uncovered stretches 0.2-1.2 s),
    ``filler_count`` (tokens + acoustic), ``filler_rate_per_min`` (over the
    message length).

    Voice: ``f0_median_hz``, ``f0_sd_st`` (SD of voiced-frame F0 in semitones
    re its median), ``pvq`` (SD/mean of F0 in Hz, dimensionless),
    ``monotone`` (``f0_sd_st < monotone_sd_st``), ``voiced_time_s``; all None
    when nothing is voiced.  ``loudness_dbfs`` (RMS over speech),
    ``peak_dbfs``, ``word_loudness_sd_db`` (SD of per-word RMS dBFS),
    ``word_loudness_source`` ("words" or "speech_intervals").

    Quality: ``clipping_ratio`` (share of samples with |x| >= 0.98),
    ``snr_db``, ``bandwidth`` ("narrowband"/"wideband"), ``bandwidth_hz``,
    ``hf_energy_db`` (speech energy above 4.1 kHz re total, dB),
    ``level_too_low``, ``level_too_high``.
    """

    # length
    duration_s: float
    speech_start_s: float
    speech_end_s: float
    leading_silence_s: float
    trailing_silence_s: float
    message_length_s: float
    speech_time_s: float
    # pace
    word_count: int | None
    rate_wpm: float | None
    articulation_rate_wpm: float | None
    pace_windows: tuple[PaceWindow, ...]
    pace_source: str
    syllable_count: int
    syllable_rate_per_s: float
    syllable_wpm_estimate: float
    # pauses
    pauses: tuple[Pause, ...]
    pause_count: int
    long_pause_count: int
    longest_pause_ms: float
    pause_ratio: float
    speech_intervals: tuple[tuple[float, float], ...]
    vad: str
    # fillers
    filler_token_count: int | None
    fillers: tuple[Filler, ...]
    uncovered_voiced: tuple[Pause, ...]
    acoustic_filler_count: int | None
    filler_count: int | None
    filler_rate_per_min: float | None
    # voice
    f0_median_hz: float | None
    f0_sd_st: float | None
    pvq: float | None
    monotone: bool | None
    voiced_time_s: float
    loudness_dbfs: float | None
    peak_dbfs: float
    word_loudness_sd_db: float | None
    word_loudness_source: str
    # quality
    clipping_ratio: float
    snr_db: float | None
    bandwidth: str
    bandwidth_hz: float
    hf_energy_db: float | None
    level_too_low: bool
    level_too_high: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain types, rounded: s to ms, dB to 0.1, ratios to 1e-4."""
        return {
            "duration_s": _r(self.duration_s, 3),
            "speech_start_s": _r(self.speech_start_s, 3),
            "speech_end_s": _r(self.speech_end_s, 3),
            "leading_silence_s": _r(self.leading_silence_s, 3),
            "trailing_silence_s": _r(self.trailing_silence_s, 3),
            "message_length_s": _r(self.message_length_s, 3),
            "speech_time_s": _r(self.speech_time_s, 3),
            "word_count": self.word_count,
            "rate_wpm": _r(self.rate_wpm, 1),
            "articulation_rate_wpm": _r(self.articulation_rate_wpm, 1),
            "pace_windows": [w.to_dict() for w in self.pace_windows],
            "pace_source": self.pace_source,
            "syllable_count": self.syllable_count,
            "syllable_rate_per_s": _r(self.syllable_rate_per_s, 2),
            "syllable_wpm_estimate": _r(self.syllable_wpm_estimate, 1),
            "pauses": [p.to_dict() for p in self.pauses],
            "pause_count": self.pause_count,
            "long_pause_count": self.long_pause_count,
            "longest_pause_ms": _r(self.longest_pause_ms, 0),
            "pause_ratio": _r(self.pause_ratio, 4),
            "speech_intervals": [[_r(a, 3), _r(b, 3)] for a, b in self.speech_intervals],
            "vad": self.vad,
            "filler_token_count": self.filler_token_count,
            "fillers": [f.to_dict() for f in self.fillers],
            "uncovered_voiced": [p.to_dict() for p in self.uncovered_voiced],
            "acoustic_filler_count": self.acoustic_filler_count,
            "filler_count": self.filler_count,
            "filler_rate_per_min": _r(self.filler_rate_per_min, 2),
            "f0_median_hz": _r(self.f0_median_hz, 1),
            "f0_sd_st": _r(self.f0_sd_st, 2),
            "pvq": _r(self.pvq, 4),
            "monotone": self.monotone,
            "voiced_time_s": _r(self.voiced_time_s, 3),
            "loudness_dbfs": _r(self.loudness_dbfs, 1),
            "peak_dbfs": _r(self.peak_dbfs, 2),
            "word_loudness_sd_db": _r(self.word_loudness_sd_db, 2),
            "word_loudness_source": self.word_loudness_source,
            "clipping_ratio": _r(self.clipping_ratio, 6),
            "snr_db": _r(self.snr_db, 1),
            "bandwidth": self.bandwidth,
            "bandwidth_hz": _r(self.bandwidth_hz, 0),
            "hf_energy_db": _r(self.hf_energy_db, 1),
            "level_too_low": bool(self.level_too_low),
            "level_too_high": bool(self.level_too_high),
        }


def _r(value: float | None, digits: int) -> float | None:
    """Round to plain float (None stays None; non-finite becomes None)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits > 0 else float(round(value))


# --------------------------------------------------------------------------
# Framing helpers (the rest are in vmgrade.vad)
# --------------------------------------------------------------------------


def frame_intensity_db(
    y: np.ndarray, sr: int, *, window_s: float = INTENSITY_WINDOW_S, hop_s: float = HOP_S
) -> np.ndarray:
    """Hann-weighted mean-square level per centred frame, dBFS."""
    n = int(round(window_s * sr))
    hop = int(round(hop_s * sr))
    win = np.hanning(n + 1)[:-1].astype(np.float32)
    win /= win.sum()
    ms = sliding_frames(y.astype(np.float32) ** 2, n, hop) @ win
    return 10.0 * np.log10(np.maximum(ms, POWER_FLOOR))


def find_pauses(
    intervals: Sequence[tuple[float, float]], *, min_pause_ms: float = MIN_PAUSE_MS
) -> list[Pause]:
    """Gaps of at least ``min_pause_ms`` between consecutive speech intervals
    (leading and trailing silence excluded)."""
    out = []
    for (_, e0), (s1, _) in zip(intervals[:-1], intervals[1:]):
        if (s1 - e0) * 1000.0 >= min_pause_ms:
            out.append(Pause(float(e0), float(s1)))
    return out


# --------------------------------------------------------------------------
# Pitch
# --------------------------------------------------------------------------


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
        Search range, Hz (default 65-400).
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
    frames = frames[rows_idx].astype(np.float64)
    n_fft = 1 << int(math.ceil(math.log2(frame_len + win)))
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
    f0_out[rows_idx] = f0
    ap_out[rows_idx] = np.where(no_min, 1.0, best)
    return f0_out, ap_out


def pitch_stats(
    f0_hz: np.ndarray, *, outlier_st: float = F0_OUTLIER_ST
) -> tuple[float | None, float | None, float | None]:
    """(median Hz, SD in semitones re median, PVQ = SD/mean Hz) of voiced frames.

    Frames more than ``outlier_st`` semitones from the median (octave errors)
    are dropped first.  All None when fewer than 10 frames are voiced.
    """
    v = f0_hz[np.isfinite(f0_hz)]
    if v.size < 10:
        return None, None, None
    med = float(np.median(v))
    st = 12.0 * np.log2(v / med)
    keep = np.abs(st) <= outlier_st
    v, st = v[keep], st[keep]
    med = float(np.median(v))
    st = 12.0 * np.log2(v / med)
    return med, float(np.std(st)), float(np.std(v) / np.mean(v))


# --------------------------------------------------------------------------
# Syllable nuclei (de Jong & Wempe 2009)
# --------------------------------------------------------------------------


def syllable_nuclei(
    intensity_db: np.ndarray,
    voiced: np.ndarray,
    *,
    hop_s: float = HOP_S,
    silence_db: float = SYLLABLE_SILENCE_DB,
    min_dip_db: float = SYLLABLE_MIN_DIP_DB,
) -> np.ndarray:
    """Times (s) of syllable nuclei.

    Intensity peaks above ``percentile99 + silence_db`` (but not below the
    minimum), each kept when the intensity dips by at least ``min_dip_db``
    between it and the next peak, and only where ``voiced`` (per frame).
    """
    x = np.asarray(intensity_db, float)
    if x.size < 3:
        return np.zeros(0)
    threshold = max(float(np.percentile(x, 99)) + silence_db, float(x.min()))
    # local maxima (plateaus: first frame)
    up = np.concatenate([[True], x[1:] > x[:-1]])
    down = np.concatenate([x[:-1] >= x[1:], [True]])
    peaks = np.flatnonzero(up & down & (x > threshold))
    if peaks.size == 0:
        return np.zeros(0)
    keep = []
    bounds = np.append(peaks[1:], len(x) - 1)
    for p, q in zip(peaks, bounds):
        dip = float(x[p : q + 1].min())
        if x[p] - dip >= min_dip_db and voiced[p]:
            keep.append(p)
    return np.asarray(keep, float) * hop_s


# --------------------------------------------------------------------------
# Words: fillers and digits
# --------------------------------------------------------------------------

_HESITATION = re.compile(r"^(u+h+m*|u+m+|e+r+m*|a+h+|h+m+|m{2,}|e+h+)$")
_LIKE_VERB_BEFORE = frozenset(
    "would i'd you'd we'd they'd he'd she'd feel feels felt look looks looked looking sound sounds "
    "sounded seem seems seemed something anything nothing everything i you we they really don't "
    "didn't do does did just more much not be".split()
)
_YOU_KNOW_NOT_BEFORE = frozenset("do did don't didn't does doesn't if would let to may might as".split())
_YOU_KNOW_NOT_AFTER = frozenset(
    "that what how the a an if whether who where when why about "
    "him her them me us this it my our your their".split()
)


def normalise_token(word: str) -> str:
    """Lower-case, keep letters, digits and apostrophes."""
    return re.sub(r"[^a-z0-9']+", "", word.lower().replace("\u2019", "'"))


def _has_comma_after(word: str) -> bool:
    return bool(re.search(r"[,;:.!?\u2026-]$", word.strip()))


def find_fillers(words: Sequence[Word], *, pause_s: float = FILLER_PAUSE_S) -> list[Filler]:
    """Filler tokens with their times.

    * um, uh, er, ah, hmm and variants (umm, uhm, mm, erm, eh).
    * "like" when set off (comma after it or after the word before, or a
      pause >= ``pause_s`` either side, or message-initial) and not preceded
      by a verb/"would/feel/look/sounds/something" pattern.
    * "you know" when followed by a comma, a pause or the end, not preceded
      by do/if/let/to..., and not followed by that/what/how/the....
    """
    out: list[Filler] = []
    toks = [normalise_token(w.word) for w in words]
    n = len(words)
    i = 0
    while i < n:
        t, w = toks[i], words[i]
        prev = words[i - 1] if i > 0 else None
        nxt = words[i + 1] if i + 1 < n else None
        if _HESITATION.match(t):
            out.append(Filler(t, w.start, w.end))
        elif t == "like":
            gap_before = w.start - prev.end if prev else math.inf
            gap_after = nxt.start - w.end if nxt else math.inf
            set_off = (
                prev is None
                or _has_comma_after(prev.word)
                or _has_comma_after(w.word)
                or gap_before >= pause_s
                or gap_after >= pause_s
            )
            if set_off and (i == 0 or toks[i - 1] not in _LIKE_VERB_BEFORE):
                out.append(Filler("like", w.start, w.end))
        elif t == "you" and i + 1 < n and toks[i + 1] == "know":
            know = words[i + 1]
            after = words[i + 2] if i + 2 < n else None
            after_tok = toks[i + 2] if i + 2 < n else ""
            ends = after is None or _has_comma_after(know.word) or after.start - know.end >= pause_s
            if (
                ends
                and (i == 0 or toks[i - 1] not in _YOU_KNOW_NOT_BEFORE)
                and after_tok not in _YOU_KNOW_NOT_AFTER
            ):
                out.append(Filler("you know", w.start, know.end))
                i += 2
                continue
        i += 1
    return out


def count_digits(words: Sequence[Word]) -> int:
    """Digits spoken in a word sequence, read as :mod:`vmgrade.numbers` reads
    them ("555-1234" = 7, "double five" = 2, "oh" as zero only inside a number,
    "nineteen" = 2, "five hundred" = 3)."""
    return sum(len(run.digits) for run in numbers.find_number_runs(words))


_WRITTEN_DIGIT_RUN = re.compile(r"\d[\d\-.()]*\d")
SPOKEN_DIGIT_RUN_MIN = 5  # a written run this long ("415-555-0198") was said digit by digit


def spoken_word_count(word: str) -> int:
    """How many words a transcript token stands for: Whisper writes a phone
    number said as ten digit words as one token ("415-555-0198"), which
    would otherwise make a rep who reads their number sound slow."""
    run = _WRITTEN_DIGIT_RUN.search(word)
    if run:
        digits = sum(ch.isdigit() for ch in run.group())
        if digits >= SPOKEN_DIGIT_RUN_MIN or "-" in run.group():
            return digits
    return 1


_DIGIT_PIECE = re.compile(r"^[(\-.]?\d[\d\-.()]*[.,;:!?)]*$")  # "415", "-555", "-0198.", "(415)"


def spoken_word_counts(words: Sequence[str]) -> list[int]:
    """:func:`spoken_word_count` for a sequence of transcript tokens, a written
    number split over several tokens included: Whisper's word timing can give
    "415-555-0198" as "415", "-555", "-0198.", each then counted by its digits."""
    counts = [spoken_word_count(w) for w in words]
    i = 0
    while i < len(words):
        j = i
        # a digit piece followed by pieces that continue it with a dash, dot or bracket
        while (j + 1 < len(words) and _DIGIT_PIECE.match(words[j].strip())
               and _DIGIT_PIECE.match(words[j + 1].strip()) and words[j + 1].strip()[0] in "-.)"):
            j += 1
        if j > i:
            group = "".join(w.strip() for w in words[i : j + 1])
            if spoken_word_count(group) > 1:
                counts[i : j + 1] = [max(1, sum(ch.isdigit() for ch in w)) for w in words[i : j + 1]]
        i = j + 1
    return counts


def _is_word(w: Word) -> bool:
    return bool(normalise_token(w.word))


def span_pace(
    words: Sequence[Word],
    start_s: float,
    end_s: float,
    delivery: DeliveryMetrics | Sequence[tuple[float, float]] | None = None,
    *,
    tolerance_s: float = 0.3,
) -> SpanPace:
    """Words/s, digits/s and the pause before a time span.

    Parameters
    ----------
    words : sequence of Word
        Transcript words (``Transcript.words``); a word belongs to the span
        when its midpoint lies in [start_s, end_s].
    start_s, end_s : float
        The span, s.
    delivery : DeliveryMetrics or sequence of (start_s, end_s), optional
        The speech track (``DeliveryMetrics.speech_intervals``).  The pause
        before is the longest non-speech gap between two speech intervals
        that ends within ``tolerance_s`` of ``start_s`` (0 if none: the span
        starts mid-speech).  Without a track, the gap between the previous
        word's end and the span's first word is used.
    tolerance_s : float
        Slack for Whisper's word timing (good to ~0.1-0.2 s), s.

    Returns
    -------
    SpanPace
    """
    duration = max(0.0, end_s - start_s)
    inside = [w for w in words if start_s <= (w.start + w.end) / 2 <= end_s and _is_word(w)]
    digits = count_digits(inside)
    wps = len(inside) / duration if duration > 0 else 0.0
    dps = digits / duration if duration > 0 else 0.0
    intervals = delivery.speech_intervals if isinstance(delivery, DeliveryMetrics) else delivery
    pause_ms: float | None
    if intervals is not None:
        gaps = [
            (s1 - e0) * 1000.0
            for (_, e0), (s1, _) in zip(intervals[:-1], intervals[1:])
            if abs(s1 - start_s) <= tolerance_s and s1 > e0
        ]
        if gaps:
            pause_ms = max(gaps)
        elif not any(e <= start_s for _, e in intervals):
            pause_ms = None  # the span opens the message
        else:
            pause_ms = 0.0
    else:
        before = [w for w in words if (w.start + w.end) / 2 < start_s and _is_word(w)]
        first = inside[0].start if inside else start_s
        pause_ms = max(0.0, (first - before[-1].end) * 1000.0) if before else None
    return SpanPace(start_s, end_s, duration, len(inside), wps, digits, dps, pause_ms)


# --------------------------------------------------------------------------
# Loudness and quality
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Stretches and windows
# --------------------------------------------------------------------------


def subtract_spans(
    spans: Sequence[tuple[float, float]], cover: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Parts of ``spans`` not covered by any of ``cover`` (both lists of (start, end))."""
    cover = sorted(cover)
    out = []
    for s, e in spans:
        cur = s
        for cs, ce in cover:
            if ce <= cur or cs >= e:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def pace_windows(
    event_times_s: np.ndarray,
    start_s: float,
    end_s: float,
    *,
    window_s: float = PACE_WINDOW_S,
    per_word: float = 1.0,
) -> list[PaceWindow]:
    """Events per minute / ``per_word`` in consecutive windows from ``start_s``;
    the last (partial) window is kept when at least half a window long,
    otherwise merged into the one before."""
    if end_s <= start_s:
        return []
    edges = list(np.arange(start_s, end_s, window_s)) + [end_s]
    if len(edges) > 2 and edges[-1] - edges[-2] < window_s / 2:
        del edges[-2]
    t = np.asarray(event_times_s, float)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        n = np.count_nonzero((t >= a) & (t < b if b < end_s else t <= b))
        out.append(PaceWindow(float(a), float(b), n / per_word / (b - a) * 60.0))
    return out


# --------------------------------------------------------------------------
# measure()
# --------------------------------------------------------------------------


def measure(
    audio: Audio,
    transcript: Transcript | None = None,
    *,
    vad: str = "auto",
    min_pause_ms: float = MIN_PAUSE_MS,
    long_pause_s: float = LONG_PAUSE_S,
    fmin_hz: float = F0_MIN_HZ,
    fmax_hz: float = F0_MAX_HZ,
    monotone_sd_st: float = MONOTONE_SD_ST,
    pace_window_s: float = PACE_WINDOW_S,
    syllables_per_word: float = SYLLABLES_PER_WORD,
    word_pad_s: float = WORD_PAD_S,
    level_low_dbfs: float = LEVEL_LOW_DBFS,
    peak_high_dbfs: float = PEAK_HIGH_DBFS,
    clip_level: float = CLIP_LEVEL,
    timings: dict[str, float] | None = None,
) -> DeliveryMetrics:
    """Measure delivery: length, pace, pauses, fillers, voice, audio quality.

    Parameters
    ----------
    audio : Audio
        16 kHz mono float32 (``vmgrade.audio.load``).
    transcript : Transcript, optional
        Whisper words with times (s).  None: audio-only (word, rate and
        filler fields are None; pace windows come from syllable nuclei).
    vad : {"auto", "silero", "energy"}
        Speech detector; "auto" is ``DEFAULT_VAD``.
    min_pause_ms : float
        Shortest silent gap counted as a pause, ms (De Jong & Bosker 2013: 250).
    long_pause_s : float
        A pause at least this long is long, s (Gong: 1.5).
    fmin_hz, fmax_hz : float
        F0 search range, Hz.
    monotone_sd_st : float
        ``monotone`` when F0 SD is below this, semitones (Hincks 2005;
        Grawunder & Bose 2008: 2).
    pace_window_s : float
        Window of ``pace_windows``, s.
    syllables_per_word : float
        For ``syllable_wpm_estimate``.
    word_pad_s : float
        Padding of word spans when looking for uncovered voiced sound, s.
    level_low_dbfs, peak_high_dbfs : float
        ``level_too_low`` when speech RMS is below the first;
        ``level_too_high`` when the peak reaches the second with clipping.
    clip_level : float
        Sample magnitude counted as clipped (full scale 1.0).
    timings : dict, optional
        When given, filled with seconds spent per step (vad, pitch,
        syllables, quality, words).

    Returns
    -------
    DeliveryMetrics
    """
    import time

    clock = time.perf_counter
    t0 = clock()
    sr = int(audio.sample_rate)
    y = np.ascontiguousarray(audio.samples, dtype=np.float32)
    duration = len(y) / sr
    hop = int(round(HOP_S * sr))

    power, freqs = power_spectrogram(y, sr)
    speech, vad_name = detect_speech(y, sr, vad=vad, power=power, freqs_hz=freqs)
    times = frame_times(len(power), sr, hop)
    speech_mask = _mask_from_intervals(times, speech)
    t1 = clock()

    f0, _ = yin(y, sr, fmin_hz=fmin_hz, fmax_hz=fmax_hz, frame_mask=speech_mask)
    voiced = np.isfinite(f0)
    f0_median, f0_sd, pvq = pitch_stats(f0)
    t2 = clock()

    intensity = frame_intensity_db(y, sr)
    nuclei = syllable_nuclei(intensity, voiced)
    t3 = clock()

    # length and pauses
    if speech:
        sp_start, sp_end = speech[0][0], speech[-1][1]
    else:
        sp_start = sp_end = 0.0
    message = max(0.0, sp_end - sp_start)
    pauses = find_pauses(speech, min_pause_ms=min_pause_ms)
    pause_time = sum(p.end_s - p.start_s for p in pauses)
    speech_time = max(0.0, message - pause_time)

    # syllables
    nuclei = nuclei[(nuclei >= sp_start) & (nuclei <= sp_end)] if speech else nuclei[:0]
    syl_rate = len(nuclei) / message if message > 0 else 0.0

    # words
    words = tuple(w for w in transcript.words if _is_word(w)) if transcript is not None else None
    if words is not None:
        spoken = np.array(spoken_word_counts([w.word for w in words]), dtype=int)
        word_count: int | None = int(spoken.sum())
        rate = word_count / message * 60.0 if message > 0 else 0.0
        artic = word_count / speech_time * 60.0 if speech_time > 0 else 0.0
        mids = np.repeat([(w.start + w.end) / 2 for w in words], spoken)
        windows = pace_windows(mids, sp_start, sp_end, window_s=pace_window_s)
        pace_source = "transcript"
        fillers = find_fillers(words)
        covered = [(w.start - word_pad_s, w.end + word_pad_s) for w in words]
        stretches = clean_intervals(
            intervals_from_mask(voiced, HOP_S, duration),
            min_gap_s=VOICED_BRIDGE_S,
            min_length_s=ACOUSTIC_FILLER_MIN_S,
        )
        uncovered = [
            Pause(s, e) for s, e in subtract_spans(stretches, covered) if e - s >= ACOUSTIC_FILLER_MIN_S
        ]
        acoustic = [u for u in uncovered if u.end_s - u.start_s <= ACOUSTIC_FILLER_MAX_S]
        token_count: int | None = len(fillers)
        acoustic_count: int | None = len(acoustic)
        filler_total: int | None = len(fillers) + len(acoustic)
        filler_rate = filler_total / (message / 60.0) if message > 0 else 0.0
        all_fillers = tuple(
            sorted(
                fillers + [Filler("", u.start_s, u.end_s, "acoustic") for u in acoustic],
                key=lambda f: f.start_s,
            )
        )
    else:
        word_count = rate = artic = None
        windows = pace_windows(nuclei, sp_start, sp_end, window_s=pace_window_s, per_word=syllables_per_word)
        pace_source = "syllables"
        token_count = acoustic_count = filler_total = None
        filler_rate = None
        all_fillers = ()
        uncovered = []
    t4 = clock()

    # loudness and quality
    speech_samples = np.concatenate([y[int(s * sr) : int(e * sr)] for s, e in speech]) if speech else y[:0]
    loudness = rms_dbfs(speech_samples)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    peak_db = 20.0 * math.log10(max(peak, 1e-6))
    if words:
        levels = span_levels_dbfs(y, sr, [(w.start, w.end) for w in words])
        loud_source = "words"
    else:
        levels = span_levels_dbfs(y, sr, speech)
        loud_source = "speech_intervals"
    word_sd = float(np.std(levels)) if levels.size >= 2 else None
    clip = clipping_ratio(y, clip_level=clip_level)
    frame_power = power.sum(axis=1)
    snr = snr_db(frame_power, speech_mask)
    bw, bw_hz, hf_db = bandwidth(power, freqs, speech_mask, getattr(audio.source, "sample_rate_hz", None))
    too_low = loudness is not None and loudness < level_low_dbfs
    too_high = (peak_db >= peak_high_dbfs and clip > 0) or clip >= CLIP_RATIO_HIGH
    t5 = clock()
    if timings is not None:
        timings.update(
            {
                "vad": t1 - t0,
                "pitch": t2 - t1,
                "syllables": t3 - t2,
                "words": t4 - t3,
                "quality": t5 - t4,
                "total": t5 - t0,
            }
        )

    return DeliveryMetrics(
        duration_s=duration,
        speech_start_s=sp_start,
        speech_end_s=sp_end,
        leading_silence_s=sp_start if speech else duration,
        trailing_silence_s=duration - sp_end if speech else 0.0,
        message_length_s=message,
        speech_time_s=speech_time,
        word_count=word_count,
        rate_wpm=rate,
        articulation_rate_wpm=artic,
        pace_windows=tuple(windows),
        pace_source=pace_source,
        syllable_count=len(nuclei),
        syllable_rate_per_s=syl_rate,
        syllable_wpm_estimate=syl_rate * 60.0 / syllables_per_word,
        pauses=tuple(pauses),
        pause_count=len(pauses),
        long_pause_count=sum(1 for p in pauses if p.end_s - p.start_s >= long_pause_s),
        longest_pause_ms=max((p.duration_ms for p in pauses), default=0.0),
        pause_ratio=pause_time / message if message > 0 else 0.0,
        speech_intervals=tuple((float(s), float(e)) for s, e in speech),
        vad=vad_name,
        filler_token_count=token_count,
        fillers=all_fillers,
        uncovered_voiced=tuple(uncovered),
        acoustic_filler_count=acoustic_count,
        filler_count=filler_total,
        filler_rate_per_min=filler_rate,
        f0_median_hz=f0_median,
        f0_sd_st=f0_sd,
        pvq=pvq,
        monotone=None if f0_sd is None else bool(f0_sd < monotone_sd_st),
        voiced_time_s=float(np.count_nonzero(voiced)) * HOP_S,
        loudness_dbfs=loudness,
        peak_dbfs=peak_db,
        word_loudness_sd_db=word_sd,
        word_loudness_source=loud_source,
        clipping_ratio=clip,
        snr_db=snr,
        bandwidth=bw,
        bandwidth_hz=bw_hz,
        hf_energy_db=hf_db,
        level_too_low=bool(too_low),
        level_too_high=bool(too_high),
    )


def _mask_from_intervals(times: np.ndarray, intervals: Sequence[tuple[float, float]]) -> np.ndarray:
    """Frame mask: True where the frame centre lies inside an interval."""
    mask = np.zeros(times.shape, bool)
    for s, e in intervals:
        mask[np.searchsorted(times, s) : np.searchsorted(times, e)] = True
    return mask
