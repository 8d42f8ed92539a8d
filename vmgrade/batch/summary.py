"""The batch summary: grade distribution, common findings, per-rep averages and error counts.

:func:`summarize` is plain data (``summary.json``, the index page);
:func:`format_summary` is its text for the end of a run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

from ..coaching import half_means, points_lost
from ..errors import terminal_safe
from ..report import NOT_GRADED_KINDS, finding_label, not_graded_kind, not_graded_text
from ..timestamps import parse_timestamp
from .ledger import Row, shown

TOP_FINDINGS = 10
FOCUS_FINDINGS = 2  # per rep: the findings that cost the most points, what to coach first
FOCUS_REPORTS = 5  # per focus finding: links to the reports where it cost the most


def summarize(rows: Sequence[Row], records: dict[str, dict]) -> dict:
    """Grade distribution, most common findings, per-rep averages, error counts.

    Each recording (key) counts once, under its first path's rep; copies do not.
    A folder that could not be read counts as an ``unreadable`` error and is
    named in ``unreadable_folders``.

    Besides the counts: each finding's ``label`` (:func:`vmgrade.report.finding_label`)
    and the ``points`` it cost in all; the batch's ``mean_dimensions`` and
    ``dimension_labels``; the ``recorded`` range (first and last ``recorded_at``,
    from the manifest, else the report's own ``recorded_at``; None when no file
    carries one); and per rep its ``focus`` (the :data:`FOCUS_FINDINGS` findings
    that cost the rep the most points, with links to the reports where they cost
    most), ``recorded`` range and score ``trend``.
    """
    seen: set[str] = set()
    letters: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    not_graded: Counter[str] = Counter()
    reps: dict[str, list[dict]] = defaultdict(list)
    graded_reports: list[dict] = []
    scores: list[float] = []
    pending = 0
    for row in rows:
        record = records.get(row.task.key)
        if record is None:
            pending += 1
            continue
        report = record["report"]
        if not record["ok"]:  # every bad path counts (two empty files are two failures)
            kind = not_graded_kind(report)
            if kind is not None:
                not_graded[kind] += 1
            else:
                errors[report["error"]["code"]] += 1
            continue
        if row.task.key in seen:
            continue
        seen.add(row.task.key)
        letters[report["grade"]] += 1
        scores.append(report["score"])
        findings.update({f["code"] for f in report.get("feedback", [])})
        entry = {"report": report, "link": record.get("report_html") or record.get("report_json"),
                 "recorded_at": recorded_at(row, report)}
        graded_reports.append(entry)
        reps[(row.manifest.rep_id if row.manifest else None) or "(none)"].append(entry)
    graded = len(scores)
    lost: dict[str, float] = defaultdict(float)
    for e in graded_reports:
        for code, gain in points_lost(e["report"].get("feedback")).items():
            lost[code] += gain
    lost = {k: round(v, 1) for k, v in lost.items()}
    return {
        "totals": {"files": len(rows), "graded": graded, "not_graded": sum(not_graded.values()),
                   "errors": sum(errors.values()), "pending": pending,
                   "duplicates": sum(1 for r in rows if r.duplicate_of)},
        "mean_score": round(sum(scores) / graded, 1) if graded else None,
        "grade_distribution": {k: letters.get(k, 0) for k in ("A", "B", "C", "D", "F")},
        "top_findings": [{"code": code, "files": n, "share": round(n / graded, 3),
                          "label": finding_label(code), "points": lost.get(code, 0.0)} for code, n in
                         sorted(findings.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FINDINGS]],
        "errors": dict(sorted(errors.items())),
        "not_graded": {k: not_graded[k] for k in NOT_GRADED_KINDS if not_graded[k]},
        "reps": {rep: _rep_stats(reports) for rep, reports in sorted(reps.items())},
        "unreadable_folders": [shown(r.path) for r in rows if r.folder],
        "mean_dimensions": _mean_dimensions([e["report"] for e in graded_reports]),
        "dimension_labels": {d["key"]: d.get("label") or d["key"]
                             for e in graded_reports for d in e["report"].get("dimensions", [])},
        "recorded": _recorded_range(graded_reports),
    }


def _rep_stats(entries: list[dict]) -> dict:
    reports = [e["report"] for e in entries]
    return {
        "recordings": len(reports),
        "mean_score": round(sum(r["score"] for r in reports) / len(reports), 1),
        "grades": dict(sorted(Counter(r["grade"] for r in reports).items())),
        "mean_dimensions": _mean_dimensions(reports),
        "focus": _focus(entries),
        "recorded": _recorded_range(entries),
        "trend": _trend(entries),
    }


def recorded_at(row: Row, report: Mapping) -> str | None:
    """When a file was recorded (ISO 8601, UTC): its manifest ``recorded_at``, else the report's; or None.

    The report's own ``recorded_at`` (or ``context.recorded_at``) is read as
    :mod:`vmgrade.compare` reads it; a value that is not ISO 8601 counts as none.
    The file's modification time is never used: a copy made yesterday is no recording of yesterday.
    """
    when = row.manifest.recorded_at if row.manifest else None
    if when is None:
        for value in (report.get("recorded_at"), (report.get("context") or {}).get("recorded_at")):
            if value:
                try:
                    when = parse_timestamp(str(value))
                except ValueError:
                    continue
                break
    return None if when is None else _utc(when)


def _utc(when: datetime) -> str:
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _mean_dimensions(reports: Iterable[Mapping]) -> dict[str, float]:
    """Each dimension's mean score over ``reports``, in the order the reports list them."""
    dims: dict[str, list[float]] = defaultdict(list)
    for r in reports:
        for d in r.get("dimensions", []):
            dims[d["key"]].append(d["score"])
    return {k: round(sum(v) / len(v), 1) for k, v in dims.items()}


