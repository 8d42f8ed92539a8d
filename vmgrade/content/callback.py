"""The callback number: what was said, how often and how fast, and whether it is the rep's.

Whisper errs on spoken numbers in a few typical ways: it drops an "oh"
(zero) or a repeated digit ("five oh three, five five five, oh one eight two"
heard as ``503-555-182``), or hears a digit twice.  A number that differs
from ``--callback-number`` only so is *unconfirmed*, not wrong: the report
says what was heard and why, and the critical ``number_mismatch`` is kept
for a number that is really different.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from .. import numbers
from ..delivery import DeliveryMetrics, span_pace
from ..transcript import Word
from .findings import Callback, NumberMention
from .tokens import Tokens, token

# A second listen to an unconfirmed number (the pipeline re-decodes its span with each prompt in
# turn): prompts that make Whisper write digits as the words said ("five oh three") rather than
# formatting them, so an "oh" is not lost.  They name no particular number, so they cannot lead
# the decoder to the rep's.
REREAD_PROMPTS = (
    "Numbers are spelled out in words: two oh one, double five, nine.",
    "oh, zero, one, two, three, four, five, six, seven, eight, nine",
)
REREAD_PAD_S = 1.0  # s of audio kept each side of the number's words (their times may be squeezed)
# Re-read as words, "oh" sometimes comes out as "a" between digit words ("five five a one"); only
# inside a run of digit words is it read as zero.
_DIGIT_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|oh)"
_A_FOR_OH = re.compile(rf"\b({_DIGIT_WORD},?\s+)a(?=,?\s+{_DIGIT_WORD}\b)", re.IGNORECASE)
# A number heard this close to the main one (edits) is a garbled repeat of it.
GARBLED_NUMBER_MAX_EDITS = 2
# A cue ("my number is") counts when it ends within this many words of the number.
CUE_WINDOW_WORDS = 4
NUMBER_CUE = re.compile(
    r"\b(?:my (?:number|cell|direct line|phone)(?: is)?|(?:reach|call|text|ring) me\b.*|"
    r"number is|you can reach me|at|again|that's|it's|is)$"
)


def find_callback(
    words: Sequence[Word], toks: Tokens, delivery: DeliveryMetrics | None, expected_text: str | None,
    min_probability: float = 0.0,
) -> Callback:
    """The callback number: the main number said, each time it was said, and whether it is the rep's.

    Parameters
    ----------
    words : sequence of Word
    toks : Tokens
    delivery : DeliveryMetrics, optional
        Its pauses and speech track give the number's pace and the pause before it.
    expected_text : str, optional
        ``--callback-number``; checked against what was heard (:func:`number_status`).
    min_probability : float
        A number heard on words less sure than this is never judged wrong, only unconfirmed.
    """
    expected = numbers.normalize_phone(expected_text) if expected_text else None
    phones = numbers.find_phone_numbers(words)
    runs = [r for r in numbers.find_number_runs(words) if len(r.digits) >= 7]
    if not phones and not runs:
        return Callback(None, expected, None, status="not_said")
    # The main number: the one said most often; ties go to the expected one, then the first.
    counts: dict[str, int] = {}
    for r in phones:
        counts[r.digits] = counts.get(r.digits, 0) + 1
    if counts:
        main = max(counts, key=lambda d: (counts[d], bool(expected and numbers.same_number(d, expected))))
    else:
        main = runs[0].digits
    chosen: list[tuple[numbers.NumberRun, bool]] = []
    others: list[str] = []
    taken: set[tuple[float, float]] = set()
    for r in phones:
        if r.digits == main:
            chosen.append((r, False))
            taken.add((r.start_s, r.end_s))
        elif _edits(r.digits, main) > GARBLED_NUMBER_MAX_EDITS:
            others.append(r.digits)
    for r in runs:
        overlaps = any(not (r.end_s <= s or r.start_s >= e) for s, e in taken)
        if not overlaps and _edits(r.digits, main) <= GARBLED_NUMBER_MAX_EDITS:
            # not phone-shaped ("415-55-0198"), so heard at least partly wrong
            chosen.append((r, r.digits != main or not numbers.is_phone_digits(r.digits)))
            taken.add((r.start_s, r.end_s))
    chosen.sort(key=lambda x: x[0].start_s)
    mentions = []
    for run, garbled in chosen:
        pace = span_pace(words, run.start_s, run.end_s, delivery)
        before = " ".join(token(w.word) for w in words[max(0, run.start_index - CUE_WINDOW_WORDS):
                                                         run.start_index])
        cued = bool(NUMBER_CUE.search(before.strip())) or "number" in before.split()
        mentions.append(NumberMention(
            digits=run.digits,
            groups=run.groups,
            start_s=run.start_s,
            end_s=run.end_s,
            digits_per_s=len(run.digits) / run.duration_s if run.duration_s > 0 else 0.0,
            pause_before_ms=pace.pause_before_ms,
            cued=cued,
            garbled=garbled,
            min_probability=min(w.probability for w in words[run.start_index:run.end_index]),
            pauses_inside=sum(
                run.start_s < p.start_s and p.end_s < run.end_s for p in (delivery.pauses if delivery else ())
            ),
        ))
    status, note = number_status(mentions, expected, min_probability)
    matches = {"match": True, "mismatch": False}.get(status)
    return Callback(main, expected, matches, tuple(mentions), tuple(dict.fromkeys(others)), status, note)


def _edits(a: str, b: str) -> int:
    """Levenshtein distance between two digit strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def number_status(mentions: Sequence[NumberMention], expected: str | None,
                  min_probability: float = 0.0) -> tuple[str, str | None]:
    """("match" | "unconfirmed" | "mismatch" | "no_expected", note) for the number heard.

    The number matches when any saying of it matches.  It is a mismatch only on
    strong evidence: every saying agrees on one different number, none differs
    as ASR typically errs (:func:`asr_slip`) and Whisper was sure of the words
    of at least one saying (its lowest word probability at least
    ``min_probability``, the rubric's ``number_mismatch_min_probability``: a
    second saying that agrees corroborates an unsure one).  Otherwise it could
    not be confirmed, and the note says which saying and why.
    """
    if not expected:
        return "no_expected", None
    if any(numbers.same_number(m.digits, expected) for m in mentions):
        return "match", None
    for k, m in enumerate(mentions):
        why = asr_slip(m.digits, expected)
        if why:
            return "unconfirmed", (f"heard {m.digits} ({_nth(k, len(mentions))}), your number is {expected}: "
                                   f"{why}; the words may be right and the transcript wrong, so check this "
                                   "part of the recording")
    heard = list(dict.fromkeys(numbers.normalize_phone(m.digits) or m.digits for m in mentions))
    # sayings that disagree leave it open only when one of them is near the rep's number
    if len(heard) > 1 and any(_edits(h, expected) <= GARBLED_NUMBER_MAX_EDITS for h in heard):
        return "unconfirmed", (f"your number is {expected}, but the sayings disagree (heard "
                               f"{' and '.join(heard)}): at least one was misheard, so check them")
    if all(m.min_probability < min_probability for m in mentions):
        k, m = min(enumerate(mentions), key=lambda km: km[1].min_probability)
        return "unconfirmed", (f"heard {m.digits} ({_nth(k, len(mentions))}), your number is {expected}, but "
                               "speech recognition was unsure of its words (probability "
                               f"{m.min_probability:.2f}), so check this part of the recording")
    said = "every saying" if len(mentions) > 1 else "the one saying"
    return "mismatch", f"heard {' and '.join(heard)} in {said}, your number is {expected}"


