"""Wait for a ``vmgrade serve`` node to answer: for the tests and benchmarks that start real nodes.

Used by tests/test_team_deploy.py and bench/web_throughput.py (loaded as a script, as
``tools/pg_cluster.py`` is).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx

POLL_S = 0.25


def wait_serving(url: str, proc: subprocess.Popen, timeout_s: float, name: str,
                 log_tail: Callable[[], str]) -> None:
    """Return once ``url`` answers ``GET /api/csrf`` with 200.

    Raises
    ------
    RuntimeError
        ``proc`` exited first, or ``timeout_s`` passed; the message names ``name`` and ends with
        ``log_tail()``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log_tail()}")
        try:
            if httpx.get(f"{url}/api/csrf", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not serving after {timeout_s:g} s:\n{log_tail()}")
        time.sleep(POLL_S)
