"""The encoder in bf16 on CPUs with bf16 matrix units: the same words as fp32, close word times."""

from __future__ import annotations

import pytest
from conftest import SAMPLES

from vmgrade.asr.speedups.bf16 import cpu_has_native_bf16
from vmgrade.asr.transcribe import (
    PRECISION_BF16_ENCODER_INT8_LOGITS,
    PRECISION_INT8_LOGITS,
    TranscribeOptions,
    WhisperTranscriber,
)
from vmgrade.audio import load
from vmgrade.batch.ledger import settings_of
from vmgrade.pipeline import GradeOptions


def test_turned_off_it_says_fp32_and_changes_the_batch_key():
    off = WhisperTranscriber("base", TranscribeOptions(bf16_encoder=False, device="cpu"))
    assert not off.uses_bf16_encoder and off.precision == PRECISION_INT8_LOGITS
    assert "bf16_encoder" not in settings_of(GradeOptions(), "base", "v1")  # earlier keys stay
    assert settings_of(GradeOptions(bf16_encoder=False), "base", "v1")["bf16_encoder"] is False


def test_on_is_used_only_where_the_cpu_multiplies_bf16_natively():
    on = WhisperTranscriber("base", TranscribeOptions(device="cpu"))
    assert on.uses_bf16_encoder == cpu_has_native_bf16()
    expected = PRECISION_BF16_ENCODER_INT8_LOGITS if cpu_has_native_bf16() else PRECISION_INT8_LOGITS
    assert on.precision == expected


@pytest.mark.slow
def test_weights_stored_in_bf16_encode_bit_for_bit_as_converted_on_every_call():
    import copy

    import torch
    from whisper.model import AudioEncoder

    from vmgrade.asr.speedups.bf16 import bf16_encoder

    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=80, n_ctx=50, n_state=64, n_head=4, n_layer=2).eval()
    mel = torch.randn(1, 80, 100)
    stored = bf16_encoder(copy.deepcopy(encoder))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        converted = encoder(mel).float()  # autocast and whisper convert the fp32 weights each call
    with torch.no_grad():
        assert torch.equal(stored(mel), converted)
    dtypes = {type(m).__name__: m.weight.dtype for m in stored.modules() if hasattr(m, "weight")}
    assert dtypes == {"Conv1d": torch.bfloat16, "Linear": torch.bfloat16, "LayerNorm": torch.float32}


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no bf16 matrix units (AMX)")
@pytest.mark.parametrize("name", ["before_practice.wav", "call_export_mulaw.wav"])
def test_bf16_encoder_gives_the_fp32_words_at_close_times(name):
    audio = load(SAMPLES / name)
    fp32 = WhisperTranscriber("base", TranscribeOptions(bf16_encoder=False, device="cpu")).transcribe(audio)
    bf16 = WhisperTranscriber("base", TranscribeOptions(device="cpu")).transcribe(audio)
    assert [w.word for w in bf16.words] == [w.word for w in fp32.words]
    shifts = [abs(a.start - b.start) for a, b in zip(bf16.words, fp32.words)]
    assert max(shifts) <= 0.1 and sum(shifts) / len(shifts) <= 0.01
