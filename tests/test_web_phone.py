"""Every page of the rep's and trainer's flow on a phone (390x844) and a desktop (1280x800), in real Chromium.

Each page must fit its viewport without sideways scrolling (wide tables scroll in their own box),
carry the app's navigation (the report and comparison pages too), and the report's timeline must
not overprint its word labels (measured with the browser's own text metrics).  With
``VMGRADE_SCREENSHOTS=docs/web`` the key pages are also saved there as PNGs (docs/web.md shows them):

    VMGRADE_SCREENSHOTS=docs/web pytest -q tests/test_web_phone.py

The browser tests are skipped when Chromium is missing (unless VMGRADE_REQUIRE_BROWSER=1); the
checks at the bottom (standalone pages have no navigation, label layout) need no browser.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest
from test_web_support import CHROMIUM, PASSWORD, ROOT, LiveServer, add_users, make_clip, web_grader

from vmgrade.render import charts
from vmgrade.render.html import AppNav, insert_app_nav, render_report_html
from vmgrade.render.svg import text_width

REQUIRE = os.environ.get("VMGRADE_REQUIRE_BROWSER") == "1"
HAVE_BROWSER = Path(CHROMIUM).exists() or REQUIRE
needs_browser = pytest.mark.skipif(not HAVE_BROWSER, reason=f"{CHROMIUM} not installed "
                                   "(set VMGRADE_REQUIRE_BROWSER=1 to fail instead)")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
SCREENSHOTS = os.environ.get("VMGRADE_SCREENSHOTS")  # a folder, relative to the repository: docs/web
MAX_SCREENSHOT_PX = 2400  # a full-page phone shot is clipped to its top part (small PNGs in the repo)
LONG_NAME = "rita_practice_voicemail_for_harborview_freight_take_two_final_version.wav"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# [scrollWidth, innerWidth] of the page: equal when nothing sticks out sideways.
WIDTHS_JS = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# What sticks out, for the failure message.
WIDE_JS = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(0, 6)
  .map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
# The timeline's word labels, measured by the browser: the SVG (an <img> data URI) is put in the page,
# and each <text class="word">'s box is read with getBBox (SVG units), grouped into rows by its y.
LABELS_JS = """(img) => {
  const data = img.getAttribute('src').split(',', 2)[1];
  const svg = new DOMParser().parseFromString(atob(data), 'image/svg+xml').documentElement;
  const box = document.createElement('div');
  box.style.cssText = 'position:absolute;left:0;top:0;width:1100px;visibility:hidden';
  box.appendChild(document.importNode(svg, true));
  document.body.appendChild(box);
  const out = Array.from(box.querySelectorAll('text.word')).map(t => {
    const b = t.getBBox();
    return {text: t.textContent, row: t.getAttribute('y'), x0: b.x, x1: b.x + b.width};
  });
  box.remove();
  return out;
}"""


def overlaps(labels: list[dict]) -> list[tuple[str, str]]:
    """Pairs of labels in the same row whose x-ranges intersect."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for label in labels:
        rows[label["row"]].append(label)
    found = []
    for row in rows.values():
        row.sort(key=lambda b: b["x0"])
        found += [(a["text"], b["text"]) for a, b in zip(row, row[1:]) if a["x1"] > b["x0"]]
    return found


