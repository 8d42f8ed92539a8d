"""Threads fitted to the idle cores: measured from the CPU counters with real busy processes."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest

from vmgrade.asr import threads

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "before_practice.wav"
SPIN_LIMIT_S = 120
needs_proc_stat = pytest.mark.skipif(not threads.PROC_STAT.exists() or threads.cpu_cores() < 2,
                                     reason="needs /proc/stat and at least 2 cores")


@contextmanager
def spinning(count: int):
    """``count`` other processes, each spinning one core: not this process's children (whose work
    counts as its own), but orphans handed to init by a shell that exits at once."""
    # each stops by itself within SPIN_LIMIT_S should this test be killed before it kills them
    code = f"import time\nend = time.monotonic() + {SPIN_LIMIT_S}\nwhile time.monotonic() < end: pass"
    spin = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} >/dev/null 2>&1 & echo $!"
    pids = [int(subprocess.run(["sh", "-c", spin], capture_output=True, text=True, check=True).stdout)
            for _ in range(count)]
    try:
        time.sleep(0.5)  # started and on a core
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _idle_over(seconds: float, spin: bool = False) -> float:
    """Idle cores measured over ``seconds``, this process sleeping or spinning meanwhile."""
    mark = threads.snapshot()
    end = time.monotonic() + seconds
    while spin and time.monotonic() < end:
        pass
    time.sleep(max(0.0, end - time.monotonic()))
    return threads.idle_cores(since=mark)


# The assertions compare with the same measure taken just before, so a steady load of other
# work on the test machine moves both alike.
@needs_proc_stat
def test_this_process_own_work_and_its_children_are_not_other_work():
    quiet = _idle_over(0.6)
    assert abs(_idle_over(0.6, spin=True) - quiet) < 0.4  # its own threads busy
    with subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 30\n"
                           "while time.monotonic() < end: pass"]) as child:
        try:
            time.sleep(0.3)
            assert abs(_idle_over(0.6) - quiet) < 0.4  # its child busy
        finally:
            child.kill()


@needs_proc_stat
def test_a_spinning_process_takes_a_core():
    cores = threads.cpu_cores()
    quiet = _idle_over(0.6)
    with spinning(cores - 1):
        busy = _idle_over(0.6)
        assert busy < max(0.0, quiet - 0.6 * (cores - 1)) + 0.45, (quiet, busy)
        assert threads.default_threads(busy) < cores or cores == 1
        # a window too short to tell (just taken), or too old, is sampled anew: the spinners are seen
        assert threads.idle_cores(since=threads.snapshot()) < quiet - 0.3 * (cores - 1) + 0.3
        stale = threads.CpuSnapshot(wall_s=time.monotonic() - 10 * threads.MAX_SNAPSHOT_AGE_S,
                                    busy_s=0.0, own_s=0.0)
        assert threads.idle_cores(since=stale) < quiet - 0.3 * (cores - 1) + 0.3


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
    # within MIN_SAMPLE_S of the last fit (a CLI's one file, just after the load): no sample is
    # taken, busy or not, and torch's pool is still taken back to the count (the speaker check's)
    fitted = transcriber.threads
    torch.set_num_threads(1)
    with spinning(cores - 1):
        transcriber._cpu_mark = threads.snapshot()
        t0 = time.monotonic()
        transcriber._fit_threads()
        assert time.monotonic() - t0 < threads.MIN_SAMPLE_S
    assert transcriber.threads == fitted == torch.get_num_threads()


def _in_new_process(code: str) -> list[str]:
    """What ``code`` prints in a new Python, split into words (no OMP_NUM_THREADS inherited)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(threads.cpu_cores() < 2, reason="needs 2 cores: one thread is torch's own default on 1")
def test_the_cap_holds_for_torch_imported_before_or_after_it():
    cap = "from vmgrade.asr.threads import limit_threads; limit_threads(1)"
    report = ("from threadpoolctl import threadpool_info; "
              "print(torch.get_num_threads(), max(p['num_threads'] for p in threadpool_info() "
              "if p['user_api'] == 'blas'))")
    # the speaker check imports torch after a ctranslate2 model has loaded and set the cap
    assert _in_new_process(f"{cap}; import numpy, torch; {report}") == ["1", "1"]
    # openai-whisper imports torch first; a later cap (the idle cores changed) reaches it too
    assert _in_new_process(f"import numpy, torch; torch.get_num_threads(); {cap}; {report}") == ["1", "1"]


@pytest.mark.slow
def test_a_one_thread_ctranslate2_grade_runs_its_speaker_check_on_one_thread():
    code = ("from vmgrade.pipeline import Grader, GradeOptions\n"
            "grader = Grader(GradeOptions(engine='ctranslate2', threads=1))\n"
            f"report = grader.grade({str(SAMPLE)!r})\n"
            "import torch\n"
            "print(report.error is None, report.timings_s['voices'] > 0, torch.get_num_threads())")
    # a batch worker's grader: one thread, the speaker check's torch pass included
    assert _in_new_process(code) == ["True", "True", "1"]


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


def test_the_speaker_encoder_runs_on_one_thread_and_leaves_torchs_count_as_it_was():
    torch = pytest.importorskip("torch")
    from vmgrade.audio import load
    from vmgrade.calls import speakers, voice_encoder

    audio = load(SAMPLE)
    encoder = voice_encoder.encoder()
    # torch is loaded in this process, so the encoder runs on it
    encoder.embed(np.zeros((1, speakers.WINDOW_FRAMES, speakers.MEL_BANDS), np.float32))
    seen = []
    hook = encoder._torch_model[0].register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runs = speakers.embed_runs(audio.samples, audio.sample_rate, [(0.5, audio.duration_s - 0.5)])
    finally:
        hook.remove()
    assert len(runs.vectors) > 0 and seen == [1]  # its LSTM steps are too small to share
    assert torch.get_num_threads() == 2
    torch.set_num_threads(before)
