"""vmgrade batch --team: graded files become uploads of their rep in the web app's team store.

The fast tests record a real report (tests/data) with :mod:`vmgrade.store.intake` on SQLite and
on a throwaway PostgreSQL (skipped where none can start), and read it back through the real web
app; the slow one runs the batch command over bundled samples with tiny.en.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vmgrade.fileio import content_hash
from vmgrade.store.blobs import open_blobs
from vmgrade.store.history import open_store
from vmgrade.store.intake import NO_PASSWORD_HASH, TeamRecorder, TeamStoreError, record_batch_result
from vmgrade.store.team import Job, Team, Upload, User

REPORT = json.loads((ROOT / "tests" / "data" / "report_before_practice.json").read_text(encoding="utf-8"))
TEST_MODEL = "tiny.en"


@pytest.fixture(params=["sqlite", "postgresql"])
def team_store(request, tmp_path):
    """(engine, blobs, data dir): SQLite with files under the data dir, or PostgreSQL with files in it."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        url, kind = f"sqlite:///{tmp_path / 'history.sqlite3'}", "local"
    else:
        url, kind = request.getfixturevalue("pg_db_url"), "database"
    store = open_store(url)
    try:
        yield store.engine, open_blobs(kind, data_dir=data_dir, engine=store.engine), data_dir
    finally:
        store.close()


def audio_copy(tmp_path: Path, name: str = "Call One.WAV", source: str = "before_practice.wav") -> Path:
    path = tmp_path / "calls" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / source, path)
    return path


def rows(engine, table) -> list:
    with Session(engine) as s:
        return list(s.scalars(select(table)).unique())


