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
* :func:`refuse_conversation`: ``not_a_voicemail`` for a live conversation.

Arrays and dataclasses in, spans (s, on the file's clock) out; the pipeline
does the transcribing.
"""

from __future__ import annotations

from dataclasses import replace

from ..audio import Audio
from ..errors import AudioError
from ..transcript import Transcript
from . import CallSegment, CallSegmentation
from .channels import conversation_evidence
from .words import after_prompt_start_from_words, greeting_end_from_words

BEEP_GUARD_S = 0.03  # the graded span starts this far after the beep (its tail smears into 10 ms frames)
GREETING_TAIL_S = 0.05  # a VAD interval starting this soon after the greeting's last word is still its tail
TRAIL_PAD_S = 0.5  # kept after the message's last speech (the delivery VAD's hangover), unless a tone follows


def refuse_conversation(audio: Audio, name: str) -> None:
    """Raise ``not_a_voicemail`` when two parties take turns after the beep (a live call)."""
    found = conversation_evidence(audio.channels if audio.channels is not None else audio.samples,
                                  audio.sample_rate)
    if found is None:
        return
    turns = ", ".join(f"{p}:{s:.1f}-{e:.1f}s" for p, s, e in found.get("turns", [])[:8])
    more = " ..." if len(found.get("turns", [])) > 8 else ""
    raise AudioError(
        f"{name}: a live conversation, not a voicemail: {found['switches']} switches between two parties "
        f"by {found['method']} (speech per party, s: {found.get('party_speech_s')}; turns {turns}{more}); "
        "grade it anyway with --whole-file",
        code="not_a_voicemail", path=name,
    )


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
    seg: CallSegmentation, transcript: Transcript, metrics, span: tuple[float, float], name: str
) -> tuple[CallSegmentation, tuple[float, float] | None]:
    """Call tones but no beep: where the greeting ends by its words, from a first pass over ``span``.

    Returns the segmentation with the greeting relabelled (and its words), and
    the span to re-grade; (``seg``, None) when no greeting is found (the first
    pass stands).
    """
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
    refined = replace(seg, segments=tuple(segments), message_start_s=message_start_s, evidence=evidence)
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
