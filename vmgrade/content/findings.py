"""What content analysis finds: the typed result of :func:`vmgrade.content.analyze`.

Every finding keeps its evidence text and time span (s), so reports can point
at the words.  ``to_dict`` gives the report's ``content`` object; its keys are
a public contract (docs/reports.md): keys are added, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .moves import EngineInfo


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
    by_sound: bool = False  # matched by sound, not spelling: said, but hard to transcribe

    def to_dict(self) -> dict:
        return {"text": self.text, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "probability": round(self.probability, 4), "by_sound": self.by_sound}


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
    # "match", "unconfirmed" (differs only as ASR errs: a dropped or doubled digit, "oh" for zero),
    # "mismatch", "no_expected" (no --callback-number) or "not_said"
    status: str = "no_expected"
    note: str | None = None  # what was heard and why it is judged so

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
            "status": self.status,
            "note": self.note,
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
    moves: tuple[Move, ...] = ()
    reason: Reason | None = None
    engine: EngineInfo | None = None
    # reason-shaped sentences with no concrete detail ("I saw your website and noticed you're growing")
    vague_reasons: tuple[Evidence, ...] = ()
    # research theatre: sentences about the prospect, shaped as a reason or a pitch, that carry no
    # fact beyond their name ("I noticed Harbor Inn is doing some exciting things"); empty when a
    # concrete reason was given
    research_theatre: tuple[Evidence, ...] = ()
    # "press one…": a recorded call's keypad prompt, never an ask a voicemail can make
    keypad_prompts: tuple[Evidence, ...] = ()

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
            "moves": [m.to_dict() for m in self.moves],
            "reason": self.reason.to_dict() if self.reason else None,
            "vague_reasons": [e.to_dict() for e in self.vague_reasons],
            "research_theatre": [e.to_dict() for e in self.research_theatre],
            "keypad_prompts": [e.to_dict() for e in self.keypad_prompts],
            "engine": self.engine.to_dict() if self.engine else None,
        }


@dataclass(frozen=True)
class Move:
    """One sentence (or clause) and the moves it makes, with its time span (s)."""

    text: str
    start_s: float
    end_s: float
    moves: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)  # the engine's score of each move made

    def to_dict(self) -> dict:
        return {"text": self.text, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "moves": list(self.moves), "scores": {k: round(v, 3) for k, v in self.scores.items()}}


# A concrete detail (kind one of vmgrade.content.details.DETAIL_KINDS) and when it was said.
DetailMention = Evidence


@dataclass(frozen=True)
class Reason:
    """The reason for the call and how specific it is.

    ``details`` come from the reason sentences; ``proof_details`` from the
    value sentences (a result for a peer, an offer).  The prospect's company
    named in them is an ``anchor``: it says whom the reason is about, not that
    it is specific (a mail merge fills it in), so it is never a detail.
    ``specificity`` is "concrete" (at least one detail), "vague"
    (reason-shaped, no detail) or "none" (no reason given); how many details
    earn full marks is the rubric's call (``reason_specific_details``).
    """

    sentences: tuple[Evidence, ...]
    details: tuple[DetailMention, ...]
    proof_details: tuple[DetailMention, ...]
    specificity: str
    anchors: tuple[DetailMention, ...] = ()

    @property
    def detail_kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.kind for d in self.details))

    def to_dict(self) -> dict:
        return {
            "specificity": self.specificity,
            "detail_kinds": list(self.detail_kinds),
            "details": [d.to_dict() for d in self.details],
            "proof_details": [d.to_dict() for d in self.proof_details],
            "anchors": [d.to_dict() for d in self.anchors],
            "sentences": [e.to_dict() for e in self.sentences],
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