def _focus(entries: list[dict]) -> list[dict]:
    """What to coach a rep on: the findings that cost the most points over their files.

    Each: ``code``, ``label``, ``points`` (the sum of the findings' ``gain``),
    ``files`` (how many of the rep's files have it) and ``reports`` (links,
    relative to the output folder, to the :data:`FOCUS_REPORTS` reports where it
    cost the most). Findings that cost nothing are left out.
    """
    points: dict[str, float] = defaultdict(float)
    files: dict[str, int] = defaultdict(int)
    where: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for i, e in enumerate(entries):
        for code, gain in points_lost(e["report"].get("feedback")).items():
            points[code] += gain
            files[code] += 1
            if e["link"]:
                where[code].append((-gain, i, e["link"]))
    ranked = sorted((kv for kv in points.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return [{"code": code, "label": finding_label(code), "points": round(total, 1), "files": files[code],
             "reports": [link for _, _, link in sorted(where[code])[:FOCUS_REPORTS]]}
            for code, total in ranked[:FOCUS_FINDINGS]]


def _recorded_range(entries: list[dict]) -> dict | None:
    """The ``first`` and ``last`` ``recorded_at`` of ``entries`` and how many ``files`` carry one, or None."""
    dates = sorted(e["recorded_at"] for e in entries if e["recorded_at"])
    return {"first": dates[0], "last": dates[-1], "files": len(dates)} if dates else None


def _trend(entries: list[dict]) -> dict | None:
    """A rep's scores by date: the mean of the first half against the last half (two or more dated files).

    With an odd count the middle file belongs to neither half. ``scores`` lists
    each dated file's ``recorded_at``, ``score`` and report ``link``, oldest first.
    """
    dated = sorted((e for e in entries if e["recorded_at"]), key=lambda e: e["recorded_at"])
    means = half_means([e["report"]["score"] for e in dated])
    if means is None:
        return None
    first, last = means
    return {"files": len(dated), "first_half_mean": round(first, 1), "last_half_mean": round(last, 1),
            "change": round(last - first, 1),
            "scores": [{"recorded_at": e["recorded_at"], "score": e["report"]["score"], "link": e["link"]}
                       for e in dated]}


def format_summary(summary: dict) -> str:
    """The end-of-run summary as text."""
    t = summary["totals"]
    copies = t["duplicates"]
    apart = ""
    if t.get("not_graded"):
        apart = f", {t['not_graded']} not graded ({not_graded_text(summary['not_graded'])})"
    lines = [f"\n{t['files']} file(s): {t['graded']} graded{apart}"
             + f", {t['errors']} failed"
             + (f", {copies} cop{'y' if copies == 1 else 'ies'} of others" if copies else "")
             + (f", {t['pending']} not finished" if t["pending"] else "")
             + (f"; mean score {summary['mean_score']}" if summary["mean_score"] is not None else "")]
    dist = summary["grade_distribution"]
    lines.append("Grades: " + "  ".join(f"{k} {v}" for k, v in dist.items()))
    if summary["top_findings"]:
        lines.append("Most common findings:")
        lines += [f"  {f['code']:<24} {f['files']:>5} ({f['share']:.0%})" for f in summary["top_findings"]]
    if summary["errors"]:
        lines.append("Errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    folders = summary.get("unreadable_folders") or []
    if folders:
        lines.append(f"Not read: {len(folders)} folder(s) could not be listed, their recordings were not "
                     "graded: " + ", ".join(terminal_safe(f) for f in folders))
    if summary["reps"]:
        lines.append(f"{'Rep':<20} {'files':>5} {'mean':>6}  grades")
        for rep, s in summary["reps"].items():
            grades = " ".join(f"{k}{v}" for k, v in s["grades"].items())
            name = terminal_safe(rep)[:20]
            lines.append(f"{name:<20} {s['recordings']:>5} {s['mean_score']:>6.1f}  {grades}")
    return "\n".join(lines)


def worker_report(records: Iterable[dict]) -> dict[str, float]:
    """Peak RSS (MB) per worker pid over ``records`` (for the benchmark)."""
    peaks: dict[str, float] = {}
    for rec in records:
        w = rec.get("worker") or {}
        if "pid" in w:
            k = f"{w.get('host', '')}:{w['pid']}"
            peaks[k] = max(peaks.get(k, 0.0), w.get("peak_rss_mb", 0.0))
    return peaks
