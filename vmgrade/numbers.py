"""Spoken numbers in a transcript, especially callback phone numbers.

Whisper writes a spoken phone number in many shapes ("four one five, five
five five, zero one nine eight", "415-555-0198", "4-1-5, 5-5-5, 0-1-9-8",
"eight hundred, double five...", "(415) 555.0198") and reps say one in many
ways. This module turns a word list (:class:`~vmgrade.asr.transcribe.Word`) into
digit strings with the word span, times and chunking of each run, and picks
out the runs that are plausible North American phone numbers.

How words become digits
-----------------------
* digit words: "zero", "one" ... "nine"; "oh"/"o" (and "nought") are zero
  only inside a run, or right before another number word;
* "double X" / "triple X" repeat the digit X ("double five" -> "55");
* teens and tens: "nineteen" -> "19", "fifty-five" / "fifty five" -> "55",
  "twenty" -> "20"; a tens word takes a following unit ("fifty five"), so a
  run is read as spoken pairs, never as arithmetic ("four one five" is "415");
* scale words after a number: "eight hundred" -> "800", "two thousand" ->
  "2000", "five hundred fifty" -> "550"; a following unit is only taken into
  the amount when it ends the chunk ("five hundred five" -> "505", but "eight
  hundred five five five" -> "800" "555");
* written digits: "415-555-0198", "(415)", "555.0198", "4155550198",
  "5-5-5", "1-800-...", "+1", split tokens ("415-", "555-", "0198.");
  "1,000" is a thousands separator;
* the connector words "dash" / "hyphen" between number words mark a group
  break; anything else ("and", "extension", "percent", "dollars") ends a run.
  Amounts with a currency or percent sign ("$500", "20%"), decimals ("4.5"),
  times ("2:30") and ordinals ("21st") are never part of a digit run.

Groups
------
A run is chunked into groups as spoken: a comma, hyphen, dash, parenthesis or
sentence mark, a gap of at least :data:`GROUP_GAP_S` between words, or a word
boundary next to a written multi-digit token ("415 555 0198") starts a new
group. Single digits joined by hyphens ("5-5-5") stay one group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .transcript import Word

DIGIT_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
# Spoken zeros that are also ordinary words: zero only inside a number.
ZERO_WORDS = frozenset({"oh", "o", "nought", "naught"})
TEEN_WORDS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS_WORDS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALE_WORDS = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 10**9}
REPEAT_WORDS = {"double": 2, "triple": 3}
DASH_WORDS = frozenset({"dash", "hyphen"})

# Punctuation that may wrap a word, and which of it breaks a group.
EDGE_PUNCT = "\"'“”‘’,.;:!?…-–—()[]{}"
GROUP_PUNCT = frozenset(",.;:!?…-–—()[]{}")

DEFAULT_MAX_GAP_S = 1.5  # s of silence between words that ends a run
GROUP_GAP_S = 0.25  # s of silence between words that starts a new group

NANP_COUNTRY_CODE = "1"
PHONE_LENGTHS = (7, 10, 11)
# A chunk of digits made with a scale word is an amount, not phone digits,
# when it is longer than this ("two thousand" is fine, "two million" is not).
MAX_SCALED_PHONE_DIGITS = 4

# DP scores for splitting a run into phone numbers and left-over digits.
_PHONE_SCORE = 100
_JUNK_DIGIT_COST = 2

_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+")
_DECIMAL_RE = re.compile(r"\d*\.\d+")
_DOTTED_PHONE_RE = re.compile(r"\d{3}(?:\.\d{3,4})+")
_WRITTEN_RE = re.compile(r"\+?\(?\d[\d().,\-–]*")


@dataclass(frozen=True)
class NumberRun:
    """A stretch of consecutive number words, read as one digit string.

    Attributes
    ----------
    digits : str
        The digits as spoken, e.g. ``"4155550198"``.
    start_index, end_index : int
        The span in the word list (``end_index`` exclusive).
    start_s, end_s : float
        Start of the first word and end of the last word, in seconds.
    groups : tuple of str
        The chunking as spoken, e.g. ``("415", "555", "0198")``; joined they
        give ``digits``.
    text : str
        The words of the span, as transcribed.
    """

    digits: str
    start_index: int
    end_index: int
    start_s: float
    end_s: float
    groups: tuple[str, ...]
    text: str = ""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def digits_per_second(self) -> float:
        """Speaking pace over the run (0 for a run without duration)."""
        return len(self.digits) / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True)
class _Token:
    """One number element of a word: a word can hold several ("415-555")."""

    kind: str  # "digit", "zero", "teen", "tens", "scale", "repeat", "written", "dash"
    value: int | str  # int for words, the digit string for "written"
    index: int  # word index
    brk: bool  # a group break right before this token
    amount: bool = False  # written with thousands separators ("2,000,000")


@dataclass(frozen=True)
class _Parsed:
    """A word's number tokens (index and break filled in later)."""

    tokens: tuple[tuple[str, int | str, bool], ...]  # (kind, value, break before)
    lead: bool  # punctuation before the word breaks a group
    trail: bool  # punctuation after the word breaks a group
    amount: bool = False  # written with thousands separators ("2,000,000")


