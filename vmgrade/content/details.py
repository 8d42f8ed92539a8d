"""Concrete details in a sentence: what makes a reason specific rather than shaped like one.

"I saw your website and noticed you're growing" has a reason's shape and no
substance; "Three hospitals in Washington were hit by ransomware this fall"
carries a count, a place and a season.  A detail is one of :data:`DETAIL_KINDS`:

- ``prospect``: the prospect's company (or its site) by name;
- ``place``: a named place ("in Beaverton", "on Collins", "Salinas");
- ``count``: a count, amount or share ("three hospitals", "$40,000", "a third", "12 percent");
- ``date``: a date, month, season or time anchor ("in March", "this fall", "last week", "by year end");
- ``name``: another named thing: a peer, competitor, vendor, event or product ("Brenner Dairy", "Art Basel").

Names are found from Whisper's capitals, so an all-lower-case transcript
keeps only counts, dates and the context's names.  Phone numbers are not
details (the number parser claims them first), and neither are codes and bare
counts: an order or reference number ("order number four seven two one"), a
key to press, or a count of nothing in particular ("three items", "two
ways") says nothing about the prospect's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DETAIL_KINDS = ("prospect", "place", "count", "date", "name")

_NUMBER_WORD = (r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                r"hundred|thousand|million|billion|dozen|half|a third|two thirds|a quarter|"
                r"second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|double|triple)")
COUNT = re.compile(
    rf"(?:\$\s?\d[\d,.]*\s*(?:k|m|million|billion|thousand)?|\b\d[\d,.]*(?:\s?%|\s?percent|k\b)?"
    rf"|\b{_NUMBER_WORD}(?:[\s-]+(?:{_NUMBER_WORD}|one|percent|per ?cent))*(?:\s+percent)?)\b",
    re.IGNORECASE)
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec")
DATE = re.compile(
    rf"\b(?:(?:in|by|since|from|until|through|this|next|last|early|late|mid)[\s-]+(?:{_MONTHS})\b"
    rf"|(?:{_MONTHS})\s+(?:\d{{1,2}}(?:st|nd|rd|th)?|first|second|third|fifteenth|thirtieth|\d{{4}})"
    r"|(?:this|last|next|since|by|in the|over the|before|after)\s+(?:spring|summer|fall|autumn|winter|"
    r"quarter|year|month|week|weekend|season|holidays)(?:[\s-]end)?"
    r"|(?:spring|summer|fall|autumn|winter)\s+(?:season|window|rush|break|term)"
    r"|(?:year|quarter|month)[\s-]end|end of (?:the )?(?:year|quarter|month)|q[1-4]\b"
    r"|\b(?:19|20)\d\d\b|yesterday|last (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|(?:in|within|over) (?:the )?(?:last|past|next) \w+ (?:days|weeks|months|years)"
    r"|\w+ (?:days|weeks|months) (?:ago|out|away|from now)"
    r"|black friday|thanksgiving|christmas|new year|tax season|back to school|open enrollment"
    # a time anchored to their calendar: "before soft opening", "by the inspection", "the first month"
    r"|(?:before|after|by|ahead of|until) (?:the |your |their )?(?:soft |grand |next |spring |fall )?"
    r"(?:opening|launch|inspection|audit|renewal|deadline|closing|move|rebid|cutover|go-live|peak season)"
    r"|(?:the |your )?(?:first|last) (?:day|week|month|quarter|year|season)\b)\b",
    re.IGNORECASE)
_MONTH_NAMES = frozenset(_MONTHS.split("|"))
# A time said relative to now ("this year", "next week", "lately") anchors nothing by itself: "your
# goals this year" is no fact.  It is a detail only beside another detail of its sentence.
RELATIVE_DATE = re.compile(
    r"^(?:(?:this|next|last|the past|the last|the next|over the|in the|by the|since|by)\s+"
    r"(?:week|weekend|month|quarter|year|season|few (?:days|weeks|months|years))|lately|recently)$",
    re.IGNORECASE)
_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d)"
# Codes: what follows "order number", "reference", "press"… is an identifier, not a fact.
CODE = re.compile(
    r"\b(?:order|reference|ref|confirmation|case|ticket|account|invoice|claim|tracking|policy|member|"
    r"serial|model|item|option|extension|press|dial)\s+(?:(?:number|no\.?|code|id|#)\s*)?(?:is\s+)?"
    rf"(?:[A-Z]*\d[\w-]*|{_DIGIT}(?:[\s,-]+{_DIGIT})*)\b", re.IGNORECASE)
# A count of these says how many of nothing in particular ("three items pending", "two ways to save").
_BARE_COUNT_NOUNS = re.compile(
    r"\s+(?:more\s+|new\s+)?(?:items?|things?|ways?|options?|offers?|products?|messages?|minutes?|"
    r"seconds?|times?|calls?|steps?|reasons?|questions?|ideas?)\b", re.IGNORECASE)
_PLACE_LEAD = re.compile(r"\b(?:in|near|outside|around|across|downtown|on|off|at|from|over in|up in|"
                         r"down in|out in)\s+$", re.IGNORECASE)
US_STATES = frozenset("""alabama alaska arizona arkansas california colorado connecticut delaware florida
georgia hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts
michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee
texas utah vermont virginia washington wisconsin wyoming""".split())
# Capitalised words that name no concrete thing: sentence starts, days, pronouns, titles, stock words.
_NOT_NAMES = frozenset("""i i'm i'd i'll i've hi hey hello dear mr mrs ms dr doctor sir madam okay ok yes no
so and but or the a an this that these those it it's its we we're our you you're your my me he she they
monday tuesday wednesday thursday friday saturday sunday god thanks thank bye again anyway um uh oh
ceo cfo cto coo vp hr it ai usa us linkedin facebook google twitter instagram youtube tiktok yelp
website web internet online email at in on for with from by of to since about after before""".split())
_CAP = re.compile(r"\b[A-Z][\w'&.-]*(?:\s+(?:(?:of|and|&|de|the|for)\s+)?[A-Z][\w'&.-]*)*")


@dataclass(frozen=True)
class Detail:
    """One concrete detail: its kind, its words and their character span in the sentence."""

    kind: str
    text: str
    start: int
    end: int


def find_details(text: str, *, prospect_names: tuple[str, ...] = (), own_names: tuple[str, ...] = (),
                 skip: tuple[tuple[int, int], ...] = ()) -> list[Detail]:
    """The concrete details in one sentence, in order, overlaps removed.

    Parameters
    ----------
    text : str
        The sentence as transcribed (capitals help find names).
    prospect_names : tuple of str
        The prospect's company and site names (context or detected): a ``prospect`` detail.
    own_names : tuple of str
        The caller's own name, company and the prospect's personal name: never a detail.
    skip : tuple of (int, int)
        Character spans already claimed (a phone number read-out).

    Returns
    -------
    list of Detail
    """
    found: list[Detail] = []
    taken = list(skip)

    def add(kind: str, start: int, end: int) -> None:
        if end <= start or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(Detail(kind, text[start:end].strip(" ,.;:!?"), start, end))

    for m in CODE.finditer(text):
        taken.append((m.start(), m.end()))
    low = text.lower()
    for name in prospect_names:
        key = _key(name)
        if key and len(key) >= 3:
            for m in re.finditer(re.escape(key), low):
                add("prospect", m.start(), m.end())
    for m in DATE.finditer(text):
        add("date", m.start(), m.end())
    for m in COUNT.finditer(text):
        if re.fullmatch(r"(?:second|third|double|triple)", m.group(0), re.IGNORECASE):
            continue  # "a second", "third party", "double check": no count on its own
        if _BARE_COUNT_NOUNS.match(text, m.end()):
            continue
        add("count", m.start(), m.end())
    own = {_key(n) for n in own_names if n} | {w for n in own_names if n for w in _key(n).split()}
    for m in _CAP.finditer(text):
        words = m.group(0).rstrip(".").split()
        # a capital after a sentence start only says where the sentence began
        start = m.start()
        # (a lone capitalised word there is most likely an ordinary word; "Halvorsen Foods" or
        # "Riverbend's" is a name)
        lone = len(words) == 1 and not words[0].endswith(("'s", "’s"))
        while words and ((lone and _sentence_start(text, start))
                         or words[0].lower().strip("'s,") in _NOT_NAMES):
            start = text.index(words[0], start) + len(words[0])
            words = words[1:]
            while start < len(text) and text[start] == " ":
                start += 1
        if not words:
            continue
        phrase = " ".join(words)
        key = _key(phrase)
        if not key or key in own or all(w in own or w in _NOT_NAMES for w in key.split()):
            continue
        end = start + len(phrase)
        if key in _MONTH_NAMES:
            add("date", start, end)
            continue
        place = bool(_PLACE_LEAD.search(text[:start])) or key in US_STATES
        add("place" if place else "name", start, end)
    for m in re.finditer(r"\b(?:" + "|".join(US_STATES) + r")\b", low):
        add("place", m.start(), m.end())
    return facts(sorted(found, key=lambda d: d.start))


def facts(details: list) -> list:
    """``details`` (anything with ``kind`` and ``text``), or none when they are only times relative
    to now: "your goals this year" carries no fact."""
    if all(d.kind == "date" and RELATIVE_DATE.match(d.text) for d in details):
        return []
    return details


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;"


def _key(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9&]+", " ", name.lower().replace("'s ", " ")).split())
