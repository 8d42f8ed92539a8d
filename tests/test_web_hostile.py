"""The web app under hostile or careless use (issue 17): bounded bodies, sessions that end,
login limits that hold under parallel guesses, one server per data dir, and the small leaks.

No Whisper model: the worker does not run (jobs stay queued), so these stay in the fast lane.
"""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_support import (  # noqa: E402
    PASSWORD,
    add_users,
    api_login,
    api_upload,
    make_clip,
    set_job,
    three_users_app,
)
from test_web_support import quiet_app as _app  # noqa: E402

HUGE_ID = "99999999999999999999"


@pytest.fixture
def app(tmp_path):
    return three_users_app(tmp_path / "data")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- 2: request bodies

def test_non_upload_bodies_are_capped_at_64_kb(app):
    from vmgrade.web.middleware import MAX_BODY_BYTES

    with TestClient(app) as client:
        token = client.get("/api/csrf").json()["csrf_token"]
        headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
        big = json.dumps({"username": "rita", "password": "x" * (2 * MAX_BODY_BYTES)}).encode()
        response = client.post("/api/login", content=big, headers=headers)
        assert response.status_code == 413 and response.json()["code"] == "too_large"

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(8):
                yield b" " * (MAX_BODY_BYTES // 4)

        response = client.post("/api/login", content=chunks(), headers=headers)
        assert response.status_code == 413 and response.json()["code"] == "too_large"

        # a multipart login is a form like any other: capped, answered with a page
        response = client.post("/login", data={"username": "rita", "csrf_token": token},
                               files={"password": ("p.bin", b"x" * (2 * MAX_BODY_BYTES))})
        assert response.status_code == 413 and "over the 64 KB limit" in response.text

        api_login(client, "rita")  # ordinary bodies still pass


def test_an_oversized_body_is_refused_without_reading_it(app):
    """The middleware answers from Content-Length before it receives a byte of the body."""
    from vmgrade.web.middleware import BodySizeLimit

    reached, received, sent = [], [], []

    async def inner(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message):
        sent.append(message)

    limit = BodySizeLimit(inner, max_upload_body_bytes=10**6, max_upload_bytes=10**6)
    scope = {"type": "http", "method": "POST", "path": "/api/login",
             "headers": [(b"content-length", b"300000000")]}
    asyncio.run(limit(scope, receive, send))
    assert not reached and not received
    assert sent[0]["status"] == 413


def test_a_chunked_upload_over_the_limit_is_413_not_400(tmp_path):
    app = _app(tmp_path / "data", max_upload_bytes=100_000)
    add_users(app, ("rita", "rep", "east"))
    boundary = "zz"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()

    def body():
        yield head
        for _ in range(40):
            yield b"\0" * 16384
        yield f"\r\n--{boundary}--\r\n".encode()

    with TestClient(app) as client:
        token = api_login(client, "rita")
        response = client.post("/api/uploads", content=body(), headers={
            "X-CSRF-Token": token, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "too_large"


# ---------------------------------------------------------------- 4: upload checks

def test_concurrent_upload_checks_take_turns(tmp_path, monkeypatch):
    """N uploads at once decode at most VALIDATION_SLOTS files at a time, not N."""
    from vmgrade.web import storage

    data = tmp_path / "data"
    storage.ensure_layout(data)
    clips = [make_clip(tmp_path / f"c{i}.wav", seconds=1.0, pad_ms=i) for i in range(6)]
    active, peak, lock = [0], [0], threading.Lock()
    real_load = storage.load

    def counting_load(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.2)
            return real_load(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(storage, "load", counting_load)
    results, errors = [], []

    def upload(clip):
        try:
            with open(clip, "rb") as f:
                results.append(storage.receive(f, data, clip.name))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(c,)) for c in clips]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == len(clips)
    assert peak[0] <= storage.VALIDATION_SLOTS


# ---------------------------------------------------------------- 6: sessions end

def test_logout_ends_a_copied_session(app):
    with TestClient(app) as client, TestClient(app) as thief:
        token = api_login(client, "rita")
        thief.cookies.set("vmgrade_session", client.cookies.get("vmgrade_session"))
        assert thief.get("/api/me").status_code == 200
        assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 204
        assert thief.get("/api/me").status_code == 401
        assert thief.get("/recordings", follow_redirects=False).status_code == 303
        api_login(client, "rita")  # a new login works
        assert client.get("/api/me").status_code == 200


def test_users_cli_disable_enable_and_set_password_end_sessions(app, capsys, monkeypatch):
    import io

    from vmgrade.cli import main

    data = str(app.state.settings.data_dir)
    with TestClient(app) as client:
        api_login(client, "rita")
        assert main(["users", "disable", "--username", "rita", "--data-dir", data]) == 0
        assert "rita is disabled" in capsys.readouterr().out
        assert client.get("/api/me").status_code == 401
        main(["users", "list", "--data-dir", data])
        assert "(disabled)" in next(line for line in capsys.readouterr().out.splitlines() if "rita" in line)
        token = client.get("/api/csrf").json()["csrf_token"]
        refused = client.post("/api/login", json={"username": "rita", "password": PASSWORD},
                              headers={"X-CSRF-Token": token})
        assert refused.status_code == 401
        assert main(["users", "enable", "--username", "rita", "--data-dir", data]) == 0
        api_login(client, "rita")

        monkeypatch.setattr("sys.stdin", io.StringIO("a new long password\n"))
        assert main(["users", "set-password", "--username", "rita", "--password-stdin",
                     "--data-dir", data]) == 0
        assert client.get("/api/me").status_code == 401
        api_login(client, "rita", "a new long password")
        monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
        assert main(["users", "set-password", "--username", "rita", "--password-stdin",
                     "--data-dir", data]) == 2
        assert main(["users", "disable", "--username", "nobody", "--data-dir", data]) == 2
        assert "no user 'nobody'" in capsys.readouterr().err


# ---------------------------------------------------------------- 7: login limits

def test_parallel_wrong_passwords_get_at_most_the_limit_of_checks(app, monkeypatch):
    from vmgrade.store.team import LoginFailure
    from vmgrade.web import accounts

    checks, lock = [0], threading.Lock()
    real_verify = accounts._verify

    def slow_verify(password_hash, password):
        with lock:
            checks[0] += 1
        time.sleep(0.05)  # widens the window a read-then-write counter loses updates in
        return real_verify(password_hash, password)

    monkeypatch.setattr(accounts, "_verify", slow_verify)
    barrier = threading.Barrier(20)
    results = []

    def guess():
        with app.state.sessions() as s:
            barrier.wait()
            results.append(accounts.authenticate(s, "rita", "wrong guess", "10.0.0.9"))

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 20 and all(r.user is None for r in results)
    assert checks[0] <= accounts.MAX_FAILED_LOGINS
    # the rest were refused unchecked: locked, or (more than two argon2 slots and eight waiting) busy
    assert sum(r.locked_for_s > 0 or r.busy for r in results) >= 20 - accounts.MAX_FAILED_LOGINS
    with app.state.sessions() as s:
        row = s.query(LoginFailure).filter_by(username="rita", ip="10.0.0.9").one()
        assert row.failures == accounts.MAX_FAILED_LOGINS and row.locked_until is not None


def test_guesses_from_many_addresses_guard_the_account_but_do_not_lock_out_its_owner(app):
    """Past the per-account limit, addresses that failed are refused even the right password, and
    any further address gets one guess; the owner, at an address of their own, still logs in."""
    from vmgrade.web import accounts

    with app.state.sessions() as s:
        for i in range(accounts.MAX_FAILED_LOGINS_PER_ACCOUNT):
            assert accounts.authenticate(s, "rita", "wrong", f"10.1.0.{i}").locked_for_s == 0
        locked = accounts.authenticate(s, "rita", PASSWORD, "10.1.0.3")  # an attacker's address
        assert locked.user is None and locked.locked_for_s > 0
        assert accounts.authenticate(s, "rita", "wrong", "10.3.0.1").locked_for_s == 0  # one guess...
        assert accounts.authenticate(s, "rita", PASSWORD, "10.3.0.1").locked_for_s > 0  # ...and no more
        assert accounts.authenticate(s, "rita", PASSWORD, "192.168.1.20").user is not None  # the owner
        assert accounts.authenticate(s, "ravi", PASSWORD, "10.1.0.3").user is not None  # others unaffected
        accounts.set_password(s, "rita", "another long passphrase")  # an admin reset lifts the lock
        assert accounts.authenticate(s, "rita", "another long passphrase", "10.1.0.3").user is not None


def test_serve_trusts_no_proxy_unless_told(tmp_path, monkeypatch):
    import uvicorn

    from vmgrade.cli import main

    calls = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(self.config))
    data = tmp_path / "data"
    assert main(["serve", "--data-dir", str(data)]) == 0
    assert calls[-1].proxy_headers is False
    assert main(["serve", "--data-dir", str(data), "--forwarded-allow-ips", "10.0.0.1"]) == 0
    assert calls[-1].proxy_headers is True and "10.0.0.1" in str(calls[-1].forwarded_allow_ips)


# ---------------------------------------------------------------- 9: retry after a failure

def test_reupload_of_a_failed_recording_queues_it_again(app, tmp_path):
    clip = make_clip(tmp_path / "a.wav", seconds=1.5)
    with TestClient(app) as client:
        token = api_login(client, "rita")
        first = api_upload(client, token, clip).json()
        set_job(app, first["id"], state="failed", attempts=3, error_code="worker_crashed",
                 error_message="grading was interrupted 3 times; upload it again")
        again = api_upload(client, token, clip)
        assert again.status_code == 202, again.text
        body = again.json()
        assert body["id"] == first["id"] and not body["duplicate"]
        assert body["state"] == "queued" and body["error_code"] is None
        retried = api_upload(client, token, clip)  # now queued: a plain duplicate
        assert retried.status_code == 200 and retried.json()["duplicate"]


# ---------------------------------------------------------------- 11: one server per data dir

def test_a_second_server_on_the_same_data_dir_refuses(tmp_path, monkeypatch, capsys):
    import uvicorn

    from vmgrade.cli import main
    from vmgrade.web.storage import DataDirInUse

    data = tmp_path / "data"
    first = _app(data)
    with TestClient(first):
        second = _app(data)
        with pytest.raises(DataDirInUse), TestClient(second):
            pass
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("a second server started"))
        assert main(["serve", "--data-dir", str(data)]) == 2
        assert "[data_dir_in_use]" in capsys.readouterr().err
    with TestClient(_app(data)):  # the first one stopped: the lock is free
        pass


