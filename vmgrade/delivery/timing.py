"""Timing: intensity, syllable nuclei, pace over the message and inside a span.

* :func:`frame_intensity_db`, :func:`syllable_nuclei`: the syllable-nuclei
  method of de Jong & Wempe (2009), re-implemented (their Praat script is GPL):
  intensity peaks above (99th percentile - 25 dB), separated by dips of at
  least 2 dB, kept only where F0 is voiced.
* :func:`pace_windows`: words (or syllables) per minute per window, s.
* :func:`span_pace`: words/s, digits/s and the pause before a time span (the
  callback number), from transcript words, without re-reading audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..transcript import Word
from ..vad import HOP_S, POWER_FLOOR, sliding_frames
from ._round import _r
from .fillers import count_digits, is_word

INTENSITY_WINDOW_S = (
    0.064  # = 3.2 / 50 Hz, Praat's intensity window for min pitch 50 Hz (de Jong & Wempe 2009)
)
# Syllable nuclei, de Jong & Wempe 2009 (their Praat script's defaults).
SYLLABLE_SILENCE_DB = -25.0  # peaks must exceed the 99th-percentile intensity + this
SYLLABLE_MIN_DIP_DB = 2.0  # dip between successive peaks
# Average English syllables per word, ~1.5 (e.g. Yaruss 2000 "converting
# between word and syllable counts", 1.5 syll/word in adult conversation);
# used only for the wpm cross-check.
SYLLABLES_PER_WORD = 1.5

PACE_WINDOW_S = 5.0  # pace plot resolution, s


class HasSpeechIntervals(Protocol):
    """Anything with a speech track (e.g. :class:`~vmgrade.delivery.DeliveryMetrics`)."""

    speech_intervals: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class PaceWindow:
    """Speaking rate inside one window of the message."""

    start_s: float
    end_s: float
    rate_wpm: float

    def to_dict(self) -> dict:
        return {"start_s": _r(self.start_s, 3), "end_s": _r(self.end_s, 3), "rate_wpm": _r(self.rate_wpm, 1)}


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


def span_pace(
    words: Sequence[Word],
    start_s: float,
    end_s: float,
    delivery: HasSpeechIntervals | Sequence[tuple[float, float]] | None = None,
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
    inside = [w for w in words if start_s <= (w.start + w.end) / 2 <= end_s and is_word(w)]
    digits = count_digits(inside)
    wps = len(inside) / duration if duration > 0 else 0.0
    dps = digits / duration if duration > 0 else 0.0
    intervals = getattr(delivery, "speech_intervals", delivery)
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
        before = [w for w in words if (w.start + w.end) / 2 < start_s and is_word(w)]
        first = inside[0].start if inside else start_s
        pause_ms = max(0.0, (first - before[-1].end) * 1000.0) if before else None
    return SpanPace(start_s, end_s, duration, len(inside), wps, digits, dps, pause_ms)