@dataclass(frozen=True)
class _Atom:
    """The digits of one spoken or written chunk, e.g. "55" from "double five"."""

    digits: str
    first: int  # word indices, inclusive
    last: int
    brk: bool  # a group break right before this chunk
    phone_ok: bool = True


# --------------------------------------------------------------------------
# Word classification


def _split_edges(word: str) -> tuple[str, str, str]:
    """Split ``word`` into leading punctuation, core and trailing punctuation."""
    core = word.strip()
    lead_len = len(core) - len(core.lstrip(EDGE_PUNCT))
    lead = core[:lead_len]
    core = core[lead_len:]
    stripped = core.rstrip(EDGE_PUNCT)
    trail = core[len(stripped) :]
    return lead, stripped, trail


def _written_pieces(core: str) -> list[str] | None:
    """Digit pieces of a written number token, or None if it is not one."""
    if _THOUSANDS_RE.fullmatch(core):
        return [core.replace(",", "")]
    if _DECIMAL_RE.fullmatch(core) and not _DOTTED_PHONE_RE.fullmatch(core):
        return None  # a decimal amount
    if not _WRITTEN_RE.fullmatch(core):
        return None
    return re.findall(r"\d+", core)


def _word_token(piece: str) -> tuple[str, int] | None:
    """Classify one spoken number word (lower case, no punctuation)."""
    if piece in DIGIT_WORDS:
        return "digit", DIGIT_WORDS[piece]
    if piece in ZERO_WORDS:
        return "zero", 0
    if piece in TEEN_WORDS:
        return "teen", TEEN_WORDS[piece]
    if piece in TENS_WORDS:
        return "tens", TENS_WORDS[piece]
    if piece in SCALE_WORDS:
        return "scale", SCALE_WORDS[piece]
    if piece in REPEAT_WORDS:
        return "repeat", REPEAT_WORDS[piece]
    if piece in DASH_WORDS:
        return "dash", 0
    return None


def _parse_word(word: str) -> _Parsed | None:
    """The number tokens of one transcript word, or None if it holds none."""
    lead, core, trail = _split_edges(word)
    if not core:
        return None
    lead_brk = any(c in GROUP_PUNCT for c in lead)
    trail_brk = any(c in GROUP_PUNCT for c in trail)
    if core[0].isdigit() or core[0] in "+(":
        pieces = _written_pieces(core)
        if not pieces:
            return None
        single = len(pieces) > 1 and all(len(p) == 1 for p in pieces)
        tokens = tuple(("written", p, i > 0 and not single) for i, p in enumerate(pieces))
        return _Parsed(tokens, lead_brk, trail_brk, bool(_THOUSANDS_RE.fullmatch(core)))
    parts = [p for p in re.split(r"[-–]", core.lower()) if p]
    classified = [_word_token(p) for p in parts]
    if not classified or any(c is None for c in classified):
        return None
    if (
        len(classified) == 2
        and classified[0][0] == "tens"
        and classified[1][0] == "digit"
        and classified[1][1] > 0
    ):
        # "fifty-five": one compound word, no break inside.
        return _Parsed(
            (("tens", classified[0][1], False), ("digit", classified[1][1], False)),
            lead_brk,
            trail_brk,
        )
    single = all(c[0] in ("digit", "zero") for c in classified)
    tokens = tuple((kind, value, i > 0 and not single) for i, (kind, value) in enumerate(classified))
    return _Parsed(tokens, lead_brk, trail_brk)


# --------------------------------------------------------------------------
# Runs of number words

_DIGIT_LIKE = frozenset({"digit", "zero"})
_NUMBERISH = frozenset({"digit", "zero", "teen", "tens", "written"})


def _first_kind(parsed: _Parsed | None) -> str | None:
    return parsed.tokens[0][0] if parsed is not None else None


def _is_digit_word(parsed: _Parsed | None) -> bool:
    """A word that can follow "double"/"triple": one digit."""
    if parsed is None or len(parsed.tokens) != 1:
        return False
    kind, value, _ = parsed.tokens[0]
    return kind in _DIGIT_LIKE or (kind == "written" and len(str(value)) == 1)


