"""The transcript fallback: where a mailbox greeting ends when no beep marks it.

Greetings end on a small set of stock phrases ("leave a message", "after the
tone", "you've reached", "is not available", "mailbox is full", "record your
message").  A cue is a short word sequence matched loosely on normalised words
(lower case, no punctuation, contractions joined: "you've" -> "youve"), its
words in order with at most ``CUE_SLACK_WORDS`` others between them ("leave
me a brief message").  The greeting ends at the first clear pause after the
last cue in the opening ``CUE_WINDOW_S``: a gap between words that the VAD
also finds silent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
GREETING_CUES = (
    ("leave", "message"),
    ("after", "tone"),
    ("after", "beep"),
    ("youve", "reached"),
    ("you", "have", "reached"),
    ("not", "available"),
    ("unavailable",),
    ("mailbox", "full"),
    ("record", "message"),
    ("at", "the", "tone"),
)  # small and generic on purpose: carrier prompts and personal greetings both use them
CUE_SLACK_WORDS = 3  # "leave [me] [a] [brief] message"
CUE_WINDOW_S = 30.0  # greetings are shorter; a cue later than this is the rep's own words
CLEAR_PAUSE_S = 0.8  # the greeting-to-message gap (a greeting's own sentence pauses are ~0.3-0.5 s)
MIN_PAUSE_S = 0.35  # if no clear pause follows, the longest gap of at least this is taken
PAUSE_SEARCH_S = 10.0  # how far after the cue the pause may come (the rest of the cue's sentence)

_APOSTROPHES = re.compile(r"['\u2019`]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_word(word: str) -> str:
    """Lower case, apostrophes joined, other punctuation dropped ("You've," -> "youve")."""
    return _NON_WORD.sub("", _APOSTROPHES.sub("", word.lower()))


def _cue_end_indices(tokens: list[str], cue: tuple[str, ...]) -> list[int]:
    """Index of the last word of every occurrence of ``cue`` (its words in order, loosely)."""
    ends = []
    for i, tok in enumerate(tokens):
        if tok != cue[0]:
            continue
        j, ok = i, True
        for part in cue[1:]:
            window = tokens[j + 1 : j + 2 + CUE_SLACK_WORDS]
            if part not in window:
                ok = False
                break
            j = j + 1 + window.index(part)
        if ok:
            ends.append(j)
    return ends


def _cue_ends(tokens: list[str]) -> list[int]:
    """Index of the last word of every greeting cue occurrence."""
    return [j for cue in GREETING_CUES for j in _cue_end_indices(tokens, cue)]


def _silent(speech: Sequence[tuple[float, float]], a_s: float, b_s: float) -> bool:
    """True when no speech interval covers the middle of [a_s, b_s] (the VAD agrees it is a pause)."""
    mid = (a_s + b_s) / 2
    return not any(s < mid < e for s, e in speech)


def greeting_end_from_words(
    words: Sequence[tuple[str, float, float]], speech: Sequence[tuple[float, float]]
) -> float | None:
    """End (s) of a mailbox greeting found from its words, or None.

    Parameters
    ----------
    words : sequence of (word, start_s, end_s)
        The transcript's words on the file's clock.
    speech : sequence of (start_s, end_s)
        VAD speech intervals, s, to confirm that a gap between words is a pause.

    Returns
    -------
    float or None
        The end of the greeting's last word, s: the message starts after it.
        None when no cue is found in the opening ``CUE_WINDOW_S`` or no pause
        follows it.  When nothing follows the cue's sentence, the end of the
        last word (the file is a greeting only).
    """
    items = [(normalise_word(w), float(s), float(e)) for w, s, e in words]
    items = [it for it in items if it[0]]
    if not items:
        return None
    tokens = [w for w, _, _ in items]
    ends = [j for j in _cue_ends(tokens) if items[j][1] <= CUE_WINDOW_S]
    if not ends:
        return None
    cue = max(ends)
    limit_s = items[cue][2] + PAUSE_SEARCH_S
    gaps = [
        (items[i + 1][1] - items[i][2], i)
        for i in range(cue, len(items) - 1)
        if items[i][2] <= limit_s and _silent(speech, items[i][2], items[i + 1][1])
    ]
    if not gaps:
        return items[-1][2] if items[-1][2] <= limit_s else None
    clear = [i for gap, i in gaps if gap >= CLEAR_PAUSE_S]
    if clear:
        return items[clear[0]][2]
    gap, i = max(gaps)
    return items[i][2] if gap >= MIN_PAUSE_S else None


# What a mailbox says after the rep stops: "If you are satisfied with your message, press 1",
# "to re-record, press 2", "please hang up", "your message has been sent", or a greeting-like
# prompt played again. A rep's own message rarely ends on these, and the prompt must also follow
# a clear pause and fill only the end of the span.
AFTER_CUES = (
    ("press",),
    ("hang", "up"),
    ("rerecord",),
    ("re", "record"),
    ("satisfied", "message"),
    ("message", "sent"),
    ("message", "saved"),
    ("message", "recorded"),
    *GREETING_CUES,
)
AFTER_MAX_S = 15.0  # a prompt after the message is short; speech longer than this is the rep's


def after_prompt_start_from_words(
    words: Sequence[tuple[str, float, float]], speech: Sequence[tuple[float, float]]
) -> float | None:
    """Start (s) of a mailbox prompt that follows the rep's message, found from its words, or None.

    The prompt is the speech after the last clear pause (at least ``CLEAR_PAUSE_S``,
    confirmed silent by the VAD) when it lasts at most ``AFTER_MAX_S`` to the end and
    holds a cue of ``AFTER_CUES`` ("press", "hang up", "re-record", "leave a message",
    ...). Words before the pause are the rep's.

    Parameters
    ----------
    words : sequence of (word, start_s, end_s)
        The message span's words, any clock.
    speech : sequence of (start_s, end_s)
        VAD speech intervals on the same clock.

    Returns
    -------
    float or None
        The start of the prompt's first word, s; None when the end of the span holds no prompt.
    """
    items = [(normalise_word(w), float(s), float(e)) for w, s, e in words]
    items = [it for it in items if it[0]]
    if len(items) < 2:
        return None
    end_s = items[-1][2]
    for i in range(len(items) - 1, 0, -1):
        start_s = items[i][1]
        if end_s - start_s > AFTER_MAX_S:
            return None
        gap_s = start_s - items[i - 1][2]
        if gap_s >= CLEAR_PAUSE_S and _silent(speech, items[i - 1][2], start_s):
            tail = [w for w, _, _ in items[i:]]
            if any(_cue_end_indices(tail, cue) for cue in AFTER_CUES):
                return start_s
    return None
