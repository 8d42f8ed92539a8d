"""Compare graded voicemails: before/after deltas, a word-level transcript
diff, a plain-language summary and, for three or more recordings, a trend.

Works on report dicts (``Report.to_dict()``, or the JSON of
``vmgrade grade --format json``), so saved reports need no re-grading.

A change is *noticeable* when a listener would hear it: it crosses a rubric
band (pace into the 140-160 wpm target, fillers under 5 per minute, the
number said twice...) or it exceeds a just-noticeable difference from
``rubric.toml`` (``jnd_*`` thresholds, each with its source; tempo: 10%).
"""

from __future__ import annotations

import bisect
import difflib
import json
import math
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import VmgradeError
from .scoring import Rubric, load_rubric
from .timestamps import parse_timestamp

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Recording:
    """One report taking part in a comparison, in comparison order.

    Attributes
    ----------
    label : str
        Short name shown in tables and charts (the file name unless labels were given).
    file : str
        ``report["file"]``: the audio path the report was made from.
    report : dict
        The full report dict (for charts: transcript words, metrics, findings).
    recorded_at : str or None
        ISO 8601 recording time when known, else None.
    recorded_at_source : str or None
        Where ``recorded_at`` came from: ``"report"`` (a ``recorded_at`` key in the
        report or its context) or ``"file_mtime"`` (the audio file's modification time).
    score : float or None
        Overall score 0-100; None when the report is an error.
    letter : str or None
        Grade letter; None when the report is an error.
    error : dict or None
        ``{"code", "message"}`` when the file could not be graded; such a
        recording is listed but left out of deltas and trends.
    """

    label: str
    file: str
    report: dict
    recorded_at: str | None = None
    recorded_at_source: str | None = None
    score: float | None = None
    letter: str | None = None
    error: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "file": self.file,
            "recorded_at": self.recorded_at,
            "recorded_at_source": self.recorded_at_source,
            "score": self.score,
            "grade": self.letter,
            "error": self.error,
        }


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


@dataclass
class Comparison:
    """The result of :func:`compare_reports`.

    ``before`` is the first graded recording and ``after`` the last, in comparison
    order; with three or more recordings ``trends`` holds the progress per dimension.

    Attributes
    ----------
    recordings : list of Recording
        Every input, in comparison order (error reports included, flagged).
    order : str
        ``"given"`` (as passed) or ``"recorded_at"`` (sorted by recording time).
    before, after : int or None
        Indexes into ``recordings`` of the first and last graded recording (None when
        fewer than two could be graded).
    score : Delta or None
        Overall score, banded by grade letter.
    dimensions : list of Delta
        One per rubric dimension, in rubric order, with ``fixed``/``new`` finding codes.
    metrics : list of Delta
        Delivery and content metrics a listener can hear (pace, length, fillers, pauses,
        pitch variation, loudness variation, noise, clipping, the callback number, asks,
        when name and company come).
    transcript_diff : list of DiffOp
        Word-level diff of the before and after transcripts.
    trends : list of Trend
        Score, every dimension and every metric across all recordings (a failed one is
        None); empty with fewer than three recordings.
    summary : list of str
        Plain-language lines, most important first.
    errors : list of str
        One message per recording that could not be graded or compared.
    rubric_version : str
        Version of the rubric the bands and JNDs came from.
    """

    recordings: list[Recording]
    order: str = "given"
    before: int | None = None
    after: int | None = None
    score: Delta | None = None
    dimensions: list[Delta] = field(default_factory=list)
    metrics: list[Delta] = field(default_factory=list)
    transcript_diff: list[DiffOp] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rubric_version: str = ""

    @property
    def ok(self) -> bool:
        """At least two recordings were graded and compared."""
        return self.before is not None and self.after is not None

    @property
    def noticeable(self) -> list[Delta]:
        """Dimension and metric deltas a listener would notice."""
        return [d for d in self.dimensions + self.metrics if d.noticeable]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``vmgrade compare --format json``; keys documented in README)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "comparison",
            "rubric_version": self.rubric_version,
            "order": self.order,
            "recordings": [r.to_dict() for r in self.recordings],
            "before": self.before,
            "after": self.after,
            "score": self.score.to_dict() if self.score else None,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "metrics": [m.to_dict() for m in self.metrics],
            "transcript_diff": [op.to_dict() for op in self.transcript_diff],
            "trends": [t.to_dict() for t in self.trends],
            "summary": list(self.summary),
            "errors": list(self.errors),
        }

    def to_text(self) -> str:
        """Plain text: summary, score, noticeable changes, all deltas, trends, transcript diff."""
        return format_text(self)



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


