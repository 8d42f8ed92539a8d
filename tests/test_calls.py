"""Call-recording segmentation (vmgrade.calls) on recordings built by tools/make_calls.py.

Fast: no Whisper.  Every recording is assembled from samples/ (the Asterisk
prompts and Piper greetings in samples/telephony/, the bundled voicemails).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from vmgrade import audio, calls
from vmgrade.calls import (
    SEGMENT_KINDS,
    CallSegment,
    conversation_evidence,
    greeting_end_from_words,
    pick_channel,
    segment_call,
)
from vmgrade.calls.kinds import live_call

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PLAIN_VOICEMAILS = sorted(  # every bundled voicemail but the call-recording sample (call_*)
    p for p in [*SAMPLES.glob("*.*"), *(SAMPLES / "validity").glob("*.*")]
    if p.suffix in (".wav", ".flac") and not p.name.startswith("call_")
)


make_calls = load_script("tools/make_calls.py", "make_calls_tool")
GRID = make_calls.grid()


@cache
def built(index: int):
    return make_calls.build_call(GRID[index])


def _mono(samples: np.ndarray) -> np.ndarray:
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def test_grid_covers_the_issue_cases():
    specs = GRID
    assert {s.ringback for s in specs} >= {"us", "uk", None}
    assert {s.encoding for s in specs} == {"ulaw", "alaw", "pcm16"}
    assert {s.beep_hz for s in specs} == {440.0, 850.0, 1000.0, 1400.0}
    assert {s.beeps for s in specs} == {1, 2}
    assert min(s.beep_s for s in specs) <= 0.2 and max(s.beep_s for s in specs) >= 1.2
    assert any(s.dtmf for s in specs) and any(s.channels == 2 for s in specs)
    assert any(s.greeting in make_calls.PERSON_GREETINGS for s in specs)
    assert {s.after for s in specs} >= {"busy", "prompt"}


def test_message_start_within_tolerance_over_the_grid():
    errors = []
    for i in range(len(GRID)):
        b = built(i)
        seg = segment_call(_mono(b.samples), b.rate_hz)
        assert seg.is_call_recording, GRID[i]
        assert seg.message_start_s is not None, GRID[i]
        errors.append(abs(seg.message_start_s - b.truth["message_start_s"]))
    assert float(np.median(errors)) <= 0.15
    assert max(errors) <= 0.5, errors


@pytest.mark.parametrize("index", range(len(GRID)))
def test_beeps_found(index):
    b = built(index)
    seg = segment_call(_mono(b.samples), b.rate_hz)
    truth = b.truth["beeps"]
    assert len(seg.beeps) == len(truth)
    for found, (start, end) in zip(seg.beeps, truth):
        assert abs(found.start_s - start) <= 0.1 and abs(found.end_s - end) <= 0.1
        assert found.kind == "beep"


def test_segments_cover_the_file_in_order():
    b = built(0)  # US ringback, DTMF, carrier greeting, beep
    seg = segment_call(_mono(b.samples), b.rate_hz)
    assert seg.segments[0].start_s == 0.0
    assert seg.segments[-1].end_s == pytest.approx(b.truth["duration_s"], abs=0.01)
    for a, c in zip(seg.segments, seg.segments[1:]):
        assert a.end_s == pytest.approx(c.start_s, abs=1e-9)
    kinds = [s.kind for s in seg.segments]
    assert set(kinds) <= set(SEGMENT_KINDS)
    order = [k for k in kinds if k != "silence"]
    assert order.index("dtmf") < order.index("ringback") < order.index("greeting") < order.index("beep")
    assert order.index("beep") < order.index("message")
    greeting = next(s for s in seg.segments if s.kind == "greeting")
    assert greeting.start_s == pytest.approx(b.truth["greeting"][0], abs=0.2)
    assert seg.evidence["boundary"] == "last_beep"
    assert CallSegment("beep", 1.0, 1.5).to_dict() == {"kind": "beep", "start_s": 1.0, "end_s": 1.5}


def test_uk_ringback_is_not_a_beep():
    b = make_calls.build_call(make_calls.CallSpec(ringback="uk", rings=3, beep_hz=440.0, beep_s=0.4))
    seg = segment_call(b.samples, b.rate_hz)
    assert len(seg.beeps) == 1
    assert [t["name"] for t in seg.evidence["tones"]].count("ringback_uk") == 6


def test_hang_up_tone_is_after_the_message():
    b = make_calls.build_call(make_calls.CallSpec(after="busy", encoding="alaw"))
    seg = segment_call(b.samples, b.rate_hz)
    assert seg.segments[-2].kind == "after" or seg.segments[-1].kind == "after"
    assert seg.message_end_s == pytest.approx(b.truth["message_end_s"], abs=0.3)


def test_greeting_only_has_no_message():
    b = make_calls.build_call(make_calls.CallSpec())
    cut = int((b.truth["beeps"][-1][1] + 0.3) * b.rate_hz)
    seg = segment_call(b.samples[:cut], b.rate_hz)
    assert seg.is_call_recording and len(seg.beeps) == 1
    assert seg.message_start_s is None and seg.message_end_s is None


def test_resampled_input_gives_the_same_message_start():
    b = built(3)
    y16 = audio.resample(_mono(b.samples), b.rate_hz, 16000)
    seg = segment_call(y16, 16000)
    assert seg.message_start_s == pytest.approx(b.truth["message_start_s"], abs=0.15)


@pytest.mark.parametrize("path", PLAIN_VOICEMAILS, ids=lambda p: p.name)
def test_plain_voicemail_is_not_a_call_recording(path):
    y = audio.load(path).samples
    seg = segment_call(y, audio.SAMPLE_RATE)
    assert not seg.beeps and not seg.evidence["tones"]
    assert not seg.is_call_recording
    message = [s for s in seg.segments if s.kind == "message"]
    assert len(message) == 1 and seg.message_start_s < 1.5
    assert seg.message_end_s > len(y) / audio.SAMPLE_RATE - 4.0
    assert conversation_evidence(y, audio.SAMPLE_RATE) is None


@pytest.mark.parametrize("index", [i for i, s in enumerate(GRID) if s.channels == 2])
def test_pick_channel_picks_the_rep(index):
    b = built(index)
    channel, evidence = pick_channel(b.samples.T, b.rate_hz)
    assert channel == b.truth["rep_channel"], evidence
    assert evidence["reason"] == "speaks_after_beep"


def test_pick_channel_mixes_identical_channels_and_mono():
    b = built(0)
    assert pick_channel(np.stack([b.samples, b.samples]), b.rate_hz)[0] is None
    assert pick_channel(b.samples[None, :], b.rate_hz) == (None, {"reason": "mono"})


def test_pick_channel_without_a_beep_takes_the_later_speaker():
    b = make_calls.build_call(make_calls.CallSpec(beeps=0, channels=2, rep_channel=1, crosstalk_db=-25.0))
    channel, evidence = pick_channel(b.samples.T, b.rate_hz)
    assert channel == 1 and evidence["reason"] == "speaks_last"


def _live_call(b):
    x = b.samples.T if b.samples.ndim == 2 else b.samples
    mix = x.mean(axis=0) if x.ndim == 2 else x
    return live_call(x if x.ndim == 2 else None, mix, b.rate_hz, segment_call(mix, b.rate_hz))


@pytest.mark.parametrize("channels", [2, 1])
def test_conversation_is_flagged(channels):
    b = make_calls.build_conversation(channels=channels)
    kind = _live_call(b)
    assert kind is not None and kind.kind == "live_call"
    assert kind.evidence["switches"] >= 3
    # one channel: voices told apart by speaker embeddings, never by pitch alone
    assert kind.evidence["method"] == ("channels" if channels == 2 else "speaker_embeddings")


@pytest.mark.parametrize("index", [0, 3, 5, 11])
def test_voicemail_call_recordings_are_not_conversations(index):
    b = built(index)
    x = b.samples.T if b.samples.ndim == 2 else b.samples
    if x.ndim == 2:
        assert conversation_evidence(x, b.rate_hz) is None
    assert _live_call(b) is None


def _words(text: str, start_s: float, step_s: float = 0.3):
    return [(w, start_s + i * step_s, start_s + i * step_s + 0.25) for i, w in enumerate(text.split())]


def test_greeting_end_from_words_after_cue_and_pause():
    greeting = _words("Hi, you've reached Tiffany at Ridgeway Dental. Please leave me a message!", 0.5)
    end = greeting[-1][2]
    message = _words("Hi Tiffany, this is Mike Chen from Northwind.", end + 1.2)
    speech = [(0.5, end), (end + 1.2, message[-1][2])]
    assert greeting_end_from_words(greeting + message, speech) == pytest.approx(end)


def test_greeting_end_takes_the_rest_of_the_cue_sentence():
    greeting = _words("The person you are calling is not available.", 0.4)
    tail = _words("Otherwise please hang up now.", greeting[-1][2] + 0.3)
    message = _words("Hey Dana, Mike from Northwind here.", tail[-1][2] + 1.0)
    words = greeting + tail + message
    speech = [(0.4, tail[-1][2]), (message[0][1], message[-1][2])]
    assert greeting_end_from_words(words, speech) == pytest.approx(tail[-1][2])


def test_greeting_end_none_without_cue_or_late_cue():
    words = _words("Hi Dana, this is Mike from Northwind, calling about your warehouse.", 0.5)
    assert greeting_end_from_words(words, [(0.5, words[-1][2])]) is None
    late = _words("please leave a message", 40.0)
    assert greeting_end_from_words(words + late, [(0.5, 45.0)]) is None


def _timed(text: str, start_s: float, gap_at: int | None = None, gap_s: float = 1.2):
    """Words 0.3 s apart from ``start_s``; a pause of ``gap_s`` before word ``gap_at``."""
    out, t = [], start_s
    for i, w in enumerate(text.split()):
        if i == gap_at:
            t += gap_s
        out.append((w, t, t + 0.25))
        t += 0.3
    return out


def _speech_of(words, pause_s: float = 0.6):
    """VAD-like intervals: words closer than ``pause_s`` are one stretch of speech."""
    spans = []
    for _, s, e in words:
        if spans and s - spans[-1][1] < pause_s:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


@pytest.mark.parametrize("prompt", [
    "If you are satisfied with your message press one. To re-record press two.",
    "please enter your numeric message after the tone",
    "Your message has been sent. Goodbye.",
])
def test_a_mailbox_prompt_after_the_message_is_found_by_its_words(prompt):
    rep = "Hi Dana this is Mike with Northwind call me back at four one five five five five zero one nine"
    words = _timed(f"{rep} {prompt}", 10.0, gap_at=len(rep.split()))
    start_s = calls.after_prompt_start_from_words(words, _speech_of(words))
    assert start_s == pytest.approx(words[len(rep.split())][1])


@pytest.mark.parametrize("text,gap_at", [
    # the rep's own "press" and "leave a message", with no clear pause before them
    ("I saw your press release so leave me a message or call me back any time this week", None),
    # a clear pause, but what follows is the rep's and long: no prompt is that long
    ("Hi Dana it is Mike " + "and we help teams forecast their inventory across sites " * 6
     + "so press on and call me", 5),
    # a clear pause, short speech after it, but no cue: the rep's sign-off
    ("Hi Dana it is Mike from Northwind with a quick idea for your Denver site. Thanks again talk soon", 14),
])
def test_the_reps_own_words_are_not_a_mailbox_prompt(text, gap_at):
    words = _timed(text, 3.0, gap_at=gap_at)
    assert calls.after_prompt_start_from_words(words, _speech_of(words)) is None
