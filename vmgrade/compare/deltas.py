"""How each quantity changed between graded voicemails, judged by the rubric.

The quantities a listener can hear (:data:`METRICS`: pace, length, fillers,
pauses, pitch and loudness variation, noise, clipping, the callback number,
asks, when name and company come), each with its rubric bands; the overall
score and the dimensions; the word-level transcript diff; and, for three or
more recordings, the trend of each.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..scoring import Rubric

SCORE_DIGITS = 0  # scores are shown as whole points
# The least change in each metric that counts as heard, even when it crosses a rubric band or passes a
# relative JND: below it the difference is measurement, not delivery. The same recording at 22.05 and
# 8 kHz, or re-encoded, measured up to 2 wpm, 0.08 digits/s and 0.05 dB of loudness spread apart
# (samples/strong_wideband.flac), and a value sitting on a band edge would flip its band on such noise.
# Each floor sits above that noise and at or under what a listener can tell apart: ~1 dB of level
# (loudness JND), a few dB of noise floor, half a semitone of pitch spread, a pause of 200 ms, one
# filler a minute. Counts (asks, times the number is said) have no floor: each step is other words.
MIN_AUDIBLE_CHANGE: dict[str, float] = {
    "rate_wpm": 5.0,
    "message_length_s": 0.5,
    "filler_rate_per_min": 1.0,
    "longest_pause_s": 0.2,
    "leading_silence_s": 0.2,
    "name_at_s": 0.5,
    "company_at_s": 0.5,
    "number_digits_per_s": 0.3,
    "f0_sd_st": 0.5,
    "word_loudness_sd_db": 1.0,
    "snr_db": 3.0,
    "clipping_pct": 0.1,
}
# Findings about how confidently the recogniser read a word, not about how it was said: a lower sample
# rate or a lossy re-encode of the very same message brings them (hard_to_transcribe appeared when
# samples/strong_wideband.flac was resampled to 8 kHz). When the two recordings' audio differs they are
# left out of a dimension's fixed and new findings, and the comparison warns why.
RECOGNISER_FINDINGS = frozenset({"hard_to_transcribe"})
_GLUE = set("-.,:;!?%)")  # a transcript token starting with one of these continues the previous word


@dataclass(frozen=True)
class Delta:
    """How one quantity changed from the first (before) to the last (after) recording.

    Attributes
    ----------
    key : str
        ``"score"``, a dimension key (``"pace"``) or a metric key (``"rate_wpm"``).
    kind : str
        ``"score"``, ``"dimension"`` or ``"metric"``.
    label : str
        Human name ("Speaking rate", "Pace and pauses").
    unit : str
        Unit of ``before``/``after``/``delta`` ("points", "wpm", "s", "per min", "st", "dB", "%", "").
    dimension : str or None
        The rubric dimension a metric feeds (None for the overall score).
    before, after : float or None
        Values in the first and last recording (None: not measured, e.g. no number said).
    delta : float or None
        ``after - before`` (None when either is None).
    relative : float or None
        ``delta / |before|`` (None when before is None or 0).
    band_before, band_after : str or None
        Rubric band of each value ("target", "too fast", "B"...); None for unbanded quantities.
    crossed_band : bool
        The value moved into another rubric band.
    jnd : float or None
        Just-noticeable relative change for this quantity (0.10 = 10%) when one is known.
    noticeable : bool
        A listener would notice: ``crossed_band``, ``|relative| >= jnd``, or (dimensions)
        a finding of that dimension was fixed or appeared.
    direction : str
        ``"better"``, ``"worse"`` or ``"same"``, by the rubric (not by the sign of ``delta``).
    source : str
        Why it counts as noticeable: the cited source of the JND or band thresholds ("" if not).
    fixed, new : tuple of str
        Dimensions only: finding codes present before and gone after, and the reverse.
    """

    key: str
    kind: str
    label: str
    unit: str
    dimension: str | None
    before: float | None
    after: float | None
    delta: float | None
    relative: float | None
    band_before: str | None = None
    band_after: str | None = None
    crossed_band: bool = False
    jnd: float | None = None
    noticeable: bool = False
    direction: str = "same"
    source: str = ""
    fixed: tuple[str, ...] = ()
    new: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "unit": self.unit,
            "dimension": self.dimension,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "relative": self.relative,
            "band_before": self.band_before,
            "band_after": self.band_after,
            "crossed_band": self.crossed_band,
            "jnd": self.jnd,
            "noticeable": self.noticeable,
            "direction": self.direction,
            "source": self.source,
            "fixed": list(self.fixed),
            "new": list(self.new),
        }


@dataclass(frozen=True)
class DiffOp:
    """One run of the word-level transcript diff (difflib opcodes on words).

    Attributes
    ----------
    op : str
        ``"equal"``, ``"delete"`` (only before), ``"insert"`` (only after) or ``"replace"``.
    before, after : tuple of str
        The words on each side as transcribed (punctuation kept; empty for insert/delete).
    before_start_s, after_start_s : float or None
        Start time of the run's first word on each side (None when that side is empty
        or the report has no word times).
    """

    op: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    before_start_s: float | None = None
    after_start_s: float | None = None

    def to_dict(self) -> dict:
        return {
            "op": self.op,
            "before": list(self.before),
            "after": list(self.after),
            "before_start_s": self.before_start_s,
            "after_start_s": self.after_start_s,
        }


@dataclass(frozen=True)
class Trend:
    """One quantity across all recordings (three or more), in comparison order.

    Attributes
    ----------
    key, kind, label, unit : str
        As in :class:`Delta` (kind ``"score"``, ``"dimension"`` or ``"metric"``).
    values : tuple of (float or None)
        One per recording, aligned with ``Comparison.recordings`` (None: error or not measured).
    direction : str
        First to last graded value, judged by the rubric (see ``Delta.direction``):
        ``"improving"``, ``"declining"``, ``"steady"`` (never moved), ``"mixed"`` (moved, but
        ended where it started); ``"n/a"`` with fewer than two values.
    best_index : int or None
        Index (into ``values``) of the best value by the rubric.
    """

    key: str
    kind: str
    label: str
    unit: str
    values: tuple[float | None, ...]
    direction: str = "n/a"
    best_index: int | None = None

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "unit": self.unit,
            "values": list(self.values),
            "direction": self.direction,
            "best_index": self.best_index,
        }


# --------------------------------------------------------------------------
# Metrics compared, with their rubric bands
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Metric:
    """How to read, band and judge one metric of a report dict."""

    key: str
    label: str  # table label
    noun: str  # summary sentence subject ("Pace")
    unit: str
    dimension: str
    value: Callable[[dict], float | None]
    edges: Callable[[Rubric], tuple[float, ...]]  # ascending band edges; a value on an edge goes up
    bands: Callable[[Rubric], tuple[str, ...]]  # len(edges) + 1 names
    goodness: tuple[int, ...]  # per band, higher is better
    better: str  # within a band: "lower", "higher" or "target" (nearer the best band's middle)
    sources: tuple[str, ...]  # thresholds whose cited sources justify the bands
    digits: int = 0  # shown (and compared) to this many decimals
    jnd: str | None = None  # threshold name of a relative just-noticeable difference
    none_band: str | None = None  # band of a missing value (worst), e.g. "not said"
    verbs: tuple[str, str] = ("went", "went")  # (falling, rising)
    covers: tuple[str, ...] = ()  # finding codes this metric speaks for in the summary


def _m(report: dict, *keys: str) -> Any:
    node: Any = report
    for k in keys:
        if not isinstance(node, dict) or node.get(k) is None:
            return None
        node = node[k]
    return node


def _message_s(report: dict, key: str) -> float | None:
    """When a name was first said, in seconds from the start of speech."""
    first = _m(report, "content", "identity", key)
    if first is None:
        return None
    return max(0.0, first - (_m(report, "metrics", "speech_start_s") or 0.0))


def _fastest_number(report: dict) -> float | None:
    mentions = _m(report, "content", "callback", "mentions") or []
    return max((m["digits_per_s"] for m in mentions), default=None)


def _times_said(report: dict) -> float | None:
    if _m(report, "content", "callback") is None:
        return None
    return float(_m(report, "content", "callback", "times_said") or 0)


def _pause_s(report: dict) -> float | None:
    ms = _m(report, "metrics", "longest_pause_ms")
    return None if ms is None else ms / 1000.0


def _t(*names: str) -> Callable[[Rubric], tuple[float, ...]]:
    return lambda r: tuple(r.t(n) for n in names)


def _fixed(*names: str) -> Callable[[Rubric], tuple[str, ...]]:
    return lambda r: names


METRICS: tuple[_Metric, ...] = (
    _Metric("rate_wpm", "Speaking rate", "Pace", "wpm", "pace",
            lambda r: _m(r, "metrics", "rate_wpm") or _m(r, "metrics", "syllable_wpm_estimate"),
            _t("rate_too_slow_wpm", "rate_acceptable_min_wpm", "rate_ideal_min_wpm", "rate_ideal_max_wpm",
               "rate_acceptable_max_wpm", "rate_too_fast_wpm"),
            _fixed("too slow", "slow", "a bit slow", "target", "a bit fast", "fast", "too fast"),
            (0, 1, 2, 3, 2, 1, 0), "target",
            ("rate_ideal_min_wpm", "rate_acceptable_min_wpm", "rate_too_fast_wpm"),
            jnd="jnd_tempo_ratio", covers=("too_fast", "too_slow")),
    _Metric("message_length_s", "Message length", "Message length", "s", "brevity",
            lambda r: _m(r, "metrics", "message_length_s"),
            _t("length_too_short_s", "length_acceptable_min_s", "length_ideal_min_s", "length_ideal_max_s",
               "length_acceptable_max_s", "length_too_long_s"),
            _fixed("too short", "short", "a bit short", "target", "a bit long", "long", "too long"),
            (0, 1, 2, 3, 2, 1, 0), "target",
            ("length_ideal_min_s", "length_acceptable_max_s", "length_too_long_s"),
            covers=("too_long", "too_short")),
    _Metric("filler_rate_per_min", "Fillers", "Fillers", "per min", "fluency",
            lambda r: _m(r, "metrics", "filler_rate_per_min"),
            _t("filler_ok_per_min", "filler_bad_per_min"),
            _fixed("harmless", "noticeable", "harmful"), (2, 1, 0), "lower",
            ("filler_ok_per_min", "filler_bad_per_min"), digits=1, verbs=("fell", "rose"),
            covers=("fillers",)),
    _Metric("longest_pause_s", "Longest pause", "The longest pause", "s", "pace", _pause_s,
            _t("long_pause_s", "dead_air_s"), _fixed("short", "long", "dead air"), (2, 1, 0), "lower",
            ("long_pause_s", "dead_air_s"), digits=1, verbs=("fell", "rose"), covers=("long_pause",)),
    _Metric("leading_silence_s", "Silence before speaking", "The silence before you speak", "s", "pace",
            lambda r: _m(r, "metrics", "leading_silence_s"),
            _t("leading_silence_max_s"), _fixed("prompt", "late start"), (1, 0), "lower",
            ("leading_silence_max_s",), digits=1, verbs=("fell", "rose"), covers=("late_start",)),
    _Metric("name_at_s", "Name first said at", "Your name", "s", "opening",
            lambda r: _message_s(r, "name_first_s"),
            _t("opening_window_s"), lambda r: (f"first {r.t('opening_window_s'):g} s", "late"), (1, 0),
            "lower", ("opening_window_s",), digits=1, none_band="never",
            covers=("no_caller_name", "late_caller_name")),
    _Metric("company_at_s", "Company first said at", "Your company", "s", "opening",
            lambda r: _message_s(r, "company_first_s"),
            _t("opening_window_s"), lambda r: (f"first {r.t('opening_window_s'):g} s", "late"), (1, 0),
            "lower", ("opening_window_s",), digits=1, none_band="never",
            covers=("no_company", "late_company")),
    _Metric("ask_count", "Asks", "Asks", "", "call_to_action",
            lambda r: _m(r, "content", "ask_count"),
            lambda r: (r.t("asks_target"), r.t("asks_target") + 1),
            _fixed("no clear ask", "one ask", "too many asks"), (0, 2, 1), "target", ("asks_target",),
            covers=("no_call_to_action", "too_many_asks")),
    _Metric("number_times_said", "Callback number said", "Your number", "times", "call_to_action",
            _times_said, lambda r: (1.0, r.t("number_times_target")),
            lambda r: ("not said", f"under {r.t('number_times_target'):g} times",
                       f"{r.t('number_times_target'):g}+ times"),
            (0, 1, 2), "higher", ("number_times_target",), covers=("number_once", "no_callback_number")),
    _Metric("number_digits_per_s", "Callback number speed", "Your number", "digits/s", "call_to_action",
            _fastest_number, _t("number_max_digits_per_s"), _fixed("writable", "too fast"), (1, 0), "lower",
            ("number_max_digits_per_s",), digits=1, jnd="jnd_tempo_ratio", none_band="not said",
            verbs=("slowed", "sped up"), covers=("number_fast",)),
    _Metric("f0_sd_st", "Pitch variation", "Pitch variation", "st", "voice",
            lambda r: _m(r, "metrics", "f0_sd_st"),
            _t("monotone_sd_st", "lively_sd_st"), _fixed("monotone", "some variation", "lively"), (0, 1, 2),
            "higher", ("monotone_sd_st", "lively_sd_st"), digits=1, verbs=("fell", "rose"),
            covers=("monotone",)),
    _Metric("word_loudness_sd_db", "Loudness variation", "Loudness variation", "dB", "voice",
            lambda r: _m(r, "metrics", "word_loudness_sd_db"),
            _t("word_loudness_sd_min_db"), _fixed("flat", "varied"), (0, 1), "higher",
            ("word_loudness_sd_min_db",), digits=1, verbs=("fell", "rose"), covers=("flat_loudness",)),
    _Metric("snr_db", "Signal to noise", "Signal to noise", "dB", "audio_quality",
            lambda r: _m(r, "metrics", "snr_db"),
            _t("snr_poor_db", "snr_good_db"), _fixed("noisy", "some noise", "clean"), (0, 1, 2), "higher",
            ("snr_poor_db", "snr_good_db"), verbs=("fell", "rose"), covers=("noisy",)),
    _Metric("clipping_pct", "Clipped audio", "Clipped audio", "%", "audio_quality",
            lambda r: None if _m(r, "metrics", "clipping_ratio") is None
            else 100.0 * _m(r, "metrics", "clipping_ratio"),
            lambda r: (100.0 * r.t("clipping_max_ratio"),), _fixed("clean", "clipped"), (1, 0), "lower",
            ("clipping_max_ratio",), digits=2, verbs=("fell", "rose"), covers=("clipping",)),
)


# --------------------------------------------------------------------------
# Deltas
# --------------------------------------------------------------------------


def _band(spec: _Metric, value: float | None, rubric: Rubric) -> tuple[int, str | None, int]:
    """(band index, band name, goodness); index -1 and the worst goodness for a missing value."""
    if value is None:
        return -1, spec.none_band, min(spec.goodness) - 1
    i = bisect.bisect_right(spec.edges(rubric), value)
    return i, spec.bands(rubric)[i], spec.goodness[i]


def _target(spec: _Metric, rubric: Rubric) -> float:
    """Middle of the best band (``better="target"``)."""
    edges = (-math.inf,) + spec.edges(rubric) + (math.inf,)
    i = spec.goodness.index(max(spec.goodness))
    lo, hi = edges[i], edges[i + 1]
    return lo if math.isinf(hi) else hi if math.isinf(lo) else (lo + hi) / 2


def _direction(spec: _Metric, before: float | None, after: float | None, rubric: Rubric) -> str:
    """Better, worse or same by the rubric: band first, then value within a band."""
    _, _, g0 = _band(spec, before, rubric)
    _, _, g1 = _band(spec, after, rubric)
    if g0 != g1:
        return "better" if g1 > g0 else "worse"
    if before is None or after is None:
        return "same"
    b, a = round(before, spec.digits), round(after, spec.digits)
    if a == b:
        return "same"
    if spec.better == "target":
        t = _target(spec, rubric)
        if abs(a - t) == abs(b - t):
            return "same"
        return "better" if abs(a - t) < abs(b - t) else "worse"
    return "better" if (a > b) == (spec.better == "higher") else "worse"


def _metric_delta(spec: _Metric, before: dict, after: dict, rubric: Rubric) -> Delta:
    b, a = _num(spec.value(before)), _num(spec.value(after))
    i0, band0, _ = _band(spec, b, rubric)
    i1, band1, _ = _band(spec, a, rubric)
    delta = None if a is None or b is None else a - b
    relative = None if delta is None or not b else delta / abs(b)
    jnd = rubric.thresholds.get(spec.jnd) if spec.jnd else None
    # a value that appeared or vanished is heard; a change under the floor is measurement noise
    audible = delta is None or abs(delta) >= MIN_AUDIBLE_CHANGE.get(spec.key, 0.0)
    crossed = i0 != i1 and audible
    over_jnd = jnd is not None and relative is not None and abs(relative) >= jnd and audible
    cited = [rubric.sources.get(n, "") for n in spec.sources] if crossed else []
    if over_jnd:
        cited.append(rubric.sources.get(spec.jnd, ""))
    return Delta(
        key=spec.key, kind="metric", label=spec.label, unit=spec.unit, dimension=spec.dimension,
        before=_round(b, spec.digits + 1), after=_round(a, spec.digits + 1),
        delta=_round(delta, spec.digits + 1), relative=_round(relative, 3),
        band_before=band0, band_after=band1, crossed_band=crossed, jnd=jnd,
        noticeable=crossed or over_jnd, direction=_direction(spec, b, a, rubric),
        source="; ".join(dict.fromkeys(c for c in cited if c)),
    )


def _codes(report: dict, dimension: str) -> list[str]:
    return list(dict.fromkeys(f["code"] for f in report.get("feedback") or []
                              if f.get("dimension") == dimension))


def audio_differs(before: dict, after: dict) -> str | None:
    """How the two recordings' audio differs (sample rate, format, codec), or None when alike or unknown."""
    parts = []
    for key, unit in (("sample_rate_hz", " Hz"), ("format", ""), ("codec", "")):
        b, a = _m(before, "audio", key), _m(after, "audio", key)
        if b is not None and a is not None and b != a:
            parts.append(f"{b}{unit} vs {a}{unit}")
    return ", ".join(parts) or None


