"""What a recording is, before anything is graded: a voicemail, a call recording, or not a message.

Every file gets one :class:`RecordingKind` (the report's ``recording``):

=================  =====================================================  ==================
kind               what it is                                             graded?
=================  =====================================================  ==================
``voicemail``      the rep's message alone                                yes
``call_recording`` ringback, a greeting and/or tones, then the message    yes (the message)
``greeting_only``  a mailbox greeting or announcement, no message after   no: ``no_message``
``live_call``      two or more people taking turns                        no: ``not_a_voicemail``
``no_speech``      silence, line noise, hum, tones only                   no: ``no_speech``
=================  =====================================================  ==================

A live call is found from voices, not pitch: on one channel by speaker
embeddings over the speech after the last beep (:mod:`vmgrade.calls.speakers`);
on two channels by which side holds the speech, turn by turn
(:func:`vmgrade.calls.channels.conversation_evidence`).  Greetings are found
by beeps and by meaning (:mod:`vmgrade.calls.greetings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NotGradedError
from . import CallSegmentation
from .channels import conversation_evidence
from .speakers import SAME_VOICE_MIN_SIMILARITY, Voices, embed_runs, voices

RECORDING_KINDS = ("voicemail", "call_recording", "greeting_only", "live_call", "no_speech")
GRADED_KINDS = ("voicemail", "call_recording")
# The error code of each kind that is not graded (docs/errors.md).
KIND_ERROR_CODES = {"greeting_only": "no_message", "live_call": "not_a_voicemail", "no_speech": "no_speech"}
ROUND = 3
# Confidence of a live call by voices: 0.6 at the split's own similarity limit, rising as the two
# voices are further apart (SAME_VOICE_MIN_SIMILARITY - similarity, per unit).
LIVE_BASE_CONFIDENCE = 0.6
LIVE_CONFIDENCE_PER_UNIT = 2.0
CHANNELS_CONFIDENCE = 0.95  # two sides that each speak in turn: the channels say who spoke


@dataclass(frozen=True)
class RecordingKind:
    """What the recording is, how sure, and the evidence.

    Attributes
    ----------
    kind : str
        One of :data:`RECORDING_KINDS`.
    confidence : float
        0-1: how clearly the evidence shows the kind (see docs/calls.md).
    evidence : dict
        What was measured: beeps, voices and turns, the greeting's sentences.
    """

    kind: str
    confidence: float
    evidence: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in RECORDING_KINDS:
            raise ValueError(f"recording kind must be one of {', '.join(RECORDING_KINDS)}, not {self.kind!r}")

    @property
    def graded(self) -> bool:
        """True for the kinds that hold a rep's message."""
        return self.kind in GRADED_KINDS

    def to_dict(self) -> dict:
        return {"kind": self.kind, "confidence": round(float(self.confidence), ROUND),
                "evidence": dict(self.evidence)}


def voices_after_beep(
    channels: np.ndarray | None, graded: np.ndarray, sample_rate_hz: int, seg: CallSegmentation
) -> Voices:
    """The voices that speak after the last beep (the whole file without one), and their turns.

    Parameters
    ----------
    channels : np.ndarray, shape (n_channels, n), or None
        The decoded channels of a multi-channel file (None for mono): their mix is heard, since
        its sides may hold one party each.
    graded : np.ndarray, shape (n,)
        The signal to be graded (the chosen side, or the mix).
    sample_rate_hz : int
    seg : CallSegmentation
        The file's segmentation (its speech and beeps).
    """
    start_s = seg.beeps[-1].end_s if seg.beeps else 0.0
    speech = [(s, e) for s, e in seg.speech if e > start_s]
    heard = graded if channels is None or len(channels) < 2 else np.mean(channels, axis=0)
    return voices(embed_runs(heard, sample_rate_hz, speech))


def live_call(
    channels: np.ndarray | None, graded: np.ndarray, sample_rate_hz: int, seg: CallSegmentation,
    heard: Voices | None = None,
) -> RecordingKind | None:
    """A ``live_call`` kind when two or more people take turns after the last beep, else None.

    Parameters
    ----------
    channels, graded, sample_rate_hz, seg
        As for :func:`voices_after_beep`.
    heard : Voices, optional
        :func:`voices_after_beep`'s result, when already computed.

    Returns
    -------
    RecordingKind or None
    """
    if channels is not None and len(channels) >= 2:
        found = conversation_evidence(channels, sample_rate_hz)
        if found is not None:
            return RecordingKind("live_call", CHANNELS_CONFIDENCE, {**found, "method": "channels"})
    found_voices = heard if heard is not None else voices_after_beep(channels, graded, sample_rate_hz, seg)
    if not found_voices.taking_turns():
        return None
    sim = found_voices.centroid_similarity
    margin = 0.0 if sim is None else SAME_VOICE_MIN_SIMILARITY - sim
    confidence = float(np.clip(LIVE_BASE_CONFIDENCE + LIVE_CONFIDENCE_PER_UNIT * margin, 0.5, 0.99))
    evidence = found_voices.to_dict()
    if seg.beeps:
        evidence["after_beep_s"] = round(seg.beeps[-1].end_s, ROUND)
    return RecordingKind("live_call", confidence, evidence)


def refuse(kind: RecordingKind, name: str, why: str, code: str | None = None) -> NotGradedError:
    """The error that stops grading a file of a kind that is not graded (raise it).

    ``code``: the error code, where it is not the kind's own (a call recording
    with tones but no speech is ``no_message``, as it always was).
    """
    return NotGradedError(f"{name}: {why}", code=code or KIND_ERROR_CODES[kind.kind], path=name,
                          recording=kind.to_dict())


def live_call_reason(kind: RecordingKind, limit: int = 8) -> str:
    """Why a live call is not graded, with its evidence (the first turns as ``party:start-end``)."""
    ev = kind.evidence
    turns = ev.get("turns", [])
    shown = ", ".join(f"{p}:{s:.1f}-{e:.1f}s" for p, s, e in turns[:limit])
    shown += " ..." if len(turns) > limit else ""
    voices_n = ev.get("voices", len(ev.get("party_speech_s", {})))
    return (f"a live conversation, not a voicemail: {ev.get('switches')} switches between {voices_n} voices "
            f"by {ev.get('method')} (speech per voice, s: {ev.get('party_speech_s')}; turns {shown}); "
            "grade it anyway with --whole-file")
