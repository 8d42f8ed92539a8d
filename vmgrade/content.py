"""What was said: identity, personalization, call to action, callback number,
weak phrases and transcribability, each with its time span.

Works on the :class:`~vmgrade.asr.transcribe.Transcript` words (and uses the
delivery speech track only for the pace of the number). It finds and
measures; judging what is good is the scorer's job, so nothing here knows
the rubric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from . import numbers
from .asr.transcribe import Transcript, Word
from .delivery import DeliveryMetrics, span_pace

# Whisper misspells names ("Pre-Yepato" for "Priya Patel"): a name token
# matches when its letters are this similar.
NAME_SIMILARITY = 0.8
# A word Whisper is less sure of than this is one a phone's voicemail-to-text
# would likely garble too.
LOW_PROBABILITY = 0.5
# A number heard this close to the main one (edits) is a garbled repeat of it.
GARBLED_NUMBER_MAX_EDITS = 2
# A cue ("my number is") counts when it ends within this many words of the number.
CUE_WINDOW_WORDS = 4

STOP_WORDS = frozenset(
    "the a an and of inc llc co corp corporation company group ltd limited".split()
)

# (kind, pattern) — patterns run on lower-case text with punctuation removed.
_F = r"(?:(?:uh|um|umm|uhm|er|ah)\s+)*"  # fillers a rep may drop between the parts
_NAME = r"(?!(?:uh|um|umm|uhm|er|ah)\b)[a-z][a-z'\-]+"
SELF_INTRO = re.compile(
    rf"\b(?:this is|it's|it is|my name is|i'm|i am|this|that's|that is)\s+{_F}"
    rf"(?P<name>{_NAME}(?:\s+{_NAME})?)\s+{_F}"
    rf"(?:with|from|at|here at|over at|calling from|calling with)\s+{_F}"
    r"(?P<company>[a-z0-9][a-z0-9&'\-]+(?:\s+(?!(?:uh|um|so|and|i|we)\b)[a-z0-9][a-z0-9&'\-]+)?)"
)
SPECIFIC_REASON_PATTERNS: tuple[tuple[str, str], ...] = (
    ("saw_or_read", r"\b(?:i|we) (?:saw|noticed|read|heard|came across|was reading|was looking at)\b"),
    ("their_news", r"\byour (?:press release|announcement|post|article|blog|website|site|linkedin|"
                   r"recent|new|latest|job posting|podcast|interview|launch|expansion|funding)\b"),
    ("trigger_event", r"\b(?:just|recently) (?:opened|launched|announced|raised|hired|added|expanded|"
                      r"acquired|moved|closed|won|released|started|opened up|rolled out|signed)\b"),
    ("congratulations", r"\b(?:congratulations|congrats)\b"),
    ("referral", r"\b(?:referred me|suggested i (?:call|reach out)|mentioned you|told me you)\b"),
    ("their_plans", r"\byou(?:'re| are) (?:hiring|expanding|moving|opening|growing|switching|rolling out)\b"),
    ("previous_contact", r"\b(?:we (?:met|spoke|talked)|the email i sent|my email (?:last|from)|"
                         r"when we (?:met|spoke)|at the \w+ (?:conference|show|event))\b"),
)
GENERIC_PITCH_PATTERNS: tuple[tuple[str, str], ...] = (
    ("companies_like_yours", r"\b(?:companies|businesses|teams|organizations|people) like yours\b"),
    ("leading_provider", r"\b(?:leading|premier|top|industry leading|world class) "
                         r"(?:provider|company|platform|solution)s?\b"),
    ("full_service", r"\bfull[ -]service\b"),
    ("one_stop_shop", r"\bone[ -]stop[ -]shop\b"),
    ("buzzwords", r"\b(?:best[ -]in[ -]class|cutting[ -]edge|state of the art|synergy|synergies|"
                  r"streamline|optimize|end[ -]to[ -]end solution|innovative solutions?|"
                  r"take your business to the next level)\b"),
    ("solutions", r"\bsolutions\b"),
)
WEAK_PHRASE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("just_checking_in", r"\b(?:just )?check(?:ing)? in\b"),
    ("touching_base", r"\b(?:touch(?:ing)? base|touch base)\b"),
    ("following_up", r"\b(?:just )?follow(?:ing)? up\b"),
    ("get_back_when_you_can", r"\b(?:get back to me|call me back|give me a call|reach out) "
                              r"(?:when|whenever|if) (?:you can|you get a chance|you have (?:a|some) "
                              r"(?:minute|moment|time)|you want|you're free)\b"),
    ("sorry_to_bother", r"\b(?:sorry to (?:bother|disturb|interrupt|call)|i know you(?:'re| are) "
                        r"(?:busy|swamped)|i don't want to take (?:up )?(?:too much of )?your time)\b"),
    ("apology", r"\b(?:sorry|i apologi[sz]e|apologies)\b"),
    ("reaching_out", r"\bjust (?:reaching out|wanted to reach out|calling to see)\b"),
    ("if_interested", r"\bif (?:any of )?(?:that|this) (?:sounds|is) (?:interesting|of interest)\b"),
)
PRICE_PATTERN = re.compile(
    r"(?:\$\s?\d[\d,.]*|\b\d[\d,.]* (?:dollars|bucks)\b|\bper (?:month|seat|user|year)\b|\ba month\b|"
    r"\b(?:dollars|bucks) a (?:month|year)\b)"
)
FEATURE_LIST_PATTERN = re.compile(
    r"\b(?:we(?:'ve)? (?:got|have|offer)|it (?:has|includes)|including|features? like)\b"
)
FEATURE_LIST_MIN_ITEMS = 3  # commas in the sentence after the lead-in
ASK_PATTERNS: tuple[tuple[str, str], ...] = (
    ("callback", r"\b(?:call me(?: back)?|give me a (?:call|ring|buzz|shout)|get back to me|let me know|"
                 r"(?:you )?(?:can|could) (?:reach|call) me|ring me)\b"),
    ("meeting", r"\b(?:book|schedule|set up|grab|find|put) (?:a |some |(?:\w+ )?(?:minutes|time|call|"
                r"meeting|chat|demo)\b)|\b(?:are you|would you be) (?:free|available|open)\b"),
    ("question", r"\b(?:how does|would|does|is) (?:monday|tuesday|wednesday|thursday|friday|tomorrow|"
                 r"next week|this week)\b.*\b(?:work|look|sound)\b"),
    ("email", r"\b(?:watch for|look out for|keep an eye out for|reply to|respond to) "
              r"(?:my|an|the) (?:email|note|message)\b|\bi(?:'ll| will) (?:send|email|shoot) you\b"),
    ("text", r"\b(?:text me|shoot me a text|send me a text)\b"),
    ("website", r"\b(?:visit|check out|go to|head to) (?:our|my) (?:website|site|page|calendar|link)\b"),
)
SOFT_ASK = re.compile(
    r"\b(?:if you want|if you(?:'re| are) interested|when you (?:can|get a chance)|"
    r"if you have (?:some|a) (?:time|minute|moment)|whenever|no pressure|if it makes sense)\b"
)
NUMBER_CUE = re.compile(
    r"\b(?:my (?:number|cell|direct line|phone)(?: is)?|(?:reach|call|text) me (?:at|on)|"
    r"number is|you can reach me|at|again|that's|it's|is)$"
)


@dataclass(frozen=True)
class Evidence:
    """A phrase found in the transcript, with its kind and time span (s)."""

    kind: str
    text: str
    start_s: float
    end_s: float

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3)}


@dataclass(frozen=True)
class Mention:
    """Where a name (caller, company, prospect) was said."""

    text: str
    start_s: float
    end_s: float
    probability: float  # lowest word probability in the span

    def to_dict(self) -> dict:
        return {"text": self.text, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "probability": round(self.probability, 4)}


@dataclass(frozen=True)
class Identity:
    """Who is calling, from where, and when they said so."""

    caller_name: str | None
    company: str | None
    source: str  # "context", "detected" or "none"
    name_mentions: tuple[Mention, ...] = ()
    company_mentions: tuple[Mention, ...] = ()

    @property
    def name_first_s(self) -> float | None:
        return self.name_mentions[0].start_s if self.name_mentions else None

    @property
    def company_first_s(self) -> float | None:
        return self.company_mentions[0].start_s if self.company_mentions else None

    def to_dict(self) -> dict:
        return {
            "caller_name": self.caller_name,
            "company": self.company,
            "source": self.source,
            "name_first_s": _r(self.name_first_s),
            "company_first_s": _r(self.company_first_s),
            "name_mentions": [m.to_dict() for m in self.name_mentions],
            "company_mentions": [m.to_dict() for m in self.company_mentions],
        }


@dataclass(frozen=True)
class NumberMention:
    """One time the callback number was said."""

    digits: str
    groups: tuple[str, ...]
    start_s: float
    end_s: float
    digits_per_s: float
    pause_before_ms: float | None
    cued: bool  # preceded by "my number is", "call me at", "again"…
    garbled: bool  # heard with a digit or two off the main number
    min_probability: float
    pauses_inside: int = 0  # silent gaps (delivery pauses) inside the number

    @property
    def chunked(self) -> bool:
        """Said in groups (3-3-4): from the transcript's grouping or pauses between digits."""
        return len(self.groups) >= 3 or self.pauses_inside >= 2

    def to_dict(self) -> dict:
        return {
            "digits": self.digits,
            "groups": list(self.groups),
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "digits_per_s": round(self.digits_per_s, 2),
            "pause_before_ms": _r(self.pause_before_ms, 0),
            "cued": self.cued,
            "garbled": self.garbled,
            "min_probability": round(self.min_probability, 4),
            "pauses_inside": self.pauses_inside,
            "chunked": self.chunked,
        }


