"""A throwaway PostgreSQL cluster for tests, started from the server binaries (no system service).

``initdb`` into a fresh directory (trust authentication, superuser ``postgres``), ``pg_ctl
start`` listening on 127.0.0.1 at a free port and on a unix socket in that directory, with
durability switched off for speed (``fsync=off``: a crash may lose the cluster, which is thrown
away anyway). Initdb refuses to run as root, so as root the cluster belongs to the ``postgres``
OS user and every server command runs through ``runuser``.

Importable (``tests/conftest.py`` loads it) and runnable::

    python tools/pg_cluster.py DIR     # starts one in DIR, prints its URL; Ctrl-C stops it

Trust authentication lets any local user connect as the superuser while it runs: for tests
only.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "postgres"
OS_USER = "postgres"  # who owns the cluster when we run as root (initdb refuses root)
DEFAULT_DATABASE = "vmgrade"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
INITDB_TIMEOUT_S = 120.0
PORT_TRIES = 5  # a port found free may be taken before the server binds it
# A unix socket path is limited to 107 bytes on Linux; PostgreSQL adds "/.s.PGSQL.NNNNN".
SOCKET_DIR_MAX_CHARS = 90
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Small and fast: nothing here needs to survive a crash or hold much data.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",  # web nodes, workers and the tests, each with a connection pool
    "dynamic_shared_memory_type": "mmap",  # containers often have a tiny /dev/shm
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
}


class ClusterError(RuntimeError):
    """The cluster could not be created, started, reached or stopped."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: from ``PATH``, else the newest
    ``/usr/lib/postgresql/*/bin``; None when there is none."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent  # /usr/local/bin/initdb is often a link
        if (bindir / "pg_ctl").is_file():
            return bindir
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")
                  if (Path(p) / "initdb").is_file() and (Path(p) / "pg_ctl").is_file()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)

    return max(candidates, key=version) if candidates else None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (no binaries, no driver, no OS user), or None."""
    if find_bindir() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root, and there is no {OS_USER!r} OS user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root, and runuser (util-linux) is missing"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running throwaway cluster; :meth:`start` makes one, :meth:`stop` removes it.

    Parameters
    ----------
    directory : Path
        The cluster's data directory (also holds the unix socket and ``server.log``).
    port : int
        Its TCP port on 127.0.0.1.
    database : str
        The database :attr:`url` names.
    bindir : Path
        Where ``pg_ctl`` is.
    """

    def __init__(self, directory: Path, port: int, database: str, bindir: Path):
        self.directory, self.port, self.database, self.bindir = Path(directory), port, database, bindir
        self.log_file = self.directory / "server.log"
        self._stopped = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of :attr:`database` (``postgresql+psycopg://postgres@127.0.0.1:PORT/DB``)."""
        return self.url_of(self.database)

    def url_of(self, database: str) -> str:
        """The SQLAlchemy URL of another database of this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, directory: Path | None = None, *, database: str = DEFAULT_DATABASE,
              timeout_s: float = START_TIMEOUT_S) -> PgCluster:
        """Create a cluster in ``directory`` and start it; returns once ``database`` accepts connections.

        Parameters
        ----------
        directory : Path, optional
            A folder that does not exist yet or is empty; default a new one in the system's
            temporary folder. As root it is handed to the ``postgres`` OS user, which must be
            able to reach it (a folder under a 0700 one, such as pytest's ``tmp_path``, is not).
        database : str
            A database created in it for :attr:`url`.
        timeout_s : float
            Longest wait for the server to accept connections, per try.

        Raises
        ------
        ClusterError
            No binaries, initdb failed, the server did not come up in time (its log is quoted).
        """
        reason = unavailable_reason()
        if reason:
            raise ClusterError(reason)
        bindir = find_bindir()
        assert bindir is not None
        check_name(database)
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="vmgrade-pg-"))
        directory = Path(directory).absolute()
        if directory.exists() and any(directory.iterdir()):
            raise ClusterError(f"{directory}: not empty; a cluster needs a new or empty folder")
        if len(str(directory)) > SOCKET_DIR_MAX_CHARS:
            raise ClusterError(f"{directory}: path too long for a unix socket (at most "
                               f"{SOCKET_DIR_MAX_CHARS} characters)")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            _own(directory)
            _run_as_owner([str(bindir / "initdb"), "-D", str(directory), "--auth=trust", "-U", SUPERUSER,
                           "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                          "initdb", INITDB_TIMEOUT_S, cwd=directory)
            conf = directory / "postgresql.conf"
            base_conf = conf.read_text()
            last_error: ClusterError | None = None
            for _ in range(PORT_TRIES):
                port = free_port()
                settings = dict(SETTINGS, port=str(port), unix_socket_directories=f"'{directory}'")
                conf.write_text(base_conf + "\n# tools/pg_cluster.py\n"
                                + "".join(f"{k} = {v}\n" for k, v in settings.items()))
                cluster = cls(directory, port, database, bindir)
                try:
                    cluster._start_server(timeout_s)
                except ClusterError as exc:
                    last_error = exc
                    if "could not bind" in exc.args[0] or "already in use" in exc.args[0]:
                        continue  # someone took the port meanwhile: another one
                    raise
                cluster._wait_ready(timeout_s)
                cluster.new_database(database)
                return cluster
            raise last_error or ClusterError("no free port")
        except BaseException:
            _stop_server(bindir, directory)
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _start_server(self, timeout_s: float) -> None:
        self.log_file.unlink(missing_ok=True)
        try:
            _run_as_owner([str(self.bindir / "pg_ctl"), "start", "-D", str(self.directory), "-l",
                           str(self.log_file), "-w", "-t", str(int(timeout_s))],
                          "pg_ctl start", timeout_s + 10, cwd=self.directory)
        except ClusterError as exc:
            _stop_server(self.bindir, self.directory)
            raise ClusterError(f"{exc}\nserver log:\n{self.log_tail()}") from exc

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll until a connection over TCP succeeds (pg_ctl -w waited for the socket already)."""
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"PostgreSQL on 127.0.0.1:{self.port} did not accept connections "
                                       f"within {timeout_s:g} s ({exc})\nserver log:\n{self.log_tail()}"
                                       ) from exc
                time.sleep(0.2)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self._dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def new_database(self, name: str) -> str:
        """Create the (empty) database ``name`` and return its SQLAlchemy URL.

        Raises
        ------
        ValueError
            ``name`` is not a plain lower-case identifier.
        """
        self._admin(f"CREATE DATABASE {check_name(name)}")
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing its connections first (``WITH (FORCE)``); no error when it is gone."""
        self._admin(f"DROP DATABASE IF EXISTS {check_name(name)} WITH (FORCE)")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (for error messages)."""
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        """Stop the server at once (``pg_ctl stop -m immediate``) and remove its directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _stop_server(self.bindir, self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def check_name(name: str) -> str:
    """``name`` if it is a plain lower-case SQL identifier (safe to put in DDL unquoted)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r}: a database name here is lower-case letters, digits and _")
    return name


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def _own(directory: Path) -> None:
    """As root: give ``directory`` to the postgres OS user and check that it can reach it."""
    if os.geteuid() != 0:
        return
    import pwd

    user = pwd.getpwnam(OS_USER)
    os.chown(directory, user.pw_uid, user.pw_gid)
    probe = subprocess.run(_as_owner(["test", "-w", str(directory)]), capture_output=True, timeout=30)
    if probe.returncode != 0:
        raise ClusterError(f"{directory}: the {OS_USER} OS user cannot write there (a parent folder is "
                           "private to root?); use a folder under the system's temporary folder")


def _run_as_owner(argv: list[str], what: str, timeout_s: float, cwd: Path) -> None:
    try:
        done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what} did not finish within {timeout_s:g} s") from exc
    if done.returncode != 0:
        raise ClusterError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}")


def _stop_server(bindir: Path, directory: Path) -> None:
    """``pg_ctl stop -m immediate`` when a server runs in ``directory``; quiet when none does."""
    if not (directory / "postmaster.pid").exists():
        return
    try:
        done = subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "stop", "-D", str(directory), "-m", "immediate", "-w", "-t",
                       str(int(STOP_TIMEOUT_S))]),
            capture_output=True, timeout=STOP_TIMEOUT_S + 10, cwd=directory, stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            return
    except subprocess.TimeoutExpired:
        pass
    try:  # pg_ctl failed: kill the postmaster (the pid file's first line) if it is still ours
        pid = int((directory / "postmaster.pid").read_text().split()[0])
        if b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def main(argv: list[str] | None = None) -> int:
    """``python tools/pg_cluster.py DIR``: run a cluster in DIR until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a new or empty folder for the cluster (removed at the end)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args(argv)
    try:
        cluster = PgCluster.start(args.dir, database=args.database)
    except (ClusterError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # the finally below stops it; SIGINT explicitly, as a shell starting us in the background ignores it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        print(cluster.url, flush=True)
        print(f"(unix socket in {cluster.directory}; Ctrl-C stops it and removes the folder)",
              file=sys.stderr)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
