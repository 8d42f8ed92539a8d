"""Validity: the grade orders voicemails as a sales trainer would.

``samples/validity/manifest.toml`` lists rendered voicemails with a ``tier``
(1 best … 5 worst) assigned where the order is unambiguous to a trainer.
``samples/validity_styles/`` is a second set, written apart from the content
detectors, in other styles: plain-worded specific messages, cue-stuffed
generic ones, terse, formal, non-native, ramblers, numbers said in pairs.
"""

from __future__ import annotations

import itertools

import pytest
import tomllib
from conftest import SAMPLES

from vmgrade import Context
from vmgrade.pipeline import CONTEXT_FIELDS

VALIDITY = SAMPLES / "validity"
STYLES = SAMPLES / "validity_styles"


def _items(folder):
    manifest = tomllib.loads((folder / "manifest.toml").read_text())
    return [s for s in manifest["sample"] if "tier" in s.get("expect", {})]


ITEMS = _items(VALIDITY)
STYLE_ITEMS = _items(STYLES)
MIN_ORDERED_SHARE = 0.90
PHONE_MAX_DIFF = 5.0


def _context(expect: dict) -> Context:
    return Context(**{k: expect.get(k) or None for k in CONTEXT_FIELDS})


def _scores(graded, folder, items) -> dict[str, float]:
    out = {}
    for item in items:
        report = graded(folder / item["output"], _context(item["expect"]))
        assert report.ok, report.error
        out[item["name"]] = report.grade.score
    return out


@pytest.fixture(scope="module")
def scores(graded):
    return _scores(graded, VALIDITY, ITEMS)


@pytest.fixture(scope="module")
def style_scores(graded):
    return _scores(graded, STYLES, STYLE_ITEMS)


def test_set_is_big_enough():
    assert len(ITEMS) >= 12
    assert len({i["expect"]["tier"] for i in ITEMS}) >= 3
    assert len(STYLE_ITEMS) >= 24
    assert len({i["expect"]["tier"] for i in STYLE_ITEMS}) >= 4


def _check_orderings(items, scores) -> None:
    tiers = {i["name"]: i["expect"]["tier"] for i in items}
    pairs = [(a, b) if tiers[a] < tiers[b] else (b, a)
             for a, b in itertools.combinations(tiers, 2) if tiers[a] != tiers[b]]
    wrong = [(better, worse) for better, worse in pairs if not scores[better] > scores[worse]]
    share = 1 - len(wrong) / len(pairs)
    ranked = sorted(scores, key=scores.get, reverse=True)
    table = "\n".join(f"  tier {tiers[n]}  {scores[n]:5.1f}  {n}" for n in ranked)
    detail = ", ".join(f"{b} ({scores[b]:.1f}) <= {w} ({scores[w]:.1f})" for b, w in wrong)
    assert share >= MIN_ORDERED_SHARE, f"{share:.0%} of {len(pairs)} orderings hold\n{table}\nwrong: {detail}"


def test_pairwise_orderings_hold(scores):
    _check_orderings(ITEMS, scores)


def test_pairwise_orderings_hold_on_other_styles(style_scores):
    _check_orderings(STYLE_ITEMS, style_scores)


def test_phone_copy_scores_like_the_clean_one(scores):
    assert abs(scores["strong_phone"] - scores["strong"]) <= PHONE_MAX_DIFF


def test_wrong_callback_number_is_caught(graded):
    strong = next(i for i in ITEMS if i["name"] == "strong")
    expect = dict(strong["expect"], callback_number="4155550143")
    report = graded(VALIDITY / strong["output"], _context(expect))
    assert report.grade.findings[0].code == "number_mismatch"
