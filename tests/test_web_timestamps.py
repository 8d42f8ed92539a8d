"""Every time the JSON API returns is ISO 8601 with its zone (UTC), though the database keeps naive UTC.

Fast lane: no model. Uploads go through the real API; their jobs are then set to the states a grading
worker leaves (times naive, as ``vmgrade.store.team.utcnow`` writes them), with a real graded report.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_support import add_users, api_login, api_upload, make_clip, quiet_app, set_job  # noqa: E402

from vmgrade.scoring import DimensionScore, Finding, Grade, load_rubric  # noqa: E402
from vmgrade.scoring.rubric import DIMENSIONS  # noqa: E402
from vmgrade.store.team import Job, Upload, utcnow  # noqa: E402

RUBRIC = load_rubric()


def _report(score: float) -> dict:
    """A graded report as the worker stores it, with a finding costing enough points to coach."""
    grade = Grade(score, RUBRIC.letter(score),
                  tuple(DimensionScore(k, RUBRIC.labels[k], 70.0, RUBRIC.weights[k]) for k in DIMENSIONS),
                  (Finding("no_specific_reason", "major", "relevance", "say why you call", 1.0, 2.0, 12.0),),
                  (), RUBRIC.version, "rubric.toml")
    return {"schema_version": 1, "file": "x.wav", "duration_s": 3.0, **grade.to_dict()}


def _finish(app, upload_id: int, score: float, started: datetime) -> None:
    """Leave ``upload_id`` graded, as a worker does: naive UTC times, the report under reports/."""
    data_dir: Path = app.state.settings.data_dir
    key = f"reports/{upload_id}.json"
    (data_dir / "reports").mkdir(exist_ok=True)
    (data_dir / key).write_text(json.dumps(_report(score)))
    set_job(app, upload_id, state="done", attempts=1, started_at=started,
            finished_at=started + timedelta(seconds=7, microseconds=250), score=score,
            letter=RUBRIC.letter(score), finding_codes=["no_specific_reason"], report_path=key)


def _times(body, found: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every non-null value of a key named ``at`` or ``*_at`` in ``body``, by key."""
    if isinstance(body, dict):
        for key, value in body.items():
            if (key == "at" or key.endswith("_at")) and value is not None:
                found.setdefault(key, []).append(value)
            else:
                _times(value, found)
    elif isinstance(body, list):
        for item in body:
            _times(item, found)
    return found


def _assert_utc(found: dict[str, list[str]]) -> None:
    for key, values in found.items():
        for value in values:
            parsed = datetime.fromisoformat(value)
            assert parsed.tzinfo is not None, f"{key}: {value!r} has no time zone"
            assert parsed.utcoffset() == timedelta(0), f"{key}: {value!r} is not UTC"


def _date_time_fields(openapi: dict) -> set[str]:
    """The names of every property the API documents as ``format: date-time``."""
    names: set[str] = set()
    for schema in openapi["components"]["schemas"].values():
        for name, prop in schema.get("properties", {}).items():
            options = [prop, *prop.get("anyOf", [])]
            if any(o.get("format") == "date-time" for o in options):
                names.add(name)
    return names


@pytest.fixture
def team_uploads(tmp_path):
    """rita's three uploads: one still queued, two graded (started a day apart); trainer tom, same team."""
    app = quiet_app(tmp_path / "data")
    add_users(app, ("rita", "rep", "east"), ("tom", "trainer", "east"))
    with TestClient(app) as client:
        token = api_login(client, "rita")
        ids = []
        for pad in (0, 10, 20):
            response = api_upload(client, token, make_clip(tmp_path / f"take{pad}.wav", 2.0, pad_ms=pad))
            assert response.status_code == 202, response.text
            _assert_utc(_times(response.json(), {}))
            ids.append(response.json()["id"])
    now = utcnow()
    _finish(app, ids[0], 61.0, now - timedelta(days=1, minutes=3))
    _finish(app, ids[1], 74.0, now - timedelta(minutes=3))
    return app, ids


def test_recordings_api_times_carry_utc(team_uploads):
    app, ids = team_uploads
    with TestClient(app) as client:
        api_login(client, "rita")
        listed = client.get("/api/recordings")
        assert listed.status_code == 200, listed.text
        found = _times(listed.json(), {})
        for upload_id in ids:
            one = client.get(f"/api/recordings/{upload_id}")
            assert one.status_code == 200, one.text
            _times(one.json(), found)
        compared = client.get("/api/compare", params={"ids": ids[:2]})
        assert compared.status_code == 200, compared.text
        _times(compared.json(), found)
        documented = _date_time_fields(client.get("/api/openapi.json").json())
    assert {"created_at", "started_at", "finished_at", "recorded_at"} <= found.keys(), found
    _assert_utc(found)

    # the same instants as the database's naive UTC, not shifted by a zone
    with app.state.sessions() as s:
        upload = s.get(Upload, ids[1])
        job = s.query(Job).filter(Job.upload_id == ids[1]).one()
        stored = {"created_at": upload.created_at, "started_at": job.started_at,
                  "finished_at": job.finished_at}
    with TestClient(app) as client:
        api_login(client, "rita")
        body = client.get(f"/api/recordings/{ids[1]}").json()
    for key, naive in stored.items():
        assert datetime.fromisoformat(body[key]) == naive.replace(tzinfo=timezone.utc), (key, body[key])
    # every time field the schemas document is one this test has seen (RecordingRef.at and RepOut.latest_at
    # come from /api/team, below)
    assert documented <= found.keys() | {"at", "latest_at"}, documented


def test_team_api_times_carry_utc(team_uploads):
    app, ids = team_uploads
    with TestClient(app) as client:
        api_login(client, "tom")
        team = client.get("/api/team")
        assert team.status_code == 200, team.text
        documented = _date_time_fields(client.get("/api/openapi.json").json())
    found = _times(team.json(), {})
    assert {"latest_at", "at"} <= found.keys(), team.json()
    assert len(found["at"]) == 2, found  # the focus lists both recordings with the finding
    _assert_utc(found)
    assert {"at", "latest_at"} <= documented


def test_naive_and_aware_times_serialize_the_same_instant():
    from vmgrade.web.schemas import RecordingRef

    naive = datetime(2026, 12, 7, 8, 1, 2, 123456)
    aware = naive.replace(tzinfo=timezone.utc).astimezone(timezone(timedelta(hours=-5)))
    for value in (naive, aware):
        out = RecordingRef(id=1, url="/recordings/1", at=value, score=1.0).model_dump(mode="json")
        assert out["at"] == "2026-12-07T08:01:02.123456Z"
