"""The terminal report: the same information coloured on a TTY and plain elsewhere."""

from __future__ import annotations

import io
import re

import pytest
from conftest import SAMPLES

from vmgrade.render.compare_text import format_text
from vmgrade.render.terminal import print_report, render_report, to_text
from vmgrade.timestamps import format_clock as _clock

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def small_report() -> dict:
    words = "Hi Dana, um, it's Sam from Acme. Call me at 415-555-0198. Thanks.".split()
    times = [(0.5 + 0.5 * i, 0.9 + 0.5 * i) for i in range(len(words))]
    return {
        "file": "rep.wav", "duration_s": 7.0, "model": {"engine": "openai-whisper", "name": "base"},
        "transcript": {"text": " ".join(words),
                       "words": [{"word": w, "start": a, "end": b, "probability": 0.9}
                                 for w, (a, b) in zip(words, times)]},
        "metrics": {"message_length_s": 6.4, "rate_wpm": 160.0, "pause_count": 1, "filler_count": 1,
                    "filler_rate_per_min": 9.4, "f0_sd_st": 2.5,
                    "fillers": [{"word": "um", "start_s": 1.5, "end_s": 1.9, "source": "transcript"}]},
        "content": {"callback": {"mentions": [{"start_s": 5.5, "end_s": 5.9}]}},
        "score": 64.2, "grade": "D",
        "dimensions": [{"key": "pace", "label": "Pace and pauses", "score": 90.0, "weight": 10},
                       {"key": "call_to_action", "label": "Call to action and callback number",
                        "score": 35.0, "weight": 25}],
        "feedback": [
            {"code": "number_once", "severity": "major", "dimension": "call_to_action",
             "message": "You said your number once.", "start_s": 5.5, "end_s": 5.9, "gain": 5.0},
            {"code": "no_specific_reason", "severity": "major", "dimension": "relevance",
             "message": "Give a reason tied to their business.", "start_s": None, "end_s": None,
             "gain": 10.0},
            {"code": "fillers", "severity": "minor", "dimension": "fluency",
             "message": "1 filler: pause silently instead.", "start_s": 1.5, "end_s": 1.9, "gain": 0.2},
        ],
        "tips": [
            {"code": "no_specific_reason", "severity": "major", "dimension": "relevance",
             "message": "Give a reason tied to their business.", "start_s": None, "end_s": None,
             "gain": 10.0},
            {"code": "number_once", "severity": "major", "dimension": "call_to_action",
             "message": "You said your number once.", "start_s": 5.5, "end_s": 5.9, "gain": 5.0},
        ],
        "strengths": ["Good pace (160 wpm) without dead air."],
    }


def test_plain_marks_findings_fillers_and_number_without_ansi():
    text = render_report(small_report(), color=False)
    assert not ANSI.search(text)
    assert "Grade D" in text and "64/100" in text
    assert "Pace and pauses" in text and "[##################..]" in text and "90" in text
    assert "[#######.............]" in text  # 35 -> 7 of 20 cells
    # findings numbered by time: the filler (1.5 s) is [1], the number (5.5 s) [2]; tips refer to them
    assert "0:05.5–0:05.9 [2] You said your number once." in text
    assert "whole message" in text and "Give a reason tied to their business." in text
    assert "+ Good pace (160 wpm) without dead air." in text
    assert "Hi Dana, [1] {um,} it's Sam from Acme. Call me at [2] <415-555-0198.> Thanks." in text
    assert "160 wpm" in text and "1 fillers (9.4/min)" in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_tty_has_the_same_information_in_colour():
    coloured = render_report(small_report(), color=True, width=100)
    assert ANSI.search(coloured)
    visible = ANSI.sub("", coloured)
    for needle in ("Grade D", "64/100", "Pace and pauses", "Call to action and callback number",
                   "0:05.5–0:05.9", "[2]", "You said your number once.", "Good pace (160 wpm)",
                   "Hi Dana,", "um,", "415-555-0198.", "Thanks."):
        assert needle in visible, needle
    assert "█" in visible  # bars drawn with blocks, brackets only in plain text
    assert "{um,}" not in visible


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_print_report_colours_only_a_terminal():
    pipe, tty = io.StringIO(), _Tty()
    print_report(small_report(), file=pipe)
    print_report(small_report(), file=tty)
    assert not ANSI.search(pipe.getvalue()) and "Grade D" in pipe.getvalue()
    assert ANSI.search(tty.getvalue())


def test_error_report_is_one_line():
    text = render_report({"file": "x.ogg", "error": {"code": "not_audio", "message": "x.ogg: not audio"}},
                         color=False)
    assert text.strip() == "x.ogg: ERROR [not_audio] x.ogg: not audio"


