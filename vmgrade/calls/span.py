"""The span of a call recording to grade: where the rep's message starts and ends.

After :func:`vmgrade.calls.segment_call` has placed the tones, these decide
what the pipeline cuts out and transcribes on its own:

* :func:`message_span`: from the end of the last beep (or the leading call
  tones) to just after the message's last speech; ``no_message`` when nothing
  follows the beep.
* :func:`after_greeting`: call tones but no beep: the greeting's end from a
  first transcript of the span, then the span to re-grade.
* :func:`after_prompt`: a mailbox prompt after the message ("press 1 to send
  it"), found by its words, cut off.
* :func:`resolve`: all of the above in order, with greetings found by meaning
  (:mod:`vmgrade.calls.greetings`) or by one voice handing over to another
  (:mod:`vmgrade.calls.speakers`), and a beep after a complete message taken
  for an end tone; returns the span, the transcript and the recording's kind.

Arrays and dataclasses in, spans (s, on the file's clock) out; the pipeline
does the transcribing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..errors import AudioError
from ..transcript import Transcript
from . import CallSegment, CallSegmentation
from .greetings import GreetingFound, leading_greeting
from .kinds import RecordingKind, refuse
from .speakers import MIN_PARTY_S, SAME_VOICE_MIN_SIMILARITY, Voices, embed_runs, similarity
from .words import after_prompt_start_from_words, greeting_end_from_words

BEEP_GUARD_S = 0.03  # the graded span starts this far after the beep (its tail smears into 10 ms frames)
GREETING_TAIL_S = 0.05  # a VAD interval starting this soon after the greeting's last word is still its tail
TRAIL_PAD_S = 0.5  # kept after the message's last speech (the delivery VAD's hangover), unless a tone follows
# Confidence of each kind as resolved here (docs/calls.md): a beep with a message after it is
# unambiguous; a greeting found by meaning less so, more when its voice differs from the message's.
CONFIDENCE = {"beep": 0.95, "tones": 0.85, "plain": 0.9, "meaning": 0.75, "meaning_other_voice": 0.9,
              "end_tone": 0.8, "greeting_only": 0.85, "nothing": 0.9}
END_TONE_MIN_MESSAGE_SENTENCES = 2  # before an end tone: this many message sentences, and twice the greetings
Measure = Callable[[tuple[float, float] | None], tuple[Transcript, object]]


def message_span(seg: CallSegmentation, duration_s: float, name: str) -> tuple[float, float] | None:
    """The span (s, file clock) to grade: from the end of what precedes the message to just after it.

    None for a plain voicemail (graded whole).  The span starts where the beep
    (or the leading call tones) end, so the rep's silence after the beep is
    the message's leading silence.
    """
    if not seg.is_call_recording:
        return None
    if seg.message_start_s is None or seg.message_end_s is None:
        where = f" after the beep at {seg.beeps[-1].end_s:.1f} s" if seg.beeps else ""
        raise AudioError(f"{name}: a call recording with no message{where}: only ringback, greeting or tones",
                         code="no_message", path=name)
    before = [s for s in seg.segments if s.end_s <= seg.message_start_s + 1e-6 and s.kind != "silence"]
    start_s = 0.0
    if before:
        start_s = before[-1].end_s + (BEEP_GUARD_S if before[-1].kind == "beep" else 0.0)
    after = [s.start_s for s in seg.segments if s.start_s >= seg.message_end_s and s.kind != "silence"]
    end_s = min([seg.message_end_s + TRAIL_PAD_S, duration_s, *after])
    return min(start_s, seg.message_start_s), max(end_s, seg.message_end_s)


def after_greeting(
    seg: CallSegmentation, transcript: Transcript, metrics, span: tuple[float, float], name: str,
    end_s: float | None = None,
) -> tuple[CallSegmentation, tuple[float, float] | None]:
    """No beep: the greeting that ends at ``end_s`` (by its words), from a first pass over ``span``.

    ``end_s`` None: found from the phrase cues (:func:`greeting_end_from_words`).
    Returns the segmentation with the greeting relabelled (and its words), and
    the span to re-grade; (``seg``, None) when no greeting is found (the first
    pass stands).
    """
    if end_s is None:
        words = [(w.word, w.start, w.end) for w in transcript.words]
        end_s = greeting_end_from_words(words, metrics.speech_intervals)
    if end_s is None:
        return seg, None
    later = [w for w in transcript.words if w.start >= end_s]
    if not later:
        raise AudioError(f"{name}: a call recording with no message after the greeting that ends at "
                         f"{end_s:.1f} s", code="no_message", path=name)
    # the message starts with the first VAD interval after the greeting's last word (Whisper's word
    # starts run early); the greeting's own interval may outlast that word by its hangover
    fresh = [s for s, e in metrics.speech_intervals if s >= end_s + GREETING_TAIL_S]
    message_start_s = fresh[0] if fresh and fresh[0] <= later[0].end else later[0].start
    greeting_end_s = max([end_s] + [e for s, e in metrics.speech_intervals if e <= message_start_s])
    segments: list[CallSegment] = []
    for s in seg.segments:
        if s.kind != "message" or s.start_s >= message_start_s:
            segments.append(s)
            continue
        g0, g1 = s.start_s, min(s.end_s, greeting_end_s)
        said = " ".join(w.word for w in transcript.words if g0 <= (w.start + w.end) / 2 < g1)
        segments.append(CallSegment("greeting", g0, g1, said or None))
        if s.end_s > message_start_s:
            if message_start_s > g1:
                segments.append(CallSegment("silence", g1, message_start_s))
            segments.append(CallSegment("message", message_start_s, s.end_s))
        elif s.end_s > g1:
            segments.append(CallSegment("silence", g1, s.end_s))
    evidence = {**seg.evidence, "greeting_end_s": round(end_s, 3), "greeting_from": "transcript"}
    refined = replace(seg, segments=tuple(segments), message_start_s=message_start_s, evidence=evidence,
                      is_call_recording=True)
    return refined, (greeting_end_s, span[1])


def after_prompt(
    seg: CallSegmentation, transcript: Transcript, metrics, span: tuple[float, float]
) -> tuple[CallSegmentation, tuple[float, float] | None]:
    """A mailbox prompt at the end of ``span``, found by its words: the segmentation with it as
    ``after``, and the span to re-grade; (``seg``, None) when the span ends with the rep."""
    words = [(w.word, w.start, w.end) for w in transcript.words]
    start_s = after_prompt_start_from_words(words, metrics.speech_intervals)
    if start_s is None:
        return seg, None
    said = [w for w in transcript.words if w.end <= start_s]
    if not said:  # nothing but the prompt: let the first pass stand
        return seg, None
    # the rep's last word, to the end of the VAD interval it is in (not a later one: an error beep)
    last_s = said[-1].end
    rep_end_s = max([last_s] + [e for s, e in metrics.speech_intervals if s <= last_s <= e and e <= start_s])
    prompt = " ".join(w.word for w in transcript.words if w.start >= start_s)
    segments = []
    for s in seg.segments:
        if s.kind == "message" and s.start_s < start_s < s.end_s:
            segments += [CallSegment("message", s.start_s, rep_end_s),
                         CallSegment("silence", rep_end_s, start_s),
                         CallSegment("after", start_s, s.end_s, prompt)]
        else:
            segments.append(s)
    evidence = {**seg.evidence, "after_prompt_start_s": round(start_s, 3), "after_from": "transcript"}
    refined = replace(seg, segments=tuple(segments), message_end_s=rep_end_s, evidence=evidence)
    return refined, (span[0], min(span[1], rep_end_s + TRAIL_PAD_S, start_s))


def _voice_change_s(heard: Voices | None, speech: tuple[tuple[float, float], ...]) -> float | None:
    """Where one voice hands over to another for good (turns A then B, each a party), else None.

    The hand-over is the longest pause between A's last run and B's first (runs under MIN_RUN_S are
    not embedded, so B's first run may start after the rep's first words): the end of the speech
    before that pause.
    """
    if heard is None or heard.parties != 2 or len(heard.turns) != 2:
        return None
    (a, _, a_end_s), (b, b_start_s, _) = heard.turns
    talk = heard.party_speech_s
    if a == b or min(talk.get(a, 0.0), talk.get(b, 0.0)) < MIN_PARTY_S:
        return None
    inside = sorted((max(s, a_end_s), min(e, b_start_s)) for s, e in speech if e > a_end_s and s < b_start_s)
    edges = [(a_end_s, a_end_s)] + inside + [(b_start_s, b_start_s)]
    gaps = [(nxt[0] - cur[1], cur[1]) for cur, nxt in zip(edges, edges[1:])]
    return float(max(gaps)[1]) if gaps else float(a_end_s)


def _voice_similarity(samples: np.ndarray, sample_rate_hz: int, seg: CallSegmentation,
                      a: tuple[float, float], b: tuple[float, float]) -> float | None:
    """Cosine similarity of the voices speaking in spans ``a`` and ``b`` (None without enough speech)."""
    runs = embed_runs(samples, sample_rate_hz, seg.speech)
    return similarity(runs.between(*a).centroid(), runs.between(*b).centroid())


def _greeting_evidence(found: GreetingFound) -> dict:
    return {"sentences": list(found.sentences), "greeting_sentences": found.greeting_sentences}


def resolve(
    seg: CallSegmentation,
    duration_s: float,
    samples: np.ndarray,
    sample_rate_hz: int,
    measure: Measure,
    encode: Callable[[list[str]], np.ndarray] | None,
    name: str,
    heard: Voices | None = None,
) -> tuple[CallSegmentation, tuple[float, float] | None, Transcript, object, RecordingKind]:
    """The rep's message in a recording, its first transcript, and what kind of recording it is.

    Parameters
    ----------
    seg : CallSegmentation
        From :func:`vmgrade.calls.segment_call`.
    duration_s : float
    samples : np.ndarray
        The signal to grade (the chosen channel or the mix), for the voices.
    sample_rate_hz : int
    measure : callable
        ``measure(span)`` -> (transcript, delivery metrics) of the span (None: the whole file),
        on the file's clock; the pipeline's transcriber.
    encode : callable or None
        Sentence texts to embeddings, for greetings by meaning (None: phrase cues).
    name : str
        The file's name, for error messages.
    heard : Voices, optional
        The voices after the last beep (:func:`vmgrade.calls.kinds.voices_after_beep`): a change
        of voice from one to another is where a greeting ends when its words do not say so.

    Returns
    -------
    seg, span, transcript, metrics, kind
        ``span`` None: the whole file is the message.

    Raises
    ------
    NotGradedError
        ``no_message`` for a greeting-only recording (or tones only).
    """
    boundary = seg.evidence.get("boundary")
    if seg.is_call_recording and seg.message_start_s is None:
        return _nothing_after_beep(seg, duration_s, measure, encode, name)
    span = message_span(seg, duration_s, name)
    transcript, metrics = measure(span)
    how = {"whole_file": "plain", "after_call_tones": "tones"}.get(boundary, "beep")
    evidence: dict = {"boundary": boundary, "beeps": len(seg.beeps)}
    if boundary == "beep_before_end_tone":
        evidence["end_tone"] = True
    found = leading_greeting(transcript.words, encode)
    change_s = _voice_change_s(heard, seg.speech) if boundary in ("whole_file", "after_call_tones") else None
    if change_s is not None and (found.whole or found.end_s is None):
        # one voice, then another for good: the first was the mailbox's, whatever its words read as
        # (a garbled or missing transcript), if none of its sentences reads as a message
        head = [x for x in found.sentences if x["start_s"] < change_s]
        if (boundary == "after_call_tones" or any(x["label"] == "greeting" for x in head)) and not any(
                x["label"] == "message" for x in head):
            found = GreetingFound(change_s, False, found.sentences)
            evidence["greeting_from"] = "voice_change"
    if found.whole and found.greeting_sentences:  # after a beep too: an intercept or a carrier message
        kind = RecordingKind("greeting_only", CONFIDENCE["greeting_only"],
                             {**evidence, "greeting": _greeting_evidence(found)})
        raise refuse(kind, name, "a mailbox greeting or announcement with no message after it (found by "
                     "its meaning); nothing to grade; grade it anyway with --whole-file", code="no_message")
    if boundary in ("whole_file", "after_call_tones"):
        if found.end_s is not None:
            whole = span or (0.0, duration_s)
            voice = _voice_similarity(samples, sample_rate_hz, seg,
                                      (whole[0], found.end_s), (found.end_s, whole[1]))
            evidence["greeting"] = {**_greeting_evidence(found),
                                    "voice_similarity": None if voice is None else round(voice, 3)}
            same_voice = voice is not None and voice >= SAME_VOICE_MIN_SIMILARITY
            head = sum(1 for x in found.sentences
                       if x["label"] == "greeting" and x["end_s"] <= found.end_s + 1e-3)
            # with no call tone at all, a mailbox greeting and the rep's message are two voices: the rep's
            # own voice opening the message ("sorry I missed your call"; "I'm Brian Foley.") is the rep
            if not (boundary == "whole_file" and (same_voice or (voice is None and head < 2))):
                refined, cut = after_greeting(seg, transcript, metrics, whole, name, end_s=found.end_s)
                if cut is not None:
                    seg, span = refined, cut
                    transcript, metrics = measure(span)
                    how = "meaning" if same_voice or voice is None else "meaning_other_voice"
                    rest = leading_greeting(transcript.words, encode)
                    if rest.whole and rest.greeting_sentences:  # the rest of the greeting, no message
                        kind = RecordingKind("greeting_only", CONFIDENCE["greeting_only"],
                                             {**evidence, "greeting": _greeting_evidence(rest)})
                        raise refuse(kind, name, "a mailbox greeting with no message after it (found by its "
                                     "meaning); nothing to grade; grade it anyway with --whole-file",
                                     code="no_message")
    if span is not None:
        refined, cut = after_prompt(seg, transcript, metrics, span)
        if cut is not None:
            seg, span = refined, cut
            transcript, metrics = measure(span)
    kind = "call_recording" if _something_before(seg) else "voicemail"
    greeting = [s for s in seg.segments if s.kind == "greeting"]
    if greeting and "greeting" not in evidence and seg.message_start_s is not None:
        # the speaker change between the far end's greeting and the rep (1.0: one voice)
        voice = _voice_similarity(samples, sample_rate_hz, seg, (greeting[0].start_s, greeting[-1].end_s),
                                  (seg.message_start_s, seg.message_end_s or duration_s))
        evidence["greeting"] = {"voice_similarity": None if voice is None else round(voice, 3)}
    return seg, span, transcript, metrics, RecordingKind(kind, CONFIDENCE[how], {**evidence, "found_by": how})


def _something_before(seg: CallSegmentation) -> bool:
    """A call recording has ringback, tones or a greeting before the message; a hang-up tone after a
    plain message does not make one."""
    start = seg.message_start_s if seg.message_start_s is not None else float("inf")
    return any(s.kind not in ("silence", "message", "after") and s.start_s < start for s in seg.segments)


def _nothing_after_beep(seg: CallSegmentation, duration_s: float, measure: Measure,
                        encode: Callable[[list[str]], np.ndarray] | None, name: str):
    """No speech after the last beep: a greeting-only recording, or a complete message and its end tone."""
    beep = seg.beeps[-1] if seg.beeps else None
    end_s = beep.start_s if beep is not None else duration_s
    before = [(s, e) for s, e in seg.speech if e <= end_s + 1e-6]
    evidence: dict = {"boundary": seg.evidence.get("boundary"), "beeps": len(seg.beeps)}
    where = f" after the beep at {beep.end_s:.1f} s" if beep is not None else ""
    if not before:
        kind = RecordingKind("no_speech", CONFIDENCE["nothing"], evidence)
        raise refuse(kind, name, f"a call recording with no message{where}: only ringback or tones",
                     code="no_message")
    span = (0.0, min(duration_s, before[-1][1] + TRAIL_PAD_S, end_s))
    transcript, metrics = measure(span)
    found = leading_greeting(transcript.words, encode)
    evidence["greeting"] = _greeting_evidence(found)
    labels = [s["label"] for s in found.sentences]
    said = labels.count("message")
    if found.end_s is not None or said < max(END_TONE_MIN_MESSAGE_SENTENCES, 2 * labels.count("greeting")):
        # a tone ends a message only when what precedes it reads as one (a message says several things:
        # who, why, the ask); a sentence or two, or undecided words, before a beep are a greeting
        kind = RecordingKind("greeting_only", CONFIDENCE["greeting_only"], evidence)
        raise refuse(kind, name, f"a call recording with no message{where}: only ringback, greeting or tones",
                     code="no_message")
    # a complete message, then the tone: the phone system's end tone, not the start of an empty message
    segments = []
    for s in seg.segments:
        if s.kind == "greeting":
            segments.append(CallSegment("message", s.start_s, s.end_s))
        elif s.kind == "beep" and beep is not None and s.start_s >= beep.start_s - 1e-6:
            segments.append(CallSegment("tone", s.start_s, s.end_s))
        else:
            segments.append(s)
    tone_s = None if beep is None else round(beep.start_s, 3)
    refined = replace(seg, segments=tuple(segments), message_start_s=before[0][0],
                      message_end_s=before[-1][1], beeps=tuple(b for b in seg.beeps if b is not beep),
                      evidence={**seg.evidence, "end_tone_s": tone_s})
    evidence["end_tone"] = True
    kind = RecordingKind("call_recording" if _something_before(refined) else "voicemail",
                         CONFIDENCE["end_tone"], {**evidence, "found_by": "end_tone"})
    return refined, span, transcript, metrics, kind
