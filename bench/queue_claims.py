"""How fast workers take jobs off the web app's queue: claims per second and claim latency.

The queue is the table ``web_jobs``: a worker claims the next job with ``SELECT … FOR UPDATE
SKIP LOCKED`` on PostgreSQL (a compare-and-set ``UPDATE`` on SQLite) in
:func:`vmgrade.web.jobs.claim_next`, in the reps' round-robin order. This measures that claim
with 1 to N workers claiming at once from a queue of queued jobs, on a throwaway PostgreSQL
(``tools/pg_cluster.py``) and on SQLite, to compare with a grading (seconds per file): the
queue must never be what workers wait for.

    python bench/queue_claims.py                 # 2000 jobs, 1/2/4/8 claimers, PostgreSQL and SQLite
    python bench/queue_claims.py --jobs 500 --claimers 1,4 --json claims.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmgrade.store.history import open_store  # noqa: E402
from vmgrade.store.team import Job, Team, Upload, User, utcnow  # noqa: E402
from vmgrade.web.jobs import claim_next  # noqa: E402

REPS = 20  # reps with queued jobs: the round-robin order has this many candidates


def _pg_cluster_module():
    spec = importlib.util.spec_from_file_location("pg_cluster", ROOT / "tools" / "pg_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill_queue(sessions: sessionmaker, jobs: int, reps: int = REPS) -> None:
    """``jobs`` queued jobs spread over ``reps`` reps (uploads without audio: never graded)."""
    now = utcnow()
    with sessions() as s, s.begin():
        team = Team(name="bench")
        s.add(team)
        s.flush()
        user_ids = s.execute(insert(User).returning(User.id), [
            dict(username=f"rep{r}", password_hash="x", role="rep", team_id=team.id) for r in range(reps)
        ]).scalars().all()
        upload_ids = s.execute(insert(Upload).returning(Upload.id), [
            dict(user_id=user_ids[i % reps], sha256=f"{i:064x}", stored_path=f"uploads/{i:064x}.wav",
                 filename=f"call{i}.wav", media_type="audio/wav", size_bytes=1000, duration_s=25.0,
                 source="upload", context={}, context_key="0" * 64, created_at=now) for i in range(jobs)
        ]).scalars().all()
        s.execute(insert(Job), [dict(upload_id=u, state="queued", queued_at=now) for u in upload_ids])


def measure(url: str, jobs: int, claimers: int) -> dict:
    """Claim every job of a fresh queue with ``claimers`` threads; rate and latency figures."""
    store = open_store(url)
    try:
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        with sessions() as s, s.begin():  # a fresh queue for each run
            for table in (Job, Upload, User, Team):
                s.execute(table.__table__.delete())
        fill_queue(sessions, jobs)
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(claimers + 1)

        def claim(worker: int) -> None:
            mine = []
            barrier.wait()
            while True:
                t0 = time.perf_counter()
                job_id = claim_next(sessions, f"bench:{worker}:x")
                if job_id is None:
                    break
                mine.append(time.perf_counter() - t0)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=claim, args=(w,)) for w in range(claimers)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall_s = time.perf_counter() - t0
        with sessions() as s:
            running = s.scalar(select(Job.id).where(Job.state != "running").limit(1))
        assert running is None and len(latencies) == jobs, "a job was not claimed exactly once"
        latencies.sort()
        return dict(claimers=claimers, jobs=jobs, claims_per_s=round(jobs / wall_s, 1),
                    p50_ms=round(statistics.median(latencies) * 1000, 2),
                    p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2))
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--claimers", default="1,2,4,8", help="comma-separated claimer counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.claimers.split(",")]
    results: dict[str, list[dict]] = {}
    pg = _pg_cluster_module()
    reason = pg.unavailable_reason()
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"sqlite": f"sqlite:///{tmp}/queue.sqlite3"}
        cluster = None
        if reason:
            print(f"no PostgreSQL here ({reason}): SQLite only")
        else:
            cluster = pg.PgCluster.start()
            backends["postgresql"] = cluster.new_database("bench_claims")
        try:
            for name, url in backends.items():
                results[name] = [measure(url, args.jobs, n) for n in counts]
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"{'backend':<11} {'claimers':>8} {'claims/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
    for name, rows in results.items():
        for r in rows:
            print(f"{name:<11} {r['claimers']:>8} {r['claims_per_s']:>9} {r['p50_ms']:>7} {r['p99_ms']:>7}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
