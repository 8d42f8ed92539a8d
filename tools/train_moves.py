#!/usr/bin/env python3
"""Train the move head: one logistic regression per move on MiniLM sentence embeddings.

    python tools/train_moves.py            # writes vmgrade/content/moves_head.npz
    python tools/train_moves.py --check    # retrains and compares with the packaged head

Reads the training split only (``samples/moves/train_*.jsonl``); the held-out
split (``samples/moves/heldout.jsonl``) is for ``bench/content_moves.py``.
Each move's decision threshold is the one that maximises F1 on 5-fold
cross-validated predictions, folds grouped by voicemail so that no voicemail
is both trained on and scored.  Deterministic: the same data gives the same
head.  Needs scikit-learn (installed with librosa).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "samples" / "moves"
HEAD = ROOT / "vmgrade" / "content" / "moves_head.npz"
C = 8.0  # inverse L2 strength: picked by grouped CV among 0.5, 1, 2, 4, 8 (macro F1; --select-c)
FOLDS = 5


def load_split(pattern: str) -> list[dict]:
    rows = []
    for path in sorted(DATA.glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def dataset_digest(pattern: str) -> str:
    h = hashlib.sha256()
    for path in sorted(DATA.glob(pattern)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def targets(rows: list[dict], moves: tuple[str, ...]) -> np.ndarray:
    return np.array([[m in r["moves"] for m in moves] for r in rows], dtype=np.int8)


def fit(x: np.ndarray, y: np.ndarray, c: float = C):
    from sklearn.linear_model import LogisticRegression

    coef, intercept = [], []
    for k in range(y.shape[1]):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x, y[:, k])
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
    return np.array(coef, dtype=np.float32), np.array(intercept, dtype=np.float32)


def cv_probabilities(x, y, groups, c: float = C) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    out = np.zeros(y.shape, dtype=np.float32)
    for train, test in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        coef, intercept = fit(x[train], y[train], c)
        out[test] = 1.0 / (1.0 + np.exp(-(x[test] @ coef.T + intercept)))
    return out


def best_thresholds(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    grid = np.linspace(0.2, 0.9, 29)
    out = []
    for k in range(y.shape[1]):
        f1 = []
        for t in grid:
            pred = p[:, k] >= t
            tp = np.sum(pred & (y[:, k] == 1))
            f1.append(2 * tp / max(1, pred.sum() + y[:, k].sum()))
        out.append(grid[int(np.argmax(f1))])
    return np.array(out, dtype=np.float32)


def macro_f1(p, y, thresholds) -> float:
    pred = p >= thresholds
    tp = (pred & (y == 1)).sum(0)
    return float(np.mean(2 * tp / np.maximum(1, pred.sum(0) + y.sum(0))))


def train(select_c: bool = False):
    from vmgrade.content.embed import SentenceEncoder
    from vmgrade.content.moves import FEATURE_WEIGHT, MOVES, sentence_features

    rows = load_split("train_*.jsonl")
    texts = [r["text"] for r in rows]
    x = np.hstack([SentenceEncoder().encode(texts), sentence_features(texts)])
    y = targets(rows, MOVES)
    groups = [r["voicemail"] for r in rows]
    c = C
    if select_c:
        scores = {}
        for cand in (0.5, 1.0, 2.0, 4.0, 8.0):
            p = cv_probabilities(x, y, groups, cand)
            scores[cand] = macro_f1(p, y, best_thresholds(p, y))
            print(f"C={cand:<4} grouped-CV macro F1 {scores[cand]:.3f}")
        c = max(scores, key=scores.get)
    p = cv_probabilities(x, y, groups, c)
    thresholds = best_thresholds(p, y)
    coef, intercept = fit(x, y, c)
    meta = {"sentences": len(rows), "voicemails": len(set(groups)), "C": c,
            "data_sha256_16": dataset_digest("train_*.jsonl"), "encoder": "all-MiniLM-L6-v2",
            "trained": "tools/train_moves.py", "cv_macro_f1": round(macro_f1(p, y, thresholds), 4),
            "feature_weight": FEATURE_WEIGHT}
    return MOVES, coef, intercept, thresholds, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="retrain and compare with the packaged head")
    ap.add_argument("--select-c", action="store_true", help="pick C by grouped cross-validation first")
    args = ap.parse_args()
    moves, coef, intercept, thresholds, meta = train(args.select_c)
    if args.check:
        with np.load(HEAD, allow_pickle=False) as old:
            same = (np.allclose(old["coef"], coef, atol=1e-3) and np.allclose(old["thresholds"], thresholds)
                    and json.loads(str(old["meta"]))["data_sha256_16"] == meta["data_sha256_16"])
        print("packaged head matches the training data" if same else "packaged head is STALE: retrain")
        return 0 if same else 1
    np.savez_compressed(HEAD, labels=np.array(moves), coef=coef, intercept=intercept, thresholds=thresholds,
                        meta=np.array(json.dumps(meta, sort_keys=True)))
    print(f"wrote {HEAD.relative_to(ROOT)}: {meta}")
    for m, t in zip(moves, thresholds):
        print(f"  {m:14s} threshold {t:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