def _ordinal_times(n: float) -> str:
    n = int(n)
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")


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
SCORE_DIGITS = 0  # scores are shown as whole points
_GLUE = set("-.,:;!?%)")  # a transcript token starting with one of these continues the previous word

# What the summary says when a finding goes away (or appears) and no metric line speaks for it.
FIXED_PHRASES = {
    "identity_not_repeated": "you now repeat who you are at the end",
    "prospect_not_named": "you now address the prospect by name",
    "no_specific_reason": "you now give a reason tied to the prospect",
    "generic_pitch": "the generic pitch is gone",
    "weak_phrase": "the weak phrases are gone",
    "soft_ask": "your ask is no longer hedged",
    "number_mismatch": "the number you say now matches your callback number",
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
    "generic_pitch": "generic pitch crept in",
    "weak_phrase": "weak phrases crept in",
    "soft_ask": "your ask is now hedged",
    "number_mismatch": "the number you say no longer matches your callback number",
    "number_not_chunked": "you no longer say the number in groups",
    "number_not_cued": "you no longer cue the number",
    "level_too_low": "the recording level is now too low",
    "level_too_high": "the recording now peaks at full scale",
    "hard_to_transcribe": "some of your name, company or number was hard to transcribe",
}


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------


def compare_reports(
    reports: Sequence[dict],
    labels: Sequence[str] | None = None,
    rubric: Rubric | str | os.PathLike | None = None,
    *,
    order: str = "given",
) -> Comparison:
    """Compare graded voicemails of one rep.

    Parameters
    ----------
    reports : sequence of dict
        Report dicts (``Report.to_dict()`` or ``vmgrade grade --format json``), at least one.
        Reports with ``error`` set are listed in ``errors`` and left out of the comparison.
    labels : sequence of str, optional
        One label per report (default: the file names).
    rubric : Rubric or path, optional
        Bands and just-noticeable differences (default: the packaged rubric; a ``jnd_*``
        threshold missing from a custom rubric is taken from the packaged one).
    order : {"given", "recorded_at"}
        ``"given"`` keeps the order passed (before first). ``"recorded_at"`` sorts by recording
        time: a ``recorded_at`` ISO 8601 value in the report (or its ``context``), else the audio
        file's modification time; when any recording's time is unknown the given order is kept
        and ``errors`` says so.

    Returns
    -------
    Comparison
        Before is the first graded recording, after the last.
    """
    if order not in ("given", "recorded_at"):
        raise ValueError(f"order must be 'given' or 'recorded_at', not {order!r}")
    if not reports:
        raise ValueError("compare_reports needs at least one report")
    if labels is not None and len(labels) != len(reports):
        raise ValueError(f"{len(labels)} labels for {len(reports)} reports")
    rubric = _rubric(rubric)
    recordings = [_recording(r, label) for r, label in zip(reports, labels or _labels(reports))]
    errors = [f"{r.label}: could not be graded [{r.error.get('code', 'error')}] {r.error.get('message', '')}"
              for r in recordings if not r.ok]
    used_order = "given"
    if order == "recorded_at":
        unknown = [r.label for r in recordings if r.recorded_at is None]
        if unknown:
            errors.append(f"recording time unknown for {', '.join(unknown)}: kept the given order")
        else:
            recordings.sort(key=lambda r: parse_timestamp(r.recorded_at))
            used_order = "recorded_at"
    comparison = Comparison(recordings=recordings, order=used_order, errors=errors,
                            rubric_version=rubric.version)
    graded = [i for i, r in enumerate(recordings) if r.ok]
    if len(graded) < 2:
        comparison.summary = [
            f"Nothing to compare: {len(graded)} of {len(recordings)} recording(s) could be graded "
            "(two are needed)."
        ] + errors
        return comparison
    comparison.before, comparison.after = graded[0], graded[-1]
    before, after = recordings[graded[0]].report, recordings[graded[-1]].report
    comparison.metrics = [_metric_delta(spec, before, after, rubric) for spec in METRICS]
    comparison.dimensions = _dimension_deltas(before, after, comparison.metrics, rubric)
    comparison.score = _score_delta(before, after, rubric)
    comparison.transcript_diff = transcript_diff(before, after)
    if len(recordings) >= 3:
        comparison.trends = _trends(recordings, rubric)
    comparison.summary = _summary(comparison, before, after, rubric, len(graded))
    return comparison