@dataclass(frozen=True)
class Callback:
    """The callback number: what was said, how often, how fast, and whether it is right."""

    digits: str | None  # the main number heard (None: no number said)
    expected: str | None  # normalised --callback-number
    matches_expected: bool | None  # None when no number was given or none said
    mentions: tuple[NumberMention, ...] = ()
    other_numbers: tuple[str, ...] = ()  # other phone numbers said

    @property
    def times_said(self) -> int:
        return len(self.mentions)

    def to_dict(self) -> dict:
        return {
            "digits": self.digits,
            "expected": self.expected,
            "matches_expected": self.matches_expected,
            "times_said": self.times_said,
            "mentions": [m.to_dict() for m in self.mentions],
            "other_numbers": list(self.other_numbers),
        }


@dataclass(frozen=True)
class ContentFindings:
    """Everything :func:`analyze` finds in what was said."""

    identity: Identity
    prospect_name: str | None
    prospect_name_mentions: tuple[Mention, ...]
    prospect_company: str | None
    prospect_company_mentions: tuple[Mention, ...]
    specific_reasons: tuple[Evidence, ...]
    generic_phrases: tuple[Evidence, ...]
    asks: tuple[Evidence, ...]
    soft_asks: tuple[Evidence, ...]
    callback: Callback
    weak_phrases: tuple[Evidence, ...]
    low_confidence: tuple[Evidence, ...] = field(default=())
    word_count: int = 0
    message_start_s: float = 0.0
    message_end_s: float = 0.0

    @property
    def ask_kinds(self) -> tuple[str, ...]:
        """Distinct kinds of ask, in order of first appearance."""
        return tuple(dict.fromkeys(a.kind for a in self.asks))

    @property
    def ask_count(self) -> int:
        """Distinct asks: one per sentence that asks (its first kind), a repeated kind not counted again.

        "Call me back to book fifteen minutes" is one ask; "call me, or email
        me, or book on my calendar" in three sentences is three.
        """
        return len(self.ask_kinds)

    def to_dict(self) -> dict:
        return {
            "identity": self.identity.to_dict(),
            "prospect_name": self.prospect_name,
            "prospect_name_mentions": [m.to_dict() for m in self.prospect_name_mentions],
            "prospect_company": self.prospect_company,
            "prospect_company_mentions": [m.to_dict() for m in self.prospect_company_mentions],
            "specific_reasons": [e.to_dict() for e in self.specific_reasons],
            "generic_phrases": [e.to_dict() for e in self.generic_phrases],
            "asks": [e.to_dict() for e in self.asks],
            "ask_kinds": list(self.ask_kinds),
            "ask_count": self.ask_count,
            "soft_asks": [e.to_dict() for e in self.soft_asks],
            "callback": self.callback.to_dict(),
            "weak_phrases": [e.to_dict() for e in self.weak_phrases],
            "low_confidence": [e.to_dict() for e in self.low_confidence],
        }


