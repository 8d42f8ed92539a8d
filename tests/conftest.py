"""Shared fixtures: the real default Whisper model (loaded once), samples, references.

Tests that run a Whisper model are ``slow``; ``pytest -m "not slow"`` is the fast
lane. A test using a fixture of :data:`MODEL_FIXTURES` is marked ``slow`` here,
and any other test that loads a model anyway fails (:func:`_no_model_unless_slow`).
Tests that load one in a subprocess (``vmgrade grade`` run as a command) are
marked by hand.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
# The speech corpus (clips with reference transcripts) is not in the repository: tests that
# need it skip unless $VMGRADE_CORPUS names it (.ci/run sets it where CI has one).
CORPUS = Path(os.environ.get("VMGRADE_CORPUS", "$VMGRADE_CORPUS (not set)"))
SR = 16000

# Fixtures that hand out a real Whisper model (it loads on first use), here and in
# the test modules; a test using one, directly or through another fixture, is slow.
MODEL_FIXTURES = frozenset({
    "transcriber", "grader", "graded",  # here
    "tiny_grader",  # test_batch.py
    "unprompted",  # test_decoding.py
    "tiny",  # test_engines.py
    "fp32_transcriber",  # test_quantize.py
    "one_step_transcriber",  # test_speculative.py
})
NOT_SLOW_MESSAGE = "test loads a Whisper model but is not marked slow"


def load_script(relative_path: str, name: str):
    """Import a script of the repository's ``tools/`` or ``bench/`` (not a package) as ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


make_samples = load_script("tools/make_samples.py", "make_samples_tool")


def reference_text(sample_name: str) -> str:
    """What the sample's script says (markers and comments removed)."""
    return make_samples.reference_text_for(sample_name)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's English normalisation (numbers as digits)."""
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()

    def norm(text: str) -> str:
        # "415-555-0198" and "four one five, five five five..." both become one digit string
        text = re.sub(r"(?<=\d)[-.,]\s?(?=\d)", "", text)
        text = normalise(text)
        return re.sub(r"(?<=\d) (?=\d)", "", text)

    return jiwer.wer(norm(reference), norm(hypothesis))


@pytest.fixture(scope="session")
def transcriber():
    from vmgrade.asr.transcribe import WhisperTranscriber

    return WhisperTranscriber("base")


@pytest.fixture(scope="session")
def grader(transcriber):
    from vmgrade.pipeline import Grader

    return Grader(transcriber=transcriber)


@pytest.fixture(scope="session")
def graded(grader):
    """``graded(path, context=None)``: grade once per session, reuse the report."""
    cache = {}

    def grade(path, context=None):
        key = (str(path), context)
        if key not in cache:
            cache[key] = grader.grade(path, context)
        return cache[key]

    return grade


def write_tone(path: Path, seconds: float = 2.0, freq_hz: float = 220.0, amplitude: float = 0.3) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), SR)
    return path


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by marker (-m "not slow")
def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_model_unless_slow(request, monkeypatch):
    """Outside ``slow`` tests, loading a Whisper model (either engine) raises AssertionError.

    The check comes after the load, so a test that expects a broken file to be
    refused still gets the loader's own error. The test also fails at teardown, since
    ``Grader.grade`` turns any exception, this one included, into an error record.
    """
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    loads = request.node.refused_model_loads = []  # a test of the guard itself may clear it

    def refusing(load):
        def refuse_after(*args, **kwargs):
            load(*args, **kwargs)
            loads.append(load)
            raise AssertionError(NOT_SLOW_MESSAGE)

        return refuse_after

    from vmgrade.asr import transcribe, weights

    monkeypatch.setattr(weights, "load_whisper", refusing(weights.load_whisper))  # every openai-whisper load
    # both engines hand out their model through this property, loaded once (faster-whisper lazily imported)
    for engine in (transcribe.WhisperTranscriber, transcribe.CTranslate2Transcriber):
        monkeypatch.setattr(engine, "model", property(refusing(engine.model.fget)))
    for module, loader in (("faster_whisper", "WhisperModel"), ("whisper", "load_model")):
        if module in sys.modules:  # a test calling the library directly
            monkeypatch.setattr(sys.modules[module], loader, refusing(getattr(sys.modules[module], loader)))
    yield
    if loads:
        pytest.fail(NOT_SLOW_MESSAGE)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes():
    """argon2id at its smallest cost in tests: the hashing is the same code, 100x cheaper.

    The real parameters cost 0.3-1 s a hash on this 2-core machine, which made the web
    tests most of the fast lane's time; what they test (sessions, locks, roles) does not
    depend on the cost.
    """
    try:
        from argon2 import PasswordHasher

        from vmgrade.web import accounts
    except ImportError:  # the web extra is not installed: no web tests run
        yield
        return
    real = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("vmgrade-no-such-user")
    yield
    accounts._hasher, accounts._DUMMY_HASH = real


# -- a real PostgreSQL, started by the tests themselves (tools/pg_cluster.py) ------------------

REQUIRE_PG_ENV = "VMGRADE_REQUIRE_PG"  # .ci/run sets it: no server binaries there is a failure


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the session (initdb + pg_ctl; removed at the end).

    Skips where there are no server binaries (or no psycopg), unless ``$VMGRADE_REQUIRE_PG`` is
    1: then the tests fail.
    """
    tool = load_script("tools/pg_cluster.py", "pg_cluster_tool")
    reason = tool.unavailable_reason()
    if reason:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but no PostgreSQL to start: {reason}")
        pytest.skip(f"no PostgreSQL to start: {reason}")
    cluster = tool.PgCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster) -> str:
    """The SQLAlchemy URL of the session cluster's database (shared by every test using it)."""
    return pg_cluster.url


@pytest.fixture
def pg_db_url(pg_cluster) -> str:
    """A new empty database on the session cluster for this test (dropped after it)."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:16]}"
    url = pg_cluster.new_database(name)
    yield url
    pg_cluster.drop_database(name)