def load_reports(path: str | os.PathLike) -> list[dict]:
    """Read report dicts from a JSON file: one object, a list, or one object per line (JSON Lines).

    Raises
    ------
    VmgradeError
        When the file is missing or holds something other than vmgrade reports.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise VmgradeError(f"{path}: file not found", code="file_not_found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VmgradeError(f"{path}: cannot read report JSON ({exc})", code="report_invalid",
                           path=str(path)) from exc
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise VmgradeError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})", code="report_invalid",
                               path=str(path)) from exc
    if not items or not all(isinstance(i, dict) and "file" in i and ("score" in i or "error" in i)
                            for i in items):
        raise VmgradeError(f"{path}: not a vmgrade report (expected the JSON of `vmgrade grade "
                           "--format json`)", code="report_invalid", path=str(path))
    return items


def is_report_json(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like saved report JSON rather than audio (by name, then first byte)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".jsonl"):
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(64).lstrip()
    except OSError:
        return False
    return head[:1] in (b"{", b"[")


# --------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------


def _rubric(rubric) -> Rubric:
    if isinstance(rubric, Rubric):
        loaded = rubric
    else:
        loaded = load_rubric(rubric)
    missing = [k for k in _jnd_names() if k not in loaded.thresholds]
    if missing:
        default = load_rubric()
        thresholds = dict(loaded.thresholds) | {k: default.thresholds[k] for k in missing}
        sources = dict(loaded.sources) | {k: default.sources.get(k, "") for k in missing}
        loaded = replace(loaded, thresholds=thresholds, sources=sources)
    return loaded


def _jnd_names() -> set[str]:
    return {m.jnd for m in METRICS if m.jnd}


def _labels(reports: Sequence[dict]) -> list[str]:
    names = [Path(str(r.get("file", f"report {i + 1}"))).name for i, r in enumerate(reports)]
    if len(set(names)) == len(names):
        return names
    return [f"{i + 1}. {n}" for i, n in enumerate(names)]


def _recording(report: dict, label: str) -> Recording:
    recorded_at, source = _recorded_at(report)
    error = report.get("error")
    if error is not None and not isinstance(error, dict):
        error = {"code": "error", "message": str(error)}
    return Recording(
        label=str(label),
        file=str(report.get("file", "")),
        report=report,
        recorded_at=recorded_at,
        recorded_at_source=source,
        score=None if error else report.get("score"),
        letter=None if error else report.get("grade"),
        error=error,
    )


def _recorded_at(report: dict) -> tuple[str | None, str | None]:
    for value in (report.get("recorded_at"), _m(report, "context", "recorded_at")):
        if value:
            try:
                return parse_timestamp(str(value)).isoformat(), "report"
            except ValueError:
                pass
    file = report.get("file")
    if file and os.path.isfile(file):
        mtime = datetime.fromtimestamp(os.path.getmtime(file), tz=timezone.utc)
        return mtime.isoformat(timespec="seconds"), "file_mtime"
    return None, None


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
    crossed = i0 != i1
    over_jnd = jnd is not None and relative is not None and abs(relative) >= jnd
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


def _dimension_deltas(before: dict, after: dict, metrics: list[Delta], rubric: Rubric) -> list[Delta]:
    scores_b = {d["key"]: d for d in before.get("dimensions") or []}
    scores_a = {d["key"]: d for d in after.get("dimensions") or []}
    out = []
    for key in [k for k in scores_a if k in scores_b] or list(rubric.labels):
        b = _num(scores_b.get(key, {}).get("score"))
        a = _num(scores_a.get(key, {}).get("score"))
        codes_b, codes_a = _codes(before, key), _codes(after, key)
        fixed = tuple(c for c in codes_b if c not in codes_a)
        new = tuple(c for c in codes_a if c not in codes_b)
        heard = [m for m in metrics if m.dimension == key and m.noticeable]
        delta = None if a is None or b is None else a - b
        why = [m.source for m in heard]
        if fixed or new:
            changed = [f"fixed {c}" for c in fixed] + [f"new {c}" for c in new]
            why.append("rubric checks: " + ", ".join(changed))
        label = scores_a.get(key, {}).get("label") or rubric.labels.get(key, key)
        out.append(Delta(
            key=key, kind="dimension", label=label,
            unit="points", dimension=key, before=b, after=a, delta=_round(delta, 1),
            relative=_round(delta / abs(b), 3) if delta is not None and b else None,
            noticeable=bool(fixed or new or heard), direction=_points_direction(b, a),
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


def _trends(recordings: list[Recording], rubric: Rubric) -> list[Trend]:
    reports = [r.report if r.ok else None for r in recordings]
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


# --------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------


def _summary(c: Comparison, before: dict, after: dict, rubric: Rubric, n_graded: int) -> list[str]:
    lines = []
    s = c.score
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
    for d in c.metrics:
        if d.noticeable:
            groups[d.direction].append(_metric_sentence(specs[d.key], d, rubric))
    for d in c.dimensions:
        for code in d.fixed:
            if code not in covered:
                groups["better"].append(_cap(FIXED_PHRASES.get(code, f"{d.label}: fixed \"{code}\"")) + ".")
        for code in d.new:
            if code not in covered:
                phrase = NEW_PHRASES.get(code, f"{d.label}: new problem \"{code}\"")
                groups["worse"].append(_cap(phrase) + ".")
    lines += groups["better"] + groups["same"] + groups["worse"]
    if not any(groups.values()) and not (s is not None and s.noticeable):
        lines.append("No change a listener would notice.")
    tips = after.get("tips") or []
    if tips:
        lines.append(f"Next: {tips[0]['message']}")
    elif after.get("strengths"):
        lines.append("No tips left: keep doing what you did in the last recording.")
    for t in c.trends:
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


def format_text(c: Comparison) -> str:
    """Plain-text rendering of a :class:`Comparison` (no colour, fixed-width columns)."""
    names = [r.label for r in c.recordings]
    lines = []
    if c.ok:
        lines.append(f"Comparison: {c.recordings[c.before].label} -> {c.recordings[c.after].label}"
                     f"  ({len(c.recordings)} recordings, {c.order.replace('_', ' ')} order, "
                     f"rubric {c.rubric_version})")
    else:
        lines.append(f"Comparison of {', '.join(names)}")
    lines.append("")
    lines.append("Summary")
    lines += [f"  - {s}" for s in c.summary]
    if c.errors:
        lines += ["", "Errors"] + [f"  ! {e}" for e in c.errors]
    if not c.ok:
        return "\n".join(lines)
    lines += ["", "Changes  (* = a listener would notice: crosses a rubric band or exceeds the JND)"]
    section = None
    for d, label, before, after, change, note in table_rows(c):
        if d.kind != "score" and d.kind != section:
            section = d.kind
            lines.append(f"  {section.capitalize()}s")
        lines.append(_row(label, before, after, change, d, note))
    if c.trends:
        lines += ["", f"Trend over {len(c.recordings)} recordings ({', '.join(names)})"]
        for t in c.trends:
            if t.kind == "metric":
                continue
            values = " -> ".join("-" if v is None else f"{v:.0f}" for v in t.values)
            lines.append(f"  {t.label:<36} {values}   {t.direction}")
    lines += ["", "Transcript diff  ([-removed-] {+added+})", "  " + _diff_text(c.transcript_diff)]
    return "\n".join(lines)


def table_rows(c: Comparison) -> list[tuple[Delta, str, str, str, str, str]]:
    """The deltas as display strings: (delta, label, before, after, change, note), score first,
    then dimensions, then metrics. ``note`` holds band changes or fixed/new finding codes."""
    if not c.ok:
        return []
    rows = []
    s = c.score
    rows.append((s, s.label, f"{_v(s.before, 0)} {s.band_before or ''}".strip(),
                 f"{_v(s.after, 0)} {s.band_after or ''}".strip(),
                 "" if s.delta is None else f"{s.delta:+.0f}", ""))
    for d in c.dimensions:
        note = "; ".join(p for p in (("fixed: " + ", ".join(d.fixed)) if d.fixed else "",
                                     ("new: " + ", ".join(d.new)) if d.new else "") if p)
        rows.append((d, d.label, _v(d.before, 0), _v(d.after, 0),
                     "" if d.delta is None else f"{d.delta:+.0f}", note))
    specs = {m.key: m for m in METRICS}
    for d in c.metrics:
        spec = specs[d.key]
        rel = f" ({d.relative:+.0%})" if d.relative is not None and spec.jnd else ""
        note = f"{d.band_before} -> {d.band_after}" if d.crossed_band else (d.band_after or "")
        rows.append((d, f"{d.label} ({d.unit})" if d.unit else d.label, _v(d.before, spec.digits),
                     _v(d.after, spec.digits),
                     ("" if d.delta is None else f"{d.delta:+.{spec.digits}f}") + rel, note))
    return rows


def _v(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(label: str, before: str, after: str, delta: str, d: Delta, extra: str = "") -> str:
    mark = "*" if d.noticeable else " "
    return (f"  {mark} {label:<40} {before:>9} -> {after:<9} {delta:>12}  {d.direction:<6}"
            f"{'  ' + extra if extra else ''}").rstrip()


def _diff_text(ops: list[DiffOp], width: int = 100) -> str:
    parts = []
    for op in ops:
        if op.op == "equal":
            parts.append(" ".join(op.before))
            continue
        if op.before:
            parts.append("[-" + " ".join(op.before) + "-]")
        if op.after:
            parts.append("{+" + " ".join(op.after) + "+}")
    return "\n  ".join(textwrap.wrap(" ".join(parts), width, break_long_words=False, break_on_hyphens=False))
