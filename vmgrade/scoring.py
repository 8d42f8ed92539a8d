"""Score a voicemail against the rubric: dimensions, overall score, letter,
timestamped findings, the top tips and strengths.

Every threshold and weight comes from the rubric file (``rubric.toml`` in
this package by default, each with its source); this module holds the logic
that applies them and, at the top, the named shapes of the score curves (how
much of a check a partial miss keeps), each with why that value.  The rubric
also sets the labels of the report's metrics: :func:`label_thresholds` hands
its cut-offs to :func:`vmgrade.delivery.measure`.

A check whose measurement is missing (no SNR without speech frames, no pitch
without voiced frames) is left out of its dimension, which then scores on the
checks it could measure, rather than being given marks it did not earn.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import tomllib

from .content import ContentFindings
from .delivery import DeliveryMetrics, LabelThresholds
from .errors import RubricError
from .timestamps import format_clock

DIMENSIONS = (
    "opening", "relevance", "call_to_action", "brevity", "pace", "fluency", "voice", "audio_quality",
)  # fmt: skip
SEVERITIES = ("critical", "major", "minor", "info")
TIP_COUNT = 3
MIN_TIP_GAIN = 0.1  # overall points; smaller fixes are not worth a tip
# Score at the edge of the acceptable band and at the flag line, for banded
# metrics (length, rate, fillers): a curve shape, not a threshold.
ACCEPTABLE_EDGE_SCORE = 75.0
FLAG_EDGE_SCORE = 30.0

# Pace (0-100): the rate curve carries 75 points and a clean flow the other 25,
# so a rate at the flag line (band score 30) with no dead air still reads ~48,
# and two long pauses (24 points) cost a little more than speaking at the
# acceptable edge (band score 75: 18.75 points).
PACE_RATE_SHARE = 0.75
PACE_FLOW_POINTS = 25.0
LONG_PAUSE_PENALTY = 12.0  # points per pause >= long_pause_s: two of them take most of the flow points
DEAD_AIR_PENALTY = 8.0  # extra points per pause >= dead_air_s (20 in all: dead air sounds like a drop-out)
LATE_START_PENALTY = 10.0  # silence before speaking > leading_silence_max_s: a pocket-dial start
# Relevance: each generic or weak phrase costs a third of its check, so three
# of them lose it all (one slip is forgiven more than a habit).
PHRASE_PENALTY = 0.34
# The ask: one extra ask or a hedged ask keeps 60% (the listener still knows
# roughly what to do); two or more extra asks keep 30% (they do not).
EXTRA_ASK_CREDIT = 0.6
MANY_ASKS_CREDIT = 0.3
SOFT_ASK_CREDIT = 0.6
# The reason: one concrete detail keeps 40% of the check (tied to them, but thin: their
# company's name alone is a mail-merge field); a reason-shaped sentence with no detail keeps
# nothing, as the generic pitch it is.  With no reason sentence, an offer or proof tied to them
# and as detailed as a full reason keeps 70% (the specifics are there, framed as what we do),
# a thinner one 30%.
PARTIAL_REASON_CREDIT = 0.4
DETAILED_PROOF_CREDIT = 0.7
PROOF_ONLY_CREDIT = 0.3
QUOTE_CHARS = 70  # evidence quoted in a finding is cut to this many characters
# Opening: a name or company said, but after the opening window, keeps 30%
# (it was heard, but after the listener decided whether to keep listening).
LATE_IDENTITY_CREDIT = 0.3
# Curve floors: the share of a check kept at its "poor" end, so a measurement
# at the poor line still differs from the worst case.
MONOTONE_CREDIT = 0.3  # pitch SD at monotone_sd_st (linear up to 1.0 at lively_sd_st)
NOISY_CREDIT = 0.2  # SNR at snr_poor_db (linear up to 1.0 at snr_good_db)
# A dimension none of whose checks could be measured scores this: neither
# credit nor penalty (the old half-marks for an unknown measurement).
UNKNOWN_DIMENSION_SCORE = 50.0
REQUIRED_THRESHOLDS = (
    "opening_window_s", "closing_window_s", "length_ideal_min_s", "length_ideal_max_s",
    "length_acceptable_min_s", "length_acceptable_max_s", "length_too_long_s", "length_too_short_s",
    "rate_ideal_min_wpm", "rate_ideal_max_wpm", "rate_acceptable_min_wpm", "rate_acceptable_max_wpm",
    "rate_too_fast_wpm", "rate_too_slow_wpm", "long_pause_s", "dead_air_s", "leading_silence_max_s",
    "filler_ok_per_min", "filler_bad_per_min", "monotone_sd_st", "lively_sd_st", "word_loudness_sd_min_db",
    "number_times_target", "number_max_digits_per_s", "number_min_pause_before_ms",
    "number_mismatch_max_score", "asks_target",
    "snr_good_db", "snr_poor_db", "clipping_max_ratio",
)  # fmt: skip
# Added after rubrics were first written: a rubric file without them takes the
# packaged rubric's value (:func:`label_thresholds`), so older files still load.
LATER_THRESHOLDS = ("pause_min_ms", "level_low_dbfs", "level_peak_high_dbfs", "reason_specific_details")
REQUIRED_POINTS = {
    "opening": ("name_early", "company_early", "identity_repeated"),
    "relevance": ("prospect_named", "specific_reason", "no_generic_pitch", "no_weak_phrases"),
    "call_to_action": ("one_clear_ask", "number_said", "number_twice", "number_slow", "number_chunked",
                       "number_cued"),
    "voice": ("pitch_variation", "loudness_variation"),
    "audio_quality": ("snr", "no_clipping", "level"),
}


@dataclass(frozen=True)
class Rubric:
    """Weights, thresholds (with sources), points and letter bands."""

    version: str
    letters: dict[str, float]
    labels: dict[str, str]
    weights: dict[str, float]
    thresholds: dict[str, float]
    sources: dict[str, str]
    points: dict[str, dict[str, float]]
    path: str

    def t(self, name: str) -> float:
        """Threshold ``name``; one of ``LATER_THRESHOLDS`` that the file lacks is the packaged rubric's."""
        if name not in self.thresholds and name in LATER_THRESHOLDS:
            return _packaged_thresholds()[name]
        return self.thresholds[name]

    def letter(self, score: float) -> str:
        for letter, floor in sorted(self.letters.items(), key=lambda kv: -kv[1]):
            if score >= floor:
                return letter
        return "F"


