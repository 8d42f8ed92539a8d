"""The trainers' coaching dashboard (/team, GET /api/team): ranking, coaching focus, dimension averages,
the date range, access, empty states, and no finding code on the page. Fast lane: no model; the
history is real graded report dicts (``Grade.to_dict()``) stored as the worker stores them.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import date, datetime, timedelta, timezone
from html import escape
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_support import ROOT, add_users, api_login  # noqa: E402

from vmgrade.report import FINDING_LABELS, finding_label  # noqa: E402
from vmgrade.scoring import DimensionScore, Finding, Grade, load_rubric  # noqa: E402
from vmgrade.scoring.rubric import DIMENSIONS  # noqa: E402
from vmgrade.store.team import Job, Upload, User  # noqa: E402
from vmgrade.web import dashboard  # noqa: E402
from vmgrade.web.app import create_app  # noqa: E402

SCORING = ROOT / "vmgrade" / "scoring"
SEVERITIES = ("critical", "major", "minor")
TODAY = datetime.now(timezone.utc).date()


def _todays() -> set:
    """The day this module was imported, and today: a run that crosses midnight (UTC) sees both."""
    return {TODAY, datetime.now(timezone.utc).date()}
RUBRIC = load_rubric()


# ---------------------------------------------------------------- building a team's history

def graded_report(score: float, dims: dict[str, float], findings: list[tuple[str, str, float]]) -> dict:
    """A report as the worker writes it: the real ``Grade.to_dict()`` of these dimension scores and findings
    (``findings``: code, dimension, gain)."""
    grade = Grade(score, RUBRIC.letter(score),
                  tuple(DimensionScore(k, RUBRIC.labels[k], dims.get(k, 80.0), RUBRIC.weights[k])
                        for k in DIMENSIONS),
                  tuple(Finding(code, "major", dim, f"fix {code}", 1.0, 2.0, gain)
                        for code, dim, gain in findings),
                  (), RUBRIC.version, "rubric.toml")
    return {"schema_version": 1, "file": "x.wav", "duration_s": 20.0, **grade.to_dict()}


def add_graded(app, username: str, report: dict, day: date, hour: int = 12) -> int:
    """Store ``report`` as a graded upload of ``username`` made on ``day`` (as the worker leaves it)."""
    data_dir: Path = app.state.settings.data_dir
    with app.state.sessions() as s:
        user = s.query(User).filter(User.username == username).one()
        n = s.query(Upload).count()
        audio = data_dir / "uploads" / f"{username}-{n}.wav"
        audio.parent.mkdir(parents=True, exist_ok=True)
        audio.write_bytes(b"RIFF....WAVE")
        upload = Upload(user_id=user.id, sha256=f"{n:064x}", stored_path=str(audio.relative_to(data_dir)),
                        filename=f"{username}-take-{n}.wav", media_type="audio/wav", size_bytes=12,
                        duration_s=20.0, source="upload", context={}, context_key=f"k{n}",
                        created_at=datetime(day.year, day.month, day.day, hour))
        upload.job = Job(state="done", attempts=1, score=report["score"], letter=report["grade"],
                         finding_codes=[f["code"] for f in report["feedback"]])
        s.add(upload)
        s.commit()
        upload.job.report_path = f"reports/{upload.id}.json"
        (data_dir / "reports").mkdir(exist_ok=True)
        (data_dir / upload.job.report_path).write_text(json.dumps(report))
        s.commit()
        return upload.id


@pytest.fixture
def app(tmp_path):
    app = create_app(tmp_path / "data", secret_key="test-secret", start_worker=False)
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"), ("rosa", "rep", "east"),
              ("tom", "trainer", "east"), ("wes", "rep", "west"), ("tina", "trainer", "west"))
    return app


@pytest.fixture
def history(app):
    """rita: low scores, ``no_specific_reason`` costing 12 points in four of her five recordings; ravi: good,
    small findings; rosa: one recording; wes (another team): a recording; one of rita's is 60 days old."""
    days = [TODAY - timedelta(days=d) for d in (20, 15, 10, 5, 1)]
    ids: dict[str, list[int]] = {"rita": [], "ravi": [], "rosa": [], "wes": [], "old": []}
    for i, day in enumerate(days):
        reason = [("no_specific_reason", "relevance", 12.0)] if i != 2 else []
        ids["rita"].append(add_graded(app, "rita", graded_report(
            52.0 + i, {"relevance": 30.0, "opening": 70.0},
            reason + [("fillers", "fluency", 2.0), ("number_unconfirmed", "call_to_action", 0.0)]), day))
        ids["ravi"].append(add_graded(app, "ravi", graded_report(
            80.0 + 2 * i, {"relevance": 90.0, "opening": 90.0}, [("fillers", "fluency", 1.5)]), day, 9))
    ids["rosa"].append(add_graded(app, "rosa", graded_report(
        75.0, {"relevance": 60.0, "opening": 80.0}, [("identity_not_repeated", "opening", 3.0)]), days[-1]))
    ids["wes"].append(add_graded(app, "wes", graded_report(
        40.0, {"relevance": 10.0}, [("generic_pitch", "relevance", 20.0)]), days[-1]))
    ids["old"].append(add_graded(app, "rita", graded_report(
        20.0, {"relevance": 0.0}, [("too_long", "brevity", 30.0)]), TODAY - timedelta(days=60)))
    return ids