def _can_start(parsed: list[_Parsed | None], words: Sequence[Word], i: int) -> bool:
    """Whether word ``i`` can open a run."""
    p = parsed[i]
    kind = _first_kind(p)
    nxt = parsed[i + 1] if i + 1 < len(parsed) else None
    close = i + 1 < len(words) and words[i + 1].start - words[i].end < GROUP_GAP_S
    if kind in ("digit", "teen", "tens", "written"):
        return True
    if kind == "zero":
        # "oh nine" opens a run; "Oh, hi" and a lone "o" do not.
        if len(p.tokens) > 1:
            return p.tokens[1][0] in _NUMBERISH
        return not p.trail and close and _first_kind(nxt) in ("digit", "teen", "tens", "written", "repeat")
    if kind == "repeat":
        if len(p.tokens) > 1:  # "double-five"
            return p.tokens[1][0] in _DIGIT_LIKE
        return not p.trail and close and _is_digit_word(nxt)
    return False


def _run_spans(
    parsed: list[_Parsed | None], words: Sequence[Word], max_gap_s: float
) -> list[tuple[int, int]]:
    """Maximal ``[start, end)`` word spans of number words."""
    spans = []
    n = len(words)
    i = 0
    while i < n:
        if parsed[i] is None or not _can_start(parsed, words, i):
            i += 1
            continue
        j = i + 1
        last_kind = parsed[i].tokens[-1][0]
        while j < n:
            p = parsed[j]
            if p is None or words[j].start - words[j - 1].end > max_gap_s:
                break
            kind = p.tokens[0][0]
            nxt = parsed[j + 1] if j + 1 < n else None
            nxt_ok = (
                nxt is not None
                and words[j + 1].start - words[j].end <= max_gap_s
                and _first_kind(nxt) in _NUMBERISH | {"repeat"}
            )
            if kind in ("repeat", "dash") and not nxt_ok and len(p.tokens) == 1:
                break
            if kind == "repeat" and len(p.tokens) == 1 and not _is_digit_word(nxt):
                break
            if kind == "scale" and last_kind not in ("digit", "teen", "tens", "written"):
                break
            if kind == "zero" and len(p.tokens) == 1 and not nxt_ok and parsed[j - 1].trail:
                break  # "...nine eight. Oh, and": an interjection, not a zero
            last_kind = p.tokens[-1][0]
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _tokens(parsed: list[_Parsed | None], words: Sequence[Word], start: int, end: int) -> list[_Token]:
    """The tokens of a run with their group breaks; dash words become breaks."""
    tokens: list[_Token] = []
    pending_brk = False
    for k in range(start, end):
        p = parsed[k]
        word_brk = k > start and (
            parsed[k - 1].trail
            or p.lead
            or words[k].start - words[k - 1].end >= GROUP_GAP_S
            or _written_multi(parsed[k - 1].tokens[-1])
            or _written_multi(p.tokens[0])
        )
        for t, (kind, value, inner_brk) in enumerate(p.tokens):
            brk = pending_brk or (word_brk if t == 0 else inner_brk)
            pending_brk = False
            if kind == "dash":
                pending_brk = True
                continue
            tokens.append(_Token(kind, value, k, brk, p.amount))
    return tokens


def _written_multi(token: tuple[str, int | str, bool]) -> bool:
    return token[0] == "written" and len(str(token[1])) > 1


# --------------------------------------------------------------------------
# Tokens to digit chunks


def _small(tokens: list[_Token], p: int) -> tuple[int, int] | None:
    """A number below 100 (or a short written number) at ``p``: (value, next)."""
    t = tokens[p]
    if t.kind == "tens":
        if (
            p + 1 < len(tokens)
            and tokens[p + 1].kind == "digit"
            and not tokens[p + 1].brk
            and tokens[p + 1].value > 0
        ):
            return t.value + tokens[p + 1].value, p + 2
        return t.value, p + 1
    if t.kind in ("digit", "teen"):
        return t.value, p + 1
    if t.kind == "written" and len(t.value) <= 3:
        return int(t.value), p + 1
    return None


def _chunk_ends(tokens: list[_Token], q: int) -> bool:
    """Whether a chunk may end at ``q`` (end, group break or a scale word)."""
    return q >= len(tokens) or tokens[q].brk or tokens[q].kind == "scale"


