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
from test_web_support import PASSWORD, add_users, api_login, api_upload, make_clip  # noqa: E402

from vmgrade.web.app import create_app  # noqa: E402

HUGE_ID = "99999999999999999999"


def _app(data_dir: Path, **kwargs):
    return create_app(data_dir, secret_key="test-secret", start_worker=False, **kwargs)


@pytest.fixture
def app(tmp_path):
    app = _app(tmp_path / "data")
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"), ("tom", "trainer", "east"))
    return app


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
    from vmgrade.web import accounts
    from vmgrade.web.tables import LoginFailure

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
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    data = tmp_path / "data"
    assert main(["serve", "--data-dir", str(data)]) == 0
    assert calls[-1]["proxy_headers"] is False
    assert main(["serve", "--data-dir", str(data), "--forwarded-allow-ips", "10.0.0.1"]) == 0
    assert calls[-1]["proxy_headers"] is True and calls[-1]["forwarded_allow_ips"] == "10.0.0.1"


# ---------------------------------------------------------------- 9: retry after a failure

def _set_job(app, upload_id: int, **values) -> None:
    from vmgrade.web.tables import Job

    with app.state.sessions() as s:
        job = s.query(Job).filter(Job.upload_id == upload_id).one()
        for name, value in values.items():
            setattr(job, name, value)
        s.commit()


def test_reupload_of_a_failed_recording_queues_it_again(app, tmp_path):
    clip = make_clip(tmp_path / "a.wav", seconds=1.5)
    with TestClient(app) as client:
        token = api_login(client, "rita")
        first = api_upload(client, token, clip).json()
        _set_job(app, first["id"], state="failed", attempts=3, error_code="worker_crashed",
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
        _set_job(app, rid, state="done", report_path=f"reports/{rid}.json", score=0.0, letter="F")
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
    from vmgrade.web.storage import write_json_atomic

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
    write_json_atomic(report, {"score": 1})
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
    from vmgrade.web.jobs import claim_next
    from vmgrade.web.tables import Job

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


# ---------------------------------------------------------------- issue 29: hostile input, round 3

class _Report:
    def __init__(self, data: dict):
        self.data = data

    def to_dict(self) -> dict:
        return dict(self.data)


class _StubGrader:
    """Stands in for the Whisper grader: the worker is under test here, not the grading.

    The first ``block_first`` calls wait on ``release`` (a grading that runs too long).
    """

    def __init__(self, block_first: int = 0):
        self.release, self.block_first, self.calls = threading.Event(), block_first, 0

    def grade(self, path, context=None):
        self.calls += 1
        if self.calls <= self.block_first:
            self.release.wait(120)
        return _Report({"file": str(path), "score": 71.0, "grade": "C", "feedback": [{"code": "pace"}],
                        "context": {}, "model": {"name": "stub", "engine": "stub"}})


def _wait_state(app, upload_id: int, states: tuple[str, ...], timeout_s: float = 60.0):
    from vmgrade.web.tables import Job

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with app.state.sessions() as s:
            job = s.query(Job).filter(Job.upload_id == upload_id).one()
            if job.state in states:
                return job
        time.sleep(0.05)
    raise AssertionError(f"upload {upload_id} not {states} within {timeout_s} s (still {job.state})")


def _cookie_headers(client, token: str) -> list[tuple[bytes, bytes]]:
    cookie = f"vmgrade_session={client.cookies.get('vmgrade_session')}"
    return [(b"cookie", cookie.encode()), (b"x-csrf-token", token.encode())]


def _asgi(app, method: str, path: str, headers: list[tuple[bytes, bytes]], receive, timeout_s: float = 30.0):
    """Call the real app as uvicorn would, with our own ``receive``; the messages it sent."""
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80), "state": {}}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout_s))
    return sent


def _status(sent) -> int:
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def _json(sent) -> dict:
    return json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def _multipart_head(boundary: str = "zz") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()