# ---------------------------------------------------------------- the numbers

def test_the_rep_with_low_scores_and_a_recurring_finding_comes_first_with_that_finding_to_coach(app, history):
    with TestClient(app) as client:
        api_login(client, "tom")
        team = client.get("/api/team").json()
        page = client.get("/team").text
    assert team["team"] == "east"
    assert team["coaching_order"] == ["rita", "rosa", "ravi"]  # recent averages 54, 75, 84
    reps = {r["username"]: r for r in team["reps"]}
    assert [r["username"] for r in team["reps"]] == ["ravi", "rita", "rosa"]  # the API lists them by name
    rita = reps["rita"]
    assert rita["rank"] == 1 and rita["recordings"] == 5  # the 60-day-old one is out of the range
    assert rita["recent_average"] == pytest.approx(54.0)
    first = rita["focus"][0]
    assert first["code"] == "no_specific_reason" and first["label"] == "No reason for the call"
    assert first["points_per_recording"] == pytest.approx(4 * 12.0 / 5)
    assert first["recordings_with"] == 4 and first["window"] == 5
    shown = [h for i, h in enumerate(history["rita"]) if i != 2][::-1]  # newest first, not the clean one
    assert [r["id"] for r in first["recordings"]] == shown
    assert [r["url"] for r in first["recordings"]] == [f"/recordings/{i}" for i in shown]
    assert rita["focus"][1]["code"] == "fillers"  # 2 points in each: second
    assert all(f["code"] != "number_unconfirmed" for f in rita["focus"])  # worth no points: never a focus
    assert rita["trend"]["change"] == pytest.approx((55.0 + 56.0) / 2 - (52.0 + 53.0) / 2)
    assert rita["trend"]["direction"] == "up"
    assert [f["label"] for f in reps["ravi"]["focus"]] == ["Filler words"]  # 1.5 points a recording

    # the page: the same order, the focus by its label, links to the recordings that show it
    order = [m.group(1) for m in re.finditer(r'<tr data-rep="(\w+)"', page)]
    assert order == ["rita", "rosa", "ravi"]
    card = page[page.index('id="rep-1"'):page.index('id="rep-2"')]
    assert "No reason for the call" in card and "Filler words" in card
    for upload_id in shown:
        assert f'href="/recordings/{upload_id}"' in card
    assert f'href="/recordings/{history["rita"][2]}"' not in card.split("Coach next")[1].split("Filler")[0]


