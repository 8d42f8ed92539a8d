"""A team deployment end to end: PostgreSQL, two web nodes and two grading workers as real processes.

The cluster is a throwaway one the tests start (tools/pg_cluster.py). Accounts are made with
``vmgrade users add``; the nodes are ``vmgrade serve --workers 0`` and the workers ``vmgrade
worker``, each with its own data dir, so nothing but the database is shared. Uploads go to
both nodes at once; one worker is SIGKILLed while it grades, one web node is restarted, and
still every upload is graded exactly once, readable from either node, by its rep and their
trainer only. Every process is killed at the end, the grading children included.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from conftest import load_script  # noqa: E402
from sqlalchemy import create_engine, select  # noqa: E402
from test_web_support import PASSWORD, ROOT, SAMPLES, WEB_ENGINE, WEB_MODEL, free_port  # noqa: E402

from vmgrade.store.history import Recording  # noqa: E402
from vmgrade.store.team import Job, Upload  # noqa: E402
from vmgrade.web.jobs import MAX_ATTEMPTS  # noqa: E402

LEASE_S = 6  # VMGRADE_JOB_LEASE_S of the workers: a killed worker's job is re-queued after this
SECRET = "team-deploy-test-secret"
web_node = load_script("tools/web_node.py", "web_node_tool")
START_TIMEOUT_S = 90.0  # a node's imports and migration; a worker's model load comes later
ALL_GRADED_TIMEOUT_S = 240.0
RUNNING_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
MODEL_ARGS = ("--model", WEB_MODEL, "--engine", WEB_ENGINE)  # the web tests' fast real model
# (username, role, team): two reps of east and their trainer, one rep of west
ACCOUNTS = (("tom", "trainer", "east"), ("rita", "rep", "east"), ("ravi", "rep", "east"),
            ("sam", "rep", "west"))
# (rep, sample): ravi hands in the very audio rita did; each upload is its own recording
UPLOADS = (("rita", "before_practice.wav"), ("ravi", "before_practice.wav"), ("sam", "followup_phone.wav"),
           ("rita", "call_export_mulaw.wav"), ("ravi", "rambling_phone.wav"), ("sam", "strong_wideband.flac"))


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; a grading child runs in its own session)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Proc:
    """A ``vmgrade`` command run as its own process, its output in ``<log_dir>/<name>.log``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vmgrade", *args], cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Signal it and wait for its end (SIGKILL past ``timeout_s``); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        return self.proc.returncode