def test_login_flood_with_made_up_usernames_is_bounded(app, monkeypatch):
    """Item 1: random usernames cost at most ARGON2_SLOTS argon2 checks at once, no database rows,
    and a bounded number of in-memory counts; a flood past the waiting line is 429 too_many_logins."""
    from vmgrade.web import accounts
    from vmgrade.web.tables import LoginFailure

    active, peak, lock = [0], [0], threading.Lock()
    real_verify = accounts._verify

    def counting_verify(password_hash, password):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.02)
            return real_verify(password_hash, password)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(accounts, "_verify", counting_verify)
    counters = accounts.LoginCounters(max_keys=25)
    results = []

    def guess(i):
        with app.state.sessions() as s:
            results.append(accounts.authenticate(s, f"nobody{i}", "whatever", f"10.9.{i % 7}.1",
                                                 counters=counters))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 60 and all(r.user is None for r in results)
    assert 1 <= peak[0] <= accounts.ARGON2_SLOTS
    assert len(counters.unknown) <= 25 and len(counters.addresses) <= 25
    with app.state.sessions() as s:
        assert s.query(LoginFailure).count() == 0  # unknown usernames leave no rows

    # every slot taken: a login is answered 429 too_many_logins, counting nothing
    monkeypatch.setattr(accounts, "ARGON2_WAIT_S", 0.2)
    slots = accounts._argon2_slots
    assert slots.acquire(1) and slots.acquire(1)
    try:
        with TestClient(app) as client:
            token = client.get("/api/csrf").json()["csrf_token"]
            busy = client.post("/api/login", json={"username": "rita", "password": PASSWORD},
                               headers={"X-CSRF-Token": token})
            assert busy.status_code == 429 and busy.json()["code"] == "too_many_logins"
            assert "Retry-After" in busy.headers
    finally:
        slots.release()
        slots.release()
    with TestClient(app) as client:
        api_login(client, "rita")  # the real user gets in


def test_a_locked_pair_does_not_lock_the_owner_out_and_rows_are_pruned(app):
    """Item 2: five wrong passwords from an attacker's address lock that address only; counts whose
    window is over are deleted, so the table does not grow with every address ever seen."""
    from datetime import timedelta

    from vmgrade.web import accounts
    from vmgrade.web.tables import LoginFailure, utcnow

    t0 = utcnow()
    with app.state.sessions() as s:
        for _ in range(accounts.MAX_FAILED_LOGINS):
            accounts.authenticate(s, "rita", "wrong", "203.0.113.9", now=t0)
        assert accounts.authenticate(s, "rita", PASSWORD, "203.0.113.9", now=t0).locked_for_s > 0
        assert accounts.authenticate(s, "rita", PASSWORD, "192.168.1.20", now=t0).user is not None
        for i in range(30):
            accounts.authenticate(s, "ravi", "wrong", f"198.51.100.{i}", now=t0)
        assert s.query(LoginFailure).count() > 30
        later = t0 + accounts.LOCKOUT + accounts.FAILED_LOGIN_WINDOW + timedelta(seconds=1)
        assert accounts.authenticate(s, "rita", PASSWORD, "203.0.113.9", now=later).user is not None
        assert s.query(LoginFailure).count() <= 2  # only the last attempt's counts are left


def test_anonymous_uploads_are_refused_before_a_byte_of_the_body(app):
    """Items 3 and 4: a 2 GB anonymous upload is answered 401 (API) or sent to /login (page)
    without its body being read, spooled or drained."""
    received = []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": True}

    headers = [(b"content-length", b"2000000000"), (b"content-type", b"multipart/form-data; boundary=zz")]
    sent = _asgi(app, "POST", "/api/uploads", headers, receive)
    assert _status(sent) == 401 and _json(sent)["code"] == "not_logged_in"
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert (b"connection", b"close") in start["headers"]
    sent = _asgi(app, "POST", "/upload", headers, receive)
    assert _status(sent) == 303
    assert not received
    assert not list((app.state.settings.data_dir / "tmp").iterdir())


