"""vmgrade batch: discovery, manifest, keys, atomic writes; end to end on real speech with tiny.en.

The end-to-end tests grade 8-second cuts of the bundled samples with the small
``tiny.en`` model to stay fast; the CLI ones run ``python -m vmgrade batch`` in
a subprocess (worker processes, SIGKILL, resume), the rubric one grades in
process, the Ray one starts a local Ray instance.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, SAMPLES, write_tone

from vmgrade.batch import (
    BatchError,
    BatchOptions,
    discover,
    read_manifest,
    result_key,
    run_batch,
    settings_of,
)
from vmgrade.fileio import write_atomic
from vmgrade.pipeline import Context, GradeOptions

TEST_MODEL = "tiny.en"
CLIP_S = 8.0


def clip(src: Path, dst: Path, seconds: float = CLIP_S, gain: float = 1.0, start_s: float = 0.0) -> Path:
    """The first ``seconds`` of a real recording (scaled by ``gain``): short, real speech."""
    samples, sr = sf.read(str(src), dtype="float32", always_2d=False)
    part = samples[int(start_s * sr): int((start_s + seconds) * sr)] * gain
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), np.clip(part, -1, 1), sr)
    return dst


def cli(*args: str, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "vmgrade", "batch", *args, "--no-progress"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def run_cli(*args: str, timeout: float = 300, **kw) -> tuple[int, str, str]:
    proc = cli(*args, **kw)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def jsonl(out: Path) -> list[dict]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def csv_rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ledger(out: Path) -> list[Path]:
    return sorted((out / "results").glob("*.json"))


def assert_no_duplicates(out: Path, expected_files: set[str]) -> None:
    files = [r["file"] for r in jsonl(out)]
    assert sorted(files) == sorted(expected_files), files
    assert len(files) == len(set(files))
    rows = [r["file"] for r in csv_rows(out)]
    assert sorted(rows) == sorted(expected_files)
    assert not list(out.rglob("*.tmp"))


def sorted_column(page: Path, header: str) -> list[str] | None:
    """Click ``header`` in the page's files table in headless Chromium; the column's values, or None."""
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium.exists():
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=args)
        try:
            view = browser.new_page()
            view.goto(page.as_uri())
            view.click(f"#files th:text-is('{header}')")
            col = view.eval_on_selector(f"#files th:text-is('{header}')", "th => th.cellIndex")
            return view.eval_on_selector_all(
                "#files tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-v'))")
        finally:
            browser.close()


# --- fast: inputs, manifest, keys, writes ---


def test_discover_walks_folders_globs_and_skips_hidden_and_output(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.wav", "a/b/two.FLAC", "a/b/three.m4a", "a/notes.txt", "a/.hidden.wav", "top.mp3"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / ".cache").mkdir()
    (tmp_path / "a" / ".cache" / "four.wav").write_bytes(b"x")
    (tmp_path / "a" / "out").mkdir()
    (tmp_path / "a" / "out" / "old.wav").write_bytes(b"x")
    found = discover([tmp_path / "a", str(tmp_path / "*.mp3")], exclude=tmp_path / "a" / "out")
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["a/b/three.m4a", "a/b/two.FLAC", "a/one.wav", "top.mp3"]
    # a file named explicitly is taken whatever its extension (it will get an error record)
    assert discover([tmp_path / "a" / "notes.txt"]) == [(tmp_path / "a" / "notes.txt").resolve()]
    assert discover([str(tmp_path / "**" / "*.wav")]) == [(tmp_path / "a" / "one.wav").resolve(),
                                                          (tmp_path / "a" / "out" / "old.wav").resolve()]
    with pytest.raises(BatchError, match="nothing.wav") as info:
        discover([tmp_path / "nothing.wav"])
    assert info.value.code == "input_not_found"


def test_manifest_gives_context_rep_and_time(tmp_path):
    (tmp_path / "calls").mkdir()
    manifest = tmp_path / "context.csv"
    manifest.write_text(
        "File,rep_id,caller_name,company,callback_number,prospect_name,prospect_company,recorded_at\n"
        "calls/a.wav,rep-7,Anna,Acme,415-555-0198,Dana,Globex,2026-11-02T14:05:00Z\n"
        f"{tmp_path / 'b.wav'},rep-8,,,,,,2026-11-03\n"
        "\n"
        "c.wav,,,,,,,\n",
        encoding="utf-8",
    )
    rows = read_manifest(manifest)
    a = rows[(tmp_path / "calls" / "a.wav").resolve()]
    assert a.rep_id == "rep-7" and a.line == 2
    assert a.context == Context("Anna", "Acme", "415-555-0198", "Dana", "Globex")
    assert a.recorded_at.isoformat() == "2026-11-02T14:05:00+00:00"
    b = rows[(tmp_path / "b.wav").resolve()]
    assert b.recorded_at.isoformat() == "2026-11-03T00:00:00+00:00" and b.context == Context()
    c = rows[(tmp_path / "c.wav").resolve()]
    assert c.rep_id is None and c.recorded_at is None


@pytest.mark.parametrize("text, message", [
    ("file,rep_id,recorded_at\na.wav,r1,yesterday\n", r"line 2: recorded_at 'yesterday' is not an ISO 8601"),
    ("file,rep_id\na.wav,r1\nb.wav,r2\n./a.wav,r3\n", r"line 4: ./a.wav is already listed on line 2"),
    ("file,rep_id\n,r1\n", r"line 2: empty file column"),
    ("file,rep,callback_number\na.wav,r1,1\n", r"line 1: unknown column\(s\) rep"),
    ("rep_id\nr1\n", r"line 1: no 'file' column"),
    ("file,rep_id\na.wav,r1,extra\n", r"line 2: 3 cells for 2 columns"),
    ("", r"line 1: empty manifest"),
])
def test_manifest_errors_name_the_line(tmp_path, text, message):
    manifest = tmp_path / "context.csv"
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(BatchError, match=message) as info:
        read_manifest(manifest)
    assert str(manifest) in info.value.message and info.value.code == "manifest_invalid"


def test_bad_manifest_stops_the_cli_before_grading(tmp_path):
    manifest = tmp_path / "context.csv"
    manifest.write_text("file,recorded_at\nx.wav,31/12/2026\n", encoding="utf-8")
    tone = write_tone(tmp_path / "x.wav")
    from vmgrade.cli import main

    assert main(["batch", str(tone), "--manifest", str(manifest), "--out", str(tmp_path / "out"),
                 "--no-history", "--no-progress"]) == 2
    assert not list((tmp_path / "out").glob("results/*.json"))


def test_an_unusable_database_stops_the_cli_before_grading(tmp_path, capsys):
    tone = write_tone(tmp_path / "x.wav")
    from vmgrade.cli import main

    assert main(["batch", str(tone), "--out", str(tmp_path / "out"), "--db", "nosuchdb://nowhere/x",
                 "--model", TEST_MODEL, "--no-progress"]) == 2
    assert "nosuchdb" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("results/*.json"))


def test_result_key_follows_what_changes_a_grade():
    base = settings_of(GradeOptions(model="base"), "base", "r1")
    key = result_key("h" * 64, base)
    assert key == result_key("h" * 64, dict(base)) and len(key) == 64
    assert key != result_key("g" * 64, base)
    assert key != result_key("h" * 64, {**base, "rubric_version": "r2"})
    assert key != result_key("h" * 64, {**base, "model": "tiny.en"})
    assert key != result_key("h" * 64, {**base, "engine": "ctranslate2"})
    assert key != result_key("h" * 64, base, Context(callback_number="415-555-0198"))
    assert key == result_key("h" * 64, base, Context())


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "r.json"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".vmgrade-batch.lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BatchError, match="another vmgrade batch") as info:
            run_batch([write_tone(tmp_path / "t.wav")], BatchOptions(out=out, history=False))
    assert info.value.code == "out_in_use"


def test_index_page_links_every_finished_file_and_escapes_what_it_shows():
    from vmgrade.render.batch_index import render_index_html

    ok = {"report_json": "reports/a-1.json", "report_html": "reports/a-1.html",
          "report": {"score": 71.5, "grade": "C", "duration_s": 8.0,
                     "tips": [{"message": "Say <who> & why"}]}}
    bad = {"report_json": "reports/b-2.json", "report_html": None,
           "report": {"error": {"code": "empty_file", "message": "b.wav: <empty>"}}}
    rows = [{"file": "/calls/a.wav", "rep_id": "r&d", "duplicate_of": None, "record": ok},
            {"file": "/calls/<b>.wav", "rep_id": None, "duplicate_of": None, "record": bad}]
    summary = {"totals": {"files": 3, "graded": 1, "errors": 1, "pending": 1, "duplicates": 0},
               "mean_score": 71.5, "grade_distribution": {"A": 0, "B": 0, "C": 1, "D": 0, "F": 0},
               "top_findings": [{"code": "no_<ask>", "files": 1, "share": 1.0}],
               "reps": {"r&d": {"recordings": 1, "mean_score": 71.5}}}
    page = render_index_html(rows, summary)
    assert page.lower().startswith("<!doctype html>")
    assert re.findall(r'href="([^"]+)"', page) == ["reports/a-1.html", "reports/b-2.json"]
    assert "1 graded, 1 failed, 1 not finished, 0 copies, of 3 files; mean score 71.5." in page
    assert "C&nbsp;1" in page and "(100%)" in page and "<td class=num>71.5</td>" in page
    assert '<td data-v="71.5" class=num>71.5</td>' in page and "<tr class=error>" in page
    for raw in ("<who>", "<empty>", "<b>.wav", "no_<ask>", "r&d"):  # autoescaped
        assert raw not in page
    assert "Say &lt;who&gt; &amp; why" in page and "[empty_file] b.wav: &lt;empty&gt;" in page
    assert "addEventListener('click'" in page and "aria-sort" in page


# --- slow: real grading ---


@pytest.fixture(scope="module")
def tiny_grader():
    from vmgrade.pipeline import Grader

    return Grader(GradeOptions(model=TEST_MODEL))


@pytest.mark.slow
def test_mixed_folder_good_bad_copies_manifest_history_and_rerun(tmp_path):
    calls = tmp_path / "calls"
    good = [clip(SAMPLES / "followup_phone.wav", calls / "anna" / "followup.wav"),
            clip(SAMPLES / "strong_wideband.flac", calls / "ben" / "strong.flac")]
    copy = calls / "ben" / "strong_again.flac"
    copy.write_bytes(good[1].read_bytes())
    head = (SAMPLES / "after_practice.wav").read_bytes()[:6000]
    bad = {
        "truncated": calls / "corrupt.wav",
        "empty_file": calls / "empty.wav",
        "not_audio": calls / "notes.mp3",
        "too_long": calls / "long.wav",
    }
    bad["truncated"].write_bytes(head)
    bad["empty_file"].write_bytes(b"")
    bad["not_audio"].write_text("this is a text file, not audio\n" * 20)
    write_tone(bad["too_long"], seconds=14.0)
    (calls / "README.txt").write_text("not picked up: not an audio extension")
    manifest = tmp_path / "context.csv"
    manifest.write_text(
        "file,rep_id,caller_name,company,callback_number,recorded_at\n"
        "calls/anna/followup.wav,anna,,,,2026-11-02T10:00:00Z\n"
        "calls/ben/strong.flac,ben,,,,2026-11-03T11:00:00+00:00\n"
        "calls/ben/strong_again.flac,ben,,,,2026-11-04\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    db = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    args = (str(calls), "--out", str(out), "--model", TEST_MODEL, "--workers", "2", "--max-duration", "12",
            "--manifest", str(manifest), "--db", db)
    rc, stdout, stderr = run_cli(*args)
    assert rc == 1, stderr  # some files failed
    every = {str(p.resolve()) for p in [*good, copy, *bad.values()]}
    assert_no_duplicates(out, every)

    reports = {r["file"]: r for r in jsonl(out)}
    for path in good:
        r = reports[str(path.resolve())]
        assert "error" not in r and r["grade"] in "ABCDF" and r["model"]["name"] == TEST_MODEL
        assert (out / r["batch"]["report_json"]).is_file()
    for code, path in bad.items():
        r = reports[str(path.resolve())]
        assert r["error"]["code"] == code and str(path) in r["error"]["message"]
        assert path.name in stderr  # each failure is reported as it happens
    # the same bytes under another name: graded once, listed under both names, counted once
    again = reports[str(copy.resolve())]
    assert again["batch"]["duplicate_of"] == str(good[1].resolve())
    assert again["score"] == reports[str(good[1].resolve())]["score"]
    assert len(ledger(out)) == len(good) + len(bad)

    rows = {r["file"]: r for r in csv_rows(out)}
    assert rows[str(good[0].resolve())]["rep_id"] == "anna"
    assert rows[str(good[0].resolve())]["status"] == "ok"
    assert rows[str(bad["empty_file"].resolve())]["error_code"] == "empty_file"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"] == {"files": 7, "graded": 2, "not_graded": 0, "errors": 4, "pending": 0,
                                 "duplicates": 1}
    assert sum(summary["grade_distribution"].values()) == 2
    assert set(summary["reps"]) == {"anna", "ben"} and summary["reps"]["ben"]["recordings"] == 1
    assert summary["errors"] == {"empty_file": 1, "not_audio": 1, "too_long": 1, "truncated": 1}
    assert summary["top_findings"] and "Grades:" in stdout and "anna" in stdout

    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert all((out / link).is_file() for link in links)  # every link (files table, coaching) resolves
    assert len(re.findall(r'class=ix-file><a href="([^"]+)"', index)) == 7
    assert "addEventListener('click'" in index and "aria-sort" in index
    scores = sorted_column(out / "index.html", "Score")
    if scores is not None:  # a browser is available: clicking "Score" sorts numerically, blanks last
        numbers = [v for v in scores if v]
        assert len(numbers) == 3 and scores == sorted(numbers, key=float) + [""] * 4, scores

    from vmgrade.store.history import open_store

    with open_store(db) as store:
        recs = store.recordings()
    assert sorted((r.rep_id, r.recorded_at.date().isoformat()) for r in recs) == [
        ("anna", "2026-11-02"), ("ben", "2026-11-03")]

    # rerun: nothing regraded, outputs identical
    before = (out / "results.jsonl").read_bytes(), (out / "summary.csv").read_bytes()
    rc, stdout, stderr = run_cli(*args)
    assert rc == 1 and "0 to grade" in stderr, stderr
    assert ((out / "results.jsonl").read_bytes(), (out / "summary.csv").read_bytes()) == before
    with open_store(db) as store:
        assert len(store.recordings()) == 2


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_completes_without_duplicates(tmp_path):
    calls = tmp_path / "calls"
    sources = ["followup_phone.wav", "before_practice.wav", "strong_wideband.flac"]
    files = [clip(SAMPLES / name, calls / f"{i}_{Path(name).stem}.wav", seconds=5.0)
             for i, name in enumerate(sources)]
    files.append(clip(SAMPLES / "followup_phone.wav", calls / "3_quieter.wav", seconds=5.0, gain=0.5))
    out = tmp_path / "out"
    args = (str(calls), "--out", str(out), "--model", TEST_MODEL, "--workers", "1", "--no-history")

    proc = cli(*args, start_new_session=True)
    deadline = time.monotonic() + 240
    while not ledger(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, as a power cut would
    proc.communicate()
    first = ledger(out)
    assert 1 <= len(first) < len(files)
    stamps = {p.name: p.stat().st_mtime_ns for p in first}
    torn = (out / "results.jsonl").read_bytes()
    assert torn.count(b"\n") <= len(first)  # appended once per result, never ahead of the ledger

    # Ctrl-C after one more result: exit 130, and the aggregates are whole for what finished
    proc = cli(*args)
    while len(ledger(out)) == len(first) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    finished = {json.loads(p.read_text())["file"] for p in ledger(out)}
    assert len(finished) < len(files), "finished before the interrupt"
    assert_no_duplicates(out, finished)
    for p in ledger(out):
        stamps.setdefault(p.name, p.stat().st_mtime_ns)

    rc, stdout, stderr = run_cli(*args)
    assert rc == 0, stderr
    assert f"{len(stamps)} already graded, {len(files) - len(stamps)} to grade" in stderr
    every = {str(p.resolve()) for p in files}
    assert_no_duplicates(out, every)
    assert all("error" not in r for r in jsonl(out))
    assert len(ledger(out)) == len(files)
    assert {p.name: p.stat().st_mtime_ns for p in ledger(out) if p.name in stamps} == stamps  # not regraded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["graded"] == len(files) and summary["totals"]["pending"] == 0


def _worker_pids(pid: int) -> list[int]:
    """The process-pool workers among ``pid``'s children (Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in children.read_text().split() if children.exists() else []:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            pass
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_killed_mid_file_is_replaced_and_the_file_retried(tmp_path):
    calls = tmp_path / "calls"
    files = [clip(SAMPLES / "followup_phone.wav", calls / "a.wav", seconds=5.0),
             clip(SAMPLES / "before_practice.wav", calls / "b.wav", seconds=5.0)]
    out = tmp_path / "out"
    proc = cli(str(calls), "--out", str(out), "--model", TEST_MODEL, "--workers", "1", "--no-history")
    deadline = time.monotonic() + 240
    while not _worker_pids(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _worker_pids(proc.pid)
    assert victims, "no worker process appeared"
    os.kill(victims[0], signal.SIGKILL)  # as the kernel's OOM killer would
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "a worker process died" in err
    assert_no_duplicates(out, {str(p.resolve()) for p in files})
    assert all("error" not in r for r in jsonl(out))


@pytest.mark.slow
def test_a_different_rubric_regrades_the_same_rubric_skips(tmp_path, tiny_grader):
    from vmgrade.pipeline import Grader
    from vmgrade.scoring import default_rubric_path

    audio = clip(SAMPLES / "followup_phone.wav", tmp_path / "calls" / "a.wav")
    out = tmp_path / "out"
    options = BatchOptions(out=out, history=False, progress=False)
    first = run_batch([audio], options, grader=tiny_grader, echo=lambda _: None)
    assert (first.graded, first.skipped, first.exit_status) == (1, 0, 0)
    again = run_batch([audio], options, grader=tiny_grader, echo=lambda _: None)
    assert (again.graded, again.skipped) == (0, 1)

    text = default_rubric_path().read_text(encoding="utf-8")
    changed, n = re.subn(r"(?m)^weight = (\d+)", lambda m: f"weight = {int(m.group(1)) + 5}", text, count=1)
    assert n == 1
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(changed, encoding="utf-8")
    other = Grader(GradeOptions(model=TEST_MODEL, rubric=str(rubric)), transcriber=tiny_grader.transcriber)
    regraded = run_batch([audio], options, grader=other, echo=lambda _: None)
    assert (regraded.graded, regraded.skipped) == (1, 0)
    assert len(ledger(out)) == 2
    from vmgrade.store.history import rubric_version

    rows = csv_rows(out)  # the aggregates show the current run's grade
    assert len(rows) == 1 and rows[0]["rubric_version"] == rubric_version(rubric) != rubric_version(None)
    versions = {json.loads(p.read_text())["rubric_version"] for p in ledger(out)}
    assert versions == {rubric_version(rubric), rubric_version(None)}


def _loopback_works() -> bool:
    """Whether 127.0.0.1 connects (not in a bare network namespace such as ``unshare -n``)."""
    import socket

    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname(), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _loopback_works(), reason="Ray's processes talk over 127.0.0.1, which is down here")
