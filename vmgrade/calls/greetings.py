"""Greetings by meaning: which of a recording's sentences are a mailbox greeting, not the rep.

A mailbox greeting says that nobody can answer and how to leave a message, in
any words: "you've reached Dana", "thanks for calling Northfield, we're all
out on jobs", "the subscriber you have dialled is unavailable", "state your
name and reason for calling".  A phrase list misses most of them, so each
sentence is embedded with the sentence model the content stage ships
(all-MiniLM-L6-v2, passed in as ``encode``) and compared with two sets of
examples written for this purpose: greetings and announcements, and what
callers say in messages (sales, personal, business).  A sentence is a
greeting when its nearest greeting examples are clearly nearer than its
nearest message examples (:data:`GREETING_MIN_MARGIN`).  Without the model
the phrase cues of :mod:`vmgrade.calls.words` decide.

:func:`sentence_labels` labels the sentences; :func:`leading_greeting`
finds where a greeting at the head of the file ends.  Figures: docs/calls.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..transcript import Word
from .words import GREETING_CUES, _cue_end_indices, normalise_word

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
TOP_K = 3  # a sentence's score is the mean similarity to its TOP_K nearest examples of each side
# A sentence is greeting when the greeting side is nearer by at least GREETING_MIN_MARGIN (cosine),
# message when the message side is nearer by at least MESSAGE_MIN_MARGIN, else it could be either
# ("Hey, this is Marcus Bell." opens greetings and messages alike).  Tuning: 124 message sentences of
# the samples' scripts scored <= 0.024; the 12 greeting sentences of the committed prompts 0.015-0.28,
# the two below 0.04 being such openers and closers.
GREETING_MIN_MARGIN = 0.04
MESSAGE_MIN_MARGIN = 0.03
MIN_SENTENCE_WORDS = 2  # "Hi." alone says nothing either way: it takes its neighbours' side
LEADING_WINDOW_S = 40.0  # a greeting at the head of a file ends within this
SENTENCE_END = (".", "?", "!")
ROUND = 3

GREETING_EXAMPLES = (
    "Hi, you've reached Tom, I can't come to the phone right now.",
    "You have reached the voicemail of Sarah Jones.",
    "Please leave your name and number and I'll get back to you.",
    "Leave a message after the tone.",
    "I'm away from my desk at the moment.",
    "Sorry I missed your call.",
    "Thanks for calling Riverside Dental, our office is currently closed.",
    "Our business hours are Monday through Friday, nine to five.",
    "If this is an emergency, please hang up and dial 911.",
    "The person you are calling is not available.",
    "The number you have dialled is not in service.",
    "The mailbox is full and cannot accept any new messages.",
    "The subscriber cannot be reached at this time.",
    "Your call has been forwarded to an automatic voice message system.",
    "At the tone, please record your message.",
    "When you have finished recording, you may hang up or press pound for more options.",
    "Please state your name and the reason for your call.",
    "This call is being screened, say who you are and why you're calling.",
    "Nobody is here to take your call, we'll ring you back as soon as we can.",
    "We're all out of the office today.",
    "Hey, it's Mike, you know what to do.",
    "I'm either on the other line or out of the office.",
    "Your call is important to us, please stay on the line.",
    "You have reached the sales department of Acme Corporation.",
    "To speak to an operator, press zero.",
    "I'll return your call as soon as possible.",
    "I am on vacation until Monday with limited access to email.",
    "For urgent matters, please contact my colleague at extension two oh four.",
    "Hello, this is the voicemail box for the front desk.",
    "Please hold while we try to connect you.",
    "Welcome to the mailbox of the accounts team.",
    "Record your message after the beep, then hang up.",
    "You've reached the Johnsons, we can't pick up right now.",
    "I can't answer at the moment, but your call matters to me.",
    "Thank you for calling, all of our representatives are busy.",
    "The Google subscriber you have called is not available.",
    "Please try your call again later.",
    "Nobody's at the desk right now, please leave the details.",
)

MESSAGE_EXAMPLES = (
    "Hi Dana, this is Chris from Northwind Logistics.",
    "I'm calling because I saw you just opened a second warehouse.",
    "We helped a company like yours cut freight costs by twelve percent.",
    "Could we find fifteen minutes on Thursday to talk it through?",
    "You can reach me at five five five, one two three, four five six seven.",
    "Again, that's five five five, one two three, four five six seven.",
    "I'll also send you a short email with the details.",
    "Talk soon, bye.",
    "Hey mom, it's me, just calling to say I landed safely.",
    "Hi, this is Pat from the dentist's office confirming your appointment tomorrow at ten.",
    "I wanted to follow up on the proposal I sent last week.",
    "Give me a call back when you get a chance.",
    "My number is three one two, eight eight four, two two one nine.",
    "I noticed your team is hiring three new engineers in Denver.",
    "We work with clinics on their scheduling and no-show rates.",
    "Just checking in to see if you had any questions.",
    "Uh, hi, um, this is Jordan, I'm calling about the quote you asked for.",
    "Would next Tuesday morning work for a quick call?",
    "Thanks, and have a great afternoon.",
    "This is Alex with Brightline Software, we spoke at the conference in May.",
    "I read about your expansion into Ohio in the business journal.",
    "If it's easier, just reply to my email and we'll set a time.",
    "Good morning Mister Patel, my name is Linda Ortiz, I'm with Summit Insurance.",
    "The reason for my call is your renewal coming up next month.",
    "Let me know either way, I'd appreciate it.",
    "Hey, it's Sam, call me back about Saturday.",
    "I'm the account manager for your region and wanted to introduce myself.",
    "Our product helps restaurants reduce food waste.",
    "I'll try you again on Friday.",
    "So yeah, that's it, call me back.",
    "Hello, I am calling regarding the invoice we discussed.",
    "Please call me at your earliest convenience.",
    "My direct line is eight hundred, five five five, zero one nine nine.",
    "We just launched a new plan that could save your team money.",
    "Sorry to bother you, I know you're busy.",
    "Anyway, hope you're well, talk to you soon.",
    "Your colleague Maria suggested I reach out to you.",
    "I can stop by your office next week if that helps.",
)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a transcript with its time span, s."""

    text: str
    start_s: float
    end_s: float
    words: int