def _cardinal(tokens: list[_Token], p: int) -> tuple[int, int, bool]:
    """Read an amount with scale words at ``p``: (value, next, used a scale).

    ``tokens[p]`` must start a small number (see :func:`_small`).
    """
    value, q = _small(tokens, p)
    total, current = 0, value
    last_big = None  # the last scale of a thousand or more
    has_hundred = False
    scaled = False
    while q < len(tokens):
        t = tokens[q]
        if t.kind == "scale" and not t.brk:
            if t.value == 100:
                if has_hundred or current == 0 or current >= 100:
                    break
                current *= 100
                has_hundred = True
            else:
                if current == 0 or (last_big is not None and t.value >= last_big):
                    break
                total += current * t.value
                current, has_hundred, last_big = 0, False, t.value
            scaled = True
            q += 1
            continue
        if not scaled or t.brk or t.kind not in ("digit", "teen", "tens", "written"):
            break
        if current % 100 != 0 or (current and not has_hundred):
            break  # the tens/units are taken already
        small = _small(tokens, q)
        if small is None or not _chunk_ends(tokens, small[1]):
            break
        current += small[0]
        q = small[1]
    return total + current, q, scaled


def _atoms(tokens: list[_Token]) -> list[_Atom]:
    """Read a run's tokens as chunks of digits."""
    atoms = []
    p = 0
    while p < len(tokens):
        t = tokens[p]
        if t.kind == "repeat":
            if p + 1 < len(tokens) and tokens[p + 1].kind in ("digit", "zero", "written"):
                digit = str(tokens[p + 1].value)
                if len(digit) == 1:
                    atoms.append(_Atom(digit * t.value, t.index, tokens[p + 1].index, t.brk))
                    p += 2
                    continue
            p += 1  # a stray "double": no digits
            continue
        if t.kind == "zero":
            atoms.append(_Atom("0", t.index, t.index, t.brk))
            p += 1
            continue
        if t.kind == "written" and not (
            len(t.value) <= 3
            and p + 1 < len(tokens)
            and tokens[p + 1].kind == "scale"
            and not tokens[p + 1].brk
        ):
            atoms.append(_Atom(t.value, t.index, t.index, t.brk, not t.amount))
            p += 1
            continue
        if _small(tokens, p) is None:
            p += 1  # a stray scale word
            continue
        value, q, scaled = _cardinal(tokens, p)
        digits = str(value)
        phone_ok = not (scaled and len(digits) > MAX_SCALED_PHONE_DIGITS)
        atoms.append(_Atom(digits, t.index, tokens[q - 1].index, t.brk, phone_ok))
        p = q
    return atoms


def _groups(atoms: Sequence[_Atom]) -> tuple[str, ...]:
    groups: list[str] = []
    for k, atom in enumerate(atoms):
        if k == 0 or atom.brk:
            groups.append(atom.digits)
        else:
            groups[-1] += atom.digits
    return tuple(groups)


def _make_run(words: Sequence[Word], atoms: Sequence[_Atom]) -> NumberRun:
    start, end = atoms[0].first, atoms[-1].last + 1
    return NumberRun(
        digits="".join(a.digits for a in atoms),
        start_index=start,
        end_index=end,
        start_s=float(words[start].start),
        end_s=float(words[end - 1].end),
        groups=_groups(atoms),
        text=" ".join(w.word.strip() for w in words[start:end]),
    )


def _run_atoms(words: Sequence[Word], max_gap_s: float) -> list[list[_Atom]]:
    parsed = [_parse_word(w.word) for w in words]
    runs = []
    for start, end in _run_spans(parsed, words, max_gap_s):
        atoms = _atoms(_tokens(parsed, words, start, end))
        if atoms:
            runs.append(atoms)
    return runs


# --------------------------------------------------------------------------
# Public API


def find_number_runs(words: Sequence[Word], max_gap_s: float = DEFAULT_MAX_GAP_S) -> list[NumberRun]:
    """Find maximal runs of consecutive number words.

    Parameters
    ----------
    words : sequence of Word
        The transcript's words, in order.
    max_gap_s : float
        Silence between two number words (s) that ends a run.

    Returns
    -------
    list of NumberRun
        One per run, in order. A run is not split at sentence marks, so a
        number said twice without a word between ("...0198. 415...") is one
        run here; :func:`find_phone_numbers` splits it.
    """
    return [_make_run(words, atoms) for atoms in _run_atoms(words, max_gap_s)]