def test_ray_batch_on_a_local_instance_same_outputs_and_resume(tmp_path):
    ray = pytest.importorskip("ray")
    calls = tmp_path / "calls"
    good = [clip(SAMPLES / "followup_phone.wav", calls / "a.wav", seconds=6.0),
            clip(SAMPLES / "before_practice.wav", calls / "b.wav", seconds=6.0)]
    (calls / "empty.wav").write_bytes(b"")
    out = tmp_path / "out"
    # two actors, two files together on the first: a group, then one file alone
    options = BatchOptions(out=out, workers=2, ray="local", grade=GradeOptions(model=TEST_MODEL),
                           history=False, progress=False, files_at_once=2)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        result = run_batch([calls], options, echo=lambda _: None)
        assert (result.graded, result.failed, result.exit_status) == (3, 1, 1)
        every = {str(p.resolve()) for p in [*good, calls / "empty.wav"]}
        assert_no_duplicates(out, every)
        reports = {r["file"]: r for r in jsonl(out)}
        assert all("error" not in reports[str(p.resolve())] for p in good)
        assert reports[str((calls / "empty.wav").resolve())]["error"]["code"] == "empty_file"
        workers = {json.loads(p.read_text())["worker"].get("pid") for p in ledger(out)}
        assert os.getpid() not in workers  # graded on the actors, written by the driver
        again = run_batch([calls], options, echo=lambda _: None)
        assert (again.graded, again.skipped) == (0, 3)
        assert_no_duplicates(out, every)
    finally:
        ray.shutdown()


