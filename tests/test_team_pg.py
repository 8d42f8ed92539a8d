"""The team store on a real PostgreSQL (a throwaway cluster the tests start: tools/pg_cluster.py).

Migrations from several nodes at once, history rows per upload, files stored in the database,
and the grading queue claimed by many workers. No Whisper model is loaded: the reports are the
stored real ones of tests/data.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import ROOT
from sqlalchemy import select, text, update
from sqlalchemy.orm import sessionmaker

from vmgrade.store.blobs import DatabaseBlobs, default_storage, open_blobs
from vmgrade.store.history import Base, current_revision, head_revision, open_store
from vmgrade.store.team import Job, Team, Upload, User, utcnow

DATA = Path(__file__).resolve().parent / "data"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
NODES = 4  # processes migrating one empty database at once
JOBS = 40
CLAIMERS = 4
LEASE_S = 30.0


def _report(name: str = "before_practice") -> dict:
    return json.loads((DATA / f"report_{name}.json").read_text(encoding="utf-8"))


# -- migrations ---------------------------------------------------------------


def test_open_store_migrates_an_empty_postgresql_database_to_head(pg_db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = open_store(pg_db_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            # the migrations build exactly the tables the models describe, on PostgreSQL too
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        store.close()
    assert default_storage(pg_db_url) == "database"


# Waits for "go" on stdin after its imports, so that the processes migrate together.
_OPEN_AT_ONCE = """
import sys
from vmgrade.store.history import current_revision, open_store
print("ready", flush=True)
sys.stdin.readline()
store = open_store(sys.argv[1])
print(current_revision(store.engine), flush=True)
store.close()
"""


def test_nodes_starting_together_on_an_empty_database_migrate_it_once(pg_db_url):
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT_ONCE, pg_db_url], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(NODES)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:  # all at once, as nodes started by one deploy
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert out.split() == [head_revision()], err
    store = open_store(pg_db_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                head_revision()]
    finally:
        store.close()


# -- history rows -------------------------------------------------------------


def test_history_round_trip_keeps_one_row_per_upload_of_the_same_audio(pg_db_url):
    report = _report()
    sha = hashlib.sha256(b"the same audio, uploaded twice").hexdigest()
    store = open_store(pg_db_url)
    try:
        batch_id = store.record(report, content_hash=sha, rep_id="ana", recorded_at=T0)
        assert store.record(report, content_hash=sha, rep_id="ana") == batch_id  # a regrade: same row
        first = store.record(report, content_hash=sha, rep_id="ana", recorded_at=T0, source_key="upload:1")
        second = store.record(report, content_hash=sha, rep_id="bo", recorded_at=T0, source_key="upload:2")
        assert len({batch_id, first, second}) == 3
        assert store.record(report, content_hash=sha, rep_id="ana", source_key="upload:1") == first
    finally:
        store.close()
    store = open_store(pg_db_url)  # read back through a fresh engine
    try:
        rows = {r.source_key: r for r in store.recordings()}
        assert set(rows) == {"", "upload:1", "upload:2"}
        assert rows["upload:2"].rep_id == "bo" and rows["upload:1"].rep_id == "ana"
        for row in rows.values():
            assert (row.score, row.recorded_at, row.content_hash) == (report["score"], T0, sha)
            assert row.metrics == report["metrics"] and row.model == "base"
    finally:
        store.close()


def test_history_record_from_many_threads_at_once_keeps_one_row_per_key(pg_db_url):
    report = _report("after_practice")
    sha = hashlib.sha256(b"raced").hexdigest()
    store = open_store(pg_db_url)
    ids: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLAIMERS)

    def record(key: str) -> None:
        try:
            barrier.wait(10)
            ids.append(store.record(report, content_hash=sha, rep_id="ana", source_key=key))
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    try:
        threads = [threading.Thread(target=record, args=(f"upload:{i % 2}",)) for i in range(CLAIMERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(ids) == CLAIMERS and len(set(ids)) == 2
        assert sorted(r.source_key for r in store.recordings()) == ["upload:0", "upload:1"]
    finally:
        store.close()


# -- files in the database ------------------------------------------------------


def test_database_blobs_round_trip_on_postgresql(pg_db_url, tmp_path):
    store = open_store(pg_db_url)
    try:
        blobs = open_blobs("database", data_dir=tmp_path, engine=store.engine)
        assert isinstance(blobs, DatabaseBlobs)
        audio = bytes(range(256)) * 4000 + b"\x00end"  # binary, ~1 MB, NULs included
        key = f"uploads/{hashlib.sha256(audio).hexdigest()[:2]}/{hashlib.sha256(audio).hexdigest()}.wav"
        assert blobs.read(key) is None and not blobs.exists(key)
        with blobs.local_file(key) as missing:
            assert missing is None

        source = tmp_path / "incoming.wav"
        source.write_bytes(audio)
        blobs.add_file(key, source)
        assert not source.exists()  # moved in
        assert blobs.exists(key) and blobs.read(key) == audio
        again = tmp_path / "again.wav"
        again.write_bytes(audio)
        blobs.add_file(key, again)  # the same content again: one copy, the file is dropped
        assert not again.exists()

        with blobs.local_file(key) as path:
            assert path is not None and path.suffix == ".wav" and path.read_bytes() == audio
            copy = path
        assert not copy.exists()  # the temporary copy is gone after the block

        # another node (another engine) reads what this one wrote
        other = open_store(pg_db_url)
        try:
            assert DatabaseBlobs(other.engine).read(key) == audio
        finally:
            other.close()

        blobs.write("reports/12.json", b'{"score": 1}')
        blobs.write("reports/12.json", b'{"score": 2}')  # replaced
        assert blobs.read("reports/12.json") == b'{"score": 2}'
        blobs.delete("reports/12.json")
        assert not blobs.exists("reports/12.json") and blobs.read("reports/12.json") is None
        blobs.delete("reports/12.json")  # deleting what is gone is no error
        assert blobs.exists(key)
    finally:
        store.close()


def test_nodes_writing_one_new_blob_at_once_all_succeed(pg_db_url):
    """Two nodes drawing the same report page at its first view store it at once: no error."""
    store = open_store(pg_db_url)
    writers = 6
    try:
        blobs = DatabaseBlobs(store.engine)
        barrier = threading.Barrier(writers)
        errors: list[BaseException] = []

        def write(i: int) -> None:
            try:
                barrier.wait(10)
                blobs.write("reports/7.html", f"page {i}".encode())
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert blobs.read("reports/7.html") in {f"page {i}".encode() for i in range(writers)}
    finally:
        store.close()


# -- the grading queue ----------------------------------------------------------


def _queue_jobs(sessions: sessionmaker, count: int, reps: int = 3) -> list[int]:
    """``count`` queued jobs of ``reps`` reps (their uploads point at no stored audio: never graded)."""
    with sessions() as s, s.begin():
        team = Team(name="east")
        users = [User(username=f"rep{i}", password_hash="x", role="rep", team=team) for i in range(reps)]
        s.add_all(users)
        s.flush()
        jobs = []
        for i in range(count):
            sha = hashlib.sha256(f"audio {i}".encode()).hexdigest()
            upload = Upload(user_id=users[i % reps].id, sha256=sha,
                            stored_path=f"uploads/{sha[:2]}/{sha}.wav", filename=f"call{i}.wav",
                            media_type="audio/wav", size_bytes=1000, duration_s=20.0,
                            source="upload", context={}, context_key="0" * 64, created_at=utcnow())
            s.add(upload)
            s.flush()
            job = Job(upload_id=upload.id, state="queued", queued_at=utcnow())
            s.add(job)
            jobs.append(job)
        s.flush()
        return [j.id for j in jobs]


def test_workers_claiming_at_once_take_every_job_exactly_once(pg_db_url):
    from vmgrade.web import jobs

    store = open_store(pg_db_url)
    try:
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        queued = _queue_jobs(sessions, JOBS)
        claims: dict[str, list[int]] = {f"host:{i}:w": [] for i in range(CLAIMERS)}
        errors: list[BaseException] = []
        barrier = threading.Barrier(CLAIMERS)

        def claim(worker_id: str) -> None:
            try:
                barrier.wait(10)
                while (job_id := jobs.claim_next(sessions, worker_id)) is not None:
                    claims[worker_id].append(job_id)
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        threads = [threading.Thread(target=claim, args=(w,)) for w in claims]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "claimers still running after 120 s"
        assert not errors, errors
        taken = Counter(j for ids in claims.values() for j in ids)
        assert sorted(taken) == sorted(queued) and set(taken.values()) == {1}
        with sessions() as s:
            rows = s.execute(select(Job.id, Job.state, Job.worker, Job.attempts)).all()
        owner = {j: w for w, ids in claims.items() for j in ids}
        for job_id, state, worker, attempts in rows:
            assert (state, worker, attempts) == ("running", owner[job_id], 1)
    finally:
        store.close()


def _set_job(sessions: sessionmaker, job_id: int, **values) -> None:
    with sessions() as s, s.begin():
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def _job(sessions: sessionmaker, job_id: int) -> tuple:
    with sessions() as s:
        return s.execute(select(Job.state, Job.worker, Job.attempts, Job.error_code)
                         .where(Job.id == job_id)).one()


def test_expired_leases_go_back_to_the_queue_and_live_ones_stay(pg_db_url):
    from vmgrade.web import jobs

    store = open_store(pg_db_url)
    try:
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        stale, fresh, worn_out = _queue_jobs(sessions, 3)
        workers = ("elsewhere:101:a", "elsewhere:102:b", "elsewhere:103:c")
        for job_id, worker in zip((stale, fresh, worn_out), workers):
            assert jobs.claim_next(sessions, worker) == job_id  # round-robin over three reps: in order
        with sessions() as s:
            now = jobs.db_now(s)  # the database's clock, as the workers use it
        long_ago = now - timedelta(seconds=LEASE_S * 3)
        _set_job(sessions, stale, heartbeat_at=long_ago)
        _set_job(sessions, worn_out, heartbeat_at=long_ago, attempts=jobs.MAX_ATTEMPTS)

        assert jobs.heartbeat(sessions, fresh, "elsewhere:102:b")  # its worker renews it
        assert not jobs.heartbeat(sessions, fresh, "elsewhere:999:z")  # nobody else can
        assert jobs.reap_expired(sessions, LEASE_S) == (1, 1)
        assert _job(sessions, stale) == ("queued", None, 1, None)
        assert _job(sessions, fresh) == ("running", "elsewhere:102:b", 1, None)
        assert _job(sessions, worn_out)[::3] == ("failed", "worker_crashed")
        assert not jobs.heartbeat(sessions, stale, "elsewhere:101:a")  # the lease is lost for good
        assert jobs.reap_expired(sessions, LEASE_S) == (0, 0)  # nothing more to do

        # the next claim takes the requeued job, counting a second attempt
        assert jobs.claim_next(sessions, "elsewhere:104:d") == stale
        assert _job(sessions, stale) == ("running", "elsewhere:104:d", 2, None)
    finally:
        store.close()


def test_a_job_of_a_dead_worker_on_this_machine_is_requeued_at_once(pg_db_url):
    from vmgrade.web import jobs

    store = open_store(pg_db_url)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(60)  # exited and reaped: its pid names no process now
    try:
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        of_dead, of_live = _queue_jobs(sessions, 2)
        host = socket.gethostname()
        assert jobs.claim_next(sessions, f"{host}:{dead.pid}:x") == of_dead
        assert jobs.claim_next(sessions, f"{host}:{live.pid}:y") == of_live
        # both heartbeats are fresh; only the dead process's job goes back
        assert jobs.reap_expired(sessions, 3600) == (1, 0)
        assert _job(sessions, of_dead)[:2] == ("queued", None)
        assert _job(sessions, of_live)[:2] == ("running", f"{host}:{live.pid}:y")
    finally:
        live.kill()
        live.wait()
        store.close()


def test_many_reapers_and_claimers_at_once_never_lose_or_double_a_job(pg_db_url):
    """Workers claiming while others reap the same expired jobs: each job ends up with one owner."""
    from vmgrade.web import jobs

    store = open_store(pg_db_url)
    try:
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        queued = _queue_jobs(sessions, JOBS)
        while jobs.claim_next(sessions, "elsewhere:1:gone") is not None:
            pass  # a worker took them all, then vanished
        with sessions() as s, s.begin():
            s.execute(update(Job).values(heartbeat_at=jobs.db_now(s) - timedelta(seconds=LEASE_S * 3)))
        claims: dict[str, list[int]] = {f"elsewhere:{10 + i}:w": [] for i in range(CLAIMERS)}
        errors: list[BaseException] = []
        barrier = threading.Barrier(CLAIMERS)

        def work(worker_id: str) -> None:
            try:
                barrier.wait(10)
                idle = 0
                while idle < 3:  # the jobs come back as the reaping goes on
                    jobs.reap_expired(sessions, LEASE_S)
                    job_id = jobs.claim_next(sessions, worker_id)
                    if job_id is None:
                        idle += 1
                        continue
                    idle = 0
                    claims[worker_id].append(job_id)
                    assert jobs.heartbeat(sessions, job_id, worker_id)  # keeps what it took
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in claims]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads) and not errors, errors
        taken = Counter(j for ids in claims.values() for j in ids)
        assert sorted(taken) == sorted(queued) and set(taken.values()) == {1}
        owner = {j: w for w, ids in claims.items() for j in ids}
        for job_id in queued:
            assert _job(sessions, job_id) == ("running", owner[job_id], 2, None)
    finally:
        store.close()
