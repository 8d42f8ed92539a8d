"""Open the HTML pages in a real headless browser (Debian's chromium via Playwright).

Checks that each page loads without console errors, that its charts render
and its audio decodes, and that clicking a finding, a word, the timeline or a
transcript-diff run seeks the recording there; takes a screenshot of each.

Skips when chromium or Playwright is missing, unless VMGRADE_REQUIRE_BROWSER=1
(set by .ci/run, which installs chromium): then it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from test_html_report import practice_report

from vmgrade.render.html import write_comparison_html, write_report_html

CHROMIUM = os.environ.get("VMGRADE_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
SEEK_TOLERANCE_S = (0.05, 1.5)  # the audio may play on a little after the seek

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("VMGRADE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (VMGRADE_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


class Page:
    """A page opened from a file, with its console errors collected."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def wait_audio_ready(self, key: str) -> float:
        """Wait until the embedded audio has decoded its metadata; its duration (s)."""
        self.page.wait_for_function(f"document.getElementById('{key}').readyState >= 1", timeout=15000)
        return self.page.evaluate(f"document.getElementById('{key}').duration")

    def current_time(self, key: str) -> float:
        return self.page.evaluate("key => { const a = document.getElementById(key); a.pause();"
                                  " return a.currentTime; }", key)

    def assert_seeks(self, selector: str, key: str, expect_s: float) -> None:
        self.page.click(selector)
        self.page.wait_for_timeout(150)
        t = self.current_time(key)
        assert expect_s - SEEK_TOLERANCE_S[0] <= t <= expect_s + SEEK_TOLERANCE_S[1], (selector, t, expect_s)

    def charts_rendered(self) -> int:
        """Number of chart images the browser decoded (SVG data URIs with a real size)."""
        return self.page.evaluate(
            "Array.from(document.querySelectorAll('img.chart'))"
            ".filter(i => i.complete && i.naturalWidth > 300 && i.naturalHeight > 100).length")


def test_report_page_in_chromium(browser, graded, tmp_path):
    report = practice_report(graded, "before_practice")
    path = write_report_html(report, tmp_path / "report.html")
    page = Page(browser, path)

    assert page.charts_rendered() == 2
    assert abs(page.wait_audio_ready("a0") - report["duration_s"]) < 0.3

    timed = [(n, f) for n, f in enumerate(report["feedback"], 1) if f["start_s"] is not None]
    assert timed
    n, finding = timed[-1]  # the latest, so a seek is not mistaken for playback from 0
    page.assert_seeks(f"#f-a0-{n} button.time", "a0", finding["start_s"])
    assert page.page.evaluate(f"document.getElementById('f-a0-{n}').classList.contains('active')")

    word = report["transcript"]["words"][len(report["transcript"]["words"]) // 2]
    page.assert_seeks(f'.transcript .w[data-t="{word["start"]}"]', "a0", word["start"])

    # the timeline: a click 3/4 along the time axis plays from 3/4 of the recording
    timeline = page.page.locator(".timeline")
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    x0, x1 = (float(timeline.get_attribute(a)) for a in ("data-x0", "data-x1"))
    t1 = float(timeline.get_attribute("data-t1"))
    timeline.click(position={"x": box["width"] * (x0 + 0.75 * (x1 - x0)), "y": box["height"] / 2})
    page.page.wait_for_timeout(150)
    assert abs(page.current_time("a0") - 0.75 * t1) < 1.0
    assert page.page.is_visible(".timeline .playhead")

    page.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert page.errors == []


def test_comparison_page_in_chromium(browser, graded, tmp_path):
    from vmgrade.compare import compare_reports

    before = practice_report(graded, "before_practice")
    after = practice_report(graded, "after_practice")
    comparison = compare_reports([before, after])
    page = Page(browser, write_comparison_html(comparison, tmp_path / "compare.html"))

    assert page.charts_rendered() == 3  # two timelines, grouped dimension bars
    assert abs(page.wait_audio_ready("a0") - before["duration_s"]) < 0.3
    assert abs(page.wait_audio_ready("a1") - after["duration_s"]) < 0.3

    # a finding on the "after" side seeks the after recording, not the before one
    n, finding = next((n, f) for n, f in enumerate(after["feedback"], 1) if f["start_s"])
    page.assert_seeks(f"#f-a1-{n} button.time", "a1", finding["start_s"])
    assert page.current_time("a0") == 0

    inserted = next(
        op for op in comparison.transcript_diff if op.op != "equal" and op.after and op.after_start_s
    )
    page.assert_seeks(f'.diff ins[data-t="{inserted.after_start_s}"]', "a1", inserted.after_start_s)

    page.page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert (tmp_path / "compare.png").stat().st_size > 50_000
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert page.errors == []