def test_a_stalled_upload_body_times_out_with_408_and_frees_its_slot(tmp_path):
    """Item 3: a logged-in upload whose body stops arriving is answered 408 body_timeout; its place
    among the user's uploads in flight is given back."""
    from vmgrade.web.limits import Limits

    app = _app(tmp_path / "data", limits=Limits(body_idle_timeout_s=0.3))
    add_users(app, ("rita", "rep", "east"))
    with TestClient(app) as client:
        token = api_login(client, "rita")
        headers = [*_cookie_headers(client, token), (b"content-type", b"multipart/form-data; boundary=zz")]
    calls = []

    async def stalling():
        calls.append(1)
        if len(calls) == 1:
            return {"type": "http.request", "body": _multipart_head() + b"\0" * 200_000, "more_body": True}
        await asyncio.sleep(3600)  # the client went quiet

    started = time.monotonic()
    for _ in range(3):  # more than the two in flight a user may have: each one ended and let go
        calls.clear()
        sent = _asgi(app, "POST", "/api/uploads", headers, stalling)
        assert _status(sent) == 408 and _json(sent)["code"] == "body_timeout"
    assert time.monotonic() - started < 30  # generous: three waits of 0.3 s
    assert not list((app.state.settings.data_dir / "tmp").iterdir())


def test_draining_an_oversized_upload_is_bounded_in_time(monkeypatch):
    """Item 4: a logged-in user's oversized upload is drained for at most DRAIN_TIMEOUT_S."""
    from vmgrade.web import middleware

    monkeypatch.setattr(middleware, "DRAIN_TIMEOUT_S", 0.3)
    received, sent = [0], []

    async def inner(scope, receive, send):
        raise AssertionError("an oversized body reached the route")

    async def trickle():
        received[0] += 1
        await asyncio.sleep(0.01)
        return {"type": "http.request", "body": b"\0" * 10, "more_body": True}

    async def send(message):
        sent.append(message)

    limit = middleware.BodySizeLimit(inner, max_upload_body_bytes=10**6, max_upload_bytes=10**6)
    scope = {"type": "http", "method": "POST", "path": "/api/uploads",
             "headers": [(b"content-length", b"2000000000")]}
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(limit(scope, trickle, send), 30))
    assert time.monotonic() - started < 10
    assert sent[0]["status"] == 413 and 0 < received[0] < 10_000


def test_one_users_upload_flood_neither_starves_nor_fails_another_user(tmp_path):
    """Item 5: 16 slow concurrent uploads of one rep: two are taken in, eight wait, the rest are 429
    too_many_requests; meanwhile another user's /api/me answers quickly and never 500."""
    import httpx
    from test_web_support import LiveServer

    app = _app(tmp_path / "data")
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"))
    clip = make_clip(tmp_path / "a.wav", seconds=1.0).read_bytes()
    boundary = "zz"

    async def body():
        yield _multipart_head(boundary)
        await asyncio.sleep(1.5)  # a slow sender: every upload is in flight at once
        yield clip + f"\r\n--{boundary}--\r\n".encode()

    async def login(client, user):
        token = (await client.get("/api/csrf")).json()["csrf_token"]
        response = await client.post("/api/login", json={"username": user, "password": PASSWORD},
                                     headers={"X-CSRF-Token": token})
        assert response.status_code == 200, response.text
        return response.json()["csrf_token"]

    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as rita, \
                httpx.AsyncClient(base_url=url, timeout=60) as ravi:
            rita_token, _ = await login(rita, "rita"), await login(ravi, "ravi")
            headers = {"X-CSRF-Token": rita_token,
                       "Content-Type": f"multipart/form-data; boundary={boundary}"}
            uploads = [asyncio.create_task(rita.post("/api/uploads", content=body(), headers=headers))
                       for _ in range(16)]
            latencies, statuses = [], []
            while not all(u.done() for u in uploads):
                started = time.monotonic()
                response = await ravi.get("/api/me")
                latencies.append(time.monotonic() - started)
                statuses.append(response.status_code)
                await asyncio.sleep(0.1)
            return [await u for u in uploads], latencies, statuses

    with LiveServer(app) as server:
        answers, latencies, statuses = asyncio.run(scenario(server.url))
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 202, 429}, codes
    assert sum(c in (200, 202) for c in codes) >= 1
    refused = [a.json()["code"] for a in answers if a.status_code == 429]
    limits = app.state.settings.limits
    assert len(refused) >= 16 - limits.uploads_in_flight_per_user - limits.uploads_waiting_per_user
    assert set(refused) == {"too_many_requests"}
    assert statuses and set(statuses) == {200}
    assert max(latencies) <= 2.0, latencies


