"""The filler probe: unprompted words, fillers placed by the prompted model, timed like words."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLES, reference_text

from vmgrade.asr.speedups.filler_probe import FILLER_WORDS, filler_token_ids
from vmgrade.asr.transcribe import TranscribeOptions, WhisperTranscriber
from vmgrade.audio import load

FILLER = re.compile(r"^(um+|uh+m?|hmm)$")


@pytest.fixture(scope="module")
def unprompted():
    return WhisperTranscriber("base", TranscribeOptions(initial_prompt=None))


def _words(transcript, *, fillers: bool) -> list[str]:
    out = [re.sub(r"[^a-z0-9']", "", w.word.lower()) for w in transcript.words]
    return [w for w in out if w and bool(FILLER.match(w)) == fillers]


def test_filler_tokens_are_the_hesitations_only(transcriber):
    from whisper.tokenizer import get_tokenizer

    model = transcriber.model
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
    ids = filler_token_ids(tokenizer)
    assert {tokenizer.encode(" um")[0], tokenizer.encode(" uh")[0], tokenizer.encode(" Um")[0]} <= ids
    for token in ids:
        assert tokenizer.decode([token]).strip().lower() in FILLER_WORDS
    assert tokenizer.encode(" I")[0] not in ids and tokenizer.encode(",")[0] not in ids


@pytest.mark.parametrize("file", ["rambling_phone.wav", "before_practice.wav", "strong_wideband.flac"])
def test_probe_changes_no_word_but_the_fillers(transcriber, unprompted, file):
    """Every non-filler word is the unprompted decode's, in order: the prompt cannot nudge them."""
    audio = load(SAMPLES / file)
    probed, plain = transcriber.transcribe(audio), unprompted.transcribe(audio)
    assert _words(probed, fillers=False) == _words(plain, fillers=False)
    if file == "strong_wideband.flac":  # fluent: nothing to insert
        assert _words(probed, fillers=True) == [] and probed.text == plain.text


def test_probe_finds_the_spoken_fillers_and_times_them(transcriber, unprompted):
    """The rambling sample says "uh"/"um" ten times; unprompted Whisper writes almost none."""
    audio = load(SAMPLES / "rambling_phone.wav")
    script = reference_text("rambling_phone").lower().replace(",", " ").split()
    spoken = len([w for w in script if FILLER.match(w)])
    words = transcriber.transcribe(audio).words
    found = [w for w in words if FILLER.match(re.sub(r"[^a-z]", "", w.word.lower()))]
    without = _words(unprompted.transcribe(audio), fillers=True)
    assert spoken == 10 and len(without) <= 2
    assert 7 <= len(found) <= spoken
    for w in found:  # aligned like any word: inside the recording, with a length
        assert 0.0 <= w.start < w.end <= audio.duration_s


def test_reused_audio_keys_give_the_same_logits(transcriber):
    """Later passes keep the first pass's cross-attention keys and values: same numbers as a fresh pass."""
    import torch
    import whisper
    from whisper.tokenizer import get_tokenizer

    from vmgrade.asr.speedups.textdecoder import KVCache, forward

    model = transcriber.model
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
    samples = torch.from_numpy(load(SAMPLES / "before_practice.wav").samples)
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(samples), whisper.audio.N_FRAMES)[None]
    tokens = list(tokenizer.sot_sequence) + tokenizer.encode(" Hi Marcus, it's Prairie")
    with torch.no_grad():
        xa = model.encoder(mel)
        cache = KVCache()
        first = forward(model.decoder, tokens, xa, cache)
        cache.truncate(0)
        again = forward(model.decoder, tokens, xa, cache)
        plain = model.decoder(torch.tensor([tokens]), xa)
    assert len(cache.audio) == 2 * len(model.decoder.blocks) and cache.length == len(tokens)
    top = plain.topk(5, dim=-1).indices
    assert torch.equal(first, again)
    assert torch.allclose(first.gather(-1, top), plain.gather(-1, top), atol=1e-3)
