"""Validity: the grade orders voicemails as a sales trainer would.

``samples/validity/manifest.toml`` lists rendered voicemails with a ``tier``
(1 best … 5 worst) assigned where the order is unambiguous to a trainer.
"""

from __future__ import annotations

import itertools

import pytest
import tomllib
from conftest import SAMPLES

from vmgrade import Context
from vmgrade.pipeline import CONTEXT_FIELDS

VALIDITY = SAMPLES / "validity"
MANIFEST = tomllib.loads((VALIDITY / "manifest.toml").read_text())
ITEMS = [s for s in MANIFEST["sample"] if "tier" in s.get("expect", {})]
MIN_ORDERED_SHARE = 0.90
PHONE_MAX_DIFF = 5.0


def _context(expect: dict) -> Context:
    return Context(**{k: expect.get(k) or None for k in CONTEXT_FIELDS})


@pytest.fixture(scope="module")
def scores(graded):
    out = {}
    for item in ITEMS:
        report = graded(VALIDITY / item["output"], _context(item["expect"]))
        assert report.ok, report.error
        out[item["name"]] = report.grade.score
    return out


def test_set_is_big_enough():
    assert len(ITEMS) >= 12
    assert len({i["expect"]["tier"] for i in ITEMS}) >= 3


def test_pairwise_orderings_hold(scores):
    tiers = {i["name"]: i["expect"]["tier"] for i in ITEMS}
    pairs = [(a, b) if tiers[a] < tiers[b] else (b, a)
             for a, b in itertools.combinations(tiers, 2) if tiers[a] != tiers[b]]
    wrong = [(better, worse) for better, worse in pairs if not scores[better] > scores[worse]]
    share = 1 - len(wrong) / len(pairs)
    ranked = sorted(scores, key=scores.get, reverse=True)
    table = "\n".join(f"  tier {tiers[n]}  {scores[n]:5.1f}  {n}" for n in ranked)
    detail = ", ".join(f"{b} ({scores[b]:.1f}) <= {w} ({scores[w]:.1f})" for b, w in wrong)
    assert share >= MIN_ORDERED_SHARE, f"{share:.0%} of {len(pairs)} orderings hold\n{table}\nwrong: {detail}"


def test_phone_copy_scores_like_the_clean_one(scores):
    assert abs(scores["strong_phone"] - scores["strong"]) <= PHONE_MAX_DIFF


def test_wrong_callback_number_is_caught(graded):
    strong = next(i for i in ITEMS if i["name"] == "strong")
    expect = dict(strong["expect"], callback_number="4155550143")
    report = graded(VALIDITY / strong["output"], _context(expect))
    assert report.grade.findings[0].code == "number_mismatch"
