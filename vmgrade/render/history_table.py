"""The history tables (``vmgrade history``): recordings, trends and reps as columns.

Each ``*_table`` function turns :mod:`vmgrade.store.history` rows into a header and
string cells; :func:`print_tables` draws them with rich on a terminal and as
plain columns (:func:`format_table`) anywhere else.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import terminal_safe

if TYPE_CHECKING:
    from ..store.history import RecordingRow, RepSummary, Trend

SPARK_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float | None], low: float = 0.0, high: float = 100.0) -> str:
    """One bar character per value on a fixed ``low``-``high`` scale (a space for None)."""
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        frac = min(max((v - low) / (high - low), 0.0), 1.0)
        out.append(SPARK_BARS[round(frac * (len(SPARK_BARS) - 1))])
    return "".join(out)


def recordings_table(rows: list[RecordingRow]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a recordings listing (time, score, letter, model, rubric, file)."""
    header = ["RECORDED", "SCORE", "GRADE", "MODEL", "RUBRIC", "FILE"]
    cells = [[f"{r.recorded_at:%Y-%m-%d %H:%M}", f"{r.score:.1f}", r.letter, r.model,
              _rubric_name(r), r.file] for r in rows]
    return header, cells


def trend_table(trend: Trend, labels: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a trend: score then each dimension, first -> last, change, sparkline."""
    labels = labels or {}
    header = ["", "FIRST", "LAST", "CHANGE", "TREND"]
    series = [("Score", trend.score)] + [(labels.get(k, k), v) for k, v in trend.dimensions.items()]
    cells = []
    for name, values in series:
        known = [v for v in values if v is not None]
        if not known:
            continue
        first, last = known[0], known[-1]
        cells.append([name, f"{first:.0f}", f"{last:.0f}", f"{last - first:+.0f}", sparkline(values)])
    return header, cells


def reps_table(reps: list[RepSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the reps overview."""
    header = ["REP", "RECORDINGS", "AVERAGE", "LAST", "FIRST RECORDED", "LAST RECORDED"]
    cells = [[r.rep_id if r.rep_id is not None else "(no rep)", str(r.recordings), f"{r.mean_score:.1f}",
              f"{r.last_score:.1f}", f"{r.first_recorded_at:%Y-%m-%d}", f"{r.last_recorded_at:%Y-%m-%d}"]
             for r in reps]
    return header, cells


def format_table(header: list[str], cells: list[list[str]], indent: str = "") -> str:
    """Plain-text columns; numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    numeric = numeric_columns(cells, len(header))
    lines = []
    for row in [header, *cells]:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def numeric_columns(cells: list[list[str]], n_columns: int) -> list[bool]:
    """Which columns hold only numbers (to right-align them)."""
    return [bool(cells) and all(_is_number(row[i]) for row in cells) for i in range(n_columns)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rubric_name(row: RecordingRow) -> str:
    # The label for people, the hash to tell apart two rubrics with one label.
    short = row.rubric_version[:8]
    return f"{row.rubric_label}/{short}" if row.rubric_label else short


def print_tables(title: str, tables: list[tuple[list[str], list[list[str]]]]) -> None:
    """Print a title and tables to stdout: rich tables on a terminal, plain columns otherwise."""
    if sys.stdout.isatty():
        console = Console(highlight=False)
        console.print(title, style="bold", markup=False)
        for header, cells in tables:
            table = Table()
            for name, numeric in zip(header, numeric_columns(cells, len(header))):
                table.add_column(name, justify="right" if numeric else "left")
            for row in cells:
                # Text, not str: a "[/]" in a file or rep name is shown, never read as rich markup
                table.add_row(*(Text(terminal_safe(c)) for c in row))
            console.print(table)
        return

    print(title)
    for header, cells in tables:
        print()
        print(format_table(header, [[terminal_safe(c) for c in row] for row in cells]))