def sentences_of(words: Sequence[Word]) -> list[Sentence]:
    """Sentences of a transcript: words up to one ending with ``.``, ``?`` or ``!`` before a word that
    does not start in lower case (or the last)."""
    out: list[Sentence] = []
    current: list[Word] = []
    for i, w in enumerate(words):
        current.append(w)
        nxt = words[i + 1].word.strip() if i + 1 < len(words) else ""
        # a full stop before a lower-case word is an abbreviation ("8 a.m. to noon"), not a sentence's end
        if w.word.strip().endswith(SENTENCE_END) and not (nxt[:1].islower()):
            out.append(_sentence(current))
            current = []
    if current:
        out.append(_sentence(current))
    return out


def _sentence(ws: list[Word]) -> Sentence:
    return Sentence(" ".join(w.word.strip() for w in ws).strip(), ws[0].start, ws[-1].end, len(ws))


class _Examples:
    """The example embeddings, computed once per encoder."""

    def __init__(self) -> None:
        self._by_encoder: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, encode: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        owner = getattr(encode, "__self__", encode)  # a bound method is a new object each time
        key = id(owner)
        if key not in self._by_encoder:
            # the sentence encoder keeps reference embeddings on disk: a cold start skips ~1 s
            embed = getattr(owner, "encode_references", encode)
            self._by_encoder[key] = (_unit_rows(embed(list(GREETING_EXAMPLES))),
                                     _unit_rows(embed(list(MESSAGE_EXAMPLES))))
        return self._by_encoder[key]


