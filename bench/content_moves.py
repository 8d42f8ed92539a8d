#!/usr/bin/env python3
"""How well the content stage reads voicemails it was not tuned on.

    python bench/content_moves.py                 # held-out moves: per-move precision/recall, both engines
    python bench/content_moves.py --speed         # + warm cost per voicemail, cold load, added RSS
    VMGRADE_DEV_SCRIPTS=path/to/dev_scripts.toml python bench/content_moves.py
                                                  # + tier-pair ordering of externally written scripts

1. Per-move precision and recall on ``samples/moves/heldout.jsonl`` (written
   apart from the training split), for the embedding engine and, side by side,
   the old phrase lists.  Both engines get the same number parser and the
   same opening-name finder, so the columns compare what each engine adds.
2. With ``$VMGRADE_DEV_SCRIPTS`` (a TOML of ``[[script]]`` tables with ``text``,
   ``tier`` and the call's context), the share of tier pairs the content grade
   orders correctly (a tie is not an ordering), per engine.  The file is not
   part of the repository; the section is skipped without it.
3. ``--speed``: the content stage's warm time per voicemail, the cold cost
   of loading the model and the RSS it adds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from itertools import combinations
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELDOUT = ROOT / "samples" / "moves" / "heldout.jsonl"
DEV_SCRIPTS_ENV = "VMGRADE_DEV_SCRIPTS"


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sentence_moves(engine, rows: list[dict]) -> list[set[str]]:
    """Each held-out sentence's moves as the real analysis sees them, a voicemail at a time.

    A voicemail's sentences are joined into one transcript (made-up word
    times; a sentence that lacks final punctuation gets a full stop, so the
    writer's sentence edges hold) and run through :func:`vmgrade.content.analyze`
    with ``engine``: the same splitter, number parser and name finder for
    every engine.  The moves of each analysed sentence go to the held-out
    sentence its words came from.
    """
    from vmgrade.asr.transcribe import Segment, Transcript
    from vmgrade.content import analyze
    from vmgrade.content.tokens import words_from_text

    by_vm: dict[str, list[int]] = {}
    for k, r in enumerate(rows):
        by_vm.setdefault(r["voicemail"], []).append(k)
    out: list[set[str]] = [set() for _ in rows]
    for indices in by_vm.values():
        words, owner, t = [], [], 0.0
        for k in indices:
            text = rows[k]["text"].strip()
            if not text.endswith((".", "?", "!")):
                text += "."
            for w in words_from_text(text):
                words.append(type(w)(w.word, w.start + t, w.end + t, w.probability))
                owner.append(k)
            t = words[-1].end + 0.3
        seg = Segment(0.0, t, "", 0.0, 0.0, 1.0, tuple(words))
        findings = analyze(Transcript("", "en", (seg,), 0.0, "text", "none"), engine=engine)
        starts = [w.start for w in words]
        for move in findings.moves:
            k = owner[starts.index(move.start_s)]
            out[k].update(move.moves)
    return out


def per_move_table(rows: list[dict], engines: dict) -> None:
    from vmgrade.content.moves import MOVES

    truth = [set(r["moves"]) for r in rows]
    preds = {name: sentence_moves(engine, rows) for name, engine in engines.items()}
    names = list(engines)
    print(f"held-out split: {len(rows)} sentences, {len({r['voicemail'] for r in rows})} voicemails, "
          f"{len({r['industry'] for r in rows})} industries")
    header = "".join(f"  {n:>10s} P    R    F1" for n in names)
    print(f"{'move':14s} {'n':>4s}{header}")
    macro = {n: [] for n in names}
    for m in MOVES:
        n_true = sum(m in t for t in truth)
        cells = ""
        for name in names:
            tp = sum(m in p and m in t for p, t in zip(preds[name], truth))
            n_pred = sum(m in p for p in preds[name])
            prec = tp / n_pred if n_pred else 0.0
            rec = tp / n_true if n_true else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            macro[name].append(f1)
            cells += f"  {'':>10s} {prec:.2f} {rec:.2f} {f1:.2f}"
        print(f"{m:14s} {n_true:4d}{cells}")
    print("macro F1      " + "".join(f"  {n:>10s} {sum(v) / len(v):.3f}          " for n, v in macro.items()))
    by_style: dict[str, list[int]] = {}
    for r, p in zip(rows, preds.get("embedding", next(iter(preds.values())))):
        exact = int(p == set(r["moves"]))
        by_style.setdefault(r["style"], []).append(exact)
    print("exact-match rate by style (first engine): " + ", ".join(
        f"{s} {sum(v) / len(v):.2f}" for s, v in sorted(by_style.items())))


def dev_scripts(path: Path, engines: dict) -> None:
    from vmgrade import scoring
    from vmgrade.content import analyze_text

    scripts = tomllib.loads(path.read_text(encoding="utf-8"))["script"]
    rubric = scoring.load_rubric()
    print(f"\ndev scripts: {len(scripts)} written outside the team ({path.name})")
    for name, engine in engines.items():
        graded = []
        for s in scripts:
            findings = analyze_text(s["text"], caller_name=None, company=None,
                                    callback_number=s.get("callback_number"), engine=engine)
            graded.append((s, scoring.content_score(findings, rubric)))
        pairs = [(a, b) for a, b in combinations(graded, 2) if a[0]["tier"] != b[0]["tier"]]
        good = sum((a[1] - b[1]) * (b[0]["tier"] - a[0]["tier"]) > 0 for a, b in pairs)
        print(f"  {name:10s} tier pairs ordered: {good}/{len(pairs)} = {good / len(pairs):.0%}")
        for s, value in sorted(graded, key=lambda g: -g[1]):
            print(f"      tier {s['tier']}  {value:5.1f}  {s['id']}")


def speed(engines: dict) -> None:
    from vmgrade.content import analyze_text

    text = ("Hi Marco, Sofia Reyes from Yieldstay. The harbour festival is eleven weeks out and Hotel "
            "Alma's rates are still those of a normal weekend. Hotels on Collins that raised theirs early "
            "last year filled at forty percent more per night. Could we talk for fifteen minutes on "
            "Monday? Three oh five, five five five, one one eight seven. Again, Sofia Reyes, Yieldstay, "
            "three oh five, five five five, one one eight seven.")
    print("\nspeed (a ~30-s voicemail's transcript, 2 warm-ups, median of 20):")
    for name, engine in engines.items():
        for _ in range(2):
            analyze_text(text, engine=engine)
        runs = []
        for _ in range(20):
            t0 = time.perf_counter()
            analyze_text(text, engine=engine)
            runs.append(time.perf_counter() - t0)
        print(f"  {name:10s} warm content stage: {sorted(runs)[10] * 1000:6.1f} ms")


def cold_load() -> None:
    """Load the encoder and head in this process, first thing, and report time and RSS added."""
    import torch  # noqa: F401 - already loaded by Whisper in a real grade; not the model's cost

    import vmgrade  # noqa: F401

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    from vmgrade.content.moves import EmbeddingMoves

    engine = EmbeddingMoves()
    engine.scores(["Hi there."])
    dt = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  cold: model load + first sentence {dt:.2f} s (torch already imported); "
          f"peak RSS +{rss1 - rss0:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true", help="also time the stage and measure its memory")
    ap.add_argument("--engine", choices=("both", "embedding", "phrases"), default="both")
    args = ap.parse_args()
    if args.speed and "--cold-child" not in sys.argv:
        import subprocess

        subprocess.run([sys.executable, __file__, "--cold-child"], check=False)
    from vmgrade.content.moves import EmbeddingMoves, PhraseMoves

    engines = {}
    if args.engine in ("both", "embedding"):
        engines["embedding"] = EmbeddingMoves()
    if args.engine in ("both", "phrases"):
        engines["phrases"] = PhraseMoves()
    per_move_table(load_rows(HELDOUT), engines)
    path = os.environ.get(DEV_SCRIPTS_ENV)
    if path and Path(path).is_file():
        dev_scripts(Path(path), engines)
    else:
        print(f"\ndev scripts: skipped (${DEV_SCRIPTS_ENV} not set or missing)")
    if args.speed:
        speed(engines)
    return 0


if __name__ == "__main__":
    if "--cold-child" in sys.argv:
        cold_load()
        sys.exit(0)
    sys.exit(main())
