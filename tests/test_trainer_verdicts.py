"""A grade a trainer would sign: research theatre, plain asks, fair number verdicts, names by sound,
identity without context.

These are the behaviours the grade must have, each on the case that showed it; the held-out split
that checks they generalise (``samples/validity_trainer/``, written apart from the detectors) is
graded by tests/test_validity.py and bench/validity_trainer.py, the number verdict on numbers said
in many styles by bench/numbers_said.py.
"""

from __future__ import annotations

import pytest

from vmgrade import scoring
from vmgrade.asr.transcribe import Segment, Transcript, Word
from vmgrade.content import analyze, analyze_text, moves
from vmgrade.content.callback import asr_slip, number_status
from vmgrade.content.details import find_details
from vmgrade.content.findings import NumberMention
from vmgrade.content.identity import sounds_like

CONTEXT = dict(caller_name="Dana Whitfield", company="Keystone Linen", callback_number="5035550142",
               prospect_company="Harbor Inn")
INTRO = "Hi Tom, this is Dana Whitfield with Keystone Linen. "
NUMBER = ("My number is five oh three, five five five, oh one four two. "
          "Again, five oh three, five five five, oh one four two.")
THEATRE = (INTRO + "I noticed on your website that Harbor Inn is doing some exciting things, and "
           "congratulations on all the recent growth. I did some research on Harbor Inn and I love what "
           "you're doing. Could we set up fifteen minutes on Thursday? " + NUMBER)
ORDINARY = (INTRO + "Your new wing at the Harbor Inn opens in May. Could we set up fifteen minutes on "
            "Thursday, if you get a chance? My number is five oh three, five five five, oh one four two.")
EXCELLENT = (INTRO + "The Harbor Inn's new wing opens in May with sixty-four more rooms, and the dental "
             "conference fills the town that first week. Worth twenty minutes at your laundry Thursday to "
             "look at the par levels. " + NUMBER)


@pytest.fixture(scope="module")
def engine():
    return moves.classifier("embedding")


def content_score(text, engine, **context):
    return scoring.content_score(analyze_text(text, engine=engine, **context))


def findings(text, engine, **context):
    c = analyze_text(text, engine=engine, **context)
    dims = {k: scoring._Dimension(k, scoring.load_rubric()) for k in ("relevance", "call_to_action")}
    scoring._relevance(dims["relevance"], c, scoring.load_rubric())
    scoring._call_to_action(dims["call_to_action"], c, scoring.load_rubric())
    return c, {f[0] for d in dims.values() for f in d.findings}


# --- specificity: facts beyond the name ----------------------------------------------------------

def test_their_name_is_the_anchor_not_the_evidence(engine):
    c = analyze_text(INTRO + "I was looking at Harbor Inn and I think we could help Harbor Inn a lot.",
                     engine=engine, **CONTEXT)
    assert not c.reason.details
    assert c.reason.specificity != "concrete"


def test_research_theatre_is_flagged_and_scores_below_a_real_reason(engine):
    c, codes = findings(THEATRE, engine, **CONTEXT)
    assert "research_theatre" in codes and c.research_theatre
    assert not c.reason.details
    theatre = content_score(THEATRE, engine, **CONTEXT)
    # the ordinary message says its number once and hedges its ask, and still wins on its one fact
    assert content_score(ORDINARY, engine, **CONTEXT) > theatre
    assert content_score(EXCELLENT, engine, **CONTEXT) >= theatre + 10


def test_a_concrete_reason_is_never_theatre(engine):
    c, codes = findings(EXCELLENT, engine, **CONTEXT)
    assert c.reason.specificity == "concrete" and not c.research_theatre
    assert "research_theatre" not in codes and "vague_reason" not in codes


@pytest.mark.parametrize("text", [
    "This is an important message regarding your order number four seven two one.",
    "Your reference code is 88213.",
    "You have three items pending in your account.",
    "Press one now to speak to a specialist.",
])
def test_codes_keys_and_bare_counts_are_not_details(text):
    assert [d for d in find_details(text) if d.kind == "count"] == []