def default_rubric_path() -> Path:
    return Path(str(resources.files("vmgrade") / "rubric.toml"))


def load_rubric(path: str | os.PathLike | None = None) -> Rubric:
    """Read and check a rubric TOML file (the packaged default when ``path`` is None).

    Raises
    ------
    RubricError
        When the file is missing, not TOML, or lacks a dimension, threshold or point.
    """
    path = Path(path) if path is not None else default_rubric_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RubricError(f"{path}: rubric file not found", code="rubric_not_found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: not a valid TOML rubric ({exc})", code="rubric_invalid") from exc
    try:
        dims = data["dimensions"]
        missing = [d for d in DIMENSIONS if d not in dims]
        if missing:
            raise RubricError(f"{path}: missing dimensions: {', '.join(missing)}", code="rubric_invalid")
        weights = {d: float(dims[d]["weight"]) for d in DIMENSIONS}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise RubricError(f"{path}: weights must be >= 0 and not all 0", code="rubric_invalid")
        raw = data["thresholds"]
        missing = [t for t in REQUIRED_THRESHOLDS if t not in raw]
        if missing:
            raise RubricError(f"{path}: missing thresholds: {', '.join(missing)}", code="rubric_invalid")
        thresholds = {k: float(v["value"] if isinstance(v, dict) else v) for k, v in raw.items()}
        sources = {k: str(v.get("source", "")) for k, v in raw.items() if isinstance(v, dict)}
        points = {d: {k: float(v) for k, v in data["points"][d].items()} for d in REQUIRED_POINTS}
        for d, names in REQUIRED_POINTS.items():
            absent = [n for n in names if n not in points[d]]
            if absent:
                raise RubricError(f"{path}: [points.{d}] lacks {', '.join(absent)}", code="rubric_invalid")
        return Rubric(
            version=str(data.get("version", "unversioned")),
            letters={k: float(v) for k, v in data["letters"].items()},
            labels={d: str(dims[d].get("label", d)) for d in DIMENSIONS},
            weights=weights,
            thresholds=thresholds,
            sources=sources,
            points=points,
            path=str(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RubricError(f"{path}: malformed rubric ({type(exc).__name__}: {exc})",
                          code="rubric_invalid") from exc


_PACKAGED: dict[str, float] = {}


def _packaged_thresholds() -> dict[str, float]:
    if not _PACKAGED:
        _PACKAGED.update(load_rubric().thresholds)
    return _PACKAGED


def label_thresholds(rubric: Rubric | None = None) -> LabelThresholds:
    """The rubric's cut-offs for the report's labels, for :func:`vmgrade.delivery.measure`.

    Parameters
    ----------
    rubric : Rubric, optional
        The rubric in use; the packaged default when None.  A threshold in
        ``LATER_THRESHOLDS`` that the file lacks is the packaged rubric's.

    Returns
    -------
    LabelThresholds
    """
    rubric = rubric or load_rubric()
    t = rubric.t
    return LabelThresholds(
        min_pause_ms=t("pause_min_ms"),
        long_pause_s=t("long_pause_s"),
        monotone_sd_st=t("monotone_sd_st"),
        level_low_dbfs=t("level_low_dbfs"),
        peak_high_dbfs=t("level_peak_high_dbfs"),
        clip_ratio_high=t("clipping_max_ratio"),
    )


@dataclass(frozen=True)
class Finding:
    """Something to fix (or know), with where it happened and what fixing it is worth."""

    code: str
    severity: str
    dimension: str
    message: str
    start_s: float | None = None
    end_s: float | None = None
    gain: float = 0.0  # overall score points recovered by fixing it

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "dimension": self.dimension,
            "message": self.message,
            "start_s": None if self.start_s is None else round(self.start_s, 2),
            "end_s": None if self.end_s is None else round(self.end_s, 2),
            "gain": round(self.gain, 1),
        }


@dataclass(frozen=True)
class DimensionScore:
    key: str
    label: str
    score: float  # 0-100
    weight: float

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "score": round(self.score, 1), "weight": self.weight}