def test_dimension_averages_against_the_team_are_computed_per_rep_then_across_reps(app, history):
    with TestClient(app) as client:
        api_login(client, "tom")
        team = client.get("/api/team").json()
    dims = {d["key"]: d for d in team["dimensions"]}
    assert [d["key"] for d in team["dimensions"]] == list(DIMENSIONS)  # the report's order
    assert dims["relevance"]["label"] == RUBRIC.labels["relevance"]
    # each rep counts once: rita 30 (5 recordings), ravi 90 (5), rosa 60 (1): the mean of the three
    assert dims["relevance"]["average"] == pytest.approx((30.0 + 90.0 + 60.0) / 3)
    assert dims["opening"]["average"] == pytest.approx((70.0 + 90.0 + 80.0) / 3)
    rita = next(r for r in team["reps"] if r["username"] == "rita")
    relevance = next(d for d in rita["dimensions"] if d["key"] == "relevance")
    assert relevance["average"] == pytest.approx(30.0)
    assert relevance["team_average"] == pytest.approx(60.0)
    assert relevance["difference"] == pytest.approx(-30.0)
    assert team["average"] == pytest.approx((54.0 + 84.0 + 75.0) / 3)
    assert team["recordings"] == 11 and team["pending"] == 0


def test_the_date_range_includes_and_excludes_by_day(app, history):
    old_day = TODAY - timedelta(days=60)
    with TestClient(app) as client:
        api_login(client, "tom")
        default = client.get("/api/team").json()
        to = date.fromisoformat(default["to"])
        assert to in _todays()
        assert default["from"] == (to - timedelta(days=29)).isoformat()

        only_old = client.get(f"/api/team?from={old_day.isoformat()}&to={old_day.isoformat()}").json()
        assert only_old["recordings"] == 1 and only_old["coaching_order"] == ["rita"]
        assert next(r for r in only_old["reps"] if r["username"] == "rita")["recording_ids"] == history["old"]

        quarter = client.get(f"/api/team?from={(TODAY - timedelta(days=89)).isoformat()}").json()
        assert quarter["recordings"] == 12 and date.fromisoformat(quarter["to"]) in _todays()

        # the last day is included, the day before the first is not
        day = TODAY - timedelta(days=10)
        one = client.get(f"/api/team?from={day.isoformat()}&to={day.isoformat()}").json()
        assert sorted(i for r in one["reps"] for i in r["recording_ids"]) == sorted(
            [history["rita"][2], history["ravi"][2]])
        after = client.get(f"/api/team?from={(day + timedelta(days=1)).isoformat()}"
                           f"&to={(TODAY - timedelta(days=6)).isoformat()}").json()
        assert after["recordings"] == 0

        page = client.get(f"/team?from={old_day.isoformat()}&to={old_day.isoformat()}").text
        assert f'value="{old_day.isoformat()}"' in page and "Too long" in page
        assert client.get("/team?from=&to=").status_code == 200  # blank fields: the default range

        for query in ("from=2024-13-01", "to=yesterday", f"from={TODAY.isoformat()}&to=2020-01-01"):
            assert client.get(f"/api/team?{query}").status_code == 400, query
            assert client.get(f"/team?{query}").status_code == 400, query


# ---------------------------------------------------------------- access

def test_a_trainer_of_another_team_sees_nothing_of_this_team_and_reps_get_no_team_page(app, history):
    east_ids = {i for name in ("rita", "ravi", "rosa") for i in history[name]}
    with TestClient(app) as client:
        api_login(client, "tina")  # trainer, west
        team = client.get("/api/team").json()
        page = client.get("/team").text
    assert team["team"] == "west" and [r["username"] for r in team["reps"]] == ["wes"]
    assert team["recordings"] == 1
    for name in ("rita", "ravi", "rosa"):
        assert name not in page
    for upload_id in east_ids:
        assert f"/recordings/{upload_id}\"" not in page and f"/recordings/{upload_id}/" not in page

    for rep in ("rita", "wes"):
        with TestClient(app) as client:
            api_login(client, rep)
            assert client.get("/api/team").status_code == 403
            assert client.get("/team").status_code == 403
    with TestClient(app) as client:  # anonymous: the login page, or 401
        assert client.get("/team", follow_redirects=False).status_code == 303
        assert client.get("/api/team").status_code == 401


def test_every_recording_can_be_listened_to_from_the_page(app, history):
    with TestClient(app) as client:
        api_login(client, "tom")
        page = client.get("/team").text
        for upload_id in history["rita"] + history["ravi"] + history["rosa"]:
            assert f'<audio controls preload="none" src="/recordings/{upload_id}/audio">' in page
            assert client.get(f"/recordings/{upload_id}/audio").status_code == 200
    assert '<link rel="stylesheet" href="/static/dashboard.css">' in page
    assert "overflow" not in page  # no inline styles (CSP): the tables scroll in dashboard.css's boxes
    assert page.count('class="dash-scroll"') >= 3