@dataclass(frozen=True)
class _Tokens:
    """Transcript words as lower-case tokens, with a map from text offsets to words."""

    words: tuple[Word, ...]
    tokens: tuple[str, ...]
    text: str
    offsets: tuple[int, ...]  # start offset of each token in ``text``

    @classmethod
    def of(cls, words: Sequence[Word]) -> _Tokens:
        kept = [w for w in words if _token(w.word)]
        tokens = tuple(_token(w.word) for w in kept)
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
        return Evidence(kind, " ".join(w.word for w in words), words[0].start, words[-1].end)

    def find_all(self, patterns: Sequence[tuple[str, str]]) -> list[Evidence]:
        found = []
        for kind, pattern in patterns:
            for m in re.finditer(pattern, self.text):
                found.append(self.evidence(kind, m.start(), m.end()))
        return sorted(found, key=lambda e: e.start_s)


def analyze(
    transcript: Transcript,
    delivery: DeliveryMetrics | None = None,
    *,
    caller_name: str | None = None,
    company: str | None = None,
    callback_number: str | None = None,
    prospect_name: str | None = None,
    prospect_company: str | None = None,
) -> ContentFindings:
    """Find identity, personalization, asks, the callback number and weak phrases.

    Parameters
    ----------
    transcript : Transcript
        Words with times (s) and probabilities.
    delivery : DeliveryMetrics, optional
        Its speech track gives the pause before the number.
    caller_name, company, callback_number, prospect_name, prospect_company : str, optional
        Context from the rep; found in the words when given, detected when not.

    Returns
    -------
    ContentFindings
    """
    toks = _Tokens.of(transcript.words)
    identity = _identity(toks, caller_name, company)
    if prospect_name is None:
        prospect_name = _detect_prospect(toks, identity)
    prospect_mentions = _mentions(toks, prospect_name)
    company_mentions = _mentions(toks, prospect_company)
    callback = _callback(transcript.words, toks, delivery, callback_number)
    sentences = _sentences(toks)
    weak = toks.find_all(WEAK_PHRASE_PATTERNS) + _dumps(toks, sentences)
    # "sorry to bother" already covers its "sorry"
    weak = [e for e in weak if not (e.kind == "apology" and any(
        o.kind == "sorry_to_bother" and o.start_s <= e.start_s <= o.end_s for o in weak))]
    weak.sort(key=lambda e: e.start_s)
    asks = _one_ask_per_sentence(_dedupe_overlaps(toks.find_all(ASK_PATTERNS)), sentences)
    low = _low_confidence(identity, callback, transcript.words)
    words = toks.words
    return ContentFindings(
        identity=identity,
        prospect_name=prospect_name,
        prospect_name_mentions=tuple(prospect_mentions),
        prospect_company=prospect_company,
        prospect_company_mentions=tuple(company_mentions),
        specific_reasons=tuple(_dedupe_overlaps(toks.find_all(SPECIFIC_REASON_PATTERNS))),
        generic_phrases=tuple(_dedupe_overlaps(toks.find_all(GENERIC_PITCH_PATTERNS))),
        asks=tuple(asks),
        soft_asks=tuple(toks.find_all((("soft_ask", SOFT_ASK.pattern),))),
        callback=callback,
        weak_phrases=tuple(weak),
        low_confidence=tuple(low),
        word_count=len(words),
        message_start_s=words[0].start if words else 0.0,
        message_end_s=words[-1].end if words else 0.0,
    )


