"""The report charts written as plain SVG (vmgrade.render.charts, vmgrade.render.svg).

Reports are built by hand: no Whisper, no audio files.  The checks read the SVG
back with ElementTree: valid XML, the time axis where TimeChart says it is,
text escaped, pitch gaps left open, and no matplotlib on the page's path.
"""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from vmgrade.render import charts
from vmgrade.render.svg import escape, nice_ticks, num, text_width, tick_label

NS = {"s": "http://www.w3.org/2000/svg"}
SR = 16000
BAND = {"ideal_min": 140.0, "ideal_max": 160.0, "ok_min": 120.0, "ok_max": 180.0}


def make_report(duration_s: float = 10.0, words=None, call: bool = False) -> dict:
    """A small graded report: words, pauses, a filler, a callback number, pace and a gappy pitch track."""
    if words is None:
        words = [{"word": f" w{i}", "start": 0.5 + 0.8 * i, "end": 0.9 + 0.8 * i} for i in range(10)]
        words[3] = {"word": " um,", "start": 2.9, "end": 3.1}
    f0 = [120.0, 121.0, 122.0, None, None, 130.0, 131.0, None, 140.0, 141.0, 142.0, None, 150.0]
    report = {
        "duration_s": duration_s,
        "is_call_recording": call,
        "segments": [{"kind": "greeting", "start_s": 0.0, "end_s": 2.0}, {"kind": "beep", "start_s": 2.0,
                     "end_s": 2.3}, {"kind": "message", "start_s": 2.3, "end_s": 9.5}] if call else [],
        "transcript": {"words": words},
        "metrics": {
            "duration_s": duration_s,
            "pauses": [{"start_s": 4.0, "end_s": 4.6}],
            "fillers": [{"start_s": 2.9, "end_s": 3.1, "source": "transcript"}],
            "speech_intervals": [[0.4, 4.0], [4.6, 9.2]],
            "pace_windows": [{"start_s": 0.5, "end_s": 5.5, "rate_wpm": 150.0},
                             {"start_s": 5.5, "end_s": 9.2, "rate_wpm": 190.0}],
            "rate_wpm": 165.0,
            "f0_median_hz": 131.0,
            "f0_sd_st": 2.4,
            "pitch_track": {"times_s": [0.5 + 0.1 * i for i in range(len(f0))], "f0_hz": f0},
        },
        "content": {"callback": {"mentions": [{"start_s": 6.0, "end_s": 8.0}]}},
    }
    return report


FINDINGS = [{"code": "a", "severity": "major", "start_s": 5.0},
            {"code": "b", "severity": "minor", "start_s": 5.05},
            {"code": "c", "severity": "info", "start_s": None},
            {"code": "d", "severity": "critical", "start_s": 9.0}]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def view_width(root: ET.Element) -> float:
    x, y, w, h = (float(v) for v in root.get("viewBox").split())
    assert (x, y) == (0.0, 0.0)
    assert root.get("width") == f"{num(w)}pt" and root.get("height") == f"{num(h)}pt"
    return w


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def tone(seconds: float = 10.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (t % 1.0 < 0.6)).astype(np.float32)


def test_timeline_is_standalone_svg_with_every_row():
    chart = charts.timeline_chart(make_report(call=True), tone(), SR, pace_band_wpm=BAND, findings=FINDINGS,
                                  title="A & B's <call>")
    root = parse(chart.svg)
    assert chart.svg.startswith("<?xml")
    assert view_width(root) == pytest.approx(charts.TIMELINE_SIZE_IN[0] * 72)
    words = texts(root)
    for expected in ("A & B's <call>", "number", "greeting", "beep", "message", "um,", "w9", "pitch (Hz)",
                     "pace (wpm)", "time (s)", "median 131 Hz, varies 2.4 semitones",
                     "average 165 wpm; green band: target", "150", "190", "waveform", "& words"):
        assert expected in words, expected
    numbers = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("fill") == "white"}
    assert numbers == {"1", "2", "4"}  # the finding markers (the third finding has no time)
    # the filler's label is bold and amber; the waveform is one path, not a rect per column
    um = next(t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text == "um,")
    assert um.get("font-weight") == "bold" and um.get("fill") == charts.FILLER
    waves = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("fill") == charts.WAVE]
    assert len(waves) == 1 and waves[0].get("d").endswith("Z")
    assert len(chart.svg) < 80_000