def test_meaningful_counts_and_calendar_anchors_are_details():
    kinds = {d.kind for d in find_details("Demand charges went up eighteen percent before the inspection.")}
    assert {"count", "date"} <= kinds


def test_a_keypad_prompt_is_never_an_ask(engine):
    scam = ("This is an important message regarding your order number four seven two one. You have three "
            "items pending. Press one now to speak to a specialist.")
    c, codes = findings(scam, engine)
    assert c.ask_count == 0 and c.keypad_prompts
    assert "no_call_to_action" in codes
    assert content_score(scam, engine) < content_score(THEATRE, engine, **CONTEXT) - 30


def test_concrete_lines_without_numbers_or_capitals_are_not_generic(engine):
    c, codes = findings(INTRO + "The first month of sheets and towels can be folded on your shelves before "
                        "soft opening.", engine, **CONTEXT)
    assert "generic_pitch" not in codes


# --- asks by meaning -----------------------------------------------------------------------------

@pytest.mark.parametrize("ask", [
    "Worth twenty minutes at your shop Thursday to look them over.",
    "Ring me back before Friday.",
    "Let's grab fifteen minutes Tuesday morning.",
])
def test_plain_asks_without_a_question_mark(engine, ask):
    c = analyze_text(INTRO + ask, engine=engine, **CONTEXT)
    assert c.ask_count == 1, [m.moves for m in c.moves]


def test_a_statement_with_a_date_is_not_an_ask(engine):
    c = analyze_text(INTRO + "Your new wing opens on Thursday the ninth.", engine=engine, **CONTEXT)
    assert c.ask_count == 0


# --- a fair number verdict -----------------------------------------------------------------------

def mention(digits, probability=0.9):
    return NumberMention(digits, (digits,), 1.0, 4.0, 2.0, 300.0, True, False, probability)


@pytest.mark.parametrize("heard,status", [
    (("5035550142",), "match"),
    (("5035550142", "503555142"), "match"),          # one saying right, one with the "oh" dropped
    (("503555142",), "unconfirmed"),                 # an "oh" dropped
    (("5035551142",), "unconfirmed"),                # "oh one" heard as 11
    (("5035550142", "5035550124"), "match"),
    (("5035550124", "5035550172"), "unconfirmed"),   # the sayings disagree, near the rep's number
    (("4155550199", "415555199"), "mismatch"),       # they disagree, but neither is near it
    (("5035550124", "5035550124"), "mismatch"),      # both agree on another number, confident words
    (("4155550199",), "mismatch"),
])
def test_number_verdict(heard, status):
    assert number_status([mention(h) for h in heard], "5035550142", 0.5)[0] == status


def test_uncertain_words_never_make_a_mismatch():
    status, note = number_status([mention("5035550124", 0.3)], "5035550142", 0.5)
    assert status == "unconfirmed" and "unsure" in note and "only saying" in note
    status, _ = number_status([mention("5035550124", 0.3), mention("5035550124", 0.2)], "5035550142", 0.5)
    assert status == "unconfirmed"
    # a second saying heard the same on sure words corroborates the unsure one
    status, _ = number_status([mention("5035550124", 0.3), mention("5035550124", 0.8)], "5035550142", 0.5)
    assert status == "mismatch"


def test_an_asr_slip_never_caps_the_grade(engine):
    text = INTRO + "Your new wing opens in May with forty rooms. Could we talk Thursday? " + \
        "My number is five oh three, five five five, one one four two."  # "oh one" written as "one one"
    c = analyze_text(text, engine=engine, **CONTEXT)
    assert c.callback.status == "unconfirmed" and c.callback.matches_expected is None
    _, codes = findings(text, engine, **CONTEXT)
    assert "number_mismatch" not in codes and "number_unconfirmed" in codes
    assert scoring.content_score(c) > scoring.load_rubric().t("number_mismatch_max_score")


