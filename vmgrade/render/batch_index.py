"""The batch index page (``index.html`` of ``vmgrade batch``): a manager's view of the batch.

Drawn with Jinja2 (``templates/batch_index.html.j2``, extending the reports'
``base.html.j2`` in the environment of :mod:`vmgrade.render.html`) from plain
dicts: the summary (:func:`vmgrade.batch.summary.summarize`) and one dict per
finished input. It shows the totals and grade distribution, the most common
findings by name (:func:`vmgrade.report.finding_label`, never a code), per rep
the mean score and dimension averages against the batch's, what to coach first
(with links to the reports) and, when the files carry a ``recorded_at``, the
date range and each rep's score trend, then a table of every file, sortable by
clicking a column header. Paths are shown relative to the page (or to the
inputs' common folder), never absolute. The page is self-contained: inline
CSS, a few lines of JavaScript, an inline SVG per trend; nothing from the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..report import finding_label, not_graded_kind, not_graded_text
from .html import render_template
from .style import score_colour

FILE_COLUMNS = ("File", "Rep", "Score", "Grade", "Duration (s)", "Top tip / error", "Copy of")
DATE_COLUMN = "Recorded"  # after "Rep", when any file carries a recording time
OPEN_REPS = 8  # up to this many reps, each rep's details are open when the page loads
SPARK_W, SPARK_H = 96, 24  # the trend sparkline (px)


def render_index_html(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                      out: str | os.PathLike | None = None) -> str:
    """The batch summary page: totals, grades, findings, reps (what to coach, trends), and every file.

    Parameters
    ----------
    rows : sequence of mapping
        One per finished input path, in table order: ``file`` (the path),
        ``rep_id`` and ``duplicate_of`` (str or None), optionally
        ``recorded_at`` (ISO 8601; else the report's own is used), and
        ``record``, the ledger record (``report``, ``report_html``,
        ``report_json``; links are relative to the page).
    summary : mapping
        The batch summary (``totals``, ``mean_score``, ``grade_distribution``,
        ``top_findings``, ``reps``; the keys :func:`~vmgrade.batch.summary.summarize`
        adds besides, such as ``mean_dimensions`` and each rep's ``focus`` and
        ``trend``, are used when present).
    out : str or PathLike, optional
        The folder the page is written to: paths under it are shown relative
        to it; the others relative to their common folder. Default: all relative
        to their common folder.

    Returns
    -------
    str
        The HTML document.
    """
    t = summary["totals"]
    not_graded = not_graded_text(summary.get("not_graded") or {})
    status = (f"{t['graded']} graded, "
              + (f"{t['not_graded']} not graded ({not_graded}), " if t.get("not_graded") else "")
              + f"{t['errors']} failed, {t['pending']} not finished, {t['duplicates']} copies, "
              f"of {t['files']} files")
    mean = "" if summary["mean_score"] is None else f"; mean score {summary['mean_score']}"
    folders = list(summary.get("unreadable_folders") or [])
    paths = _Paths([r["file"] for r in rows] + [r["duplicate_of"] for r in rows if r.get("duplicate_of")]
                   + folders, out)
    names_by_link = {_link(r["record"]): paths.name(r["file"]) for r in rows}
    dated = any(_recorded_at(r) for r in rows) or bool(summary.get("recorded"))
    head = FILE_COLUMNS[:2] + (DATE_COLUMN,) + FILE_COLUMNS[2:] if dated else FILE_COLUMNS
    grades = summary["grade_distribution"]
    most = max(grades.values(), default=0) or 1
    return render_template(
        "batch_index.html.j2",
        title=f"vmgrade batch: {t['files']} file{'' if t['files'] == 1 else 's'}",
        status=status,
        mean=mean,
        updated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        totals=t,
        mean_score=summary["mean_score"],
        grades=grades,
        grade_bars={k: round(100 * v / most) for k, v in grades.items()},
        recorded=_range_view(summary.get("recorded")),
        findings=[{"label": finding_label(f["code"]), "files": f["files"], "share": f"{f['share']:.0%}",
                   "points": f.get("points")} for f in summary["top_findings"]],
        errors=summary.get("errors") or {},
        not_graded_counts=not_graded,
        folders=[paths.name(f) for f in folders],
        reps=[_rep_view(n, rep, s, summary, names_by_link)
              for n, (rep, s) in enumerate(summary["reps"].items())],
        open_reps=len(summary["reps"]) <= OPEN_REPS,
        dated=dated,
        head=head,
        rows=[_file_row(row, paths, dated) for row in rows],
    )


class _Paths:
    """Paths as the page shows them: relative to ``out`` when inside it, else to the inputs' common folder.

    Never absolute. Messages are cleaned with :meth:`scrub`, which rewrites every
    absolute path the page knows (and its common folder) the same way.
    """

    def __init__(self, paths: Iterable[str], out: str | os.PathLike | None):
        self.out = os.path.abspath(os.fspath(out)) if out is not None else None
        full = {p: os.path.abspath(p) for p in paths}
        outside = [a for a in full.values() if not self._inside(a)]
        self.root = os.path.commonpath([os.path.dirname(a) for a in outside]) if outside else None
        self.names = {p: self._relative(a) for p, a in full.items()}
        swaps = {a: self.names[p] for p, a in full.items()} | {p: n for p, n in self.names.items()
                                                                if os.path.isabs(p)}
        for folder in (self.root, self.out):
            if folder and os.path.dirname(folder) != folder:  # never "/" itself
                swaps[folder + os.sep] = ""
        self.swaps = sorted(swaps.items(), key=lambda kv: -len(kv[0]))

    def _inside(self, path: str) -> bool:
        return self.out is not None and os.path.commonpath([self.out, path]) == self.out and path != self.out

    def _relative(self, path: str) -> str:
        base = self.out if self._inside(path) else self.root
        rel = os.path.relpath(path, base) if base else os.path.basename(path)
        return os.path.basename(path) if rel in ("", ".") else rel

    def name(self, path: str) -> str:
        """``path`` as shown on the page."""
        if path in self.names:
            return self.names[path]
        return self._relative(os.path.abspath(path))

    def scrub(self, text: str) -> str:
        """``text`` with each known absolute path written as the page shows it."""
        for full, shown in self.swaps:
            if full in text:
                text = text.replace(full, shown)
        return text


def _link(record: Mapping[str, Any]) -> str | None:
    return record.get("report_html") or record.get("report_json")


def _recorded_at(row: Mapping[str, Any]) -> str | None:
    """The row's recording time: its ``recorded_at`` (from the manifest), else its report's; or None."""
    report = row["record"].get("report") or {}
    value = (row.get("recorded_at") or report.get("recorded_at")
             or (report.get("context") or {}).get("recorded_at"))
    return str(value) if value else None


def _day(iso: str) -> str:
    """``2026-11-02T14:05:00Z`` -> ``2026-11-02``."""
    return iso[:10]


def _range_view(recorded: Mapping[str, Any] | None) -> dict | None:
    """The date range as text (one day: that day), with the count of dated files; None without dates."""
    if not recorded:
        return None
    first, last = _day(recorded["first"]), _day(recorded["last"])
    return {"text": first if first == last else f"{first} to {last}", "files": recorded["files"]}


def _signed(value: float) -> str:
    return f"{value:+.1f}" if round(value, 1) else "±0.0"


def _rep_view(n: int, name: str, stats: Mapping[str, Any], summary: Mapping[str, Any],
              names_by_link: Mapping[str | None, str]) -> dict:
    """One rep's line and card: mean against the batch, dimensions against the batch, focus, trend."""
    batch_mean = summary.get("mean_score")
    batch_dims = summary.get("mean_dimensions") or {}
    labels = summary.get("dimension_labels") or {}
    dims = []
    for key, value in (stats.get("mean_dimensions") or {}).items():
        batch = batch_dims.get(key)
        diff = None if batch is None else value - batch
        dims.append({"label": labels.get(key) or key.replace("_", " ").capitalize(), "rep": value,
                     "batch": batch, "diff": None if diff is None else _signed(diff),
                     "cls": "same" if diff is None or abs(diff) < 0.05 else "better" if diff > 0 else "worse",
                     "colour": score_colour(value), "width": max(0.0, min(100.0, value)),
                     "mark": None if batch is None else max(0.0, min(100.0, batch))})
    focus = [{"label": f.get("label") or finding_label(f["code"]), "points": f["points"], "files": f["files"],
              "reports": [{"href": link, "name": names_by_link.get(link) or os.path.basename(link)}
                          for link in f.get("reports") or []]}
             for f in stats.get("focus") or []]
    diff = None if batch_mean is None else stats["mean_score"] - batch_mean
    return {
        "id": f"rep-{n + 1}",
        "name": name,
        "recordings": stats["recordings"],
        "mean_score": stats["mean_score"],
        "colour": score_colour(stats["mean_score"]),
        "vs_batch": None if diff is None else _signed(diff),
        "vs_value": 0.0 if diff is None else round(diff, 1),
        "vs_cls": "same" if diff is None or abs(diff) < 0.05 else "better" if diff > 0 else "worse",
        "grades": stats.get("grades") or {},
        "dims": dims,
        "focus": focus,
        "recorded": _range_view(stats.get("recorded")),
        "trend": _trend_view(stats.get("trend")),
    }


def _trend_view(trend: Mapping[str, Any] | None) -> dict | None:
    """First half against last half by date, and the sparkline's points (0-100 scale); None without one."""
    if not trend:
        return None
    scores = [float(s["score"]) for s in trend["scores"]]
    step = (SPARK_W - 4) / max(1, len(scores) - 1)
    xy = [(2 + i * step, SPARK_H - 2 - (SPARK_H - 4) * max(0.0, min(100.0, s)) / 100)
          for i, s in enumerate(scores)]
    change = trend["change"]
    return {
        "first": trend["first_half_mean"],
        "last": trend["last_half_mean"],
        "change": _signed(change),
        "value": change,
        "cls": "same" if abs(change) < 0.05 else "better" if change > 0 else "worse",
        "files": trend["files"],
        "w": SPARK_W,
        "h": SPARK_H,
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in xy),
        "end": {"x": f"{xy[-1][0]:.1f}", "y": f"{xy[-1][1]:.1f}"},
        "alt": "Scores by date: " + ", ".join(f"{_day(s['recorded_at'])} {s['score']}"
                                              for s in trend["scores"]),
    }


