"""vmgrade patches openai-whisper's internals: another release is refused with the fix."""

from __future__ import annotations

import importlib.metadata

import pytest

from vmgrade.asr.speedups import startup
from vmgrade.errors import ModelError

FIX = "pip install --no-deps openai-whisper==20250625"


def _installed(monkeypatch, whisper_version: str | None) -> None:
    """Make ``importlib.metadata`` report ``whisper_version`` for openai-whisper (None: not installed)."""
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name != "openai-whisper":
            return real(name)
        if whisper_version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return whisper_version

    monkeypatch.setattr(importlib.metadata, "version", version)


def test_the_pinned_release_is_the_installed_one():
    assert startup.WHISPER_FIX == FIX
    startup.check_whisper_version()  # this environment has the pinned release


def test_another_release_is_refused_with_the_fix(monkeypatch):
    _installed(monkeypatch, "20240930")
    with pytest.raises(ModelError) as info:
        startup.import_whisper()
    assert info.value.code == "engine_version_mismatch"
    assert "20240930" in info.value.message and FIX in info.value.message


def test_a_missing_whisper_says_what_to_install(monkeypatch):
    _installed(monkeypatch, None)
    with pytest.raises(ModelError) as info:
        startup.check_whisper_version()
    assert info.value.code == "engine_not_installed" and FIX in info.value.message


def test_the_transcriber_checks_before_loading_the_model(monkeypatch):
    from vmgrade.asr.transcribe import WhisperTranscriber

    _installed(monkeypatch, "20231117")
    transcriber = WhisperTranscriber("tiny.en")
    with pytest.raises(ModelError) as info:
        _ = transcriber.model  # loads on first use: the check comes first
    assert info.value.code == "engine_version_mismatch" and FIX in info.value.message
