"""`vmgrade users` and `vmgrade serve` never print a password: not the account's, not the database URL's.

Fast lane: real processes (stdout and stderr as a terminal would show them), SQLite for the runs that
succeed, and a PostgreSQL URL on a loopback port nothing listens on for the runs that cannot connect.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from test_web_support import ROOT, free_port  # noqa: E402

DB_SECRET = "s3cret"
# port 1 on loopback: refused at once, so the run fails at connecting, after parsing the URL
UNREACHABLE = f"postgresql+psycopg://coach:{DB_SECRET}@127.0.0.1:1/vmgrade"
PASSWORD = "lantern orchard 42"


def _vmgrade(*args: str, stdin: str = "", env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    # a new session has no controlling terminal: getpass reads standard input, as under a script
    base = {k: v for k, v in os.environ.items() if k not in ("VMGRADE_DB_URL", "VMGRADE_SECRET_KEY")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "vmgrade", *args], input=stdin, capture_output=True,
                          text=True, env={**base, **(env or {})}, cwd=ROOT, timeout=timeout,
                          start_new_session=True)


def _shown(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


ADD = ("users", "add", "--username", "tom", "--role", "trainer", "--team", "east")


@pytest.mark.parametrize("command", [(*ADD, "--password-stdin"), ("users", "list")])
def test_a_database_url_password_is_never_shown(tmp_path, command):
    run = _vmgrade(*command, "--data-dir", str(tmp_path), "--db", UNREACHABLE, stdin=PASSWORD + "\n")
    assert run.returncode == 2, _shown(run)
    assert DB_SECRET not in _shown(run) and PASSWORD not in _shown(run), _shown(run)
    # the message still names the database, with the password masked
    assert "coach:***@127.0.0.1:1/vmgrade" in run.stderr, run.stderr


def test_a_password_in_vmgrade_db_url_is_never_shown(tmp_path):
    run = _vmgrade(*ADD, "--password-stdin", "--data-dir", str(tmp_path), stdin=PASSWORD + "\n",
                   env={"VMGRADE_DB_URL": UNREACHABLE})
    assert run.returncode == 2, _shown(run)
    assert DB_SECRET not in _shown(run) and "coach:***@" in run.stderr, _shown(run)


def test_serve_never_shows_the_database_password(tmp_path):
    run = _vmgrade("serve", "--port", str(free_port()), "--data-dir", str(tmp_path), "--db", UNREACHABLE,
                   env={"VMGRADE_SECRET_KEY": "a test session key of enough length 0123456789"})
    assert run.returncode != 0, _shown(run)
    assert DB_SECRET not in _shown(run), _shown(run)


def test_on_postgresql_the_created_line_masks_the_database_password(pg_db_url, tmp_path):
    # the test cluster trusts loopback, so a URL with a password connects and the run succeeds
    url = pg_db_url.replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{DB_SECRET}@")
    assert DB_SECRET in url
    run = _vmgrade(*ADD, "--password-stdin", "--data-dir", str(tmp_path), "--db", url, stdin=PASSWORD + "\n")
    assert run.returncode == 0, _shown(run)
    masked = url.replace(f":{DB_SECRET}@", ":***@")
    assert run.stdout.strip() == f"Created trainer tom in team east ({masked}).", run.stdout
    assert DB_SECRET not in _shown(run) and PASSWORD not in _shown(run), _shown(run)
    run = _vmgrade("users", "list", "--data-dir", str(tmp_path), "--db", url)
    assert run.returncode == 0 and "tom" in run.stdout and DB_SECRET not in _shown(run), _shown(run)

    # a web node on it: what it prints while starting names no password either
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "VMGRADE_SECRET_KEY": "a test session key of enough length 0123456789"}
    env.pop("VMGRADE_DB_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "vmgrade", "serve", "--port", str(free_port()),
                               "--data-dir", str(tmp_path / "node"), "--db", url],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "serving on" in line or not line:
                break
    finally:
        server.terminate()
        lines.append(server.communicate(timeout=30)[0])
    shown = "".join(lines)
    assert "serving on" in shown and DB_SECRET not in shown, shown


def test_users_add_says_where_and_never_echoes_the_password(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    # from standard input
    run = _vmgrade(*ADD, "--password-stdin", "--data-dir", str(data), stdin=PASSWORD + "\n")
    assert run.returncode == 0, _shown(run)
    where = f"sqlite:///{data / 'history.sqlite3'}"
    assert run.stdout.strip() == f"Created trainer tom in team east ({where}).", run.stdout
    assert PASSWORD not in _shown(run)
    # prompted (getpass: typed twice; without a terminal it reads standard input, still without echo)
    run = _vmgrade("users", "add", "--username", "rita", "--role", "rep", "--team", "east",
                   "--data-dir", str(data), stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert run.returncode == 0, _shown(run)
    assert "Created rep rita in team east" in run.stdout and PASSWORD not in _shown(run), _shown(run)
    # refused passwords are not repeated either (in this process: the same main(), quicker)
    from vmgrade.cli import main

    def in_process(*args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main([*args, "--data-dir", str(data)])
        out = capsys.readouterr()
        return code, out.out + out.err

    for refused in ("ravi lantern 42!", "shortpw"):
        code, shown = in_process(*ADD[:2], "--username", "ravi", "--role", "rep", "--team", "east",
                                 "--password-stdin", stdin=refused + "\n")
        assert code == 2 and "password" in shown and refused not in shown, shown
    code, shown = in_process("users", "set-password", "--username", "rita", "--password-stdin",
                             stdin="another long phrase 7\n")
    assert code == 0 and "another long phrase 7" not in shown, shown
    code, shown = in_process("users", "list")
    assert code == 0 and "rita" in shown and "tom" in shown, shown