def test_a_result_becomes_a_graded_upload_and_a_rerun_updates_it(team_store, tmp_path):
    engine, blobs, _ = team_store
    audio = audio_copy(tmp_path)
    before = audio.read_bytes()
    sha = content_hash(audio)
    when = datetime(2026, 11, 2, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    done = record_batch_result(engine, blobs, team="east", rep="alice", audio_path=audio, report=REPORT,
                               content_hash=sha, recorded_at=when, context={"caller_name": "Ann"},
                               recording_id=7)
    assert done.status == "added"
    assert audio.read_bytes() == before  # copied in, never moved

    [team] = rows(engine, Team)
    [user] = rows(engine, User)
    assert (team.name, user.username, user.role, user.team_id) == ("east", "alice", "rep", team.id)
    assert user.password_hash == NO_PASSWORD_HASH
    [upload] = rows(engine, Upload)
    assert (upload.id, upload.source, upload.filename, upload.sha256) == \
        (done.upload_id, "batch", "Call One.WAV", sha)
    assert upload.stored_path == f"uploads/{sha[:2]}/{sha}.wav" and upload.media_type == "audio/x-wav"
    assert upload.size_bytes == len(before) and upload.duration_s == REPORT["duration_s"]
    assert upload.created_at == datetime(2026, 11, 2, 14, 30)  # the recording's time, naive UTC
    assert upload.context == {"caller_name": "Ann"}
    from vmgrade.store.intake import context_key  # the web's dedup key (vmgrade.web.recordings) too

    assert upload.context_key == context_key({"caller_name": "Ann"})
    job = upload.job
    assert (job.state, job.attempts, job.score, job.letter, job.recording_id) == ("done", 1, REPORT["score"],
                                                                                  REPORT["grade"], 7)
    assert job.finding_codes == [f["code"] for f in REPORT["feedback"] if f.get("code")]
    assert job.report_path == f"reports/{upload.id}.json" and job.finished_at is not None
    assert blobs.read(upload.stored_path) == before
    stored = json.loads(blobs.read(job.report_path))
    assert stored == {**REPORT, "file": "Call One.WAV"}  # the rep's file name, not the batch's path

    # the same rep, bytes and context again (a rerun, a new grade): that upload, updated
    regraded = {**REPORT, "score": 91.0, "grade": "A", "feedback": []}
    again = record_batch_result(engine, blobs, team="east", rep="ALICE", audio_path=audio, report=regraded,
                                content_hash=sha, context={"caller_name": "Ann", "channel": "auto"})
    assert again.status == "updated" and again.upload_id == done.upload_id
    [upload] = rows(engine, Upload)
    assert (upload.job.score, upload.job.letter, upload.job.finding_codes) == (91.0, "A", [])
    assert upload.created_at == datetime(2026, 11, 2, 14, 30)  # no new time given: kept
    assert json.loads(blobs.read(upload.job.report_path))["score"] == 91.0
    assert len(rows(engine, User)) == 1 and len(rows(engine, Job)) == 1

    # another context is another upload of the same audio (stored once)
    other = record_batch_result(engine, blobs, team="east", rep="alice", audio_path=audio, report=REPORT,
                                content_hash=sha, context={"caller_name": "Bo"})
    assert other.status == "added" and other.upload_id != done.upload_id
    assert {u.stored_path for u in rows(engine, Upload)} == {upload.stored_path}


def test_reps_of_another_team_changed_files_and_failed_reports_are_refused(team_store, tmp_path):
    engine, blobs, data_dir = team_store
    audio = audio_copy(tmp_path)
    sha = content_hash(audio)
    recorder = TeamRecorder(engine, blobs, "west")
    recorder.check_rep("bob")  # bob joins west
    east = TeamRecorder(engine, blobs, "east")
    with pytest.raises(TeamStoreError, match="'bob' is in team 'west'"):
        east.record(rep="Bob", audio_path=audio, report=REPORT, content_hash=sha)
    with pytest.raises(TeamStoreError, match="cannot be a web app username"):
        east.record(rep="Bob Smith", audio_path=audio, report=REPORT, content_hash=sha)
    with pytest.raises(ValueError, match="without a grade"):
        east.record(rep="carol", audio_path=audio, report={"file": "x", "error": {"code": "too_long"}},
                    content_hash=sha)
    audio.write_bytes(audio.read_bytes() + b"\0")  # changed since it was graded
    with pytest.raises(TeamStoreError, match="changed since it was graded"):
        east.record(rep="carol", audio_path=audio, report=REPORT, content_hash=sha)
    assert rows(engine, Upload) == []
    assert not blobs.exists(f"uploads/{sha[:2]}/{sha}.wav")
    leftovers = [p for p in data_dir.rglob("*") if p.is_file()] if data_dir.exists() else []
    assert leftovers == []  # no half copy left behind
    assert sorted(u.username for u in rows(engine, User)) == ["bob", "carol"]  # carol: a valid rep of east


def test_a_reps_own_web_upload_of_the_same_audio_is_kept(team_store, tmp_path):
    engine, blobs, _ = team_store
    audio = audio_copy(tmp_path)
    sha = content_hash(audio)
    recorder = TeamRecorder(engine, blobs, "east")
    user_id = recorder.check_rep("alice")
    from vmgrade.store.intake import context_key

    with Session(engine) as s:
        upload = Upload(user_id=user_id, sha256=sha, stored_path="uploads/x/y.wav", filename="mine.wav",
                        media_type="audio/x-wav", size_bytes=1, duration_s=1.0, source="upload", context={},
                        context_key=context_key({}))
        upload.job = Job(state="queued")
        s.add(upload)
        s.commit()
        web_id = upload.id
    kept = recorder.record(rep="alice", audio_path=audio, report=REPORT, content_hash=sha)
    assert kept.upload_id == web_id and kept.status == "kept" and recorder.counts["kept"] == 1
    [upload] = rows(engine, Upload)
    assert (upload.source, upload.job.state, upload.filename) == ("upload", "queued", "mine.wav")


def test_the_web_app_shows_batch_results_to_the_trainer_only(tmp_path):
    from fastapi.testclient import TestClient
    from test_web_support import PASSWORD, add_users, api_login, quiet_app

    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'history.sqlite3'}"
    audio = audio_copy(tmp_path)
    with open_store(url) as store:
        blobs = open_blobs("local", data_dir=data_dir, engine=store.engine)
        recorder = TeamRecorder(store.engine, blobs, "east")
        when = datetime.now(timezone.utc) - timedelta(days=1)  # inside the dashboard's default range
        done = recorder.record(rep="alice", audio_path=audio, report=REPORT, content_hash=content_hash(audio),
                               recorded_at=when)
    app = quiet_app(data_dir, db_url=url)
    add_users(app, ("tom", "trainer", "east"), ("wendy", "trainer", "west"))
    with TestClient(app) as client:
        # the rep created by the batch has no password yet: every login fails, nothing raises
        token = client.get("/api/csrf").json()["csrf_token"]
        for password in ("", PASSWORD, NO_PASSWORD_HASH):
            refused = client.post("/api/login", json={"username": "alice", "password": password},
                                  headers={"X-CSRF-Token": token})
            assert refused.status_code == 401, refused.text
        api_login(client, "tom")
        [listed] = client.get("/api/recordings").json()
        assert (listed["id"], listed["rep"], listed["source"], listed["state"], listed["score"]) == (
            done.upload_id, "alice", "batch", "done", REPORT["score"])
        report = client.get(f"/api/recordings/{done.upload_id}/report").json()
        assert report["score"] == REPORT["score"] and report["file"] == audio.name
        audio_served = client.get(f"/recordings/{done.upload_id}/audio")
        assert audio_served.status_code == 200 and audio_served.content == audio.read_bytes()
        team = client.get("/api/team").json()
        [rep] = team["reps"]
        assert (rep["username"], rep["recordings"], rep["latest_score"]) == ("alice", 1, REPORT["score"])
        assert {d["key"] for d in rep["dimensions"]} == {d["key"] for d in REPORT["dimensions"]}
        assert team["findings"]  # from the stored report's feedback
        page = client.get(f"/recordings/{done.upload_id}/report")
        assert page.status_code == 200 and "<html" in page.text.lower()
    with TestClient(app) as client:
        api_login(client, "wendy")  # another team's trainer sees nothing of it
        assert client.get("/api/recordings").json() == []
        assert client.get(f"/api/recordings/{done.upload_id}").status_code == 404

    # a set password lets the rep in
    from vmgrade.web.accounts import set_password

    with app.state.sessions() as session:
        set_password(session, "alice", PASSWORD)
    with TestClient(app) as client:
        api_login(client, "alice")
        assert [r["id"] for r in client.get("/api/recordings").json()] == [done.upload_id]


