"""The delivery measurement as a whole: :func:`measure` and :class:`DeliveryMetrics`.

:func:`measure` runs the pieces of this package on one recording (speech
track, pitch, syllables, words, level) and fills :class:`DeliveryMetrics`,
whose ``to_dict()`` is the report's ``metrics`` key.  The few cut-offs that
turn a measurement into a label of the report (a pause is a pause, a pause is
long, a voice is monotone, a level is too low or too high) come in as
:class:`LabelThresholds`, which the pipeline builds from the rubric in use
(:func:`vmgrade.scoring.label_thresholds`), so a custom rubric's report agrees
with its grade.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..transcript import Transcript
from ..vad import HOP_S, detect_speech, frame_times, power_spectrogram
from ._round import _r
from .fillers import WORD_PAD_S, Filler, acoustic_fillers, find_fillers, is_word, spoken_word_counts
from .level import (
    CLIP_LEVEL,
    NO_NOISE_DBFS,
    bandwidth,
    clipping_ratio,
    noise_floor_dbfs,
    rms_dbfs,
    snr_db,
    span_levels_dbfs,
)
from .pauses import Pause, find_pauses
from .pitch import F0_MAX_HZ, F0_MIN_HZ, PitchTrack, pitch_stats, pitch_track, yin
from .timing import (
    PACE_WINDOW_S,
    SYLLABLES_PER_WORD,
    PaceWindow,
    frame_intensity_db,
    pace_windows,
    syllable_nuclei,
)

if TYPE_CHECKING:
    from ..audio import Audio


@dataclass(frozen=True)
class LabelThresholds:
    """The cut-offs behind the report's labels; the rubric owns them.

    The defaults are the packaged ``rubric.toml``'s values (a test holds them
    equal); :func:`vmgrade.scoring.label_thresholds` builds the set of any rubric.

    Attributes
    ----------
    min_pause_ms : float
        Shortest silent gap counted as a pause, ms (rubric ``pause_min_ms``).
    long_pause_s : float
        A pause at least this long is long, s (rubric ``long_pause_s``).
    monotone_sd_st : float
        ``monotone`` when F0 SD is below this, semitones (rubric ``monotone_sd_st``).
    level_low_dbfs : float
        ``level_too_low`` when speech RMS is below this, dBFS (rubric ``level_low_dbfs``).
    peak_high_dbfs : float
        ``level_too_high`` when the peak reaches this with any clipping, dBFS
        (rubric ``level_peak_high_dbfs``).
    clip_ratio_high : float
        ``level_too_high`` when at least this share of samples is clipped
        (rubric ``clipping_max_ratio``).
    pace_min_speech_s, pace_min_words : float, int
        A word rate needs at least this much speech time and this many words;
        below either, ``rate_wpm`` is None and ``pace_measurable`` False
        (rubric ``pace_min_speech_s``, ``pace_min_words``).
    """

    min_pause_ms: float = 250.0
    long_pause_s: float = 1.5
    monotone_sd_st: float = 2.0
    level_low_dbfs: float = -35.0
    peak_high_dbfs: float = -0.1
    clip_ratio_high: float = 1e-3
    pace_min_speech_s: float = 3.0
    pace_min_words: int = 8


DEFAULT_THRESHOLDS = LabelThresholds()


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
    ``LabelThresholds.min_pause_ms`` between speech), ``pause_count``, ``long_pause_count``,
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
    ``monotone`` (``f0_sd_st < LabelThresholds.monotone_sd_st``), ``voiced_time_s``; all None
    when nothing is voiced.  ``loudness_dbfs`` (RMS over speech),
    ``peak_dbfs``, ``word_loudness_sd_db`` (SD of per-word RMS dBFS),
    ``word_loudness_source`` ("words" or "speech_intervals").

    Quality: ``clipping_ratio`` (share of samples with |x| >= 0.98),
    ``snr_db``, ``bandwidth`` ("narrowband"/"wideband"), ``bandwidth_hz``,
    ``hf_energy_db`` (speech energy above 4.1 kHz re total, dB),
    ``level_too_low``, ``level_too_high`` (per :class:`LabelThresholds`).

    Drawing: ``pitch_track`` ({times_s, f0_hz}: the smoothed F0 contour, 10
    points per second, None where unvoiced; :func:`~vmgrade.delivery.pitch.pitch_track`).
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
    # drawing
    pitch_track: PitchTrack | None = None
    # False when there is too little speech for a rate (LabelThresholds.pace_min_*): rate_wpm None
    pace_measurable: bool = True
    snr_note: str | None = None  # why snr_db is None ("no_noise": digital silence between words)

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
            "pace_measurable": self.pace_measurable,
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
            "snr_note": self.snr_note,
            "bandwidth": self.bandwidth,
            "bandwidth_hz": _r(self.bandwidth_hz, 0),
            "hf_energy_db": _r(self.hf_energy_db, 1),
            "level_too_low": bool(self.level_too_low),
            "level_too_high": bool(self.level_too_high),
            "pitch_track": None if self.pitch_track is None else self.pitch_track.to_dict(),
        }


def measure(
    audio: Audio,
    transcript: Transcript | None = None,
    *,
    vad: str = "auto",
    thresholds: LabelThresholds = DEFAULT_THRESHOLDS,
    min_pause_ms: float | None = None,
    long_pause_s: float | None = None,
    monotone_sd_st: float | None = None,
    level_low_dbfs: float | None = None,
    peak_high_dbfs: float | None = None,
    fmin_hz: float = F0_MIN_HZ,
    fmax_hz: float = F0_MAX_HZ,
    pace_window_s: float = PACE_WINDOW_S,
    syllables_per_word: float = SYLLABLES_PER_WORD,
    word_pad_s: float = WORD_PAD_S,
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
    thresholds : LabelThresholds
        The label cut-offs (the pipeline passes the rubric's); default: the
        packaged rubric's.
    min_pause_ms, long_pause_s, monotone_sd_st, level_low_dbfs, peak_high_dbfs : float, optional
        Override one field of ``thresholds`` (units as there).
    fmin_hz, fmax_hz : float
        F0 search range, Hz.
    pace_window_s : float
        Window of ``pace_windows``, s.
    syllables_per_word : float
        For ``syllable_wpm_estimate``.
    word_pad_s : float
        Padding of word spans when looking for uncovered voiced sound, s.
    clip_level : float
        Sample magnitude counted as clipped (full scale 1.0).
    timings : dict, optional
        When given, filled with seconds spent per step (vad, pitch,
        syllables, quality, words).

    Returns
    -------
    DeliveryMetrics
    """
    overrides = {
        "min_pause_ms": min_pause_ms, "long_pause_s": long_pause_s, "monotone_sd_st": monotone_sd_st,
        "level_low_dbfs": level_low_dbfs, "peak_high_dbfs": peak_high_dbfs,
    }  # fmt: skip
    t = replace(thresholds, **{k: v for k, v in overrides.items() if v is not None})
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
    contour = pitch_track(f0)
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
    pauses = find_pauses(speech, min_pause_ms=t.min_pause_ms)
    pause_time = sum(p.end_s - p.start_s for p in pauses)
    speech_time = max(0.0, message - pause_time)

    # syllables
    nuclei = nuclei[(nuclei >= sp_start) & (nuclei <= sp_end)] if speech else nuclei[:0]
    syl_rate = len(nuclei) / message if message > 0 else 0.0

    # words
    words = tuple(w for w in transcript.words if is_word(w)) if transcript is not None else None
    uncovered: list[Pause] = []
    if words is not None:
        spoken = np.array(spoken_word_counts([w.word for w in words]), dtype=int)
        word_count: int | None = int(spoken.sum())
        rate = word_count / message * 60.0 if message > 0 else 0.0
        artic = word_count / speech_time * 60.0 if speech_time > 0 else 0.0
        pace_measurable = speech_time >= t.pace_min_speech_s and word_count >= t.pace_min_words
        mids = np.repeat([(w.start + w.end) / 2 for w in words], spoken)
        windows = pace_windows(mids, sp_start, sp_end, window_s=pace_window_s)
        pace_source = "transcript"
        fillers = find_fillers(words)
        uncovered, acoustic = acoustic_fillers(voiced, words, duration, word_pad_s=word_pad_s)
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
        pace_measurable = speech_time >= t.pace_min_speech_s
        windows = pace_windows(nuclei, sp_start, sp_end, window_s=pace_window_s, per_word=syllables_per_word)
        pace_source = "syllables"
        token_count = acoustic_count = filler_total = None
        filler_rate = None
        all_fillers = ()
    if not pace_measurable:  # too little speech for a rate: none is reported, nothing graded on it
        rate = artic = None
        windows = []
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
    snr_note = None
    if snr is not None and noise_floor_dbfs(frame_power, speech_mask) < NO_NOISE_DBFS:
        snr, snr_note = None, "no_noise"  # digital silence between words: no noise to measure
    bw, bw_hz, hf_db = bandwidth(power, freqs, speech_mask, getattr(audio.source, "sample_rate_hz", None))
    too_low = loudness is not None and loudness < t.level_low_dbfs
    too_high = (peak_db >= t.peak_high_dbfs and clip > 0) or clip >= t.clip_ratio_high
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
        pace_measurable=pace_measurable,
        snr_note=snr_note,
        pauses=tuple(pauses),
        pause_count=len(pauses),
        long_pause_count=sum(1 for p in pauses if p.end_s - p.start_s >= t.long_pause_s),
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
        monotone=None if f0_sd is None else bool(f0_sd < t.monotone_sd_st),
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
        pitch_track=contour,
    )


def _mask_from_intervals(times: np.ndarray, intervals: Sequence[tuple[float, float]]) -> np.ndarray:
    """Frame mask: True where the frame centre lies inside an interval."""
    mask = np.zeros(times.shape, bool)
    for s, e in intervals:
        mask[np.searchsorted(times, s) : np.searchsorted(times, e)] = True
    return mask
