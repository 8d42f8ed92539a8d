"""Web path throughput (issue 27): files per minute through a team deployment vs ``vmgrade batch``.

A throwaway PostgreSQL (``tools/pg_cluster.py``), accounts made with ``vmgrade users add``, one
web node (``vmgrade serve --workers 0``) and, for each ``--workers`` count, that many separate
``vmgrade worker --concurrency 1`` processes (own data dirs). The voicemails are varied copies of
the samples (``bench/batch_throughput.py``'s ``build_folder``: each its own hash), uploaded
through the HTTP API (login, CSRF, ``POST /api/uploads``) without call context, so web and batch
grade the same work. Every worker first grades a warm-up file (model load, imports and first
page excluded). Prints, per worker count:

- web: ``--files`` uploads, first upload's start to the last job's ``finished_at``;
- batch: ``vmgrade batch`` over the same files plus one warm-up file per worker (sorted first),
  same model, engine, ``--workers`` and ``--threads``; from the first measured file's start
  (ledger mtime minus its ``grade_s``) to the last result;
- s/file/worker: web ``finished_at - started_at`` (audio fetch, HTML, history row included),
  batch ``grade_s``; others %: CPU that other processes used meanwhile, % of all cores;
- the web/batch ratio (issue 27's target: >= 0.90 with one worker per core), and a burst
  (``--burst K`` files from each of ``--burst-reps`` reps at once, ``--burst-workers``
  workers): median and max seconds from ``queued_at`` to running and to done.

Threads per worker default to CPUs / workers. Every process and the cluster are stopped at the
end, also on errors and Ctrl-C. Quote timings with the machine's load.

Run: ``python bench/web_throughput.py [--files 12] [--workers 1,2] [--burst 4] [--burst-reps 3]
[--model tiny.en --engine ctranslate2] [--threads T] [--json OUT] [--keep DIR]``
(``--model base --engine openai-whisper``: the production default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select

from vmgrade.store.team import Job

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL, DEFAULT_ENGINE = "tiny.en", "ctranslate2"  # tests/test_web_support.py WEB_MODEL, WEB_ENGINE
SECRET = "bench-web-throughput-secret"
PASSWORD = "bench password 1"
MAX_PER_REP = 8  # uploads per rep in the throughput runs (the node's default queue cap is 10 per rep)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def load_script(relative_path: str, name: str):
    """Import a script of ``tools/`` or ``bench/`` (not a package), as tests/conftest.py does."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def proc_table() -> dict[int, tuple[int, float]]:
    """Every process now: pid -> (parent pid, user + system CPU seconds)."""
    tick, table = os.sysconf("SC_CLK_TCK"), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(pid: int, table: dict | None = None) -> set[int]:
    """Every live descendant of ``pid`` (grading children run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in (table or proc_table()).items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        found.update(kids := children.get(todo.pop(), []))
        todo.extend(kids)
    return found


def others_cpu_s(before: dict, roots: list[int]) -> float:
    """CPU seconds that processes outside ``roots``' trees used since the ``before`` table (other
    people's load; processes that ended meanwhile are missed, so it is a lower bound)."""
    now = proc_table()
    ours = {*roots, *(pid for root in roots for pid in descendants(root, now))}
    return sum(max(0.0, cpu - before.get(pid, (0, 0.0))[1]) for pid, (_, cpu) in now.items()
               if pid not in ours)


def epoch(value: datetime) -> float:
    """A naive-UTC database timestamp as seconds since the epoch."""
    return value.replace(tzinfo=timezone.utc).timestamp()


