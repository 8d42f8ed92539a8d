"""The content checks: opening and identity, relevance and the reason, the call to action and
the callback number, and what was hard to transcribe.  Each writes into its dimension
(:class:`~vmgrade.scoring.grade._Dimension`), reading every threshold from the rubric."""

from __future__ import annotations

import re

from ..content import ContentFindings
from .grade import Finding, _Dimension, past
from .grade import clock as _clock
from .rubric import Rubric

# Relevance: each generic or weak phrase costs a third of its check, so three
# of them lose it all (one slip is forgiven more than a habit).
PHRASE_PENALTY = 0.34
# The ask: one extra ask or a hedged ask keeps 60% (the listener still knows
# roughly what to do); two or more extra asks keep 30% (they do not).
EXTRA_ASK_CREDIT = 0.6
MANY_ASKS_CREDIT = 0.3
SOFT_ASK_CREDIT = 0.6
# The reason: one concrete detail keeps 75% of the check.  Their company's name is never a
# detail (a mail merge fills it in), so one detail is one real fact about them: research a
# trainer rewards, short of the full picture.  A reason-shaped sentence with no detail keeps
# nothing, as the generic pitch it is, and so does research theatre (praise for them standing in
# for the reason).  With no reason sentence, an offer or proof tied to them and as detailed as a
# full reason keeps 70% (the specifics are there, framed as what we do), a thinner one 30%.
PARTIAL_REASON_CREDIT = 0.75
DETAILED_PROOF_CREDIT = 0.7
PROOF_ONLY_CREDIT = 0.3
QUOTE_CHARS = 70  # evidence quoted in a finding is cut to this many characters
# Opening: a name or company said, but after the opening window, keeps 30%
# (it was heard, but after the listener decided whether to keep listening).
LATE_IDENTITY_CREDIT = 0.3


def _opening(dim: _Dimension, c: ContentFindings, r: Rubric, start: float, end: float) -> None:
    window, closing = r.t("opening_window_s"), r.t("closing_window_s")
    ident = c.identity
    for check, label, first in (("name_early", "name", ident.name_first_s),
                                ("company_early", "company", ident.company_first_s)):
        if first is None:
            dim.check(check, 0.0, finding=(f"no_{'caller_name' if label == 'name' else 'company'}", "major",
                                            f"Say your {label} at the start: the listener never heard it.",
                                            start, min(end, start + window)))
        elif first - start <= window:
            dim.check(check, 1.0, strength=f"Your {label} came early, at {_clock(first)}.")
        else:
            dim.check(check, LATE_IDENTITY_CREDIT, finding=(
                f"late_{'caller_name' if label == 'name' else 'company'}", "major",
                f"Your {label} came only {past(first - start, window)} s in (at {_clock(first)}): say it "
                f"in the first {window:g} s.",
                first, first + 1.0))
    late = [m for m in ident.name_mentions + ident.company_mentions if m.start_s >= end - closing]
    early_only = all(m.start_s - start <= window for m in late) and end - start <= window + closing
    if late and not early_only:
        dim.check("identity_repeated", 1.0,
                  strength=f"You repeated who you are at the end ({_clock(late[0].start_s)}).")
    else:
        dim.check("identity_repeated", 0.0, finding=(
            "identity_not_repeated", "minor",
            "Repeat your name and company at the end, with the number, so they stick.",
            max(start, end - closing), end))


