"""vmgrade batch against hostile inputs and faults (issue 17): one bad file never stops the rest.

Fast: every file here fails before speech recognition (not audio, silent, a
FIFO, a device), so the batch grades in process with a ``Grader`` whose model
is never loaded. The tests run as root on CI, and root reads files and folders
whatever their mode, so "cannot read" and "cannot write" are made by
monkeypatching the call that would fail (``os.scandir``, the writers), not by
``chmod``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vmgrade.batch import BatchError, BatchOptions, discover, read_manifest, run_batch
from vmgrade.batch import run as batch_run
from vmgrade.batch.ledger import MAX_ATTEMPTS
from vmgrade.batch.summary import format_summary
from vmgrade.csvtable import csv_cell, csv_text
from vmgrade.pipeline import GradeOptions, Grader

TEST_MODEL = "tiny.en"
BAD_NAME = os.fsdecode(b"bad\xff.wav")  # not UTF-8: a lone surrogate in Python
SHOWN_BAD_NAME = "bad\\xff.wav"  # how every output shows it


@pytest.fixture
def lazy_grader() -> Grader:
    """A Grader whose model is never loaded: every file in these tests fails before ASR."""
    return Grader(GradeOptions(model=TEST_MODEL))


def batch(inputs, out: Path, grader: Grader, **kw):
    return run_batch([str(i) for i in inputs], BatchOptions(out=out, history=False, progress=False, **kw),
                     echo=lambda line: None, grader=grader)


def jsonl(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def csv_rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def finishes(fn, timeout_s: float = 30.0):
    """``fn()``'s result, or fail if it has not returned within ``timeout_s`` (a hang, not a slow run).

    A daemon thread: a hung call (a FIFO's open, reading /dev/zero) cannot keep pytest from exiting.
    """
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"still running after {timeout_s} s: it hangs"
    if "error" in box:
        raise box["error"]
    return box["value"]


def silent_wav(path: Path) -> Path:
    sf.write(str(path), np.zeros(16000, dtype=np.float32), 16000)
    return path


# --- High 3: a name that is not UTF-8; deterministic failures are final ---


def test_a_name_that_is_not_utf8_is_recorded_and_blocks_nothing(tmp_path, lazy_grader):
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / BAD_NAME).write_bytes(b"not audio at all")
    (calls / "z-after.wav").write_bytes(b"not audio either")  # sorted after the bad name
    out = tmp_path / "out"

    result = batch([calls], out, lazy_grader)  # before: UnicodeEncodeError writing the ledger

    assert (result.files, result.graded, result.failed) == (2, 2, 2)
    lines = {Path(r["file"]).name: r for r in jsonl(out)}
    assert set(lines) == {SHOWN_BAD_NAME, "z-after.wav"}
    assert lines[SHOWN_BAD_NAME]["error"]["code"] == "not_audio"
    assert SHOWN_BAD_NAME in lines[SHOWN_BAD_NAME]["error"]["message"]
    assert {Path(r["file"]).name for r in csv_rows(out)} == {SHOWN_BAD_NAME, "z-after.wav"}
    assert SHOWN_BAD_NAME in (out / "index.html").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["errors"] == {"not_audio": 2}
    ledger = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "results").glob("*.json")]
    assert sorted(Path(r["file"]).name for r in ledger) == [SHOWN_BAD_NAME, "z-after.wav"]

    again = batch([calls], out, lazy_grader)  # resumes: a deterministic failure is final
    assert (again.graded, again.skipped, again.failed) == (0, 2, 2)
    assert len(jsonl(out)) == 2


def test_an_internal_error_is_retried_by_a_few_runs_then_final(tmp_path, lazy_grader, monkeypatch):
    f = tmp_path / "a.wav"
    f.write_bytes(b"whatever")

    def broken(path, context=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(lazy_grader, "grade", broken)
    out = tmp_path / "out"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = batch([f], out, lazy_grader)
        assert result.graded == 1, attempt  # retried: the bug may be gone
        (record,) = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
        assert record["report"]["error"]["code"] == "internal_error"
        assert record["attempts"] == attempt and record["retryable"] == (attempt < MAX_ATTEMPTS)
    final = batch([f], out, lazy_grader)  # before: graded again on every run, forever
    assert (final.graded, final.skipped, final.failed) == (0, 1, 1)


# --- Medium 5: FIFOs and devices are never opened ---


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_and_devices_are_recorded_not_a_file_without_opening(tmp_path, lazy_grader):
    calls = tmp_path / "calls"
    calls.mkdir()
    os.mkfifo(calls / "pipe.wav")  # found while walking the folder
    os.mkfifo(tmp_path / "named.fifo")  # named directly
    silent_wav(calls / "quiet.wav")
    inputs = [calls, tmp_path / "named.fifo"] + (["/dev/zero"] if os.path.exists("/dev/zero") else [])
    out = tmp_path / "out"

    result = finishes(lambda: batch(inputs, out, lazy_grader))  # before: blocked on the FIFO's open

    codes = {Path(r["file"]).name: r["error"]["code"] for r in jsonl(out)}
    assert codes.pop("quiet.wav") == "silent"  # the regular file beside them is graded
    assert set(codes.values()) == {"not_a_file"} and {"pipe.wav", "named.fifo"} <= set(codes)
    # the silent file is no speech: counted apart as not graded, not as a failure
    assert result.failed == len(inputs) and result.summary["not_graded"] == {"no_speech": 1}
    again = finishes(lambda: batch(inputs, out, lazy_grader))
    assert again.graded == 0  # final, as for any file that cannot be graded


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_content_hash_refuses_a_fifo_without_blocking(tmp_path):
    from vmgrade.fileio import content_hash

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError) as info:
        finishes(lambda: content_hash(tmp_path / "pipe"))
    assert info.value.errno == errno.EINVAL
    if os.path.exists("/dev/zero"):
        with pytest.raises(OSError):
            finishes(lambda: content_hash("/dev/zero"))


# --- Medium 8: a file replaced after it was hashed ---


def test_a_file_replaced_after_hashing_is_keyed_by_the_bytes_graded(tmp_path, lazy_grader, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()
    old = silent_wav(calls / "a.wav").read_bytes()
    (calls / "b.wav").write_bytes(old)  # a copy of a.wav's first bytes: planned as its duplicate
    new = b"not audio: the replacement"
    plan = batch_run._plan

    def plan_then_replace(*args, **kwargs):
        planned = plan(*args, **kwargs)
        (calls / "a.tmp").write_bytes(new)
        os.replace(calls / "a.tmp", calls / "a.wav")  # replaced between hashing and grading
        return planned

    monkeypatch.setattr(batch_run, "_plan", plan_then_replace)
    out = tmp_path / "out"
    result = batch([calls], out, lazy_grader)

    lines = {Path(r["file"]).name: r for r in jsonl(out)}
    a, b = lines["a.wav"], lines["b.wav"]
    # before: a.wav's not_audio stored under the silent bytes' hash, and b.wav (still silent) its copy
    assert a["error"]["code"] == "not_audio" and a["batch"]["content_hash"] == hashlib.sha256(new).hexdigest()
    assert b["error"]["code"] == "silent" and b["batch"]["content_hash"] == hashlib.sha256(old).hexdigest()
    assert b["batch"]["duplicate_of"] is None and a["batch"]["key"] != b["batch"]["key"]
    # the silent bytes are no speech: not graded, counted apart from the failure
    assert (result.files, result.failed) == (2, 1) and result.summary["not_graded"] == {"no_speech": 1}
    for record in (json.loads(p.read_text()) for p in (out / "results").glob("*.json")):
        code = record["report"]["error"]["code"]
        assert record["content_hash"] == hashlib.sha256(new if code == "not_audio" else old).hexdigest()

    monkeypatch.setattr(batch_run, "_plan", plan)
    (calls / "c.wav").write_bytes(old)  # a later copy of the old bytes reuses the right result
    again = batch([calls], out, lazy_grader)
    assert again.graded == 0
    assert {Path(r["file"]).name: r["error"]["code"] for r in jsonl(out)} == {
        "a.wav": "not_audio", "b.wav": "silent", "c.wav": "silent"}


def test_a_file_that_keeps_changing_while_graded_is_retried_next_run(tmp_path, lazy_grader, monkeypatch):
    f = silent_wav(tmp_path / "a.wav")
    grade = lazy_grader.grade

    def grade_and_touch(path, context=None):
        report = grade(path, context)
        with open(path, "ab") as fh:  # the file is being written while it is graded
            fh.write(b"\0")
        return report

    monkeypatch.setattr(lazy_grader, "grade", grade_and_touch)
    out = tmp_path / "out"
    batch([f], out, lazy_grader)
    (line,) = jsonl(out)
    assert line["error"]["code"] == "file_changed"
    (record,) = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    assert record["retryable"]


# --- Medium 10: an unreadable folder; an output folder that cannot be written ---


def test_an_unreadable_folder_is_a_record_and_in_the_summary(tmp_path, lazy_grader, monkeypatch):
    calls = tmp_path / "calls"
    (calls / "locked").mkdir(parents=True)
    (calls / "locked" / "hidden.wav").write_bytes(b"never listed")
    (calls / "open.wav").write_bytes(b"not audio")
    scandir = os.scandir

    def refusing(path="."):  # root reads a mode-000 folder anyway: refuse it here instead
        if Path(os.fsdecode(path)) == calls / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    unreadable: list = []
    assert discover([calls], unreadable=unreadable) == [calls / "open.wav"]
    assert [(p, type(e)) for p, e in unreadable] == [(calls / "locked", PermissionError)]

    out = tmp_path / "out"
    result = batch([calls], out, lazy_grader)  # before: the folder vanished without a word

    codes = {r["file"]: r["error"]["code"] for r in jsonl(out)}
    assert codes == {str(calls / "locked"): "unreadable", str(calls / "open.wav"): "not_audio"}
    assert result.summary["unreadable_folders"] == [str(calls / "locked")]
    assert result.summary["errors"] == {"not_audio": 1, "unreadable": 1} and result.exit_status == 1
    assert "Not read: 1 folder(s)" in format_summary(result.summary)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "locked" in index and str(tmp_path) not in index  # named relative to the inputs, never absolute


@pytest.mark.parametrize("where, err, said", [
    ("write_atomic", errno.ENOSPC, "the disk is full"),
    ("append_synced", errno.EROFS, "the file system is read-only"),
])
def test_an_output_folder_that_cannot_be_written_exits_2_with_a_message(tmp_path, monkeypatch, capsys,
                                                                        where, err, said):
    from vmgrade.cli import main

    (tmp_path / "a.wav").write_bytes(b"not audio")
    os.mkfifo(tmp_path / "p.wav")  # recorded while planning: the first append comes without a worker
    real = getattr(batch_run, where)
    calls = {"n": 0}

    def failing(path, data):
        if where == "write_atomic" and calls["n"] < 1:  # the first rewrite goes through
            calls["n"] += 1
            return real(path, data)
        raise OSError(err, os.strerror(err), str(path))

    monkeypatch.setattr(batch_run, where, failing)
    code = main(["batch", str(tmp_path / "a.wav"), str(tmp_path / "p.wav"), "--out", str(tmp_path / "out"),
                 "--model", TEST_MODEL, "--no-history", "--no-progress", "--workers", "1"])
    err_text = capsys.readouterr().err
    assert code == 2, err_text  # before: a traceback and exit 1 ("a file failed")
    assert "[out_unwritable]" in err_text and said in err_text and "Traceback" not in err_text


def test_an_output_folder_that_cannot_be_made_exits_2(tmp_path, capsys):
    from vmgrade.cli import main

    (tmp_path / "a.wav").write_bytes(b"not audio")
    (tmp_path / "file").write_text("a file, not a folder")
    code = main(["batch", str(tmp_path / "a.wav"), "--out", str(tmp_path / "file" / "out"),
                 "--model", TEST_MODEL, "--no-history", "--no-progress"])
    assert code == 2 and "[out_unwritable]" in capsys.readouterr().err


# --- Low: manifests that are no CSV for us; formulas in the CSV we write ---


@pytest.mark.parametrize("text, message", [
    ("file,rep_id\na.wav," + "x" * 5000 + "\n", r"line 2: cell 2 is 5000 characters long"),
    ("file,rep_id\na.wav," + "x" * 200_000 + "\n", r"line 2: not readable as CSV"),  # over csv's own limit
    ('file,rep_id\na.wav,"two\nlines"\nb.wav,r2\n', r"line 2: cell 2 holds a line break"),
    ("file,recorded_at\na.wav,0001-01-01T00:00+01:00\n", r"line 2: recorded_at .* not between 1970 and 2199"),
    ("file,recorded_at\na.wav,9999-12-31\n", r"line 2: recorded_at '9999-12-31' is not between"),
    # red-team round 3: tracebacks from the path of the file column
    ("file\n~no_such_user_vmgrade/a.wav\n", r"line 2: file '~no_such_user_vmgrade/a.wav' cannot be used"),
    ("file\na\x00b.wav\n", r"line 2: .*(NUL|null|cannot be used)"),
    ("file\nloop/a.wav\n", r"line 2: file 'loop/a.wav' cannot be used"),
])
def test_hostile_manifests_are_manifest_invalid(tmp_path, text, message):
    manifest = tmp_path / "context.csv"
    manifest.write_text(text, encoding="utf-8")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link to itself
    with pytest.raises(BatchError, match=message) as info:  # before: a _csv.Error traceback, or a date
        read_manifest(manifest)                             # every history write then failed on
    assert info.value.code == "manifest_invalid"


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    cells = ("=1+1", "+1 415", "-2", "@SUM(A1)", "\tx", "\rx", "ok", 71.5, -3, None)
    assert [csv_cell(v) for v in cells] == [
        "'=1+1", "'+1 415", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "ok", 71.5, -3, None]
    assert csv_text([[BAD_NAME, "=cmd"]]) == "bad\\xff.wav,'=cmd\r\n"


def test_summary_csv_neutralises_formulas_from_the_manifest(tmp_path, lazy_grader):
    (tmp_path / "a.wav").write_bytes(b"not audio")
    manifest = tmp_path / "context.csv"
    manifest.write_text('file,rep_id,caller_name,company\na.wav,@SUM(1),"=HYPERLINK(""http://x"")",-2+3\n',
                        encoding="utf-8")
    out = tmp_path / "out"
    batch([tmp_path / "a.wav"], out, lazy_grader, manifest=manifest)
    (row,) = csv_rows(out)
    assert (row["rep_id"], row["caller_name"], row["company"]) == (
        "'@SUM(1)", "'=HYPERLINK(\"http://x\")", "'-2+3")
    (line,) = jsonl(out)  # the JSON keeps the values as given
    assert line["batch"]["rep_id"] == "@SUM(1)"


# --- Issue 29 (round 3): symbolic links, a foreign --out, a full disk ---


def output_text(out: Path) -> str:
    """Every file the batch wrote, as one text (to look for what must not be in any of them)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(out.rglob("*")) if p.is_file())


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loops_end_in_globs_and_folder_walks(tmp_path, lazy_grader):
    calls = tmp_path / "calls"
    (calls / "sub").mkdir(parents=True)
    (calls / "one.wav").write_bytes(b"not audio")
    (calls / "sub" / "two.wav").write_bytes(b"not audio")
    os.symlink(calls, calls / "loop")  # a folder that holds itself
    os.symlink(calls, calls / "sub" / "back")  # two ways back up: glob.glob followed 2^40 paths
    os.symlink(calls / "b.wav", calls / "a.wav")  # a -> b -> a
    os.symlink(calls / "a.wav", calls / "b.wav")
    expected = [calls / "a.wav", calls / "b.wav", calls / "one.wav", calls / "sub" / "two.wav"]

    for pattern in (str(calls / "**" / "*.wav"), str(calls / "**"), str(calls)):
        found = finishes(lambda pattern=pattern: discover([pattern]), timeout_s=10)  # before: never returned
        assert found == expected, pattern  # each real file once, the loops as themselves

    out = tmp_path / "out"
    result = finishes(lambda: batch([str(calls / "**" / "*.wav")], out, lazy_grader), timeout_s=30)
    codes = {Path(r["file"]).relative_to(calls).as_posix(): r["error"]["code"] for r in jsonl(out)}
    assert codes == {"a.wav": "symlink_loop", "b.wav": "symlink_loop", "one.wav": "not_audio",
                     "sub/two.wav": "not_audio"}
    assert result.files == 4


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_links_out_of_the_input_folder_are_recorded_not_read(tmp_path, lazy_grader):
    secret = tmp_path / "private"
    secret.mkdir()
    target = secret / "secret-target.wav"
    sf.write(str(target), np.zeros(8000, dtype=np.float32), 8000)  # other bytes than mine.wav
    target_hash = hashlib.sha256(target.read_bytes()).hexdigest()
    calls = tmp_path / "calls"
    calls.mkdir()
    silent_wav(calls / "mine.wav")
    os.symlink(target, calls / "leak.wav")  # a file link out of the folder
    os.symlink(secret, calls / "elsewhere")  # a folder link out of it
    os.symlink(calls / "mine.wav", calls / "alias.wav")  # a link inside: fine, and graded once

    for inputs in ([calls], [str(calls / "**" / "*.wav")]):
        out = tmp_path / f"out-{len(str(inputs[0]))}"
        result = batch(inputs, out, lazy_grader)  # before: secret-target.wav was graded, its hash kept
        codes = {Path(r["file"]).name: r["error"]["code"] for r in jsonl(out)}
        assert codes == {"mine.wav": "silent", "leak.wav": "outside_folder", "elsewhere": "outside_folder"}
        text = output_text(out)
        assert "secret-target" not in text and str(secret) not in text and target_hash not in text
        assert result.summary["errors"] == {"outside_folder": 2} and result.exit_status == 1
        message = next(r for r in jsonl(out) if Path(r["file"]).name == "leak.wav")["error"]["message"]
        assert "leak.wav" in message and "--follow-links" in message

    followed = batch([calls], tmp_path / "followed", lazy_grader, follow_links=True)
    assert target_hash in output_text(tmp_path / "followed")  # asked for: the link is followed
    assert followed.files == 2  # mine.wav (alias.wav is the same real file) and secret-target.wav


