"""The JSON API's request and response models (they are also the OpenAPI docs' schemas).

The classes carry comments, not docstrings: pydantic would publish a docstring as the
schema's description and change the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
    # One upload and its grading job; times are naive UTC.
    id: int
    rep: str
    filename: str
    source: str
    media_type: str
    size_bytes: int
    duration_s: float
    context: dict[str, str]
    created_at: datetime
    state: str
    queue_position: int | None = None
    score: float | None = None
    grade: str | None = None
    error_code: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_url: str | None = None
    page_url: str
    duplicate: bool = False


class RepOut(BaseModel):
    username: str
    recordings: int
    latest_score: float | None
    latest_grade: str | None
    latest_at: datetime | None
    average: float | None
    change: float | None
    trend_per_recording: float | None
    scores: list[float]


class TeamOut(BaseModel):
    team: str
    reps: list[RepOut]
    common_findings: list[tuple[str, int]]