def test_a_mismatch_stands_only_when_a_second_listen_hears_it_again():
    from vmgrade.content import recheck
    from vmgrade.content.findings import Callback

    wrong = mention("7135500174")
    cb = Callback("7135500174", "7135550174", False, (wrong,), status="mismatch", note="heard 7135500174")
    again = recheck(cb, ["seven one three, five five oh, oh one seven four"])
    assert again.status == "mismatch" and again.matches_expected is False
    other = recheck(cb, ["five five oh one seven four five"])
    assert other.status == "unconfirmed" and other.matches_expected is None and "disagree" in other.note
    # the second listen hears the wrong number with its last digit lost: still not the rep's, it stands
    assert recheck(cb, ["seven one three, five five oh, oh one seven"]).status == "mismatch"
    # ... but one that could be the rep's number with a "5" dropped corroborates nothing
    assert recheck(cb, ["seven one three, five five, oh one seven four"]).status == "unconfirmed"
    assert recheck(cb, ["seven one three, five five five, oh one seven four"]).status == "match"


def test_asr_slips_are_named():
    assert "zero" in asr_slip("5035551142", "5035550142")
    assert "fourteen" in asr_slip("6405550183", "6145550183")  # "six fourteen" heard as "six forty"
    assert asr_slip("6415550183", "6145550183") is None
    assert asr_slip("5035550124", "5035550142") is None


# --- names by sound ------------------------------------------------------------------------------

@pytest.mark.parametrize("heard,name,same", [
    ("prairie", "priya", True), ("demetri", "dmitri", True), ("ridgely", "ridgeway", True),
    ("maria", "priya", False), ("prior", "prairie", True), ("in", "inn", False), ("mike", "mark", False),
])
def test_sounds_like(heard, name, same):
    assert sounds_like(heard, name) is same


def words_of(text: str, probability: float = 0.95) -> Transcript:
    ws = [Word(" " + t, 0.4 * k, 0.4 * k + 0.35, probability) for k, t in enumerate(text.split())]
    return Transcript(text, "en", (Segment(0.0, ws[-1].end, text, -0.2, 0.01, 1.0, tuple(ws)),), 0.0,
                      "openai-whisper", "base")


def test_a_misheard_name_was_said_but_hard_to_transcribe():
    c = analyze(words_of("Hi Tom, this is Prairie with Tandem Freight, prior to the rush."),
                caller_name="Priya Raman", company="Tandem Freight")
    (m,) = c.identity.name_mentions  # "prior" is lower case: an ordinary word, not the name
    assert m.text.startswith("Prairie") and m.by_sound
    assert any(e.kind == "caller_name" for e in c.low_confidence)
    dim = scoring._Dimension("opening", scoring.load_rubric())
    scoring.content_checks._opening(dim, c, scoring.load_rubric(), 0.0, 20.0)
    assert "no_caller_name" not in {f[0] for f in dim.findings}


def test_a_name_in_the_introduction_is_the_context_name_transcribed_otherwise():
    c = analyze_text("Hi Daniel, this is Shivon with Crestwater Linen. Call me back.",
                     caller_name="Siobhan Kearney", company="Crestwater Linen")
    (m,) = c.identity.name_mentions
    assert m.text == "Shivon" and m.by_sound and c.identity.caller_name == "Siobhan Kearney"


# --- identity without context --------------------------------------------------------------------

@pytest.mark.parametrize("text,name,company", [
    ("This is a message from the Social Security Department. Your benefits are suspended.", None,
     "Social Security Department"),
    ("This is ExpressScripts, your pharmacy benefit manager.", None, "ExpressScripts"),
    ("Hey, this is Sam at oh seven nine six six, five five five, one two three. Call me back.", "Sam", None),
    ("hey this is sam at oh seven nine six six five five five one two three call me back", "sam", None),
])
def test_identity_without_context(text, name, company):
    ident = analyze_text(text).identity
    assert (ident.caller_name, ident.company) == (name, company)


def test_digits_are_never_the_company():
    c = analyze_text("This is Sam at 07966 555 123. Call me back.")
    assert c.identity.caller_name == "Sam" and c.identity.company is None