def test_no_database_slot_answers_503_busy_quickly(tmp_path):
    """Item 5: with every database slot held, a request is 503 busy after db_wait_s, not a 500 after 30 s."""
    from vmgrade.web.limits import Limits

    app = _app(tmp_path / "data", limits=Limits(db_slots=2, db_wait_s=0.2))
    add_users(app, ("rita", "rep", "east"))
    with TestClient(app) as client:
        api_login(client, "rita")
        slots = app.state.db_slots
        assert slots.acquire(1) and slots.acquire(1)
        try:
            started = time.monotonic()
            response = client.get("/api/me")
            assert response.status_code == 503 and response.json()["code"] == "busy"
            assert "Retry-After" in response.headers and time.monotonic() - started < 10
            assert client.get("/recordings").status_code == 503
        finally:
            slots.release()
            slots.release()
        assert client.get("/api/me").status_code == 200


def test_the_worker_survives_database_errors(tmp_path, monkeypatch):
    """Item 6: commits that fail (a locked database) are retried; a result that cannot be written
    fails its job with db_error; the thread lives on and grades the next uploads."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    grader = _StubGrader()
    app = create_app(tmp_path / "data", secret_key="test-secret", grader=grader)
    add_users(app, ("rita", "rep", "east"))
    worker = app.state.worker
    worker.db_backoff_s = 0.01
    locked = OperationalError("UPDATE web_jobs", {}, sqlite3.OperationalError("database is locked"))
    failing_commits, failing_records = [0], [0]
    real_sessions, real_record = worker.sessions, worker.store.record

    def flaky_sessions():  # the fault injected into the database layer, not the worker
        session = real_sessions()
        commit = session.commit

        def maybe_fail():
            if failing_commits[0] > 0:
                failing_commits[0] -= 1
                raise locked
            commit()

        session.commit = maybe_fail
        return session

    def flaky_record(*args, **kwargs):
        if failing_records[0] > 0:
            failing_records[0] -= 1
            raise locked
        return real_record(*args, **kwargs)

    monkeypatch.setattr(worker, "sessions", flaky_sessions)
    monkeypatch.setattr(worker.store, "record", flaky_record)
    clips = [make_clip(tmp_path / f"c{i}.wav", seconds=1.0, pad_ms=i) for i in range(3)]
    with TestClient(app) as client:
        token = api_login(client, "rita")
        failing_records[0] = worker.db_retries  # every try of the first job's history row fails
        first = api_upload(client, token, clips[0]).json()["id"]
        job = _wait_state(app, first, ("done", "failed"))
        assert job.state == "failed" and job.error_code == "db_error"
        failing_commits[0] = 3  # a lock that lasts three commits
        second = api_upload(client, token, clips[1]).json()["id"]
        assert _wait_state(app, second, ("done", "failed")).state == "done"
        failing_commits[0] = 2 * worker.db_retries + 2  # the job's end cannot even be written for a while
        third = api_upload(client, token, clips[2]).json()["id"]
        assert _wait_state(app, third, ("done", "failed")).state in ("done", "failed")
        assert worker.alive


def test_a_grading_over_the_time_limit_fails_with_job_timeout(tmp_path):
    """Item 7: the job is failed at the limit; the next one is graded once the grader is free."""
    from vmgrade.web.limits import Limits

    grader = _StubGrader(block_first=1)
    app = create_app(tmp_path / "data", secret_key="test-secret", grader=grader,
                     limits=Limits(job_timeout_s=0.5))
    add_users(app, ("rita", "rep", "east"))
    clips = [make_clip(tmp_path / f"c{i}.wav", seconds=1.0, pad_ms=i) for i in range(2)]
    with TestClient(app) as client:
        token = api_login(client, "rita")
        first = api_upload(client, token, clips[0]).json()["id"]
        job = _wait_state(app, first, ("done", "failed"))
        assert job.state == "failed" and job.error_code == "job_timeout"
        second = api_upload(client, token, clips[1]).json()["id"]
        grader.release.set()  # the leftover grading ends; the shared grader is free again
        assert _wait_state(app, second, ("done", "failed")).state == "done"
        assert client.get(f"/api/recordings/{first}").json()["error_code"] == "job_timeout"


@pytest.mark.parametrize("content", [b'{"score": 71.0, "grade": "C", "dimen', b"\xff\xfe\x00garbage",
                                     b"[1, 2, 3]", b'{"score": null, "grade": null}', b"[" * 100_000,
                                     b'{"score": 71.0, "grade": "C"}'])
def test_a_damaged_report_answers_report_damaged_not_500(app, tmp_path, content):
    """Item 8: a corrupt, truncated or wrong-shaped stored report is 422 report_damaged, page and API."""
    data = app.state.settings.data_dir
    with TestClient(app, raise_server_exceptions=False) as client:
        token = api_login(client, "rita")
        ids = [api_upload(client, token, make_clip(tmp_path / f"{i}.wav", seconds=1.0, pad_ms=i)).json()["id"]
               for i in range(2)]
        for rid in ids:
            (data / "reports" / f"{rid}.json").write_bytes(content)
            _set_job(app, rid, state="done", report_path=f"reports/{rid}.json", score=71.0, letter="C")
        response = client.get(f"/api/recordings/{ids[0]}/report")
        if content.endswith(b'"C"}'):  # readable JSON with a score: the API hands it over as stored
            assert response.status_code == 200
        else:
            assert response.status_code == 422 and response.json()["code"] == "report_damaged"
        page = client.get(f"/recordings/{ids[0]}/report")
        assert page.status_code == 422 and "damaged" in page.text and "Traceback" not in page.text
        compared = client.get(f"/api/compare?ids={ids[0]}&ids={ids[1]}")
        if compared.status_code != 200:  # a bare score and grade still compare
            assert compared.status_code == 422 and compared.json()["code"] == "report_damaged"
        assert client.get(f"/recordings/{ids[0]}").status_code == 200


def test_a_full_disk_answers_507_storage_full_and_leaves_nothing(app, tmp_path, monkeypatch):
    """Item 9: the upload's temp file is written to /dev/full (a real ENOSPC from the kernel)."""
    import os
    import tempfile

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    real_mkstemp = tempfile.mkstemp

    def full_mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    data = app.state.settings.data_dir
    with TestClient(app) as client:
        token = api_login(client, "rita")
        monkeypatch.setattr(tempfile, "mkstemp", full_mkstemp)
        response = api_upload(client, token, make_clip(tmp_path / "a.wav", seconds=1.0))
        assert response.status_code == 507 and response.json()["code"] == "storage_full"
        assert "storage is full" in response.json()["detail"]
        page = client.post("/upload", files={"file": ("a.wav", (tmp_path / "a.wav").read_bytes())},
                           data={"csrf_token": token})
        assert page.status_code == 507 and "storage is full" in page.text
        monkeypatch.undo()
    assert not list((data / "tmp").iterdir()) and not list((data / "uploads").rglob("*.*"))


