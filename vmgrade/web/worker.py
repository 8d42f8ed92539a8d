"""``vmgrade worker``: grading capacity of its own, on any machine that reaches the database.

Runs ``concurrency`` workers (:class:`vmgrade.web.jobs.Worker`), each grading in a child
process that loads the model once, until SIGTERM or SIGINT. Stopping cuts the jobs under way
short and puts them back in the queue at once (their attempt is not counted); a worker that is
killed outright (SIGKILL, a lost machine) stops renewing its leases, and another worker takes
its jobs when the lease expires.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from ..pipeline import GradeOptions
from ..store.blobs import default_storage, open_blobs
from ..store.history import open_store
from .jobs import Worker, Workers, lease_s
from .limits import JOB_TIMEOUT_S

log = logging.getLogger("vmgrade.web")


def run_worker(db_url: str, *, data_dir: Path, options: GradeOptions, concurrency: int = 1,
               storage: str | None = None, job_timeout_s: float = JOB_TIMEOUT_S,
               stop: threading.Event | None = None) -> int:
    """Grade queued jobs of ``db_url`` until signalled (or until ``stop`` is set); the exit status.

    Parameters
    ----------
    db_url : str
        The team database every web node uses.
    data_dir : Path
        This worker's folder for temporary copies (and the files, with ``local`` storage).
    options : GradeOptions
        Model, engine, rubric and threads of each grading child.
    concurrency : int
        Jobs graded at once, each in a child process of its own (each holds a model: ~1 GB).
    storage : str, optional
        ``local`` or ``database``: as the web nodes store files (default by the database).
    job_timeout_s : float
        Longest grading of one job, seconds.
    stop : threading.Event, optional
        Set to stop (tests; a signal does the same).
    """
    from ..store.blobs import PRIVATE_DIR_MODE

    (Path(data_dir) / "tmp").mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    store = open_store(db_url)
    sessions = sessionmaker(store.engine, expire_on_commit=False)
    blobs = open_blobs(storage or default_storage(db_url), data_dir=Path(data_dir), engine=store.engine)
    workers = Workers([Worker(sessions, store, blobs, options, job_timeout_s=job_timeout_s)
                       for _ in range(concurrency)])
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    where = store.engine.url.render_as_string(hide_password=True)
    print(f"vmgrade worker: {concurrency} grading process(es), model {options.model}, files in the "
          f"{blobs.kind} store, jobs from {where} (lease {lease_s():g} s); stop with Ctrl-C or SIGTERM",
          file=sys.stderr, flush=True)
    try:
        workers.start()
        stop.wait()
        print("vmgrade worker: stopping; jobs under way go back to the queue", file=sys.stderr, flush=True)
    finally:
        workers.stop()
        store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
