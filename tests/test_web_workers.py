"""Grading in a child process (issue 27): a crash or a runaway grading costs one job, never the node.

Real apps with their real grading worker: the child loads tiny.en on CTranslate2 (the web
tests' model) and is killed with real signals mid-job.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faster_whisper")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_support import (  # noqa: E402
    WEB_ENGINE,
    WEB_MODEL,
    add_users,
    api_login,
    api_upload,
    make_clip,
    wait_done,
)

from vmgrade.pipeline import GradeOptions  # noqa: E402
from vmgrade.store.team import Job  # noqa: E402
from vmgrade.web.app import create_app  # noqa: E402
from vmgrade.web.jobs import MAX_ATTEMPTS  # noqa: E402
from vmgrade.web.limits import Limits  # noqa: E402

pytestmark = pytest.mark.slow  # each test loads the model in a grading child, some several times


def _app(data_dir, **kwargs):
    app = create_app(data_dir, secret_key="test-secret",
                     grade_options=GradeOptions(model=WEB_MODEL, engine=WEB_ENGINE, threads=1), **kwargs)
    add_users(app, ("rita", "rep", "east"))
    return app


def _job(app, upload_id: int) -> Job:
    with app.state.sessions() as s:
        return s.query(Job).filter(Job.upload_id == upload_id).one()


def _kill_child_while_grading(app, upload_id: int, seen: set[int], timeout_s: float = 120.0) -> int:
    """SIGSEGV the grading child once it holds ``upload_id`` (a child not killed before); its pid."""
    worker = app.state.worker
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = worker.child_pid
        if pid is not None and pid not in seen and _job(app, upload_id).state == "running" \
                and worker.current_job is not None:
            os.kill(pid, signal.SIGSEGV)
            seen.add(pid)
            return pid
        time.sleep(0.05)
    raise AssertionError(f"upload {upload_id} was never being graded by a fresh child")


def test_a_crash_while_grading_costs_an_attempt_and_the_node_serves_on(tmp_path):
    app = _app(tmp_path / "data")
    with TestClient(app) as client:
        token = api_login(client, "rita")
        clip = make_clip(tmp_path / "one.wav", seconds=4)
        upload_id = api_upload(client, token, clip).json()["id"]
        seen: set[int] = set()
        _kill_child_while_grading(app, upload_id, seen)
        assert client.get("/api/me").status_code == 200  # the node is untouched
        done = wait_done(client, upload_id)
        assert done["state"] == "done", done
        assert _job(app, upload_id).attempts == 2  # the crash cost one attempt; a fresh child graded it
        assert client.get(f"/api/recordings/{upload_id}/report").json()["score"] == done["score"]

        # A recording that kills its grading every time fails with its own error, after MAX_ATTEMPTS.
        other = api_upload(client, token, make_clip(tmp_path / "two.wav", seconds=4, pad_ms=30)).json()["id"]
        for _ in range(MAX_ATTEMPTS):
            _kill_child_while_grading(app, other, seen)
        failed = wait_done(client, other)
        assert failed["state"] == "failed" and failed["error_code"] == "grading_crashed", failed
        assert "SIGSEGV" in failed["error"] and f"{MAX_ATTEMPTS} times" in failed["error"]
        assert client.get("/api/me").status_code == 200

        # and the next upload is graded as usual
        clip = make_clip(tmp_path / "three.wav", seconds=4, pad_ms=60)
        third = api_upload(client, token, clip).json()["id"]
        assert wait_done(client, third)["state"] == "done"


def test_a_grading_past_its_time_limit_is_killed_not_left_running(tmp_path):
    app = _app(tmp_path / "data", limits=Limits(job_timeout_s=0.3))
    with TestClient(app) as client:
        token = api_login(client, "rita")
        upload_id = api_upload(client, token, make_clip(tmp_path / "long.wav", seconds=20)).json()["id"]
        failed = wait_done(client, upload_id)
        assert failed["state"] == "failed" and failed["error_code"] == "job_timeout", failed
        assert app.state.worker.child_pid is None  # the grading was killed with its child, not left to run


def test_a_stopping_node_gives_its_job_back_without_counting_it(tmp_path):
    data = tmp_path / "data"
    app = _app(data)
    with TestClient(app) as client:
        token = api_login(client, "rita")
        upload_id = api_upload(client, token, make_clip(tmp_path / "one.wav", seconds=4)).json()["id"]
        deadline = time.monotonic() + 120
        while _job(app, upload_id).state != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    job = _job(app, upload_id)  # the node stopped mid-grading
    assert job.state in ("queued", "done") and job.worker is None or job.state == "done"
    if job.state == "queued":
        assert job.attempts == 0


def test_a_backlog_is_graded_together_each_job_with_its_own_report(tmp_path):
    """Uploads queued while the child loads: one claim takes several, graded in one child call."""
    app = _app(tmp_path / "data")
    worker = app.state.worker
    worker.files_at_once = 3  # the ctranslate2 engine's default on CPUs without AMX, here on any
    with TestClient(app) as client:
        token = api_login(client, "rita")
        sources = ("before_practice.wav", "followup_phone.wav", "after_practice.wav")
        ids = [api_upload(client, token, make_clip(tmp_path / f"{i}.wav", seconds=4, pad_ms=30 * i,
                                                   source=source)).json()["id"]
               for i, source in enumerate(sources)]
        done = [wait_done(client, upload_id) for upload_id in ids]
        assert [d["state"] for d in done] == ["done"] * 3, done
        assert worker.groups and max(worker.groups) >= 2  # some jobs were graded together
        reports = [client.get(f"/api/recordings/{upload_id}/report").json() for upload_id in ids]
        assert [r["score"] for r in reports] == [d["score"] for d in done]
        assert len({r["transcript"]["text"] for r in reports}) == 3  # each job got its own report
        assert all(_job(app, upload_id).attempts == 1 for upload_id in ids)