def _nth(k: int, n: int) -> str:
    if n == 1:
        return "the only saying"
    return ("the first", "the second", "the third")[k] + " saying" if k < 3 else f"saying {k + 1}"


def asr_slip(heard: str, expected: str) -> str | None:
    """Why ``heard`` may be ``expected`` mis-transcribed, or None when it is a different number.

    Typical slips: a dropped digit (most often an "oh" for zero, or one of a
    doubled pair), a digit heard twice, and a missing area code is not a
    slip (a local number is matched by :func:`vmgrade.numbers.same_number`).
    """
    h, e = numbers.normalize_phone(heard), numbers.normalize_phone(expected)
    if not h or not e:
        return None
    if len(h) == len(e) - 1:
        for k in range(len(e)):
            if e[:k] + e[k + 1:] == h:
                d = e[k]
                if d == "0":
                    return "one digit fewer: a zero said \"oh\" is often dropped by speech recognition"
                if (k > 0 and e[k - 1] == d) or (k + 1 < len(e) and e[k + 1] == d):
                    return f"one digit fewer: one {d} of a doubled pair ({d}{d}) is often dropped"
                return f"one digit fewer (a {d}): speech recognition sometimes drops a digit"
    if len(h) == len(e):
        diff = [k for k in range(len(e)) if h[k] != e[k]]
        if len(diff) == 1 and e[diff[0]] == "0":
            return (f"a zero heard as {h[diff[0]]}: speech recognition often mishears a zero said \"oh\" "
                    "(\"oh one\" written as 11)")
        if len(diff) == 2 and diff[1] == diff[0] + 1:
            said, got = e[diff[0]:diff[1] + 1], h[diff[0]:diff[1] + 1]
            if {said, got} in ({f"1{d}", f"{d}0"} for d in "3456789"):
                return (f"{said} heard as {got}: \"{_PAIR_WORDS[said]}\" and \"{_PAIR_WORDS[got]}\" sound "
                        "alike, and speech recognition often confuses them in numbers said in pairs")
    if len(h) == len(e) + 1:
        for k in range(len(h)):
            doubled = (k > 0 and h[k - 1] == h[k]) or (k + 1 < len(h) and h[k + 1] == h[k])
            if doubled and h[:k] + h[k + 1:] == e:
                return f"one {h[k]} heard twice: speech recognition sometimes doubles a digit"
    return None


