"""The phrase lists: exact wordings, kept where they add precision, and the
fallback move engine when the sentence-embedding model is not installed.

The sentence-embedding head (:mod:`vmgrade.content.moves`) carries the
judgement of what a sentence does.  These patterns are the older, narrower
view: they see stock wordings only ("I saw", "call me back").  They still
serve three jobs: the fallback engine (``content.engine.name == "phrases"``),
the exact weak phrases a trainer always flags ("just checking in"), and the
benchmark's side-by-side figures (``bench/content_moves.py``).

Patterns run on lower-case text with punctuation removed (see ``normalize``).
"""

from __future__ import annotations

import re

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
    ("callback", r"\b(?:call me(?: back)?|give me a (?:call|ring|buzz|shout)|get back to me|"
                 r"(?:you )?(?:can|could) (?:reach|call) me|ring me)\b"),
    ("let_me_know", r"\blet me know\b"),
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
# A recorded call's keypad prompt ("press one to speak to a specialist"): a prospect listening to
# a voicemail has nothing to press, so it is never an ask a rep's message makes.
KEYPAD_PROMPT = re.compile(
    r"\b(?:press|dial|push)\s+(?:the\s+)?(?:one|two|three|four|five|six|seven|eight|nine|zero|star|pound|"
    r"hash|\d)\b", re.IGNORECASE)
NUMBER_CUE = re.compile(
    r"\b(?:my (?:number|cell|direct line|phone)(?: is)?|(?:reach|call|text) me (?:at|on)|"
    r"number is|you can reach me|at|again|that's|it's|is)$"
)


GREETING = re.compile(r"^(?:hi|hey|hello|hiya|good (?:morning|afternoon|evening)|greetings)\b")
SIGNOFF = re.compile(r"\b(?:thanks|thank you|bye|goodbye|talk (?:soon|to you soon)|take care|cheers|"
                     r"have a (?:good|great|nice) (?:day|one|weekend|afternoon))\b")
FILLER_TALK_KINDS = frozenset({"just_checking_in", "touching_base", "following_up", "reaching_out"})
HEDGE_KINDS = frozenset({"sorry_to_bother", "apology", "get_back_when_you_can", "if_interested"})
ASK_MOVES = {"callback": "ask_callback", "let_me_know": "ask_other", "meeting": "ask_meeting",
             "question": "ask_meeting",
             "email": "ask_email", "text": "ask_text", "website": "ask_other"}


# Pattern kinds whose hits made the move at least 90% of the time, over at least 3 hits, on the
# TRAINING split of samples/moves (the held-out split is for bench/content_moves.py only).  Where
# one fires, the embedding engine takes the move as made (content.moves.EmbeddingMoves); the
# looser kinds ("meeting" 79%, "solutions" 68%, "previous_contact" 56%, "let me know" 8% as a
# callback) are left to the head.
PRECISE_KINDS = frozenset({
    "callback", "question", "email", "text", "website",
    "companies_like_yours", "leading_provider", "buzzwords",
    "just_checking_in", "touching_base", "following_up", "sorry_to_bother", "apology", "if_interested",
    "saw_or_read", "their_news", "congratulations", "referral", "their_plans",
})  # fmt: skip


def normalize(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes, $, & and hyphens kept), spaces collapsed."""
    return " ".join(t for t in (re.sub(r"[^a-z0-9$'&\-]+", "", w.lower()).strip("-'")
                                for w in text.split()) if t)


def phrase_moves(text: str, *, precise_only: bool = False) -> dict[str, float]:
    """The moves a sentence makes by the phrase lists alone: {move: 1.0} for each pattern family hit.

    ``precise_only``: only the kinds in :data:`PRECISE_KINDS` (and the
    greeting, self-introduction and sign-off patterns).  ``number`` is left to
    the number parser and ``prospect`` to the name finder, as in the embedding engine.
    """
    t = normalize(text)
    found: dict[str, float] = {}

    def hit(move: str, kind: str | None = None) -> None:
        if not precise_only or kind is None or kind in PRECISE_KINDS:
            found[move] = 1.0

    if GREETING.search(t):
        hit("greeting")
    if SELF_INTRO.search(t):
        hit("identity")
    if SIGNOFF.search(t):
        hit("signoff")
    for kind, p in SPECIFIC_REASON_PATTERNS:
        if re.search(p, t):
            hit("reason", kind)
    for kind, p in GENERIC_PITCH_PATTERNS:
        if re.search(p, t):
            hit("generic_pitch", kind)
    for kind, p in WEAK_PHRASE_PATTERNS:
        if re.search(p, t):
            hit("filler_talk" if kind in FILLER_TALK_KINDS else "hedge", kind)
    if SOFT_ASK.search(t):
        hit("hedge", "soft_ask")
    for kind, p in ASK_PATTERNS:
        if re.search(p, t):
            hit(ASK_MOVES[kind], kind)
    listed = FEATURE_LIST_PATTERN.search(t) and text.count(",") >= FEATURE_LIST_MIN_ITEMS
    if PRICE_PATTERN.search(t) or listed:
        hit("dump", "dump")
    return found
