"""The ctranslate2 engine (faster-whisper): same interface and transcript type as openai-whisper."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, SR, reference_text, wer

from vmgrade.asr import weights
from vmgrade.asr.transcribe import CTranslate2Transcriber, TranscribeOptions
from vmgrade.asr.windows import MAX_SPEEDUP
from vmgrade.audio import load
from vmgrade.errors import ModelError
from vmgrade.fileio import CACHE_ENV
from vmgrade.pipeline import GradeOptions, Grader

# A guard only: CI installs the extra through `.[test]`.
pytest.importorskip("faster_whisper")


@pytest.fixture(scope="module")
def tiny():
    return CTranslate2Transcriber("tiny.en", TranscribeOptions(beam_size=1))


def test_transcribes_a_sample_with_monotonic_word_times(tiny):
    audio = load(SAMPLES / "strong_wideband.flac")
    transcript = tiny.transcribe(audio)
    assert transcript.engine == "ctranslate2" and transcript.model_name == "tiny.en"
    assert transcript.language == "en"
    assert wer(reference_text("strong_wideband"), transcript.text) <= 0.15
    words = transcript.words
    assert len(words) > 50
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= audio.duration_s for w in words)
    assert all(0.0 <= w.probability <= 1.0 for w in words)


def test_a_recording_just_over_one_window_is_read_in_one(tiny):
    audio = load(SAMPLES / "strong_wideband.flac")  # speech to 30.5 s
    calls = []
    encode = tiny.model.encode
    tiny.model.encode = lambda features: calls.append(1) or encode(features)
    try:
        transcript = tiny.transcribe(audio)
    finally:
        del tiny.model.encode
    assert len(calls) == 1
    assert 1.0 < transcript.asr_speedup <= MAX_SPEEDUP and transcript.asr_offset_s > 0.0
    assert 30.0 < transcript.words[-1].end <= audio.duration_s  # past the fitted FIT_S (29.3 s)


def test_white_noise_gives_no_text(tiny, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.wav"
    sf.write(str(path), (0.1 * rng.standard_normal(6 * SR)).astype(np.float32), SR)
    transcript = tiny.transcribe(load(path))
    assert transcript.text == ""
    assert transcript.words == ()


def test_each_engine_has_its_own_filler_default():
    from vmgrade.asr.transcribe import FILLER_PROMPT
    from vmgrade.cli import _grade_options, build_parser

    def prompt_of(*flags):
        options = _grade_options(build_parser().parse_args(["grade", "x.wav", "--model", "tiny.en", *flags]))
        return Grader(options).transcriber.options.initial_prompt

    assert prompt_of() == FILLER_PROMPT  # openai-whisper: the filler probe
    assert prompt_of("--engine", "ctranslate2") is None  # greedy, unprompted: fillers from the audio
    assert prompt_of("--engine", "ctranslate2", "--filler-prompt") == FILLER_PROMPT
    assert prompt_of("--no-filler-prompt") is None
    with pytest.raises(SystemExit):
        prompt_of("--filler-prompt", "--no-filler-prompt")


@pytest.mark.slow
def test_grader_records_the_engine_in_the_report():
    report = Grader(GradeOptions(engine="ctranslate2")).grade(SAMPLES / "strong_wideband.flac")
    assert report.ok, report.error
    record = report.to_dict()
    assert 1 <= record["model"].pop("threads") <= os.cpu_count()
    assert record["model"] == {"engine": "ctranslate2", "name": "base", "precision": "int8"}
    assert "northwind" in record["transcript"]["text"].lower()


@pytest.mark.slow
def test_cli_engine_flag(capsys):
    from vmgrade.cli import EXIT_OK, main

    status = main(["grade", str(SAMPLES / "followup_phone.wav"), "--format", "json",
                   "--model", "tiny.en", "--engine", "ctranslate2"])
    record = json.loads(capsys.readouterr().out)
    assert status == EXIT_OK
    assert 1 <= record["model"].pop("threads") <= os.cpu_count()
    assert record["model"] == {"engine": "ctranslate2", "name": "tiny.en", "precision": "int8"}
    assert record["transcript"]["words"]


def test_openai_whisper_checkpoint_is_refused_clearly(tmp_path):
    pt = tmp_path / "base.pt"
    pt.write_bytes(b"not used")
    for path in (pt, tmp_path / "missing.pt"):
        with pytest.raises(ModelError) as info:
            Grader(GradeOptions(engine="ctranslate2", model=str(path)))
        assert info.value.code == "model_not_ctranslate2"
        assert "--engine openai-whisper" in info.value.message


def test_a_ctranslate2_folder_is_used_as_it_is():
    folder = weights.ctranslate2_dir("tiny.en")
    assert weights.ctranslate2_dir(str(folder)) == folder
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {
        p.name for p in folder.iterdir()
    }


def test_folder_without_tokenizer_is_refused(tmp_path):
    # faster-whisper would otherwise fetch a tokenizer from the internet
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError) as info:
        weights.ctranslate2_dir(str(tmp_path))
    assert "tokenizer.json" in info.value.message


def test_corrupt_package_leaves_no_assembled_model(tmp_path, monkeypatch):
    real = weights.PACKAGED_MODELS["tiny.en"]
    src = weights._package_dirs(real)[0]
    dst = tmp_path / "fake_tiny_ct2"
    dst.mkdir()
    (dst / "__init__.py").write_text("")
    (dst / "model").mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (dst / "model" / name).write_bytes((src / "model" / name).read_bytes())
    blob = bytearray((src / "model" / "model.bin").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (dst / "model" / "model.bin").write_bytes(bytes(blob))
    fake = dataclasses.replace(real, name="faketiny", modules=("fake_tiny_ct2",))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(weights.PACKAGED_MODELS, "faketiny", fake)
    with pytest.raises(ModelError) as info:
        weights.ctranslate2_dir("faketiny")
    assert info.value.code == "model_corrupt" and "sha256" in info.value.message
    assert not list((tmp_path / "cache").rglob("model.bin*"))


def test_missing_faster_whisper_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import now raises ImportError
    with pytest.raises(ModelError) as info:
        Grader(GradeOptions(engine="ctranslate2", model="tiny.en"))
    assert info.value.code == "engine_not_installed"
    assert 'pip install ".[fast]"' in info.value.message


def test_unknown_engine():
    with pytest.raises(ModelError) as info:
        Grader(GradeOptions(engine="nope"))
    assert info.value.code == "unknown_engine"
