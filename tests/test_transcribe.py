"""End to end with the real default model: words, timings, fillers, no invented text."""

from __future__ import annotations

import dataclasses
from difflib import SequenceMatcher

import numpy as np
import pytest
import soundfile as sf
from conftest import CORPUS, SAMPLES, SR, reference_text, wer

from vmgrade.asr.transcribe import Segment, Word, filter_hallucinations
from vmgrade.asr.windows import MAX_SPEEDUP
from vmgrade.audio import load


@pytest.mark.parametrize(
    "name,file",
    [("strong_wideband", "strong_wideband.flac"), ("followup_phone", "followup_phone.wav")],
)
def test_sample_transcript_matches_script(transcriber, name, file):
    audio = load(SAMPLES / file)
    transcript = transcriber.transcribe(audio)
    assert transcript.language == "en"
    assert transcript.engine == "openai-whisper" and transcript.model_name == "base"
    assert wer(reference_text(name), transcript.text) <= 0.15, transcript.text

    words = transcript.words
    assert len(words) > 20
    starts = [w.start for w in words]
    assert starts == sorted(starts), "word starts must not go backwards"
    for w in words:
        assert 0.0 <= w.start <= w.end <= audio.duration_s + 1e-6
        assert 0.0 <= w.probability <= 1.0
    for a, b in zip(words, words[1:]):
        assert b.start >= a.end - 0.02  # words do not overlap beyond rounding


def test_filler_words_are_kept(transcriber):
    """The rambling sample says "uh"/"um" ten times; the filler prompt keeps most."""
    transcript = transcriber.transcribe(load(SAMPLES / "rambling_phone.wav"))
    fillers = [w for w in transcript.words if w.word.lower().strip(",.!?") in {"uh", "um", "umm", "uhm"}]
    spoken = reference_text("rambling_phone").lower().replace(",", " ").split().count
    assert spoken("uh") + spoken("um") >= 8
    assert len(fillers) >= 5, transcript.text


@pytest.mark.parametrize("kind", ["silence_with_hiss", "white_noise", "hum", "tone"])
def test_no_text_is_invented_on_non_speech(transcriber, tmp_path, kind):
    rng = np.random.default_rng(0)
    n = SR * 6
    t = np.arange(n) / SR
    signal = {
        "silence_with_hiss": 0.002 * rng.standard_normal(n),
        "white_noise": 0.05 * rng.standard_normal(n),
        "hum": 0.1 * np.sin(2 * np.pi * 60 * t) + 0.003 * rng.standard_normal(n),
        "tone": 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)),
    }[kind]
    path = tmp_path / f"{kind}.wav"
    sf.write(str(path), signal.astype(np.float32), SR)
    transcript = transcriber.transcribe(load(path))
    assert transcript.text == "", transcript.text
    assert transcript.words == ()


def test_filter_drops_prompt_echo_and_stock_phrases():
    samples = (0.1 * np.random.default_rng(1).standard_normal(SR * 4)).astype(np.float32)

    def seg(text, no_speech=0.5, prob=0.05, ratio=1.2):
        words = tuple(Word(w, 0.1 * i, 0.1 * i + 0.1, prob) for i, w in enumerate(text.split()))
        return Segment(0.0, 2.0, text, -0.8, no_speech, ratio, words)

    prompt = "Uh, so, um, I was, uh, calling about, um, the, uh, thing."
    echo = seg("I'm, uh, calling about, um, the, uh, thing.")
    stock = seg("Thank you for watching!", prob=0.5)
    loop = seg("I'm, uh, " * 30, no_speech=0.1, prob=0.9, ratio=18.0)
    real = seg("Hi Dana, this is Mike with Northwind, calling about your warehouse.", 0.02, 0.9)
    kept, dropped = filter_hallucinations([echo, stock, loop, real], samples, SR, prompt=prompt)
    assert kept == [real]
    assert dropped == [echo, stock, loop]


jfk = CORPUS / "clips" / "jfk_inaugural.flac"