def _identity(toks: _Tokens, caller_name: str | None, company: str | None) -> Identity:
    detected = SELF_INTRO.search(toks.text)
    source = "context" if (caller_name or company) else ("detected" if detected else "none")
    if detected:
        if not caller_name:
            caller_name = _title_from_words(toks, detected.start("name"), detected.end("name"))
        if not company:
            company = _title_from_words(toks, detected.start("company"), detected.end("company"))
    return Identity(
        caller_name=caller_name,
        company=company,
        source=source,
        name_mentions=tuple(_mentions(toks, caller_name)),
        company_mentions=tuple(_mentions(toks, company)),
    )


def _detect_prospect(toks: _Tokens, identity: Identity) -> str | None:
    m = re.match(r"(?:hi|hey|hello|good morning|good afternoon)\s+(?P<name>[a-z][a-z'\-]+)", toks.text)
    if not m or m.group("name") in {"this", "it's", "there", "its", "um", "uh", "i"}:
        return None
    name = _title_from_words(toks, m.start("name"), m.end("name"))
    return name if name != identity.caller_name else None


def _title_from_words(toks: _Tokens, start: int, end: int) -> str:
    i, j = toks.word_span(start, end)
    return " ".join(w.word.strip(",.!?;:") for w in toks.words[i:j])


