"""Batch throughput: files per minute and peak memory per worker, for 1 and 2 workers (and Ray).

Builds a folder of ``--files`` voicemails (default 40) in a temporary
directory from copies of ``samples/*.wav`` and ``samples/*.flac``, each copy
slightly changed (gain -0.1 to -1 dB, 0-450 ms of leading silence) so every
file has its own content hash and is really graded. Then, for each
configuration, runs ``vmgrade batch`` in a new process into a fresh output
folder (history off) and prints:

- done: files finished (all of them unless ``--minutes`` stopped the run);
- wall: seconds for the run, interpreter start, worker start and model load included;
- files/min: done / wall;
- steady files/min: between the first and the last result (start-up excluded),
  from the ledger files' modification times;
- s/file/worker: mean seconds a worker spent on one file;
- RSS/worker: the highest peak resident memory of any worker process (MB),
  from the ``worker`` facts each result carries.

Configurations: ``local`` with 1 worker (all CPU threads) and 2 workers
(threads split), and ``ray`` with 2 actors of 1 thread when Ray is installed
(``--ray``: a local Ray instance is started). ``--minutes M`` stops each
configuration after M minutes (SIGKILL; the resume design makes that safe)
and rates what finished: on a busy machine 40 files can take hours. Timings
depend on what else the machine runs: say so when you quote them.

Run: ``python bench/batch_throughput.py [--files 40] [--model base] [--workers 1 2] [--no-ray] [--minutes M]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def build_folder(folder: Path, n_files: int) -> tuple[list[Path], float]:
    """``n_files`` varied copies of the samples; returns them and their total duration (s)."""
    sources = sorted([*ROOT.glob("samples/*.wav"), *ROOT.glob("samples/*.flac")])
    folder.mkdir(parents=True, exist_ok=True)
    files, total_s = [], 0.0
    for i in range(n_files):
        src = sources[i % len(sources)]
        samples, sr = sf.read(str(src), dtype="float32", always_2d=False)
        k = i // len(sources)
        gain = 10 ** (-(0.1 + 0.1 * (k % 10)) / 20)
        pad = np.zeros(int(sr * 0.05 * (i % 10)), dtype=np.float32)
        out = np.concatenate([pad, samples * gain])
        dst = folder / f"{i:03d}_{src.stem}.wav"
        sf.write(str(dst), out, sr)
        files.append(dst)
        total_s += len(out) / sr
    return files, total_s


def run(folder: Path, out: Path, model: str, workers: int | None, ray: bool, minutes: float | None,
        flags: tuple[str, ...] = ()) -> dict:
    """``vmgrade batch`` in a new process (a user's cold start), stopped after ``minutes`` if given.

    ``workers`` None: vmgrade's own choice; ``flags``: more options (``--engine ctranslate2``).
    """
    from vmgrade.batch.summary import worker_report

    cmd = [sys.executable, "-m", "vmgrade", "batch", str(folder), "--out", str(out), "--model", model,
           *(["--workers", str(workers)] if workers else []), "--no-history", "--no-progress",
           *(["--ray"] if ray else []), *flags]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=minutes * 60 if minutes else None)
        capped = False
    except subprocess.TimeoutExpired:  # resume makes a hard stop harmless; what finished is in the ledger
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        capped = True
    wall = time.perf_counter() - t0
    ledger = sorted((out / "results").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    records = [json.loads(p.read_text()) for p in ledger]
    span = (ledger[-1].stat().st_mtime_ns - ledger[0].stat().st_mtime_ns) / 1e9 if len(ledger) > 1 else 0
    peaks = worker_report(records)
    return {
        "done": len(records), "failed": sum(1 for r in records if not r["ok"]), "wall_s": wall,
        "capped": capped, "files_per_min": len(records) / wall * 60,
        "steady_files_per_min": (len(ledger) - 1) / span * 60 if span else float("nan"),
        "worker_rss_mb": max(peaks.values(), default=0.0), "workers_seen": len(peaks),
        "mean_grade_s": sum(r["worker"].get("grade_s", 0) for r in records) / max(1, len(records)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--model", default="base")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray configuration")
    parser.add_argument("--keep", metavar="DIR", default=None, help="build and keep everything in DIR")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop each configuration after this long and rate what finished "
                             "(for a busy machine)")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vmgrade-bench-"))
    try:
        folder = base / "calls"
        files, total_s = build_folder(folder, args.files)
        print(f"{len(files)} voicemails, {total_s / 60:.1f} min of audio "
              f"(mean {total_s / len(files):.1f} s); "
              f"model {args.model}; {os.cpu_count()} CPUs\n", flush=True)
        configs = [("local", w, False) for w in args.workers]
        if not args.no_ray:
            try:
                import ray  # noqa: F401

                configs.append(("ray", 2, True))
            except ImportError:
                print("ray not installed: Ray configuration skipped\n")
        header = (f"{'backend':<8}{'workers':>8}{'done':>6}{'wall s':>9}{'files/min':>11}{'steady/min':>12}"
                  f"{'s/file/worker':>15}{'RSS/worker MB':>15}")
        rows = []
        for backend, workers, ray in configs:
            stats = run(folder, base / f"out-{backend}-{workers}", args.model, workers, ray, args.minutes)
            rows.append(f"{backend:<8}{workers:>8}{stats['done']:>6}{stats['wall_s']:>9.0f}"
                        f"{stats['files_per_min']:>11.2f}"
                        f"{stats['steady_files_per_min']:>12.2f}{stats['mean_grade_s']:>15.1f}"
                        f"{stats['worker_rss_mb']:>15.0f}"
                        + (f"   ({stats['failed']} failed)" if stats["failed"] else "")
                        + ("   (stopped at the time limit)" if stats["capped"] else ""))
            print(f"\n{header}\n" + "\n".join(rows), flush=True)
        print("\ns/file/worker: mean seconds one worker spent per file; RSS/worker: highest worker peak")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