def _dimension_deltas(before: dict, after: dict, metrics: list[Delta], rubric: Rubric) -> list[Delta]:
    """One delta per dimension; noticeable when a metric of it was heard or a finding came or went
    that no metric speaks for (a metric's own findings follow its band, judged with its floor)."""
    scores_b = {d["key"]: d for d in before.get("dimensions") or []}
    scores_a = {d["key"]: d for d in after.get("dimensions") or []}
    covered = {code for spec in METRICS for code in spec.covers}
    unheard = RECOGNISER_FINDINGS if audio_differs(before, after) else frozenset()
    out = []
    for key in [k for k in scores_a if k in scores_b] or list(rubric.labels):
        b = _num(scores_b.get(key, {}).get("score"))
        a = _num(scores_a.get(key, {}).get("score"))
        codes_b, codes_a = _codes(before, key), _codes(after, key)
        fixed = tuple(c for c in codes_b if c not in codes_a and c not in unheard)
        new = tuple(c for c in codes_a if c not in codes_b and c not in unheard)
        heard = [m for m in metrics if m.dimension == key and m.noticeable]
        delta = None if a is None or b is None else a - b
        why = [m.source for m in heard]
        own = [c for c in fixed + new if c not in covered]
        if own:
            changed = [f"fixed {c}" for c in fixed if c in own] + [f"new {c}" for c in new if c in own]
            why.append("rubric checks: " + ", ".join(changed))
        label = scores_a.get(key, {}).get("label") or rubric.labels.get(key, key)
        out.append(Delta(
            key=key, kind="dimension", label=label,
            unit="points", dimension=key, before=b, after=a, delta=_round(delta, 1),
            relative=_round(delta / abs(b), 3) if delta is not None and b else None,
            noticeable=bool(own or heard), direction=_points_direction(b, a),
            source="; ".join(dict.fromkeys(w for w in why if w)), fixed=fixed, new=new,
        ))
    return out


