"""The HTML report and comparison pages: content, self-containment, charts, audio.

Reports come from the real pipeline on samples/ (session-cached by conftest's
``graded``); tests/test_browser.py opens the same pages in chromium.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil

import numpy as np
import pytest
from conftest import SAMPLES

from vmgrade.cli import _html_paths, main
from vmgrade.errors import AudioError
from vmgrade.pipeline import Context
from vmgrade.render.html import (
    render_comparison_html,
    render_report_html,
    write_comparison_html,
    write_report_html,
)

PRACTICE = Context(caller_name="Priya Patel", company="Ledgerline", callback_number="312-555-0147",
                   prospect_name="Marcus", prospect_company="Harborview Freight")
# Anything that would make the browser fetch: a URL in an attribute or in CSS.
EXTERNAL = re.compile(
    r"""\b(?:src|href|action|poster|data)\s*=\s*["'](?!data:|#)[^"']+|url\(\s*["']?(?!data:)|@import""", re.I)


def practice_report(graded, name: str) -> dict:
    """The graded report dict of samples/<name>.wav (one Whisper run per session)."""
    return graded(SAMPLES / f"{name}.wav", PRACTICE).to_dict()


def data_uris(page: str, mime: str) -> list[bytes]:
    found = re.findall(rf"data:{re.escape(mime)};base64,([A-Za-z0-9+/=]+)", page)
    return [base64.b64decode(b) for b in found]


def assert_self_contained(page: str) -> None:
    assert not EXTERNAL.search(page), EXTERNAL.search(page).group(0)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and not re.search(r"<script[^>]+src=", page)


@pytest.mark.slow
def test_report_page_shows_score_dimensions_findings_charts_and_audio(graded):
    report = practice_report(graded, "before_practice")
    page = render_report_html(report)
    text = html.unescape(page)

    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    assert re.search(rf'id="score">{report["score"]:.0f}<', page)
    assert f'>{report["grade"]}<' in page
    for d in report["dimensions"]:
        assert re.search(rf'data-dimension="{d["key"]}"><td>{re.escape(d["label"])}</td>'
                         rf'<td class="num"[^>]*>{d["score"]:.0f}</td>', text)
    assert report["feedback"], "the before sample has findings"
    for n, f in enumerate(report["feedback"], 1):
        item = re.search(rf'<li class="finding" id="f-a0-{n}" data-code="{f["code"]}">(.*?)</li>', text, re.S)
        assert item, f["code"]
        assert f["message"] in item.group(1)
        if f["start_s"] is not None:  # linked to its time, by the clock and by a seekable attribute
            assert f'data-t="{f["start_s"]}"' in item.group(1)
            assert f"{int(f['start_s'] // 60)}:{f['start_s'] % 60:04.1f}" in item.group(1)
            assert f'data-n="{n}"' in text  # its badge in the transcript
        else:
            assert "whole message" in item.group(1)
    for tip in report["tips"]:
        assert tip["message"] in text
    for s in report["strengths"]:
        assert s in text

    # the audio is embedded and decodes to the recording's length
    audio = data_uris(page, "audio/mpeg") or data_uris(page, "audio/wav")
    assert len(audio) == 1 and page.count("<audio") == 1
    import io

    import soundfile as sf

    decoded, sr = sf.read(io.BytesIO(audio[0]))
    assert abs(len(decoded) / sr - report["duration_s"]) < 0.2

    # charts: the timeline and the dimension chart, real SVG with drawn marks and labels
    svgs = [s.decode() for s in data_uris(page, "image/svg+xml")]
    assert len(svgs) == 2
    assert all(s.lstrip().startswith("<?xml") and "<svg" in s and s.count("<text") > 20 for s in svgs)
    assert 'class="timeline"' in page and 'id="dimension-chart"' in page

    # the transcript: every word seekable, fillers and the number marked
    words = report["transcript"]["words"]
    assert len(re.findall(r'<span class="w[ "]', page)) == len(words)
    assert page.count('class="w filler') >= report["metrics"]["filler_token_count"] >= 1
    assert 'w number' in page or ' number"' in page

    # sentence by sentence: each sentence seekable, with its moves; weak ones marked
    moves = report["content"]["moves"]
    section = re.search(r'<section class="card" id="moves">(.*?)</section>', text, re.S).group(1)
    for m in moves:
        assert f'data-t="{m["start_s"]}"' in section and m["text"] in section
    assert "chip weak" in section  # the before sample pitches generically and hedges
    assert f"Reason: <b>{report['content']['reason']['specificity']}</b>" in section


@pytest.mark.slow
def test_report_without_audio_and_error_reports(graded, tmp_path):
    report = practice_report(graded, "before_practice")
    moved = dict(report, file=str(tmp_path / "gone.wav"))
    page = render_report_html(moved)
    assert "<audio" not in page and "audio not embedded" in page
    assert len(data_uris(page, "image/svg+xml")) == 2  # the timeline falls back to the speech track
    assert_self_contained(page)

    # an explicit audio path is used, and a bad one is an error naming it
    copy = shutil.copy(SAMPLES / "before_practice.wav", tmp_path / "copy.wav")
    assert "<audio" in render_report_html(moved, audio_path=copy)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        render_report_html(moved, audio_path=bad)

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    failed = graded(empty).to_dict()
    page = render_report_html(failed)
    assert "Could not grade this recording" in page and failed["error"]["code"] in page
    assert "empty" in html.unescape(page)


@pytest.mark.slow
def test_write_report_html_is_atomic_and_reloadable_from_json(graded, tmp_path):
    report = json.loads(json.dumps(practice_report(graded, "after_practice")))  # as stored on disk
    out = write_report_html(report, tmp_path / "sub" / "after.html")
    assert out == tmp_path / "sub" / "after.html"
    assert [p.name for p in out.parent.iterdir()] == ["after.html"]  # no temp file left behind
    page = out.read_text(encoding="utf-8")
    assert page == render_report_html(report)  # deterministic: same report, same page
    assert report["grade"] in page and "<audio" in page


@pytest.mark.slow
def test_comparison_page(graded):
    from vmgrade.compare import compare_reports

    before = practice_report(graded, "before_practice")
    after = practice_report(graded, "after_practice")
    comparison = compare_reports([before, after])
    page = render_comparison_html(comparison)
    text = html.unescape(page)
    assert_self_contained(page)

    for line in comparison.summary:
        assert line in text
    for d in comparison.dimensions:
        row = re.search(rf'<tr class="(noticeable)?" data-key="{d.key}">(.*?)</tr>', text, re.S)
        assert row and d.label in row.group(2)
        assert bool(row.group(1)) == d.noticeable
    noticeable_metrics = [m for m in comparison.metrics if m.noticeable]
    assert noticeable_metrics, "pace and fillers change a lot between the practice samples"
    for m in comparison.metrics:
        assert f'data-key="{m.key}"' in page
    assert page.count('class="noticeable"') == len(comparison.noticeable) + (comparison.score.noticeable)

    # side by side: both recordings' audio and timelines, grouped dimension bars
    assert page.count("<audio") == 2 and 'id="a0"' in page and 'id="a1"' in page
    assert page.count('class="timeline"') == 2
    assert 'id="dimension-chart"' in page and 'id="trend-chart"' not in page
    assert len(data_uris(page, "image/svg+xml")) == 3

    # the transcript diff: removed and added words, each run seeking its own recording
    assert re.search(r'<del data-t="[\d.]+" data-audio="a0">', page)
    assert re.search(r'<ins data-t="[\d.]+" data-audio="a1">', page)
    removed = " ".join(w for op in comparison.transcript_diff for w in op.before if op.op != "equal")
    assert html.escape(removed.split()[0]) in page


@pytest.mark.slow
def test_comparison_of_three_has_a_trend_chart(graded, tmp_path):
    from vmgrade.compare import compare_reports

    reports = [practice_report(graded, n) for n in ("before_practice", "before_practice", "after_practice")]
    comparison = compare_reports(reports, labels=["week 1", "week 2", "week 3"])
    out = write_comparison_html(comparison, tmp_path / "trend.html")
    page = out.read_text(encoding="utf-8")
    assert 'id="trend-chart"' in page
    trend_svg = data_uris(page, "image/svg+xml")
    assert len(trend_svg) == 4  # trend + two timelines + dimension bars
    for label in ("week 1", "week 2", "week 3"):
        assert label in page
    assert "Progress over 3 recordings" in page


def test_html_paths_one_file_or_a_directory(tmp_path):
    assert _html_paths("r.html", ["a.wav"]) == {"a.wav": __import__("pathlib").Path("r.html")}
    out = _html_paths(str(tmp_path), ["x/a.wav"])  # an existing directory
    assert out == {"x/a.wav": tmp_path / "a.html"}
    out = _html_paths("reports/", ["a.wav", "b.flac", "c/a.flac"])
    assert [str(p) for p in out.values()] == ["reports/a.wav.html", "reports/b.html", "reports/a.flac.html"]


@pytest.mark.slow
def test_cli_grade_writes_html(tmp_path, capsys):
    status = main(["grade", str(SAMPLES / "followup_phone.wav"), "--model", "tiny.en", "--format", "json",
                   "--html", str(tmp_path / "pages") + "/"])
    captured = capsys.readouterr()
    assert status == 0
    record = json.loads(captured.out)
    page = (tmp_path / "pages" / "followup_phone.html").read_text(encoding="utf-8")
    assert f"wrote {tmp_path / 'pages' / 'followup_phone.html'}" in captured.err
    assert f'id="score">{record["score"]:.0f}<' in page and "<audio" in page


def test_pitch_contour_smoothing_keeps_voiced_runs_and_drops_blips():
    from vmgrade.delivery.pitch import smooth_contour

    f0 = np.full(100, np.nan)
    f0[10:40] = 120.0
    f0[25] = 240.0  # an octave jump inside a run
    f0[60:62] = 200.0  # a two-frame blip
    out = smooth_contour(f0)
    assert np.allclose(out[12:38], 120.0)
    assert np.isnan(out[55:70]).all() and np.isnan(out[:5]).all()


def test_pitch_is_drawn_from_the_report_not_the_audio():
    from vmgrade.render.charts import report_pitch_track, timeline_chart

    metrics = {"speech_intervals": [[0.0, 1.0]], "pitch_track": {"times_s": [0.05, 0.15, 0.25],
                                                                 "f0_hz": [None, 150.0, 151.5]}}
    times, f0 = report_pitch_track(metrics)
    assert list(times) == [0.05, 0.15, 0.25] and np.isnan(f0[0]) and list(f0[1:]) == [150.0, 151.5]
    # an old report without the track and without its audio draws no pitch
    assert report_pitch_track({"speech_intervals": [[0.0, 1.0]]}) is None
    chart = timeline_chart({"duration_s": 1.0, "metrics": metrics})
    assert chart.svg.startswith("<?xml")