# "14" -> "fourteen", "40" -> "forty" (numbers.py's words), for the note on a teen heard as its tens
_PAIR_WORDS = {str(v): w for w, v in {**numbers.TEEN_WORDS, **numbers.TENS_WORDS}.items()}


def recheck(callback: Callback, reread_texts: Sequence[str]) -> Callback:
    """``callback`` after a second listen to its number: confirmed when a re-read says the expected number.

    A mismatch is re-heard too before it caps the score: Whisper sometimes
    misreads a number said in pairs ("six fourteen" as 640).  A mismatch
    stands only when a second listen hears much the same wrong number again
    (at most ``GARBLED_NUMBER_MAX_EDITS`` digits apart, and not the rep's
    number misheard); when the listens disagree it is unconfirmed.

    Parameters
    ----------
    callback : Callback
        Its ``status`` is "unconfirmed" or "mismatch" (otherwise it is returned unchanged).
    reread_texts : sequence of str
        What re-decoding the number's span heard (one text per prompt tried).
    """
    if callback.status not in ("unconfirmed", "mismatch") or not callback.expected:
        return callback
    heard = []
    for text in reread_texts:
        said = _A_FOR_OH.sub(r"\1oh", text).split()
        words = [Word(" " + w, 0.3 * k, 0.3 * k + 0.25, 1.0) for k, w in enumerate(said)]
        heard += [r.digits for r in numbers.find_number_runs(words) if len(r.digits) >= 7]
    if any(numbers.same_number(h, callback.expected) for h in heard):
        note = (f"heard {callback.digits} at first; a second listen to that part of the recording heard "
                f"{callback.expected}, your number (the first transcript misheard a digit)")
        return replace(callback, status="match", matches_expected=True, note=note)
    again = ", ".join(dict.fromkeys(h[:12] for h in heard)) or "no number"
    corroborated = any(_edits(h, callback.digits) <= GARBLED_NUMBER_MAX_EDITS
                       and not asr_slip(h, callback.expected) for h in heard)
    if callback.status == "mismatch" and not corroborated:
        # a wrong number is judged on strong evidence only: the second listen must hear much the same
        # number (a digit or two apart at most, and none of them explained as a slip of the rep's)
        return replace(callback, status="unconfirmed", matches_expected=None, note=(
            f"{callback.note}, but a second listen to that part of the recording heard {again}: the "
            "listens disagree, so check this part of the recording"))
    return replace(callback, note=f"{callback.note}; a second listen heard {again}")  # the verdict stands