def _points_direction(before: float | None, after: float | None) -> str:
    if before is None or after is None or round(after, SCORE_DIGITS) == round(before, SCORE_DIGITS):
        return "same"
    return "better" if after > before else "worse"


def _score_delta(before: dict, after: dict, rubric: Rubric) -> Delta:
    b, a = _num(before.get("score")), _num(after.get("score"))
    lb = before.get("grade") or (rubric.letter(b) if b is not None else None)
    la = after.get("grade") or (rubric.letter(a) if a is not None else None)
    delta = None if a is None or b is None else a - b
    return Delta(
        key="score", kind="score", label="Overall score", unit="points", dimension=None,
        before=b, after=a, delta=_round(delta, 1),
        relative=_round(delta / abs(b), 3) if delta is not None and b else None,
        band_before=lb, band_after=la, crossed_band=lb != la, noticeable=lb != la,
        direction=_points_direction(b, a), source="rubric letter bands" if lb != la else "",
    )


def _words(report: dict) -> list[tuple[str, float | None]]:
    words = _m(report, "transcript", "words")
    if words:
        out: list[tuple[str, float | None]] = []
        for w in words:
            text = w.get("word", "").strip()
            if out and text[:1] in _GLUE:
                # Whisper splits "312-555-0147." into "312", "-555", "-0147.": one written word
                out[-1] = (out[-1][0] + text, out[-1][1])
            elif text:
                out.append((text, w.get("start")))
        return out
    text = _m(report, "transcript", "text") or ""
    return [(w, None) for w in text.split()]


