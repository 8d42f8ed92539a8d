"""The batch index page (``index.html`` of ``vmgrade batch``): totals, grades, findings, reps, files.

Drawn with Jinja2 (``templates/batch_index.html.j2``, the environment of
:mod:`vmgrade.render.html`) from plain dicts: the summary
(:func:`vmgrade.batch.summary.summarize`) and one dict per finished input. The
page is self-contained (a few lines of inline CSS, and JavaScript that sorts the
files table when a column header is clicked) and loads nothing from the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..report import not_graded_kind, not_graded_text
from .html import render_template

FILE_COLUMNS = ("File", "Rep", "Score", "Grade", "Duration (s)", "Top tip / error", "Copy of")


def render_index_html(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """The batch summary page: totals, grade distribution, findings, reps, and a sortable table of files.

    Parameters
    ----------
    rows : sequence of mapping
        One per finished input path, in table order: ``file`` (the path),
        ``rep_id`` and ``duplicate_of`` (str or None), and ``record``, the
        ledger record (``report``, ``report_html``, ``report_json``; links
        are relative to the page).
    summary : mapping
        The batch summary (``totals``, ``mean_score``, ``grade_distribution``,
        ``top_findings``, ``reps``).

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
    return render_template(
        "batch_index.html.j2",
        status=status,
        mean=mean,
        updated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        grades=summary["grade_distribution"],
        findings=[{"code": f["code"], "files": f["files"], "share": f"{f['share']:.0%}"}
                  for f in summary["top_findings"]],
        reps=[{"name": rep, "recordings": s["recordings"], "mean_score": s["mean_score"]}
              for rep, s in summary["reps"].items()],
        head=FILE_COLUMNS,
        rows=[_file_row(row) for row in rows],
    )


def _file_row(row: Mapping[str, Any]) -> dict:
    """One line of the files table: each cell's sort value (``data-v``), and the file's link."""
    record = row["record"]
    report = record["report"]
    err = report.get("error")
    values = [
        row["file"],
        row.get("rep_id") or "",
        report.get("score", ""),
        report.get("grade", ""),
        report.get("duration_s", ""),
        (f"not graded ({not_graded_kind(report)}): {err['message']}" if not_graded_kind(report)
         else f"[{err['code']}] {err['message']}") if err else _top_tip(report),
        row.get("duplicate_of") or "",
    ]
    cells = [{"v": str(v), "num": isinstance(v, (int, float)), "link": None} for v in values]
    cells[0]["link"] = record["report_html"] or record["report_json"]
    return {"error": bool(err) and not not_graded_kind(report), "not_graded": bool(not_graded_kind(report)),
            "cells": cells}


def _top_tip(report: Mapping[str, Any]) -> str:
    tips = report.get("tips") or []
    return tips[0]["message"] if tips else ""