@dataclass(frozen=True)
class Grade:
    """The verdict: overall score and letter, per-dimension scores, findings, tips, strengths."""

    score: float
    letter: str
    dimensions: tuple[DimensionScore, ...]
    findings: tuple[Finding, ...]
    strengths: tuple[str, ...]
    rubric_version: str
    rubric_path: str

    @property
    def tips(self) -> tuple[Finding, ...]:
        """The findings whose fix would raise the score most."""
        ranked = sorted((f for f in self.findings if f.gain >= MIN_TIP_GAIN),
                        key=lambda f: (-f.gain, f.start_s or 0))
        return tuple(ranked[:TIP_COUNT])

    def to_dict(self) -> dict:
        return {
            "score": round(self.score, 1),
            "grade": self.letter,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "feedback": [f.to_dict() for f in self.findings],
            "tips": [f.to_dict() for f in self.tips],
            "strengths": list(self.strengths),
            "rubric": {"version": self.rubric_version, "path": self.rubric_path},
        }


@dataclass
class _Dimension:
    """Accumulates one dimension's checks: earned points, findings, strengths."""

    key: str
    rubric: Rubric
    earned: float = 0.0
    findings: list[tuple[str, str, str, float | None, float | None, float]] = field(default_factory=list)
    strengths: list[str] = field(default_factory=list)
    measured_points: float = 0.0  # points of the checks that could be measured
    unmeasured_points: float = 0.0  # points of checks left out (measurement missing)

    def check(self, name: str, fraction: float | None, *, finding=None, strength: str | None = None) -> None:
        """Award ``fraction`` of the check's points; a shortfall is attributed to ``finding``
        = (code, severity, message, start_s, end_s).  ``fraction=None``: the measurement
        is missing and the check is left out of the dimension (see :meth:`rescale`)."""
        points = self.rubric.points[self.key][name]
        if fraction is None:
            self.unmeasured_points += points
            return
        self.measured_points += points
        fraction = float(np.clip(fraction, 0.0, 1.0))
        self.earned += points * fraction
        if fraction < 1.0 and finding is not None:
            code, severity, message, start, end = finding
            self.findings.append((code, severity, message, start, end, points * (1.0 - fraction)))
        elif fraction >= 1.0 and strength:
            self.strengths.append(strength)

    def rescale(self) -> None:
        """Score on the measured checks only: scale earned points (and findings' lost
        points) by all points over measured points.  A no-op when every check was
        measured; ``UNKNOWN_DIMENSION_SCORE`` when none was."""
        if not self.unmeasured_points:
            return
        if not self.measured_points:
            self.earned = UNKNOWN_DIMENSION_SCORE
            return
        scale = (self.measured_points + self.unmeasured_points) / self.measured_points
        self.earned *= scale
        self.findings = [(*f[:5], f[5] * scale) for f in self.findings]

    def banded(self, score: float, finding=None, strength: str | None = None) -> None:
        """For dimensions scored by one curve (0-100) rather than points."""
        self.earned = float(np.clip(score, 0.0, 100.0))
        if self.earned < 100.0 and finding is not None:
            code, severity, message, start, end = finding
            self.findings.append((code, severity, message, start, end, 100.0 - self.earned))
        elif self.earned >= 100.0 and strength:
            self.strengths.append(strength)


