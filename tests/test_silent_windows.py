"""A window after the last speech is not decoded (vmgrade.asr.speedups.silent_windows)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES

from vmgrade.asr.speedups import silent_windows
from vmgrade.asr.speedups.silent_windows import Heard
from vmgrade.audio import Audio, load

RATE = 16000


def _bursts(spans_s: list[tuple[float, float]], duration_s: float) -> np.ndarray:
    """Voice-band noise over ``spans_s`` and a faint hiss elsewhere (a fixed seed)."""
    rng = np.random.default_rng(7)
    y = 0.001 * rng.standard_normal(int(duration_s * RATE))
    t = np.arange(len(y)) / RATE
    for start, end in spans_s:
        inside = (t >= start) & (t < end)
        y[inside] += 0.2 * np.sin(2 * np.pi * 220 * t[inside]) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t[inside]))
    return y.astype(np.float32)


class _Segment:
    def __init__(self, end: float, word_ends: list[float]):
        self.end = end
        self.words = [type("W", (), {"end": e})() for e in word_ends]


def test_speech_after_the_last_word_heard_is_found_and_its_own_end_is_not():
    heard = Heard(_bursts([(0.5, 4.0), (9.0, 10.0)], 12.0), RATE)
    heard.hear(_Segment(4.2, [1.0, 3.95]))  # the words' end, not the segment's, is where faster-whisper seeks
    assert heard.until_s == pytest.approx(3.95)
    assert heard.speech_after()  # the burst at 9-10 s is still to come
    heard.hear(_Segment(10.0, [9.9]))
    assert not heard.speech_after()  # the VAD's hold after 9.9 s is the last word's own end
    silent = Heard(_bursts([], 5.0), RATE)
    assert silent.speech_after() is False


@pytest.fixture(scope="module")
def fast():
    pytest.importorskip("faster_whisper")
    from vmgrade.asr.transcribe import CTranslate2Transcriber, TranscribeOptions

    # with the filler prompt (--filler-prompt), whose last window ends on two timestamps here
    return CTranslate2Transcriber("base", TranscribeOptions(threads=2))


def _words(transcriber, audio, monkeypatch, *, skip: bool):
    with monkeypatch.context() as m:
        if not skip:  # every window holds speech "after" any word: nothing is passed over
            m.setattr(silent_windows, "TAIL_SLACK_S", -1e9)
        before = transcriber.silent_windows.skipped if transcriber.silent_windows else 0
        words = [(w.word.strip(), round(w.start, 2)) for w in transcriber.transcribe(audio).words]
        return words, transcriber.silent_windows.skipped - before


@pytest.mark.slow
def test_the_silence_after_the_last_word_costs_no_window_and_adds_no_words(fast, monkeypatch):
    """before_practice.wav ends "Thanks, bye." and 1 s of silence: faster-whisper's second window
    there read a second "Bye." into it (with the filler prompt)."""
    audio = load(SAMPLES / "before_practice.wav")
    skipping, skipped = _words(fast, audio, monkeypatch, skip=True)
    everything, none = _words(fast, audio, monkeypatch, skip=False)
    assert skipped >= 1 and none == 0
    assert everything[: len(skipping)] == skipping  # the same words, up to where the silence starts
    assert [w for w, _ in skipping[-2:]] == ["Thanks.", "Bye."]
    assert all(start < 22.5 for _, start in everything[len(skipping):])


@pytest.mark.slow
def test_speech_after_a_pause_in_a_later_window_is_still_read(fast, monkeypatch):
    """Two messages with 4 s of silence between, 41 s in all: the second window holds the second one."""
    first = load(SAMPLES / "before_practice.wav").samples
    second = load(SAMPLES / "strong_wideband.flac").samples[: 14 * RATE]
    y = np.concatenate([first, np.zeros(4 * RATE, np.float32), second])
    audio = Audio(y, load(SAMPLES / "before_practice.wav").source)
    words, _ = _words(fast, audio, monkeypatch, skip=True)
    later = " ".join(w for w, start in words if start > len(first) / RATE + 2)
    assert "Northwind" in later and "Denver" in later, words
