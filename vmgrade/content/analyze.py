"""What was said: the moves of each sentence, identity, the reason and its details, the ask,
the callback number, weak phrases and transcribability, each with its time span.

Works on the :class:`~vmgrade.asr.transcribe.Transcript` words (and uses the
delivery speech track only for the pace of the number).  It finds and
measures; judging what is good is the scorer's job, so nothing here knows
the rubric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from .. import numbers
from ..delivery import DeliveryMetrics
from ..transcript import Segment, Transcript, Word
from . import phrases
from .callback import find_callback
from .details import facts, find_details
from .findings import Callback, ContentFindings, DetailMention, Evidence, Identity, Mention, Move, Reason
from .identity import detect_prospect, identify, mentions
from .moves import ASK_MOVES, MOVES, SECOND_PERSON, classifier
from .tokens import Sentence, Tokens, sentences, words_from_text

# A word Whisper is less sure of than this is one a phone's voicemail-to-text
# would likely garble too.
LOW_PROBABILITY = 0.5
PHONE_RUN_MIN_DIGITS = 7
# A sentence the engine gives no move but this many kinds of concrete detail is read as the
# reason, or as proof when it is about what we did (see _label).
FACT_DETAIL_KINDS = 2
# A hedged ask says so in words ("if you have a minute", "maybe", "whenever"); the head's hedge
# score alone also fires on plain questions ("Could we talk on Thursday?").
HEDGE_WORDS = re.compile(r"\b(?:if|maybe|perhaps|whenever|sometime|no (?:pressure|rush)|chance|might|"
                         r"feel free|when you can|at your convenience|possibly|i guess|or so)\b",
                         re.IGNORECASE)
# An ask is a move of the head, whatever its punctuation; but the head leans on a question mark
# that Whisper often leaves out.  A sentence whose ask score comes within this share of its
# threshold and that is worded as a proposal ("Worth twenty minutes at your shop Thursday", "let's
# grab fifteen minutes", "ring me") is an ask; a statement that merely has a day in it ("the
# conference is on Tuesday") is not.
NEAR_ASK_SHARE = 0.6
PROPOSAL = re.compile(
    r"\b(?:worth|works for|how about|happy to|glad to|let's|let us|free (?:on|at|for|this|next)|"
    r"(?:five|ten|fifteen|twenty|thirty|\d{1,2}) minutes|"
    r"a (?:quick |short )?(?:call|chat|look|walk|visit|demo|coffee|word)|"
    r"(?:ring|call|text|email|phone|buzz) me|give me a (?:call|ring|shout|buzz)|drop me|shoot me|"
    r"grab (?:a|some|fifteen|ten|twenty|thirty|\d))\b", re.IGNORECASE)
# A sentence that opens with a request of the listener and is worded as a proposal is an ask, whatever
# the head made of it (ASR-garbled words can hide the ask from it).
IMPERATIVE_ASK = re.compile(
    r"^\W*(?:(?:so|and|just|please|okay|ok)\W+)?(?:give me|grab|let's|let us|ring me|call me|text me|"
    r"email me|drop me|shoot me|book|pick)\b", re.IGNORECASE)
# A sentence the head calls proof (value) but also scores this near a reason, that carries a detail
# and claims nothing for "us", is the reason (see _label).
NEAR_REASON_SHARE = 0.6
# What "we" did is proof; "I'm calling about…", "I saw…" introduce the reason, so only the plural counts.
_OURS = re.compile(r"\b(?:we|we're|we've|we'd|we'll|our|ours|us)\b", re.IGNORECASE)
# "you know" is a filler, not the listener addressed
_YOU_KNOW = re.compile(r"\byou know\b", re.IGNORECASE)
_OR = re.compile(r"\bor\b", re.IGNORECASE)


def analyze(
    transcript: Transcript,
    delivery: DeliveryMetrics | None = None,
    *,
    caller_name: str | None = None,
    company: str | None = None,
    callback_number: str | None = None,
    prospect_name: str | None = None,
    prospect_company: str | None = None,
    engine=None,
    number_min_probability: float = 0.0,
) -> ContentFindings:
    """Find the moves, identity, reason, asks, the callback number and weak phrases.

    Parameters
    ----------
    transcript : Transcript
        Words with times (s) and probabilities.
    delivery : DeliveryMetrics, optional
        Its speech track gives the pause before the number.
    caller_name, company, callback_number, prospect_name, prospect_company : str, optional
        Context from the rep; found in the words when given, detected when not.
    engine : optional
        The move engine (:func:`vmgrade.content.moves.classifier`); the process's
        default ("auto": embeddings when installed, else the phrase lists) when None.
    number_min_probability : float
        The rubric's ``number_mismatch_min_probability``: a callback number heard on
        words less sure than this is never judged wrong, only unconfirmed.

    Returns
    -------
    ContentFindings
    """
    engine = engine or classifier("auto")
    words = transcript.words
    toks = Tokens.of(words)
    sents = sentences(toks)
    callback = find_callback(words, toks, delivery, callback_number, number_min_probability)
    number_spans = _number_spans(words, sents)
    labelled = _label(engine, sents, number_spans)

    flags = ["identity" in labels for labels, _ in labelled]
    if prospect_name is None:
        prospect_name = detect_prospect(toks, sents, caller_name, company)
    identity = identify(toks, sents, flags, caller_name, company, prospect_name)
    prospect_mentions = mentions(toks, prospect_name)
    company_mentions = mentions(toks, prospect_company)
    own = identity.name_mentions + identity.company_mentions
    for k, s in enumerate(sents):  # the name finder, not the engine, says who was addressed
        labels, scores = labelled[k]
        addressed = any(s.start_s <= m.start_s < s.end_s for m in prospect_mentions)
        if addressed and "prospect" not in labels:
            labels = (*labels, "prospect")
        introduces = any(s.start_s <= m.start_s < s.end_s for m in own)
        if introduces and "reason" in labels and scores["reason"] < engine.threshold("reason"):
            # "facts" read into the caller's garbled introduction ("Crest Porter, Lenin" for
            # Crestwater Linen) are the caller's own names: the introduction, not the reason
            labels = tuple(m for m in labels if m != "reason")
            if "identity" not in labels:
                labels = tuple(m for m in MOVES if m in (*labels, "identity"))
        labelled[k] = (labels, scores)

    moves = tuple(Move(s.text, s.start_s, s.end_s, labels, scores)
                  for s, (labels, scores) in zip(sents, labelled))
    reason, vague, theatre = _reason(sents, labelled, number_spans, identity, prospect_name,
                                     company_mentions)
    asks, soft, keypad = _asks(sents, labelled)
    weak = _weak(toks, sents, labelled)
    generic = [s.as_evidence("generic_pitch") for s, (labels, _) in zip(sents, labelled)
               if "generic_pitch" in labels]
    kept = toks.words
    return ContentFindings(
        identity=identity,
        prospect_name=prospect_name,
        prospect_name_mentions=tuple(prospect_mentions),
        prospect_company=prospect_company,
        prospect_company_mentions=tuple(company_mentions),
        specific_reasons=tuple(e for e in reason.sentences if e.kind == "reason"),
        generic_phrases=tuple(generic),
        asks=tuple(asks),
        soft_asks=tuple(soft),
        callback=callback,
        weak_phrases=tuple(weak),
        low_confidence=tuple(_low_confidence(identity, callback, words, prospect_mentions, company_mentions)),
        word_count=len(kept),
        message_start_s=kept[0].start if kept else 0.0,
        message_end_s=kept[-1].end if kept else 0.0,
        moves=moves,
        reason=reason,
        engine=engine.info,
        vague_reasons=tuple(vague),
        research_theatre=tuple(theatre),
        keypad_prompts=tuple(keypad),
    )


def analyze_text(text: str, **context) -> ContentFindings:
    """:func:`analyze` for a written script (no audio): words get made-up, evenly spaced times.

    ``context`` takes the keyword arguments of :func:`analyze` (``caller_name``…, ``engine``).
    """
    words = tuple(words_from_text(text))
    end = words[-1].end if words else 0.0
    segment = Segment(0.0, end, text, 0.0, 0.0, 1.0, words)
    transcript = Transcript(text, "en", (segment,) if words else (), 0.0, "text", "none")
    return analyze(transcript, None, **context)


def _number_spans(words: Sequence[Word], sents: list[Sentence]) -> list[list[tuple[int, int]]]:
    """Per sentence, the character spans of phone-number read-outs in it (the number parser's)."""
    runs = [r for r in numbers.find_number_runs(words) if len(r.digits) >= PHONE_RUN_MIN_DIGITS]
    out: list[list[tuple[int, int]]] = []
    for s in sents:
        spans = []
        for r in runs:
            if r.start_s < s.end_s and s.start_s < r.end_s:
                a = next((k for k, w in enumerate(s.words) if w.end > r.start_s), 0)
                b = max((k for k, w in enumerate(s.words) if w.start < r.end_s), default=a)
                end = s.starts[b] + len(s.words[b].word.strip())
                spans.append((s.starts[a], end))
        out.append(spans)
    return out


def _label(engine, sents: list[Sentence], number_spans) -> list[tuple[tuple[str, ...], dict[str, float]]]:
    """Each sentence's moves (engine scores over their thresholds; the number parser adds ``number``).

    A sentence the engine leaves without any move, but which carries
    concrete details of several kinds ("Three hospitals in Washington were hit
    by ransomware this fall"), states facts: about the prospect's world it is
    taken as the reason, about what the caller did for others as proof (value).
    """
    all_scores = engine.scores([s.text for s in sents])
    out = []
    for s, scores, spans in zip(sents, all_scores, number_spans):
        made = {m: scores[m] for m in MOVES if scores[m] >= engine.threshold(m)}
        if not any(m in made for m in ASK_MOVES) and PROPOSAL.search(s.text):
            near = [m for m in ASK_MOVES if scores[m] >= NEAR_ASK_SHARE * engine.threshold(m)]
            if IMPERATIVE_ASK.match(s.text):  # "Give me thirty minutes on the floor next week."
                near = list(ASK_MOVES)
            elif any(m in made for m in ("reason", "value")):
                near = []
            if near:  # a plain ask worded as a proposal: its strongest kind
                best = max(near, key=lambda m: scores[m] / engine.threshold(m))
                made[best] = scores[best]
        if spans:
            made.setdefault("number", 1.0)
        ours = len(_OURS.findall(s.text)) > len(SECOND_PERSON.findall(_YOU_KNOW.sub("", s.text)))
        if not set(made) - {"prospect"}:
            kinds = {d.kind for d in find_details(s.text, skip=tuple(spans))}
            if len(kinds) >= FACT_DETAIL_KINDS:
                # facts about what we did for others are proof; about anyone else, the reason
                made["value" if ours else "reason"] = scores["value" if ours else "reason"]
        elif ("value" in made and "reason" not in made and not ours
              and scores["reason"] >= NEAR_REASON_SHARE * engine.threshold("reason")
              and find_details(s.text, skip=tuple(spans))):
            # facts about their world that no "we" claims ("I'm calling about the Delgado trial, set
            # for September ninth"): the reason, which the head half saw
            made["reason"] = scores["reason"]
        out.append((tuple(m for m in MOVES if m in made), made))
    return out


def _reason(sents, labelled, number_spans, identity: Identity, prospect_name, company_mentions):
    """The reason sentences, their concrete details, the proof's details, the vague reasons and the
    research theatre.

    The prospect's company, wherever the name finder heard it (misspelled or
    not: "Ridgely" for Ridgeway), is the reason's anchor, never its evidence:
    a detail is a fact beyond their name.  Proof (a value sentence) counts
    only when tied to the prospect: it names them or speaks to them ("you",
    "your"); the caller's company history is not about the prospect.
    Research theatre is what stands in for a reason when none is concrete: a
    sentence with no fact in it that the engine reads as a reason about the
    prospect (it names them or says "your": "I noticed on your website that
    Harbor Inn is doing some exciting things"), or as a pitch that names them
    ("I did some research and love what Harbor Inn is doing").
    """
    own = tuple(n for n in (identity.caller_name, identity.company, prospect_name) if n)
    heard_own = identity.name_mentions + identity.company_mentions  # however they were transcribed
    details, proof, anchors, evidence, vague, theatre = [], [], [], [], [], []
    for s, (labels, _), spans in zip(sents, labelled, number_spans):
        pitched = "generic_pitch" in labels
        if "reason" not in labels and "value" not in labels and not pitched:
            continue
        theirs = [DetailMention("prospect", m.text, m.start_s, m.end_s) for m in company_mentions
                  if s.start_s <= m.start_s < s.end_s]
        found = facts([DetailMention(d.kind, d.text, *s.span_s(d.start, d.end))
                       for d in find_details(s.text, own_names=own, skip=tuple(spans))
                       if not any(_overlaps(s.span_s(d.start, d.end), t) for t in (*theirs, *heard_own))])
        named = bool(theirs or "prospect" in labels)
        about_them = named or bool(SECOND_PERSON.search(_YOU_KNOW.sub("", s.text)))
        # a reason-shaped sentence about them, or a pitch that names them ("I love what Harbor Inn is
        # doing"); a pitch that only says "companies like yours" is the plain generic pitch it is
        weak = "filler_talk" in labels or "hedge" in labels  # "just checking in": weak, not theatre
        if not found and not weak and (("reason" in labels and about_them) or (pitched and named)):
            theatre.append(s.as_evidence("research_theatre"))
        if "reason" in labels:
            anchors.extend(theirs)
            details.extend(found)
            (evidence if found else vague).append(s.as_evidence("reason" if found else "vague_reason"))
        elif "value" in labels and about_them:
            proof.extend(found)
    specificity = "concrete" if details else ("vague" if vague else "none")
    if details:  # a concrete reason's follow-on sentences elaborate it; they are not vague reasons
        evidence += [replace(e, kind="reason_support") for e in vague]
        vague, theatre = [], []
    reason = Reason(tuple(evidence + vague), tuple(details), tuple(proof), specificity, tuple(anchors))
    return reason, vague, theatre


def _overlaps(span: tuple[float, float], m) -> bool:
    """Whether the time span (s) overlaps mention ``m`` ("St. Brendan's" and the name "Brendan's")."""
    return span[0] < m.end_s and m.start_s < span[1]


def _asks(sents, labelled) -> tuple[list[Evidence], list[Evidence], list[Evidence]]:
    """One ask per asking sentence (its strongest kind), all of them when it offers a choice ("or");
    the soft asks; and the keypad prompts ("press one…"), which are never asks."""
    asks, soft, keypad = [], [], []
    meeting = False  # a meeting was asked for in an earlier sentence
    for k, (s, (labels, scores)) in enumerate(zip(sents, labelled)):
        if phrases.KEYPAD_PROMPT.search(s.text):
            keypad.append(s.as_evidence("keypad_prompt"))
            continue
        kinds = [m for m in ASK_MOVES if m in labels]
        if not kinds:
            continue
        if not (len(kinds) > 1 and _OR.search(s.text)):
            kinds = [max(kinds, key=lambda m: scores[m])]
        cues_number = "number" in labels or (k + 1 < len(labelled) and "number" in labelled[k + 1][0])
        if kinds == ["ask_callback"] and meeting and cues_number:
            # "Can I swing by Wednesday? Call me at 971…": how to book the meeting, not a second ask
            continue
        meeting = meeting or "ask_meeting" in kinds
        for m in kinds:
            asks.append(s.as_evidence(m.removeprefix("ask_")))
        if ("hedge" in labels and HEDGE_WORDS.search(s.text)) or phrases.SOFT_ASK.search(
                phrases.normalize(s.text)):
            soft.append(s.as_evidence("soft_ask"))
    return asks, soft, keypad


def _weak(toks: Tokens, sents, labelled) -> list[Evidence]:
    """Hedges and apologies (outside an ask, where they make it soft), filler talk, dumps,
    and the exact weak phrases a trainer always flags ("just checking in")."""
    found: list[Evidence] = []
    exact = toks.find_all(phrases.WEAK_PHRASE_PATTERNS)
    # "sorry to bother" already covers its "sorry"
    exact = [e for e in exact if not (e.kind == "apology" and any(
        o.kind == "sorry_to_bother" and o.start_s <= e.start_s <= o.end_s for o in exact))]
    for s, (labels, _) in zip(sents, labelled):
        asking = any(m in labels for m in ASK_MOVES)
        inside = [e for e in exact if s.start_s <= e.start_s < s.end_s]
        if inside and not (asking and all(e.kind in _ASK_HEDGES for e in inside)):
            found.extend(inside)  # the exact phrase says best what to cut
            continue
        for move in ("filler_talk", "dump") + (() if asking else ("hedge",)):
            if move in labels:
                found.append(s.as_evidence(move))
                break
    return sorted(found, key=lambda e: e.start_s)


_ASK_HEDGES = frozenset({"get_back_when_you_can", "if_interested"})  # a soft ask, reported as such


def _low_confidence(identity: Identity, callback: Callback, words: Sequence[Word],
                    prospect_mentions: Sequence[Mention] = (),
                    company_mentions: Sequence[Mention] = ()) -> list[Evidence]:
    """Name, company and number words Whisper was unsure of, or heard as another word that sounds
    alike (a name matched by sound: said, but hard to transcribe)."""
    out = []
    for kind, found in (("caller_name", identity.name_mentions), ("company", identity.company_mentions)):
        for m in found:
            if m.probability < LOW_PROBABILITY or m.by_sound:
                out.append(Evidence(kind, m.text, m.start_s, m.end_s))
    for kind, found in (("prospect_name", prospect_mentions), ("prospect_company", company_mentions)):
        out += [Evidence(kind, m.text, m.start_s, m.end_s) for m in found if m.by_sound]
    for m in callback.mentions:
        if m.min_probability < LOW_PROBABILITY or m.garbled:
            out.append(Evidence("callback_number", m.digits, m.start_s, m.end_s))
    # the same words garbled twice are one thing to say more clearly, reported at their first saying
    seen: set[tuple[str, str]] = set()
    kept = []
    for e in out:
        if (e.kind, e.text.lower()) not in seen:
            seen.add((e.kind, e.text.lower()))
            kept.append(e)
    return kept