def score(delivery: DeliveryMetrics, content: ContentFindings, rubric: Rubric | None = None) -> Grade:
    """Grade one voicemail.

    Parameters
    ----------
    delivery : DeliveryMetrics
        How it was said.
    content : ContentFindings
        What was said.
    rubric : Rubric, optional
        Thresholds and weights; the packaged default when None.

    Returns
    -------
    Grade
    """
    rubric = rubric or load_rubric()
    dims = {key: _Dimension(key, rubric) for key in DIMENSIONS}
    start = delivery.speech_start_s if delivery.message_length_s > 0 else content.message_start_s
    end = delivery.speech_end_s if delivery.message_length_s > 0 else content.message_end_s
    _opening(dims["opening"], content, rubric, start, end)
    _relevance(dims["relevance"], content, rubric)
    _call_to_action(dims["call_to_action"], content, rubric)
    _brevity(dims["brevity"], delivery, rubric, start, end)
    _pace(dims["pace"], delivery, rubric)
    _fluency(dims["fluency"], delivery, rubric)
    _voice(dims["voice"], delivery, rubric)
    _audio_quality(dims["audio_quality"], delivery, rubric)
    for dim in dims.values():
        dim.rescale()

    total_weight = sum(rubric.weights.values())
    dimension_scores = tuple(
        DimensionScore(k, rubric.labels[k], dims[k].earned, rubric.weights[k]) for k in DIMENSIONS
    )
    overall = sum(d.score * d.weight for d in dimension_scores) / total_weight
    if content.callback.matches_expected is False:
        overall = min(overall, rubric.t("number_mismatch_max_score"))
    findings = []
    for key, dim in dims.items():
        share = rubric.weights[key] / total_weight
        for code, severity, message, s, e, lost in dim.findings:
            findings.append(Finding(code, severity, key, message, s, e, lost * share))
    findings += _transcribability(content)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), -f.gain))
    strengths = tuple(s for k in DIMENSIONS for s in dims[k].strengths)
    return Grade(
        score=overall,
        letter=rubric.letter(overall),
        dimensions=dimension_scores,
        findings=tuple(findings),
        strengths=strengths,
        rubric_version=rubric.version,
        rubric_path=rubric.path,
    )


CONTENT_DIMENSIONS = ("opening", "relevance", "call_to_action")


