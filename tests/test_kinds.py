"""Know what is graded: voices, greetings by meaning, channels by speech, beeps that cannot be vowels.

Real audio throughout (the bundled voicemails in Piper's Joe, the Asterisk prompts in Allison's
voice, the espeak-ng greetings of samples/telephony/heldout) and the real models (the speaker
encoder, the sentence encoder); no Whisper, so these run in the fast lane.  The held-out figures
over 114 recordings built apart from the detectors are bench/recording_kinds.py's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load_script
from scipy.signal import butter, lfilter, sosfilt

from vmgrade.audio import resample
from vmgrade.batch import BatchOptions, run_batch
from vmgrade.calls import pick_channel, segment_call
from vmgrade.calls.greetings import leading_greeting
from vmgrade.calls.kinds import live_call
from vmgrade.calls.tones import detect_tones
from vmgrade.pipeline import GradeOptions, Grader
from vmgrade.transcript import Segment, Transcript, Word
from vmgrade.vad import detect_speech

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
TELEPHONY = SAMPLES / "telephony"
SR = 8000
make_calls = load_script("tools/make_calls.py", "make_calls_tool")
SINGLE_VOICE = ("after_practice.wav", "rambling_phone.wav", "validity/strong.flac", "validity/multi_ask.flac",
                "validity/rambling.flac", "strong_wideband.flac")


def _mono(path: Path, rate_hz: int = SR) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return resample(y, sr, rate_hz) if sr != rate_hz else y


def _sharp_phone(y: np.ndarray) -> np.ndarray:
    return sosfilt(butter(8, [300, 3400], "bandpass", fs=SR, output="sos"), y).astype(np.float32)


def _car(y: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = sosfilt(butter(2, 200, fs=SR, output="sos"), np.cumsum(rng.standard_normal(len(y))))
    n -= n.mean()
    n *= np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10) / np.mean(n**2))
    return (y + n).astype(np.float32)


def _ulaw(y: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1), SR, format="WAV", subtype="ULAW")
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


def _kind(y: np.ndarray):
    return live_call(None, y, SR, segment_call(y, SR))


# -------------------------------------------------------------------------- voices


@pytest.mark.parametrize("name", SINGLE_VOICE)
@pytest.mark.parametrize("channel", ["clean", "sharp_phone", "car_5db"])
def test_one_voice_is_never_a_live_call(name, channel):
    """One rep in a car or on a sharp phone band is a voicemail, not a conversation (the pitch check
    refused such files)."""
    y = _mono(SAMPLES / name)
    y = {"clean": y, "sharp_phone": _sharp_phone(y), "car_5db": _car(y, 5.0)}[channel]
    assert _kind(y) is None


def _turns(parts: list[np.ndarray], gap_s: float = 0.5) -> np.ndarray:
    gap = np.zeros(int(gap_s * SR), np.float32)
    return np.concatenate([p for part in parts for p in (part / np.max(np.abs(part)) * 0.5, gap)])


def _pieces(y: np.ndarray, seconds: float, n: int) -> list[np.ndarray]:
    speech, _ = detect_speech(y, SR, vad="energy")
    start = speech[0][0] if speech else 0.0
    return [y[int((start + i * seconds) * SR): int((start + (i + 1) * seconds) * SR)] for i in range(n)]


@pytest.mark.parametrize("channel", ["clean", "ulaw"])
def test_three_voices_taking_turns_are_a_live_call(channel):
    joe = _pieces(_mono(SAMPLES / "rambling_phone.wav"), 3.5, 3)
    allison = [_mono(p) for p in sorted(TELEPHONY.glob("p*.wav"))]
    espeak = [_mono(TELEPHONY / "heldout" / "doctor_office_espeak.flac")]
    y = _turns([joe[0], allison[0], joe[1], espeak[0], allison[1], joe[2], allison[2]])
    kind = _kind(_ulaw(y) if channel == "ulaw" else y)
    assert kind is not None and kind.kind == "live_call"
    ev = kind.evidence
    assert ev["method"] == "speaker_embeddings" and ev["voices"] >= 2 and ev["switches"] >= 3
    assert 0.5 <= kind.confidence <= 0.99


# -------------------------------------------------------------------------- greetings by meaning


def _words(text: str, start_s: float = 0.0, step_s: float = 0.3) -> list[Word]:
    return [Word(w, start_s + i * step_s, start_s + i * step_s + 0.25, 0.9)
            for i, w in enumerate(text.split())]


def _telephony_texts() -> list[str]:
    """The greetings' own words, from samples/telephony/README.md's tables."""
    lines = (TELEPHONY / "README.md").read_text().splitlines()
    rows = [line.split("|") for line in lines if line.startswith("| ")]
    return [r[2].strip() for r in rows if len(r) > 3 and r[1].strip().endswith((".wav", ".flac"))
            and "beep" not in r[2] and r[2].strip() != "words"]


@pytest.fixture(scope="module")
def encode():
    from vmgrade.content.embed import shared_encoder

    return shared_encoder().encode


def test_greetings_read_as_greetings(encode):
    texts = _telephony_texts()
    assert len(texts) >= 5
    for text in texts:
        found = leading_greeting(_words(text), encode)
        assert found.whole, (text, found.sentences)


@pytest.mark.parametrize("script", sorted((SAMPLES / "scripts").glob("*.txt")), ids=lambda p: p.stem)
def test_messages_do_not_read_as_greetings(script, encode):
    found = leading_greeting(_words(script.read_text()), encode)
    assert not found.whole and found.end_s is None, found.sentences


def test_a_greeting_then_a_message_ends_where_the_greeting_does(encode):
    greeting = _telephony_texts()[0]
    message = (SAMPLES / "scripts" / "after_practice.txt").read_text()
    g = _words(greeting)
    m = _words(message, start_s=g[-1].end + 1.5)
    found = leading_greeting(g + m, encode)
    assert not found.whole and found.end_s == pytest.approx(g[-1].end)


# -------------------------------------------------------------------------- channels and tones


@pytest.mark.parametrize("rep", [0, 1])
def test_a_side_of_line_noise_is_never_the_rep(rep):
    """A dialer export whose far side holds only line noise (-55 dBFS, peaks near -42): the rep's side."""
    y = _mono(SAMPLES / "after_practice.wav")
    noise = np.random.default_rng(1).standard_normal(len(y)).astype(np.float32)
    noise *= 10 ** (-55 / 20) / np.sqrt(np.mean(noise**2))
    sides = [y, noise] if rep == 0 else [noise, y]
    channel, evidence = pick_channel(np.stack(sides), SR)
    assert channel == rep and evidence["reason"] == "only_channel_with_speech"


