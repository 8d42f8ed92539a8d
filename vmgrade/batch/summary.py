"""The batch summary: grade distribution, common findings, per-rep averages and error counts.

:func:`summarize` is plain data (``summary.json``, the index page);
:func:`format_summary` is its text for the end of a run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..errors import terminal_safe
from ..report import NOT_GRADED_KINDS, not_graded_kind, not_graded_text
from .ledger import Row, shown

TOP_FINDINGS = 10


def summarize(rows: Sequence[Row], records: dict[str, dict]) -> dict:
    """Grade distribution, most common findings, per-rep averages, error counts.

    Each recording (key) counts once, under its first path's rep; copies do not.
    A folder that could not be read counts as an ``unreadable`` error and is
    named in ``unreadable_folders``.
    """
    seen: set[str] = set()
    letters: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    not_graded: Counter[str] = Counter()
    reps: dict[str, list[dict]] = defaultdict(list)
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
        reps[(row.manifest.rep_id if row.manifest else None) or "(none)"].append(report)
    graded = len(scores)
    return {
        "totals": {"files": len(rows), "graded": graded, "not_graded": sum(not_graded.values()),
                   "errors": sum(errors.values()), "pending": pending,
                   "duplicates": sum(1 for r in rows if r.duplicate_of)},
        "mean_score": round(sum(scores) / graded, 1) if graded else None,
        "grade_distribution": {k: letters.get(k, 0) for k in ("A", "B", "C", "D", "F")},
        "top_findings": [{"code": code, "files": n, "share": round(n / graded, 3)} for code, n in
                         sorted(findings.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FINDINGS]],
        "errors": dict(sorted(errors.items())),
        "not_graded": {k: not_graded[k] for k in NOT_GRADED_KINDS if not_graded[k]},
        "reps": {rep: _rep_stats(reports) for rep, reports in sorted(reps.items())},
        "unreadable_folders": [shown(r.path) for r in rows if r.folder],
    }


def _rep_stats(reports: list[dict]) -> dict:
    dims: dict[str, list[float]] = defaultdict(list)
    for r in reports:
        for d in r.get("dimensions", []):
            dims[d["key"]].append(d["score"])
    return {
        "recordings": len(reports),
        "mean_score": round(sum(r["score"] for r in reports) / len(reports), 1),
        "grades": dict(sorted(Counter(r["grade"] for r in reports).items())),
        "mean_dimensions": {k: round(sum(v) / len(v), 1) for k, v in dims.items()},
    }


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
