"""Run a function in a long-lived child process: a native crash or a runaway cost is one call's error.

The decoders behind :func:`vmgrade.audio.load` (libsndfile, FFmpeg through PyAV) are C code
fed bytes a user chose. A segfault there would take down the CLI run with every file after
it, a batch worker, or the web server; an allocation the container dictates (a frame of
16.7 M samples) would take the whole process's memory. So each call runs in a child
process that

* is started once per parent process (imports cost ~0.3 s) and reused for every call;
* has its address space capped by ``RLIMIT_AS`` (:data:`CHILD_ADDRESS_SPACE_BYTES`), so a
  runaway allocation fails as a ``MemoryError`` in the child, not as the host's OOM killer;
* is killed when a call takes longer than its timeout, and restarted for the next call;
* sits in its own session, so Ctrl-C on the terminal reaches the parent only.

Calls from several threads take turns (one child per process, one call at a time): a
decode takes tens of milliseconds, and the turn-taking bounds the memory a server spends
on decoding however many uploads arrive at once.

The child imports only the modules the call needs (not the :mod:`vmgrade` package, which
would pull in the whole pipeline). Results and exceptions travel pickled over a pipe; a
:class:`~vmgrade.errors.VmgradeError` is re-raised as itself in the parent.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection

from . import errors

# The child's whole address space, bytes. It starts at ~210 MB (numpy, soundfile, PyAV, soxr);
# decoding 600 s of two-channel audio peaks ~350 MB above that. Past this a malloc fails.
CHILD_ADDRESS_SPACE_BYTES = 800 * 2**20
CALL_TIMEOUT_S = 20.0  # wall clock per call: a real decode of 10 min of audio takes ~1 s
_STOP_WAIT_S = 2.0  # how long a child told to stop may take before it is killed
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Runs in the child: make ``vmgrade`` a bare package (skipping its __init__, which imports the
# pipeline), then serve. argv: request fd, reply fd, package dir, address-space limit.
_BOOTSTRAP = (
    "import sys, types\n"
    "pkg = types.ModuleType('vmgrade'); pkg.__path__ = [sys.argv[3]]; sys.modules['vmgrade'] = pkg\n"
    "from vmgrade.isolate import _serve\n"
    "_serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4]))\n"
)
# The same with the whole package importable as usual (a child that runs the pipeline: its
# modules look themselves up with importlib, which a bare package cannot answer).
_BOOTSTRAP_FULL = (
    "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(sys.argv[3]))\n"
    "from vmgrade.isolate import _serve\n"
    "_serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4]))\n"
)


class ChildError(RuntimeError):
    """The called function raised an exception that is no vmgrade error (a bug): its type and message."""


class ChildFailed(Exception):
    """The child could not answer a call.

    Attributes
    ----------
    reason : str
        ``"crashed"`` (it died: a signal or an exit), ``"timeout"`` (killed after the call's
        timeout) or ``"memory"`` (an allocation failed under the address-space cap).
    detail : str
        What happened, for a message (``"signal 11 (SIGSEGV)"``, ``"over 20 s"``).
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class _Child:
    proc: subprocess.Popen
    requests: Connection
    replies: Connection
    pid_of_parent: int