def _reason(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    """The reason earns its points by concrete details tied to the prospect, not by its shape."""
    reason = c.reason
    found = _distinct(reason.details) if reason else []
    need = int(r.t("reason_specific_details"))
    if c.specific_reasons and len(found) >= need:
        e = c.specific_reasons[0]
        details = ", ".join(f"{d.text} ({d.kind})" for d in found[:4])
        dim.check("specific_reason", 1.0,
                  strength=f"A specific reason tied to them at {_clock(e.start_s)}: {details}.")
    elif c.specific_reasons:
        e = c.specific_reasons[0]
        d = found[0]
        dim.check("specific_reason", PARTIAL_REASON_CREDIT, finding=(
            "thin_reason", "minor",
            f"Your reason (\"{_quote(e.text)}\") has one concrete detail ({d.text}): add another — a "
            "place, a number, a date, a peer they know — so it could only be about them.",
            e.start_s, e.end_s))
    elif c.research_theatre:
        e = c.research_theatre[0]
        dim.check("specific_reason", 0.0, finding=(
            "research_theatre", "major",
            f"\"{_quote(e.text)}\" sounds like research but says nothing they could check: drop the "
            "praise and name one real fact about them — their news, a number, a date, a place, a "
            "product, a peer — in plain words.", e.start_s, e.end_s))
    else:
        proof = _distinct(reason.proof_details) if reason else []
        vague = c.vague_reasons
        if vague:
            e = vague[0]
            code, message, where = "vague_reason", (
                f"Your reason (\"{_quote(e.text)}\") has a reason's shape but nothing concrete about them: "
                "say what you saw — their news, a place, a number, a date — in plain words."), (
                e.start_s, e.end_s)
        else:
            code, message, where = "no_specific_reason", (
                "Give a reason tied to their business — news, a trigger event, something on their website — "
                "instead of a general pitch."), (None, None)
        credit = DETAILED_PROOF_CREDIT if len(proof) >= need else (PROOF_ONLY_CREDIT if proof else 0.0)
        dim.check("specific_reason", credit, finding=(code, "major", message, *where))


def _distinct(details) -> list:
    """Details with distinct words ("March" said twice is one detail)."""
    seen, out = set(), []
    for d in details:
        key = re.sub(r"['’]s$", "", d.text.lower().strip(" ,."))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split()).strip(",. ")
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _relevance(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    if c.prospect_name_mentions:
        dim.check("prospect_named", 1.0, strength=f"You addressed {c.prospect_name} by name.")
    else:
        dim.check("prospect_named", 0.0, finding=(
            "prospect_not_named", "minor",
            "Open with the prospect's name: it shows the message is for them, not a blast.",
            c.message_start_s, c.message_start_s + 1.0))
    _reason(dim, c, r)
    generic = list(c.generic_phrases) + [e for e in c.vague_reasons
                                         if not any(g.start_s == e.start_s for g in c.generic_phrases)]
    generic.sort(key=lambda e: e.start_s)
    if generic:
        e = generic[0]
        quoted = ", ".join(f'"{_quote(g.text)}"' for g in generic[:3])
        dim.check("no_generic_pitch", 1.0 - PHRASE_PENALTY * len(generic), finding=(
            "generic_pitch", "major" if not c.specific_reasons else "minor",
            f"Generic pitch ({quoted}): swap it for one concrete fact about them, or a result you got "
            "for a company like theirs.", e.start_s, generic[-1].end_s))
    else:
        dim.check("no_generic_pitch", 1.0, strength="No generic sales language.")
    weak = c.weak_phrases
    if weak:
        e = weak[0]
        quoted = ", ".join(f'"{_quote(w.text)}" ({_clock(w.start_s)})' for w in weak[:3])
        dim.check("no_weak_phrases", 1.0 - PHRASE_PENALTY * len(weak), finding=(
            "weak_phrase", "major",
            f"Cut weak or filler phrases: {quoted}. Lead with why they should call back.",
            e.start_s, weak[-1].end_s))
    else:
        dim.check("no_weak_phrases", 1.0, strength="No \"just checking in\" or apologies.")


def _call_to_action(dim: _Dimension, c: ContentFindings, r: Rubric) -> None:
    n = c.ask_count
    target = int(r.t("asks_target"))
    if n == 0 and c.keypad_prompts:
        k = c.keypad_prompts[0]
        dim.check("one_clear_ask", 0.0, finding=(
            "no_call_to_action", "critical",
            f"\"{_quote(k.text)}\" is a recorded call's prompt, not an ask: nobody can press a key on a "
            "voicemail. Ask them to call you back, and say when.", k.start_s, k.end_s))
    elif n == 0:
        dim.check("one_clear_ask", 0.0, finding=(
            "no_call_to_action", "critical",
            "End with one clear ask: \"Could you call me back to book 15 minutes on Thursday?\"",
            c.message_end_s - 3.0 if c.message_end_s > 3 else 0.0, c.message_end_s))
    elif n > target:
        first = c.asks[0]
        kinds = ", ".join(c.ask_kinds)
        dim.check("one_clear_ask", EXTRA_ASK_CREDIT if n == target + 1 else MANY_ASKS_CREDIT, finding=(
            "too_many_asks", "major",
            f"You made {n} different asks ({kinds}): pick one, so the listener knows what to do.",
            first.start_s, c.asks[-1].end_s))
    elif c.soft_asks:
        s = c.soft_asks[0]
        dim.check("one_clear_ask", SOFT_ASK_CREDIT, finding=(
            "soft_ask", "minor",
            f"Your ask is hedged (\"{_quote(s.text)}\"): propose a time instead.", s.start_s, s.end_s))
    else:
        a = c.asks[0]
        dim.check("one_clear_ask", 1.0,
                  strength=f"One clear ask (\"{_quote(a.text)}\" at {_clock(a.start_s)}).")

    cb = c.callback
    number_checks = ("number_said", "number_twice", "number_slow", "number_chunked", "number_cued")
    if cb.expected and cb.digits and cb.matches_expected is False:
        where = (cb.mentions[0].start_s, cb.mentions[0].end_s) if cb.mentions else (None, None)
        dim.check("number_said", 0.0, finding=(
            "number_mismatch", "critical",
            f"The number you said ({_fmt(cb.digits)}) is not your callback number ({_fmt(cb.expected)}): "
            "the prospect cannot reach you." + (f" ({cb.note}.)" if cb.note else ""), *where))
        for name in number_checks[1:]:
            dim.check(name, 0.0)
        return
    if cb.status == "unconfirmed" and cb.mentions:
        m = cb.mentions[0]
        # an ASR slip or uncertain words: said, may be right, never capped (the rep did nothing wrong
        # that we can show), but worth a listen
        dim.findings.append(("number_unconfirmed", "minor",
                             f"Your number could not be confirmed: {cb.note}.", m.start_s, m.end_s, 0.0))
    if not cb.mentions:
        dim.check("number_said", 0.0, finding=(
            "no_callback_number", "critical",
            "Leave your callback number — slowly, in groups (3-3-4), and twice.", None, None))
        for name in number_checks[1:]:
            dim.check(name, 0.0)
        return
    first = cb.mentions[0]
    dim.check("number_said", 1.0)
    times_target = int(r.t("number_times_target"))
    max_dps = r.t("number_max_digits_per_s")
    fastest = max(cb.mentions, key=lambda m: m.digits_per_s)
    if cb.times_said >= times_target:
        dim.check("number_twice", 1.0, strength=f"You said your number {cb.times_said} times.")
    else:
        dim.check("number_twice", 0.0, finding=(
            "number_once", "major",
            f"You said your number once, at {first.digits_per_s:.1f} digits/s: say it twice"
            + (", slower" if first.digits_per_s > max_dps else "")
            + " (start and end, or twice at the end).", first.start_s, first.end_s))
    if fastest.digits_per_s <= max_dps:
        dim.check("number_slow", 1.0, strength=f"Your number was slow enough to write down "
                                                f"({fastest.digits_per_s:.1f} digits/s).")
    else:
        dim.check("number_slow", 1.0 - (fastest.digits_per_s - max_dps) / max_dps, finding=(
            "number_fast", "major",
            f"Your number went by at {past(fastest.digits_per_s, max_dps, 1)} digits/s: slow to about "
            f"{max_dps:g}, "
            "a pause between groups.", fastest.start_s, fastest.end_s))
    unchunked = [m for m in cb.mentions if not m.chunked]
    if not unchunked:
        dim.check("number_chunked", 1.0, strength="You chunked the number (3-3-4).")
    else:
        m = unchunked[0]
        dim.check("number_chunked", 1.0 - len(unchunked) / cb.times_said, finding=(
            "number_not_chunked", "minor",
            "Say the number in groups with a short pause between them: 415 … 555 … 0198.",
            m.start_s, m.end_s))
    cued = first.cued or (first.pause_before_ms or 0.0) >= r.t("number_min_pause_before_ms")
    if cued:
        dim.check("number_cued", 1.0)
    else:
        dim.check("number_cued", 0.0, finding=(
            "number_not_cued", "minor",
            "Cue the number (\"my number is…\") and pause before it, so they are ready to write.",
            first.start_s, first.end_s))


def _transcribability(c: ContentFindings) -> list[Finding]:
    out = []
    labels = {"caller_name": "your name", "company": "your company name", "callback_number": "your number",
              "prospect_name": "their name", "prospect_company": "their company's name"}
    dimensions = {"callback_number": "call_to_action", "prospect_name": "relevance",
                  "prospect_company": "relevance"}
    for e in c.low_confidence:
        out.append(Finding(
            "hard_to_transcribe", "minor", dimensions.get(e.kind, "opening"),
            f"{labels.get(e.kind, e.kind).capitalize()} (\"{e.text.strip(',.')}\") was hard to transcribe: "
            "a phone's voicemail-to-text would garble it too. Say it slower and clearer.",
            e.start_s, e.end_s, 0.0))
    return out


def _fmt(digits: str) -> str:
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return digits