def _mentions(toks: _Tokens, name: str | None) -> list[Mention]:
    """Every place a (possibly misspelled) name is said: its most distinctive token, fuzzily."""
    if not name:
        return []
    parts = [p for p in (_token(x) for x in name.split()) if p and p not in STOP_WORDS]
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
        if not best_len and any(_similar(toks.tokens[i], p) and toks.tokens[i][:1] == p[:1] for p in parts):
            best_len = 1
        if best_len:
            words = toks.words[i : i + best_len]
            found.append(Mention(" ".join(w.word for w in words), words[0].start, words[-1].end,
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


def _similar(heard: str, expected: str) -> bool:
    if len(expected) < 3:
        return heard == expected
    return heard == expected or SequenceMatcher(None, heard, expected).ratio() >= NAME_SIMILARITY


def _callback(
    words: Sequence[Word], toks: _Tokens, delivery: DeliveryMetrics | None, expected_text: str | None
) -> Callback:
    expected = numbers.normalize_phone(expected_text) if expected_text else None
    phones = numbers.find_phone_numbers(words)
    runs = [r for r in numbers.find_number_runs(words) if len(r.digits) >= 7]
    if not phones and not runs:
        return Callback(None, expected, None)
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
        before = " ".join(_token(w.word) for w in words[max(0, run.start_index - CUE_WINDOW_WORDS):
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
    matches = numbers.same_number(main, expected) if expected else None
    return Callback(main, expected, matches, tuple(mentions), tuple(dict.fromkeys(others)))


def _edits(a: str, b: str) -> int:
    """Levenshtein distance between two digit strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _dumps(toks: _Tokens, sentences: list[Evidence]) -> list[Evidence]:
    """Price and feature dumps: several prices, or a long list after "we've got"."""
    found = []
    prices = list(PRICE_PATTERN.finditer(toks.text))
    if len(prices) >= 2:
        found.append(toks.evidence("price_dump", prices[0].start(), prices[-1].end()))
    for sentence in sentences:
        lead = FEATURE_LIST_PATTERN.search(sentence.text.lower())
        if lead and sentence.text[lead.end():].count(",") >= FEATURE_LIST_MIN_ITEMS:
            found.append(Evidence("feature_list", sentence.text, sentence.start_s, sentence.end_s))
    return found


def _sentences(toks: _Tokens) -> list[Evidence]:
    out, start = [], 0
    for k, w in enumerate(toks.words):
        if w.word.rstrip().endswith((".", "?", "!")) or k == len(toks.words) - 1:
            words = toks.words[start : k + 1]
            out.append(Evidence("sentence", " ".join(x.word for x in words), words[0].start, words[-1].end))
            start = k + 1
    return out


def _one_ask_per_sentence(asks: list[Evidence], sentences: list[Evidence]) -> list[Evidence]:
    """Within one sentence, later asks serve the first ("call me back to book a time")."""
    kept: list[Evidence] = []
    for a in asks:
        sentence = next((s for s in sentences if s.start_s <= a.start_s < s.end_s), None)
        if sentence and any(sentence.start_s <= k.start_s < sentence.end_s for k in kept):
            continue
        kept.append(a)
    return kept


def _dedupe_overlaps(found: list[Evidence]) -> list[Evidence]:
    """Keep the first of any evidence that overlaps an earlier one in time."""
    kept: list[Evidence] = []
    for e in found:
        if not any(e.start_s < k.end_s and k.start_s < e.end_s for k in kept):
            kept.append(e)
    return kept


def _low_confidence(identity: Identity, callback: Callback, words: Sequence[Word]) -> list[Evidence]:
    """Name, company and number words Whisper was unsure of."""
    out = []
    for kind, mentions in (("caller_name", identity.name_mentions), ("company", identity.company_mentions)):
        for m in mentions:
            if m.probability < LOW_PROBABILITY:
                out.append(Evidence(kind, m.text, m.start_s, m.end_s))
    for m in callback.mentions:
        if m.min_probability < LOW_PROBABILITY or m.garbled:
            out.append(Evidence("callback_number", m.digits, m.start_s, m.end_s))
    return out


def _token(word: str) -> str:
    return re.sub(r"[^a-z0-9$'&\-]+", "", word.lower()).strip("-'")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
