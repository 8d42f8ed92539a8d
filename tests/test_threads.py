"""Threads fitted to the idle cores: measured from the CPU counters with real busy processes."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from vmgrade.asr import threads

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "before_practice.wav"
needs_proc_stat = pytest.mark.skipif(not threads.PROC_STAT.exists() or threads.cpu_cores() < 2,
                                     reason="needs /proc/stat and at least 2 cores")


@contextmanager
def spinning(count: int):
    """``count`` other processes, each spinning one core: not this process's children (whose work
    counts as its own), but orphans handed to init by a shell that exits at once."""
    spin = f"{shlex.quote(sys.executable)} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    pids = [int(subprocess.run(["sh", "-c", spin], capture_output=True, text=True, check=True).stdout)
            for _ in range(count)]
    try:
        time.sleep(0.5)  # started and on a core
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


@needs_proc_stat
def test_this_process_children_count_as_its_own_work():
    with subprocess.Popen([sys.executable, "-c", "while True: pass"]) as child:
        try:
            time.sleep(0.3)
            mark = threads.snapshot()
            time.sleep(0.5)
            assert threads.idle_cores(since=mark) > threads.cpu_cores() - 0.5
        finally:
            child.kill()


def _spin_here(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@needs_proc_stat
def test_a_spinning_process_takes_a_core_and_this_process_own_work_does_not():
    cores = threads.cpu_cores()
    with spinning(cores - 1):
        mark = threads.snapshot()
        _spin_here(0.6)  # this process busy too: not "other work"
        idle = threads.idle_cores(since=mark)
        assert idle < 1.6, idle  # cores-1 taken by the spinners, one left (this process's own)
        assert threads.default_threads(idle) == 1
    time.sleep(0.3)
    mark = threads.snapshot()
    _spin_here(0.6)
    idle = threads.idle_cores(since=mark)
    assert idle > cores - 0.7, idle  # quiet again: this process's own spinning is not counted


@needs_proc_stat
def test_a_short_or_stale_window_is_replaced_by_a_fresh_sample():
    with spinning(threads.cpu_cores() - 1):
        # just taken: too short to tell; sampled anew, and the spinners are seen
        assert threads.idle_cores(since=threads.snapshot()) < 1.6
        stale = threads.CpuSnapshot(wall_s=time.monotonic() - 10 * threads.MAX_SNAPSHOT_AGE_S,
                                    busy_s=0.0, own_s=0.0)
        assert threads.idle_cores(since=stale) < 1.6


def test_default_threads_rounds_idle_cores_down_unless_nearly_whole():
    cores = threads.cpu_cores()
    assert threads.default_threads(0.0) == 1  # never none
    assert threads.default_threads(1.0) == 1
    assert threads.default_threads(1.6) == 1  # a core used 40% by other work would hold barriers up
    assert threads.default_threads(1.75) == min(2, cores)
    assert threads.default_threads(float(cores)) == cores
    assert threads.default_threads(float(cores) + 5) == cores
    assert threads.default_threads(2.0, processes=2) == 1  # shared among workers
    assert threads.default_threads(8.0, processes=2) == min(4, cores)


@pytest.mark.slow
@needs_proc_stat
def test_the_model_follows_the_idle_cores_between_files(transcriber):
    import torch

    from vmgrade.audio import load

    audio = load(SAMPLE)
    transcriber.transcribe(audio)  # loads the model
    cores = threads.cpu_cores()
    with spinning(cores - 1):
        transcriber._cpu_mark = threads.snapshot()
        time.sleep(0.5)
        transcriber._fit_threads()
        assert transcriber.threads == 1 == torch.get_num_threads()
    time.sleep(0.3)
    transcriber._cpu_mark = threads.snapshot()
    time.sleep(0.5)
    transcriber._fit_threads()
    assert transcriber.threads == torch.get_num_threads() >= cores - 1


@pytest.mark.slow
@needs_proc_stat
def test_a_cli_grade_beside_a_spinning_process_runs_on_the_idle_cores(tmp_path):
    import json

    with spinning(threads.cpu_cores() - 1):
        out = subprocess.run([sys.executable, "-m", "vmgrade", "grade", str(SAMPLE), "--format", "json",
                              "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    report = json.loads(out.stdout)
    assert report["model"]["threads"] == 1, out.stderr
    assert "warning" not in out.stderr  # the default fits itself: nothing to warn about


def test_web_nodes_and_workers_size_themselves_to_the_idle_cores(monkeypatch):
    from vmgrade.cli import _sized_to_machine, build_parser

    monkeypatch.setattr(threads, "cpu_cores", lambda: 8)
    monkeypatch.setattr(threads, "idle_cores", lambda since=None: 6.0)  # two cores busy elsewhere
    pages = {"SC_AVPHYS_PAGES": 100 * threads.WORKER_MEMORY_BYTES // 4096, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(threads.os, "sysconf", lambda name: pages[name])
    parser = build_parser()
    for argv, attribute in ((["serve"], "workers"), (["worker"], "concurrency")):
        args = parser.parse_args(argv)
        processes, options = _sized_to_machine(args, getattr(args, attribute))
        assert (processes, options.threads) == (6, 1)  # a process per idle core, one thread each
        args = parser.parse_args([*argv, f"--{attribute}", "2"])
        processes, options = _sized_to_machine(args, getattr(args, attribute))
        assert (processes, options.threads) == (2, 3)  # their share of the idle cores
        args = parser.parse_args([*argv, f"--{attribute}", "2", "--threads", "4"])
        assert _sized_to_machine(args, getattr(args, attribute))[1].threads == 4  # as asked
    pages["SC_AVPHYS_PAGES"] = int(2.5 * threads.WORKER_MEMORY_BYTES) // 4096
    args = parser.parse_args(["serve"])
    assert _sized_to_machine(args, args.workers)[0] == 2  # memory holds two models
    args = parser.parse_args(["serve", "--workers", "0"])
    assert _sized_to_machine(args, args.workers)[0] == 0  # a web node only
