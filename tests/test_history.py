"""The history store: SQLite round trip of real reports, idempotency, rubric
keys, trends, migrations, concurrency, the `vmgrade history` command, and
PostgreSQL when a server is reachable."""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import SAMPLES

from vmgrade.cli import EXIT_FILE_FAILED, EXIT_OK, main
from vmgrade.scoring import default_rubric_path, load_rubric
from vmgrade.store import history
from vmgrade.store.history import (
    Base,
    HistoryError,
    content_hash,
    current_revision,
    head_revision,
    migration_config,
    open_store,
    rubric_version,
)

BEFORE = SAMPLES / "before_practice.wav"
AFTER = SAMPLES / "after_practice.wav"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
# A PostgreSQL to try (the test makes and drops its own database there).
PG_URL = os.environ.get("VMGRADE_TEST_PG_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}"


@pytest.fixture(scope="module")
def reports(graded):
    """Real reports of the before/after practice pair (graded once per session)."""
    out = {}
    for path in (BEFORE, AFTER):
        report = graded(path)
        assert report.ok, report.error
        out[path.name] = report.to_dict()
    return out


def _modified_rubric(tmp_path, weight: int = 40):
    text = default_rubric_path().read_text(encoding="utf-8")
    changed, n = re.subn(r"(\[dimensions\.opening\]\nlabel = [^\n]*\nweight = )\d+", rf"\g<1>{weight}", text)
    assert n == 1
    path = tmp_path / "rubric.toml"
    path.write_text(changed, encoding="utf-8")
    return path


# -- keys ------------------------------------------------------------------


def test_content_hash_is_sha256_of_the_bytes_wherever_the_file_is(tmp_path):
    data = BEFORE.read_bytes()
    assert content_hash(BEFORE) == hashlib.sha256(data).hexdigest()
    copied = tmp_path / "renamed.wav"
    shutil.copyfile(BEFORE, copied)
    assert content_hash(copied) == content_hash(BEFORE)
    copied.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert content_hash(copied) != content_hash(BEFORE)


def test_rubric_version_follows_content_not_path_or_comments(tmp_path):
    default = rubric_version(None)
    assert re.fullmatch(r"[0-9a-f]{16}", default)
    assert rubric_version(load_rubric()) == default == rubric_version(default_rubric_path())
    moved = tmp_path / "moved.toml"
    text = default_rubric_path().read_text(encoding="utf-8")
    moved.write_text("# a new comment\n" + text.replace("\n\n", "\n\n\n"), encoding="utf-8")
    assert rubric_version(moved) == default
    assert rubric_version(_modified_rubric(tmp_path)) != default


def test_thresholds_added_later_keep_the_rubric_version_at_their_packaged_value(tmp_path):
    """A rubric file from before pause_min_ms and level_* existed grades the same, so it
    keeps its version, and so do batch resume keys made before they were added."""
    text = default_rubric_path().read_text(encoding="utf-8")
    older = re.sub(r"(?m)^(pause_min_ms|level_low_dbfs|level_peak_high_dbfs) = .*\n", "", text)
    assert older.count("\n") == text.count("\n") - 3
    (tmp_path / "older.toml").write_text(older, encoding="utf-8")
    assert rubric_version(tmp_path / "older.toml") == rubric_version(None) == "f5cebf11ed04b5d1"
    (tmp_path / "custom.toml").write_text(text.replace("value = -35.0", "value = -40.0"), encoding="utf-8")
    assert rubric_version(tmp_path / "custom.toml") != rubric_version(None)


# -- migrations ------------------------------------------------------------


def test_open_store_migrates_an_empty_database_to_head_with_wal(db_url):
    store = open_store(db_url)  # the data directory does not exist yet
    assert head_revision() == "0004_team_deploy"  # 0001_history, web tables, sessions, team deployment
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"recordings", "alembic_version"} <= tables
    store.close()


