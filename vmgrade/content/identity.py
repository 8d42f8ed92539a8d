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
from difflib import SequenceMatcher

from .findings import Identity, Mention
from .phrases import SELF_INTRO
from .tokens import Sentence, Tokens, token

# Whisper misspells names ("Pre-Yepato" for "Priya Patel"): a name token
# matches when its letters are this similar.
NAME_SIMILARITY = 0.8
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
    caller_name = caller_name or detected_name
    company = company or detected_company
    return Identity(
        caller_name=caller_name,
        company=company,
        source=source,
        name_mentions=tuple(mentions(toks, caller_name)),
        company_mentions=tuple(mentions(toks, company)),
    )


def _detect(toks: Tokens, sentences: list[Sentence], flags: list[bool],
            prospect: str | None) -> tuple[str | None, str | None]:
    """(caller name, company) from the first introduction found."""
    candidates = [s for k, s in enumerate(sentences)
                  if k < OPENING_SENTENCES or (k < len(flags) and flags[k])]
    for s in candidates:
        text = _FILLERS.sub("", s.text)
        found = []
        for name, company, lead in _introductions(text):
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
                    company = _title_from_words(toks, lowered.start("company"), lowered.end("company"))
            return name, company
    lowered = SELF_INTRO.search(toks.text)  # no capitals to go by (lower-case ASR text)
    if lowered:
        return (_title_from_words(toks, lowered.start("name"), lowered.end("name")),
                _title_from_words(toks, lowered.start("company"), lowered.end("company")))
    return None, None


def _introductions(text: str):
    """(name, company or None, end offset of a "this is NAME" lead or None) for each introduction."""
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
    """Every place a (possibly misspelled) name is said: its most distinctive token, fuzzily."""
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
        best_len = 0
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
        if best_len:
            words = toks.words[i : i + best_len]
            found.append(Mention(" ".join(w.word.strip() for w in words), words[0].start, words[-1].end,
                                 min(w.probability for w in words)))
            i += best_len
        else:
            i += 1
    # parts of one saying ("Mike" "Chen") found one by one merge into one mention
    merged: list[Mention] = []
    for m in found:
        if merged and m.start_s - merged[-1].end_s < 0.6:
            last = merged[-1]
            merged[-1] = Mention(f"{last.text} {m.text}", last.start_s, m.end_s,
                                 min(last.probability, m.probability))
        else:
            merged.append(m)
    return merged


def _base(tok: str) -> str:
    """"riverbend's" -> "riverbend": a possessive still names the company."""
    return tok[:-2] if tok.endswith("'s") else tok


def _similar(heard: str, expected: str) -> bool:
    heard, expected = heard.replace("-", "").replace("'", ""), expected.replace("-", "").replace("'", "")
    if len(expected) < 3:
        return heard == expected
    return heard == expected or SequenceMatcher(None, heard, expected).ratio() >= NAME_SIMILARITY