# ---------------------------------------------------------------- low: the small leaks

def test_huge_ids_are_not_found(app):
    with TestClient(app) as client:
        api_login(client, "rita")
        for path in (f"/api/recordings/{HUGE_ID}", f"/recordings/{HUGE_ID}", f"/recordings/{HUGE_ID}/audio",
                     f"/api/recordings/{HUGE_ID}/report", f"/api/compare?ids={HUGE_ID}&ids=1",
                     "/api/recordings/-1"):
            assert client.get(path).status_code == 404, path


def test_missing_files_behind_a_recording_are_404_or_rendered_without_audio(app, tmp_path):
    data = app.state.settings.data_dir
    clip = make_clip(tmp_path / "a.wav", seconds=1.5)
    with TestClient(app) as client:
        token = api_login(client, "rita")
        rid = api_upload(client, token, clip).json()["id"]
        report = {"file": "a.wav", "error": {"code": "silent", "message": "a.wav: recording is silent"}}
        (data / "reports" / f"{rid}.json").write_text(json.dumps(report))
        set_job(app, rid, state="done", report_path=f"reports/{rid}.json", score=0.0, letter="F")
        for stored in (data / "uploads").rglob("*.wav"):
            stored.unlink()

        assert client.get(f"/recordings/{rid}/audio").status_code == 404
        page = client.get(f"/recordings/{rid}/report")
        assert page.status_code == 200 and "<audio" not in page.text
        assert client.get(f"/recordings/{rid}").status_code == 200

        (data / "reports" / f"{rid}.json").unlink()
        (data / "reports" / f"{rid}.html").unlink()
        assert client.get(f"/api/recordings/{rid}/report").status_code == 404
        assert client.get(f"/recordings/{rid}/report").status_code == 404


