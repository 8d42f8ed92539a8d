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

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import VmgradeError, printable
from ..scoring import Rubric, load_rubric
from ..timestamps import parse_timestamp
from .deltas import (
    METRICS,
    RECOGNISER_FINDINGS,
    Delta,
    DiffOp,
    Trend,
    _dimension_deltas,
    _m,
    _metric_delta,
    _score_delta,
    audio_differs,
    transcript_diff,
    trends_over,
)
from .summary import summarize
from .validate import MAX_PROBLEMS, normalised, reject_constant, report_problems

__all__ = ["METRICS", "Comparison", "Delta", "DiffOp", "Recording", "Trend", "compare_reports",
           "is_report_json", "load_reports", "transcript_diff"]

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
    warnings : list of str
        What makes the comparison less fair without stopping it: the graded reports
        name different rubric versions (``rubric.version``), so part of a change in
        score may come from the rubric rather than the delivery.
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
    warnings: list[str] = field(default_factory=list)

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
            "warnings": list(self.warnings),
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
                            rubric_version=rubric.version, warnings=_rubric_warnings(recordings))
    graded = [i for i, r in enumerate(recordings) if r.ok]
    if len(graded) < 2:
        comparison.summary = [
            f"Nothing to compare: {len(graded)} of {len(recordings)} recording(s) could be graded "
            "(two are needed)."
        ] + errors
        return comparison
    comparison.before, comparison.after = graded[0], graded[-1]
    before, after = recordings[graded[0]].report, recordings[graded[-1]].report
    differs = audio_differs(before, after)
    if differs:
        comparison.warnings.append(
            f"the two recordings' audio differs ({differs}): changes under each quantity's audible floor, "
            f"and findings of the recogniser's confidence ({', '.join(sorted(RECOGNISER_FINDINGS))}), "
            "are not counted as heard")
    comparison.metrics = [_metric_delta(spec, before, after, rubric) for spec in METRICS]
    comparison.dimensions = _dimension_deltas(before, after, comparison.metrics, rubric)
    comparison.score = _score_delta(before, after, rubric)
    comparison.transcript_diff = transcript_diff(before, after)
    if len(recordings) >= 3:
        comparison.trends = trends_over([r.report if r.ok else None for r in recordings], rubric)
    comparison.summary = summarize(comparison.score, comparison.metrics, comparison.dimensions,
                                   comparison.trends, after, rubric, len(graded))
    return comparison


def load_reports(path: str | os.PathLike) -> list[dict]:
    """Read report dicts from a JSON file: one object, a list, or one object per line (JSON Lines).

    Every report is checked at the edge (:func:`vmgrade.compare.validate.report_problems`:
    required keys, types, finite numbers in range); ``NaN`` and ``Infinity`` are refused. In
    JSON Lines a last line without its newline that does not parse is what an interrupted
    append leaves (a batch's ``results.jsonl`` after a crash): it is dropped, not compared.

    Raises
    ------
    VmgradeError
        ``file_not_found`` when the file is missing; ``report_invalid``, naming the file and
        where in it, when it holds anything but vmgrade reports.
    """
    path = Path(path)
    shown = printable(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise VmgradeError(f"{shown}: file not found", code="file_not_found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VmgradeError(f"{shown}: cannot read report JSON ({exc})", code="report_invalid",
                           path=str(path)) from exc
    try:
        data = json.loads(text, parse_constant=reject_constant)
        items = data if isinstance(data, list) else [data]
        where = [f"report {i + 1}" for i in range(len(items))] if isinstance(data, list) else ["the report"]
    except json.JSONDecodeError:
        items, where = _json_lines(text, path)
    except (ValueError, RecursionError) as exc:
        raise VmgradeError(f"{shown}: not a vmgrade report ({exc})", code="report_invalid",
                           path=str(path)) from exc
    problems = [f"{w}: {p}" for w, item in zip(where, items) for p in report_problems(item)]
    if not items:
        problems = ["no reports in it"]
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise VmgradeError(f"{shown}: not a vmgrade report (expected the JSON of `vmgrade grade "
                           f"--format json`): {'; '.join(problems[:MAX_PROBLEMS])}{more}",
                           code="report_invalid", path=str(path))
    return [normalised(item) for item in items]


def _json_lines(text: str, path: Path) -> tuple[list, list[str]]:
    """The objects of a JSON Lines file and where each came from ("line 3"); a torn last line dropped."""
    raws = text.split("\n")
    items, where = [], []
    for number, raw in enumerate(raws, start=1):
        if not raw.strip():
            continue
        try:
            items.append(json.loads(raw, parse_constant=reject_constant))
        except (ValueError, RecursionError) as exc:
            if number == len(raws) and items:
                break  # no newline after it: cut off by a crash mid-append; what came before is whole
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise VmgradeError(f"{printable(str(path))}: not JSON (line {number}: {detail})",
                               code="report_invalid", path=str(path)) from exc
        where.append(f"line {number}")
    return items, where


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


def _rubric_warnings(recordings: list[Recording]) -> list[str]:
    """One warning when the graded reports name different rubric versions (reports naming none are
    not counted: older reports may lack the key)."""
    versions = {r.label: str(v) for r in recordings if r.ok and (v := _m(r.report, "rubric", "version"))}
    if len(set(versions.values())) < 2:
        return []
    listed = ", ".join(f"{label}: {version}" for label, version in versions.items())
    return [f"graded with different rubric versions ({listed}): part of a change in score may come "
            "from the rubric, not the delivery"]


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