_EXAMPLES = _Examples()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def greeting_margins(texts: list[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Per sentence: mean similarity to its nearest greeting examples minus to its nearest message ones."""
    if not texts:
        return np.zeros(0)
    greet, message = _EXAMPLES.get(encode)
    x = _unit_rows(encode(list(texts)))
    k = min(TOP_K, len(greet), len(message))

    def top(sims: np.ndarray) -> np.ndarray:
        return np.sort(sims, axis=1)[:, -k:].mean(axis=1)

    return top(x @ greet.T) - top(x @ message.T)


def _cue_greeting(text: str) -> bool:
    tokens = [normalise_word(t) for t in text.split()]
    return any(_cue_end_indices(tokens, cue) for cue in GREETING_CUES)


def sentence_labels(
    sentences: Sequence[Sentence], encode: Callable[[list[str]], np.ndarray] | None
) -> tuple[list[str], list[float | None]]:
    """Each sentence's label, "greeting", "message" or "either", and the margin behind it.

    Parameters
    ----------
    sentences : sequence of Sentence
    encode : callable or None
        Sentence texts to embeddings (the content stage's sentence encoder);
        None: the phrase cues of :mod:`vmgrade.calls.words` ("greeting" or "either"; margins None).

    Returns
    -------
    labels : list of str
    margins : list of float or None
    """
    if encode is None:
        return ["greeting" if _cue_greeting(s.text) else "either" for s in sentences], [None] * len(sentences)
    margins = greeting_margins([s.text for s in sentences], encode)
    labels = ["greeting" if m >= GREETING_MIN_MARGIN else "message" if m <= -MESSAGE_MIN_MARGIN else "either"
              for m in margins]
    for i, s in enumerate(sentences):  # "Hi." alone says nothing either way
        if s.words < MIN_SENTENCE_WORDS:
            labels[i] = "either"
    return labels, [float(m) for m in margins]


@dataclass(frozen=True)
class GreetingFound:
    """A greeting at the head of a recording, found by meaning.

    Attributes
    ----------
    end_s : float or None
        End of the greeting's last sentence, s; None when the file does not open with a greeting.
    whole : bool
        Every sentence is greeting: a greeting-only recording.
    sentences : list of dict
        Each sentence with its time, label and margin (the evidence).
    """

    end_s: float | None
    whole: bool
    sentences: tuple[dict, ...]

    @property
    def greeting_sentences(self) -> int:
        return sum(1 for s in self.sentences if s["label"] == "greeting")


def leading_greeting(
    words: Sequence[Word], encode: Callable[[list[str]], np.ndarray] | None
) -> GreetingFound:
    """Where a greeting at the head of the transcript ends, by meaning.

    The greeting ends with the last greeting sentence before the first message
    sentence (within ``LEADING_WINDOW_S`` of the first word); sentences that
    could be either ("Hi, it's Dana.") go with their neighbours.  The whole
    transcript is a greeting when no sentence is a message and greeting
    sentences are at least as many as the undecided ones, or their mean margin
    is a greeting's.

    Parameters
    ----------
    words : sequence of Word
        The transcript's words, s on any clock.
    encode : callable or None
        As in :func:`sentence_labels`.

    Returns
    -------
    GreetingFound
    """
    sentences = sentences_of(words)
    if not sentences:
        return GreetingFound(None, False, ())
    labels, margins = sentence_labels(sentences, encode)
    evidence = tuple(
        {"text": s.text, "start_s": round(s.start_s, ROUND), "end_s": round(s.end_s, ROUND), "label": lab,
         "greeting": lab == "greeting", **({} if m is None else {"margin": round(m, ROUND)})}
        for s, lab, m in zip(sentences, labels, margins)
    )
    n_greeting, n_either = labels.count("greeting"), labels.count("either")
    # whole: nothing reads as a message, and the greeting side leads overall (or by count, on cues)
    leads = n_greeting >= n_either or (encode is not None and float(np.mean(margins)) >= GREETING_MIN_MARGIN)
    if "message" not in labels and n_greeting and leads:
        return GreetingFound(sentences[-1].end_s, True, evidence)
    end_s = None
    limit_s = sentences[0].start_s + LEADING_WINDOW_S
    for s, lab in zip(sentences, labels):
        if lab == "message" or s.start_s >= limit_s:
            break
        if lab == "greeting":
            end_s = s.end_s
    return GreetingFound(end_s, False, evidence)