def test_tmp_leftovers_are_removed_at_start(tmp_path):
    data = tmp_path / "data"
    app = _app(data)
    (data / "tmp" / "upload-abc123").write_bytes(b"half an upload")
    (data / "reports" / ".7.json.x1.tmp").write_text("{")
    with TestClient(app):
        assert not list((data / "tmp").iterdir())
        assert not list((data / "reports").glob(".*.tmp"))


def test_data_dir_files_are_private(app, tmp_path):
    from vmgrade.store.blobs import LocalBlobs

    data = app.state.settings.data_dir
    with TestClient(app) as client:
        token = api_login(client, "rita")
        assert api_upload(client, token, make_clip(tmp_path / "a.wav", seconds=1.5)).status_code == 202
    assert _mode(data) == 0o700
    for sub in ("uploads", "reports", "tmp"):
        assert _mode(data / sub) == 0o700, sub
    assert _mode(data / "history.sqlite3") == 0o600
    stored = next((data / "uploads").rglob("*.wav"))
    assert _mode(stored) == 0o600 and _mode(stored.parent) == 0o700
    report = data / "reports" / "1.json"
    LocalBlobs(data).write("reports/1.json", b'{"score": 1}')  # as the worker writes reports
    assert _mode(report) == 0o600


def test_pages_for_logged_in_users_are_not_cached(app, tmp_path):
    with TestClient(app) as client:
        token = api_login(client, "rita")
        rid = api_upload(client, token, make_clip(tmp_path / "a.wav", seconds=1.5)).json()["id"]
        for path in ("/recordings", "/upload", f"/recordings/{rid}", f"/recordings/{rid}/audio",
                     "/api/me", f"/api/recordings/{rid}"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers.get("cache-control") == "no-store", path
        assert "no-store" not in client.get("/static/style.css").headers.get("cache-control", "")


def test_one_rep_cannot_queue_ahead_of_everyone(tmp_path):
    from vmgrade.store.team import Job
    from vmgrade.web.jobs import claim_next

    app = _app(tmp_path / "data", max_queued_per_user=2)
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"))
    clips = [make_clip(tmp_path / f"c{i}.wav", seconds=1.0, pad_ms=i) for i in range(4)]
    with TestClient(app) as client:
        token = api_login(client, "rita")
        rita = [api_upload(client, token, c) for c in clips[:3]]
        assert [r.status_code for r in rita[:2]] == [202, 202]
        assert rita[2].status_code == 429 and rita[2].json()["code"] == "queue_full"
    with TestClient(app) as client:
        token = api_login(client, "ravi")
        ravi = api_upload(client, token, clips[3]).json()["id"]

    rita_ids = [r.json()["id"] for r in rita[:2]]
    with app.state.sessions() as s:
        job_of = {j.id: j.upload_id for j in s.query(Job)}
    order = [job_of[claim_next(app.state.sessions, "w")] for _ in range(3)]
    assert order == [rita_ids[0], ravi, rita_ids[1]]  # reps take turns, whatever the upload order