def test_an_out_folder_that_is_no_batch_output_is_refused(tmp_path, lazy_grader, capsys):
    from vmgrade.cli import main

    (tmp_path / "a.wav").write_bytes(b"not audio")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>my own site</h1>", encoding="utf-8")
    code = main(["batch", str(tmp_path / "a.wav"), "--out", str(site), "--model", TEST_MODEL,
                 "--no-history", "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "[out_not_batch]" in err and "index.html" in err and "Traceback" not in err
    assert (site / "index.html").read_text(encoding="utf-8") == "<h1>my own site</h1>"  # before: overwritten
    assert sorted(p.name for p in site.iterdir()) == ["index.html"]

    empty = tmp_path / "empty"
    empty.mkdir()
    first = batch([tmp_path / "a.wav"], empty, lazy_grader)  # an empty folder is fine
    again = batch([tmp_path / "a.wav"], empty, lazy_grader)  # and then it is a batch output: resumed
    assert (first.graded, again.graded, again.skipped) == (1, 0, 1)


def tear_on(name: str, monkeypatch, after_writes: int = 0) -> dict:
    """Make ``os.write`` to a file called ``name`` write half its bytes and fail with ENOSPC (a disk
    that fills mid-line) after ``after_writes`` whole writes; from then on every write_atomic fails too."""
    real_write, real_atomic = os.write, batch_run.write_atomic
    state = {"writes": 0, "full": False}

    def write(fd: int, data) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(name):
            return real_write(fd, data)
        if state["full"] or state["writes"] >= after_writes:
            state["full"] = True
            real_write(fd, bytes(data[: max(1, len(data) // 2)]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        state["writes"] += 1
        return real_write(fd, data)

    def atomic(path, data):
        if state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_atomic(path, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(batch_run, "write_atomic", atomic)
    return state


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_append_whole_leaves_no_torn_line_when_the_disk_fills(tmp_path, monkeypatch):
    from vmgrade.fileio import append_whole

    path = tmp_path / "results.jsonl"
    append_whole(path, '{"n": 1}\n')
    tear_on("results.jsonl", monkeypatch)
    with pytest.raises(OSError) as info:
        append_whole(path, '{"n": 2, "padding": "' + "x" * 100 + '"}\n')
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b'{"n": 1}\n'  # before: '{"n": 1}\n{"n": 2, "padd' stayed


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_disk_that_fills_mid_line_leaves_results_jsonl_whole_and_exits_2(tmp_path, monkeypatch, capsys):
    from vmgrade.cli import main

    calls = tmp_path / "calls"
    calls.mkdir()
    for name in ("p1.wav", "p2.wav", "p3.wav"):  # recorded while planning: appended one by one
        os.mkfifo(calls / name)
    out = tmp_path / "out"
    state = tear_on("results.jsonl", monkeypatch, after_writes=1)  # the second line tears

    code = main(["batch", str(calls), "--out", str(out), "--model", TEST_MODEL, "--no-history",
                 "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert state["full"], "the fault was never hit"
    assert code == 2 and "[out_unwritable]" in err and "the disk is full" in err and "Traceback" not in err
    text = (out / "results.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # before: the last line was cut mid-JSON
    assert [Path(r["file"]).name for r in lines] == ["p1.wav"]
    assert lines[0]["error"]["code"] == "not_a_file"

    monkeypatch.undo()  # space again: the rerun resumes and finishes
    again = batch([calls], out, Grader(GradeOptions(model=TEST_MODEL)))
    assert (again.skipped, again.files) == (2, 3)  # p1 and p2 reached the ledger before the disk filled
    assert len(jsonl(out)) == 3


def test_a_file_deeper_than_the_path_limit_is_reported_not_lost(tmp_path):
    """Red-team round 3: a wav below folders deeper than PATH_MAX vanished without a word."""
    from vmgrade.batch.inputs import discover

    calls = tmp_path / "calls"
    calls.mkdir()
    silent_wav(calls / "near.wav")
    deep, here = calls, os.getcwd()
    os.chdir(calls)  # build the chain relative to each level: the full path is itself too long
    try:
        for _ in range(20):
            name = "d" * 250
            os.mkdir(name)
            os.chdir(name)
        silent_wav(Path("deep.wav"))
    finally:
        os.chdir(here)
    unreadable: list = []
    found = discover([calls], unreadable=unreadable)
    assert [p.name for p in found] == ["near.wav"]
    assert unreadable and all(exc.errno == errno.ENAMETOOLONG for _, exc in unreadable)
    assert deep in unreadable[0][0].parents