def test_time_axis_fractions_place_times_exactly():
    report = make_report(duration_s=12.5)
    for size in (charts.TIMELINE_SIZE_IN, charts.COMPARE_TIMELINE_SIZE_IN):
        chart = charts.timeline_chart(report, findings=FINDINGS, size_in=size, duration_s=30.0)
        root = parse(chart.svg)
        width = view_width(root)
        assert (chart.t0_s, chart.t1_s) == (0.0, 30.0)
        assert chart.x0_frac == pytest.approx(charts.TIMELINE_MARGINS_IN[0] / size[0])
        assert chart.x1_frac == pytest.approx(1 - charts.TIMELINE_MARGINS_IN[1] / size[0])
        def x_of(t: float, chart=chart, width=width) -> float:
            """Where time t falls in the image, by the chart's own fractions."""
            frac = (t - chart.t0_s) / (chart.t1_s - chart.t0_s)
            return width * (chart.x0_frac + frac * (chart.x1_frac - chart.x0_frac))

        circles = list(root.iter("{http://www.w3.org/2000/svg}circle"))
        severity_of = {colour: severity for severity, colour in charts.SEVERITY_COLOURS.items()}
        marker = {severity_of[c.get("fill")]: c for c in circles}
        assert float(marker["major"].get("cx")) == pytest.approx(x_of(5.0), abs=0.01)
        assert float(marker["critical"].get("cx")) == pytest.approx(x_of(9.0), abs=0.01)
        # 5.0 and 5.05 s are closer than a marker: the second steps up a row
        y_major, y_minor = float(marker["major"].get("cy")), float(marker["minor"].get("cy"))
        assert y_major - y_minor == pytest.approx(charts.MARKER_ROW_PT)
        assert min(float(c.get("cy")) - float(c.get("r")) for c in circles) >= 0  # inside the image
        # the time tick labels sit at their times
        ticks = [t for t in root.iter("{http://www.w3.org/2000/svg}text")
                 if t.get("text-anchor") == "middle" and t.get("fill") == charts.MUTED and t.text.isdigit()]
        assert [t.text for t in ticks] == ["0", "5", "10", "15", "20", "25", "30"]
        for t in ticks:
            assert float(t.get("x")) == pytest.approx(x_of(float(t.text)), abs=0.01)


def test_word_text_is_escaped():
    words = [{"word": " <b>&amp;", "start": 1.0, "end": 1.3},
             {"word": ' "quoted" & co', "start": 2.0, "end": 2.4},
             {"word": " café’s naïve 東京", "start": 3.0, "end": 3.5},
             {"word": " bell\x07", "start": 4.0, "end": 4.2}]
    chart = charts.timeline_chart(make_report(words=words))
    assert "<b>" not in chart.svg and "&amp;amp;" in chart.svg
    found = texts(parse(chart.svg))
    for expected in ("<b>&amp;", '"quoted" & co', "café’s naïve 東京", "bell"):
        assert expected in found
    assert escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#x27;"


def test_nan_gaps_split_the_pitch_line():
    chart = charts.timeline_chart(make_report())
    root = parse(chart.svg)
    lines = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("stroke") == charts.PITCH]
    assert len(lines) == 1
    d = lines[0].get("d")
    # runs of 3, 2, 3 voiced frames and a lone one at the end (drawn as nothing, like a line of one point)
    assert d.count("M") == 3 and "nan" not in d.lower()
    assert [run.count(",") for run in d.split("M")[1:]] == [3, 2, 3]


def test_pitch_scale_shared_or_from_the_track_and_missing_pitch_or_pace_said():
    report = make_report()
    shared = parse(charts.timeline_chart(report, pitch_ylim_hz=(50.0, 250.0)).svg)
    assert {"100", "200"} <= set(texts(shared))  # ticks of the shared scale
    no_pitch = make_report()
    del no_pitch["metrics"]["pitch_track"]
    no_pitch["metrics"]["pace_windows"] = []
    found = texts(parse(charts.timeline_chart(no_pitch).svg))
    assert "pitch contour needs the audio file" in found and "no pace measured" in found
    # an old report's pitch comes from its audio when given
    found = texts(parse(charts.timeline_chart(no_pitch, tone(), SR).svg))
    assert "pitch contour needs the audio file" not in found


