"""Draft-and-check greedy decoding: whisper's greedy tokens, fewer fp32 passes."""

from __future__ import annotations

import pytest
from conftest import SAMPLES

from vmgrade.asr.transcribe import TranscribeOptions, WhisperTranscriber
from vmgrade.audio import load


@pytest.fixture(scope="module")
def one_step_transcriber():
    return WhisperTranscriber("base", TranscribeOptions(speculative=False))


def _window(path):
    import torch
    import whisper

    samples = torch.from_numpy(load(path).samples)
    return whisper.pad_or_trim(whisper.log_mel_spectrogram(samples), whisper.audio.N_FRAMES)


@pytest.mark.parametrize("file", ["followup_phone.wav", "rambling_phone.wav"])
def test_same_tokens_as_whisper_greedy(transcriber, file):
    import whisper
    from whisper.decoding import DecodingOptions

    from vmgrade.asr.speedups import speculative
    from vmgrade.asr.speedups.quantize import int8_draft_decoder

    model = transcriber.model
    mel = _window(SAMPLES / file)
    options = DecodingOptions(language="en", temperature=0.0, fp16=False)
    reference = whisper.decoding.decode(model, mel, options)
    drafted = speculative.decode(model, mel, options, draft=int8_draft_decoder(model.decoder),
                                 fallback=whisper.decoding.decode)
    assert drafted.tokens == reference.tokens and drafted.text == reference.text
    assert drafted.no_speech_prob == pytest.approx(reference.no_speech_prob, abs=1e-4)
    assert drafted.avg_logprob == pytest.approx(reference.avg_logprob, abs=1e-2)


def test_same_transcript_as_one_step_decoding(transcriber, one_step_transcriber):
    audio = load(SAMPLES / "strong_wideband.flac")  # two windows
    fast, slow = transcriber.transcribe(audio), one_step_transcriber.transcribe(audio)
    assert fast.text == slow.text
    assert [(w.word, w.start, w.end) for w in fast.words] == [(w.word, w.start, w.end) for w in slow.words]


def test_continuing_pass_matches_a_fresh_one(transcriber):
    """A multi-token pass after cached positions sees exactly the causal context of a full pass."""
    import torch
    from whisper.tokenizer import get_tokenizer

    from vmgrade.asr.speedups.textdecoder import KVCache, forward

    model = transcriber.model
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
    tokens = list(tokenizer.sot_sequence) + tokenizer.encode(" Hi Alicia, it's Tom Ray from Cobalt")
    with torch.no_grad():
        xa = model.encoder(_window(SAMPLES / "followup_phone.wav")[None])
        full = forward(model.decoder, tokens, xa, KVCache())
        cache = KVCache()
        forward(model.decoder, tokens[:5], xa, cache)
        cache.truncate(4)  # drop one position, as after a rejected draft
        rest = forward(model.decoder, tokens[4:], xa, cache)
        whisper_pass = model.decoder(torch.tensor([tokens]), xa)
    assert torch.equal(rest.argmax(-1), full[:, 4:].argmax(-1))
    top = full.topk(3, dim=-1).indices
    assert torch.allclose(rest.gather(-1, top[:, 4:]), full.gather(-1, top)[:, 4:], atol=1e-3)
    assert torch.allclose(full.gather(-1, top), whisper_pass.gather(-1, top), atol=1e-3)


def test_a_pass_for_several_calls_gives_each_what_its_own_pass_gives(transcriber):
    """forward_many: two windows, caches of different lengths, one token and several at once."""
    import torch
    from whisper.tokenizer import get_tokenizer

    from vmgrade.asr.speedups.textdecoder import KVCache, fill_audio, forward, forward_many

    model = transcriber.model
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
    texts = [list(tokenizer.sot_sequence) + tokenizer.encode(" Hi Alicia, it's Tom Ray from Cobalt"),
             list(tokenizer.sot_sequence) + tokenizer.encode(" Good morning, this is")]
    with torch.no_grad():
        windows = [model.encoder(_window(SAMPLES / name)[None])
                   for name in ("followup_phone.wav", "before_practice.wav")]
        alone, caches = [], []
        for tokens, xa, cut in zip(texts, windows, (7, 3), strict=True):
            cache = KVCache()
            forward(model.decoder, tokens[:cut], xa, cache)
            caches.append(cache)
            alone.append(forward(model.decoder, tokens[cut:], xa, cache))
            cache.truncate(cut)
        for xa, cache in zip(windows, caches, strict=True):
            fill_audio(model.decoder, xa, cache)
        together = forward_many(model.decoder, [(tokens[cut:], xa, cache) for tokens, xa, cache, cut
                                                in zip(texts, windows, caches, (7, 3), strict=True)])
    for a, b, tokens, cache in zip(alone, together, texts, caches, strict=True):
        assert b.shape == a.shape
        assert torch.equal(b.argmax(-1), a.argmax(-1))
        top = a.topk(3, dim=-1).indices
        assert torch.allclose(b.gather(-1, top), a.gather(-1, top), atol=1e-4)
        assert cache.length == len(tokens)  # extended by its own tokens only


def test_beam_search_and_sampling_use_whispers_decoder(transcriber):
    from whisper.decoding import DecodingOptions

    from vmgrade.asr.speedups import speculative

    calls = []
    mel = _window(SAMPLES / "followup_phone.wav")
    for options in (DecodingOptions(language="en", beam_size=5, fp16=False),
                    DecodingOptions(language="en", temperature=0.4, fp16=False)):
        speculative.decode(transcriber.model, mel, options, draft=None,
                           fallback=lambda model, mel, options: calls.append(options.beam_size))
    assert calls == [5, None]
