"""The JSON API's request and response models (they are also the OpenAPI docs' schemas).

The classes carry comments, not docstrings: pydantic would publish a docstring as the
schema's description and change the OpenAPI document.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _as_utc(value: datetime) -> datetime:
    """``value`` with its zone: the database keeps naive UTC, and a client must not guess it."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Every time the API returns: ISO 8601 in UTC with its zone ("2026-12-07T08:01:02.123456Z").
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class UserOut(BaseModel):
    username: str
    role: str
    team: str


class LoginIn(BaseModel):
    username: str
    password: str


class LoginOut(UserOut):
    csrf_token: str


class CsrfOut(BaseModel):
    csrf_token: str


class RecordingOut(BaseModel):
    # One upload and its grading job; times are UTC with their zone.
    id: int
    rep: str
    filename: str
    source: str
    media_type: str
    size_bytes: int
    duration_s: float
    context: dict[str, str]
    created_at: UtcDatetime
    state: str
    queue_position: int | None = None
    score: float | None = None
    grade: str | None = None
    error_code: str | None = None
    error: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    report_url: str | None = None
    page_url: str
    duplicate: bool = False


# ---------------------------------------------------------------- the team dashboard (GET /api/team)

class RecordingRef(BaseModel):
    id: int
    url: str
    at: UtcDatetime
    score: float


class FocusOut(BaseModel):
    # A finding to coach next: `label` is its name for people, `code` the report's stable code.
    code: str
    label: str
    points_per_recording: float
    recordings_with: int
    window: int
    earlier_with: int
    earlier_total: int
    recordings: list[RecordingRef]


class DimensionOut(BaseModel):
    key: str
    label: str
    average: float | None
    team_average: float | None
    difference: float | None


class TrendOut(BaseModel):
    first_half_average: float
    second_half_average: float
    change: float
    direction: str


class RepOut(BaseModel):
    username: str
    rank: int | None
    recordings: int
    latest_score: float | None
    latest_grade: str | None
    latest_at: UtcDatetime | None
    average: float | None
    recent_average: float | None
    change: float | None
    trend_per_recording: float | None
    trend: TrendOut | None
    scores: list[float]
    recording_ids: list[int]
    dimensions: list[DimensionOut]
    focus: list[FocusOut]


class FindingCount(BaseModel):
    code: str
    label: str
    recordings: int


class TeamDimensionOut(BaseModel):
    key: str
    label: str
    average: float | None


class TeamOut(BaseModel):
    # `reps` are by name; `coaching_order` (and each rep's `rank`) says whom to coach first.
    model_config = ConfigDict(populate_by_name=True)

    team: str
    from_: date = Field(alias="from")
    to: date
    ranking: str
    recent_recordings: int
    recordings: int
    pending: int
    average: float | None
    dimensions: list[TeamDimensionOut]
    coaching_order: list[str]
    reps: list[RepOut]
    findings: list[FindingCount]
    common_findings: list[tuple[str, int]]