def _held_vowel(f0_hz: tuple[float, float], seconds: float, formants) -> np.ndarray:
    """A vowel held on one pitch, its first formant on F0: one spectral peak holds ~98% of the band."""
    n = int(seconds * SR)
    phase = np.cumsum(np.linspace(*f0_hz, n) / SR)
    y = lfilter([1], [1, -0.97], (np.diff(np.floor(phase), prepend=0) > 0).astype(float))
    for f, bw in formants:
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * f / SR
        y = lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], y)
    return (y / np.max(np.abs(y)) * 0.5).astype(np.float32)


@pytest.mark.parametrize("formants", [((380, 60), (2200, 100), (2900, 160)),
                                      ((380, 40), (2200, 100), (2900, 160))])
def test_a_held_vowel_inside_speech_is_not_a_beep(formants):
    msg = _mono(SAMPLES / "after_practice.wav")
    y = np.concatenate([msg[: 3 * SR], _held_vowel((370.0, 368.0), 0.5, formants), msg[3 * SR: 8 * SR]])
    for signal in (y, _ulaw(y)):
        assert not [t for t in detect_tones(signal, SR)[0] if t.kind == "beep"]


@pytest.mark.parametrize("hz, seconds", [(400.0, 0.3), (600.0, 0.15), (1000.0, 0.5), (1400.0, 1.0)])
def test_generated_beeps_are_still_beeps(hz, seconds):
    y = np.concatenate([np.zeros(SR // 2, np.float32), make_calls.tone((hz,), seconds, dbfs=-10.0),
                        np.zeros(SR // 2, np.float32)])
    for signal in (y, _ulaw(y)):
        assert [t.kind for t in detect_tones(signal, SR)[0]] == ["beep"]


def test_ringback_through_a_phone_band_is_one_tone_per_ring():
    """440 + 480 Hz at near-equal strength: the stronger peak swaps frame to frame; still ringback."""
    y = np.concatenate([make_calls.ringback("us", 2), np.zeros(SR, np.float32)])
    y = _ulaw(sosfilt(butter(2, [300, 3400], "bandpass", fs=SR, output="sos"), y).astype(np.float32))
    tones = detect_tones(y, SR)[0]
    assert [t.kind for t in tones] == ["ringback", "ringback"]


def test_special_information_tones_are_not_beeps():
    sit = np.concatenate([make_calls.tone((f,), s, dbfs=-12.0) for f, s in ((913.8, 0.274), (1370.6, 0.274),
                                                                           (1776.7, 0.38))])
    y = np.concatenate([np.zeros(SR // 2, np.float32), sit, np.zeros(SR, np.float32)])
    assert not [t for t in detect_tones(y, SR)[0] if t.kind == "beep"]


# -------------------------------------------------------------------------- the pipeline and batch


class ReadsTheScript:
    """A recogniser stand-in that hears ``text`` spread over the clip's speech (no Whisper here)."""

    engine = "fake"
    model_name = "fake"

    def __init__(self, text: str) -> None:
        self.text = text

    def transcribe(self, audio) -> Transcript:
        speech, _ = detect_speech(audio.samples, audio.sample_rate, vad="energy")
        tokens = self.text.split()
        if not speech or not tokens:
            return Transcript("", "en", (), 0.9, "fake", "fake")
        start, end = speech[0][0], speech[-1][1]
        step = (end - start) / len(tokens)
        words = tuple(Word(t, start + i * step, start + (i + 0.8) * step, 0.9) for i, t in enumerate(tokens))
        return Transcript(self.text, "en", (Segment(start, end, self.text, -0.2, 0.01, 1.2, words),), 0.01,
                          "fake", "fake")


def test_batch_counts_a_greeting_apart_and_exits_ok(tmp_path):
    """A mailbox greeting with no beep is 'not graded (1 greeting)', never an F, and fails nothing."""
    greeting = TELEPHONY / "greeting_office.flac"
    text = next(t for t in _telephony_texts() if t.startswith("You have reached the front desk"))
    grader = Grader(GradeOptions(), transcriber=ReadsTheScript(text))
    out = tmp_path / "out"
    result = run_batch([str(greeting)], BatchOptions(out=out, history=False, progress=False),
                       echo=lambda line: None, grader=grader)
    assert result.exit_status == 0 and result.failed == 0
    assert result.summary["totals"]["not_graded"] == 1
    assert result.summary["not_graded"] == {"greeting_only": 1}
    assert result.summary["grade_distribution"]["F"] == 0
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["error"]["code"] == "no_message" and record["recording"]["kind"] == "greeting_only"
    csv_text = (out / "summary.csv").read_text()
    assert "not_graded" in csv_text and "greeting_only" in csv_text
    assert "not graded" in (out / "index.html").read_text()


def test_whole_file_per_upload_grades_a_greeting_anyway(tmp_path):
    from vmgrade.pipeline import Context

    text = next(t for t in _telephony_texts() if t.startswith("You have reached the front desk"))
    grader = Grader(GradeOptions(), transcriber=ReadsTheScript(text))
    report = grader.grade(TELEPHONY / "greeting_office.flac", Context(whole_file=True))
    assert report.ok and report.recording.kind == "voicemail"
    assert report.to_dict()["context"] == {"whole_file": True}


def test_every_renderer_says_what_a_not_graded_file_is(tmp_path):
    from vmgrade.render.html import render_report_html
    from vmgrade.render.terminal import to_text

    text = next(t for t in _telephony_texts() if t.startswith("You have reached the front desk"))
    grader = Grader(GradeOptions(), transcriber=ReadsTheScript(text))
    report = grader.grade(TELEPHONY / "greeting_office.flac")
    assert report.not_graded and not report.ok
    d = report.to_dict()
    assert d["recording"]["kind"] == "greeting_only" and 0.5 <= d["recording"]["confidence"] <= 1.0
    assert to_text(d).startswith("NOT GRADED (greeting")
    page = render_report_html(d)
    assert "Not graded: greeting only" in page and "Could not grade" not in page


def test_web_upload_whole_file_field():
    from vmgrade.pipeline import Context
    from vmgrade.web.recordings import upload_context

    ticked = upload_context({"whole_file": "on", "caller_name": "Tom"})
    assert ticked == {"caller_name": "Tom", "whole_file": True}
    assert upload_context({"whole_file": ""}) == {}  # unticked: the dedup key as before
    assert Context(**upload_context({"whole_file": "on"})).whole_file is True
