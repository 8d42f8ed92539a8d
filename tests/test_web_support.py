"""Helpers shared by the web tests: a tiny-model Grader, audio clips, a live server, API login.

Kept in a test module (no tests here) so the web tests share one copy.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PASSWORD = "correct horse 1"
# tiny.en on the CTranslate2 engine: the web tests check plumbing, not accuracy, so the
# fastest real model keeps 20+ gradings within seconds each.
WEB_MODEL, WEB_ENGINE = "tiny.en", "ctranslate2"


@functools.lru_cache(maxsize=1)
def web_grader():
    """One real Grader for every web test in the process."""
    from vmgrade.pipeline import GradeOptions, Grader

    return Grader(GradeOptions(model=WEB_MODEL, engine=WEB_ENGINE, threads=2))


def make_clip(path: Path, seconds: float = 3.0, pad_ms: int = 0, source: str = "before_practice.wav") -> Path:
    """The first ``seconds`` of a sample plus ``pad_ms`` of silence (different padding, different hash)."""
    data, sr = sf.read(str(SAMPLES / source), dtype="int16")
    clip = np.concatenate([data[: int(seconds * sr)], np.zeros(int(sr * pad_ms / 1000), dtype=np.int16)])
    sf.write(str(path), clip, sr, subtype="PCM_16")
    return path


def add_users(app, *specs: tuple[str, str, str]) -> None:
    """``specs``: (username, role, team); every password is ``PASSWORD``."""
    from vmgrade.web.accounts import add_user

    with app.state.sessions() as session:
        for username, role, team in specs:
            add_user(session, username, PASSWORD, role, team)


def quiet_app(data_dir: Path, **kwargs):
    """A real app without its grading worker (jobs stay queued): no model is loaded."""
    from vmgrade.web.app import create_app

    return create_app(data_dir, secret_key="test-secret", start_worker=False, **kwargs)


def three_users_app(data_dir: Path):
    """:func:`quiet_app` with reps rita and ravi and trainer tom, all of team east."""
    app = quiet_app(data_dir)
    add_users(app, ("rita", "rep", "east"), ("ravi", "rep", "east"), ("tom", "trainer", "east"))
    return app


def set_job(app, upload_id: int, **values) -> None:
    """Set columns of the job behind ``upload_id`` (a state a test needs to start from)."""
    from vmgrade.store.team import Job

    with app.state.sessions() as s:
        job = s.query(Job).filter(Job.upload_id == upload_id).one()
        for name, value in values.items():
            setattr(job, name, value)
        s.commit()


def api_login(client, username: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the API; returns the CSRF token for later POSTs."""
    token = client.get("/api/csrf").json()["csrf_token"]
    response = client.post("/api/login", json={"username": username, "password": password},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def api_upload(client, token: str, path: Path, name: str | None = None, **context):
    with open(path, "rb") as f:
        return client.post("/api/uploads", files={"file": (name or path.name, f, "application/octet-stream")},
                           data=context, headers={"X-CSRF-Token": token})


def wait_done(client, recording_id: int, timeout_s: float = 180.0) -> dict:
    """Poll the API until the job is done or failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/api/recordings/{recording_id}").json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.25)
    raise AssertionError(f"recording {recording_id} not graded within {timeout_s} s: {body}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread; stops itself on exit."""

    def __init__(self, app, start_timeout_s: float = 30.0):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.start_timeout_s = start_timeout_s

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


# Debian's chromium (CI exports VMGRADE_CHROMIUM); Playwright never downloads a browser here.
CHROMIUM = os.environ.get("VMGRADE_CHROMIUM") or "/usr/bin/chromium"
