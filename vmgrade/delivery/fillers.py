"""Fillers and word counts, from transcript words (and the voiced-frame track).

* :func:`find_fillers`: um/uh/er and the set-off "like" / "you know" tokens.
* :func:`acoustic_fillers`: voiced sound no transcript word covers (a filler
  Whisper left out).
* :func:`spoken_word_counts`, :func:`count_digits`: how many words and digits
  the tokens stand for ("415-555-0198" is ten spoken words).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import numbers
from ..transcript import Word
from ..vad import HOP_S, clean_intervals, intervals_from_mask
from ._round import _r
from .pauses import Pause, subtract_spans

FILLER_PAUSE_S = 0.25  # a comma-like pause around "like"/"you know" (De Jong & Bosker 2013's silent pause)
WORD_PAD_S = 0.15  # Whisper word times are good to ~0.1-0.2 s (offline-whisper.md)
ACOUSTIC_FILLER_MIN_S = 0.2  # an uncovered voiced stretch at least this long
ACOUSTIC_FILLER_MAX_S = 1.2  # longer uncovered speech is untranscribed speech, not a filler
VOICED_BRIDGE_S = 0.05  # voiced frames closer than this form one stretch


@dataclass(frozen=True)
class Filler:
    """A filler: a transcript token (``source="transcript"``) or an uncovered
    voiced stretch (``source="acoustic"``, ``word=""``)."""

    word: str
    start_s: float
    end_s: float
    source: str = "transcript"

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "start_s": _r(self.start_s, 3),
            "end_s": _r(self.end_s, 3),
            "source": self.source,
        }


_HESITATION = re.compile(r"^(u+h+m*|u+m+|e+r+m*|a+h+|h+m+|m{2,}|e+h+)$")
_LIKE_VERB_BEFORE = frozenset(
    "would i'd you'd we'd they'd he'd she'd feel feels felt look looks looked looking sound sounds "
    "sounded seem seems seemed something anything nothing everything i you we they really don't "
    "didn't do does did just more much not be".split()
)
_YOU_KNOW_NOT_BEFORE = frozenset("do did don't didn't does doesn't if would let to may might as".split())
_YOU_KNOW_NOT_AFTER = frozenset(
    "that what how the a an if whether who where when why about "
    "him her them me us this it my our your their".split()
)


def normalise_token(word: str) -> str:
    """Lower-case, keep letters, digits and apostrophes."""
    return re.sub(r"[^a-z0-9']+", "", word.lower().replace("\u2019", "'"))


def _has_comma_after(word: str) -> bool:
    return bool(re.search(r"[,;:.!?\u2026-]$", word.strip()))


def find_fillers(words: Sequence[Word], *, pause_s: float = FILLER_PAUSE_S) -> list[Filler]:
    """Filler tokens with their times.

    * um, uh, er, ah, hmm and variants (umm, uhm, mm, erm, eh).
    * "like" when set off (comma after it or after the word before, or a
      pause >= ``pause_s`` either side, or message-initial) and not preceded
      by a verb/"would/feel/look/sounds/something" pattern.
    * "you know" when followed by a comma, a pause or the end, not preceded
      by do/if/let/to..., and not followed by that/what/how/the....
    """
    out: list[Filler] = []
    toks = [normalise_token(w.word) for w in words]
    n = len(words)
    i = 0
    while i < n:
        t, w = toks[i], words[i]
        prev = words[i - 1] if i > 0 else None
        nxt = words[i + 1] if i + 1 < n else None
        if _HESITATION.match(t):
            out.append(Filler(t, w.start, w.end))
        elif t == "like":
            gap_before = w.start - prev.end if prev else math.inf
            gap_after = nxt.start - w.end if nxt else math.inf
            set_off = (
                prev is None
                or _has_comma_after(prev.word)
                or _has_comma_after(w.word)
                or gap_before >= pause_s
                or gap_after >= pause_s
            )
            if set_off and (i == 0 or toks[i - 1] not in _LIKE_VERB_BEFORE):
                out.append(Filler("like", w.start, w.end))
        elif t == "you" and i + 1 < n and toks[i + 1] == "know":
            know = words[i + 1]
            after = words[i + 2] if i + 2 < n else None
            after_tok = toks[i + 2] if i + 2 < n else ""
            ends = after is None or _has_comma_after(know.word) or after.start - know.end >= pause_s
            if (
                ends
                and (i == 0 or toks[i - 1] not in _YOU_KNOW_NOT_BEFORE)
                and after_tok not in _YOU_KNOW_NOT_AFTER
            ):
                out.append(Filler("you know", w.start, know.end))
                i += 2
                continue
        i += 1
    return out


def count_digits(words: Sequence[Word]) -> int:
    """Digits spoken in a word sequence, read as :mod:`vmgrade.numbers` reads
    them ("555-1234" = 7, "double five" = 2, "oh" as zero only inside a number,
    "nineteen" = 2, "five hundred" = 3)."""
    return sum(len(run.digits) for run in numbers.find_number_runs(words))


_WRITTEN_DIGIT_RUN = re.compile(r"\d[\d\-.()]*\d")
SPOKEN_DIGIT_RUN_MIN = 5  # a written run this long ("415-555-0198") was said digit by digit


def spoken_word_count(word: str) -> int:
    """How many words a transcript token stands for: Whisper writes a phone
    number said as ten digit words as one token ("415-555-0198"), which
    would otherwise make a rep who reads their number sound slow."""
    run = _WRITTEN_DIGIT_RUN.search(word)
    if run:
        digits = sum(ch.isdigit() for ch in run.group())
        if digits >= SPOKEN_DIGIT_RUN_MIN or "-" in run.group():
            return digits
    return 1


_DIGIT_PIECE = re.compile(r"^[(\-.]?\d[\d\-.()]*[.,;:!?)]*$")  # "415", "-555", "-0198.", "(415)"


def spoken_word_counts(words: Sequence[str]) -> list[int]:
    """:func:`spoken_word_count` for a sequence of transcript tokens, a written
    number split over several tokens included: Whisper's word timing can give
    "415-555-0198" as "415", "-555", "-0198.", each then counted by its digits."""
    counts = [spoken_word_count(w) for w in words]
    i = 0
    while i < len(words):
        j = i
        # a digit piece followed by pieces that continue it with a dash, dot or bracket
        while (j + 1 < len(words) and _DIGIT_PIECE.match(words[j].strip())
               and _DIGIT_PIECE.match(words[j + 1].strip()) and words[j + 1].strip()[0] in "-.)"):
            j += 1
        if j > i:
            group = "".join(w.strip() for w in words[i : j + 1])
            if spoken_word_count(group) > 1:
                counts[i : j + 1] = [max(1, sum(ch.isdigit() for ch in w)) for w in words[i : j + 1]]
        i = j + 1
    return counts


def is_word(w: Word) -> bool:
    """A token with a letter or digit (not bare punctuation)."""
    return bool(normalise_token(w.word))


def acoustic_fillers(
    voiced: np.ndarray,
    words: Sequence[Word],
    duration_s: float,
    *,
    word_pad_s: float = WORD_PAD_S,
    hop_s: float = HOP_S,
) -> tuple[list[Pause], list[Pause]]:
    """Voiced sound that no transcript word covers.

    Parameters
    ----------
    voiced : np.ndarray of bool
        Voiced frames (finite YIN F0), one per ``hop_s``.
    words : sequence of Word
        Transcript words; each covers its span padded by ``word_pad_s`` s.
    duration_s : float
        Length of the recording, s.

    Returns
    -------
    uncovered, acoustic : list of Pause
        Uncovered voiced stretches of at least ``ACOUSTIC_FILLER_MIN_S``, and
        those of them no longer than ``ACOUSTIC_FILLER_MAX_S`` (fillers; longer
        ones are untranscribed speech).
    """
    covered = [(w.start - word_pad_s, w.end + word_pad_s) for w in words]
    stretches = clean_intervals(
        intervals_from_mask(voiced, hop_s, duration_s),
        min_gap_s=VOICED_BRIDGE_S,
        min_length_s=ACOUSTIC_FILLER_MIN_S,
    )
    uncovered = [Pause(s, e) for s, e in subtract_spans(stretches, covered) if e - s >= ACOUSTIC_FILLER_MIN_S]
    acoustic = [u for u in uncovered if u.end_s - u.start_s <= ACOUSTIC_FILLER_MAX_S]
    return uncovered, acoustic
