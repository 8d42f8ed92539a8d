"""The trainers' coaching dashboard: the ``/team`` page and ``GET /api/team`` (the same numbers as JSON).

Both take a date range, ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (UTC days, both included; default the
last :data:`DEFAULT_DAYS` days up to today), and are for trainers only (403 for reps): a trainer
sees their own team's reps and recordings, nothing of another team. The numbers are
:func:`vmgrade.web.dashboard.build_dashboard`'s; docs/web.md, "Team dashboard", says what they mean.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...coaching import points_lost
from ...store.blobs import Blobs
from ...store.team import Job, Upload, User
from .. import dashboard
from ..deps import DB, ApiUser, AppSettings, PageUser, render
from ..recordings import visible_query
from ..schemas import (
    DimensionOut,
    FindingCount,
    FocusOut,
    RecordingRef,
    RepOut,
    TeamDimensionOut,
    TeamOut,
    TrendOut,
)

DEFAULT_DAYS = 30  # the range a trainer sees first: a month of practice shows a trend
PRESET_DAYS = (7, 30, 90)  # the range presets on the page: a week, a month, a quarter
# Rows in the page's recordings table (newest first): past this the page gets long on a phone, and
# the rest are one click away on /recordings.
MAX_RECORDING_ROWS = 200
# Reports read for the dashboard, kept (only their dimensions and findings) keyed by file, size and
# mtime: a page over 90 days of a team reads each report once, not on every view.
REPORT_CACHE_ENTRIES = 4096

router = APIRouter()

FromDate = Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD (UTC); "
                                       f"default {DEFAULT_DAYS - 1} days before `to`")]
ToDate = Annotated[str | None, Query(description="last day, YYYY-MM-DD (UTC), included; default today")]


# ---------------------------------------------------------------- routes

@router.get("/team", include_in_schema=False)
def team_page(request: Request, user: PageUser, s: DB, settings: AppSettings,
              from_: FromDate = None, to: ToDate = None):
    _trainers_only(user)
    start, end = date_range(from_, to)
    board, pending = load_dashboard(s, user, settings.files, start, end)
    today = _today()
    presets = [(days, today - timedelta(days=days - 1), today) for days in PRESET_DAYS]
    return render(request, "team.html", board=board, pending=pending, presets=presets,
                  rows=board.recordings[:MAX_RECORDING_ROWS], more_rows=max(0, len(board.recordings)
                                                                            - MAX_RECORDING_ROWS),
                  sparkline=dashboard.sparkline_svg, recent_n=dashboard.RECENT_RECORDINGS,
                  below_points=f"{dashboard.BELOW_TEAM_POINTS:g}")


@router.get("/api/team", response_model=TeamOut, tags=["team"],
            responses={400: {"description": "a date is not YYYY-MM-DD, or `from` is after `to`"},
                       403: {"description": "not a trainer"}})
def api_team(user: ApiUser, s: DB, settings: AppSettings, from_: FromDate = None, to: ToDate = None):
    """The coaching dashboard's numbers for the trainer's team over a date range (trainers only).

    Reps are listed by name; `rank` (1: coach first) and `coaching_order` follow `ranking`. Each
    rep's `focus` lists the findings to coach next with the recordings that show them.
    """
    _trainers_only(user)
    start, end = date_range(from_, to)
    board, pending = load_dashboard(s, user, settings.files, start, end)
    return team_out(board, pending)


def _trainers_only(user: User) -> None:
    if not user.is_trainer:
        raise HTTPException(403, "the team dashboard is for trainers")


# ---------------------------------------------------------------- the range and the data

def date_range(start: str | None, end: str | None, today: date | None = None) -> tuple[date, date]:
    """The range asked for: ``from`` and ``to`` as ISO dates, blank or absent for the defaults.

    Returns
    -------
    start, end : date
        Both included; ``end`` defaults to today (UTC), ``start`` to :data:`DEFAULT_DAYS` days
        ending at ``end``.

    Raises
    ------
    HTTPException
        400 for a date that is not YYYY-MM-DD, or ``from`` after ``to``.
    """
    last = _parse_day(end, "to") or today or _today()
    first = _parse_day(start, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise HTTPException(400, f"the range starts ({first.isoformat()}) after it ends "
                                 f"({last.isoformat()}): swap from and to")
    return first, last


def load_dashboard(s: Session, user: User, blobs: Blobs, start: date,
                   end: date) -> tuple[dashboard.TeamDashboard, int]:
    """The trainer's team dashboard over ``start``..``end``, and how many recordings there still wait.

    Reads the team's graded uploads in the range (their job's score and letter) and, for the
    dimensions and findings, their JSON reports; a report that cannot be read leaves that recording
    its score only.
    """
    lo = datetime.combine(start, time.min)
    try:
        hi = datetime.combine(end, time.min) + timedelta(days=1)
    except OverflowError:
        hi = datetime.max
    in_range = visible_query(user).where(Upload.created_at >= lo, Upload.created_at < hi)
    uploads = s.scalars(in_range.where(Job.state == "done").order_by(Upload.created_at, Upload.id)).all()
    pending = s.scalar(select(func.count()).select_from(
        in_range.where(Job.state.in_(("queued", "running"))).subquery())) or 0
    reps = s.scalars(select(User.username).where(User.team_id == user.team_id, User.role == "rep")
                     .order_by(User.username)).all()
    graded = []
    for u in uploads:
        dims, findings = _report_parts(blobs, u.job.report_path, u.job.finished_at)
        graded.append(dashboard.Graded(u.id, u.user.username, u.created_at, float(u.job.score or 0.0),
                                       u.job.letter, u.filename, dims, findings))
    return dashboard.build_dashboard(user.team.name, start, end, reps, graded), pending


def team_out(board: dashboard.TeamDashboard, pending: int) -> TeamOut:
    """The API's view of a dashboard (reps by name, with their rank)."""
    def ref(g: dashboard.Graded) -> RecordingRef:
        return RecordingRef(id=g.id, url=g.url, at=g.when, score=g.score)

    def rep_out(r: dashboard.RepCoaching) -> RepOut:
        t, latest = r.trend, r.latest
        return RepOut(
            username=r.username, rank=r.rank, recordings=r.count,
            latest_score=latest.score if latest else None, latest_grade=latest.letter if latest else None,
            latest_at=latest.when if latest else None, average=r.average, recent_average=r.recent_average,
            change=r.change, trend_per_recording=r.trend_per_recording,
            trend=None if t is None else TrendOut(first_half_average=t.first_half_average,
                                                  second_half_average=t.second_half_average,
                                                  change=t.change, direction=t.direction),
            scores=[g.score for g in r.graded], recording_ids=[g.id for g in r.graded],
            dimensions=[DimensionOut(key=d.key, label=d.label, average=d.average, team_average=d.team_average,
                                     difference=d.difference) for d in r.dimensions],
            focus=[FocusOut(code=f.code, label=f.label, points_per_recording=f.points_per_recording,
                            recordings_with=len(f.recordings), window=f.window, earlier_with=f.earlier_with,
                            earlier_total=f.earlier_total, recordings=[ref(g) for g in f.recordings])
                   for f in r.focus])

    return TeamOut(
        team=board.team, from_=board.start, to=board.end, ranking=dashboard.RANKING,
        recent_recordings=dashboard.RECENT_RECORDINGS, recordings=len(board.recordings), pending=pending,
        average=board.average,
        dimensions=[TeamDimensionOut(key=d.key, label=d.label, average=d.average) for d in board.dimensions],
        coaching_order=[r.username for r in board.coached],
        reps=[rep_out(r) for r in sorted(board.reps, key=lambda r: r.username)],
        findings=[FindingCount(code=c, label=label, recordings=n) for c, label, n in board.common],
        common_findings=[(c, n) for c, _, n in board.common])


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _report_parts(blobs: Blobs, report_path: str | None, finished_at) -> tuple[tuple, tuple]:
    """A report's ``dimensions`` as (key, label, score) and ``feedback`` as (code, gain), or two empties."""
    if not report_path:
        return (), ()
    return _read_parts(blobs, report_path, finished_at)


@functools.lru_cache(maxsize=REPORT_CACHE_ENTRIES)
def _read_parts(blobs: Blobs, report_path: str, finished_at) -> tuple[tuple, tuple]:
    """Cached by store, key and the job's finish time (a report graded anew is read anew)."""
    try:
        data = blobs.read(report_path)
        if data is None:
            return (), ()
        report = json.loads(data.decode("utf-8"))
        dims = tuple((str(d["key"]), str(d.get("label") or d["key"]), float(d["score"]))
                     for d in report.get("dimensions") or ())
        gains = points_lost(report.get("feedback"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return (), ()  # a damaged report: the recording keeps its score, without the breakdown
    return dims, tuple(gains.items())