class Deployment:
    """The cluster's database, the web node and the worker processes; :meth:`close` ends them all."""

    def __init__(self, db_url: str, root: Path):
        self.db_url, self.root = db_url, root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VMGRADE_SECRET")
                    and k != "VMGRADE_DB_URL"}
        self.env.update(VMGRADE_DATA_DIR=str(root / "default-data"), VMGRADE_SECRET_KEY=SECRET,
                        PYTHONUNBUFFERED="1")
        self.procs: dict[str, subprocess.Popen] = {}
        self.url = ""

    def vmgrade(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "vmgrade", *args], cwd=ROOT, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # Ctrl-C reaches us only; we stop them in order
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def add_users(self, team: str, names: list[str]) -> None:
        for name in names:
            done = subprocess.run([sys.executable, "-m", "vmgrade", "users", "add", "--username", name,
                                   "--role", "rep", "--team", team, "--password-stdin", "--db", self.db_url],
                                  cwd=ROOT, env=self.env, input=PASSWORD + "\n", capture_output=True,
                                  text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"users add {name}: {done.stderr.strip()}")

    def serve(self, port: int) -> None:
        proc = self.vmgrade("web", "serve", "--workers", "0", "--db", self.db_url, "--data-dir",
                            str(self.root / "web"), "--port", str(port))
        self.url = f"http://127.0.0.1:{port}"
        web_node = load_script("tools/web_node.py", "web_node_tool")
        web_node.wait_serving(self.url, proc, START_TIMEOUT_S, "web node", lambda: self.log_tail("web"))

    def workers(self, n: int, threads: int, model: str, engine: str) -> list[str]:
        names = [f"worker-{n}x-{i}" for i in range(n)]
        for name in names:
            self.vmgrade(name, "worker", "--db", self.db_url, "--data-dir", str(self.root / name),
                         "--concurrency", "1", "--threads", str(threads), "--model", model,
                         "--engine", engine)
        return names

    def check_alive(self, names: list[str]) -> None:
        for name in names:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}):\n{self.log_tail(name)}")

    def stop(self, names: list[str]) -> None:
        """SIGTERM (jobs under way go back to the queue, children end), SIGKILL past the limit."""
        kids = {name: descendants(self.procs[name].pid) for name in names if self.procs[name].poll() is None}
        for name in names:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in names:
            proc = self.procs.pop(name)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            for pid in kids.get(name, []):  # our own grading children, by pid, if one outlived its worker
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self.stop(list(self.procs))


class Rep:
    """One rep logged in through the API (its own cookies and CSRF token)."""

    def __init__(self, url: str, username: str):
        self.url, self.username = url, username
        self.client = httpx.Client(base_url=url, timeout=120)
        token = self.client.get("/api/csrf").json()["csrf_token"]
        response = self.client.post("/api/login", json={"username": username, "password": PASSWORD},
                                    headers={"X-CSRF-Token": token})
        response.raise_for_status()
        self.token = response.json()["csrf_token"]

    def upload(self, path: Path, client: httpx.Client | None = None) -> int:
        with open(path, "rb") as f:
            response = (client or self.client).post(
                "/api/uploads", files={"file": (path.name, f, "application/octet-stream")},
                headers={"X-CSRF-Token": self.token})
        if response.status_code != 202:
            raise RuntimeError(f"upload of {path.name} by {self.username}: {response.status_code} "
                               f"{response.text}")
        return response.json()["id"]



