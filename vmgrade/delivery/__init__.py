"""Delivery metrics: how a voicemail was spoken, measured from audio (+ words).

The package measures only; it knows nothing of content or scores.  The
cut-offs that turn a measurement into a label of the report (pause, long
pause, monotone, level too low/high) are the rubric's, passed in as
:class:`LabelThresholds` (sources: ``vmgrade/rubric.toml`` and
``docs/rubric.md``).

Modules (array in, array out; units in names and docstrings)
-----------------------------------------------------------
:mod:`~vmgrade.delivery.pitch`
    YIN F0, the octave-error filter, pitch statistics, the drawing contour.
:mod:`~vmgrade.delivery.pauses`
    Pauses between speech intervals; span arithmetic.
:mod:`~vmgrade.delivery.timing`
    Intensity, syllable nuclei, pace windows, the pace of a span.
:mod:`~vmgrade.delivery.fillers`
    Filler tokens, uncovered voiced sound, spoken word and digit counts.
:mod:`~vmgrade.delivery.level`
    RMS, clipping, SNR, bandwidth.
:mod:`~vmgrade.delivery.metrics`
    :class:`DeliveryMetrics`, :class:`LabelThresholds` and :func:`measure`.

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
* F0: YIN (de Cheveigné & Kawahara 2002) in plain numpy (:mod:`.pitch`).
* Syllables: the syllable-nuclei method of de Jong & Wempe (2009) (:mod:`.timing`).

Message length and pace (``python bench/delivery_accuracy.py``, on the
spliced files that :mod:`vmgrade.vad` describes): rate_wpm from reference
word counts over the measured message length was within 10% on 22/22 energy
splices (median |error| 0.0%), 20/22 at 15 dB SNR.
With Whisper "base" word counts instead (first 9 "clips" splices, partial
run): 7/9 within 10%; the two misses are Whisper dropping 40% of the words
(splices holding the MFA and Asterisk clips), not the message length.
"""

from __future__ import annotations

from .fillers import (
    ACOUSTIC_FILLER_MAX_S,
    ACOUSTIC_FILLER_MIN_S,
    FILLER_PAUSE_S,
    WORD_PAD_S,
    Filler,
    acoustic_fillers,
    count_digits,
    find_fillers,
    is_word,
    normalise_token,
    spoken_word_count,
    spoken_word_counts,
)
from .level import CLIP_LEVEL, bandwidth, clipping_ratio, rms_dbfs, snr_db, span_levels_dbfs
from .metrics import DEFAULT_THRESHOLDS, DeliveryMetrics, LabelThresholds, measure
from .pauses import Pause, find_pauses, subtract_spans
from .pitch import (
    F0_MAX_HZ,
    F0_MIN_HZ,
    F0_OUTLIER_ST,
    PitchTrack,
    drop_octave_errors,
    pitch_stats,
    pitch_track,
    pitch_track_from_audio,
    smooth_contour,
    yin,
)
from .timing import (
    PACE_WINDOW_S,
    SYLLABLES_PER_WORD,
    PaceWindow,
    SpanPace,
    frame_intensity_db,
    pace_windows,
    span_pace,
    syllable_nuclei,
)

__all__ = [
    "ACOUSTIC_FILLER_MAX_S", "ACOUSTIC_FILLER_MIN_S", "CLIP_LEVEL", "DEFAULT_THRESHOLDS", "F0_MAX_HZ",
    "F0_MIN_HZ", "F0_OUTLIER_ST", "FILLER_PAUSE_S", "PACE_WINDOW_S", "SYLLABLES_PER_WORD", "WORD_PAD_S",
    "DeliveryMetrics", "Filler", "LabelThresholds", "PaceWindow", "Pause", "PitchTrack", "SpanPace",
    "acoustic_fillers", "bandwidth", "clipping_ratio", "count_digits", "drop_octave_errors",
    "find_fillers", "find_pauses", "frame_intensity_db", "is_word", "measure", "normalise_token",
    "pace_windows", "pitch_stats", "pitch_track", "pitch_track_from_audio", "rms_dbfs", "smooth_contour",
    "snr_db", "span_levels_dbfs", "span_pace", "spoken_word_count", "spoken_word_counts",
    "subtract_spans", "syllable_nuclei", "yin",
]  # fmt: skip
