"""How many threads and grading processes a machine takes: the cores other work leaves idle.

On a busy machine, threads beyond the idle cores do not add speed, they take it away: torch's
and CTranslate2's OpenMP threads meet at a barrier after every small step of decoding, and a
thread whose core is taken by other work holds every other thread there for a scheduler
time slice. With one spinning process on the other core, a grade on both cores took 2.7x its
quiet time (issue 30); on the one idle core it takes 1.2-1.3x (docs/performance.md). So the
default thread count is measured, not assumed: what the CPU counters (``/proc/stat``) show
other processes used since this process started, or over a short sample.

The OpenMP pools keep libgomp's default waiting policy (spin a little, then sleep; set
``OMP_WAIT_POLICY`` to change it): with threads fitted to the idle cores, nobody waits for a
busy core, and the passive policy made the default engine's decoding 60% slower on a quiet
machine (docs/performance.md, "Busy machines").
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# A window shorter than this says little: the counters tick 100 times a second per CPU.
MIN_SAMPLE_S = 0.1
# With no earlier snapshot (or one too old to speak for now), sample this long.
SAMPLE_S = 0.15
# A snapshot older than this no longer tells what the machine does now.
MAX_SNAPSHOT_AGE_S = 30.0
# Idle cores are rounded down unless this close to the next whole one: a core that other work
# uses a third of the time still holds our barriers up (a thread on it waits a time slice).
IDLE_ROUNDING = 0.3
# Peak RSS of one grading process with `base`: 0.98-1.03 GB (bench/goals.py --batch); a margin above it.
WORKER_MEMORY_BYTES = int(1.3 * 2**30)


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CpuSnapshot:
    """The CPU counters at one moment: what the cores this process may use had done, and this process.

    Attributes
    ----------
    wall_s : float
        :func:`time.monotonic` when taken.
    busy_s : float or None
        Seconds the process's allowed cores had spent busy (user, nice, system, interrupts,
        steal) since boot, all cores summed; None where ``/proc/stat`` is missing.
    own_s : float
        CPU seconds (user + system, all threads) of this process and its children: its own work,
        not other work (the audio-decoding child imports while the model loads).
    """

    wall_s: float
    busy_s: float | None
    own_s: float


def snapshot() -> CpuSnapshot:
    """The CPU counters now (cheap: one read of ``/proc/stat``)."""
    return CpuSnapshot(wall_s=time.monotonic(), busy_s=_busy_seconds(), own_s=_family_seconds())


def _family_seconds() -> float:
    """CPU seconds of this process, its reaped children and its live children (``/proc/PID/stat``)."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    me = os.getpid()
    try:
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except (OSError, AttributeError, ValueError):
        return total
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # "pid (comm) state ppid ... utime stime ...": comm may hold spaces, so split after it
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 12 and int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / ticks_per_s
    return total


def _busy_seconds() -> float | None:
    try:
        cpus = os.sched_getaffinity(0)
        lines = PROC_STAT.read_text().splitlines()
        ticks_per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
        fields = [int(v) for v in rest.split()[:8]]
        if len(fields) < 8:
            return None
        busy += fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / ticks_per_s


# Taken when vmgrade.asr is first imported: a CLI's imports (about 1.5 s) are the sample window.
PROCESS_START = snapshot()


def idle_cores(since: CpuSnapshot | None = None) -> float:
    """Of :func:`cpu_cores`, how many other processes leave idle (this process's own work not counted).

    Parameters
    ----------
    since : CpuSnapshot, optional
        Measure from this snapshot to now; default :data:`PROCESS_START`. A snapshot under
        :data:`MIN_SAMPLE_S` or over :data:`MAX_SNAPSHOT_AGE_S` old is replaced by a
        :data:`SAMPLE_S` sample taken now.

    Returns
    -------
    float
        Idle cores, 0 to :func:`cpu_cores`. Without ``/proc/stat`` (macOS, Windows): the cores
        less the 1-minute load average, or all of them where there is none.
    """
    cores = cpu_cores()
    start = since or PROCESS_START
    now = snapshot()
    if now.busy_s is None or start.busy_s is None:
        try:
            return max(0.0, cores - os.getloadavg()[0])
        except (AttributeError, OSError):
            return float(cores)
    if not MIN_SAMPLE_S <= now.wall_s - start.wall_s <= MAX_SNAPSHOT_AGE_S:
        start = now
        time.sleep(SAMPLE_S)
        now = snapshot()
    wall_s = now.wall_s - start.wall_s
    others_s = (now.busy_s - start.busy_s) - (now.own_s - start.own_s)
    return min(float(cores), max(0.0, cores - others_s / wall_s))


def default_threads(idle: float | None = None, processes: int = 1) -> int:
    """Threads for each of ``processes`` grading processes: their share of the idle cores, at least 1.

    Parameters
    ----------
    idle : float, optional
        Idle cores; default :func:`idle_cores` now.
    processes : int
        Grading processes that share them (batch or web workers).
    """
    idle = idle_cores() if idle is None else idle
    return max(1, min(cpu_cores(), int(idle / max(1, processes) + IDLE_ROUNDING)))


def default_workers(idle: float | None = None) -> int:
    """Grading processes this machine holds: one per idle core, as many as the free memory holds.

    One-thread workers beat fewer many-thread ones: on 2 cores, 12 files took 30 s with 2 workers
    x 1 thread and 34 s with 1 worker x 2 threads (bench/batch_throughput.py; docs/batch.md,
    Throughput). Cores that other work keeps busy get no worker: a worker there would wait on them.
    Batch (``--workers``), ``vmgrade serve --workers`` and ``vmgrade worker --concurrency`` default to it.
    """
    try:
        free_bytes = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on Linux: trust the cores
        free_bytes = None
    by_memory = max(1, free_bytes // WORKER_MEMORY_BYTES) if free_bytes else cpu_cores()
    return max(1, min(default_threads(idle), by_memory))


def limit_threads(threads: int) -> None:
    """Cap numpy's BLAS pool and torch's intra-op pool at ``threads`` for the rest of the process.

    OpenBLAS otherwise starts one spinning thread per core, whatever the recogniser was given:
    capped to each worker's share, 2 batch workers x 1 thread on 2 cores graded 30.1 files/min
    instead of 20.9 (bench/web_throughput.py). torch likewise sizes its pool to every core:
    when the speaker check still ran on torch under ctranslate2, its 2-thread passes in batch
    workers of one thread each made a 24-file batch take 53-60 s instead of 35-36 s on the
    Xeon host (docs/performance.md). The recognisers call this when their model loads.
    Where torch is not imported yet, the cap goes to ``OMP_NUM_THREADS``, which torch (and
    any OpenMP library loaded later in this process, or a child it starts) reads at start.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != threads:  # rebuilding the pool costs; only on a change
            torch.set_num_threads(threads)
    else:
        # torch, imported later by a stage of its own (the speaker check under ctranslate2),
        # sizes its pool from this when it starts
        os.environ["OMP_NUM_THREADS"] = str(threads)