def test_same_input_same_bytes_and_long_recordings_drop_word_labels():
    a = charts.timeline_chart(make_report(), tone(), SR, pace_band_wpm=BAND, findings=FINDINGS)
    b = charts.timeline_chart(make_report(), tone(), SR, pace_band_wpm=BAND, findings=FINDINGS)
    assert a == b
    many = [{"word": f" w{i}", "start": 0.1 * i, "end": 0.1 * i + 0.08} for i in range(1000)]
    found = texts(parse(charts.timeline_chart(make_report(duration_s=100.0, words=many)).svg))
    assert "w5" not in found and "waveform" in found


def test_dimension_chart_bars_and_legend():
    dims = [{"key": "opening", "label": "Opening & identity", "score": 85.0},
            {"key": "pace", "label": "Pace", "score": 42.0}]
    single = parse(charts.dimension_chart({"one": dims}))
    assert {"Opening & identity", "Pace", "85", "42", "score (0–100)", "0", "100"} <= set(texts(single))
    fills = [r.get("fill") for r in single.iter("{http://www.w3.org/2000/svg}rect")]
    assert charts.score_colour(85.0) in fills and charts.score_colour(42.0) in fills
    assert "one" not in texts(single)  # one series: no legend

    after = [dict(d, score=d["score"] + 10) for d in dims]
    both = parse(charts.dimension_chart({"before": dims, "after <2>": after}, width_in=6.2))
    assert view_width(both) == pytest.approx(6.2 * 72)
    assert {"before", "after <2>", "95", "52"} <= set(texts(both))
    fills = [r.get("fill") for r in both.iter("{http://www.w3.org/2000/svg}rect")]
    # each series: a bar per dimension and its legend swatch
    assert fills.count(charts.SERIES_COLOURS[0]) == 3 and fills.count(charts.SERIES_COLOURS[1]) == 3


def test_trend_chart_panels():
    root = parse(charts.trend_chart(["week 1", "week 2", "week 3"],
                                    {"Overall": [50.0, None, 90.0], "Pace": [20.0, 40.0, 60.0]}))
    found = texts(root)
    assert {"Overall", "Pace", "week 1", "90", "60"} <= set(found)
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 5
    numbered = texts(parse(charts.trend_chart(["a-very-long-file-name.wav"] * 2, {"Overall": [1.0, 2.0]})))
    assert "1" in numbered and "a-very-long-file-name.wav" not in numbered


def test_the_page_charts_import_no_matplotlib():
    code = (
        "import sys, numpy as np\n"
        "from vmgrade.render import charts\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_charts_svg import make_report, FINDINGS\n"
        "samples = np.zeros(16000, np.float32)\n"
        "charts.timeline_chart(make_report(call=True), samples, 16000, findings=FINDINGS)\n"
        "charts.dimension_chart({'a': [{'key': 'k', 'label': 'K', 'score': 50.0}]})\n"
        "charts.trend_chart(['a', 'b', 'c'], {'Overall': [1.0, None, 3.0]})\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "False", out.stderr


def test_svg_helpers():
    assert nice_ticks(0.0, 31.5, 9) == ([0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0], 5.0)
    assert nice_ticks(0.0, 12.5, 9)[1] == 2.0
    ticks, step = nice_ticks(46.0, 186.0, 3)
    assert (ticks, step) == ([50.0, 100.0, 150.0], 50.0)
    assert nice_ticks(0.0, 0.4, 4) == ([0.0, 0.1, 0.2, 0.3, 0.4], 0.1)
    assert [tick_label(t, 2.5) for t in (0.0, 2.5, 5.0)] == ["0.0", "2.5", "5.0"]
    assert tick_label(20.0, 5.0) == "20" and tick_label(-0.0, 1.0) == "0"
    assert num(1.005) in ("1", "1.01") and num(-0.001) == "0" and num(12.5) == "12.5" and num(3.0) == "3"
    assert text_width("ab", 10.0) == pytest.approx(12.48)
    assert text_width("ab", 10.0, bold=True) > text_width("ab", 10.0)
    assert text_width("é", 10.0) == text_width("e", 10.0)
    assert math.isclose(text_width("東", 10.0), 10.0)
