"""The batch index page (vmgrade.render.batch_index) and the summary keys it reads: fast, no model.

Rows and records are built as ``vmgrade batch`` builds them (ledger records holding report dicts
shaped like ``Report.to_dict()``), the summary with :func:`vmgrade.batch.summary.summarize`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vmgrade.batch.inputs import ManifestRow
from vmgrade.batch.ledger import Row, Task
from vmgrade.batch.summary import summarize
from vmgrade.render.batch_index import render_index_html
from vmgrade.report import FINDING_LABELS, finding_label

LABELS = {"opening": "Opening and identity", "relevance": "Relevance and personalization",
          "call_to_action": "Call to action and callback number", "brevity": "Brevity",
          "pace": "Pace and pauses",
          "fluency": "Fluency and fillers", "voice": "Voice and energy", "audio_quality": "Audio quality"}
DIM_OF = {"no_call_to_action": "call_to_action", "number_once": "call_to_action", "fillers": "fluency",
          "late_company": "opening", "monotone": "voice", "no_specific_reason": "relevance"}
VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "source", "col", "area", "base", "embed", "track"}
BLOCKS = {"td", "th", "tr", "li", "div", "p", "h1", "h2", "h3", "summary", "a"}


def report(file: Path, score: float, grade: str, dims: dict[str, float], findings: dict[str, float]) -> dict:
    """A graded report as Report.to_dict() writes it (the keys the index and summary read, and more)."""
    feedback = [{"code": code, "severity": "major", "dimension": DIM_OF[code],
                 "message": "Do this better next time.", "start_s": 1.0, "end_s": 2.0, "gain": gain}
                for code, gain in findings.items()]
    return {
        "schema_version": 1, "file": str(file), "duration_s": 24.0, "context": {},
        "transcript": {"text": "Hi Dana it's Sam from Acme", "words": []},
        "metrics": {"message_length_s": 22.0, "rate_wpm": 155.0, "pause_count": 2},
        "score": score, "grade": grade,
        "dimensions": [{"key": k, "label": label, "score": dims.get(k, 80.0), "weight": 10}
                       for k, label in LABELS.items()],
        "feedback": feedback,
        "tips": sorted(feedback, key=lambda f: -f["gain"])[:3],
        "strengths": ["Good pace."],
        "model": {"engine": "openai-whisper", "name": "tiny.en"}, "rubric": {"version": "abc"},
    }


def error_report(file: Path, code: str, message: str, kind: str | None = None) -> dict:
    r = {"schema_version": 1, "file": str(file), "context": {}, "error": {"code": code, "message": message}}
    if kind:
        r["recording"] = {"kind": kind}
    return r


class Batch:
    """Rows, ledger records and finished-row dicts for :func:`summarize` and :func:`render_index_html`."""

    def __init__(self, out: Path):
        self.out = out
        self.rows: list[Row] = []
        self.records: dict[str, dict] = {}
        self.page_rows: list[dict] = []

    def add(self, path: Path, rep: str | None, when: str | None, rep_dict: dict, *,
            copy_of: Path | None = None, html: bool = True) -> None:
        key = f"k{len(self.rows):03d}"
        if copy_of is not None:
            key = next(r.task.key for r in self.rows if r.path == str(copy_of))
        stamp = None if when is None else datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
        entry = ManifestRow(file=path, line=len(self.rows) + 2, rep_id=rep, recorded_at=stamp) \
            if rep or when else None
        row = Row(path=str(path), task=Task(key=key, path=str(path), content_hash="h" + key), manifest=entry,
                  duplicate_of=str(copy_of) if copy_of else None)
        self.rows.append(row)
        if copy_of is None:
            base = f"reports/{path.stem}-{key}"
            self.records[key] = {"key": key, "ok": "error" not in rep_dict, "report": rep_dict,
                                 "report_json": f"{base}.json",
                                 "report_html": f"{base}.html" if html else None}
        self.page_rows.append({"file": str(path), "rep_id": rep, "duplicate_of": row.duplicate_of,
                               "recorded_at": None if stamp is None else stamp.isoformat(),
                               "record": self.records[key]})

    def summary(self) -> dict:
        return summarize(self.rows, self.records)

    def page(self, out: Path | None = None) -> str:
        return render_index_html(self.page_rows, self.summary(), out=out)


def make_batch(tmp_path: Path, *, dates: bool = True) -> Batch:
    """Two reps (anna: four dated files improving; ben: one file and a copy), a failure and a greeting."""
    calls, out = tmp_path / "calls", tmp_path / "out"
    b = Batch(out)
    day = (lambda d: d) if dates else (lambda d: None)
    anna = calls / "anna"
    b.add(anna / "a1.wav", "anna", day("2026-11-02T09:00:00"),
          report(anna / "a1.wav", 60.0, "D", {"call_to_action": 40.0, "opening": 70.0},
                 {"no_call_to_action": 8.0, "number_once": 3.0}))
    b.add(anna / "a2 with a very long name recorded on the road near the office.wav", "anna",
          day("2026-11-09T09:00:00"),
          report(anna / "a2.wav", 70.0, "C", {"call_to_action": 50.0, "opening": 80.0},
                 {"no_call_to_action": 6.0, "fillers": 1.0}))
    b.add(anna / "a3.wav", "anna", day("2026-11-16T09:00:00"),
          report(anna / "a3.wav", 80.0, "B", {"call_to_action": 70.0, "opening": 90.0}, {"number_once": 2.0}))
    b.add(anna / "a4.wav", "anna", day("2026-11-23T09:00:00"),
          report(anna / "a4.wav", 84.0, "B", {"call_to_action": 80.0, "opening": 100.0},
                 {"no_call_to_action": 4.0}))
    ben = calls / "ben"
    b.add(ben / "b1.wav", "ben", day("2026-11-03T10:00:00"),
          report(ben / "b1.wav", 75.0, "C", {"call_to_action": 90.0, "opening": 50.0},
                 {"late_company": 5.0, "monotone": 2.0}))
    b.add(ben / "b1 again.wav", "ben", day("2026-11-04T10:00:00"), b.records["k004"]["report"],
          copy_of=ben / "b1.wav")
    b.add(calls / "empty.wav", None, None,
          error_report(calls / "empty.wav", "empty_file",
                       f"{calls / 'empty.wav'}: the file is empty (0 bytes)"),
          html=False)
    b.add(calls / "greeting.wav", None, None,
          error_report(calls / "greeting.wav", "no_message", "only a mailbox greeting", kind="greeting_only"))
    return b


class Page(HTMLParser):
    """The page's visible text, its elements (tag, attrs, text inside) and tag balance problems."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.elements: list[tuple[str, dict, list[str]]] = []
        self.open: list[tuple[str, dict, list[str]]] = []
        self.feed(html)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        if tag in BLOCKS:  # cells and blocks read apart, as a browser shows them
            for _, _, inside in self.open:
                inside.append(" ")
        element = (tag, dict(attrs), [])
        self.elements.append(element)
        if tag in VOID:
            return
        self.stack.append(tag)
        self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        self.open.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("script", "style"):
            return
        self.text.append(data)
        for _, _, inside in self.open:
            inside.append(data)

    def visible(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))

    def find(self, tag: str, **attrs: str) -> list[tuple[dict, str]]:
        return [(a, re.sub(r"\s+", " ", "".join(t)).strip()) for name, a, t in self.elements
                if name == tag and all(a.get(k) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> str:
        (hit,) = [t for name, a, t in self.elements if a.get("id") == ident]
        return re.sub(r"\s+", " ", "".join(hit)).strip()


def files_head(page: str) -> list[str]:
    table = page[page.index('<table id="files"'):]
    return re.findall(r"<th>([^<]+)</th>", table[:table.index("</tr>")])


# --- summary.json: the keys the page reads ---


def test_summary_keeps_its_keys_and_adds_dimensions_focus_dates_and_trend(tmp_path):
    s = make_batch(tmp_path).summary()
    for key in ("totals", "mean_score", "grade_distribution", "top_findings", "errors", "not_graded", "reps",
                "unreadable_folders"):
        assert key in s
    assert s["totals"] == {"files": 8, "graded": 5, "not_graded": 1, "errors": 1, "pending": 0,
                           "duplicates": 1}
    anna, ben = s["reps"]["anna"], s["reps"]["ben"]
    assert set(anna) >= {"recordings", "mean_score", "grades", "mean_dimensions"}
    assert anna["recordings"] == 4 and anna["mean_score"] == 73.5
    assert anna["mean_dimensions"]["call_to_action"] == 60.0 and anna["mean_dimensions"]["opening"] == 85.0
    assert s["mean_dimensions"]["call_to_action"] == 66.0 and s["mean_dimensions"]["opening"] == 78.0
    assert s["dimension_labels"]["call_to_action"] == "Call to action and callback number"
    # what to coach: points lost (sum of gains) over the rep's files, most first; links most costly first
    assert anna["focus"] == [
        {"code": "no_call_to_action", "label": "No clear ask", "points": 18.0, "files": 3,
         "reports": ["reports/a1-k000.html", "reports/a2 with a very long name recorded on the road near "
                     "the office-k001.html", "reports/a4-k003.html"]},
        {"code": "number_once", "label": "Number said only once", "points": 5.0, "files": 2,
         "reports": ["reports/a1-k000.html", "reports/a3-k002.html"]}]
    assert [f["code"] for f in ben["focus"]] == ["late_company", "monotone"]  # the copy counts once
    top = {f["code"]: f for f in s["top_findings"]}
    assert top["no_call_to_action"]["label"] == "No clear ask" and top["no_call_to_action"]["points"] == 18.0
    assert s["recorded"] == {"first": "2026-11-02T09:00:00Z", "last": "2026-11-23T09:00:00Z", "files": 5}
    assert anna["recorded"] == {"first": "2026-11-02T09:00:00Z", "last": "2026-11-23T09:00:00Z", "files": 4}
    trend = anna["trend"]
    assert (trend["first_half_mean"], trend["last_half_mean"], trend["change"]) == (65.0, 82.0, 17.0)
    assert [p["score"] for p in trend["scores"]] == [60.0, 70.0, 80.0, 84.0]
    assert ben["trend"] is None and ben["recorded"]["files"] == 1  # one dated recording: no trend


def test_summary_without_dates_has_none(tmp_path):
    s = make_batch(tmp_path, dates=False).summary()
    assert s["recorded"] is None
    assert all(r["recorded"] is None and r["trend"] is None for r in s["reps"].values())


def test_a_report_carrying_its_own_recorded_at_counts_when_the_manifest_has_none(tmp_path):
    b = Batch(tmp_path / "out")
    for i, (score, when) in enumerate([(50.0, "2026-01-05"), (70.0, "2026-01-06T08:00:00+01:00")]):
        r = report(tmp_path / f"r{i}.wav", score, "C", {}, {})
        r["recorded_at"] = when
        b.add(tmp_path / f"r{i}.wav", None, None, r)
    s = b.summary()
    assert s["recorded"] == {"first": "2026-01-05T00:00:00Z", "last": "2026-01-06T07:00:00Z", "files": 2}
    assert s["reps"]["(none)"]["trend"]["change"] == 20.0


# --- the page ---


def test_the_page_extends_the_report_style_and_parses(tmp_path):
    page = make_batch(tmp_path).page(tmp_path / "out")
    assert page.lower().startswith("<!doctype html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page  # base.html.j2
    assert 'class="topbar"' in page and 'class="card' in page and "--accent" in page
    parsed = Page(page)
    assert parsed.problems == []
    assert "https://" not in page and "http://" not in page and "<link" not in page  # works offline


def test_no_finding_code_shows_only_human_labels(tmp_path):
    b = make_batch(tmp_path)
    page = b.page(tmp_path / "out")
    visible = Page(page).visible()
    codes = {f["code"] for r in b.records.values() for f in r["report"].get("feedback", [])}
    assert codes and codes <= set(FINDING_LABELS)
    for code in codes:
        assert finding_label(code) in visible, code
    words = visible
    for label in (*LABELS.values(), *FINDING_LABELS.values()):  # "Fluency and fillers" is no code
        words = words.replace(label, " ")
    for code in codes:
        assert not re.search(rf"\b{code}\b", words), code
    top = Page(page).by_id("top-findings")
    assert "No clear ask: 3 files (60%)" in top and "18.0 points lost in all" in top
    assert "Filler words: 1 file (20%)" in top


def test_an_unknown_code_reads_as_words(tmp_path):
    b = Batch(tmp_path / "out")
    r = report(tmp_path / "x.wav", 60.0, "D", {}, {"number_once": 2.0})
    r["feedback"][0]["code"] = "brand_new_check"
    b.add(tmp_path / "x.wav", "cy", None, r)
    visible = Page(b.page()).visible()
    assert "brand_new_check" not in visible and "Brand new check" in visible


def test_no_absolute_path_anywhere_and_names_relative_to_the_page(tmp_path):
    b = make_batch(tmp_path)
    inside = tmp_path / "out" / "inbox" / "late.wav"  # an input inside --out: relative to the page
    b.add(inside, "ben", None, report(inside, 90.0, "A", {}, {}))
    page = b.page(tmp_path / "out")
    assert str(tmp_path) not in page
    assert not re.search(r"""(?:^|[\s"'>(=:])/(?:tmp|home|work|root|private|var|Users)\b""", page)
    files = Page(page).find("td", **{"class": "ix-file"})
    names = [text for _, text in files]
    assert "anna/a1.wav" in names and "empty.wav" in names and "inbox/late.wav" in names
    assert "anna/a2 with a very long name recorded on the road near the office.wav" in names
    links = [a["href"] for a, _ in Page(page).find("a")]
    assert links and all(not Path(h).is_absolute() and not h.startswith(("/", "file:")) for h in links)
    visible = Page(page).visible()
    assert "[empty_file] empty.wav: the file is empty (0 bytes)" in visible  # the message's path too
    assert "ben/b1.wav" in visible  # the copy's "Copy of"


def test_without_out_names_are_relative_to_the_common_folder(tmp_path):
    page = make_batch(tmp_path).page()
    assert str(tmp_path) not in page
    assert [t for _, t in Page(page).find("td", **{"class": "ix-file"})][0] == "anna/a1.wav"


def test_per_rep_dimensions_against_the_batch_and_what_to_coach(tmp_path):
    page = make_batch(tmp_path).page(tmp_path / "out")
    parsed = Page(page)
    anna = parsed.by_id("rep-1")
    assert anna.startswith("anna · 4 files · mean 73.5 (-0.3 vs batch) · B 2 · C 1 · D 1")  # batch: 73.8
    assert "Call to action and callback number 60.0 66.0 -6.0" in anna
    assert "Opening and identity 85.0 78.0 +7.0" in anna
    assert "Coach first" in anna
    focus = [t for _, t in parsed.find("li", **{"class": "rep-focus"})]
    assert focus[0].startswith("No clear ask 18.0 points over 3 files")
    assert focus[1].startswith("Number said only once 5.0 points over 2 files")
    # the reports where the focus finding cost most, linked by the file's name
    rep_card = page[page.index('id="rep-1"'):page.index('id="rep-2"')]
    first = rep_card[rep_card.index("No clear ask"):rep_card.index("Number said only once")]
    assert re.findall(r'href="([^"]+)">([^<]+)<', first) == [
        ("reports/a1-k000.html", "anna/a1.wav"),
        ("reports/a2 with a very long name recorded on the road near the office-k001.html",
         "anna/a2 with a very long name recorded on the road near the office.wav"),
        ("reports/a4-k003.html", "anna/a4.wav")]
    ben = parsed.by_id("rep-2")
    assert "Late company" not in ben and "Company given late 5.0 points over 1 file" in ben
    table = parsed.by_id("rep-table")
    assert "anna 4 73.5 -0.3" in table and "ben 1 75.0 +1.2" in table
    assert "No clear ask; Number said only once" in table


def test_dates_and_trend_when_the_files_carry_them(tmp_path):
    page = make_batch(tmp_path).page(tmp_path / "out")
    parsed = Page(page)
    assert "Recorded 2026-11-02 to 2026-11-23 (5 of 5 graded files carry a date)" in parsed.by_id("recorded")
    assert files_head(page)[:4] == ["File", "Rep", "Recorded", "Score"]
    assert 'data-v="2026-11-02T09:00:00+00:00" class=ix-date>2026-11-02</td>' in page
    trend = [t for _, t in parsed.find("p", **{"class": "rep-trend"})]
    assert trend[0].startswith("Recorded 2026-11-02 to 2026-11-23.")
    assert "First half 65.0 → last half 82.0 (+17.0) over 4 dated files." in trend[0]
    assert "One dated file: no trend yet." in trend[1]
    spark = parsed.find("svg")[0]  # in the reps table and in anna's card
    assert len(parsed.find("svg")) == 2
    assert spark[0]["aria-label"] == ("Scores by date: 2026-11-02 60.0, 2026-11-09 70.0, 2026-11-16 80.0, "
                                      "2026-11-23 84.0")
    line = parsed.find("polyline")[0]
    ys = [float(p.split(",")[1]) for p in line[0]["points"].split()]
    assert ys == sorted(ys, reverse=True)  # rising scores draw upwards


def test_without_dates_no_date_column_and_no_trend(tmp_path):
    page = make_batch(tmp_path, dates=False).page(tmp_path / "out")
    parsed = Page(page)
    assert files_head(page)[:3] == ["File", "Rep", "Score"]
    rep_table = page[page.index('id="rep-table"'):]
    assert re.findall(r"<th[^>]*>([^<]+)</th>", rep_table[:rep_table.index("</tr>")]) == [
        "Rep", "Files", "Mean", "vs batch", "Coach first"]
    assert "No clear ask; Number said only once" in parsed.by_id("rep-table")
    assert "Recorded" not in parsed.visible() and "Trend" not in parsed.visible()
    assert "<svg" not in page and 'id="recorded"' not in page
    assert parsed.problems == []


def test_everything_the_page_showed_before_is_still_there(tmp_path):
    page = make_batch(tmp_path).page(tmp_path / "out")
    visible = Page(page).visible()
    assert ("5 graded, 1 not graded (1 greeting), 1 failed, 0 not finished, 1 copies, of 8 files; "
            "mean score 73.8.") in visible
    assert "A 0" in visible.replace("\xa0", " ") and "B 2" in visible.replace("\xa0", " ")
    assert "not graded (greeting_only): only a mailbox greeting" in visible
    assert "<tr class=error>" in page and "<tr class=notgraded>" in page
    assert "empty file: 1" in Page(page).by_id("problems")


def test_the_files_table_scrolls_in_its_own_box_and_long_names_wrap(tmp_path):
    page = make_batch(tmp_path).page(tmp_path / "out")
    assert re.search(r'<div class="[^"]*\bix-scroll\b[^"]*">\s*<table id="files" class="sortable">', page)
    assert re.search(r"\.ix-scroll \{ overflow-x: auto;", page)
    assert re.search(r"#files td\.ix-file, [^{]*\{ white-space: normal; overflow-wrap: anywhere;", page)
    assert "addEventListener('click'" in page and "aria-sort" in page


def test_a_summary_from_before_these_keys_still_renders(tmp_path):
    b = make_batch(tmp_path)
    old = b.summary()
    for key in ("mean_dimensions", "dimension_labels", "recorded"):
        del old[key]
    for rep in old["reps"].values():
        for key in ("focus", "recorded", "trend", "mean_dimensions"):
            del rep[key]
    for f in old["top_findings"]:
        del f["label"], f["points"]
    rows = [dict(r, recorded_at=None) for r in b.page_rows]
    page = render_index_html(rows, old, out=tmp_path / "out")
    assert Page(page).problems == [] and "No clear ask" in Page(page).visible()


# --- in a browser (optional) ---


def _chromium():
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return sync_playwright, str(chromium), args


def test_in_a_browser_the_page_fits_a_phone_and_a_desktop_and_sorts(tmp_path):
    sync_playwright, chromium, args = _chromium()
    out = tmp_path / "out"
    out.mkdir()
    index = out / "index.html"
    index.write_text(make_batch(tmp_path).page(out), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            for width in (390, 1280):
                view = browser.new_page(viewport={"width": width, "height": 800})
                view.goto(index.as_uri())
                fits = view.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
                assert fits[0] <= fits[1], (width, fits)
                box = view.eval_on_selector("#files", "t => [t.parentElement.scrollWidth, "
                                                      "t.parentElement.clientWidth, "
                                                      "getComputedStyle(t.parentElement).overflowX]")
                assert box[2] == "auto"
                if width == 390:
                    assert box[0] > box[1]  # the table scrolls in its box, not the page
                view.click("#files th:text-is('Score')")
                col = view.eval_on_selector("#files th:text-is('Score')", "th => th.cellIndex")
                values = view.eval_on_selector_all(
                    "#files tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-v'))")
                numbers = [v for v in values if v]
                assert values == sorted(numbers, key=float) + [""] * (len(values) - len(numbers))
                view.close()
        finally:
            browser.close()