def _file_row(row: Mapping[str, Any], paths: _Paths, dated: bool) -> dict:
    """One line of the files table: each cell's sort value (``data-v``), and the file's link."""
    record = row["record"]
    report = record["report"]
    err = report.get("error")
    when = _recorded_at(row)
    values: list[Any] = [
        paths.name(row["file"]),
        row.get("rep_id") or "",
        report.get("score", ""),
        report.get("grade", ""),
        report.get("duration_s", ""),
        paths.scrub((f"not graded ({not_graded_kind(report)}): {err['message']}" if not_graded_kind(report)
                     else f"[{err['code']}] {err['message']}") if err else _top_tip(report)),
        paths.name(row["duplicate_of"]) if row.get("duplicate_of") else "",
    ]
    cells = [{"v": str(v), "num": isinstance(v, (int, float)), "link": None, "text": None, "cls": None}
             for v in values]
    cells[0]["link"] = _link(record)
    cells[0]["cls"] = "ix-file"
    if dated:
        cells.insert(2, {"v": when or "", "num": False, "link": None, "text": _day(when) if when else "",
                         "cls": "ix-date"})
    return {"error": bool(err) and not not_graded_kind(report), "not_graded": bool(not_graded_kind(report)),
            "cells": cells}


def _top_tip(report: Mapping[str, Any]) -> str:
    tips = report.get("tips") or []
    if not tips:
        return ""
    return tips[0]["message"]
