"""Comparison of graded voicemails: deltas, noticeable changes, transcript diff,
summary, trends; on report dicts with known numbers and on the bundled samples."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SAMPLES

from vmgrade.compare import Comparison, compare_reports, load_reports, transcript_diff
from vmgrade.errors import VmgradeError
from vmgrade.render.compare_text import format_text
from vmgrade.scoring import default_rubric_path, load_rubric

DIMENSION_KEYS = ("opening", "relevance", "call_to_action", "brevity", "pace", "fluency", "voice",
                  "audio_quality")


def make_report(file="a.wav", *, score=70.0, grade="C", dims=None, rate_wpm=150.0, length_s=25.0,
                fillers_per_min=2.0, times_said=2, digits_per_s=2.0, asks=1, feedback=(), text=None,
                context=None, **metrics):
    """A report dict as Report.to_dict() writes it, with the numbers under test set."""
    dims = {k: 80.0 for k in DIMENSION_KEYS} | (dims or {})
    words = (text or "Hi Dana it's Sam from Acme call me at 415-555-0198").split()
    mentions = [{"digits": "4155550198", "start_s": 20.0 + 4 * i, "end_s": 23.0 + 4 * i,
                 "digits_per_s": digits_per_s} for i in range(times_said)]
    return {
        "schema_version": 1,
        "file": file,
        "duration_s": length_s + 1.0,
        "context": context or {},
        "transcript": {"text": " ".join(words),
                       "words": [{"word": w, "start": 0.4 * i, "end": 0.4 * i + 0.3, "probability": 0.9}
                                 for i, w in enumerate(words)]},
        "metrics": {"speech_start_s": 0.5, "message_length_s": length_s, "rate_wpm": rate_wpm,
                    "filler_rate_per_min": fillers_per_min, "longest_pause_ms": 600.0,
                    "leading_silence_s": 0.5, "f0_sd_st": 3.5, "word_loudness_sd_db": 5.0, "snr_db": 30.0,
                    "clipping_ratio": 0.0} | metrics,
        "content": {"identity": {"name_first_s": 1.0, "company_first_s": 2.0}, "ask_count": asks,
                    "callback": {"times_said": times_said, "mentions": mentions}},
        "score": score,
        "grade": grade,
        "dimensions": [{"key": k, "label": k.replace("_", " ").title(), "score": v, "weight": 10}
                       for k, v in dims.items()],
        "feedback": [{"code": code, "severity": "major", "dimension": dim, "message": f"fix {code}",
                      "start_s": 1.0, "end_s": 2.0, "gain": 3.0} for code, dim in feedback],
        "tips": [],
        "strengths": [],
    }


def metric(c: Comparison, key: str):
    return next(m for m in c.metrics if m.key == key)


def dimension(c: Comparison, key: str):
    return next(d for d in c.dimensions if d.key == key)


def test_tempo_change_is_noticeable_from_the_cited_jnd_or_a_band_crossing():
    rubric = load_rubric()
    assert rubric.thresholds["jnd_tempo_ratio"] == pytest.approx(0.10)
    assert "Quené" in rubric.sources["jnd_tempo_ratio"]

    small = metric(compare_reports([make_report(rate_wpm=150), make_report(rate_wpm=157)]), "rate_wpm")
    assert small.delta == pytest.approx(7) and small.relative == pytest.approx(7 / 150, abs=1e-3)
    assert not small.crossed_band and not small.noticeable and small.band_after == "target"

    # 12% faster, still inside one band (too slow): noticeable by the JND alone
    jnd = metric(compare_reports([make_report(rate_wpm=100), make_report(rate_wpm=112)]), "rate_wpm")
    assert jnd.noticeable and not jnd.crossed_band and jnd.jnd == pytest.approx(0.10)
    assert jnd.direction == "better" and "Quené" in jnd.source

    # 9% slower but out of "a bit fast" into the target: noticeable by the band
    band = metric(compare_reports([make_report(rate_wpm=165), make_report(rate_wpm=150)]), "rate_wpm")
    assert band.crossed_band and band.noticeable
    assert (band.band_before, band.band_after) == ("a bit fast", "target")
    assert "Street & Brady" in band.source

    fast = compare_reports([make_report(rate_wpm=198), make_report(rate_wpm=158)])
    assert "Pace went from 198 to 158 wpm, into the target band (140–160 wpm)." in fast.summary


def test_fillers_and_number_changes_in_plain_words():
    before = make_report(fillers_per_min=9.0, times_said=1, digits_per_s=3.5,
                         feedback=[("fillers", "fluency"), ("number_once", "call_to_action"),
                                   ("number_fast", "call_to_action"), ("no_specific_reason", "relevance")],
                         dims={"fluency": 55.0, "call_to_action": 60.0, "relevance": 60.0})
    after = make_report(fillers_per_min=2.0, times_said=2, digits_per_s=2.2,
                        dims={"fluency": 100.0, "call_to_action": 100.0, "relevance": 100.0})
    c = compare_reports([before, after])
    fillers = metric(c, "filler_rate_per_min")
    assert (fillers.band_before, fillers.band_after) == ("noticeable", "harmless")
    assert fillers.direction == "better"
    assert fillers.noticeable and "Laske" in fillers.source
    text = "\n".join(c.summary)
    assert "Fillers fell from 9.0 to 2.0 per min" in text
    assert "You now say your number twice" in text
    assert ("You now give a reason tied to the prospect" in text
            or "Your reason now says something concrete about them" in text)
    # a covered finding (number_once) gets no second line of its own
    assert "number_once" not in text
    cta = dimension(c, "call_to_action")
    assert cta.delta == pytest.approx(40) and cta.noticeable and cta.direction == "better"
    assert set(cta.fixed) == {"number_once", "number_fast"} and cta.new == ()


def test_small_changes_inside_a_band_are_not_marked():
    c = compare_reports([make_report(fillers_per_min=8.0, snr_db=30, length_s=24, dims={"voice": 90.0}),
                         make_report(fillers_per_min=10.0, snr_db=45, length_s=27, dims={"voice": 88.0})])
    for key in ("filler_rate_per_min", "snr_db", "message_length_s", "f0_sd_st"):
        assert not metric(c, key).noticeable, key
    assert metric(c, "filler_rate_per_min").direction == "worse"
    voice = dimension(c, "voice")
    assert voice.delta == pytest.approx(-2) and not voice.noticeable
    assert c.noticeable == []
    assert "No change a listener would notice." in c.summary


def test_score_band_and_regressions():
    before = make_report(score=62.0, grade="D", times_said=2)
    after = make_report(score=81.0, grade="B", times_said=1, rate_wpm=190,
                        feedback=[("number_once", "call_to_action"), ("weak_phrase", "relevance")])
    c = compare_reports([before, after])
    assert (c.score.before, c.score.after, c.score.delta) == (62.0, 81.0, 19.0)
    assert c.score.crossed_band and c.score.noticeable and c.score.direction == "better"
    assert c.summary[0] == "Score went from 62 (D) to 81 (B)."
    assert "You now say your number once (before: twice)." in c.summary
    assert "Weak phrases crept in." in c.summary
    pace = metric(c, "rate_wpm")
    assert pace.direction == "worse" and pace.band_after == "too fast"
    # improvements come before regressions
    assert c.summary.index("Weak phrases crept in.") > 1


def test_transcript_diff_is_word_level():
    before = make_report(text="Hi Dana, um, it's Sam. Call me at 415-555-0198.")
    after = make_report(text="Hi Dana, it's Sam from Acme. Call me at 415-555-0198.")
    ops = transcript_diff(before, after)
    # punctuation and case do not count as changes: "Sam." matches "Sam"
    assert [op.op for op in ops] == ["equal", "delete", "equal", "insert", "equal"]
    assert ops[1].before == ("um,",) and ops[1].after == ()
    assert ops[2].before == ("it's", "Sam.") and ops[2].after == ("it's", "Sam")
    assert ops[3].after == ("from", "Acme.") and ops[3].after_start_s == pytest.approx(1.6)
    assert ops[1].before_start_s == pytest.approx(0.8)
    text = format_text(compare_reports([before, after]))
    assert "[-um,-]" in text and "{+from Acme.+}" in text


def test_trend_over_three_recordings():
    reports = [
        make_report("week1.wav", score=50, grade="F", dims={"pace": 40.0, "voice": 80.0}, rate_wpm=200),
        make_report("week2.wav", score=72, grade="C", dims={"pace": 70.0, "voice": 60.0}, rate_wpm=175),
        make_report("week3.wav", score=85, grade="B", dims={"pace": 95.0, "voice": 80.0}, rate_wpm=150),
    ]
    c = compare_reports(reports)
    assert (c.before, c.after) == (0, 2) and c.order == "given"
    trends = {t.key: t for t in c.trends}
    assert set(DIMENSION_KEYS) | {"score", "rate_wpm"} <= set(trends)
    assert trends["score"].values == (50, 72, 85) and trends["score"].direction == "improving"
    assert trends["pace"].direction == "improving" and trends["pace"].best_index == 2
    assert trends["voice"].direction == "mixed"
    assert trends["opening"].direction == "steady"
    assert trends["rate_wpm"].direction == "improving" and trends["rate_wpm"].best_index == 2
    assert c.summary[0] == "Over 3 recordings the score went from 50 (F) to 85 (B)."
    text = format_text(c)
    assert "Trend over 3 recordings" in text and "50 -> 72 -> 85" in text
    assert compare_reports(reports[:2]).trends == []


def test_reports_with_errors_are_listed_not_compared():
    bad = {"schema_version": 1, "file": "broken.wav", "error": {"code": "not_audio", "message": "broken.wav: "
                                                                 "not a recognised audio file"}}
    only_one = compare_reports([bad, make_report("good.wav")])
    assert not only_one.ok and only_one.metrics == [] and only_one.score is None
    assert "broken.wav" in only_one.errors[0] and "not_audio" in only_one.errors[0]
    assert only_one.summary[0].startswith("Nothing to compare: 1 of 2")
    assert "broken.wav" in format_text(only_one)
    json.dumps(only_one.to_dict())

    middle = compare_reports([make_report("a.wav", score=60, grade="D"), bad,
                              make_report("c.wav", score=75, grade="C")])
    assert middle.ok and (middle.before, middle.after) == (0, 2)
    assert middle.recordings[1].error["code"] == "not_audio"
    assert next(t for t in middle.trends if t.key == "score").values == (60, None, 75)


def test_order_by_recording_time(tmp_path):
    early = make_report("late_name.wav", score=60, grade="D", context={"recorded_at": "2026-03-01T09:00:00"})
    late = make_report("early_name.wav", score=80, grade="B", context={"recorded_at": "2026-03-08T09:00:00Z"})
    c = compare_reports([late, early], order="recorded_at")
    assert c.order == "recorded_at" and [r.label for r in c.recordings] == ["late_name.wav", "early_name.wav"]
    assert c.score.before == 60 and c.recordings[0].recorded_at_source == "report"
    assert compare_reports([late, early]).score.before == 80  # given order by default

    # no time in the report: the audio file's modification time
    first, second = tmp_path / "b.wav", tmp_path / "a.wav"
    for path, t in ((first, 1_700_000_000), (second, 1_700_100_000)):
        path.write_bytes(b"x")
        os.utime(path, (t, t))
    c = compare_reports([make_report(str(second), score=90, grade="A"), make_report(str(first))],
                        order="recorded_at")
    assert [r.file for r in c.recordings] == [str(first), str(second)]
    assert c.recordings[0].recorded_at_source == "file_mtime"

    unknown = compare_reports([make_report("x.wav"), make_report("y.wav")], order="recorded_at")
    assert unknown.order == "given" and "recording time unknown" in unknown.errors[0]


def test_custom_rubric_without_jnd_falls_back_to_the_packaged_one(tmp_path):
    text = default_rubric_path().read_text(encoding="utf-8")
    custom = tmp_path / "custom.toml"
    custom.write_text("\n".join(line for line in text.splitlines() if not line.startswith("jnd_")))
    c = compare_reports([make_report(rate_wpm=100), make_report(rate_wpm=112)], rubric=custom)
    assert metric(c, "rate_wpm").noticeable and metric(c, "rate_wpm").jnd == pytest.approx(0.10)


def test_json_output_and_saved_report_loading(tmp_path):
    reports = [make_report("a.wav", score=60, grade="D"), make_report("b.wav", score=82, grade="B")]
    c = compare_reports(reports, labels=["before", "after"])
    data = json.loads(json.dumps(c.to_dict()))
    assert data["kind"] == "comparison" and data["before"] == 0 and data["after"] == 1
    assert [r["label"] for r in data["recordings"]] == ["before", "after"]
    assert {"score", "dimensions", "metrics", "transcript_diff", "trends", "summary", "errors"} <= set(data)
    assert data["metrics"][0]["key"] == "rate_wpm" and "noticeable" in data["metrics"][0]

    jsonl = tmp_path / "graded.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    assert [r["file"] for r in load_reports(jsonl)] == ["a.wav", "b.wav"]
    bad = tmp_path / "other.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(VmgradeError, match="other.json: not a vmgrade report"):
        load_reports(bad)
    with pytest.raises(ValueError, match="labels"):
        compare_reports(reports, labels=["one"])


@pytest.mark.slow
def test_before_and_after_practice_samples(graded):
    before = graded(SAMPLES / "before_practice.wav").to_dict()
    after = graded(SAMPLES / "after_practice.wav").to_dict()
    c = compare_reports([before, after])
    assert c.ok and c.score.after > c.score.before + 20 and c.score.direction == "better"
    text = "\n".join(c.summary)
    # what the rep really changed (samples/scripts/*_practice.txt): slower, no fillers, number twice, a reason
    # (the after sample says 89 words, its number digit by digit twice, in 31 s: about 170 wpm,
    # just over the 160-wpm target; the before sample is about 210)
    pace = metric(c, "rate_wpm")
    assert pace.noticeable and pace.direction == "better" and pace.band_after in ("target", "a bit fast")
    assert "Pace went from" in text
    assert "Fillers fell from" in text
    assert "You now say your number twice" in text
    assert ("You now give a reason tied to the prospect" in text
            or "Your reason now says something concrete about them" in text)
    assert "The weak phrases are gone" in text
    # what did not change in a way a listener hears is not claimed
    for key in ("f0_sd_st", "snr_db", "clipping_pct", "ask_count"):
        assert not metric(c, key).noticeable, key
    assert "Pitch variation" not in text and "Signal to noise" not in text
    for key in ("pace", "fluency", "call_to_action", "relevance"):
        d = dimension(c, key)
        assert d.noticeable and d.direction == "better", key
    diff = [op for op in c.transcript_diff if op.op != "equal"]
    assert any("reaching" in op.before for op in diff)
    assert any(word.rstrip(",") == "Again" for op in diff for word in op.after)
    json.loads(json.dumps(c.to_dict()))


def test_warns_when_reports_were_graded_with_different_rubric_versions():
    from vmgrade.render.terminal import render_comparison

    before = make_report("a.wav", score=62, grade="D") | {"rubric": {"version": "2026.1", "path": "r.toml"}}
    after = make_report("b.wav", score=81, grade="B") | {"rubric": {"version": "2026.2", "path": "r.toml"}}
    c = compare_reports([before, after])
    assert c.ok and len(c.warnings) == 1
    assert "different rubric versions" in c.warnings[0]
    assert "a.wav: 2026.1" in c.warnings[0] and "b.wav: 2026.2" in c.warnings[0]
    assert c.to_dict()["warnings"] == c.warnings
    assert "Warnings" in format_text(c) and c.warnings[0] in format_text(c)
    assert c.warnings[0] in " ".join(render_comparison(c, color=True, width=400).split())
    # one version, or a report that names none (older JSON): nothing to warn about
    same = after | {"rubric": {"version": "2026.1", "path": "other.toml"}}
    assert compare_reports([before, same]).warnings == []
    assert compare_reports([before, make_report("c.wav")]).warnings == []
    assert "Warnings" not in format_text(compare_reports([before, same]))
    # an error report's rubric does not count
    failed = {"file": "x.wav", "error": {"code": "not_audio", "message": "no"}, "rubric": {"version": "9"}}
    assert compare_reports([before, failed, same]).warnings == []


# --- issue 29: report JSON is checked at the edge ---


def _set(report: dict, dotted: str, value) -> dict:
    node = report
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return report


@pytest.mark.parametrize("dotted, value, said", [
    ("score", "90", "score: '90' is not a number"),
    ("score", 1e308, "score: 1e+308 is outside 0..100"),
    ("score", -3, "score: -3 is outside 0..100"),
    ("score", True, "score: True is not a number"),
    ("grade", None, "grade: missing"),
    ("file", 7, "file: 7 is not text"),
    ("dimensions", {"pace": 80}, "dimensions: {'pace': 80} is not a list"),
    ("dimensions.0.score", 250.0, "dimensions[0].score: 250 is outside 0..100"),
    ("metrics.rate_wpm", -150.0, "metrics.rate_wpm: -150 is outside"),
    ("metrics.clipping_ratio", 3.0, "metrics.clipping_ratio: 3 is outside 0..1"),
    ("metrics", [1, 2], "metrics: [1, 2] is not an object"),
    ("content.callback.mentions.0.digits_per_s", "fast", "digits_per_s: 'fast' is not a number"),
    ("transcript.words", "hello", "transcript.words: 'hello' is not a list"),
    ("feedback", [{"dimension": "pace"}], "feedback[0].code: missing"),
    ("error", "boom", "error: not an object"),
])
def test_damaged_report_json_is_report_invalid_naming_the_file(tmp_path, capsys, dotted, value, said):
    from vmgrade.cli import main

    good = tmp_path / "before.json"
    good.write_text(json.dumps(make_report("a.wav")), encoding="utf-8")
    bad = tmp_path / "after.json"
    bad.write_text(json.dumps(_set(make_report("b.wav"), dotted, value)), encoding="utf-8")
    code = main(["compare", str(good), str(bad)])  # before: a TypeError traceback, or a silent comparison
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"vmgrade: error [report_invalid]: {bad}: ") and said in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("text", ['{"file": "a.wav", "score": NaN, "grade": "C"}',
                                  '{"file": "a.wav", "score": Infinity, "grade": "C"}',
                                  "[1, 2]", "[]", "[" * 100_000, '{"file": "a.wav"}'])
def test_report_json_that_is_no_report_is_report_invalid(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(VmgradeError, match=r"x\.json: not") as info:
        load_reports(path)
    assert info.value.code == "report_invalid"


def test_a_torn_last_line_of_json_lines_is_dropped_other_damage_is_not(tmp_path):
    lines = [json.dumps(make_report(name)) for name in ("a.wav", "b.wav", "c.wav")]
    torn = tmp_path / "results.jsonl"
    torn.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:40], encoding="utf-8")  # a crash mid-append
    assert [r["file"] for r in load_reports(torn)] == ["a.wav", "b.wav"]
    middle = tmp_path / "middle.jsonl"
    middle.write_text(lines[0] + "\n" + lines[1][:40] + "\n" + lines[2] + "\n", encoding="utf-8")
    with pytest.raises(VmgradeError, match=r"middle\.jsonl: not JSON \(line 2") as info:
        load_reports(middle)
    assert info.value.code == "report_invalid"


# --- issue 29: resampling artefacts are no audible change ---


def test_a_band_edge_grazed_by_measurement_noise_is_not_heard_a_real_change_is():
    before = make_report("a.wav", snr_db=20.4, f0_sd_st=2.95, word_loudness_sd_db=3.05)
    grazed = make_report("b.wav", snr_db=19.6, f0_sd_st=3.05, word_loudness_sd_db=2.95)
    c = compare_reports([before, grazed])
    for key in ("snr_db", "f0_sd_st", "word_loudness_sd_db"):  # each crossed a band edge, by a hair
        assert metric(c, key).band_before != metric(c, key).band_after, key
        assert not metric(c, key).noticeable, key  # before: "Signal to noise fell … out of the clean band"
    assert not dimension(c, "audio_quality").noticeable and not dimension(c, "voice").noticeable

    heard = compare_reports([before, make_report("c.wav", snr_db=15.0, f0_sd_st=1.8)])
    assert metric(heard, "snr_db").noticeable and metric(heard, "f0_sd_st").noticeable


def test_recogniser_findings_follow_the_audio_not_the_delivery():
    def with_audio(name: str, rate_hz: int, feedback=()):
        report = make_report(name, feedback=feedback)
        report["audio"] = {"format": "WAV", "codec": "PCM_16", "sample_rate_hz": rate_hz}
        return report

    wide = with_audio("wide.wav", 16000)
    narrow = with_audio("narrow.wav", 8000, feedback=[("hard_to_transcribe", "opening")])
    c = compare_reports([wide, narrow])  # the same message at 8 kHz
    assert dimension(c, "opening").new == () and not dimension(c, "opening").noticeable
    assert any("8000 Hz" in w and "hard_to_transcribe" in w for w in c.warnings)
    assert "No change a listener would notice." in c.summary

    same_audio = compare_reports([wide, with_audio("later.wav", 16000, [("hard_to_transcribe", "opening")])])
    assert dimension(same_audio, "opening").new == ("hard_to_transcribe",)  # same audio: the delivery
    assert dimension(same_audio, "opening").noticeable and not same_audio.warnings


@pytest.mark.slow
def test_the_same_sample_resampled_to_8_khz_is_no_audible_change(graded, tmp_path):
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    source = SAMPLES / "strong_wideband.flac"
    audio, rate_hz = sf.read(str(source), dtype="float32")
    narrow = tmp_path / "strong_8k.wav"
    mono = np.atleast_2d(audio.T).mean(axis=0)
    sf.write(str(narrow), resample_poly(mono, 8000, rate_hz).astype(np.float32), 8000)
    c = compare_reports([graded(source).to_dict(), graded(narrow).to_dict()])
    assert c.ok
    heard = [d.key for d in c.noticeable]
    assert heard == [] and not c.score.noticeable, heard  # before: opening, by a new hard_to_transcribe
    assert "No change a listener would notice." in c.summary
