"""Transcript words as tokens and sentences, with maps back to word times.

Content analysis reads text (phrase patterns, the move engine, details) but
must report time spans; these classes keep the two aligned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..transcript import Word
from .findings import Evidence

# A run-on "sentence" longer than this (words) is split at its commas: ASR text
# without full stops still has one move per clause.
MAX_SENTENCE_WORDS = 28
# A clause shorter than this (words) stays with its neighbour ("Hi Tony," is not a sentence of its own).
MIN_CLAUSE_WORDS = 4
SENTENCE_END = (".", "?", "!", ";")
# A full stop after these is an abbreviation's, not a sentence's ("Dr. Patel", "Acme Inc. in Reno").
ABBREVIATIONS = frozenset("dr mr mrs ms st mt jr sr inc co corp ltd vs etc no ft approx dept".split())


def token(word: str) -> str:
    """A word as a lower-case token: letters, digits and $ ' & - only."""
    return re.sub(r"[^a-z0-9$'&\-]+", "", word.lower()).strip("-'")


@dataclass(frozen=True)
class Tokens:
    """Transcript words as lower-case tokens, with a map from text offsets to words."""

    words: tuple[Word, ...]
    tokens: tuple[str, ...]
    text: str
    offsets: tuple[int, ...]  # start offset of each token in ``text``

    @classmethod
    def of(cls, words: Sequence[Word]) -> Tokens:
        kept = [w for w in words if token(w.word)]
        tokens = tuple(token(w.word) for w in kept)
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t) + 1
        return cls(tuple(kept), tokens, " ".join(tokens), tuple(offsets))

    def word_span(self, start: int, end: int) -> tuple[int, int]:
        """Token indices [i, j) covering text offsets [start, end)."""
        i = max(k for k, off in enumerate(self.offsets) if off <= start)
        j = max(k for k, off in enumerate(self.offsets) if off < end) + 1
        return i, j

    def evidence(self, kind: str, start: int, end: int) -> Evidence:
        i, j = self.word_span(start, end)
        words = self.words[i:j]
        return Evidence(kind, " ".join(w.word.strip() for w in words), words[0].start, words[-1].end)

    def find_all(self, patterns: Sequence[tuple[str, str]]) -> list[Evidence]:
        found = []
        for kind, pattern in patterns:
            for m in re.finditer(pattern, self.text):
                found.append(self.evidence(kind, m.start(), m.end()))
        return sorted(found, key=lambda e: e.start_s)


@dataclass(frozen=True)
class Sentence:
    """Words [i, j) of a :class:`Tokens`, as the transcript wrote them (capitals and punctuation kept)."""

    i: int
    j: int
    text: str
    starts: tuple[int, ...]  # character offset of each word in ``text``
    words: tuple[Word, ...]

    @property
    def start_s(self) -> float:
        return self.words[0].start

    @property
    def end_s(self) -> float:
        return self.words[-1].end

    def span_s(self, start: int, end: int) -> tuple[float, float]:
        """Times (s) of the words under characters [start, end) of ``text``."""
        a = max((k for k, off in enumerate(self.starts) if off <= start), default=0)
        b = max((k for k, off in enumerate(self.starts) if off < end), default=a)
        return self.words[a].start, self.words[max(a, b)].end

    def as_evidence(self, kind: str) -> Evidence:
        return Evidence(kind, self.text, self.start_s, self.end_s)


def sentences(toks: Tokens) -> list[Sentence]:
    """Split the words into sentences at . ? ! ; and long run-ons at commas."""
    out: list[Sentence] = []
    start = 0
    n = len(toks.words)
    for k, w in enumerate(toks.words):
        text = w.word.rstrip()
        abbreviation = text.endswith(".") and token(text) in ABBREVIATIONS
        if (text.endswith(SENTENCE_END) and not abbreviation) or k == n - 1:
            out.extend(_clauses(toks, start, k + 1))
            start = k + 1
    return out


def _clauses(toks: Tokens, i: int, j: int) -> list[Sentence]:
    if j - i <= MAX_SENTENCE_WORDS:
        return [_sentence(toks, i, j)]
    cuts = [k + 1 for k in range(i, j - 1) if toks.words[k].word.rstrip().endswith((",", ":", "—", "–"))]
    pieces, last = [], i
    for c in cuts:
        if c - last >= MIN_CLAUSE_WORDS and j - c >= MIN_CLAUSE_WORDS:
            pieces.append((last, c))
            last = c
    pieces.append((last, j))
    if len(pieces) == 1 and j - i > 2 * MAX_SENTENCE_WORDS:  # no commas at all: fixed-size chunks
        pieces = [(a, min(a + MAX_SENTENCE_WORDS, j)) for a in range(i, j, MAX_SENTENCE_WORDS)]
    return [_sentence(toks, a, b) for a, b in pieces]


def _sentence(toks: Tokens, i: int, j: int) -> Sentence:
    words = toks.words[i:j]
    starts, pos, parts = [], 0, []
    for w in words:
        piece = w.word.strip()
        starts.append(pos)
        parts.append(piece)
        pos += len(piece) + 1
    return Sentence(i, j, " ".join(parts), tuple(starts), tuple(words))


def words_from_text(text: str, *, seconds_per_word: float = 0.35) -> list[Word]:
    """Words with made-up, evenly spaced times for a text: content analysis of a script without audio.

    Used to grade a written script's content (``vmgrade.content.analyze_text``)
    and by the benchmarks that feed text; the times mean nothing but order.
    """
    out = []
    for k, piece in enumerate(text.split()):
        t = k * seconds_per_word
        out.append(Word(word=" " + piece, start=t, end=t + seconds_per_word * 0.9, probability=1.0))
    return out