@pytest.mark.skipif(not jfk.exists(), reason="speech corpus not present (set VMGRADE_CORPUS)")
def test_jfk_reference_wer(transcriber):
    transcript = transcriber.transcribe(load(jfk))
    reference = (
        "And so my fellow Americans, ask not what your country can do for you, "
        "ask what you can do for your country."
    )
    assert wer(reference, transcript.text) <= 0.1, transcript.text


def test_encoder_is_run_once_per_window(transcriber):
    """Decoding and word alignment share one encoding of each 30-s window."""
    import torch
    import whisper

    model = transcriber.model
    samples = torch.from_numpy(load(SAMPLES / "followup_phone.wav").samples)
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(samples), whisper.audio.N_FRAMES)[None]
    calls = []
    hook = model.encoder.inner.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = model.encoder(mel)
        again = model.encoder(mel.clone())  # equal values, another tensor: find_alignment's case
        other = model.encoder(torch.zeros_like(mel))
    finally:
        hook.remove()
    assert again is first and len(calls) == 2
    assert not torch.equal(other, first)
    with torch.no_grad():
        assert torch.allclose(first, model.encoder.inner(mel))


def test_a_transcription_encodes_its_window_once_and_forgets_it_after(transcriber):
    model = transcriber.model
    audio = load(SAMPLES / "followup_phone.wav")  # one window
    calls = []
    hook = model.encoder.inner.register_forward_hook(lambda *_: calls.append(1))
    try:
        transcriber.transcribe(audio)
        assert len(calls) == 1  # decoding, filler probe and word alignment share it
        assert not model.encoder.holds()  # nothing held between files
        assert not any(block.cross_attn.key.holds() for block in model.decoder.blocks)
        transcriber.transcribe(audio)
        assert len(calls) == 2  # the same file again is encoded again
    finally:
        hook.remove()


def test_a_recording_just_over_one_window_is_read_in_one(transcriber):
    """strong_wideband's speech runs to 30.5 s: fitted, one encoder pass, times on the recording."""
    model = transcriber.model
    audio = load(SAMPLES / "strong_wideband.flac")
    calls = []
    hook = model.encoder.inner.register_forward_hook(lambda *_: calls.append(1))
    options = transcriber.options
    try:
        fitted = transcriber.transcribe(audio)
        assert len(calls) == 1
        transcriber.options = dataclasses.replace(options, fit_window=False)
        as_recorded = transcriber.transcribe(audio)
        assert len(calls) == 3  # two windows as recorded
    finally:
        transcriber.options = options
        hook.remove()
    assert 0.0 < fitted.asr_offset_s < 0.5 and 1.0 < fitted.asr_speedup <= MAX_SPEEDUP
    assert as_recorded.asr_offset_s == 0.0 and as_recorded.asr_speedup == 1.0
    assert fitted.to_dict()["asr_speedup"] == round(fitted.asr_speedup, 4)
    # The closing words lie past the fitted FIT_S (29.3 s): mapped back onto the recording.
    assert fitted.words[-1].end > 30.0
    # Words both transcripts share start at the same recording times.
    a, b = [w.word for w in fitted.words], [w.word for w in as_recorded.words]
    shifts = [
        abs(fitted.words[i + k].start - as_recorded.words[j + k].start)
        for i, j, n in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
        for k in range(n)
    ]
    assert len(shifts) > 50
    assert np.median(shifts) <= 0.05 and max(shifts) <= 0.3


def test_model_setup_uses_the_idle_cores_and_the_numpy_dtw(transcriber):
    import torch
    import whisper.timing

    from vmgrade.asr.speedups import dtw
    from vmgrade.asr.threads import cpu_cores

    transcriber.model  # noqa: B018 - loads the model
    assert 1 <= torch.get_num_threads() == transcriber.threads <= cpu_cores()
    assert whisper.timing.dtw_cpu is dtw.dtw
    assert whisper.timing.median_filter is dtw.median_filter
    cost = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    rows, cols = whisper.timing.dtw(torch.from_numpy(cost))
    assert list(rows) == [0, 1, 2] and list(cols) == [0, 1, 2]
