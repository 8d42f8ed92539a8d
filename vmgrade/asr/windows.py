"""Fitting a recording into one of Whisper's 30-s windows before ASR.

Whisper reads audio in 30-s windows, so a voicemail whose speech runs a
second or two past 30 s costs a second window: a second encoder pass over a
30-s window that holds a second or two of speech, and a sentence cut at the
boundary, which Whisper often gets wrong (``samples/strong_wideband.flac``:
"Northwind Analytics" came out as "more twin analytics"). Voicemails just
over 30 s are common: 20-30 s is the target, and reps run over.

So, for a recording longer than one window, :func:`fit_to_window` trims the
silence at its edges to :data:`EDGE_PAD_S` and, if the speech still does not
fit in :data:`FIT_S`, plays it slightly faster (resampled; at most
:data:`MAX_SPEEDUP`, which ``bench/fit_window.py`` measured on the corpus).
A recording of up to 30 s, and one that would need more than
:data:`MAX_SPEEDUP`, is passed on unchanged: fitting would save no window.
The :class:`AsrInput` maps the recogniser's times back onto the recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio import resample
from ..vad import detect_speech

WINDOW_S = 30.0  # Whisper's window (whisper.audio.CHUNK_LENGTH), s
# The length a fitted recording is brought to, s: 0.7 s short of the window,
# so the last word ends well inside it. On 30.3-32.5-s corpus splices
# (bench/fit_window.py) 29.0, 29.3 and 29.5 s did alike (WER, words placed
# off speech); at 29.5 one sample's second callback number was mistimed by
# 3.5 s (a 10-digit word squeezed into 0.5 s), at 29.3 none was.
FIT_S = 29.3
EDGE_PAD_S = 0.3  # silence kept before the first and after the last speech, s
# Fastest playback of a fitted recording: 10% faster, so 32.2 s from the first
# speech to the last, with its edges, fits. bench/fit_window.py: corpus clips
# played this much faster kept their WER within a clip's noise (openai-whisper
# 0.043 / 0.071 -> 0.046 / 0.068 clean / phone; ctranslate2 0.037 / 0.080 ->
# 0.052 / 0.065), and on 30.3-32.5-s splices of them fitting lowered WER on both
# engines and channels (openai-whisper 0.050 / 0.098 -> 0.042 / 0.095,
# ctranslate2 0.050 / 0.101 -> 0.049 / 0.085) and placed fewer words off speech.
MAX_SPEEDUP = 1.1


@dataclass(frozen=True)
class AsrInput:
    """The samples the recogniser reads, and where they lie in the recording.

    Attributes
    ----------
    samples : np.ndarray
        Mono float32 samples at ``sample_rate``.
    sample_rate : int
        In Hz.
    offset_s : float
        Recording time of the first sample, s.
    speedup : float
        Recording seconds per second of ``samples`` (1.0: unchanged speed).
    """

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    offset_s: float = 0.0
    speedup: float = 1.0

    @classmethod
    def as_recorded(cls, samples: np.ndarray, sample_rate: int) -> AsrInput:
        """The whole recording, at its own speed."""
        return cls(np.ascontiguousarray(samples, dtype=np.float32), sample_rate)

    def recording_s(self, t_s: float) -> float:
        """The recording time (s) of time ``t_s`` in ``samples``."""
        return self.offset_s + t_s * self.speedup


def fit_to_window(
    samples: np.ndarray,
    sample_rate: int,
    *,
    window_s: float = WINDOW_S,
    fit_s: float = FIT_S,
    edge_pad_s: float = EDGE_PAD_S,
    max_speedup: float = MAX_SPEEDUP,
) -> AsrInput:
    """Fit a recording just over one window into one (see the module docstring).

    Parameters
    ----------
    samples : np.ndarray
        Mono recording.
    sample_rate : int
        In Hz.
    window_s : float
        The recogniser's window, s; recordings up to this long are not touched.
    fit_s : float
        The length a fitted recording is brought to, s.
    edge_pad_s : float
        Silence kept before the first and after the last detected speech, s.
    max_speedup : float
        The fastest playback allowed (1.1 = 10% faster); a recording that
        would need more is passed on unchanged.

    Returns
    -------
    AsrInput
        The samples to recognise and the map back to the recording.
    """
    unchanged = AsrInput.as_recorded(samples, sample_rate)
    duration_s = len(samples) / sample_rate
    if duration_s <= window_s:
        return unchanged
    speech, _ = detect_speech(samples, sample_rate, vad="energy")
    if not speech:
        return unchanged
    start_s = max(0.0, speech[0][0] - edge_pad_s)
    end_s = min(duration_s, speech[-1][1] + edge_pad_s)
    speedup = (end_s - start_s) / fit_s
    if speedup > max_speedup:
        return unchanged
    lo, hi = int(round(start_s * sample_rate)), int(round(end_s * sample_rate))
    trimmed = np.ascontiguousarray(samples[lo:hi], dtype=np.float32)
    if speedup <= 1.0:
        return AsrInput(trimmed, sample_rate, offset_s=lo / sample_rate)
    faster = play_faster(trimmed, sample_rate, speedup)
    return AsrInput(faster, sample_rate, offset_s=lo / sample_rate, speedup=len(trimmed) / len(faster))


def play_faster(samples: np.ndarray, sample_rate: int, speedup: float) -> np.ndarray:
    """``samples`` played ``speedup`` times faster, as a tape is (pitch rises alike), at ``sample_rate``."""
    # read at a higher rate than recorded: the same samples in less time
    return resample(samples, int(round(sample_rate * speedup)), sample_rate)