# ---------------------------------------------------------------- names, never codes

def test_no_finding_code_appears_in_the_page(app, history):
    # every finding in a recording of the range, so every label is on the page and no code is
    day = TODAY - timedelta(days=3)
    add_graded(app, "ravi", graded_report(
        50.0, {}, [(code, "opening", 5.0) for code in FINDING_LABELS]), day)
    with TestClient(app) as client:
        api_login(client, "tom")
        page = client.get("/team").text
        api = client.get("/api/team").json()
    # a label may hold a one-word code as a word ("Distorted (clipping)", "Fluency and fillers"): take the
    # finding and dimension labels out first
    assert "Distorted (clipping)" in page
    text = page
    for label in sorted({*FINDING_LABELS.values(), *RUBRIC.labels.values()}, key=len, reverse=True):
        text = text.replace(str(escape(label)), "")
    for code in FINDING_LABELS:
        assert not re.search(rf"(?<![\w/-]){re.escape(code)}(?![\w-])", text), code
    assert {f["code"]: f["label"] for f in api["findings"]}.items() <= {
        c: finding_label(c) for c in FINDING_LABELS}.items()


def scoring_finding_codes() -> set[str]:
    """Every finding code the scoring modules can emit, read from their source: the first item of each
    ``(code, severity, ...)`` tuple, ``Finding(code, ...)`` and ``code, ... = "code", ...`` assignment."""
    codes: set[str] = set()

    def strings(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):  # "major" if ... else "minor"
            return strings(node.body) + strings(node.orelse)
        if isinstance(node, ast.JoinedStr):  # f"no_{'caller_name' if ... else 'company'}"
            out = [""]
            for part in node.values:
                if isinstance(part, ast.Constant):
                    options = [part.value]
                elif isinstance(part.value, ast.IfExp):
                    options = strings(part.value.body) + strings(part.value.orelse)
                else:
                    raise AssertionError(f"a finding code this test cannot read: {ast.unparse(node)}")
                out = [a + b for a in out for b in options]
            return out
        return []

    for path in SCORING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple) and len(node.elts) >= 2 \
                    and isinstance(node.elts[1], (ast.Constant, ast.IfExp)) \
                    and set(strings(node.elts[1])) & set(SEVERITIES):
                codes.update(strings(node.elts[0]))
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Finding" and node.args:
                codes.update(strings(node.args[0]))
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple) \
                    and isinstance(node.value, ast.Tuple):
                for target, value in zip(node.targets[0].elts, node.value.elts):
                    if isinstance(target, ast.Name) and target.id == "code":
                        codes.update(strings(value))
    return codes - set(SEVERITIES)  # (the SEVERITIES tuple itself)


def documented_finding_codes() -> set[str]:
    """The public list: docs/reports.md, "Feedback codes: ..." (up to the next blank line)."""
    text = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    paragraph = text.split("Feedback codes:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", paragraph)) - set(SEVERITIES)


def test_every_finding_code_the_scoring_can_emit_has_a_label():
    emitted = scoring_finding_codes()
    # the reader found the codes of every shape the scoring uses (not an empty or partial set)
    assert {"no_caller_name", "late_company", "vague_reason", "no_specific_reason", "too_long", "fillers",
            "number_unconfirmed", "hard_to_transcribe", "level_too_high", "long_pause"} <= emitted
    assert len(emitted) >= 30
    assert emitted - FINDING_LABELS.keys() == set()
    assert documented_finding_codes() - FINDING_LABELS.keys() == set()
    for code in emitted:
        assert finding_label(code) == FINDING_LABELS[code] and "_" not in finding_label(code)


# ---------------------------------------------------------------- empty and finished states