def content_score(content: ContentFindings, rubric: Rubric | None = None) -> float:
    """The weighted score (0-100) of what was said alone: opening, relevance, call to action.

    For a script graded before it is recorded (``content.analyze_text``) and
    for benchmarks that feed text; the callback-number cap applies as in :func:`score`.
    """
    rubric = rubric or load_rubric()
    dims = {key: _Dimension(key, rubric) for key in CONTENT_DIMENSIONS}
    start, end = content.message_start_s, content.message_end_s
    _opening(dims["opening"], content, rubric, start, end)
    _relevance(dims["relevance"], content, rubric)
    _call_to_action(dims["call_to_action"], content, rubric)
    for dim in dims.values():
        dim.rescale()
    total = sum(rubric.weights[k] for k in CONTENT_DIMENSIONS)
    value = sum(dims[k].earned * rubric.weights[k] for k in CONTENT_DIMENSIONS) / total
    if content.callback.matches_expected is False:
        value = min(value, rubric.t("number_mismatch_max_score"))
    return value


def band_score(value: float, ideal: tuple[float, float], acceptable: tuple[float, float],
               flagged: tuple[float, float]) -> float:
    """100 inside ``ideal``, ACCEPTABLE_EDGE_SCORE at the acceptable edges,
    FLAG_EDGE_SCORE at the flag lines, 0 as far again beyond them; linear between."""
    lo_flag, hi_flag = flagged
    xs = [lo_flag - (acceptable[0] - lo_flag), lo_flag, acceptable[0], ideal[0],
          ideal[1], acceptable[1], hi_flag, hi_flag + (hi_flag - acceptable[1])]
    ys = [0.0, FLAG_EDGE_SCORE, ACCEPTABLE_EDGE_SCORE, 100.0, 100.0, ACCEPTABLE_EDGE_SCORE,
          FLAG_EDGE_SCORE, 0.0]
    return float(np.interp(value, xs, ys))


def _clock(seconds: float | None) -> str:
    return format_clock(seconds, missing="?")


def _opening(dim: _Dimension, c: ContentFindings, r: Rubric, start: float, end: float) -> None:
    window, closing = r.t("opening_window_s"), r.t("closing_window_s")
    ident = c.identity
    for check, label, first in (("name_early", "name", ident.name_first_s),
                                ("company_early", "company", ident.company_first_s)):
        if first is None:
            dim.check(check, 0.0, finding=(f"no_{'caller_name' if label == 'name' else 'company'}", "major",
                                            f"Say your {label} at the start: the listener never heard it.",
                                            start, min(end, start + window)))
        elif first - start <= window:
            dim.check(check, 1.0, strength=f"Your {label} came early, at {_clock(first)}.")
        else:
            dim.check(check, LATE_IDENTITY_CREDIT, finding=(
                f"late_{'caller_name' if label == 'name' else 'company'}", "major",
                f"Your {label} came only at {_clock(first)}: say it in the first {window:.0f} s.",
                first, first + 1.0))
    late = [m for m in ident.name_mentions + ident.company_mentions if m.start_s >= end - closing]
    early_only = all(m.start_s - start <= window for m in late) and end - start <= window + closing
    if late and not early_only:
        dim.check("identity_repeated", 1.0,
                  strength=f"You repeated who you are at the end ({_clock(late[0].start_s)}).")
    else:
        dim.check("identity_repeated", 0.0, finding=(
            "identity_not_repeated", "minor",
            "Repeat your name and company at the end, with the number, so they stick.",
            max(start, end - closing), end))


