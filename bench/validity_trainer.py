"""Held-out validity: does the grade order voicemails as a sales trainer would, in two voices and
on the phone channel, and do its findings say what the trainer says?

``samples/validity_trainer/`` holds 40 scripts (8 scenario families x 5 tiers: excellent,
ordinary with a real reason, research theatre, poor, robocall or empty) written apart from the
detectors, each with a trainer's ``truth`` table.  Every script is graded in each voice (Piper
joe: the committed audio; espeak-ng: rendered here) on the wideband and the telephone channel.

Printed:

- per voice and channel, the share of tier pairs in the right order, and the research-theatre
  targets per family (theatre below the ordinary message with a real reason; the excellent one at
  least 10 points above theatre);
- per finding, precision and recall against the trainer's truth;
- any critical ``number_mismatch`` (every number said is the rep's: there must be none).

Run: ``python bench/validity_trainer.py [--voices joe,espeak] [--channels wideband,phone]``
(about 10 minutes on 2 cores; needs what bench/tts.py needs).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tts  # noqa: E402

from vmgrade import Context, Grader  # noqa: E402
from vmgrade.pipeline import CONTEXT_FIELDS  # noqa: E402

SET = ROOT / "samples" / "validity_trainer"
THEATRE_LEAD = 10.0  # points the excellent message must lead research theatre by (issue target)
# A finding and the trainer's truth it should agree with: (finding codes, truth predicate).
FINDINGS = {
    "research_theatre": (("research_theatre",), lambda t: t["research_theatre"]),
    "no specific reason": (("research_theatre", "vague_reason", "no_specific_reason"),
                           lambda t: not t["specific_reason"]),
    "no_call_to_action": (("no_call_to_action",), lambda t: not t["clear_ask"]),
    "ask not clear": (("no_call_to_action", "soft_ask", "too_many_asks"), lambda t: not t["clear_ask"]
                      or t["soft_ask"] or t["many_asks"]),
    "too_many_asks": (("too_many_asks",), lambda t: t["many_asks"]),
    "soft_ask": (("soft_ask",), lambda t: t["soft_ask"]),
    "weak_phrase": (("weak_phrase",), lambda t: t["weak_phrase"]),
    "no_caller_name": (("no_caller_name",), lambda t: not t["caller_name_said"]),
    "no_company": (("no_company",), lambda t: not t["company_said"]),
    "prospect_not_named": (("prospect_not_named",), lambda t: not t["prospect_named"]),
    "number once or none": (("number_once", "no_callback_number"), lambda t: not t["number_twice"]),
}


def context(expect: dict) -> Context:
    return Context(**{k: expect.get(k) or None for k in CONTEXT_FIELDS})


def orderings(items: list, scores: dict[str, float]) -> tuple[int, int, list[str]]:
    tiers = {i.name: i.expect["tier"] for i in items if i.name in scores}
    pairs = [(a, b) if tiers[a] < tiers[b] else (b, a)
             for a, b in itertools.combinations(tiers, 2) if tiers[a] != tiers[b]]
    wrong = [f"{b} ({scores[b]:.1f}) <= {w} ({scores[w]:.1f})" for b, w in pairs if not scores[b] > scores[w]]
    return len(pairs) - len(wrong), len(pairs), wrong


def theatre_targets(items: list, scores: dict[str, float]) -> list[str]:
    """Per family: theatre below every ordinary message, and the excellent one THEATRE_LEAD above it."""
    misses = []
    for family in sorted({i.expect["family"] for i in items}):
        by_tier: dict[int, list[str]] = {}
        for i in items:
            if i.expect["family"] == family and i.name in scores:
                by_tier.setdefault(i.expect["tier"], []).append(i.name)
        for theatre in by_tier.get(3, []):
            for ordinary in by_tier.get(2, []):
                if scores[theatre] >= scores[ordinary]:
                    misses.append(f"{family}: theatre {scores[theatre]:.1f} >= ordinary "
                                  f"{scores[ordinary]:.1f}")
            for best in by_tier.get(1, []):
                if scores[best] - scores[theatre] < THEATRE_LEAD:
                    misses.append(f"{family}: excellent {scores[best]:.1f} leads theatre "
                                  f"{scores[theatre]:.1f} by less than {THEATRE_LEAD:g}")
    return misses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="joe,espeak")
    ap.add_argument("--channels", default="wideband,phone")
    ap.add_argument("--work", type=Path, default=None, help="keep the renders here (default: a temp dir)")
    args = ap.parse_args(argv)
    ms = tts.make_samples()
    items = [s for s in ms.load_manifest(SET / "manifest.toml") if s.channel == "wideband"]
    committed = {s.name: s.output_path for s in ms.load_manifest(SET / "manifest.toml")}
    work = args.work or Path(tempfile.mkdtemp(prefix="vmgrade-validity-"))
    grader = Grader()
    hits = {k: [0, 0, 0] for k in FINDINGS}  # true positives, flagged, truly there
    mismatches, failed = [], []
    for voice in args.voices.split(","):
        for channel in args.channels.split(","):
            scores = {}
            for item in items:
                ready = committed.get(item.name if channel == "wideband" else f"{item.name}_phone")
                path = ready if voice == "joe" and ready is not None and ready.exists() else \
                    tts.render_variant(item, work, voice, channel)
                report = grader.grade(path, context(item.expect))
                if not report.ok:
                    failed.append(f"{item.name} {voice}/{channel}: {report.error.code}")
                    continue
                scores[item.name] = report.grade.score
                codes = {f.code for f in report.grade.findings}
                if "number_mismatch" in codes:
                    mismatches.append(f"{item.name} {voice}/{channel}")
                truth = item.expect["truth"]
                for key, (finding_codes, is_true) in FINDINGS.items():
                    flagged, there = bool(codes & set(finding_codes)), bool(is_true(truth))
                    hits[key][0] += flagged and there
                    hits[key][1] += flagged
                    hits[key][2] += there
            good, total, wrong = orderings(items, scores)
            print(f"{voice}/{channel}: {good}/{total} tier pairs in order ({good / max(total, 1):.1%})")
            ranked = sorted(scores, key=scores.get, reverse=True)
            tiers = {i.name: i.expect["tier"] for i in items}
            print("  " + "  ".join(f"{tiers[n]}:{scores[n]:.0f}" for n in ranked))
            for w in wrong[:12]:
                print(f"    wrong: {w}")
            for miss in theatre_targets(items, scores):
                print(f"    theatre target missed: {miss}")
    print()
    print(f"{'finding':22s} {'precision':>9s} {'recall':>7s} {'flagged':>8s} {'true':>5s}")
    for key, (tp, flagged, there) in hits.items():
        p = f"{tp / flagged:.2f}" if flagged else "-"
        r = f"{tp / there:.2f}" if there else "-"
        print(f"{key:22s} {p:>9s} {r:>7s} {flagged:8d} {there:5d}")
    print(f"\ncritical number_mismatch (all false): {len(mismatches)}" +
          (": " + ", ".join(mismatches) if mismatches else ""))
    for f in failed:
        print(f"  not graded: {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
