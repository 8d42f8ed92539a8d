"""The fast lane (``pytest -m "not slow"``) loads no Whisper model: conftest.py sees to it."""

from __future__ import annotations

import pytest
from conftest import NOT_SLOW_MESSAGE

from vmgrade.asr.transcribe import CTranslate2Transcriber, WhisperTranscriber


@pytest.mark.parametrize("engine", [WhisperTranscriber, CTranslate2Transcriber])
def test_a_model_is_refused_outside_slow_tests(request, engine):
    transcriber = object.__new__(engine)
    transcriber._model = object()  # as if loaded: handing it out is what counts
    with pytest.raises(AssertionError, match=NOT_SLOW_MESSAGE):
        _ = transcriber.model
    # and the test would fail at teardown even if the AssertionError were caught (Grader.grade does)
    assert len(request.node.refused_model_loads) == 1
    request.node.refused_model_loads.clear()


def test_a_model_fixture_makes_a_test_slow(request, transcriber):
    assert request.node.get_closest_marker("slow") is not None