def _reason(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    """The reason earns its points by concrete details tied to the prospect, not by its shape."""
    reason = c.reason
    found = _distinct(reason.details) if reason else []
    need = int(r.t("reason_specific_details"))
    if c.specific_reasons and len(found) >= need:
        e = c.specific_reasons[0]
        details = ", ".join(f"{d.text} ({d.kind})" for d in found[:4])
        dim.check("specific_reason", 1.0,
                  strength=f"A specific reason tied to them at {_clock(e.start_s)}: {details}.")
    elif c.specific_reasons:
        e = c.specific_reasons[0]
        d = found[0]
        dim.check("specific_reason", PARTIAL_REASON_CREDIT, finding=(
            "thin_reason", "minor",
            f"Your reason (\"{_quote(e.text)}\") has one concrete detail ({d.text}): add another — a "
            "place, a number, a date, a peer they know — so it could only be about them.",
            e.start_s, e.end_s))
    else:
        proof = _distinct(reason.proof_details) if reason else []
        vague = c.vague_reasons
        if vague:
            e = vague[0]
            code, message, where = "vague_reason", (
                f"Your reason (\"{_quote(e.text)}\") has a reason's shape but nothing concrete about them: "
                "say what you saw — their news, a place, a number, a date — in plain words."), (
                e.start_s, e.end_s)
        else:
            code, message, where = "no_specific_reason", (
                "Give a reason tied to their business — news, a trigger event, something on their website — "
                "instead of a general pitch."), (None, None)
        credit = DETAILED_PROOF_CREDIT if len(proof) >= need else (PROOF_ONLY_CREDIT if proof else 0.0)
        dim.check("specific_reason", credit, finding=(code, "major", message, *where))


def _distinct(details) -> list:
    """Details with distinct words ("March" said twice is one detail)."""
    seen, out = set(), []
    for d in details:
        key = re.sub(r"['’]s$", "", d.text.lower().strip(" ,."))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split()).strip(",. ")
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _relevance(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    if c.prospect_name_mentions:
        dim.check("prospect_named", 1.0, strength=f"You addressed {c.prospect_name} by name.")
    else:
        dim.check("prospect_named", 0.0, finding=(
            "prospect_not_named", "minor",
            "Open with the prospect's name: it shows the message is for them, not a blast.",
            c.message_start_s, c.message_start_s + 1.0))
    _reason(dim, c, r)
    generic = list(c.generic_phrases) + list(c.vague_reasons)
    generic.sort(key=lambda e: e.start_s)
    if generic:
        e = generic[0]
        quoted = ", ".join(f'"{_quote(g.text)}"' for g in generic[:3])
        dim.check("no_generic_pitch", 1.0 - PHRASE_PENALTY * len(generic), finding=(
            "generic_pitch", "major" if not c.specific_reasons else "minor",
            f"Generic pitch ({quoted}): swap it for one concrete fact about them, or a result you got "
            "for a company like theirs.", e.start_s, generic[-1].end_s))
    else:
        dim.check("no_generic_pitch", 1.0, strength="No generic sales language.")
    weak = c.weak_phrases
    if weak:
        e = weak[0]
        quoted = ", ".join(f'"{_quote(w.text)}" ({_clock(w.start_s)})' for w in weak[:3])
        dim.check("no_weak_phrases", 1.0 - PHRASE_PENALTY * len(weak), finding=(
            "weak_phrase", "major",
            f"Cut weak or filler phrases: {quoted}. Lead with why they should call back.",
            e.start_s, weak[-1].end_s))
    else:
        dim.check("no_weak_phrases", 1.0, strength="No \"just checking in\" or apologies.")


def _call_to_action(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    n = c.ask_count
    target = int(r.t("asks_target"))
    if n == 0:
        dim.check("one_clear_ask", 0.0, finding=(
            "no_call_to_action", "critical",
            "End with one clear ask: \"Could you call me back to book 15 minutes on Thursday?\"",
            c.message_end_s - 3.0 if c.message_end_s > 3 else 0.0, c.message_end_s))
    elif n > target:
        first = c.asks[0]
        kinds = ", ".join(c.ask_kinds)
        dim.check("one_clear_ask", EXTRA_ASK_CREDIT if n == target + 1 else MANY_ASKS_CREDIT, finding=(
            "too_many_asks", "major",
            f"You made {n} different asks ({kinds}): pick one, so the listener knows what to do.",
            first.start_s, c.asks[-1].end_s))
    elif c.soft_asks:
        s = c.soft_asks[0]
        dim.check("one_clear_ask", SOFT_ASK_CREDIT, finding=(
            "soft_ask", "minor",
            f"Your ask is hedged (\"{_quote(s.text)}\"): propose a time instead.", s.start_s, s.end_s))
    else:
        a = c.asks[0]
        dim.check("one_clear_ask", 1.0,
                  strength=f"One clear ask (\"{_quote(a.text)}\" at {_clock(a.start_s)}).")

    cb = c.callback
    number_checks = ("number_said", "number_twice", "number_slow", "number_chunked", "number_cued")
    if cb.expected and cb.digits and cb.matches_expected is False:
        where = (cb.mentions[0].start_s, cb.mentions[0].end_s) if cb.mentions else (None, None)
        dim.check("number_said", 0.0, finding=(
            "number_mismatch", "critical",
            f"The number you said ({_fmt(cb.digits)}) is not your callback number ({_fmt(cb.expected)}): "
            "the prospect cannot reach you." + (f" ({cb.note}.)" if cb.note else ""), *where))
        for name in number_checks[1:]:
            dim.check(name, 0.0)
        return
    if cb.status == "unconfirmed" and cb.mentions:
        m = cb.mentions[0]
        dim.findings.append(("number_unconfirmed", "info",
                             f"Check your number: {cb.note}.", m.start_s, m.end_s, 0.0))
    if not cb.mentions:
        dim.check("number_said", 0.0, finding=(
            "no_callback_number", "critical",
            "Leave your callback number — slowly, in groups (3-3-4), and twice.", None, None))
        for name in number_checks[1:]:
            dim.check(name, 0.0)
        return
    first = cb.mentions[0]
    dim.check("number_said", 1.0)
    times_target = int(r.t("number_times_target"))
    max_dps = r.t("number_max_digits_per_s")
    fastest = max(cb.mentions, key=lambda m: m.digits_per_s)
    if cb.times_said >= times_target:
        dim.check("number_twice", 1.0, strength=f"You said your number {cb.times_said} times.")
    else:
        dim.check("number_twice", 0.0, finding=(
            "number_once", "major",
            f"You said your number once, at {first.digits_per_s:.1f} digits/s: say it twice, slower "
            "(start and end, or twice at the end).", first.start_s, first.end_s))
    if fastest.digits_per_s <= max_dps:
        dim.check("number_slow", 1.0, strength=f"Your number was slow enough to write down "
                                                f"({fastest.digits_per_s:.1f} digits/s).")
    else:
        dim.check("number_slow", 1.0 - (fastest.digits_per_s - max_dps) / max_dps, finding=(
            "number_fast", "major",
            f"Your number went by at {fastest.digits_per_s:.1f} digits/s: slow to about {max_dps:g}, "
            "a pause between groups.", fastest.start_s, fastest.end_s))
    unchunked = [m for m in cb.mentions if not m.chunked]
    if not unchunked:
        dim.check("number_chunked", 1.0, strength="You chunked the number (3-3-4).")
    else:
        m = unchunked[0]
        dim.check("number_chunked", 1.0 - len(unchunked) / cb.times_said, finding=(
            "number_not_chunked", "minor",
            "Say the number in groups with a short pause between them: 415 … 555 … 0198.",
            m.start_s, m.end_s))
    cued = first.cued or (first.pause_before_ms or 0.0) >= r.t("number_min_pause_before_ms")
    if cued:
        dim.check("number_cued", 1.0)
    else:
        dim.check("number_cued", 0.0, finding=(
            "number_not_cued", "minor",
            "Cue the number (\"my number is…\") and pause before it, so they are ready to write.",
            first.start_s, first.end_s))


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
                   f"Your message runs {length:.0f} s: aim for {lo:.0f}–{hi:.0f} s. Cut what does not "
                   "serve the one reason and the one ask.", start + hi, end)
    else:
        finding = ("too_short", "major" if length < r.t("length_acceptable_min_s") else "minor",
                   f"Your message is only {length:.0f} s: take {lo:.0f}–{hi:.0f} s to give a reason "
                   "and your number.", start, end)
    dim.banded(value, finding, strength=f"Good length ({length:.0f} s).")


def _pace(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    wpm = d.rate_wpm if d.rate_wpm is not None else d.syllable_wpm_estimate
    rate = band_score(
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
                             f"You spoke at {wpm:.0f} wpm: slow to {lo:.0f}–{hi:.0f} wpm so every word "
                             "lands.",
                             fastest.start_s if fastest else None, fastest.end_s if fastest else None,
                             PACE_RATE_SHARE * (100.0 - rate)))
        else:
            findings.append(("too_slow", "major" if wpm < r.t("rate_acceptable_min_wpm") else "minor",
                             f"You spoke at {wpm:.0f} wpm: pick up to {lo:.0f}–{hi:.0f} wpm to sound "
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
                         f"{d.leading_silence_s:.1f} s of silence before you speak: start talking at "
                         "the beep.",
                         0.0, d.speech_start_s, LATE_START_PENALTY))
    dim.earned = float(np.clip(value, 0.0, 100.0))
    dim.findings.extend(findings)
    if not findings:
        dim.strengths.append(f"Good pace ({wpm:.0f} wpm) without dead air.")


def _fluency(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    rate = d.filler_rate_per_min or 0.0
    ok, bad = r.t("filler_ok_per_min"), r.t("filler_bad_per_min")
    value = float(np.interp(rate, [ok, bad, 2 * bad], [100.0, FLAG_EDGE_SCORE, 0.0]))
    fillers = [f for f in d.fillers if f.source == "transcript"] or list(d.fillers)
    where = ", ".join(f"\"{f.word or 'uh'}\" {_clock(f.start_s)}" for f in fillers[:4])
    finding = ("fillers", "major" if rate >= bad else "minor",
               f"{d.filler_count} fillers ({rate:.1f}/min: {where}): pause silently instead.",
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
            f"Your pitch varies only {d.f0_sd_st:.1f} semitones: let your voice rise and fall "
            "(smile, stress the key words).", None, None),
            strength=f"Lively voice (pitch varies {d.f0_sd_st:.1f} semitones).")
    min_db = r.t("word_loudness_sd_min_db")
    if d.word_loudness_sd_db is None:
        dim.check("loudness_variation", None)
    else:
        dim.check("loudness_variation", d.word_loudness_sd_db / min_db, finding=(
            "flat_loudness", "minor",
            f"Your loudness barely changes ({d.word_loudness_sd_db:.1f} dB between words): stress the "
            "words that matter.", None, None))


def _audio_quality(dim: _Dimension, d: DeliveryMetrics, r: Rubric) -> None:
    good, poor = r.t("snr_good_db"), r.t("snr_poor_db")
    snr = d.snr_db
    if snr is None:  # no speech frames: the noise floor is unknown
        dim.check("snr", None)
    else:
        dim.check("snr", float(np.interp(snr, [poor, good], [NOISY_CREDIT, 1.0])), finding=(
            "noisy", "major" if snr < poor else "minor",
            f"Background noise ({snr:.0f} dB SNR): record somewhere quieter or closer to the mic.",
            None, None), strength="Clean recording.")
    clipped = d.clipping_ratio > r.t("clipping_max_ratio")
    dim.check("no_clipping", 0.0 if clipped else 1.0, finding=(
        "clipping", "major", f"{d.clipping_ratio:.2%} of the audio is clipped: move back from the mic or "
        "lower the input gain.", None, None))
    if d.level_too_low:
        dim.check("level", 0.0, finding=("level_too_low", "minor",
                                         f"The recording is quiet ({d.loudness_dbfs:.0f} dBFS): speak up "
                                         "or raise the input gain.", None, None))
    elif d.level_too_high:
        dim.check("level", 0.0, finding=("level_too_high", "minor",
                                         "The recording peaks at full scale: lower the input gain.",
                                         None, None))
    else:
        dim.check("level", 1.0)


def _transcribability(c: ContentFindings) -> list[Finding]:
    out = []
    labels = {"caller_name": "your name", "company": "your company name", "callback_number": "your number"}
    for e in c.low_confidence:
        out.append(Finding(
            "hard_to_transcribe", "minor", "opening" if e.kind != "callback_number" else "call_to_action",
            f"{labels.get(e.kind, e.kind).capitalize()} (\"{e.text.strip(',.')}\") was hard to transcribe: "
            "a phone's voicemail-to-text would garble it too. Say it slower and clearer.",
            e.start_s, e.end_s, 0.0))
    return out


def _fmt(digits: str) -> str:
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return digits


__all__ = ["DimensionScore", "Finding", "Grade", "Rubric", "band_score", "content_score", "label_thresholds",
           "load_rubric", "score"]
