"""Numbers and charts for the history and team pages: pure functions, no web or DB code.

The trainers' coaching dashboard (``/team``, ``/api/team``; docs/web.md, "Team dashboard") is
:func:`build_dashboard`: per rep the latest and average score, dimension averages against the
team's, the one or two findings to coach next (:func:`focus_items`) with the recordings that
show them, and the trend; reps in coaching order (:data:`RANKING`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape

from ..coaching import half_means
from ..report import finding_label

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


# ---------------------------------------------------------------- the trainers' coaching dashboard (issue 28)

# "Recent" is a rep's last five graded recordings in the range: about a week of daily practice, so a
# habit that was fixed drops out of the coaching focus within days, while one bad take cannot set the
# agenda alone. The ranking and the coaching focus both read this window.
RECENT_RECORDINGS = 5
# The one or two things to coach next: more is a list nobody works through in one session.
FOCUS_ITEMS = 2
# A finding is worth a coaching conversation when it costs at least a point per recent recording on
# average; below that (e.g. an unconfirmed number, worth no points) fixing it moves nothing.
MIN_FOCUS_POINTS = 1.0
# Scores move a few points between takes of the same script (noise, ASR): a trend smaller than this,
# first half of the range against the second, reads "steady" rather than up or down.
STEADY_POINTS = 2.0
# A rep's dimension this far under the team's average is marked: smaller gaps are take-to-take noise.
BELOW_TEAM_POINTS = 5.0
COMMON_FINDINGS = 8  # the team's most common findings listed


@dataclass(frozen=True)
class Graded:
    """One graded recording as the dashboard reads it (from the job and its JSON report).

    Attributes
    ----------
    id : int
        The upload's id (its page is ``/recordings/{id}``).
    rep : str
        The rep's username.
    when : datetime
        Upload time, naive UTC.
    score : float
        Overall score, 0-100.
    letter : str or None
        Grade letter.
    filename : str
        The file's name as the rep gave it.
    dimensions : tuple of (key, label, score)
        The report's ``dimensions``; empty when the report could not be read.
    findings : tuple of (code, gain)
        The report's ``feedback``: each code once, with the points fixing it recovers (summed).
    """

    id: int
    rep: str
    when: datetime
    score: float
    letter: str | None = None
    filename: str = ""
    dimensions: tuple[tuple[str, str, float], ...] = ()
    findings: tuple[tuple[str, float], ...] = ()

    @property
    def url(self) -> str:
        return f"/recordings/{self.id}"

    @property
    def audio_url(self) -> str:
        return f"/recordings/{self.id}/audio"


@dataclass(frozen=True)
class FocusItem:
    """One thing to coach next: a finding that cost the rep points across the recent recordings.

    Attributes
    ----------
    code : str
        The finding's code (the API's; pages show ``label``).
    label : str
        Its name for people (:func:`vmgrade.report.finding_label`).
    points_per_recording : float
        Points it cost per recent recording, on average (its ``gain`` summed over the window,
        divided by the window's size).
    recordings : tuple of Graded
        The recent recordings that show it, newest first.
    window : int
        How many recent recordings were looked at (up to :data:`RECENT_RECORDINGS`).
    earlier_with, earlier_total : int
        In how many of the range's recordings before the window it showed (is coaching working?).
    """

    code: str
    label: str
    points_per_recording: float
    recordings: tuple[Graded, ...]
    window: int
    earlier_with: int = 0
    earlier_total: int = 0


@dataclass(frozen=True)
class DimensionRow:
    """A rubric dimension's average score: the rep's (or None) against the team's."""

    key: str
    label: str
    average: float | None
    team_average: float | None = None

    @property
    def difference(self) -> float | None:
        if self.average is None or self.team_average is None:
            return None
        return self.average - self.team_average

    @property
    def below_team(self) -> bool:
        return self.difference is not None and self.difference <= -BELOW_TEAM_POINTS


@dataclass(frozen=True)
class Trend:
    """Average score of the range's second half of recordings against its first half."""

    first_half_average: float
    second_half_average: float

    @property
    def change(self) -> float:
        return self.second_half_average - self.first_half_average

    @property
    def direction(self) -> str:
        """``up``, ``down`` or ``steady`` (within :data:`STEADY_POINTS`)."""
        if abs(self.change) < STEADY_POINTS:
            return "steady"
        return "up" if self.change > 0 else "down"


@dataclass
class RepCoaching:
    """What a trainer needs about one rep in the range.

    Attributes
    ----------
    username : str
    graded : list of Graded
        The rep's graded recordings in the range, oldest first.
    rank : int or None
        1 for the rep who most needs coaching; None without recordings in the range.
    focus : list of FocusItem
        The things to coach next, most costly first.
    dimensions : list of DimensionRow
        The rep's dimension averages against the team's, in the report's order.
    """

    username: str
    graded: list[Graded] = field(default_factory=list)
    rank: int | None = None
    focus: list[FocusItem] = field(default_factory=list)
    dimensions: list[DimensionRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.graded)

    @property
    def latest(self) -> Graded | None:
        return self.graded[-1] if self.graded else None

    @property
    def recent(self) -> list[Graded]:
        """The last :data:`RECENT_RECORDINGS` graded recordings, oldest first."""
        return self.graded[-RECENT_RECORDINGS:]

    @property
    def average(self) -> float | None:
        return _mean([g.score for g in self.graded])

    @property
    def recent_average(self) -> float | None:
        """Mean score of the recent recordings: what the ranking reads."""
        return _mean([g.score for g in self.recent])

    @property
    def change(self) -> float | None:
        """Latest minus first score in the range (None with fewer than two)."""
        return self.graded[-1].score - self.graded[0].score if self.count >= 2 else None

    @property
    def trend(self) -> Trend | None:
        """Second half of the range against the first (odd counts leave the middle one out)."""
        means = half_means([g.score for g in self.graded])
        return Trend(*means) if means is not None else None

    @property
    def trend_per_recording(self) -> float | None:
        """Least-squares slope of score against recording number, points per recording."""
        return RepSummary(self.username, self.points).trend_per_recording

    @property
    def recoverable(self) -> float:
        """Points per recent recording the coaching focus would recover (the ranking's tie-break)."""
        return sum(f.points_per_recording for f in self.focus)

    @property
    def points(self) -> list[Point]:
        return [Point(g.when, g.score, g.filename) for g in self.graded]


@dataclass
class TeamDashboard:
    """The coaching dashboard of one team over a date range.

    Attributes
    ----------
    team : str
    start, end : date
        The range, both days included (UTC days).
    reps : list of RepCoaching
        Coaching order: the rep who most needs coaching first (:func:`coaching_order`), then the
        reps without recordings in the range, by name.
    dimensions : list of DimensionRow
        The team's dimension averages (``average`` and ``team_average`` both the team's).
    recordings : list of Graded
        Every graded recording in the range, newest first.
    common : list of (code, label, count)
        The findings in the most recordings of the range.
    """

    team: str
    start: date
    end: date
    reps: list[RepCoaching]
    dimensions: list[DimensionRow]
    recordings: list[Graded]
    common: list[tuple[str, str, int]]

    @property
    def average(self) -> float | None:
        """The team's average score: the mean of its reps' averages (each rep counts once)."""
        return _mean([r.average for r in self.reps if r.average is not None])

    @property
    def coached(self) -> list[RepCoaching]:
        """The reps with recordings in the range, in coaching order."""
        return [r for r in self.reps if r.rank is not None]

    @property
    def idle(self) -> list[RepCoaching]:
        """The reps without recordings in the range."""
        return [r for r in self.reps if r.rank is None]


RANKING = (f"lowest recent average first (the mean score of each rep's last {RECENT_RECORDINGS} graded "
           "recordings in the range); on a tie, the rep whose coaching focus would recover more points")


def coaching_order(rep: RepCoaching) -> tuple:
    """Sort key: lowest recent average first, then the most points recoverable, then the name."""
    return (rep.recent_average, -rep.recoverable, rep.username)


def focus_items(graded: Sequence[Graded], top: int = FOCUS_ITEMS,
                label: Callable[[str], str] | None = None) -> list[FocusItem]:
    """The findings that cost the most points over the last :data:`RECENT_RECORDINGS` recordings.

    Parameters
    ----------
    graded : sequence of Graded
        One rep's recordings, oldest first.
    top : int
        How many to return.
    label : callable, optional
        A code's name for people; default :func:`vmgrade.report.finding_label`.

    Returns
    -------
    list of FocusItem
        Those costing at least :data:`MIN_FOCUS_POINTS` per recent recording, most costly first
        (ties: shown in more recordings, then by name).
    """
    label = label or finding_label
    recent = list(graded[-RECENT_RECORDINGS:])
    earlier = list(graded[:-RECENT_RECORDINGS]) if len(graded) > RECENT_RECORDINGS else []
    lost: dict[str, float] = {}
    shown: dict[str, list[Graded]] = {}
    for g in recent:
        for code, gain in g.findings:
            lost[code] = lost.get(code, 0.0) + gain
            shown.setdefault(code, []).append(g)
    items = []
    for code, total in lost.items():
        per = total / len(recent)
        if per < MIN_FOCUS_POINTS:
            continue
        items.append(FocusItem(code, label(code), per, tuple(reversed(shown[code])), len(recent),
                               sum(1 for g in earlier if any(c == code for c, _ in g.findings)),
                               len(earlier)))
    items.sort(key=lambda f: (-f.points_per_recording, -len(f.recordings), f.label))
    return items[:top]


def dimension_averages(graded: Iterable[Graded]) -> dict[str, tuple[str, float]]:
    """Mean score per dimension key (with its label), in the reports' order."""
    sums: dict[str, list] = {}
    for g in graded:
        for key, label, score in g.dimensions:
            entry = sums.setdefault(key, [label, 0.0, 0])
            entry[1] += score
            entry[2] += 1
    return {key: (label, total / n) for key, (label, total, n) in sums.items()}


def build_dashboard(team: str, start: date, end: date, rep_names: Iterable[str],
                    graded: Iterable[Graded]) -> TeamDashboard:
    """The coaching dashboard from a team's reps and graded recordings in a range.

    Parameters
    ----------
    team : str
        The team's name.
    start, end : date
        The range (both included), as shown; ``graded`` is already limited to it.
    rep_names : iterable of str
        The team's reps (those without recordings are listed too).
    graded : iterable of Graded
        The team's graded recordings in the range, any order.

    Returns
    -------
    TeamDashboard
        Team averages per dimension are means of the reps' averages, so a rep who records a lot
        does not set the team's bar alone.
    """
    ordered = sorted(graded, key=lambda g: (g.when, g.id))
    reps = {name: RepCoaching(name) for name in rep_names}
    for g in ordered:
        reps.setdefault(g.rep, RepCoaching(g.rep)).graded.append(g)
    per_rep = {name: dimension_averages(r.graded) for name, r in reps.items()}
    team_dims: dict[str, list] = {}
    for averages in per_rep.values():
        for key, (label, value) in averages.items():
            team_dims.setdefault(key, [label, []])[1].append(value)
    team_avg = {key: (label, _mean(values)) for key, (label, values) in team_dims.items()}
    for name, rep in reps.items():
        rep.focus = focus_items(rep.graded)
        rep.dimensions = [DimensionRow(key, label, per_rep[name].get(key, (label, None))[1], value)
                          for key, (label, value) in team_avg.items()] if rep.graded else []
    active = sorted((r for r in reps.values() if r.graded), key=coaching_order)
    for rank, rep in enumerate(active, 1):
        rep.rank = rank
    idle = sorted((r for r in reps.values() if not r.graded), key=lambda r: r.username)
    counts = Counter(code for g in ordered for code in {c for c, _ in g.findings})
    common = [(code, finding_label(code), n)
              for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:COMMON_FINDINGS]]
    return TeamDashboard(team, start, end, active + idle,
                         [DimensionRow(key, label, value, value) for key, (label, value) in team_avg.items()],
                         list(reversed(ordered)), common)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
