"""The delivery checks: brevity, pace and pauses, fillers, voice and audio quality.  Each writes
into its dimension (:class:`~vmgrade.scoring.grade._Dimension`), reading every threshold from the
rubric."""

from __future__ import annotations

import numpy as np

from ..delivery import DeliveryMetrics
from .grade import FLAG_EDGE_SCORE, _Dimension, band_score, past
from .grade import clock as _clock
from .rubric import Rubric

# Pace (0-100): the rate curve carries 75 points and a clean flow the other 25,
# so a rate at the flag line (band score 30) with no dead air still reads ~48,
# and two long pauses (24 points) cost a little more than speaking at the
# acceptable edge (band score 75: 18.75 points).
PACE_RATE_SHARE = 0.75
PACE_FLOW_POINTS = 25.0
LONG_PAUSE_PENALTY = 12.0  # points per pause >= long_pause_s: two of them take most of the flow points
DEAD_AIR_PENALTY = 8.0  # extra points per pause >= dead_air_s (20 in all: dead air sounds like a drop-out)
LATE_START_PENALTY = 10.0  # silence before speaking > leading_silence_max_s: a pocket-dial start
# Curve floors: the share of a check kept at its "poor" end, so a measurement
# at the poor line still differs from the worst case.
MONOTONE_CREDIT = 0.3  # pitch SD at monotone_sd_st (linear up to 1.0 at lively_sd_st)
NOISY_CREDIT = 0.2  # SNR at snr_poor_db (linear up to 1.0 at snr_good_db)


def _brevity(dim: _Dimension, d: DeliveryMetrics, r: Rubric, start: float, end: float) -> None:
    length = d.message_length_s
    value = band_score(
        length,
        (r.t("length_ideal_min_s"), r.t("length_ideal_max_s")),
        (r.t("length_acceptable_min_s"), r.t("length_acceptable_max_s")),
        (r.t("length_too_short_s"), r.t("length_too_long_s")),
    )
    lo, hi = r.t("length_ideal_min_s"), r.t("length_ideal_max_s")
    if length > hi:
        finding = ("too_long", "major" if length > r.t("length_acceptable_max_s") else "minor",
                   f"Your message runs {past(length, hi)} s: aim for {lo:.0f}–{hi:.0f} s. Cut what does not "
                   "serve the one reason and the one ask.", start + hi, end)
    else:
        finding = ("too_short", "major" if length < r.t("length_acceptable_min_s") else "minor",
                   f"Your message is only {past(length, lo)} s: take {lo:.0f}–{hi:.0f} s to give a reason "
                   "and your number.", start, end)
    dim.banded(value, finding, strength=f"Good length ({length:.0f} s).")