class Deployment:
    """The processes of one test; :meth:`close` kills whatever still runs (their children too)."""

    def __init__(self, db_url: str, root: Path):
        self.db_url, self.root = db_url, root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.procs: list[Proc] = []
        self.orphans: set[int] = set()  # children of processes killed on purpose
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("VMGRADE_SECRET") and k != "VMGRADE_DB_URL"}
        self.env.update(VMGRADE_DATA_DIR=str(root / "default-data"), VMGRADE_JOB_LEASE_S=str(LEASE_S),
                        PYTHONUNBUFFERED="1")

    def run(self, *args: str, stdin: str = "", secret: bool = False, timeout_s: float = 120.0):
        env = dict(self.env, VMGRADE_SECRET_KEY=SECRET) if secret else self.env
        return subprocess.run([sys.executable, "-m", "vmgrade", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=timeout_s)

    def web(self, name: str, port: int | None = None, *extra: str, secret: bool = True) -> Proc:
        port = port or free_port()
        data_dir = self.root / name
        env = dict(self.env, VMGRADE_SECRET_KEY=SECRET) if secret else self.env
        proc = Proc(name, ["serve", "--port", str(port), "--data-dir", str(data_dir), "--db", self.db_url,
                           *extra], env, self.logs)
        proc.port, proc.url = port, f"http://127.0.0.1:{port}"
        self.procs.append(proc)
        return proc

    def worker(self, name: str, *extra: str) -> Proc:
        proc = Proc(name, ["worker", "--db", self.db_url, "--data-dir", str(self.root / name),
                           "--threads", "1", "--concurrency", "1", *MODEL_ARGS, *extra], self.env, self.logs)
        self.procs.append(proc)
        return proc

    def wait_serving(self, proc: Proc, timeout_s: float = START_TIMEOUT_S) -> None:
        web_node.wait_serving(proc.url, proc.proc, timeout_s, proc.name, lambda: proc.log_text()[-3000:])

    def kill(self, proc: Proc) -> None:
        """SIGKILL ``proc`` as a crash would; its children (a grading child) are left to end alone."""
        self.orphans.update(_children(proc.pid))
        proc.stop(signal.SIGKILL)

    def logs_tail(self, chars: int = 2500) -> str:
        return "\n".join(f"--- {p.name} (exit {p.proc.poll()}):\n{p.log_text()[-chars:]}" for p in self.procs)

    def close(self) -> None:
        pids = set(self.orphans)
        for proc in self.procs:
            if proc.proc.poll() is None:
                pids.update(_children(proc.pid))
        for proc in self.procs:
            proc.stop(signal.SIGKILL, timeout_s=10)
        for pid in pids:  # our grading children (own sessions): by pid, each one we started
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def deployment(pg_cluster, tmp_path):
    name = f"deploy_{os.getpid()}_{int(time.monotonic() * 1000) % 10**9}"
    deploy = Deployment(pg_cluster.new_database(name), tmp_path)
    try:
        yield deploy
    finally:
        deploy.close()
        print(deploy.logs_tail())  # shown when the test failed
        pg_cluster.drop_database(name)


class Rep:
    """One account logged in on every node: an httpx client per node (cookies of its own)."""

    def __init__(self, username: str, nodes: list[Proc]):
        self.username = username
        self.clients = {node.name: httpx.Client(base_url=node.url, timeout=30) for node in nodes}
        self.tokens = {name: _login(client, username) for name, client in self.clients.items()}

    def upload(self, node: str, path: Path) -> dict:
        with open(path, "rb") as f:
            response = self.clients[node].post(
                "/api/uploads", files={"file": (path.name, f, "application/octet-stream")},
                headers={"X-CSRF-Token": self.tokens[node]})
        assert response.status_code == 202, response.text
        return response.json()

    def get(self, node: str, url: str) -> httpx.Response:
        return self.clients[node].get(url)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _login(client: httpx.Client, username: str) -> str:
    token = client.get("/api/csrf").json()["csrf_token"]
    response = client.post("/api/login", json={"username": username, "password": PASSWORD},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def _jobs(engine) -> dict[int, tuple]:
    """upload id -> (state, worker, attempts, error_code) of every job."""
    with engine.connect() as conn:
        rows = conn.execute(select(Job.upload_id, Job.state, Job.worker, Job.attempts, Job.error_code)).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def _wait(what: str, check, timeout_s: float, deploy: Deployment, pause_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s\n{deploy.logs_tail()}")
        time.sleep(pause_s)


def _finished(rep: Rep, node: Proc, upload_id: int) -> dict | None:
    """The recording as the API shows it once done or failed, else None."""
    body = rep.get(node.name, f"/api/recordings/{upload_id}").json()
    return body if body["state"] in ("done", "failed") else None


def _add_accounts(deploy: Deployment) -> None:
    for username, role, team in ACCOUNTS:
        done = deploy.run("users", "add", "--username", username, "--role", role, "--team", team,
                          "--password-stdin", "--db", deploy.db_url, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_two_nodes_two_workers_grade_every_upload_exactly_once_through_a_crash_and_a_restart(deployment):
    deploy = deployment
    started = time.monotonic()
    _add_accounts(deploy)
    nodes = [deploy.web("web-a", None, "--workers", "0"), deploy.web("web-b", None, "--workers", "0")]
    workers = [deploy.worker("worker-1"), deploy.worker("worker-2")]
    for node in nodes:
        deploy.wait_serving(node)
    engine = create_engine(deploy.db_url)
    reps: dict[str, Rep] = {}
    try:
        for username, _, _ in ACCOUNTS:
            reps[username] = Rep(username, nodes)

        # -- uploads from three reps at once, alternating nodes
        uploaded: dict[int, tuple[str, bytes]] = {}  # upload id -> (rep, bytes)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def upload(i: int, rep: str, sample: str) -> None:
            try:
                body = reps[rep].upload(nodes[i % 2].name, SAMPLES / sample)
                with lock:
                    uploaded[body["id"]] = (rep, (SAMPLES / sample).read_bytes())
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=(i, rep, sample))
                   for i, (rep, sample) in enumerate(UPLOADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(uploaded) == len(UPLOADS)

        # -- a worker dies (SIGKILL) while it grades
        pids = {w.pid: w for w in workers}

        def running_on_a_worker():
            for upload_id, (state, worker, _, _) in _jobs(engine).items():
                if state == "running" and worker:
                    pid = int(worker.split(":")[1])
                    if pid in pids:
                        return upload_id, pids[pid]
            return None

        killed_upload, victim = _wait("a job running", running_on_a_worker, RUNNING_TIMEOUT_S, deploy)
        deploy.kill(victim)
        killed_at = time.monotonic()
        orphans = set(deploy.orphans)

        # -- a web node restarts (same port and data dir); its clients' sessions go on
        node_b = nodes[1]
        # uvicorn shuts down cleanly on SIGTERM, then re-raises it: the exit status is -15
        assert node_b.stop(signal.SIGTERM) in (0, -signal.SIGTERM), node_b.log_text()[-3000:]
        assert "Application shutdown complete" in node_b.log_text()
        restarted = deploy.web("web-b", node_b.port, "--workers", "0")
        deploy.wait_serving(restarted)
        nodes[1] = restarted

        # -- every upload is graded, the killed worker's job by the other one after the lease
        def all_finished():
            jobs = _jobs(engine)
            return jobs if all(state in ("done", "failed") for state, *_ in jobs.values()) else None

        jobs = _wait("every upload graded", all_finished, ALL_GRADED_TIMEOUT_S, deploy, pause_s=0.5)
        graded_s = time.monotonic() - started
        assert {state for state, *_ in jobs.values()} == {"done"}, (jobs, deploy.logs_tail())
        assert jobs[killed_upload][2] == 2, jobs[killed_upload]  # claimed twice: before and after the kill
        survivor = next(w for w in workers if w is not victim)
        assert all(int(worker.split(":")[1]) == survivor.pid for upload_id, (_, worker, *_) in jobs.items()
                   if upload_id == killed_upload)
        with engine.connect() as conn:
            keys = Counter(conn.execute(select(Recording.source_key)).scalars())
            recording_ids = dict(conn.execute(select(Job.upload_id, Job.recording_id)).all())
            shas = dict(conn.execute(select(Upload.id, Upload.sha256)).all())
        assert keys == Counter({f"upload:{upload_id}": 1 for upload_id in uploaded}), keys  # graded once each
        assert None not in recording_ids.values() and len(set(recording_ids.values())) == len(uploaded)
        assert len(set(shas.values())) == len(uploaded) - 1  # rita's and ravi's same audio: one content

        # -- every report, and its audio, from either node; each rep sees only their own
        for upload_id, (owner, audio) in uploaded.items():
            for node in nodes:
                for viewer in ("rita", "ravi", "sam", "tom"):
                    allowed = viewer == owner or (viewer == "tom" and owner in ("rita", "ravi"))
                    got = reps[viewer].get(node.name, f"/api/recordings/{upload_id}")
                    if not allowed:
                        assert got.status_code == 404, (viewer, upload_id, got.text)
                        hidden = reps[viewer].get(node.name, f"/api/recordings/{upload_id}/report")
                        assert hidden.status_code == 404, (viewer, upload_id)
                        continue
                    assert got.status_code == 200 and got.json()["state"] == "done", got.text
                    report = reps[viewer].get(node.name, f"/api/recordings/{upload_id}/report")
                    assert report.status_code == 200, report.text
                    assert report.json()["score"] == got.json()["score"]
                    sound = reps[viewer].get(node.name, f"/recordings/{upload_id}/audio")
                    assert sound.status_code == 200 and hashlib.sha256(sound.content).hexdigest() == \
                        hashlib.sha256(audio).hexdigest()
        for viewer, expected in (("rita", {"rita"}), ("ravi", {"ravi"}), ("sam", {"sam"}),
                                 ("tom", {"rita", "ravi"})):
            for node in nodes:
                listed = reps[viewer].get(node.name, "/api/recordings").json()
                assert {r["rep"] for r in listed} == expected
                assert sorted(r["id"] for r in listed) == sorted(i for i, (o, _) in uploaded.items()
                                                                 if o in expected)

        # the killed worker's grading child does not grade on for long (it ends with its pipe)
        _wait("the killed worker's grading child ends", lambda: not any(_alive(p) for p in orphans),
              60.0, deploy, pause_s=0.5)
        print(f"graded {len(uploaded)} uploads in {graded_s:.0f} s (kill at "
              f"{killed_at - started:.0f} s); job {killed_upload} re-graded by {survivor.name}")
    finally:
        for rep in reps.values():
            rep.close()
        engine.dispose()


@pytest.mark.slow
def test_a_recording_that_kills_its_grading_child_fails_alone_and_the_node_serves_on(deployment):
    """A crash in grading (a decoder's segfault, here SIGKILL of the grading child) costs the job an
    attempt; the third fails it with ``grading_crashed``, while the node serves on throughout."""
    deploy = deployment
    _add_accounts(deploy)
    node = deploy.web("web-grading", None, "--workers", "1", *MODEL_ARGS)
    deploy.wait_serving(node)
    engine = create_engine(deploy.db_url)
    rita = Rep("rita", [node])
    try:
        first = rita.upload(node.name, SAMPLES / "rambling_phone.wav")["id"]
        killed: set[int] = set()

        def kill_its_grading_children():
            """As a recording that crashes the decoder every time: kill each grading child while it
            runs; None until the job is finished."""
            state = _jobs(engine).get(first, ("",))[0]
            if state in ("done", "failed"):
                return state
            if state == "running":
                for pid in _children(node.pid):
                    if pid not in killed and _alive(pid):
                        os.kill(pid, signal.SIGKILL)
                        killed.add(pid)
            return None

        _wait("the job finished", kill_its_grading_children, MAX_ATTEMPTS * RUNNING_TIMEOUT_S, deploy)
        assert rita.get(node.name, "/api/recordings").status_code == 200  # the node served on
        body = _wait("the job failed", lambda: _finished(rita, node, first), 60.0, deploy)
        assert body["state"] == "failed" and body["error_code"] == "grading_crashed", body
        assert _jobs(engine)[first][2] == MAX_ATTEMPTS
        assert node.proc.poll() is None  # the node lives
        # and grades the next upload in a fresh child
        second = rita.upload(node.name, SAMPLES / "before_practice.wav")["id"]
        body = _wait("the next upload graded", lambda: _finished(rita, node, second), 120.0, deploy,
                     pause_s=0.5)
        assert body["state"] == "done", body
        print(f"killed grading child: job failed with {body}")
    finally:
        rita.close()
        engine.dispose()


def test_a_node_on_a_shared_database_without_a_secret_refuses_to_start(pg_db_url, tmp_path):
    deploy = Deployment(pg_db_url, tmp_path)
    try:
        node = deploy.web("no-secret", None, "--workers", "0", secret=False)
        try:
            code = node.proc.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running without a secret:\n{node.log_text()}") from None
        assert code == 2, node.log_text()
        assert "secret_required" in node.log_text()
    finally:
        deploy.close()
