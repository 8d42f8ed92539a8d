"""Call recordings through the pipeline: the rep's message graded alone, on the file's clock.

Recordings are built by tools/make_calls.py from the bundled voicemails and the
real carrier prompts in samples/telephony/.  The fast tests use a stand-in
recogniser that puts a word every 0.4 s of VAD speech on the clip it is given,
so the clocks can be checked without Whisper; the slow ones grade with Whisper.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, load_script

from vmgrade.asr.transcribe import Segment, Transcript, Word
from vmgrade.audio import load
from vmgrade.pipeline import Context, GradeOptions, Grader, to_file_clock
from vmgrade.vad import detect_speech

make_calls = load_script("tools/make_calls.py", "make_calls_tool")
GOOD = "validity/strong_phone.wav"  # a good voicemail: name and company early, number twice
GREETING_FINDINGS = {"late_caller_name", "late_company", "too_long"}  # what a graded greeting caused
ADDED_KEYS = {"segments", "message_start_s", "message_end_s", "is_call_recording"}


class WordsAtSpeech:
    """A recogniser stand-in: a word every 0.4 s of the clip's speech, times on the clip's clock."""

    engine = "fake"
    model_name = "fake"

    def __init__(self) -> None:
        self.clips_s: list[float] = []

    def transcribe(self, audio) -> Transcript:
        self.clips_s.append(len(audio.samples) / audio.sample_rate)
        speech, _ = detect_speech(audio.samples, audio.sample_rate, vad="energy")
        words = []
        for start, end in speech:
            t = start
            while t + 0.3 <= end:
                words.append(Word("word", t, t + 0.3, 0.9))
                t += 0.4
        segments = (Segment(words[0].start, words[-1].end, " ".join(w.word for w in words), -0.2, 0.01, 1.2,
                            tuple(words)),) if words else ()
        return Transcript(" ".join(w.word for w in words), "en", segments, 0.01, "fake", "fake")


@cache
def built(**spec) -> make_calls.BuiltCall:
    return make_calls.build_call(make_calls.CallSpec(**spec))


def write(tmp_path: Path, b, name: str = "call.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(b.wav_bytes)
    return path


def fake_grade(path: Path, **options):
    fake = WordsAtSpeech()
    report = Grader(GradeOptions(**options), transcriber=fake).grade(path)
    return report, fake


def greeting_only(path: Path) -> Path:
    """Ringback, a carrier greeting and the beep; nobody speaks after it."""
    greeting = make_calls._level(make_calls._trim(make_calls._load(make_calls.greeting_path(
        "privacy-if-error-leave-message-or-hangup"))), -6.0)
    y = np.concatenate([make_calls.silence(0.4), make_calls.ringback("us", 1), greeting,
                        make_calls.silence(0.5), make_calls.tone((1000.0,), 0.5, dbfs=-10.0),
                        make_calls.silence(3.0)])
    sf.write(str(path), y, make_calls.RATE_HZ, subtype="ULAW")
    return path


# --------------------------------------------------------------------------
# Fast: the stand-in recogniser
# --------------------------------------------------------------------------


def test_mono_call_is_graded_on_the_message_on_the_file_clock(tmp_path):
    b = built(message=GOOD)
    report, fake = fake_grade(write(tmp_path, b))
    assert report.ok, report.error
    d = report.to_dict()
    beep_end = b.truth["beeps"][-1][1]
    assert d["is_call_recording"] is True
    assert d["message_start_s"] == pytest.approx(b.truth["message_start_s"], abs=0.15)
    assert [s["kind"] for s in d["segments"]].count("beep") == 1
    assert {"ringback", "greeting", "beep", "message"} <= {s["kind"] for s in d["segments"]}
    # one recogniser pass, over the span after the beep only
    assert len(fake.clips_s) == 1 and fake.clips_s[0] < b.truth["duration_s"] - beep_end + 0.1
    words = d["transcript"]["words"]
    assert words[0]["start"] >= beep_end
    assert words[0]["start"] == pytest.approx(b.truth["message_start_s"], abs=0.15)
    m = d["metrics"]
    assert m["speech_start_s"] == pytest.approx(b.truth["message_start_s"], abs=0.15)
    assert m["leading_silence_s"] == pytest.approx(b.truth["message_start_s"] - beep_end, abs=0.15)
    length_s = b.truth["message_end_s"] - b.truth["message_start_s"]
    assert m["message_length_s"] == pytest.approx(length_s, abs=0.3)
    assert all(p["start_s"] >= beep_end for p in m["pauses"])
    assert min(m["pitch_track"]["times_s"]) >= beep_end - 0.05
    assert all(iv[0] >= beep_end for iv in m["speech_intervals"])
    assert all(f["start_s"] is None or f["start_s"] >= beep_end for f in d["feedback"])
    assert d["duration_s"] == pytest.approx(b.truth["duration_s"], abs=0.01)  # the file's, for the player
    message = next(s for s in d["segments"] if s["kind"] == "message")
    assert message["text"].startswith("word")
    assert d["audio"]["channel_used"] == "mono"


@pytest.mark.parametrize("rep_channel", [0, 1])
def test_two_channel_export_grades_the_reps_side(tmp_path, rep_channel):
    b = built(message=GOOD, channels=2, rep_channel=rep_channel)
    report, _ = fake_grade(write(tmp_path, b))
    assert report.ok, report.error
    audio = report.to_dict()["audio"]
    assert audio["channels"] == 2
    assert audio["channel_used"] == ("left", "right")[rep_channel]
    assert audio["channel_reason"] == "speaks_after_beep"
    assert report.to_dict()["message_start_s"] == pytest.approx(b.truth["message_start_s"], abs=0.15)


def test_channel_option_overrides_the_pick(tmp_path):
    path = write(tmp_path, built(message=GOOD, channels=2, rep_channel=1))
    report, _ = fake_grade(path, channel="mix")
    assert report.to_dict()["audio"]["channel_used"] == "mix"
    # per file (manifest, web upload): the context's channel wins over the run's option
    fake = WordsAtSpeech()
    report = Grader(GradeOptions(channel="mix"), transcriber=fake).grade(path, Context(channel="right"))
    assert report.to_dict()["audio"]["channel_used"] == "right"
    assert report.to_dict()["context"] == {"channel": "right"}


def test_whole_file_mixes_two_channels_unless_a_side_is_asked(tmp_path):
    path = write(tmp_path, built(message=GOOD, channels=2, rep_channel=1))
    report, _ = fake_grade(path, whole_file=True)
    assert report.to_dict()["audio"]["channel_used"] == "mix"
    report, _ = fake_grade(path, whole_file=True, channel="right")
    assert report.to_dict()["audio"]["channel_used"] == "right"


def test_greeting_only_is_no_message(tmp_path):
    report, fake = fake_grade(greeting_only(tmp_path / "greeting_only.wav"))
    assert report.error is not None and report.error.code == "no_message"
    assert "beep" in report.error.message
    # the recogniser reads the part before the beep once: a greeting, or a message that ended in a tone?
    assert len(fake.clips_s) == 1 and fake.clips_s[0] < 15.0
    assert report.recording is not None and report.recording.kind == "greeting_only"


@pytest.mark.parametrize("channels", [2, 1])
def test_live_conversation_is_not_a_voicemail(tmp_path, channels):
    b = make_calls.build_conversation(channels=channels)
    report, fake = fake_grade(write(tmp_path, b, f"conversation_{channels}.wav"))
    assert report.error is not None and report.error.code == "not_a_voicemail"
    assert "switches" in report.error.message and "--whole-file" in report.error.message
    assert fake.clips_s == []
    # --whole-file grades it anyway, as before
    report, _ = fake_grade(tmp_path / f"conversation_{channels}.wav", whole_file=True)
    assert report.ok


def test_whole_file_is_the_old_behaviour(tmp_path):
    b = built(message=GOOD)
    report, fake = fake_grade(write(tmp_path, b), whole_file=True)
    d = report.to_dict()
    assert not ADDED_KEYS & set(d)
    assert fake.clips_s == [pytest.approx(b.truth["duration_s"], abs=0.01)]
    assert d["transcript"]["words"][0]["start"] < b.truth["beeps"][0][0]  # the greeting is graded too


def test_plain_voicemail_is_graded_whole_as_before(tmp_path):
    path = SAMPLES / "followup_phone.wav"
    new, fake = fake_grade(path)
    old, _ = fake_grade(path, whole_file=True)
    assert fake.clips_s == [pytest.approx(20.0, abs=0.05)]
    a, b = new.to_dict(), old.to_dict()
    assert a["is_call_recording"] is False and a["audio"]["channel_used"] == "mono"
    for d in (a, b):
        d.pop("timings_s")
    assert a["recording"]["kind"] == b["recording"]["kind"] == "voicemail"
    assert {k: v for k, v in a.items() if k not in ADDED_KEYS | {"recording"}} == {
        k: v for k, v in b.items() if k != "recording"}


def test_to_file_clock_moves_every_time_once():
    b = built(message=GOOD)
    audio = load(SAMPLES / GOOD)
    transcript = WordsAtSpeech().transcribe(audio)
    from vmgrade import delivery

    metrics = delivery.measure(audio, transcript)
    t2, m2 = to_file_clock(transcript, 10.0), to_file_clock(metrics, 10.0)
    assert [w.start - 10.0 for w in t2.words] == pytest.approx([w.start for w in transcript.words])
    assert t2.segments[0].start == pytest.approx(transcript.segments[0].start + 10.0)
    assert m2.speech_start_s == pytest.approx(metrics.speech_start_s + 10.0)
    assert [p.start_s for p in m2.pauses] == pytest.approx([p.start_s + 10.0 for p in metrics.pauses])
    assert m2.pitch_track.times_s[0] == pytest.approx(metrics.pitch_track.times_s[0] + 10.0)
    moved = [w.start_s + 10.0 for w in metrics.pace_windows]
    assert [w.start_s for w in m2.pace_windows] == pytest.approx(moved)
    # lengths do not move
    assert (m2.leading_silence_s, m2.message_length_s, m2.duration_s) == (
        metrics.leading_silence_s, metrics.message_length_s, metrics.duration_s)
    assert to_file_clock(metrics, 0.0) is metrics
    assert b.truth["message_start_s"] > 0


def test_audio_keeps_two_channels_only_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((8000 * 3, 2)) * 0.1).astype(np.float32)
    stereo[:, 1] *= 0.5
    sf.write(str(tmp_path / "st.wav"), stereo, 8000, subtype="PCM_16")
    kept = load(tmp_path / "st.wav", keep_channels=True)
    plain = load(tmp_path / "st.wav")
    assert plain.channels is None
    assert kept.channels.shape == (2, len(kept.samples))
    np.testing.assert_array_equal(kept.samples, plain.samples)  # the mix is computed as without
    assert np.std(kept.channels[1]) == pytest.approx(0.5 * np.std(kept.channels[0]), rel=0.05)
    assert load(SAMPLES / "followup_phone.wav", keep_channels=True).channels is None  # mono: nothing more
    sf.write(str(tmp_path / "three.wav"), np.repeat(stereo[:, :1], 3, axis=1), 8000, subtype="PCM_16")
    assert load(tmp_path / "three.wav", keep_channels=True).channels is None  # more than two: the mix


def test_options_reject_an_unknown_channel():
    with pytest.raises(ValueError):
        GradeOptions(channel="centre")
    with pytest.raises(ValueError):
        Context(channel="centre")


def test_resume_keys_gain_the_call_options_only_when_set():
    from vmgrade.batch import settings_of

    default = settings_of(GradeOptions(), "base", "1")
    assert "whole_file" not in default and "channel" not in default
    assert settings_of(GradeOptions(whole_file=True), "base", "1")["whole_file"] is True
    assert settings_of(GradeOptions(channel="left"), "base", "1")["channel"] == "left"


def test_manifest_channel_column(tmp_path):
    from vmgrade.batch import BatchError, read_manifest, result_key

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "m.csv").write_text("file,channel\na.wav,Right\n")
    (row,) = read_manifest(tmp_path / "m.csv").values()
    assert row.context.channel == "right"
    assert row.context.call_facts() == {}
    settings = {"model": "base"}
    assert result_key("h", settings, row.context) != result_key("h", settings, Context())
    assert result_key("h", settings, Context(channel=None)) == result_key("h", settings)
    (tmp_path / "bad.csv").write_text("file,channel\na.wav,centre\n")
    with pytest.raises(BatchError, match="channel"):
        read_manifest(tmp_path / "bad.csv")


def test_cli_flags():
    from vmgrade.cli import _grade_options, build_parser

    for command in (["grade", "x.wav"], ["compare", "a.wav", "b.wav"], ["batch", "x"]):
        args = build_parser().parse_args([*command, "--channel", "right", "--whole-file"])
        options = _grade_options(args)
        assert (options.channel, options.whole_file) == ("right", True)
        assert _grade_options(build_parser().parse_args(command)).channel == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["grade", "x.wav", "--channel", "centre"])


def test_web_upload_channel_field():
    from vmgrade.web.recordings import upload_context
    from vmgrade.web.storage import UploadError

    both = {"caller_name": "Tom", "channel": "left"}
    assert upload_context({"channel": "left", "caller_name": "Tom"}) == both
    assert upload_context({"channel": "auto"}) == {}  # the default: the dedup key as before
    with pytest.raises(UploadError):
        upload_context({"channel": "centre"})


def test_renderers_show_the_call(tmp_path):
    from vmgrade.render.html import render_report_html
    from vmgrade.render.terminal import to_text as render_text

    b = built(message=GOOD, channels=2, rep_channel=1)
    path = write(tmp_path, b)
    report, _ = fake_grade(path)
    text = render_text(report)
    assert "Call recording" in text and "right channel" in text and "beep" in text
    html = render_report_html(report.to_dict(), audio_path=path)
    assert 'id="call-recording"' in html and "message (graded alone)" in html and "right channel" in html
    plain, _ = fake_grade(SAMPLES / "followup_phone.wav")
    assert "Call recording" not in render_text(plain)
    assert 'id="call-recording"' not in render_report_html(plain.to_dict())


# --------------------------------------------------------------------------
# Slow: Whisper
# --------------------------------------------------------------------------


def _codes(report) -> set[str]:
    return {f.code for f in report.grade.findings}


@pytest.mark.slow
@pytest.mark.parametrize("spec", [dict(), dict(channels=2, rep_channel=1)], ids=["mono_ulaw", "two_channel"])
def test_dialer_export_grades_like_the_voicemail_alone(graded, tmp_path, spec):
    b = built(message=GOOD, **spec)
    alone = graded(SAMPLES / GOOD)
    call = graded(write(tmp_path, b))
    assert alone.ok and call.ok, call.error
    assert abs(call.grade.score - alone.grade.score) <= 6.0
    assert not GREETING_FINDINGS & (_codes(call) - _codes(alone))
    d = call.to_dict()
    first = d["transcript"]["words"][0]["start"]
    assert b.truth["beeps"][-1][1] <= first <= b.truth["message_start_s"] + 0.5
    assert "leave a message" not in d["transcript"]["text"].lower()
    if spec:
        assert d["audio"]["channel_used"] == "right"


@pytest.mark.slow
def test_a_prompt_after_the_message_is_not_graded_as_the_reps(graded, tmp_path):
    """Mono: an error beep and a carrier prompt after the rep hangs up ("please enter your
    numeric message after the tone") are found by their words and cut off."""
    b = built(message="followup_phone.wav", greeting="greeting_tiffany", after="prompt")
    alone = graded(SAMPLES / "followup_phone.wav")
    call = graded(write(tmp_path, b))
    assert alone.ok and call.ok, call.error
    d = call.to_dict()
    assert abs(d["message_end_s"] - b.truth["message_end_s"]) <= 0.5, d["segments"]
    after = [s for s in d["segments"] if s["kind"] == "after"]
    assert after and "message" in after[0]["text"].lower()
    assert "numeric" not in d["transcript"]["text"].lower()
    assert _codes(call) == _codes(alone)
    assert abs(call.grade.score - alone.grade.score) <= 6.0


@pytest.mark.slow
def test_whole_file_grades_the_greeting_as_before(transcriber, tmp_path):
    path = write(tmp_path, built(message=GOOD))
    report = Grader(GradeOptions(whole_file=True), transcriber=transcriber).grade(path)
    assert report.ok
    assert "message" in report.transcript.text.lower() and "segments" not in report.to_dict()


@pytest.mark.slow
def test_plain_sample_is_unchanged(graded, transcriber):
    path = SAMPLES / "followup_phone.wav"
    new = graded(path).to_dict()
    old = Grader(GradeOptions(whole_file=True), transcriber=transcriber).grade(path).to_dict()
    for d in (new, old):
        d.pop("timings_s")
    # what the file is was found by the segmentation, or taken from the option: same kind either way
    assert new.pop("recording")["kind"] == old.pop("recording")["kind"] == "voicemail"
    assert {k: v for k, v in new.items() if k not in ADDED_KEYS} == old


@pytest.mark.slow
def test_person_greeting_without_beep_is_found_from_the_words(graded, tmp_path):
    b = built(message=GOOD, greeting="greeting_tiffany", beeps=0)
    report = graded(write(tmp_path, b))
    assert report.ok, report.error
    d = report.to_dict()
    assert d["message_start_s"] == pytest.approx(b.truth["message_start_s"], abs=0.5)
    greeting = [s for s in d["segments"] if s["kind"] == "greeting"]
    assert greeting and "message" in (greeting[-1].get("text") or "").lower()
    assert not GREETING_FINDINGS & _codes(report)
    assert abs(report.grade.score - graded(SAMPLES / GOOD).grade.score) <= 6.0


@pytest.mark.slow
def test_bundled_call_sample(graded):
    d = graded(SAMPLES / "call_export_mulaw.wav").to_dict()
    assert d["is_call_recording"] and d["message_start_s"] == pytest.approx(13.31, abs=0.15)
    assert json.dumps(d)  # serialisable as the README's run prints it
