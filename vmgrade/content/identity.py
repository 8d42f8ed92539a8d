"""Who is calling, and whom: the caller's name and company and the prospect's name, with when each was said.

Context from the rep (``--caller-name``, ``--company``, ``--prospect-name``)
always wins; the words are then searched fuzzily for it.  Without context the
names are read from how people introduce themselves: "this is Nia from
Chairside", "Mark here from Brightline", "Mark, Brightline Logistics",
"you've got Priya at Tandem", "myself Rahul Menon calling from Brightfield
Solar", "this is ExpressScripts, your pharmacy benefit manager".  Whisper's
capitals mark the names; an all-lower-case transcript falls back to the
older lower-case pattern (``phrases.SELF_INTRO``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from difflib import SequenceMatcher

import jellyfish

from .. import numbers
from .findings import Identity, Mention
from .phrases import SELF_INTRO
from .tokens import Sentence, Tokens, token

# Whisper misspells names ("Pre-Yepato" for "Priya Patel"): a name token
# matches when its letters are this similar.
NAME_SIMILARITY = 0.8
# ... or mishears them as another word that sounds alike ("Prairie" for "Priya"): a capitalised
# token matches by sound when its Metaphone key is at most this many edits from the name's, starts
# with the same sound, and its letters are still this similar (Jaro-Winkler).  Whisper capitalises
# what it takes for a name, so a lower-case common word ("prior") never matches by sound.
SOUND_KEY_MAX_EDITS = 1
SOUND_MIN_SIMILARITY = 0.75
# Introductions are looked for in this many first sentences, and in any the move engine calls identity.
OPENING_SENTENCES = 3
STOP_WORDS = frozenset(
    "the a an and of inc llc co corp corporation company group ltd limited".split()
)
# A capitalised group: 1-4 capitalised words, "&"/"and"/"of" allowed inside ("PG and E", "Bank of Marin").
_CAPS = r"[A-Z][\w'&.\-]*(?:\s+(?:(?:and|of|&)\s+)?[A-Z][\w'&.\-]*){0,3}"
_PERSON = r"[A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,2}"  # a person: 1-3 capitalised words, no "of"
_LEAD = (r"(?i:this is|it's|it is|my name is|i'm|i am|myself|you've got|you have|you got|you've reached|"
         r"here is|this side)")
_TIE = r"(?i:(?:here\s+)?(?:calling\s+|over\s+|speaking\s+)?(?:from|with|at|of|for)\s+(?:the\s+)?)"
INTRO_LEAD = re.compile(rf"\b{_LEAD}\s+(?P<name>{_PERSON})(?:(?:,?\s+{_TIE}|,\s+)(?P<company>{_CAPS}))?")
INTRO_HERE = re.compile(
    rf"(?:^|[,.!?]\s+)(?P<name>{_PERSON})\s+here\b[,.]?(?:\s+{_TIE}?(?P<company>{_CAPS}))?")
_WHOLE_CAPS = re.compile(rf"(?i:(?:hi|hey|hello|it's|it is)\s+)?(?P<caps>{_CAPS})")
# "This is a message from the Social Security Department", "a courtesy call from Lakeside Dental":
# no person, the sender is the company
INTRO_MESSAGE_FROM = re.compile(
    r"\b(?i:(?:this is|it's|it is|here is|you have|you've got)\s+)?(?i:an?|the)\s+"
    r"(?i:(?:important|quick|courtesy|recorded|friendly|automated)\s+)?(?i:message|call|reminder|update)"
    rf"\s+(?i:from)\s+(?:(?i:the)\s+)?(?P<company>{_CAPS})")
# "this is ExpressScripts, your pharmacy benefit manager": the one name is a company's
# "Carlos, hi, Dana Whitfield with Keystone Talent": a clause that is a name tied to a company
INTRO_TIED = re.compile(
    rf"(?:^|[,.!?]\s+)(?P<name>{_PERSON})\s+(?i:with|from|at|of|over at)\s+(?P<company>{_CAPS})")
# Fillers said inside an introduction ("it's Priya from, uh, Ledgerline"): dropped before matching
_FILLERS = re.compile(r"\b(?i:uh|um|umm|uhm|er|ah|erm),?\s+")
# Clause edges, but not an abbreviation's full stop ("Dr. Patel")
_CHUNK_SPLIT = re.compile(r"(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bSt)[.!?](?:\s+|$)|[,;:]")
COMPANY_APPOSITION = re.compile(r"^\s*,?\s*(?:your|the)\s+\w+")
_NOT_A_NAME = frozenset("""there here again just so um uh hi hey hello thanks this that it calling
i me you your we our the a""".split())
GREETING_NAME = re.compile(
    r"^(?i:(?:hi|hey|hello|good morning|good afternoon|good evening|dear|morning|afternoon)[,!]?\s+)?"
    r"(?P<name>(?:(?i:dr|mr|mrs|ms|miss|doctor)\.?\s+)?[A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*)?)"
    r"\s*[,.!?\-—]")
GREETING_LOWER = re.compile(
    r"^(?:hi|hey|hello|good morning|good afternoon|good evening)\s+(?P<name>[a-z][a-z'\-]+)")


def identify(toks: Tokens, sentences: list[Sentence], identity_flags: list[bool],
             caller_name: str | None, company: str | None, prospect: str | None = None) -> Identity:
    """The caller's name and company: from context when given, else from the introduction.

    Parameters
    ----------
    toks : Tokens
    sentences : list of Sentence
    identity_flags : list of bool
        Per sentence, whether the move engine says it introduces the caller.
    caller_name, company : str, optional
        The rep's context; wins over what is detected.
    prospect : str, optional
        The prospect's name, which is never taken for the caller's.
    """
    detected_name, detected_company = _detect(toks, sentences, identity_flags, prospect)
    source = "context" if (caller_name or company) else (
        "detected" if (detected_name or detected_company) else "none")
    company_mentions = _said(toks, company, detected_company)
    name_mentions = _said(toks, caller_name, detected_name)
    if caller_name and not name_mentions:
        name_mentions = _name_slot(sentences, company_mentions)
    return Identity(
        caller_name=caller_name or detected_name,
        company=company or detected_company,
        source=source,
        name_mentions=tuple(name_mentions),
        company_mentions=tuple(company_mentions),
    )


def _said(toks: Tokens, given: str | None, detected: str | None) -> list[Mention]:
    """Where the context's name was said; when the words hold no trace of it but the introduction
    names someone in its place ("this is Shivon with Crestwater" for Siobhan), that name was said
    and transcribed otherwise: its mentions, marked ``by_sound``."""
    if not given:
        return mentions(toks, detected)
    found = mentions(toks, given)
    if found or not detected:
        return found
    return [replace(m, by_sound=True) for m in mentions(toks, detected)]


def _detect(toks: Tokens, sentences: list[Sentence], flags: list[bool],
            prospect: str | None) -> tuple[str | None, str | None]:
    """(caller name, company) from the first introduction found."""
    candidates = [s for k, s in enumerate(sentences)
                  if k < OPENING_SENTENCES or (k < len(flags) and flags[k])]
    for s in candidates:
        text = _FILLERS.sub("", s.text)
        found = []
        for name, company, lead in _introductions(text):
            if company and _number_words(company):
                company = None  # "this is Sam at oh seven nine six six…": a number, not a company
            if name is None and company:
                found.append((None, company))
                continue
            if not name or token(name.split()[0]) in _NOT_A_NAME:
                continue
            if prospect and _similar(token(name.split()[-1]), token(prospect.replace(".", " ").split()[-1])):
                continue  # "Dr. Patel, Nia Okafor, Chairside": the first group is the prospect
            if company is None and lead is not None and (
                    COMPANY_APPOSITION.match(text[lead:]) or _looks_like_company(name)):
                found.append((None, name))  # "this is ExpressScripts, your pharmacy benefit manager"
            else:
                found.append((name, company))
        if found:
            # "it's Greg Tanaka, Pacific Benefits Group": the reading with a company wins
            name, company = next((f for f in found if f[0] and f[1]), found[0])
            if name and company is None:  # "This is Daniel Brooks. With copperline analytics, ..."
                lowered = SELF_INTRO.search(toks.text)
                if lowered and _similar(token(name.split()[0]), token(lowered.group("name").split()[0])):
                    company = _lowered_company(toks, lowered)
            return name, company
    lowered = SELF_INTRO.search(toks.text)  # no capitals to go by (lower-case ASR text)
    if lowered:
        name = _title_from_words(toks, lowered.start("name"), lowered.end("name"))
        return name, _lowered_company(toks, lowered)
    return None, None


def _lowered_company(toks: Tokens, lowered: re.Match) -> str | None:
    """The company of a lower-case introduction (``phrases.SELF_INTRO``); never a number."""
    company = _title_from_words(toks, lowered.start("company"), lowered.end("company"))
    return None if _number_words(company) else company


# The words before the company in an introduction: "[this is] NAME [here] from COMPANY"
NAME_SLOT = re.compile(
    r"(?:^|[,.!?]\s+)(?:(?i:this is|it's|it is|i'm|i am|my name is|you've got|you have)\s+)?"
    r"(?P<name>[\w'\-]+(?:\s+[\w'\-]+){0,3}?),?\s+(?i:(?:here|hear)\s+)?(?i:calling\s+)?"
    r"(?i:from|with|at|of|over at)\s+(?i:the\s+)?$")


def _name_slot(sentences: list[Sentence], company_mentions) -> list[Mention]:
    """The caller's name as said but not transcribed: the words in the name's place before the
    company in the introduction ("Hey Hannah, always in a dammy here from GrowRight" for Oluwaseun
    Adeyemi), as one ``by_sound`` mention; none when the company was not heard."""
    if not company_mentions:
        return []
    first = company_mentions[0]
    for s in sentences:
        if not s.start_s <= first.start_s < s.end_s:
            continue
        k = next(k for k, w in enumerate(s.words) if w.start >= first.start_s - 1e-6)
        m = NAME_SLOT.search(s.text[: s.starts[k]])
        if not m or token(m.group("name").split()[0]) in _NOT_A_NAME:
            return []
        a = next(i for i, off in enumerate(s.starts) if off >= m.start("name"))
        b = max(i for i, off in enumerate(s.starts) if off < m.end("name"))
        words = s.words[a : b + 1]
        return [Mention(m.group("name"), words[0].start, words[-1].end, min(w.probability for w in words),
                        by_sound=True)]
    return []


# Number words (numbers.py's): the start of a phone number, never a company
_NUMBER_TOKENS = frozenset({*numbers.DIGIT_WORDS, *numbers.ZERO_WORDS, *numbers.TEEN_WORDS,
                            *numbers.TENS_WORDS, *numbers.SCALE_WORDS, *numbers.REPEAT_WORDS})


def _number_words(text: str) -> bool:
    """Whether ``text`` starts with digits or a number word: the start of a phone number, not a name."""
    first = (text.split() or [""])[0].strip(" ,.-").lower()
    return first[:1].isdigit() or first in _NUMBER_TOKENS


def _introductions(text: str):
    """(name or None, company or None, end offset of a "this is NAME" lead or None) for each
    introduction."""
    for m in INTRO_MESSAGE_FROM.finditer(text):
        yield None, _clean(m.group("company")), None
    for pattern in (INTRO_LEAD, INTRO_HERE, INTRO_TIED):
        for m in pattern.finditer(text):
            yield _clean(m.group("name")), _clean(m.group("company")), (
                m.end() if pattern is INTRO_LEAD and not m.group("company") else None)
    # "Nia Okafor, Chairside." / "Greg Tanaka, Pacific Benefits Group": two capitalised chunks in a row
    chunks = [c.strip() for c in _CHUNK_SPLIT.split(text)]
    whole = [_whole_caps(c) for c in chunks]
    for a, b in zip(whole, whole[1:]):
        if a and b and len(a.split()) <= 3:
            yield a, b, None


def _whole_caps(chunk: str) -> str | None:
    m = _WHOLE_CAPS.fullmatch(chunk)
    if not m or not m.group("caps")[:1].isupper():
        return None
    return _clean(m.group("caps"))


def _looks_like_company(name: str) -> bool:
    """CamelCase ("ExpressScripts") or a company word ("Labs", "Group", "Solar")."""
    words = name.split()
    return any(re.search(r"[a-z][A-Z]", w) for w in words) or (
        len(words) > 1 and words[-1].lower().strip(".") in _COMPANY_WORDS)


_COMPANY_WORDS = frozenset("""inc llc ltd co corp group labs lab solutions systems services partners logistics
solar software health dental rentals benefits capital bank insurance technologies tech media analytics
consulting networks foods freight energy""".split())


def _clean(text: str | None) -> str | None:
    if not text:
        return None
    text = re.sub(r"['’]s$", "", text.strip(" ,.;:!?"))
    return text or None


def detect_prospect(toks: Tokens, sentences: list[Sentence], caller_name: str | None = None,
                    company: str | None = None) -> str | None:
    """The prospect's name from the opening vocative: "Hi Marco,", "Dr. Patel,", "Carlos, hi".

    Not the caller's own name or company (context), nor an introduction ("Hi, Nia here").
    """
    if not sentences:
        return None
    first = sentences[0].text
    m = GREETING_NAME.match(first)
    name = _clean(m.group("name")) if m else None
    if name is None:
        low = GREETING_LOWER.match(toks.text)
        if low:
            name = _title_from_words(toks, low.start("name"), low.end("name"))
    if not name or token(name.split()[-1]) in _NOT_A_NAME or token(name.split()[0]) in _NOT_A_NAME:
        return None
    if caller_name and _similar(token(name), token(caller_name.split()[0])):
        return None
    if company and _similar(token(name), token(company)):
        return None
    chunks = [c for c in _CHUNK_SPLIT.split(first) if c.strip()]
    greeted = m and m.group(0).lower().startswith(("hi", "hey", "hello", "good", "dear", "morning",
                                                   "afternoon"))
    if m and not greeted and len(chunks) == 2 and all(_whole_caps(c.strip()) for c in chunks):
        return None  # "Mark, Brightline Logistics.": the caller's name and company, not a vocative
    rest = first[m.end("name"):] if m else ""
    if re.match(r"\s*(?:here\b|from\b|with\b)", rest, re.IGNORECASE):
        return None  # "Nia here from Chairside": the caller, not a vocative
    return name


def _title_from_words(toks: Tokens, start: int, end: int) -> str:
    i, j = toks.word_span(start, end)
    return " ".join(w.word.strip(" ,.!?;:") for w in toks.words[i:j])


def mentions(toks: Tokens, name: str | None) -> list[Mention]:
    """Every place a (possibly misspelled or misheard) name is said: its most distinctive token,
    matched by spelling, then by sound (:func:`sounds_like`); a mention found only by sound says so
    (``Mention.by_sound``): the name was said but was hard to transcribe."""
    if not name:
        return []
    parts = [p for p in (token(x) for x in name.replace(".", " ").split()) if p and p not in STOP_WORDS
             and p not in {"dr", "mr", "mrs", "ms", "doctor"}]
    if not parts:
        return []
    found: list[Mention] = []
    i = 0
    n = len(parts)
    while i < len(toks.tokens):
        best_len, by_sound = 0, False
        # whole name (joined, so "North wind" matches "Northwind"), then each part alone
        for width in (n, n + 1, n - 1, 1):
            if width < 1 or i + width > len(toks.tokens) or toks.tokens[i][:1] != parts[0][:1]:
                continue
            heard = "".join(toks.tokens[i : i + width])
            if _similar(heard, "".join(parts)):
                best_len = width
                break
        if not best_len and any(_similar(_base(toks.tokens[i]), p) and toks.tokens[i][:1] == p[:1]
                                for p in parts):
            best_len = 1
        if not best_len and toks.words[i].word.strip()[:1].isupper() and any(
                sounds_like(_base(toks.tokens[i]), p) for p in parts):
            best_len, by_sound = 1, True
        if best_len:
            words = toks.words[i : i + best_len]
            found.append(Mention(" ".join(w.word.strip() for w in words), words[0].start, words[-1].end,
                                 min(w.probability for w in words), by_sound))
            i += best_len
        else:
            i += 1
    # parts of one saying ("Mike" "Chen") found one by one merge into one mention
    merged: list[Mention] = []
    for m in found:
        if merged and m.start_s - merged[-1].end_s < 0.6:
            last = merged[-1]
            merged[-1] = Mention(f"{last.text} {m.text}", last.start_s, m.end_s,
                                 min(last.probability, m.probability), last.by_sound and m.by_sound)
        else:
            merged.append(m)
    return merged


def sounds_like(heard: str, expected: str) -> bool:
    """Whether the token ``heard`` may be the name part ``expected`` misheard ("prairie" for "priya").

    Both lower-case tokens.  Metaphone keys at most ``SOUND_KEY_MAX_EDITS``
    apart with the same first sound, and letters at least ``SOUND_MIN_SIMILARITY``
    alike (Jaro-Winkler), so that names that merely share consonants ("Maria"
    for "Priya") do not match.
    """
    heard, expected = heard.replace("-", "").replace("'", ""), expected.replace("-", "").replace("'", "")
    if len(expected) < 4 or len(heard) < 3:
        return False
    a, b = jellyfish.metaphone(heard), jellyfish.metaphone(expected)
    return (bool(a) and a[:1] == b[:1]
            and jellyfish.levenshtein_distance(a, b) <= SOUND_KEY_MAX_EDITS
            and jellyfish.jaro_winkler_similarity(heard, expected) >= SOUND_MIN_SIMILARITY)


def _base(tok: str) -> str:
    """"riverbend's" -> "riverbend": a possessive still names the company."""
    return tok[:-2] if tok.endswith("'s") else tok


def _similar(heard: str, expected: str) -> bool:
    heard, expected = heard.replace("-", "").replace("'", ""), expected.replace("-", "").replace("'", "")
    if len(expected) < 4:  # "Inn" is not "in": short names are matched exactly
        return heard == expected
    return heard == expected or SequenceMatcher(None, heard, expected).ratio() >= NAME_SIMILARITY