# ---------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server with rita's two graded recordings (one with a long file name) and a trainer."""
    pytest.importorskip("playwright.sync_api")
    import httpx
    from test_web_support import api_login, api_upload, wait_done

    from vmgrade.web.app import create_app

    tmp = tmp_path_factory.mktemp("web-phone")
    app = create_app(tmp / "data", secret_key="phone-test", grader=web_grader())
    add_users(app, ("rita", "rep", "east"), ("tom", "trainer", "east"))
    with LiveServer(app) as live:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            token = api_login(client, "rita")
            ids = []
            for name, source, seconds in ((LONG_NAME, "before_practice.wav", 12.0),
                                          ("after.wav", "after_practice.wav", 16.0)):
                clip = make_clip(tmp / name, seconds=seconds, source=source)
                answer = api_upload(client, token, clip, caller_name="Rita", callback_number="415-555-0198")
                assert answer.status_code in (200, 201, 202), answer.text
                ids.append(answer.json()["id"])
            for upload_id in ids:
                assert wait_done(client, upload_id)["state"] == "done"
        live.ids = ids
        yield live


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def open_as(browser, server, username: str, viewport: dict):
    """A page logged in as ``username`` at ``viewport`` (device scale 1), failing on script errors."""
    context = browser.new_context(base_url=server.url, viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.goto("/login")
    check_fits(page, "/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r"/(team|recordings)$"))
    return page


def check_fits(page, path: str) -> None:
    scroll_width, inner_width = page.evaluate(WIDTHS_JS)
    assert scroll_width <= inner_width, (
        f"{path}: {scroll_width} px wide at {inner_width}: {page.evaluate(WIDE_JS)}")


def check_nav(page, path: str, trainer: bool) -> None:
    """The app bar: the lists, upload, the team dashboard for a trainer, and log out."""
    nav = page.locator('nav[aria-label="vmgrade"]')
    assert nav.count() == 1, f"{path}: no app navigation"
    hrefs = nav.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["/recordings", "/upload"] + (["/team"] if trainer else []), path
    assert page.locator('form[action="/logout"] button').is_visible(), path


def check_timeline_labels(page, path: str) -> int:
    """No two word labels of the timeline overlap; returns how many there are."""
    labels = page.locator("img#timeline-a0").evaluate(LABELS_JS)
    assert labels, f"{path}: no word labels on the timeline"
    assert overlaps(labels) == [], f"{path}: overlapping labels {overlaps(labels)}"
    return len(labels)


def shoot(page, name: str, full_page: bool) -> None:
    """Save a screenshot into $VMGRADE_SCREENSHOTS (a full page clipped to its top ``MAX_SCREENSHOT_PX``)."""
    if not SCREENSHOTS:
        return
    folder = ROOT / SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    options = {}
    if full_page:
        height = page.evaluate("document.documentElement.scrollHeight")
        width = page.viewport_size["width"]
        options = {"full_page": True, "clip": {"x": 0, "y": 0, "width": width,
                                               "height": min(height, MAX_SCREENSHOT_PX)}}
    page.screenshot(path=str(folder / f"{name}.png"), **options)


def visit(page, path: str, trainer: bool) -> None:
    response = page.goto(path)
    assert response.status == 200, path
    page.wait_for_load_state("load")
    check_fits(page, path)
    check_nav(page, path, trainer)




@pytest.mark.slow
@needs_browser
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_rep_pages_fit_and_have_navigation(browser, server, size):
    page = open_as(browser, server, "rita", VIEWPORTS[size])
    first, second = server.ids
    visit(page, "/upload", trainer=False)
    assert page.locator("#record-start").is_visible() and page.locator("#upload-submit").is_visible()
    visit(page, "/recordings", trainer=False)
    assert page.locator("#recordings tbody tr").count() == 2
    if size == "phone":
        shoot(page, "phone-recordings", full_page=True)

    visit(page, f"/recordings/{first}", trainer=False)
    frame = page.locator("iframe#report-frame")
    frame.scroll_into_view_if_needed()
    # the report is not trapped in a fixed-height frame: the frame is as tall as the report in it
    page.wait_for_function("""() => { const f = document.getElementById('report-frame');
        const d = f.contentDocument; return d && d.readyState === 'complete' &&
        d.documentElement.scrollHeight <= f.clientHeight + 2 && f.clientHeight > 1000; }""")
    assert page.frame_locator("iframe#report-frame").locator('nav[aria-label="vmgrade"]').count() == 0
    check_fits(page, f"/recordings/{first} (after the report loaded)")
    if size == "phone":
        shoot(page, "phone-recording", full_page=True)

    visit(page, f"/recordings/{first}/report", trainer=False)
    assert check_timeline_labels(page, "report") >= 10
    if size == "phone":
        shoot(page, "phone-report", full_page=True)
    visit(page, f"/compare?ids={first}&ids={second}", trainer=False)
    assert page.locator("#side-by-side").is_visible()
    assert page.errors == []
    page.context.close()


@pytest.mark.slow
@needs_browser
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_trainer_pages_fit_and_have_navigation(browser, server, size):
    page = open_as(browser, server, "tom", VIEWPORTS[size])
    first, second = server.ids
    visit(page, "/team", trainer=True)
    shoot(page, f"{size}-team", full_page=size == "phone")
    for path in ("/recordings", "/recordings?rep=rita", "/upload", f"/recordings/{second}"):
        visit(page, path, trainer=True)
    visit(page, f"/recordings/{second}/report", trainer=True)
    check_timeline_labels(page, "report")
    visit(page, f"/compare?ids={first}&ids={second}", trainer=True)
    assert page.locator("#dimension-deltas").is_visible()
    if size == "desktop":
        shoot(page, "desktop-compare", full_page=False)
    # the log out of the report's and comparison's app bar works (its CSP allows the form)
    page.click('form[action="/logout"] button')
    page.wait_for_url(re.compile(r"/login$"))
    assert page.errors == []
    page.context.close()


# ---------------------------------------------------------------- without a browser


ERROR_REPORT = {"file": "/nowhere/x.wav", "error": {"code": "no_speech", "message": "no speech found"}}
NAV = AppNav(links=(("/recordings", "Recordings"), ("/upload", "Upload or record"),
                    ("/team", "Team dashboard")),
             user="tom (trainer, east)", csrf_token="tok<en>", current="/recordings")


def test_standalone_pages_have_no_app_navigation_served_ones_do():
    standalone = render_report_html(ERROR_REPORT)
    assert "appnav" not in standalone.split("</style>", 1)[1] and "/logout" not in standalone
    served = render_report_html(ERROR_REPORT, app_nav=NAV)
    inserted = insert_app_nav(standalone, NAV)
    for page in (served, inserted):
        body = page.split("<body>", 1)[1]
        assert body.lstrip().startswith('<header class="appnav">')
        assert '<a href="/team">Team dashboard</a>' in body
        assert '<a href="/recordings" aria-current="page">' in body
        assert 'value="tok&lt;en&gt;"' in body and 'action="/logout"' in body
    with pytest.raises(ValueError):
        insert_app_nav("<p>not a page</p>", NAV)


def dense_report(n_words: int, duration_s: float) -> dict:
    """Words packed closer than their labels are wide, some long, the last ones at the right edge."""
    words = [{"word": f" {'extraordinarily' if i % 5 == 0 else 'w'}{i}", "start": duration_s * i / n_words,
              "end": duration_s * (i + 0.8) / n_words} for i in range(n_words)]
    return {"duration_s": duration_s, "transcript": {"words": words},
            "metrics": {"duration_s": duration_s, "pauses": [], "fillers": [], "pace_windows": []}}


@pytest.mark.parametrize(("n_words", "duration_s"), [(110, 5.0), (110, 30.0), (12, 1.0)])
def test_timeline_word_labels_never_overlap(n_words, duration_s):
    svg = charts.timeline_chart(dense_report(n_words, duration_s)).svg
    root = ET.fromstring(svg.split("?>", 1)[1])
    texts = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "word"]
    labels = []
    for t in texts:
        x0 = float(t.get("x"))
        width = text_width(t.text, charts.WORD_FONT_PT, t.get("font-weight") == "bold")
        labels.append({"text": t.text, "row": t.get("y"), "x0": x0, "x1": x0 + width})
    assert labels and overlaps(labels) == []
    assert len({label["row"] for label in labels}) <= charts.WORD_ROWS
    width = charts.TIMELINE_SIZE_IN[0] * 72.0
    assert all(0 <= label["x0"] and label["x1"] <= width for label in labels)
    if duration_s == 5.0:  # too many for four rows in 5 s: some labels are dropped, not overprinted
        assert len(labels) < n_words