def test_empty_states_look_intentional(app, tmp_path):
    with TestClient(app) as client:
        api_login(client, "tom")
        page = client.get("/team").text  # reps, but no recordings at all
        assert any(f"No recordings from {(day - timedelta(days=29)).isoformat()} to {day.isoformat()}; "
                   "widen the range" in page for day in _todays())
        assert "<svg" not in page and "<progress" not in page and "<audio" not in page
        assert all(name in page for name in ("rita", "ravi", "rosa"))  # the team's reps are still named
        api = client.get("/api/team").json()
        assert api["recordings"] == 0 and api["coaching_order"] == [] and api["average"] is None
        assert all(r["rank"] is None and r["focus"] == [] and r["trend"] is None for r in api["reps"])

    lonely = create_app(tmp_path / "lonely", secret_key="test-secret", start_worker=False)
    add_users(lonely, ("tess", "trainer", "north"))
    with TestClient(lonely) as client:
        api_login(client, "tess")
        page = client.get("/team").text
        assert "No reps in team north yet" in page and "<svg" not in page
        assert client.get("/api/team").json()["reps"] == []

    # one recording: no trend yet, no sparkline; a queued one is a note, not a progress bar
    only = add_graded(app, "rosa", graded_report(70.0, {}, [("soft_ask", "call_to_action", 4.0)]),
                      TODAY - timedelta(days=2))
    with app.state.sessions() as s:
        queued = s.get(Upload, only)
        s.add(Upload(user_id=queued.user_id, sha256="f" * 64, stored_path=queued.stored_path,
                     filename="new.wav", media_type="audio/wav", size_bytes=12, duration_s=20.0,
                     source="upload", context={}, context_key="q", job=Job(state="queued", attempts=0)))
        s.commit()
    with TestClient(app) as client:
        api_login(client, "tom")
        page = client.get("/team").text
        api = client.get("/api/team").json()
    assert "one recording: no trend yet" in page and 'class="spark"' not in page and "<progress" not in page
    assert "1 recording in this range is still being graded" in page and api["pending"] == 1
    rosa = next(r for r in api["reps"] if r["username"] == "rosa")
    assert rosa["trend"] is None and rosa["focus"][0]["label"] == "Soft ask"
    assert [r["username"] for r in api["reps"] if r["rank"] is None] == ["ravi", "rita"]
    assert "no recordings in this range" in page


def test_focus_and_ranking_are_pure_functions_of_the_recordings():
    t0 = datetime(2025, 3, 1)
    g = [dashboard.Graded(i, "a", t0 + timedelta(days=i), 60.0, findings=(("monotone", 3.0),) if i < 3 else
                          (("too_fast", 0.5),)) for i in range(8)]
    # monotone: 3 of the last 5 (ids 3..7 are recent; ids 0..2 earlier): not in the window any more
    assert dashboard.focus_items(g) == []  # too_fast: 0.5 a recording, under MIN_FOCUS_POINTS
    g2 = g[:6]  # recent: ids 1..5; monotone in 1, 2
    [item] = dashboard.focus_items(g2)
    assert item.code == "monotone" and item.label == "Monotone voice"
    assert item.points_per_recording == pytest.approx(6.0 / 5) and [r.id for r in item.recordings] == [2, 1]
    assert (item.earlier_with, item.earlier_total) == (1, 1)
    board = dashboard.build_dashboard("t", t0.date(), t0.date(), ["a", "b", "c"], g2 + [
        dashboard.Graded(10, "b", t0, 60.0, findings=(("noisy", 9.0),))])
    # a and b tie on the recent average: b's focus wins back more points, so b is coached first
    assert [r.username for r in board.reps] == ["b", "a", "c"]
    assert [r.rank for r in board.reps] == [1, 2, None]


def test_a_damaged_report_keeps_its_score_and_the_page_stands(app, history):
    (app.state.settings.data_dir / "reports" / f"{history['rosa'][0]}.json").write_text("{not json")
    with TestClient(app) as client:
        api_login(client, "tom")
        assert client.get("/team").status_code == 200
        rosa = next(r for r in client.get("/api/team").json()["reps"] if r["username"] == "rosa")
        assert rosa["latest_score"] == 75.0 and rosa["focus"] == []
        assert all(d["average"] is None for d in rosa["dimensions"])
        assert "/api/team" in client.get("/api/openapi.json").json()["paths"]