def wait_jobs(engine, upload_ids: list[int], deploy: Deployment, names: list[str], timeout_s: float) -> list:
    """The jobs of ``upload_ids`` once all are done or failed (rows of Job columns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(Job.upload_id, Job.state, Job.worker, Job.queued_at, Job.started_at,
                                       Job.finished_at, Job.error_code)
                                .where(Job.upload_id.in_(upload_ids))).all()
        if len(rows) == len(upload_ids) and all(r.state in ("done", "failed") for r in rows):
            return rows
        deploy.check_alive(names)
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished within {timeout_s:g} s: {[tuple(r) for r in rows]}")
        time.sleep(0.25)


def warm_up(deploy: Deployment, engine, names: list[str], rep: Rep, warm_files: list[Path]) -> None:
    """Upload warm-up files until every worker process has graded one (its model loaded, imports done)."""
    pids = {deploy.procs[name].pid for name in names}
    warmed: set[int] = set()
    files = iter(warm_files)
    ids = [rep.upload(next(files)) for _ in names]
    while warmed != pids:
        rows = wait_jobs(engine, ids, deploy, names, 600 + 60 * len(ids))
        warmed |= {int(r.worker.split(":")[1]) for r in rows if r.worker and r.state == "done"} & pids
        if warmed != pids:  # one worker took two warm-ups (the other was slower to poll): once more
            ids.append(rep.upload(next(files)))


def web_run(deploy: Deployment, engine, names: list[str], reps: list[Rep], files: list[Path],
            roots: list[int]) -> dict:
    cpu, t0 = proc_table(), time.time()
    ids = [reps[i % len(reps)].upload(path) for i, path in enumerate(files)]
    uploaded_s = time.time() - t0
    rows = wait_jobs(engine, ids, deploy, names, 300 + 120 * len(ids))
    span = max(epoch(r.finished_at) for r in rows) - t0
    others = others_cpu_s(cpu, roots)
    return {"files": len(ids), "failed": sum(r.state != "done" for r in rows), "others_cpu_s": others,
            "errors": sorted({r.error_code for r in rows if r.error_code}), "span_s": span,
            "files_per_min": len(ids) / span * 60, "upload_s": uploaded_s,
            "s_per_file": statistics.mean(epoch(r.finished_at) - epoch(r.started_at) for r in rows
                                          if r.started_at)}


def burst_run(deploy: Deployment, engine, names: list[str], reps: list[Rep], files: list[Path]) -> dict:
    """Every rep uploads every one of ``files`` at once (a thread and a connection per upload)."""
    def one(rep: Rep, path: Path) -> int:
        with httpx.Client(base_url=rep.url, timeout=120, cookies=rep.client.cookies) as client:
            return rep.upload(path, client)

    with ThreadPoolExecutor(len(reps) * len(files)) as pool:
        ids = list(pool.map(one, *zip(*[(rep, path) for path in files for rep in reps])))
    rows = wait_jobs(engine, ids, deploy, names, 300 + 120 * len(ids))
    to_running = [epoch(r.started_at) - epoch(r.queued_at) for r in rows]
    to_done = [epoch(r.finished_at) - epoch(r.queued_at) for r in rows]
    return {"reps": len(reps), "per_rep": len(files), "workers": len(names),
            "failed": sum(r.state != "done" for r in rows),
            "to_running_median_s": statistics.median(to_running), "to_running_max_s": max(to_running),
            "to_done_median_s": statistics.median(to_done), "to_done_max_s": max(to_done)}


def batch_run(out: Path, warm: list[Path], files: list[Path], workers: int, threads: int, model: str,
              engine: str, log: Path, roots: list[int]) -> dict:
    """``vmgrade batch`` over ``warm + files`` (the warm ones sort first); rates the ``files`` only."""
    cmd = [sys.executable, "-m", "vmgrade", "batch", *map(str, warm + files), "--out", str(out),
           "--model", model, "--engine", engine, "--workers", str(workers), "--threads", str(threads),
           "--no-history", "--no-progress"]
    cpu, t0 = proc_table(), time.perf_counter()
    with open(log, "ab") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait()
        finally:
            if proc.poll() is None:  # Ctrl-C or an error here: the batch and its pool go too
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    wall, others = time.perf_counter() - t0, others_cpu_s(cpu, roots)
    if proc.returncode != 0:
        raise RuntimeError(f"vmgrade batch exited {proc.returncode}:\n"
                           f"{log.read_text(errors='replace')[-3000:]}")
    measured = {str(p.resolve()) for p in files}
    ledger = [(p.stat().st_mtime, json.loads(p.read_text())) for p in (out / "results").glob("*.json")]
    mine = [(mtime, rec) for mtime, rec in ledger if str(Path(rec["file"]).resolve()) in measured]
    start = min(mtime - rec["worker"].get("grade_s", 0) for mtime, rec in mine)
    span = max(mtime for mtime, _ in mine) - start
    return {"files": len(mine), "failed": sum(not rec["ok"] for _, rec in mine), "others_cpu_s": others,
            "span_s": span, "files_per_min": len(mine) / span * 60, "wall_s": wall,
            "s_per_file": statistics.mean(rec["worker"].get("grade_s", 0) for _, rec in mine)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2],
                        help="worker counts, comma-separated (default 1,2)")
    parser.add_argument("--threads", type=int, default=None, help="per worker (default CPUs / workers)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    parser.add_argument("--burst", type=int, default=4, metavar="K",
                        help="files per rep at once (0: no burst)")
    parser.add_argument("--burst-reps", type=int, default=3)
    parser.add_argument("--burst-workers", type=int, default=1)
    parser.add_argument("--no-batch", action="store_true", help="skip the vmgrade batch runs")
    parser.add_argument("--json", metavar="OUT", default=None, help="write the figures here")
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep files and logs in DIR")
    args = parser.parse_args()
    if not 0 <= args.burst <= MAX_PER_REP:
        parser.error(f"--burst: 0 to {MAX_PER_REP} (a rep's uploads in flight and queue are limited)")

    # Ctrl-C and SIGTERM end the run through the finally below (a shell's background job ignores SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cpus = os.cpu_count() or 1
    counts = list(dict.fromkeys(args.workers + ([args.burst_workers] if args.burst else [])))
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vmgrade-webbench-"))
    pg = load_script("tools/pg_cluster.py", "pg_cluster_tool")
    build_folder = load_script("bench/batch_throughput.py", "batch_throughput_bench").build_folder
    cluster = deploy = None
    reps_open: list[Rep] = []
    figures: dict = {"model": args.model, "engine": args.engine, "cpus": cpus, "files": args.files,
                     "load_avg_start": os.getloadavg(), "web": {}, "batch": {}, "burst": None}
    try:
        n_warm = max(counts) + 2
        all_files, total_s = build_folder(base / "calls", n_warm + args.files)
        warm, files = all_files[:n_warm], all_files[n_warm:]
        print(f"{len(files)} voicemails, {total_s / 60:.1f} min of audio with {n_warm} warm-up files; "
              f"model {args.model}, engine {args.engine}; {cpus} CPUs; load average "
              f"{os.getloadavg()[0]:.2f}\n", flush=True)
        cluster = pg.PgCluster.start()
        deploy = Deployment(cluster.new_database("bench_web"), base / "deploy")
        deploy.serve(pg.free_port())
        engine = create_engine(deploy.db_url)
        roots = [os.getpid(), int((cluster.directory / "postmaster.pid").read_text().split()[0])]
        header = f"{'path':<7}{'workers':>8}{'threads':>8}{'files':>6}{'span s':>8}{'files/min':>11}" \
                 f"{'s/file/worker':>15}{'others %':>10}"
        rows: list[str] = []

        def row(path: str, w: int, t: int, s: dict) -> None:
            rows.append(f"{path:<7}{w:>8}{t:>8}{s['files']:>6}{s['span_s']:>8.1f}{s['files_per_min']:>11.2f}"
                        f"{s['s_per_file']:>15.2f}{100 * s['others_cpu_s'] / s['span_s'] / cpus:>10.0f}"
                        + (f"   ({s['failed']} failed)" if s["failed"] else ""))
            print(f"\n{header}\n" + "\n".join(rows), flush=True)

        for w in counts:
            threads = args.threads or max(1, cpus // w)
            names_rep = [f"w{w}rep{i}" for i in range(-(-len(files) // MAX_PER_REP))]
            names_burst = [f"w{w}burst{i}" for i in range(args.burst_reps)] if w == args.burst_workers else []
            deploy.add_users(f"bench{w}", [f"w{w}warm", *names_rep, *names_burst])
            names = deploy.workers(w, threads, args.model, args.engine)
            try:
                reps = [Rep(deploy.url, name) for name in [f"w{w}warm", *names_rep]]
                reps_open += reps
                t_warm = time.perf_counter()
                warm_up(deploy, engine, names, reps[0], warm)
                print(f"{w} worker(s) x {threads} thread(s) warm after {time.perf_counter() - t_warm:.0f} s",
                      flush=True)
                if w in args.workers:
                    stats = web_run(deploy, engine, names, reps[1:], files, roots)
                    figures["web"][w] = dict(stats, threads=threads)
                    row("web", w, threads, stats)
                    if stats["errors"]:
                        print(f"web job errors: {stats['errors']}", flush=True)
                if names_burst and args.burst:
                    burst_reps = [Rep(deploy.url, name) for name in names_burst]
                    reps_open += burst_reps
                    figures["burst"] = burst_run(deploy, engine, names, burst_reps, files[:args.burst])
            finally:
                deploy.stop(names)
            if w in args.workers and not args.no_batch:
                stats = batch_run(base / f"batch-{w}", warm[:w], files, w, threads, args.model, args.engine,
                                  deploy.logs / f"batch-{w}.log", roots)
                figures["batch"][w] = dict(stats, threads=threads)
                row("batch", w, threads, stats)

        print("\nspan: first upload (web) or first measured file's start (batch) to the last file done; "
              "warm workers;\nothers %: CPU other processes used during the span, % of all cores (>10: "
              "the figure is disturbed)")
        for w in args.workers:
            if w in figures["web"] and w in figures["batch"]:
                ratio = figures["web"][w]["files_per_min"] / figures["batch"][w]["files_per_min"]
                figures.setdefault("ratio", {})[w] = ratio
                print(f"web/batch, {w} worker(s): {ratio:.2f}  (target >= 0.90: "
                      f"{'met' if ratio >= 0.9 else 'NOT met'})")
        if figures["burst"]:
            b = figures["burst"]
            print(f"burst: {b['reps']} reps x {b['per_rep']} files at once, {b['workers']} worker(s): "
                  f"to running median {b['to_running_median_s']:.1f} s, max {b['to_running_max_s']:.1f} s; "
                  f"to done median {b['to_done_median_s']:.1f} s, max {b['to_done_max_s']:.1f} s"
                  + (f" ({b['failed']} failed)" if b["failed"] else ""))
        figures["load_avg_end"] = os.getloadavg()
        print(f"load average at the end: {figures['load_avg_end'][0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        engine.dispose()
    finally:
        for rep in reps_open:
            rep.client.close()
        if deploy is not None:
            deploy.close()
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