@pytest.mark.parametrize(("extra", "message"), [
    (["--team", "east", "--rep", "alice", "--no-history"], "leave out --no-history"),
    (["--team", "east"], "--team needs each file's rep"),
    (["--storage", "local"], "--storage say where --team puts its files"),
    (["--data-dir", "d", "--rep", "alice"], "--data-dir say where --team"),
    (["--team", " ", "--rep", "alice"], "team ' '"),
    (["--team", "east", "--rep", "Al Smith"], "cannot be a web app username"),
])
def test_team_options_that_cannot_work_stop_the_batch_first(tmp_path, capsys, extra, message):
    from vmgrade.cli import main

    audio = audio_copy(tmp_path)
    out = tmp_path / "out"
    assert main(["batch", str(audio), "--out", str(out), "--db", f"sqlite:///{tmp_path / 'h.sqlite3'}",
                 "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert "error [batch_error]" in err and message in err, err
    assert not out.exists()  # refused before anything was written


def test_a_rep_of_another_team_stops_the_batch_before_grading(tmp_path):
    from vmgrade.batch import BatchOptions, run_batch

    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    with open_store(url) as store:
        TeamRecorder(store.engine, open_blobs("local", data_dir=tmp_path / "d", engine=store.engine),
                     "west").check_rep("alice")
    with pytest.raises(TeamStoreError, match="'alice' is in team 'west'"):
        run_batch([audio_copy(tmp_path)],
                  BatchOptions(out=tmp_path / "out", db_url=url, team="east", rep="alice",
                               data_dir=tmp_path / "d", progress=False),
                  echo=lambda _: None)
    assert not list((tmp_path / "out").glob("results/*.json"))


@pytest.mark.slow
def test_batch_with_team_shows_in_the_web_app_and_a_rerun_adds_nothing(tmp_path):
    from fastapi.testclient import TestClient
    from test_batch import run_cli
    from test_web_support import add_users, api_login, quiet_app

    calls = tmp_path / "calls"
    calls.mkdir()
    inputs = [shutil.copyfile(SAMPLES / name, calls / name) for name in ("before_practice.wav",
                                                                          "after_practice.wav")]
    originals = {p: p.read_bytes() for p in inputs}
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'history.sqlite3'}"
    out = tmp_path / "out"
    args = (str(calls), "--out", str(out), "--model", TEST_MODEL, "--workers", "1", "--threads", "2",
            "--db", url, "--team", "east", "--rep", "alice", "--data-dir", str(data_dir))
    rc, _, stderr = run_cli(*args)
    assert rc == 0, stderr
    assert "2 recording(s) in team east of the web app (2 new)" in stderr, stderr
    assert {p: p.read_bytes() for p in inputs} == originals  # the inputs stay where they were

    app = quiet_app(data_dir, db_url=url)
    add_users(app, ("tom", "trainer", "east"))
    with TestClient(app) as client:
        api_login(client, "tom")
        listed = client.get("/api/recordings").json()
        assert sorted(r["filename"] for r in listed) == ["after_practice.wav", "before_practice.wav"]
        assert {(r["rep"], r["source"], r["state"]) for r in listed} == {("alice", "batch", "done")}
        results = {Path(r["file"]).name: r for r in map(json.loads, (out / "results.jsonl").open())}
        for r in listed:
            report = client.get(f"/api/recordings/{r['id']}/report").json()
            assert report["score"] == r["score"] == results[r["filename"]]["score"]
            assert report["transcript"] == results[r["filename"]]["transcript"]
        team = client.get("/api/team").json()  # recorded now (no manifest time): in the default range
        assert [(rep["username"], rep["recordings"]) for rep in team["reps"]] == [("alice", 2)]
        ids = sorted(r["id"] for r in listed)

    with open_store(url) as store:  # the history has the rep too
        assert {r.rep_id for r in store.recordings()} == {"alice"}

    rc, _, stderr = run_cli(*args)  # a rerun grades nothing and adds nothing
    assert rc == 0 and "0 to grade" in stderr, stderr
    assert "2 recording(s) in team east of the web app (0 new)" in stderr, stderr
    with TestClient(app) as client:
        api_login(client, "tom")
        assert sorted(r["id"] for r in client.get("/api/recordings").json()) == ids

    # a manifest: its rep and time win; a file with neither rep_id nor --rep is graded but not added
    manifest = tmp_path / "context.csv"
    manifest.write_text("file,rep_id,recorded_at\n"
                        "calls/before_practice.wav,bob,2026-01-05T09:00:00Z\n"
                        "calls/after_practice.wav,,\n", encoding="utf-8")
    rc, _, stderr = run_cli(str(calls), "--out", str(tmp_path / "out2"), "--model", TEST_MODEL,
                            "--workers", "1", "--threads", "2", "--db", url, "--team", "east",
                            "--manifest", str(manifest), "--data-dir", str(data_dir))
    assert rc == 0, stderr
    warnings = [line for line in stderr.splitlines() if "not added to team east" in line]
    assert len(warnings) == 1 and "after_practice.wav" in warnings[0] and "no rep" in warnings[0], stderr
    with open_store(url) as store, Session(store.engine) as s:
        bob = s.scalars(select(Upload).join(Upload.user).where(User.username == "bob")).unique().one()
        assert bob.created_at == datetime(2026, 1, 5, 9, 0) and bob.job.state == "done"
        assert s.scalar(select(func.count(Upload.id))) == 3
