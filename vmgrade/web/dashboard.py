"""Numbers and charts for the history and team pages: pure functions, no web or DB code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

CHART_WIDTH_PX = 640
CHART_HEIGHT_PX = 200
SPARK_WIDTH_PX = 120
SPARK_HEIGHT_PX = 28
TOP_FINDINGS = 8


@dataclass(frozen=True)
class Point:
    """One graded recording on a timeline."""

    when: datetime
    score: float
    label: str = ""


@dataclass
class RepSummary:
    username: str
    points: list[Point] = field(default_factory=list)  # oldest first
    letter: str | None = None  # of the latest

    @property
    def count(self) -> int:
        return len(self.points)

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def average(self) -> float | None:
        return sum(p.score for p in self.points) / len(self.points) if self.points else None

    @property
    def change(self) -> float | None:
        """Latest minus first score, in points (None with fewer than two)."""
        return self.points[-1].score - self.points[0].score if len(self.points) >= 2 else None

    @property
    def trend_per_recording(self) -> float | None:
        """Least-squares slope of score against recording number, points per recording."""
        n = len(self.points)
        if n < 2:
            return None
        xs = range(n)
        mean_x, mean_y = (n - 1) / 2, sum(p.score for p in self.points) / n
        num = sum((x - mean_x) * (p.score - mean_y) for x, p in zip(xs, self.points))
        den = sum((x - mean_x) ** 2 for x in xs)
        return num / den


def common_findings(code_lists: Sequence[Sequence[str]], top: int = TOP_FINDINGS) -> list[tuple[str, int]]:
    """Feedback codes by the number of recordings they appear in, most common first."""
    counts = Counter(code for codes in code_lists for code in set(codes or ()))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def score_chart_svg(points: Sequence[Point], width_px: int = CHART_WIDTH_PX,
                    height_px: int = CHART_HEIGHT_PX, *, title: str = "Score over time") -> str:
    """An inline SVG line chart of scores (0-100) in recording order, dated on hover."""
    pad_l, pad_r, pad_t, pad_b = 32, 10, 10, 22
    w, h = width_px - pad_l - pad_r, height_px - pad_t - pad_b
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width_px}" '
             f'height="{height_px}" viewBox="0 0 {width_px} {height_px}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for score in (0, 50, 60, 70, 80, 90, 100):
        y = pad_t + h * (1 - score / 100)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{pad_l - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{score}</text>')
    if not points:
        parts.append(f'<text x="{pad_l + w / 2}" y="{pad_t + h / 2}" text-anchor="middle" class="axis">'
                     "no graded recordings yet</text></svg>")
        return "".join(parts)
    xy = list(_positions(points, pad_l, pad_t, w, h))
    if len(xy) > 1:
        parts.append('<polyline class="line" fill="none" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
    for (x, y), p in zip(xy, points):
        tip = f"{p.when:%Y-%m-%d %H:%M} UTC: {p.score:.0f}" + (f" ({p.label})" if p.label else "")
        parts.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
                     f"<title>{escape(tip)}</title></circle>")
    parts.append(f'<text x="{pad_l}" y="{height_px - 6}" class="axis">{points[0].when:%Y-%m-%d}</text>'
                 f'<text x="{pad_l + w}" y="{height_px - 6}" class="axis" text-anchor="end">'
                 f"{points[-1].when:%Y-%m-%d}</text></svg>")
    return "".join(parts)


def sparkline_svg(points: Sequence[Point], width_px: int = SPARK_WIDTH_PX,
                  height_px: int = SPARK_HEIGHT_PX) -> str:
    """A tiny score trend for a table cell."""
    if not points:
        return ""
    xy = list(_positions(points, 2, 2, width_px - 4, height_px - 4))
    if len(xy) == 1:
        xy = [(2, xy[0][1]), (width_px - 2, xy[0][1])]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return (f'<svg class="spark" width="{width_px}" height="{height_px}" '
            f'viewBox="0 0 {width_px} {height_px}" '
            f'xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><polyline class="line" fill="none" '
            f'points="{coords}"/></svg>')


def _positions(points: Sequence[Point], left: float, top: float, width: float, height: float):
    n = len(points)
    for i, p in enumerate(points):
        x = left + (width * i / (n - 1) if n > 1 else width / 2)
        y = top + height * (1 - max(0.0, min(100.0, p.score)) / 100)
        yield x, y