class Isolated:
    """A child process that runs ``module.function(**kwargs)`` calls, one at a time.

    Parameters
    ----------
    address_space_bytes : int or None
        ``RLIMIT_AS`` of the child, bytes (default :data:`CHILD_ADDRESS_SPACE_BYTES`); None: no cap
        (a child that loads a Whisper model).
    env : dict, optional
        Environment variables for the child over this process's. Default: one thread for
        OpenBLAS, OpenMP and MKL (a decoding child needs no more).
    whole_package : bool
        Import :mod:`vmgrade` whole in the child (its ``__init__`` and the pipeline), for calls
        that grade; default False: a bare package, so a decoding child imports only what it uses.
    """

    def __init__(self, address_space_bytes: int | None = CHILD_ADDRESS_SPACE_BYTES,
                 env: dict[str, str] | None = None, whole_package: bool = False):
        self.address_space_bytes = address_space_bytes
        self.env = env
        self.whole_package = whole_package
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._atexit = False

    def start(self) -> None:
        """Start the child now (it otherwise starts with the first call), without waiting for it."""
        with self._lock:
            self._ensure_child()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs (None before its first call or after it died)."""
        child = self._child
        return child.proc.pid if child is not None and child.proc.poll() is None else None

    def call(self, module: str, function: str, kwargs: dict, timeout_s: float = CALL_TIMEOUT_S):
        """``module.function(**kwargs)`` in the child; its result, or its exception raised here.

        Raises
        ------
        VmgradeError
            Whatever vmgrade error the function raised (same class, message, code, path).
        ChildError
            Any other exception it raised (the message names its type).
        ChildFailed
            The child crashed, ran out of its address space, or took longer than ``timeout_s``.
        """
        with self._lock:
            child = self._ensure_child()
            try:
                child.requests.send((module, function, kwargs))
                if not child.replies.poll(timeout_s):
                    self._kill()
                    raise ChildFailed("timeout", f"over {timeout_s:g} s")
                kind, payload = child.replies.recv()
            except (EOFError, OSError) as exc:
                raise ChildFailed("crashed", self._death(exc)) from None
            except BaseException:  # Ctrl-C mid-call: the child's late answer would go to the next call
                self._kill()
                raise
        if kind == "ok":
            return payload
        if kind == "memory":
            raise ChildFailed("memory", payload)
        if kind == "vmgrade_error":
            cls_name, message, code, path = payload
            cls = getattr(errors, cls_name, errors.VmgradeError)
            raise cls(message, code=code, path=path)
        raise ChildError(payload)  # an unexpected exception in the child: type and message

    def stop(self) -> None:
        """Ask the child to exit (killed if it does not within a moment).

        If a call is under way (another thread; at interpreter exit) and does not end within a
        moment, the child is left to end by itself: it does once this process's pipe closes.
        """
        if not self._lock.acquire(timeout=_STOP_WAIT_S):
            return
        try:
            self._kill(gently=True)
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ internals

    def _ensure_child(self) -> _Child:
        child = self._child
        if child is not None and child.pid_of_parent != os.getpid():
            child = self._child = None  # inherited through fork: that child answers the other process
        if child is not None and child.proc.poll() is not None:
            self._kill()
            child = None
        if child is None:
            child = self._child = self._spawn()
        return child

    def _spawn(self) -> _Child:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        extra = self.env if self.env is not None else dict(
            OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env = dict(os.environ, **extra)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP_FULL if self.whole_package else _BOOTSTRAP, str(req_r),
                 str(rep_w), _PACKAGE_DIR, str(self.address_space_bytes or 0)],
                pass_fds=(req_r, rep_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True, env=env, close_fds=True,
            )
        finally:
            os.close(req_r)
            os.close(rep_w)
        for fd in (req_w, rep_r):
            os.set_inheritable(fd, False)
        if not self._atexit:
            atexit.register(self.stop)  # a clean exit reaps the child (else it sees EOF and ends alone)
            self._atexit = True
        return _Child(proc, Connection(req_w, readable=False), Connection(rep_r, writable=False), os.getpid())

    def _death(self, exc: BaseException) -> str:
        child, self._child = self._child, None
        if child is None:
            return str(exc)
        try:
            code = child.proc.wait(timeout=_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            code = child.proc.wait()
        _close(child)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown"
            return f"signal {-code} ({name})"
        return f"exit status {code}"

    def _kill(self, gently: bool = False) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if gently:
            try:
                child.requests.send(None)
                child.proc.wait(timeout=_STOP_WAIT_S)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        _close(child)


class IsolatedPool:
    """Several :class:`Isolated` children: up to ``size`` calls run at once, each in a child of its own.

    A caller takes whichever child is free (waiting for one when all are busy), so one slow call
    (a crafted file that decodes for the whole timeout) holds one child, not every caller.

    Parameters
    ----------
    size : int
        Children, and so calls at once (each child starts with its first call).
    address_space_bytes : int
        ``RLIMIT_AS`` of each child, bytes.
    """

    def __init__(self, size: int, address_space_bytes: int = CHILD_ADDRESS_SPACE_BYTES):
        import queue

        self.size = size
        self._idle: queue.SimpleQueue[Isolated] = queue.SimpleQueue()
        self._all = [Isolated(address_space_bytes) for _ in range(size)]
        for child in self._all:
            self._idle.put(child)

    def call(self, module: str, function: str, kwargs: dict, timeout_s: float = CALL_TIMEOUT_S):
        """As :meth:`Isolated.call`, in the first child free."""
        child = self._idle.get()
        try:
            return child.call(module, function, kwargs, timeout_s)
        finally:
            self._idle.put(child)

    def start(self) -> None:
        """Start one child now (the others start when first needed)."""
        self._all[0].start()

    def stop(self) -> None:
        """Stop every child."""
        for child in self._all:
            child.stop()


def _close(child: _Child) -> None:
    for conn in (child.requests, child.replies):
        try:
            conn.close()
        except OSError:
            pass


def _serve(request_fd: int, reply_fd: int, address_space_bytes: int) -> None:
    """The child's loop: answer calls until told to stop (``None``) or the parent goes away."""
    import importlib
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if address_space_bytes and (hard == resource.RLIM_INFINITY or hard > address_space_bytes):
            resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, hard))
    except (ValueError, OSError):  # a platform without RLIMIT_AS (macOS ignores it): the timeout still holds
        pass
    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    while True:
        try:
            message = requests.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        module, function, kwargs = message
        try:
            reply = ("ok", getattr(importlib.import_module(module), function)(**kwargs))
        except MemoryError:
            cap = f" under the {address_space_bytes / 2**20:.0f} MB cap" if address_space_bytes else ""
            reply = ("memory", f"an allocation failed{cap}")
        except errors.VmgradeError as exc:
            reply = ("vmgrade_error", (type(exc).__name__, str(exc), exc.code, exc.path))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            reply = ("exception", f"{type(exc).__name__}: {exc}")
        try:
            replies.send(reply)
        except MemoryError:  # the answer itself did not fit
            replies.send(("memory", "the decoded audio did not fit under the cap"))
        except (OSError, EOFError):
            return
