"""The server's fairness and resource limits, and the small concurrency tools that enforce them.

One user, or one anonymous client, must not be able to take what every other user needs:
memory (argon2 hashes), the database pool, the request threads, temp space or the grading
worker. The numbers live in :class:`Limits` (``create_app(limits=...)``); docs/web.md
("Limits") explains each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

# At most this many uploads of one user are read, checked and stored at once: a browser
# sends one at a time, a script's flood of 60 must not fill the request threads and the
# database pool that everybody else's requests need.
UPLOADS_IN_FLIGHT_PER_USER = 2
# Further uploads of the user wait for one of those places, this many at most and this long,
# before a byte of their body is read (a page uploading a few files at once still works);
# beyond that they are answered 429 ``too_many_requests``.
UPLOADS_WAITING_PER_USER = 8
UPLOAD_WAIT_S = 30.0
# Requests without a logged-in session (the login page, /api/csrf, logins, the error pages)
# in progress at once, per client address and in all. Anonymous requests cost the server as
# much as anyone's (a login's argon2 check much more); past these, more are answered 429
# ``too_many_requests`` at the door, so a flood of them (one address or many) cannot queue
# ahead of the logged-in users' requests. An office behind one address logging in at 9:00
# still gets in: a login takes a fraction of a second, and the browser retries.
ANONYMOUS_IN_FLIGHT_PER_ADDRESS = 8
ANONYMOUS_IN_FLIGHT = 32
# Requests holding a database session at once. SQLAlchemy's default pool has 5 + 10
# connections and waits 30 s for one; the web requests take at most this many, which leaves
# connections for the grading worker and the upload gate, so the pool itself never waits.
DB_SLOTS = 10
# How long a request waits for a database slot before it is answered 503 ``busy``.
DB_WAIT_S = 5.0
# A request body that sends nothing for this long is answered 408 ``body_timeout``.
BODY_IDLE_TIMEOUT_S = 30.0
# Nor may a whole body take longer: 20 MB in 10 minutes is 35 KB/s, slower than any real link.
BODY_TOTAL_TIMEOUT_S = 600.0
# A grading job running longer than this is failed with ``job_timeout`` (10 min of audio
# grades in about a minute on a laptop CPU).
JOB_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Limits:
    """The web app's resource limits (see the module constants for why each value).

    Attributes
    ----------
    uploads_in_flight_per_user : int
        Uploads of one user being received at once.
    uploads_waiting_per_user : int
        Further uploads of one user that wait for a place (up to ``upload_wait_s``); more
        answer 429 ``too_many_requests``.
    upload_wait_s : float
    anonymous_in_flight_per_address, anonymous_in_flight : int
        Requests without a logged-in session in progress at once, per client address and in all;
        more answer 429 ``too_many_requests`` before any work.
    db_slots : int
        Requests holding a database session at once.
    db_wait_s : float
        Longest wait for a database slot, seconds; then 503 ``busy``.
    body_idle_timeout_s : float
        Longest silence while a request body is being received, seconds; then 408 ``body_timeout``.
    body_total_timeout_s : float
        Longest time to receive a whole request body, seconds; then 408 ``body_timeout``.
    job_timeout_s : float
        Longest grading of one recording, seconds; then the job fails with ``job_timeout``.
    """

    uploads_in_flight_per_user: int = UPLOADS_IN_FLIGHT_PER_USER
    uploads_waiting_per_user: int = UPLOADS_WAITING_PER_USER
    upload_wait_s: float = UPLOAD_WAIT_S
    anonymous_in_flight_per_address: int = ANONYMOUS_IN_FLIGHT_PER_ADDRESS
    anonymous_in_flight: int = ANONYMOUS_IN_FLIGHT
    db_slots: int = DB_SLOTS
    db_wait_s: float = DB_WAIT_S
    body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S
    body_total_timeout_s: float = BODY_TOTAL_TIMEOUT_S
    job_timeout_s: float = JOB_TIMEOUT_S


class Slots:
    """A counting semaphore whose waiting line is bounded too (thread-safe).

    Parameters
    ----------
    slots : int
        Holders at once.
    max_waiting : int
        Callers allowed to wait for a slot; beyond that :meth:`acquire` fails at once, so
        waiting callers cannot pile up and hold every request thread.
    """

    def __init__(self, slots: int, max_waiting: int):
        self.slots, self.max_waiting = slots, max_waiting
        self._held = self._waiting = 0
        self._cond = threading.Condition()
        self.peak = 0  # most holders seen at once (for tests and logs)

    def acquire(self, timeout_s: float) -> bool:
        """Take a slot, waiting up to ``timeout_s`` seconds; False when none came (or the line is full)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            if self._held >= self.slots:
                if self._waiting >= self.max_waiting:
                    return False
                self._waiting += 1
                try:
                    while self._held >= self.slots:
                        left = deadline - time.monotonic()
                        if left <= 0 or not self._cond.wait(left):
                            if self._held >= self.slots:
                                return False
                finally:
                    self._waiting -= 1
            self._held += 1
            self.peak = max(self.peak, self._held)
            return True

    def release(self) -> None:
        with self._cond:
            self._held -= 1
            self._cond.notify()

    @property
    def held(self) -> int:
        return self._held


