"""Where the recogniser runs: --device auto/cpu/cuda, and both engines on a CUDA GPU (skipped without one)."""

from __future__ import annotations

import pytest
from conftest import SAMPLES, reference_text, wer

from vmgrade.asr.transcribe import (
    PRECISION_FP16,
    CTranslate2Transcriber,
    TranscribeOptions,
    WhisperTranscriber,
    resolve_device,
)
from vmgrade.batch.ledger import result_key, settings_of
from vmgrade.errors import ModelError
from vmgrade.pipeline import GradeOptions, Grader


def _torch_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _ct2_gpu() -> bool:
    try:
        import ctranslate2
    except ImportError:
        return False
    return ctranslate2.get_cuda_device_count() > 0


def test_cpu_is_cpu_and_a_bad_name_is_refused():
    assert resolve_device("openai-whisper", "cpu") == "cpu"
    assert resolve_device("ctranslate2", "cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("openai-whisper", "tpu")
    with pytest.raises(ValueError, match="device must be one of"):
        GradeOptions(device="gpu")


@pytest.mark.skipif(_torch_gpu(), reason="this machine has a CUDA GPU")
def test_without_a_gpu_auto_is_the_cpu_and_cuda_is_a_named_error():
    assert resolve_device("openai-whisper") == "cpu"
    transcriber = WhisperTranscriber("base", TranscribeOptions(device="auto", bf16_encoder=False))
    assert transcriber.device == "cpu" and transcriber.precision == "fp32-int8-logits"
    with pytest.raises(ModelError) as info:
        resolve_device("openai-whisper", "cuda")
    assert info.value.code == "device_unavailable" and "--device cpu" in str(info.value)


@pytest.mark.skipif(_torch_gpu(), reason="this machine has a CUDA GPU")
def test_a_grade_asked_for_on_a_missing_gpu_is_an_error_record_naming_the_fix():
    report = Grader(GradeOptions(device="cuda")).grade(SAMPLES / "before_practice.wav").to_dict()
    assert report["error"]["code"] == "device_unavailable"


def test_a_device_asked_for_by_name_changes_the_batch_key_auto_does_not():
    default = settings_of(GradeOptions(), "base", "v1")
    assert "device" not in default  # keys of earlier runs stay as they were
    assert settings_of(GradeOptions(device="cuda"), "base", "v1")["device"] == "cuda"
    assert result_key("h", default) != result_key("h", settings_of(GradeOptions(device="cpu"), "base", "v1"))


@pytest.mark.slow
@pytest.mark.skipif(not _torch_gpu(), reason="needs a CUDA build of torch and a GPU")
def test_openai_whisper_on_the_gpu_gives_the_cpu_transcript_in_fp16():
    gpu = Grader(GradeOptions(device="cuda")).grade(SAMPLES / "strong_wideband.flac").to_dict()
    cpu = Grader(GradeOptions(device="cpu")).grade(SAMPLES / "strong_wideband.flac").to_dict()
    assert gpu["model"]["precision"] == PRECISION_FP16
    assert wer(reference_text("strong_wideband"), gpu["transcript"]["text"]) <= 0.1
    assert wer(cpu["transcript"]["text"], gpu["transcript"]["text"]) <= 0.05
    assert abs(gpu["score"] - cpu["score"]) <= 5


@pytest.mark.slow
@pytest.mark.skipif(not _ct2_gpu(), reason="needs CTranslate2 with CUDA and a GPU")
def test_ctranslate2_on_the_gpu_runs_fp16():
    from vmgrade.audio import load

    transcriber = CTranslate2Transcriber("base", TranscribeOptions(device="cuda", initial_prompt=None))
    assert transcriber.compute_type == "float16" and transcriber.precision == PRECISION_FP16
    transcript = transcriber.transcribe(load(SAMPLES / "strong_wideband.flac"))
    assert wer(reference_text("strong_wideband"), transcript.text) <= 0.1