def _pace(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    wpm = d.rate_wpm if d.rate_wpm is not None else d.syllable_wpm_estimate
    # too little speech for a rate (rubric pace_min_speech_s / pace_min_words): the rate is neutral,
    # neither praised nor faulted; pauses and the start still count
    measurable = getattr(d, "pace_measurable", True)
    rate = 100.0 if not measurable else band_score(
        wpm,
        (r.t("rate_ideal_min_wpm"), r.t("rate_ideal_max_wpm")),
        (r.t("rate_acceptable_min_wpm"), r.t("rate_acceptable_max_wpm")),
        (r.t("rate_too_slow_wpm"), r.t("rate_too_fast_wpm")),
    )
    lo, hi = r.t("rate_ideal_min_wpm"), r.t("rate_ideal_max_wpm")
    long_pauses = [p for p in d.pauses if p.duration_ms >= r.t("long_pause_s") * 1000]
    dead_air = [p for p in long_pauses if p.duration_ms >= r.t("dead_air_s") * 1000]
    pause_penalty = LONG_PAUSE_PENALTY * len(long_pauses) + DEAD_AIR_PENALTY * len(dead_air)
    late_start = d.leading_silence_s > r.t("leading_silence_max_s")
    late_penalty = LATE_START_PENALTY if late_start else 0.0
    value = PACE_RATE_SHARE * rate + PACE_FLOW_POINTS - pause_penalty - late_penalty
    findings = []
    if rate < 100.0:
        fastest = max(d.pace_windows, key=lambda w: w.rate_wpm, default=None)
        slowest = min(d.pace_windows, key=lambda w: w.rate_wpm, default=None)
        if wpm > hi:
            findings.append(("too_fast", "major" if wpm > r.t("rate_acceptable_max_wpm") else "minor",
                             f"You spoke at {past(wpm, hi)} wpm: slow to {lo:.0f}–{hi:.0f} wpm so every word "
                             "lands.",
                             fastest.start_s if fastest else None, fastest.end_s if fastest else None,
                             PACE_RATE_SHARE * (100.0 - rate)))
        else:
            findings.append(("too_slow", "major" if wpm < r.t("rate_acceptable_min_wpm") else "minor",
                             f"You spoke at {past(wpm, lo)} wpm: pick up to {lo:.0f}–{hi:.0f} wpm to sound "
                             "confident.",
                             slowest.start_s if slowest else None, slowest.end_s if slowest else None,
                             PACE_RATE_SHARE * (100.0 - rate)))
    if long_pauses:
        p = max(long_pauses, key=lambda p: p.duration_ms)
        findings.append(("long_pause", "major" if dead_air else "minor",
                         f"{len(long_pauses)} long pause(s), the longest {p.duration_ms / 1000:.1f} s at "
                         f"{_clock(p.start_s)}: dead air makes a voicemail sound unprepared.",
                         p.start_s, p.end_s, min(pause_penalty, value + pause_penalty)))
    if late_start:
        findings.append(("late_start", "minor",
                         f"{past(d.leading_silence_s, r.t('leading_silence_max_s'), 1)} s of silence "
                         "before you speak: start talking at "
                         "the beep.",
                         0.0, d.speech_start_s, LATE_START_PENALTY))
    dim.earned = float(np.clip(value, 0.0, 100.0))
    dim.findings.extend(findings)
    if not findings and measurable:
        dim.strengths.append(f"Good pace ({wpm:.0f} wpm) without dead air.")


def _fluency(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    rate = d.filler_rate_per_min or 0.0
    ok, bad = r.t("filler_ok_per_min"), r.t("filler_bad_per_min")
    value = float(np.interp(rate, [ok, bad, 2 * bad], [100.0, FLAG_EDGE_SCORE, 0.0]))
    fillers = [f for f in d.fillers if f.source == "transcript"] or list(d.fillers)
    where = ", ".join(f"\"{f.word or 'uh'}\" {_clock(f.start_s)}" for f in fillers[:4])
    finding = ("fillers", "major" if rate >= bad else "minor",
               f"{d.filler_count} fillers ({past(rate, ok, 1)}/min: {where}): pause silently instead.",
               fillers[0].start_s if fillers else None, fillers[-1].end_s if fillers else None)
    dim.banded(value, finding, strength="Almost no filler words.")


def _voice(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    mono, lively = r.t("monotone_sd_st"), r.t("lively_sd_st")
    if d.f0_sd_st is None:
        dim.check("pitch_variation", None)
    else:
        fraction = float(np.interp(d.f0_sd_st, [mono, lively], [MONOTONE_CREDIT, 1.0]))
        dim.check("pitch_variation", fraction, finding=(
            "monotone", "major" if d.f0_sd_st < mono else "minor",
            f"Your pitch varies only {past(d.f0_sd_st, lively, 1)} semitones: let your voice rise and fall "
            "(smile, stress the key words).", None, None),
            strength=f"Lively voice (pitch varies {d.f0_sd_st:.1f} semitones).")
    min_db = r.t("word_loudness_sd_min_db")
    if d.word_loudness_sd_db is None:
        dim.check("loudness_variation", None)
    else:
        dim.check("loudness_variation", d.word_loudness_sd_db / min_db, finding=(
            "flat_loudness", "minor",
            f"Your loudness barely changes ({past(d.word_loudness_sd_db, min_db, 1)} dB between words): "
            "stress the words that matter.", None, None))


def _audio_quality(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    good, poor = r.t("snr_good_db"), r.t("snr_poor_db")
    snr = d.snr_db
    if snr is None:  # no speech frames: the noise floor is unknown
        dim.check("snr", None)
    else:
        dim.check("snr", float(np.interp(snr, [poor, good], [NOISY_CREDIT, 1.0])), finding=(
            "noisy", "major" if snr < poor else "minor",
            f"Background noise ({past(snr, good)} dB SNR): record somewhere quieter or closer to the mic.",
            None, None), strength="Clean recording.")
    clipped = d.clipping_ratio > r.t("clipping_max_ratio")
    dim.check("no_clipping", 0.0 if clipped else 1.0, finding=(
        "clipping", "major", f"{past(100 * d.clipping_ratio, 100 * r.t('clipping_max_ratio'), 2)}% of the "
        "audio is clipped: move back from the mic or "
        "lower the input gain.", None, None))
    if d.level_too_low:
        quiet = past(d.loudness_dbfs, r.t("level_low_dbfs"))
        dim.check("level", 0.0, finding=("level_too_low", "minor",
                                         f"The recording is quiet ({quiet} dBFS): speak up "
                                         "or raise the input gain.", None, None))
    elif d.level_too_high:
        dim.check("level", 0.0, finding=("level_too_high", "minor",
                                         "The recording peaks at full scale: lower the input gain.",
                                         None, None))
    else:
        dim.check("level", 1.0)