def test_serve_gives_uvicorn_connection_limits(tmp_path, monkeypatch):
    """Item 10: idle keep-alive connections close, request heads are bounded, connections capped."""
    import uvicorn

    from vmgrade.cli import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    assert main(["serve", "--data-dir", str(tmp_path / "data")]) == 0
    assert calls[-1]["timeout_keep_alive"] == 5 and calls[-1]["h11_max_incomplete_event_size"] == 16384
    assert calls[-1]["limit_concurrency"] == 200


@pytest.mark.parametrize("password, why", [("short1!", "too short"), ("rita-is-great-2024", "username"),
                                           ("Password123!", "too common"), ("qwertyuiop", "too common"),
                                           ("aaaaaaaaaaaa", "repeated")])
def test_weak_passwords_are_refused_with_the_reason(app, password, why, monkeypatch, capsys):
    """Item 11: account creation and password changes refuse weak passwords, saying why."""
    import io

    from vmgrade.cli import main
    from vmgrade.web.accounts import AccountError, add_user, set_password

    with app.state.sessions() as s:
        with pytest.raises(AccountError, match=why) as refused:
            name = "rita2" if why == "username" else "nina"
            add_user(s, name, password.replace("rita", "rita2"), "rep", "east")
        assert refused.value.code == "account_error"
        with pytest.raises(AccountError, match=why):
            set_password(s, "rita", password)
    data = str(app.state.settings.data_dir)
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["users", "set-password", "--username", "rita", "--password-stdin", "--data-dir", data]) == 2
    assert "account_error" in capsys.readouterr().err
    with TestClient(app) as client:
        api_login(client, "rita")  # the old password still works