@pytest.mark.slow
def test_real_report_rendering(graded):
    report = graded(SAMPLES / "before_practice.wav")
    data = report.to_dict()
    plain = to_text(report)
    coloured = render_report(report, color=True, width=120)
    assert not ANSI.search(plain) and ANSI.search(coloured)
    for text in (plain, ANSI.sub("", coloured)):
        assert "before_practice.wav" in text
        assert f"Grade {data['grade']}" in text and f"{data['score']:.0f}/100" in text
        for d in data["dimensions"]:
            assert d["label"] in text
        for tip in data["tips"]:
            assert tip["message"].split(":")[0] in " ".join(text.split())
            if tip["start_s"] is not None:
                assert _clock(tip["start_s"]) in text
        for strength in data["strengths"]:
            assert strength in text
        assert "Transcript:" in text and "Ledgerline" in text
    # fillers and the callback number are marked in the plain transcript
    assert "{um,}" in plain.replace("{Um,}", "{um,}") and "<312-555-0147" in plain


def test_comparison_is_coloured_only_on_a_terminal():
    from test_compare import make_report

    from vmgrade.compare import compare_reports
    from vmgrade.render.terminal import print_comparison, render_comparison

    c = compare_reports([make_report("a.wav", score=62, grade="D", rate_wpm=198, fillers_per_min=9),
                         make_report("b.wav", score=81, grade="B", rate_wpm=158, fillers_per_min=2)])
    plain = render_comparison(c, color=False)
    assert plain == format_text(c) + "\n" and not ANSI.search(plain)
    coloured = render_comparison(c, color=True, width=120)
    visible = ANSI.sub("", coloured)
    assert ANSI.search(coloured)
    for line in c.summary:
        assert line in visible
    assert "Speaking rate (wpm)" in visible and "too fast -> target" in visible and "★" in visible
    tty, pipe = _Tty(), io.StringIO()
    print_comparison(c, file=tty)
    print_comparison(c, file=pipe)
    assert ANSI.search(tty.getvalue()) and pipe.getvalue() == plain


def test_score_bands_are_shared_by_terminal_and_html():
    from vmgrade.render import charts, style

    cases = ((100, "good", "green", "#16a34a"), (80, "good", "green", "#16a34a"),
             (79.9, "fair", "yellow", "#d97706"), (60, "fair", "yellow", "#d97706"),
             (59.9, "poor", "red", "#dc2626"), (0, "poor", "red", "#dc2626"))
    for score, band, style_name, colour in cases:
        assert style.score_band(score) == band
        assert style.score_style(score) == style_name
        assert style.score_colour(score) == colour == charts.score_colour(score)


# Escape sequences a file name, a context field, a transcript or a report JSON can carry.
HOSTILE = ["\x1b[2J\x1b[31mfake.wav", "line\nvmgrade: all 9 files graded", "evil\u202egnp.wav", "[/]x[bold]"]


@pytest.mark.parametrize("color", [False, True])
def test_every_string_of_a_report_reaches_the_terminal_escaped(color):
    r = small_report()
    r["file"], r["transcript"]["text"] = HOSTILE[0], HOSTILE[1]
    r["transcript"]["words"][0]["word"] = HOSTILE[2]
    r["feedback"][0]["message"] = r["tips"][1]["message"] = HOSTILE[3] + HOSTILE[0]
    r["strengths"] = [HOSTILE[1]]
    visible = ANSI.sub("", render_report(r, color=color, width=200))  # the renderer's own styles gone
    assert "\x1b" not in visible and "\u202e" not in visible
    assert "vmgrade: all 9 files graded" not in visible.splitlines()  # no faked line
    assert "\\x1b[2J" in visible and "\\u202e" in visible and "[/]x[bold]" in visible
    error = render_report({"file": HOSTILE[0], "error": {"code": "not_audio", "message": HOSTILE[1]}},
                          color=color)
    assert "\x1b[2J" not in error and len(ANSI.sub("", error).strip().splitlines()) == 1


@pytest.mark.parametrize("color", [False, True])
def test_comparison_labels_and_report_strings_reach_the_terminal_escaped(color):
    from test_compare import make_report

    from vmgrade.compare import compare_reports
    from vmgrade.render.terminal import render_comparison

    before, after = make_report("a.wav", score=62, grade="D"), make_report("b.wav", score=81, grade="B")
    after["transcript"]["text"] = HOSTILE[1]
    c = compare_reports([before, after], labels=[HOSTILE[0], HOSTILE[2]])
    visible = ANSI.sub("", render_comparison(c, color=color, width=200))
    assert "\x1b" not in visible and "\u202e" not in visible
    assert "\\x1b[2J" in visible


def test_batch_lines_on_stderr_escape_the_names(tmp_path, capsys):
    import os

    from vmgrade.batch import BatchOptions, run_batch
    from vmgrade.pipeline import GradeOptions, Grader

    calls = tmp_path / "calls"
    calls.mkdir()
    os.mkfifo(calls / "\x1b[2Jpipe\u202e.wav")  # a not_a_file record, echoed before any grading
    (calls / "bad\nvmgrade: ok.wav").write_bytes(b"not audio")
    run_batch([str(calls)], BatchOptions(out=tmp_path / "out", history=False, progress=False),
              grader=Grader(GradeOptions(model="tiny.en")))
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\\x1b[2Jpipe\\u202e.wav" in err
    assert not any(line.startswith("vmgrade: ok.wav") for line in err.splitlines())
