"""A small load test: 20 concurrent uploads to uvicorn on loopback all complete, none lost or duplicated."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest
from test_web_support import PASSWORD, LiveServer, add_users, make_clip, web_grader

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

REPS = 4
UPLOADS = 20  # distinct recordings, UPLOADS // REPS per rep
RETRIES_OF_FIRST = 2  # extra concurrent copies of one upload (same rep, bytes, context): dedup to one
REQUEST_TIMEOUT_S = 120.0
GRADE_DEADLINE_S = 600.0


def test_twenty_concurrent_uploads_all_graded_once(tmp_path):
    from sqlalchemy import func, select

    from vmgrade.store.team import Job, Upload
    from vmgrade.web.app import create_app

    data = tmp_path / "data"
    app = create_app(data, secret_key="load-test", grader=web_grader())
    reps = [f"rep{i}" for i in range(REPS)]
    add_users(app, *[(r, "rep", "load") for r in reps])
    # One short sample with different padding: same speech, different bytes, so 20 different hashes.
    clips = [make_clip(tmp_path / f"clip{i:02d}.wav", seconds=2.0, pad_ms=5 * i) for i in range(UPLOADS)]
    owner = {clip: reps[i % REPS] for i, clip in enumerate(clips)}

    with LiveServer(app) as server:
        async def run():
            clients, tokens = {}, {}
            for rep in reps:
                client = httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S)
                token = (await client.get("/api/csrf")).json()["csrf_token"]
                response = await client.post("/api/login", json={"username": rep, "password": PASSWORD},
                                             headers={"X-CSRF-Token": token})
                assert response.status_code == 200, response.text
                clients[rep], tokens[rep] = client, response.json()["csrf_token"]

            async def upload(clip):
                rep = owner[clip]
                return clip, await clients[rep].post(
                    "/api/uploads", files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                    headers={"X-CSRF-Token": tokens[rep]})

            started = time.monotonic()
            results = await asyncio.gather(*[upload(c) for c in clips + [clips[0]] * RETRIES_OF_FIRST])
            upload_s = time.monotonic() - started

            ids = {}
            for clip, response in results:
                assert response.status_code in (200, 202), response.text
                ids.setdefault(clip, set()).add(response.json()["id"])
            assert all(len(v) == 1 for v in ids.values()), ids  # retries got the original's id
            ids = {clip: v.pop() for clip, v in ids.items()}
            assert len(set(ids.values())) == UPLOADS
            assert sum(r.json()["duplicate"] for _, r in results) == RETRIES_OF_FIRST

            deadline = time.monotonic() + GRADE_DEADLINE_S
            pending = dict(ids)
            while pending and time.monotonic() < deadline:
                for clip, rid in list(pending.items()):
                    body = (await clients[owner[clip]].get(f"/api/recordings/{rid}")).json()
                    if body["state"] in ("done", "failed"):
                        assert body["state"] == "done", body
                        del pending[clip]
                await asyncio.sleep(0.5)
            assert not pending, f"not graded in {GRADE_DEADLINE_S} s: {sorted(c.name for c in pending)}"
            for rep in reps:
                listed = (await clients[rep].get("/api/recordings")).json()
                assert sorted(r["id"] for r in listed) == sorted(i for c, i in ids.items() if owner[c] == rep)
                await clients[rep].aclose()
            return ids, upload_s

        ids, upload_s = asyncio.run(run())

    with app.state.sessions() as s:
        assert s.scalar(select(func.count(Upload.id))) == UPLOADS
        jobs = s.scalars(select(Job)).all()
    assert len(jobs) == UPLOADS and {j.state for j in jobs} == {"done"}
    assert all(j.attempts == 1 for j in jobs)  # each claimed exactly once
    assert len(list((data / "reports").glob("*.json"))) == UPLOADS
    assert len(list((data / "uploads").rglob("*.wav"))) == UPLOADS
    rows = app.state.store.recordings()
    expected = sorted(hashlib.sha256(c.read_bytes()).hexdigest() for c in clips)
    assert sorted(r.content_hash for r in rows) == expected
    print(f"{UPLOADS + RETRIES_OF_FIRST} concurrent uploads accepted in {upload_s:.1f} s")