class InFlight:
    """Per-key counts of requests in progress, at most ``limit`` per key (thread- and task-safe)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._counts: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def enter(self, key: Hashable) -> bool:
        """Count one more request of ``key``; False (and nothing counted) when it already has ``limit``."""
        with self._lock:
            count = self._counts.get(key, 0)
            if count >= self.limit:
                return False
            self._counts[key] = count + 1
            return True

    def leave(self, key: Hashable) -> None:
        with self._lock:
            count = self._counts.get(key, 0) - 1
            if count > 0:
                self._counts[key] = count
            else:
                self._counts.pop(key, None)  # no entry per idle user: the dict stays small

    def __len__(self) -> int:
        return len(self._counts)


@dataclass
class _Count:
    failures: int
    first_at: float
    locked_until: float = 0.0


class AttemptCounter:
    """Failed attempts per key in a window, with a lockout, kept in memory for at most ``max_keys`` keys.

    The least recently used key is forgotten first, so a flood of made-up keys costs a
    fixed amount of memory (about 200 bytes a key) and no database rows.

    Parameters
    ----------
    limit : int
        Attempts allowed per key within ``window_s``; the next is refused for ``lockout_s``.
    window_s, lockout_s : float
    max_keys : int
    """

    def __init__(self, limit: int, window_s: float, lockout_s: float, max_keys: int):
        self.limit, self.window_s, self.lockout_s, self.max_keys = limit, window_s, lockout_s, max_keys
        self._counts: OrderedDict[Hashable, _Count] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, key: Hashable, now: float | None = None) -> float:
        """Count one attempt of ``key``; seconds it is locked for (0: go ahead, counted)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._counts.get(key)
            if entry is not None and (entry.locked_until and entry.locked_until <= now
                                      or not entry.locked_until and entry.first_at + self.window_s < now):
                entry = None  # the lockout or the window is over: start again
            if entry is None:
                entry = self._counts[key] = _Count(0, now)
            self._counts.move_to_end(key)
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
            if entry.failures >= self.limit:
                return max(entry.locked_until - now, 1.0)
            entry.failures += 1
            if entry.failures >= self.limit:
                entry.locked_until = now + self.lockout_s
            return 0.0

    def forgive(self, key: Hashable) -> None:
        """Take one attempt of ``key`` back (it was a successful login)."""
        with self._lock:
            entry = self._counts.get(key)
            if entry is not None and entry.failures > 0:
                entry.failures -= 1
                if entry.failures < self.limit:
                    entry.locked_until = 0.0

    def __len__(self) -> int:
        return len(self._counts)
