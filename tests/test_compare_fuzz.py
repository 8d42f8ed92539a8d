"""Report JSON handed to ``compare`` is the user's file: every leaf of a real report, changed to a
value of another type, is either refused as ``report_invalid`` or compared and drawn (terminal,
JSON, HTML) without a traceback (red-team round 3: eleven such leaves crashed it).

The reports in tests/data are ``vmgrade grade --format json`` of the bundled practice samples.
"""

from __future__ import annotations

import copy
import json

import pytest
from conftest import ROOT

from vmgrade.compare import compare_reports, load_reports
from vmgrade.errors import VmgradeError
from vmgrade.render.html import render_comparison_html
from vmgrade.render.terminal import render_comparison

DATA = ROOT / "tests" / "data"
# One of each kind of value a leaf could wrongly hold (10**400 overflowed float()).
HOSTILE_VALUES = (None, True, "x", 10**400, -1, [], {})
LIST_ITEMS = 2  # of each list, the first items are mutated (the rest are alike)


def _leaves(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:LIST_ITEMS]):
            yield from _leaves(value, (*path, i))


def _set(node, path, value):
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _fuzz(tmp_path, values, html_every: int | None) -> tuple[dict, int, int]:
    """Each leaf of the before report set to each of ``values``, then loaded, compared and drawn
    (the HTML page for every ``html_every``-th leaf, None: never). Crashes by kind, refused, compared."""
    before = json.loads((DATA / "report_before_practice.json").read_text(encoding="utf-8"))
    after = json.loads((DATA / "report_after_practice.json").read_text(encoding="utf-8"))
    paths = [p for p in _leaves(before) if p and p[0] != "timings_s"]
    crashed: dict[tuple[str, str], str] = {}
    refused = compared = 0
    target = tmp_path / "before.json"
    for n, path in enumerate(paths):
        for value in values:
            report = copy.deepcopy(before)
            _set(report, path, value)
            target.write_text(json.dumps(report), encoding="utf-8")
            try:
                comparison = compare_reports([*load_reports(target), after])
                render_comparison(comparison, color=False)
                json.dumps(comparison.to_dict())
                if html_every and n % html_every == 0:  # no audio is decoded: the files are not at hand
                    render_comparison_html(comparison)
                compared += 1
            except VmgradeError as exc:
                assert exc.code == "report_invalid", exc
                refused += 1
            except Exception as exc:  # noqa: BLE001 - collected, so one run names every leaf at fault
                where = f"{'.'.join(map(str, path))} = {value!r:.20}"
                crashed.setdefault((type(exc).__name__, str(exc)[:60]), where)
    return crashed, refused, compared


def test_every_leaf_of_a_report_changed_is_refused_or_compared(tmp_path):
    crashed, refused, compared = _fuzz(tmp_path, HOSTILE_VALUES, html_every=None)
    assert not crashed, crashed
    assert refused > 100 and compared > 100  # both outcomes happen: the check is not all-or-nothing


@pytest.mark.slow  # no model, but an HTML comparison page takes ~0.5 s: every 4th leaf, ~2 min
def test_every_leaf_changed_is_refused_or_drawn_as_a_page(tmp_path):
    crashed, _, _ = _fuzz(tmp_path, (None, "x", []), html_every=4)
    assert not crashed, crashed


def test_the_fixture_reports_compare_as_they_are():
    names = ("report_before_practice.json", "report_after_practice.json")
    reports = [report for name in names for report in load_reports(DATA / name)]
    comparison = compare_reports(reports)
    assert comparison.ok and comparison.score.after > comparison.score.before


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_a_huge_integer_score_is_report_invalid(tmp_path, value):
    report = json.loads((DATA / "report_before_practice.json").read_text(encoding="utf-8"))
    report["score"] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(VmgradeError) as err:
        load_reports(path)
    assert err.value.code == "report_invalid" and "score" in str(err.value)
