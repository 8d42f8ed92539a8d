"""The int8 vocabulary projection: exact where decoding decides, same transcripts as fp32."""

from __future__ import annotations

import pytest
from conftest import SAMPLES

from vmgrade.asr.transcribe import (
    PRECISION_BF16_ENCODER,
    PRECISION_BF16_ENCODER_INT8_LOGITS,
    PRECISION_FP32,
    PRECISION_INT8_LOGITS,
    TranscribeOptions,
    WhisperTranscriber,
)
from vmgrade.audio import load


@pytest.fixture(scope="module")
def fp32_transcriber():
    # the same encoder as the default transcriber's (bf16 where the CPU has AMX): only the logits differ
    return WhisperTranscriber("base", TranscribeOptions(int8_logits=False))


def _int8_logits_precision(transcriber) -> str:
    return PRECISION_BF16_ENCODER_INT8_LOGITS if transcriber.uses_bf16_encoder else PRECISION_INT8_LOGITS


def _decoder_inputs(model, path):
    """Real decoder inputs: a sample's encoded first window and a prompt-like token run."""
    import torch
    import whisper
    from whisper.tokenizer import get_tokenizer

    samples = torch.from_numpy(load(path).samples)
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(samples), whisper.audio.N_FRAMES)[None]
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
    tokens = list(tokenizer.sot_sequence) + tokenizer.encode(" Hi, this is Mike Chen with Northwind")
    with torch.no_grad():
        features = model.encoder(mel)
    return torch.tensor([tokens]), features, tokenizer


def test_int8_logits_are_exact_where_decoding_decides(transcriber, fp32_transcriber):
    import torch

    model, reference = transcriber.model, fp32_transcriber.model
    assert transcriber.precision == _int8_logits_precision(transcriber)
    assert type(model.decoder).__name__ == "Int8VocabDecoder"
    tokens, features, tokenizer = _decoder_inputs(model, SAMPLES / "strong_wideband.flac")
    with torch.no_grad():
        fast = model.decoder(tokens, features)
        exact = reference.decoder(tokens, features)
    assert fast.shape == exact.shape
    # the choice at every position, and the exact values of the top tokens
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
    top = exact.topk(5, dim=-1).indices
    assert torch.allclose(fast.gather(-1, top), exact.gather(-1, top), atol=1e-4)
    # every special and timestamp token (no-speech probability, timestamp rules)
    specials = slice(tokenizer.eot, None)
    assert torch.allclose(fast[..., specials], exact[..., specials], atol=1e-4)
    # the rest are int8 approximations, close but not equal
    rest = fast[..., : tokenizer.eot] - exact[..., : tokenizer.eot]
    assert 0 < rest.abs().max() < 0.05 * exact.abs().max()


def test_int8_logits_give_the_fp32_transcript(transcriber, fp32_transcriber):
    audio = load(SAMPLES / "before_practice.wav")
    fast, exact = transcriber.transcribe(audio), fp32_transcriber.transcribe(audio)
    assert fp32_transcriber.precision == (PRECISION_BF16_ENCODER if fp32_transcriber.uses_bf16_encoder
                                          else PRECISION_FP32)
    assert fast.text == exact.text
    assert [w.word for w in fast.words] == [w.word for w in exact.words]
    for a, b in zip(fast.words, exact.words):
        assert abs(a.start - b.start) <= 0.02 and abs(a.end - b.end) <= 0.02


def test_reports_record_the_precision(grader):
    report = grader.grade(SAMPLES / "followup_phone.wav").to_dict()
    assert report["model"].pop("threads") == grader.transcriber.threads
    assert report["model"] == {"engine": "openai-whisper", "name": "base",
                               "precision": _int8_logits_precision(grader.transcriber)}


def test_decoder_and_draft_built_side_by_side(fp32_transcriber):
    import torch

    from vmgrade.asr.speedups.quantize import int8_decoders
    from vmgrade.asr.speedups.textdecoder import KVCache, forward

    model = fp32_transcriber.model
    tokens, features, tokenizer = _decoder_inputs(model, SAMPLES / "strong_wideband.flac")
    decoder, draft = int8_decoders(model.decoder, tokenizer.eot)
    assert type(decoder).__name__ == "Int8VocabDecoder" and draft.project == decoder.project_int8
    assert len(draft.blocks) == len(model.decoder.blocks)
    with torch.no_grad():
        exact = model.decoder(tokens, features)
        drafted = forward(draft, tokens[0].tolist(), features, KVCache())
    # an approximation that agrees with fp32 on most next tokens
    agree = (drafted.argmax(-1) == exact.argmax(-1)).float().mean().item()
    assert agree >= 0.8
    assert int8_decoders(model.decoder, tokenizer.eot, draft=False)[1] is None
