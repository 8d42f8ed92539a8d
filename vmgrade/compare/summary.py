"""The plain-language summary of a comparison: what got better, what got worse, what next."""

from __future__ import annotations

from ..report import finding_label
from ..scoring import Rubric
from .deltas import METRICS, Delta, Trend, _Metric

# What the summary says when a finding goes away (or appears) and no metric line speaks for it.
FIXED_PHRASES = {
    "identity_not_repeated": "you now repeat who you are at the end",
    "prospect_not_named": "you now address the prospect by name",
    "no_specific_reason": "you now give a reason tied to the prospect",
    "vague_reason": "your reason now says something concrete about them",
    "thin_reason": "your reason now carries more concrete detail",
    "research_theatre": "your reason now gives a real fact instead of praise",
    "generic_pitch": "the generic pitch is gone",
    "weak_phrase": "the weak phrases are gone",
    "soft_ask": "your ask is no longer hedged",
    "number_mismatch": "the number you say now matches your callback number",
    "number_unconfirmed": "your number is now heard as your callback number",
    "number_not_chunked": "you now say the number in groups",
    "number_not_cued": "you now cue the number before saying it",
    "level_too_low": "the recording level is no longer too low",
    "level_too_high": "the recording no longer peaks at full scale",
    "hard_to_transcribe": "your name, company and number now transcribe cleanly",
}
NEW_PHRASES = {
    "identity_not_repeated": "you no longer repeat who you are at the end",
    "prospect_not_named": "you no longer address the prospect by name",
    "no_specific_reason": "you no longer give a reason tied to the prospect",
    "vague_reason": "your reason lost its concrete detail",
    "thin_reason": "your reason lost some of its concrete detail",
    "research_theatre": "praise now stands in for a real reason",
    "generic_pitch": "generic pitch crept in",
    "weak_phrase": "weak phrases crept in",
    "soft_ask": "your ask is now hedged",
    "number_mismatch": "the number you say no longer matches your callback number",
    "number_unconfirmed": "your number could not be confirmed: check how it was said",
    "number_not_chunked": "you no longer say the number in groups",
    "number_not_cued": "you no longer cue the number",
    "level_too_low": "the recording level is now too low",
    "level_too_high": "the recording now peaks at full scale",
    "hard_to_transcribe": "some of your name, company or number was hard to transcribe",
}


def _ordinal_times(n: float) -> str:
    n = int(n)
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")


def summarize(score: Delta | None, metrics: list[Delta], dimensions: list[Delta], trends: list[Trend],
              after: dict, rubric: Rubric, n_graded: int) -> list[str]:
    """Plain-language lines, most important first: the score, each change a listener would notice
    (improvements first), the next tip of the ``after`` report, dimensions declining across the trend."""
    lines = []
    s = score
    if s is not None and s.before is not None and s.after is not None:
        span = f"Over {n_graded} recordings the score" if n_graded > 2 else "Score"
        if s.direction == "same":
            lines.append(f"{span} stayed at {s.after:.0f} ({s.band_after}).")
        else:
            lines.append(f"{span} went from {s.before:.0f} ({s.band_before}) "
                         f"to {s.after:.0f} ({s.band_after}).")
    # Improvements first, then changes either way, then what got worse. A finding a metric
    # speaks for (too_fast: the pace line) gets no line of its own, heard or not.
    groups: dict[str, list[str]] = {"better": [], "same": [], "worse": []}
    specs = {m.key: m for m in METRICS}
    covered = {code for m in METRICS for code in m.covers}
    for d in metrics:
        if d.noticeable and d.before is not None and d.after is not None:  # measured on both sides
            groups[d.direction].append(_metric_sentence(specs[d.key], d, rubric))
    for d in dimensions:
        for code in d.fixed:
            if code not in covered:
                phrase = FIXED_PHRASES.get(code, f"{d.label}: fixed: {finding_label(code).lower()}")
                groups["better"].append(_cap(phrase) + ".")
        for code in d.new:
            if code not in covered:
                phrase = NEW_PHRASES.get(code, f"{d.label}: new problem: {finding_label(code).lower()}")
                groups["worse"].append(_cap(phrase) + ".")
    lines += groups["better"] + groups["same"] + groups["worse"]
    if not any(groups.values()) and not (s is not None and s.noticeable):
        lines.append("No change a listener would notice.")
    tips = after.get("tips") or []
    if tips:
        lines.append(f"Next: {tips[0]['message']}")
    elif after.get("strengths"):
        lines.append("No tips left: keep doing what you did in the last recording.")
    for t in trends:
        if t.kind == "dimension" and t.direction in ("declining", "mixed"):
            lines.append(f"{t.label} is {t.direction} across the recordings "
                         f"({' → '.join('-' if v is None else f'{v:.0f}' for v in t.values)}).")
    return lines


def _metric_sentence(spec: _Metric, d: Delta, rubric: Rubric) -> str:
    best_band = spec.bands(rubric)[spec.goodness.index(max(spec.goodness))]
    b, a = d.before, d.after
    if spec.key == "number_times_said":
        if d.band_after == best_band:
            return f"You now say your number {_ordinal_times(a)} (before: {_ordinal_times(b)})."
        if not a:
            return "You no longer leave your number."
        return f"You now say your number {_ordinal_times(a)} (before: {_ordinal_times(b)})."
    if spec.key == "ask_count":
        if d.band_after == best_band:
            return f"You now make one clear ask (before: {b:.0f})."
        return f"You now make {a:.0f} clear asks (before: {b:.0f}); aim for {rubric.t('asks_target'):g}."
    if spec.key in ("name_at_s", "company_at_s"):
        if a is None:
            return f"{spec.noun} is no longer said."
        when = f"{a:.1f} s in" + ("" if b is None else f", before: {b:.1f} s")
        if b is None:
            when = f"{a:.1f} s in; before it was never said"
        where = f"in the {d.band_after}" if d.band_after == best_band else "late"
        return f"{spec.noun} now comes {where} ({when})."
    if b is None or a is None:
        return (f"{spec.noun}: {_fmt(b, spec)} before, {_fmt(a, spec)} now "
                f"({d.band_before} → {d.band_after}).")
    verb = spec.verbs[0] if a < b else spec.verbs[1]
    unit = f" {spec.unit}" if spec.unit else ""
    text = f"{spec.noun} {verb} from {_fmt(b, spec)} to {_fmt(a, spec)}{unit}"
    if d.crossed_band:
        rng = _band_range(spec, spec.bands(rubric).index(d.band_after), rubric)
        if d.band_after == best_band:
            text += f", into the {d.band_after} band ({rng})"
        elif d.band_before == best_band:
            text += f", out of the {d.band_before} band (now {d.band_after}, {rng})"
        else:
            text += f", from {d.band_before} to {d.band_after} ({rng})"
    elif d.relative is not None:
        text += f" ({d.relative:+.0%}, enough to hear)"
    return text + "."


def _band_range(spec: _Metric, i: int, rubric: Rubric) -> str:
    edges = spec.edges(rubric)
    unit = f" {spec.unit}" if spec.unit else ""
    lo = edges[i - 1] if i > 0 else None
    hi = edges[i] if i < len(edges) else None
    if lo is None:
        return f"under {hi:g}{unit}"
    if hi is None:
        return f"{lo:g}{unit} or more"
    return f"{lo:g}–{hi:g}{unit}"


def _fmt(value: float | None, spec: _Metric) -> str:
    return "none" if value is None else f"{value:.{spec.digits}f}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