def _norm(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def transcript_diff(before: dict, after: dict) -> list[DiffOp]:
    """Word-level diff of two reports' transcripts (case and punctuation ignored when matching).

    Returns
    -------
    list of DiffOp
        difflib opcodes over words, with the transcribed words and start times (s) of each run.
    """
    wb, wa = _words(before), _words(after)
    matcher = difflib.SequenceMatcher(None, [_norm(w) for w, _ in wb], [_norm(w) for w, _ in wa],
                                      autojunk=False)
    ops = []
    for tag, i0, i1, j0, j1 in matcher.get_opcodes():
        ops.append(DiffOp(
            op=tag,
            before=tuple(w for w, _ in wb[i0:i1]),
            after=tuple(w for w, _ in wa[j0:j1]),
            before_start_s=wb[i0][1] if i1 > i0 else None,
            after_start_s=wa[j0][1] if j1 > j0 else None,
        ))
    return ops


def trends_over(reports: list[dict | None], rubric: Rubric) -> list[Trend]:
    """Score, each dimension and each metric across ``reports`` (None: a recording that failed)."""
    out = [_trend("score", "score", "Overall score", "points",
                  [_num(r.get("score")) if r else None for r in reports], _points_direction, max)]
    keys = list(dict.fromkeys(d["key"] for r in reports if r for d in r.get("dimensions") or []))
    for key in keys:
        values = [next((_num(d.get("score")) for d in r.get("dimensions") or [] if d["key"] == key), None)
                  if r else None for r in reports]
        label = rubric.labels.get(key, key)
        out.append(_trend(key, "dimension", label, "points", values, _points_direction, max))
    for spec in METRICS:
        values = [_round(_num(spec.value(r)), spec.digits + 1) if r else None for r in reports]

        def judge(b, a, spec=spec):
            return _direction(spec, b, a, rubric)

        out.append(_trend(spec.key, "metric", spec.label, spec.unit, values, judge, None))
    return out


def _trend(key, kind, label, unit, values, judge, best) -> Trend:
    graded = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(graded) < 2:
        return Trend(key, kind, label, unit, tuple(values))
    net = judge(graded[0][1], graded[-1][1])
    steps = {judge(a, b) for (_, a), (_, b) in zip(graded, graded[1:])} - {"same"}
    direction = {"better": "improving", "worse": "declining"}.get(net, "mixed" if steps else "steady")
    best_i = graded[0][0]
    for i, v in graded[1:]:
        if judge(values[best_i], v) == "better":
            best_i = i
    return Trend(key, kind, label, unit, tuple(values), direction, best_i)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