def _switch_at_once(url: str, barrier) -> None:
    engine = history._create_engine(url)
    barrier.wait()
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_connections_switching_a_new_file_to_wal_at_once_all_succeed(tmp_path):
    # Connections that ask for WAL on a rollback-journal file at the same moment: SQLite refuses all
    # but one at once, without the busy timeout, unless vmgrade tries again (a CI failure seen with
    # three processes opening one new history file).
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"fresh{attempt}.sqlite3"
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
        barrier = context.Barrier(6)
        processes = [context.Process(target=_switch_at_once, args=(f"sqlite:///{path}", barrier))
                     for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [p.exitcode for p in processes] == [0] * 6, f"round {attempt}"


def test_second_open_is_a_no_op(db_url, monkeypatch):
    open_store(db_url).close()

    from alembic import command

    def refuse(*args, **kwargs):
        raise AssertionError("an up-to-date database was migrated again")

    monkeypatch.setattr(command, "upgrade", refuse)
    again = open_store(db_url)
    assert current_revision(again.engine) == head_revision()
    assert again.recordings() == []


def test_alembic_upgrade_and_downgrade_from_empty(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    config = migration_config(url)  # no alembic.ini: the packaged migrations
    command.upgrade(config, "head")
    store = open_store(url)
    assert current_revision(store.engine) == head_revision()
    command.downgrade(config, "base")
    assert current_revision(store.engine) is None
    command.upgrade(config, "head")
    assert current_revision(store.engine) == head_revision()


def test_models_match_the_migrations(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = open_store(db_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_bad_urls_are_clear_errors(tmp_path):
    with pytest.raises(HistoryError, match="not a database URL"):
        open_store("not a url")
    with pytest.raises(HistoryError, match="nosuchdriver"):
        open_store("postgresql+nosuchdriver://u@localhost/x")
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(HistoryError, match="data directory"):
        open_store(f"sqlite:///{blocked / 'sub' / 'h.sqlite3'}")


def test_default_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("VMGRADE_DB_URL", raising=False)
    monkeypatch.setenv("VMGRADE_DATA_DIR", str(tmp_path / "d"))
    assert history.data_dir() == tmp_path / "d"
    assert history.default_db_url() == f"sqlite:///{tmp_path / 'd' / 'history.sqlite3'}"
    store = open_store()
    assert (tmp_path / "d" / "history.sqlite3").is_file()
    store.close()
    monkeypatch.setenv("VMGRADE_DB_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert open_store().recordings() == []
    assert (tmp_path / "elsewhere.db").is_file()
    monkeypatch.delenv("VMGRADE_DATA_DIR")
    monkeypatch.delenv("VMGRADE_DB_URL")
    assert history.data_dir() == history.DEFAULT_DATA_DIR.expanduser()


# -- recording -------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_round_trip_of_a_real_report(db_url, reports):
    report = reports["before_practice.wav"]
    store = open_store(db_url)
    rid = store.record(report, content_hash=content_hash(BEFORE), rep_id="ana", recorded_at=T0,
                       report_path="/out/before.json")
    store.close()

    (row,) = open_store(db_url).recordings("ana")  # a new engine: read from the file
    assert row.id == rid
    assert row.content_hash == content_hash(BEFORE)
    assert (row.rep_id, row.file, row.report_path) == ("ana", str(BEFORE), "/out/before.json")
    assert row.recorded_at == T0
    assert abs(row.graded_at - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert row.score == report["score"]
    assert row.letter == report["grade"]
    assert row.dimensions == {d["key"]: d["score"] for d in report["dimensions"]}
    assert row.metrics == report["metrics"]
    assert (row.model, row.engine) == (report["model"]["name"], report["model"]["engine"])
    assert row.rubric_version == rubric_version(None)  # from the rubric file the report names
    assert row.rubric_label == report["rubric"]["version"]
    assert row.duration_s == report["duration_s"]
    assert row.vmgrade_version == report["vmgrade_version"]
    assert json.loads(json.dumps(row.to_dict()))["recorded_at"] == T0.isoformat()


@pytest.mark.slow
def test_recording_again_is_idempotent(db_url, reports):
    report = reports["before_practice.wav"]
    store = open_store(db_url)
    key = content_hash(BEFORE)
    first = store.record(report, content_hash=key, rep_id="ana", recorded_at=T0, report_path="/a.json")
    # A rerun (a resumed batch) that knows less keeps what was recorded.
    again = store.record(report, content_hash=key, rep_id=None, recorded_at=None, report_path=None)
    assert again == first
    (row,) = store.recordings()
    assert (row.rep_id, row.recorded_at, row.report_path) == ("ana", T0, "/a.json")
    # New facts about the same grading update the one row.
    assert store.record(report, content_hash=key, rep_id="bo", recorded_at=T0, report_path="/b.json") == first
    (row,) = store.recordings()
    assert (row.rep_id, row.report_path) == ("bo", "/b.json")


@pytest.mark.slow
def test_two_rubrics_give_two_rows(db_url, reports, tmp_path):
    report = reports["before_practice.wav"]
    store = open_store(db_url)
    key = content_hash(BEFORE)
    a = store.record(report, content_hash=key, rep_id="ana")
    modified = rubric_version(_modified_rubric(tmp_path))
    b = store.record(report, content_hash=key, rep_id="ana", rubric_version=modified)
    # The rubric named by the report itself, when no version is passed.
    other = copy.deepcopy(report)
    other["rubric"]["path"] = str(_modified_rubric(tmp_path, weight=5))
    c = store.record(other, content_hash=key, rep_id="ana")
    assert len({a, b, c}) == 3
    assert len(store.recordings("ana")) == 3
    assert len({r.rubric_version for r in store.recordings()}) == 3
    # A different model is a different grading too.
    tiny = copy.deepcopy(report)
    tiny["model"]["name"] = "tiny.en"
    assert store.record(tiny, content_hash=key, rep_id="ana") not in {a, b, c}
    # The trend counts the recording once.
    assert len(store.trend("ana").score) == 1


@pytest.mark.slow
def test_trend_is_ordered_by_recording_time(db_url, reports):
    store = open_store(db_url)
    before, after = reports["before_practice.wav"], reports["after_practice.wav"]
    # Graded in the opposite order to when they were recorded.
    store.record(after, content_hash=content_hash(AFTER), rep_id="ana", recorded_at=T0 + timedelta(days=7))
    store.record(before, content_hash=content_hash(BEFORE), rep_id="ana", recorded_at=T0)
    store.record(before, content_hash="someone-else", rep_id="bo", recorded_at=T0 + timedelta(days=1))

    trend = store.trend("ana")
    assert trend.recorded_at == [T0, T0 + timedelta(days=7)]
    assert trend.score == [before["score"], after["score"]]
    assert trend.letters == [before["grade"], after["grade"]]
    assert set(trend.dimensions) == {d["key"] for d in before["dimensions"]}
    for d_before, d_after in zip(before["dimensions"], after["dimensions"]):
        assert trend.dimensions[d_before["key"]] == [d_before["score"], d_after["score"]]
    assert [r.file for r in store.recordings("ana")] == [str(BEFORE), str(AFTER)]
    assert [r.rep_id for r in store.recordings(team_rep_ids=["ana", "bo"])] == ["ana", "bo", "ana"]
    assert store.recordings(team_rep_ids=[]) == []
    reps = {r.rep_id: r for r in store.reps()}
    assert reps["ana"].recordings == 2
    assert reps["ana"].mean_score == pytest.approx((before["score"] + after["score"]) / 2)
    assert reps["ana"].last_score == after["score"]


@pytest.mark.slow
def test_error_reports_are_not_recorded(db_url, reports):
    store = open_store(db_url)
    with pytest.raises(ValueError, match="failed report"):
        store.record({"file": "x.wav", "error": {"code": "not_audio", "message": "x.wav: not audio"}},
                     content_hash="x")
    assert store.recordings() == []


def _record_many(url: str, report: dict, n: int) -> list[int]:
    store = open_store(url)
    ids = [store.record(report, content_hash=f"h{i}", rep_id="ana") for i in range(n)]
    store.close()
    return ids


@pytest.mark.slow
def test_concurrent_writers_share_one_sqlite_file(db_url, reports):
    report = reports["before_practice.wav"]
    # Three processes migrate the fresh database and record the same keys at once.
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_record_many, [(db_url, report, 15)] * 3)
    assert results[0] == results[1] == results[2]
    assert len(open_store(db_url).recordings()) == 15


# -- the command -----------------------------------------------------------


@pytest.mark.slow
def test_history_command(db_url, reports, capsys, monkeypatch):
    store = open_store(db_url)
    store.record(reports["before_practice.wav"], content_hash=content_hash(BEFORE), rep_id="ana",
                 recorded_at=T0)
    store.record(reports["after_practice.wav"], content_hash=content_hash(AFTER), rep_id="ana",
                 recorded_at=T0 + timedelta(days=7))
    before, after = (reports[n]["score"] for n in ("before_practice.wav", "after_practice.wav"))

    assert main(["history", "--db", db_url, "--rep", "ana"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Rep ana: 2 recordings" in out
    lines = out.splitlines()
    listed = [line for line in lines if line.startswith("2026-")]
    assert [line.split()[:4] for line in listed] == [
        ["2026-03-02", "09:30", f"{before:.1f}", reports["before_practice.wav"]["grade"]],
        ["2026-03-09", "09:30", f"{after:.1f}", reports["after_practice.wav"]["grade"]],
    ]
    assert listed[0].endswith(str(BEFORE))
    (score_line,) = [line for line in lines if line.startswith("Score")]
    assert score_line.split()[1:4] == [f"{before:.0f}", f"{after:.0f}", f"{after - before:+.0f}"]
    assert any(line.startswith("Opening and identity") for line in lines)

    assert main(["history", "--db", db_url, "--rep", "ana", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [r["score"] for r in data["recordings"]] == data["trend"]["score"] == [before, after]

    assert main(["history", "--db", db_url]) == EXIT_OK
    (ana,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ana")]
    assert ana.split()[1:3] == ["2", f"{(before + after) / 2:.1f}"]

    assert main(["history", "--db", db_url, "--rep", "nobody"]) == EXIT_FILE_FAILED
    assert "no recordings for rep 'nobody'" in capsys.readouterr().err

    # On a terminal: rich tables.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["history", "--db", db_url, "--rep", "ana"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "┃" in out and "Opening and identity" in out and f"{before:.1f}" in out


@pytest.mark.slow
def test_grade_records_when_asked(db_url, capsys):
    sample = str(SAMPLES / "followup_phone.wav")
    argv = ["grade", sample, "--model", "tiny.en", "--format", "json", "--db", db_url, "--rep", "cy"]
    assert main(argv) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    (row,) = open_store(db_url).recordings("cy")
    assert (row.score, row.model, row.content_hash) == (report["score"], "tiny.en", content_hash(sample))


# -- PostgreSQL ------------------------------------------------------------


@pytest.fixture
def pg_url():
    """A fresh database on a reachable PostgreSQL server, dropped afterwards."""
    import sqlalchemy

    try:
        admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"vmgrade_test_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # no driver, no server, no rights: nothing to test against
        pytest.skip(f"no usable PostgreSQL at {PG_URL} ({type(exc).__name__})")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.slow
def test_postgresql_round_trip(pg_url, reports):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    report = reports["before_practice.wav"]
    store = open_store(pg_url)
    rid = store.record(report, content_hash=content_hash(BEFORE), rep_id="ana", recorded_at=T0)
    assert store.record(report, content_hash=content_hash(BEFORE), rep_id="ana") == rid
    store.close()
    store = open_store(pg_url)
    (row,) = store.recordings("ana")
    assert (row.score, row.recorded_at, row.metrics) == (report["score"], T0, report["metrics"])
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    store.close()


@pytest.mark.parametrize("tty", [True, False])
def test_history_tables_show_odd_names_as_text(monkeypatch, tty):
    """A '[/]' in a name is shown, never read as rich markup (it crashed `history`); escapes and bidi
    controls are escaped, on a terminal and in plain text alike."""
    import io

    from vmgrade.render.history_table import print_tables

    class Out(io.StringIO):
        def isatty(self):
            return tty

    out = Out()
    monkeypatch.setattr("sys.stdout", out)
    name = "rep[/]x \x1b[2J evil\u202egnp.wav"
    print_tables("History", [(["FILE", "SCORE"], [[name, "81.0"]])])
    text = out.getvalue()
    assert "rep[/]x" in text and "\x1b[2J" not in text and "\\x1b[2J" in text
    assert "\u202e" not in text and "\\u202e" in text


# -- damaged databases (issue 29): history_error naming the file, never a traceback --


def _fake_report(i: int) -> dict:
    return {"file": f"f{i}.wav", "score": 70.0 + i % 10, "grade": "C", "model": {"name": "t", "engine": "e"},
            "dimensions": [{"key": "opening", "score": 60.0}], "metrics": {"note": "x" * 300}}


def _filled_db(path) -> str:
    """A real history database with enough rows to span many pages, checkpointed into the file."""
    import sqlite3

    url = f"sqlite:///{path}"
    with open_store(url) as store:
        for i in range(300):
            store.record(_fake_report(i), content_hash=f"{i:064x}", rep_id="ana", rubric_version="v",
                         recorded_at=T0 + timedelta(minutes=i))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return url


def _damage(kind: str, tmp_path):
    import sqlite3

    path = tmp_path / f"{kind}.sqlite3"
    if kind == "not_sqlite":
        path.write_text("these are a user's notes, not a database\n" * 20, encoding="utf-8")
    elif kind in ("truncated", "garbled"):
        good = tmp_path / "good.sqlite3"
        _filled_db(good)
        data = bytearray(good.read_bytes())
        if kind == "truncated":
            data = data[:3000]  # cut inside the first pages
        else:  # the header survives; the pages that hold the rows do not
            data[len(data) // 3:] = os.urandom(len(data) - len(data) // 3)
        path.write_bytes(bytes(data))
    elif kind in ("wrong_schema", "wrong_schema_at_head", "unknown_revision"):
        conn = sqlite3.connect(path)
        if kind != "unknown_revision":
            conn.execute("CREATE TABLE recordings (x INTEGER)")
        if kind != "wrong_schema":
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            revision = head_revision() if kind == "wrong_schema_at_head" else "zzzz"
            conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        conn.commit()
        conn.close()
    elif kind.startswith("bad_"):
        _filled_db(path)
        conn = sqlite3.connect(path)
        conn.execute(f"UPDATE recordings SET {BAD_ROWS[kind]} WHERE id = 7")
        conn.commit()
        conn.close()
    return path


# Rows that fit the schema's column types in SQLite but not vmgrade's values (red-team round 3:
# tracebacks from the table renderer, the sparkline and the JSON writer)
BAD_ROWS = {
    "bad_row": "dimensions = '{not json'",
    "bad_dimension_text": """dimensions = '{"clarity": "abc"}'""",
    "bad_dimension_nan": """dimensions = '{"clarity": NaN}'""",
    "bad_dimension_nested": """dimensions = '{"clarity": {"a": 1}}'""",
    "bad_score_text": "score = 'high'",
    "bad_recorded_at": "recorded_at = 'yesterday-ish'",
}


@pytest.mark.parametrize("kind, said", [
    ("not_sqlite", "not a SQLite database"),
    ("truncated", "damaged"),
    ("garbled", "damaged"),
    ("wrong_schema", "another schema"),
    ("wrong_schema_at_head", "lacks content_hash"),
    ("unknown_revision", "Can't locate revision"),
    ("bad_row", "JSONDecodeError"),
    ("bad_dimension_text", "recording 7: dimensions must map names to numbers"),
    ("bad_dimension_nan", "recording 7: dimensions"),
    ("bad_dimension_nested", "recording 7: dimensions"),
    ("bad_score_text", "recording 7: score"),
    ("bad_recorded_at", "Invalid isoformat"),
])
def test_a_damaged_history_database_is_history_error_naming_the_file(tmp_path, capsys, kind, said):
    path = _damage(kind, tmp_path)
    url = f"sqlite:///{path}"
    for argv in (["history", "--db", url], ["history", "--db", url, "--rep", "ana"]):
        code = main(argv)  # before: an OperationalError / DatabaseError traceback for several of these
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("vmgrade: error [history_error]: ") and str(path) in err, err
        assert said in err and "Traceback" not in err and "[SQL:" not in err, err
        assert err.count("\n") == 1  # one line, not the driver's SQL dump


def test_a_read_only_history_database_reads_but_refuses_writes_with_history_error(tmp_path, capsys):
    good = tmp_path / "good.sqlite3"
    _filled_db(good)
    read_only = f"sqlite:///file:{good}?mode=ro&uri=true"  # chmod is no test as root: the driver's mode
    assert main(["history", "--db", read_only, "--rep", "ana"]) == EXIT_OK
    assert "Rep ana: 300 recordings" in capsys.readouterr().out
    with open_store(read_only) as store, pytest.raises(HistoryError, match="read-only") as info:
        store.record(_fake_report(999), content_hash="f" * 64, rubric_version="v")
    assert str(good) in info.value.message

    never_migrated = tmp_path / "empty.sqlite3"
    never_migrated.write_bytes(b"")
    code = main(["history", "--db", f"sqlite:///file:{never_migrated}?mode=ro&uri=true"])
    err = capsys.readouterr().err
    assert code == 2 and "[history_error]" in err and "read-only" in err and str(never_migrated) in err
