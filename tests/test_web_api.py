"""The web app's JSON API and pages through httpx (FastAPI's TestClient), with real grading."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_support import (  # noqa: E402
    PASSWORD,
    ROOT,
    add_users,
    api_login,
    api_upload,
    make_clip,
    wait_done,
    web_grader,
)

from vmgrade.web.app import create_app  # noqa: E402


def _app(data_dir: Path, **kwargs):
    kwargs.setdefault("grader", web_grader() if kwargs.get("start_worker", True) else None)
    return create_app(data_dir, secret_key="test-secret", **kwargs)


@pytest.fixture
def queued_app(tmp_path):
    """An app whose worker does not run: uploads stay queued (access and upload checks)."""
    app = _app(tmp_path / "data", start_worker=False)
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"), ("tom", "trainer", "east"),
              ("wes", "rep", "west"), ("tina", "trainer", "west"))
    return app


def test_migration_creates_exactly_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vmgrade.store import history
    from vmgrade.store import team as models  # noqa: F401  (registers the web tables on Base)

    store = history.open_store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), history.Base.metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert diffs == []  # the history's recordings and the team tables alike
    assert version == "0004_team_deploy"  # 0002_web, the session version (issue 17), leases and blobs

    from alembic import command
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    command.downgrade(history.migration_config(url), "0001_history")
    assert not [t for t in inspect(store.engine).get_table_names() if t.startswith("web_")]
    command.upgrade(history.migration_config(url), "head")
    assert {"web_users", "web_jobs"} <= set(inspect(store.engine).get_table_names())


def test_anonymous_pages_redirect_and_api_401(queued_app):
    with TestClient(queued_app) as client:
        for path in ("/", "/recordings", "/upload", "/team", "/recordings/1", "/recordings/1/report"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
        for path in ("/api/me", "/api/recordings", "/api/recordings/1", "/api/team",
                     "/api/compare?ids=1&ids=2"):
            assert client.get(path).status_code == 401, path
        assert client.get("/login").status_code == 200
        assert client.get("/api/openapi.json").json()["info"]["title"] == "vmgrade"
        docs = client.get("/api/docs")
        assert docs.status_code == 200
        # Swagger UI is served from the package, not a CDN: the docs work offline
        assets = re.findall(r'(?:src|href)="(/api/docs-assets/[^"]+)"', docs.text)
        assert len(assets) >= 2 and all(client.get(a).status_code == 200 for a in assets)


def test_login_needs_csrf_and_sets_a_safe_cookie(queued_app):
    with TestClient(queued_app) as client:
        # a form without the session's token is refused even with the right password
        response = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": "x"})
        assert response.status_code == 403
        assert client.post("/api/login", json={"username": "rita", "password": PASSWORD}).status_code == 403

        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token,
                                                "next": "//evil.example/"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/api/me").json() == {"username": "rita", "role": "rep", "team": "east"}

        # the token changes at login; a state-changing API call needs the new one
        new_token = client.get("/api/csrf").json()["csrf_token"]
        assert new_token != token
        assert client.post("/api/logout").status_code == 403
        assert client.post("/api/logout", headers={"X-CSRF-Token": new_token}).status_code == 204
        assert client.get("/api/me").status_code == 401


def test_failed_logins_lock_the_account_and_survive_a_restart(tmp_path):
    from vmgrade.web.accounts import MAX_FAILED_LOGINS

    data = tmp_path / "data"
    app = _app(data, start_worker=False)
    add_users(app, ("rita", "rep", "east"))
    with TestClient(app) as client:
        token = client.get("/api/csrf").json()["csrf_token"]
        for _ in range(MAX_FAILED_LOGINS):
            response = client.post("/api/login", json={"username": "rita", "password": "wrong"},
                                   headers={"X-CSRF-Token": token})
            assert response.status_code == 401
        response = client.post("/api/login", json={"username": "rita", "password": PASSWORD},
                               headers={"X-CSRF-Token": token})
        assert response.status_code == 429 and "Retry-After" in response.headers

    restarted = _app(data, start_worker=False)
    with TestClient(restarted) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 429
        assert "Too many failed logins" in response.text
        # another account is not affected
    with TestClient(restarted) as client:
        add_users(restarted, ("ravi", "rep", "east"))
        api_login(client, "ravi")


def test_reps_see_their_own_trainers_their_team(queued_app, tmp_path):
    clip = make_clip(tmp_path / "a.wav", seconds=2.0)
    ids = {}
    for rep in ("rita", "ravi", "wes"):
        with TestClient(queued_app) as client:
            token = api_login(client, rep)
            response = api_upload(client, token, clip)
            assert response.status_code == 202, response.text
            ids[rep] = response.json()["id"]
    assert len(set(ids.values())) == 3  # same bytes, different reps: three uploads, one stored file
    assert len(list((tmp_path / "data" / "uploads").rglob("*.wav"))) == 1

    with TestClient(queued_app) as client:
        api_login(client, "rita")
        assert [r["id"] for r in client.get("/api/recordings").json()] == [ids["rita"]]
        assert client.get(f"/api/recordings/{ids['rita']}").status_code == 200
        for other in (ids["ravi"], ids["wes"]):
            assert client.get(f"/api/recordings/{other}").status_code == 404
            assert client.get(f"/recordings/{other}").status_code == 404
            assert client.get(f"/recordings/{other}/audio").status_code == 404
            assert client.get(f"/api/recordings/{other}/report").status_code == 404
        assert client.get("/api/team").status_code == 403
        assert client.get("/team").status_code == 403
        assert client.get(f"/api/compare?ids={ids['rita']}&ids={ids['ravi']}").status_code == 404

    with TestClient(queued_app) as client:
        api_login(client, "tom")  # trainer, east
        assert sorted(r["rep"] for r in client.get("/api/recordings").json()) == ["ravi", "rita"]
        assert client.get(f"/api/recordings/{ids['ravi']}").status_code == 200
        assert client.get(f"/recordings/{ids['rita']}/audio").content == clip.read_bytes()
        assert client.get(f"/api/recordings/{ids['wes']}").status_code == 404
        assert client.get(f"/api/recordings/{ids['rita']}/report").status_code == 409  # not graded yet
        team = client.get("/api/team").json()
        assert team["team"] == "east" and sorted(r["username"] for r in team["reps"]) == ["ravi", "rita"]


def test_bad_uploads_are_refused_with_clear_messages(tmp_path):
    app = _app(tmp_path / "data", start_worker=False, max_upload_bytes=200_000, max_duration_s=4.0)
    add_users(app, ("rita", "rep", "east"))
    long_clip = make_clip(tmp_path / "long.wav", seconds=5.0)  # 5 s > 4 s limit, ~160 KB
    # 229 KB: under the limit plus form overhead, so the byte count while storing refuses it
    big = make_clip(tmp_path / "big.wav", seconds=3.0, pad_ms=2200, source="strong_wideband.flac")
    text = tmp_path / "notes.wav"
    text.write_text("this is not a recording\n" * 50)
    with TestClient(app) as client:
        token = api_login(client, "rita")

        response = api_upload(client, token, text)
        assert response.status_code == 415
        assert response.json()["detail"].startswith("notes.wav: not an audio file")

        response = api_upload(client, token, big, name="big.wav")
        assert response.status_code == 413
        assert response.json()["detail"] == "big.wav: file is over the 195 KB limit"

        response = api_upload(client, token, long_clip)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail.startswith("long.wav: recording is 5.0 s long") and "limit of 4 s" in detail
        assert str(tmp_path) not in detail  # no server paths leak into messages

        empty = tmp_path / "empty.m4a"
        empty.write_bytes(b"")
        assert api_upload(client, token, empty).status_code == 400

        # the extension is not trusted either way: WAV bytes named .mp3 are stored as WAV
        ok = api_upload(client, token, make_clip(tmp_path / "c.wav", seconds=2.0), name="call.mp3")
        assert ok.status_code == 202 and ok.json()["media_type"] == "audio/x-wav"
        assert not list((tmp_path / "data" / "uploads").rglob("*.mp3"))

        # the HTML form answers with the message on the page
        page = client.post("/upload", data={"csrf_token": token},
                           files={"file": ("notes.wav", text.read_bytes(), "audio/wav")})
        assert page.status_code == 415 and "notes.wav: not an audio file" in page.text
        # without JavaScript the form posts here and is redirected to the recording's page
        with open(tmp_path / "c.wav", "rb") as f:
            page = client.post("/upload", data={"csrf_token": token, "prospect_name": "Dana"},
                               files={"file": ("form.wav", f, "audio/wav")}, follow_redirects=False)
        assert page.status_code == 303 and re.fullmatch(r"/recordings/\d+", page.headers["location"])
        assert "prospect name: Dana" in client.get(page.headers["location"]).text
        assert client.post("/upload", data={"csrf_token": "forged"},
                           files={"file": ("c.wav", b"RIFF", "audio/wav")}).status_code == 403

        # a body over the limit is refused from its Content-Length, before it is stored
        response = client.post("/api/uploads", content=b"x" * 400_000, headers={
            "X-CSRF-Token": token, "Content-Type": "multipart/form-data; boundary=zz"})
        assert response.status_code == 413 and response.json()["code"] == "too_large"
        assert not list((tmp_path / "data" / "tmp").iterdir())


@pytest.mark.slow
def test_upload_is_graded_in_the_background_recorded_and_compared(tmp_path):
    app = _app(tmp_path / "data")
    add_users(app, ("rita", "rep", "east"), ("tom", "trainer", "east"), ("ravi", "rep", "east"))
    first = make_clip(tmp_path / "first.wav", seconds=4.0, source="before_practice.wav")
    second = make_clip(tmp_path / "second.wav", seconds=4.0, source="after_practice.wav")
    with TestClient(app) as client:
        token = api_login(client, "rita")
        response = api_upload(client, token, first, callback_number="415-555-0198", prospect_name="Dana")
        assert response.status_code == 202
        body = response.json()
        assert body["state"] in ("queued", "running") and body["context"]["prospect_name"] == "Dana"
        done = wait_done(client, body["id"])
        assert done["state"] == "done", done
        assert 0 <= done["score"] <= 100 and done["grade"] in "ABCDF"

        report = client.get(f"/api/recordings/{body['id']}/report").json()
        assert report["file"] == "first.wav" and report["context"]["callback_number"] == "415-555-0198"
        assert report["score"] == done["score"]
        html = tmp_path / "data" / "reports" / f"{body['id']}.html"
        assert not html.exists()  # the worker only grades: the page is drawn at its first view
        page = client.get(done["report_url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert html.exists() and client.get(done["report_url"]).text == page.text  # kept, served as kept
        page = client.get(f"/recordings/{body['id']}")
        assert "Open the full report" in page.text

        # dedup: the same bytes and context again are the same recording, graded once
        again = api_upload(client, token, first, callback_number="415-555-0198", prospect_name="Dana")
        assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == body["id"]

        second_id = api_upload(client, token, second).json()["id"]
        assert wait_done(client, second_id)["state"] == "done"
        rows = app.state.store.recordings(rep_id="rita")
        hashes = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
        assert sorted(r.content_hash for r in rows) == sorted(hashes)
        assert {r.content_hash: r.score for r in rows}[hashes[0]] == done["score"]
        assert "Score over time" in client.get("/recordings").text

    with TestClient(app) as client:  # another rep hands in byte-identical audio
        token = api_login(client, "ravi")
        copy = api_upload(client, token, first, callback_number="415-555-0198", prospect_name="Dana").json()
        assert copy["id"] != body["id"] and not copy["duplicate"]
        assert wait_done(client, copy["id"])["state"] == "done"
    # each upload is its own recording, the uploader's: rita keeps hers, ravi has his own (issue 27)
    assert len(app.state.store.recordings(rep_id="rita")) == 2
    (ravis,) = app.state.store.recordings(rep_id="ravi")
    assert ravis.content_hash == hashes[0] and ravis.source_key == f"upload:{copy['id']}"

    with TestClient(app) as client:
        api_login(client, "tom")
        team = client.get("/api/team").json()
        ravi, rita = team["reps"]
        assert ravi["recordings"] == 1 and rita["recordings"] == 2
        assert len(rita["scores"]) == 2 and rita["change"] is not None
        assert team["common_findings"] and all(n >= 1 for _, n in team["common_findings"])
        assert "Most common findings" in client.get("/team").text
        comparison = client.get(f"/api/compare?ids={second_id}&ids={body['id']}")
        assert comparison.status_code == 200 and comparison.json()
        page = client.get(f"/compare?ids={body['id']}&ids={second_id}")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get(f"/api/compare?ids={body['id']}").status_code == 400


@pytest.mark.slow
def test_restart_requeues_interrupted_jobs_and_resumes_queued(tmp_path):
    from vmgrade.store.team import Job, utcnow

    data = tmp_path / "data"
    app = _app(data, start_worker=False)
    add_users(app, ("rita", "rep", "east"))
    with TestClient(app) as client:
        token = api_login(client, "rita")
        clips = [make_clip(tmp_path / f"{i}.wav", seconds=2.5, pad_ms=10 * i) for i in range(2)]
        ids = [api_upload(client, token, clip).json()["id"] for clip in clips]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a process id that has ended
    with app.state.sessions() as s:  # a server that died mid-grade left this one 'running'
        job = s.query(Job).filter(Job.upload_id == ids[0]).one()
        job.state, job.worker, job.attempts = "running", f"{socket.gethostname()}:{dead}:0", 1
        job.started_at = job.heartbeat_at = utcnow()  # its lease has not expired: the dead pid tells
        s.commit()

    restarted = _app(data)
    with TestClient(restarted) as client:
        api_login(client, "rita")
        states = [wait_done(client, i)["state"] for i in ids]
    assert states == ["done"] * 2
    with restarted.state.sessions() as s:
        attempts = {j.upload_id: j.attempts for j in s.query(Job)}
    assert attempts == {ids[0]: 2, ids[1]: 1}  # the interrupted one ran again, the queued one once


def test_users_cli_and_first_run_hint(tmp_path):
    from vmgrade.cli import main

    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    from test_web_support import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "vmgrade", "serve", "--port", str(port), "--data-dir", str(data)],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "serving on" in line or not line:
                break
        text = "".join(lines)
        assert "no accounts yet" in text and "--role trainer" in text, text
    finally:
        server.terminate()
        server.wait(30)

    import io

    stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("a long password\n")
        assert main(["users", "add", "--username", "tom", "--role", "trainer", "--team", "east",
                     "--password-stdin", "--data-dir", str(data)]) == 0
        sys.stdin = io.StringIO("short\n")
        assert main(["users", "add", "--username", "rita", "--role", "rep", "--team", "east",
                     "--password-stdin", "--data-dir", str(data)]) == 2
    finally:
        sys.stdin = stdin
    app = _app(data, start_worker=False)
    with TestClient(app) as client:
        assert api_login(client, "tom", "a long password")


@pytest.mark.slow
def test_lockout_expires_and_old_failures_are_forgotten(queued_app):
    from datetime import timedelta

    from vmgrade.store.team import utcnow
    from vmgrade.web.accounts import FAILED_LOGIN_WINDOW, LOCKOUT, MAX_FAILED_LOGINS, authenticate

    t0 = utcnow()
    with queued_app.state.sessions() as s:
        later = t0 + FAILED_LOGIN_WINDOW * 1.1
        for when in [t0] * (MAX_FAILED_LOGINS - 1) + [later] * 2:  # the window restarts the count
            assert authenticate(s, "rita", "nope", "10.0.0.1", now=when).user is None
        assert authenticate(s, "rita", PASSWORD, "10.0.0.1", now=later).user is not None

        for _ in range(MAX_FAILED_LOGINS):
            authenticate(s, "RITA", "nope", "10.0.0.2", now=later)  # usernames are case-insensitive
        locked = authenticate(s, "rita", PASSWORD, "10.0.0.2", now=later + timedelta(seconds=1))
        assert locked.user is None and 0 < locked.locked_for_s <= LOCKOUT.total_seconds()
        assert authenticate(s, "rita", PASSWORD, "10.0.0.3", now=later).user is not None  # other address
        assert authenticate(s, "rita", PASSWORD, "10.0.0.2", now=later + LOCKOUT * 1.01).user is not None