def is_phone_digits(digits: str, allow_local: bool = True) -> bool:
    """Whether ``digits`` is a plausible North American (NANP) number.

    Ten digits whose area code and exchange start with 2-9, the same with a
    leading country code ``1`` (eleven digits), or, with ``allow_local``, a
    seven-digit local number whose exchange starts with 2-9.
    """
    if not digits.isdigit():
        return False
    if len(digits) == 11:
        return digits[0] == NANP_COUNTRY_CODE and is_phone_digits(digits[1:], False)
    if len(digits) == 10:
        return digits[0] not in "01" and digits[3] not in "01"
    if len(digits) == 7:
        return allow_local and digits[0] not in "01"
    return False


def _split_phones(atoms: list[_Atom], allow_local: bool) -> list[tuple[int, int]]:
    """Best split of a run into phone numbers and left-over chunks.

    A phone number may start or end inside the run only at a group break,
    except between two exact repetitions of the same number. Returns the
    ``[start, end)`` atom spans of the phone numbers.
    """
    n = len(atoms)
    # best[i]: {last segment key: (score, phone spans)}; key None is "left-over"
    # or the start of the run, otherwise the digits of the phone ending at i.
    best: list[dict[str | None, tuple[int, list[tuple[int, int]]]]] = [{} for _ in range(n + 1)]
    best[0][None] = (0, [])

    def offer(i: int, key: str | None, score: int, spans: list[tuple[int, int]]) -> None:
        if key not in best[i] or score > best[i][key][0]:
            best[i][key] = (score, spans)

    for j in range(n):
        for key, (score, spans) in best[j].items():
            weak = 0 < j and not atoms[j].brk
            # leave atom j out of any phone number (never right after a phone
            # number that ended without a break: that one promised a repeat)
            if not (weak and key is not None):
                offer(j + 1, None, score - _JUNK_DIGIT_COST * len(atoms[j].digits), spans)
            digits = ""
            for i in range(j + 1, n + 1):
                if not atoms[i - 1].phone_ok:
                    break
                digits += atoms[i - 1].digits
                if len(digits) > max(PHONE_LENGTHS):
                    break
                if not is_phone_digits(digits, allow_local):
                    continue
                if weak and key != digits:
                    continue  # joined to what came before without a break
                if i < n and not atoms[i].brk and not _repeats_at(atoms, i, digits):
                    continue
                offer(i, digits, score + _PHONE_SCORE + len(digits), spans + [(j, i)])
    return max(best[n].values(), key=lambda v: v[0])[1]


def _repeats_at(atoms: list[_Atom], i: int, digits: str) -> bool:
    """Whether the atoms from ``i`` begin with ``digits`` again."""
    got = ""
    for atom in atoms[i:]:
        got += atom.digits
        if len(got) >= len(digits):
            return got == digits
    return False


def find_phone_numbers(
    words: Sequence[Word],
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    allow_local: bool = True,
) -> list[NumberRun]:
    """Find the phone numbers said in ``words``.

    Each run of number words (see :func:`find_number_runs`) is split into
    plausible NANP numbers (:func:`is_phone_digits`). A run holding the
    number twice back to back ("...zero one nine eight. Four one five...")
    gives two numbers; digits around a number that do not form one (e.g. a
    stray "two" before it) are left out when a group break separates them.

    Parameters
    ----------
    words : sequence of Word
        The transcript's words, in order.
    max_gap_s : float
        Silence between two number words (s) that ends a run.
    allow_local : bool
        Also report seven-digit local numbers.

    Returns
    -------
    list of NumberRun
        One per number said, in order; repetitions are reported each time.
    """
    phones = []
    for atoms in _run_atoms(words, max_gap_s):
        for start, end in _split_phones(atoms, allow_local):
            phones.append(_make_run(words, atoms[start:end]))
    return phones


def normalize_phone(text: str) -> str:
    """The digits of a written phone number, without a NANP country code.

    ``"+1 (415) 555-0198"`` -> ``"4155550198"``. Spelled-out digits are read
    too (``"four one five ..."``). An eleven-digit number starting with ``1``
    loses the ``1``; other text is returned as its digits unchanged.
    """
    digits = "".join(re.findall(r"\d", text))
    if not digits:
        fake = [Word(w, 0.0, 0.0, 1.0) for w in text.split()]
        digits = "".join(run.digits for run in find_number_runs(fake))
    if len(digits) == 11 and digits.startswith(NANP_COUNTRY_CODE):
        digits = digits[1:]
    return digits


def same_number(a: str, b: str) -> bool:
    """Whether two phone numbers are the same once normalised.

    A seven-digit local number matches a ten-digit number with the same
    last seven digits. Empty numbers never match.
    """
    na, nb = normalize_phone(a), normalize_phone(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    short, long_ = sorted((na, nb), key=len)
    return len(short) == 7 and len(long_) == 10 and long_.endswith(short)