def test_default_workers_is_one_per_idle_core_within_free_memory(monkeypatch):
    from vmgrade.asr import threads
    from vmgrade.batch import default_workers

    assert default_workers is threads.default_workers
    assert 1 <= default_workers() <= threads.cpu_cores()
    monkeypatch.setattr(threads, "cpu_cores", lambda: 8)
    pages = {"SC_AVPHYS_PAGES": int(3.5 * threads.WORKER_MEMORY_BYTES) // 4096, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(threads.os, "sysconf", lambda name: pages[name])
    assert default_workers(idle=8.0) == 3  # memory, not cores, is the limit
    pages["SC_AVPHYS_PAGES"] = 100 * threads.WORKER_MEMORY_BYTES // 4096
    assert default_workers(idle=8.0) == 8
    assert default_workers(idle=5.1) == 5  # cores other work keeps busy get no worker
    assert default_workers(idle=0.2) == 1


def test_a_beam_size_changes_the_key_but_the_default_keeps_old_keys():
    from vmgrade.batch.ledger import result_key, settings_of
    from vmgrade.pipeline import GradeOptions

    default = settings_of(GradeOptions(), "base", "v1")
    assert "beam_size" not in default  # keys written before --beam-size existed still match
    assert result_key("h", default) != result_key("h", settings_of(GradeOptions(beam_size=1), "base", "v1"))
    # the filler probe changed openai-whisper's transcripts: its results regrade, ctranslate2's do not
    assert default["fillers"] == "probe"
    assert "fillers" not in settings_of(GradeOptions(engine="ctranslate2"), "base", "v1")
    assert "fillers" not in settings_of(GradeOptions(filler_prompt=False), "base", "v1")
    # keys hold what a default stands for: openai-whisper's as before
    assert default["filler_prompt"] is True
    explicit = settings_of(GradeOptions(filler_prompt=True), "base", "v1")
    assert result_key("h", default) == result_key("h", explicit)


def test_the_fast_engines_new_defaults_regrade_only_what_they_change():
    from vmgrade.batch.ledger import result_key, settings_of
    from vmgrade.pipeline import GradeOptions

    fast = settings_of(GradeOptions(engine="ctranslate2"), "base", "v1")
    assert fast["filler_prompt"] is False and fast["beam_size"] == 1
    # the same as an explicit --beam-size 1 --no-filler-prompt run: same transcripts, reused
    explicit = settings_of(GradeOptions(engine="ctranslate2", beam_size=1, filler_prompt=False), "base", "v1")
    assert result_key("h", fast) == result_key("h", explicit)
    # a key written under the old defaults (beam 5 by omission, filler prompt on) is not reused
    old_default = {k: v for k, v in fast.items() if k != "beam_size"} | {"filler_prompt": True}
    assert result_key("h", fast) != result_key("h", old_default)


def test_workers_hand_freed_memory_back():
    import platform

    from vmgrade import memory

    memory.release_freed_memory()  # never raises, on any libc
    memory.release_freed_memory()
    if platform.libc_ver()[0] == "glibc":
        assert callable(memory._TRIM)
