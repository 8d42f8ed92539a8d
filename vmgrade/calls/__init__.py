"""Call-recording segmentation: ringback, DTMF, greeting, beep, the rep's message, what follows.

A dialer export is rarely the message alone: ringback, the far end's mailbox
greeting, the beep, then the rep's voicemail, sometimes a prompt or a hang-up
tone after it.  :func:`segment_call` splits such a recording on the file's
clock, arrays in and dataclasses out (no file I/O, no ASR):

1. The signal is analysed at 8 kHz (every tone we name and the VAD's band lie
   below 4 kHz; half the samples of the pipeline's 16 kHz).
2. Tones come from a 128 ms power spectrum (:mod:`vmgrade.calls.tones`): one
   or two spectral peaks holding >= 92% of the telephone band, steady within
   1%; named beep / ringback / DTMF / other by frequency and length.
3. Speech is the project's VAD (:func:`vmgrade.vad.detect_speech`) minus the
   tones, and only where it is voiced (line noise and clatter are not speech).
4. The message is the speech after the last beep that has a second of speech
   after it (a later beep is an end tone), up to the next tone; speech before
   it is the greeting, anything after the message is ``after``.  Without a beep,
   call-progress tones at the head (every ring, whatever noise lies between)
   still mark a call recording and the message starts after them; the
   greeting, if any, is then found by meaning or by the change of voice
   (:mod:`vmgrade.calls.span`).  Without any tone the file is a plain
   voicemail: the message is the whole speech.

Figures (``python bench/call_segmentation.py``): see docs/calls.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..vad import HOP_S, detect_speech, power_spectrogram, voiced_frames
from .channels import conversation_evidence, pick_channel
from .tones import Tone, detect_tones
from .words import AFTER_CUES, GREETING_CUES, after_prompt_start_from_words, greeting_end_from_words

__all__ = [
    "SEGMENT_KINDS",
    "CallSegment",
    "CallSegmentation",
    "AFTER_CUES",
    "GREETING_CUES",
    "after_prompt_start_from_words",
    "conversation_evidence",
    "greeting_end_from_words",
    "pick_channel",
    "segment_call",
]

# --------------------------------------------------------------------------
# Constants (units in names)
# --------------------------------------------------------------------------
SEGMENT_KINDS = ("ringback", "dtmf", "beep", "greeting", "silence", "message", "after", "tone")
ANALYSIS_RATE_HZ = 8000  # tones <= 2 kHz and the VAD band <= 4 kHz: narrowband loses nothing
TONE_GUARD_S = 0.03  # speech within this of a tone's edge is the tone's (window smear, VAD hangover)
MIN_SPEECH_S = 0.15  # shorter speech left over after removing tones is a tone's tail, not a word
MIN_VOICED_IN_SPEECH_S = 0.05  # a speech interval holds at least one vowel's worth of voiced frames
HEAD_BLIP_S = 1.0  # less speech than this between head tones (ringback spill, a click) is not a message
CADENCE_MIN_GAP_S = 1.5  # the same single tone again after >= this, with no speech between: ringback
ROUND_S = 3  # decimals of times in dicts (1 ms)
MIN_MESSAGE_SPEECH_S = 1.0  # a beep opens a message when this much speech follows it (0.7 s of noise: no)


@dataclass(frozen=True)
class CallSegment:
    """One labelled stretch of a call recording, on the file's clock.

    Attributes
    ----------
    kind : str
        One of :data:`SEGMENT_KINDS`.
    start_s, end_s : float
        Edges, s from the start of the file.
    text : str or None
        Transcribed words, filled in after ASR (DTMF keys are in the evidence's tones).
    """

    kind: str
    start_s: float
    end_s: float
    text: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        out: dict = {
            "kind": self.kind,
            "start_s": round(float(self.start_s), ROUND_S),
            "end_s": round(float(self.end_s), ROUND_S),
        }
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class CallSegmentation:
    """What :func:`segment_call` found.

    Attributes
    ----------
    segments : tuple of CallSegment
        In time order, covering the file from 0 to its duration.
    message_start_s, message_end_s : float or None
        The rep's message (first and last speech of it), s; None when there
        is no speech after the last beep (a greeting-only recording).
    beeps : tuple of CallSegment
        Every beep found, in time order.
    is_call_recording : bool
        False when no tone was found: a plain voicemail, to grade as a whole.
    evidence : dict
        What was found and why: tones with frequencies and shares, the rule
        that placed the message (``boundary``), speech seconds.
    speech : tuple of (start_s, end_s)
        Every speech interval of the file, tones removed (what the speaker
        analysis embeds).
    """

    segments: tuple[CallSegment, ...]
    message_start_s: float | None
    message_end_s: float | None
    beeps: tuple[CallSegment, ...]
    is_call_recording: bool
    evidence: dict = field(default_factory=dict)
    speech: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        return {
            "segments": [s.to_dict() for s in self.segments],
            "message_start_s": None if self.message_start_s is None else round(self.message_start_s, ROUND_S),
            "message_end_s": None if self.message_end_s is None else round(self.message_end_s, ROUND_S),
            "is_call_recording": self.is_call_recording,
        }


# --------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------


def _to_analysis_rate(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"segment_call needs mono samples, got shape {y.shape}")
    if sample_rate_hz == ANALYSIS_RATE_HZ:
        return y
    from ..audio import resample

    return resample(y, sample_rate_hz, ANALYSIS_RATE_HZ)


def speech_and_tones(
    samples: np.ndarray, sample_rate_hz: int
) -> tuple[list[tuple[float, float]], list[Tone], str, float]:
    """Speech intervals (s) with tones removed, the tones, the VAD's name, and the voiced seconds.

    Parameters
    ----------
    samples : np.ndarray, mono float
    sample_rate_hz : int

    Returns
    -------
    speech : list of (start_s, end_s)
    tones : list of Tone, in time order
    vad : str
    voiced_s : float
        Voiced frames inside the speech, s (clatter fills a VAD but holds few).
    """
    y = _to_analysis_rate(samples, sample_rate_hz)
    sr = ANALYSIS_RATE_HZ
    power, freqs = power_spectrogram(y, sr)
    raw, vad = detect_speech(y, sr, vad="energy", power=power, freqs_hz=freqs)
    tones, _ = detect_tones(y, sr, (power, freqs, HOP_S))
    speech = _subtract(raw, [(t.start_s - TONE_GUARD_S, t.end_s + TONE_GUARD_S) for t in tones])
    speech = [(s, e) for s, e in speech if e - s >= MIN_SPEECH_S]
    # line noise, hiss and clatter pass an energy VAD but hold no voiced frame: not speech
    voiced = voiced_frames(y, sr)
    speech = [(s, e) for s, e in speech
              if np.sum(voiced[int(s / HOP_S) : int(np.ceil(e / HOP_S))]) * HOP_S >= MIN_VOICED_IN_SPEECH_S]
    voiced_s = sum(float(np.sum(voiced[int(s / HOP_S) : int(np.ceil(e / HOP_S))])) * HOP_S for s, e in speech)
    return speech, _cadence_ringback(tones, speech), vad, voiced_s


def _subtract(
    intervals: list[tuple[float, float]], holes: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    out = []
    for s, e in intervals:
        pieces = [(s, e)]
        for hs, he in holes:
            pieces = [p for a, b in pieces for p in ((a, min(b, hs)), (max(a, he), b)) if p[1] > p[0]]
        out.extend(pieces)
    return out


def _speech_between(speech: list[tuple[float, float]], a_s: float, b_s: float) -> bool:
    return any(s < b_s and e > a_s for s, e in speech)


def _cadence_ringback(tones: list[Tone], speech: list[tuple[float, float]]) -> list[Tone]:
    """Single-tone bursts repeating slowly with silence between are ringback (425 Hz in Europe)."""
    out = list(tones)
    singles = [i for i, t in enumerate(out) if len(t.freqs_hz) == 1]
    for i, j in zip(singles, singles[1:]):
        a, b = out[i], out[j]
        same = abs(a.freqs_hz[0] - b.freqs_hz[0]) <= 0.03 * a.freqs_hz[0]
        apart = b.start_s - a.end_s >= CADENCE_MIN_GAP_S
        if same and apart and not _speech_between(speech, a.end_s, b.start_s):
            for k in (i, j):
                t = out[k]
                out[k] = Tone("ringback", t.start_s, t.end_s, t.freqs_hz, "ringback_single", t.share)
    return out


def segment_call(samples: np.ndarray, sample_rate_hz: int) -> CallSegmentation:
    """Split a call recording into ringback, DTMF, greeting, beep, message and after.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        Mono float audio (a two-channel export: the mix, or the chosen channel).
    sample_rate_hz : int
        Rate of ``samples``, Hz (any; analysed at 8 kHz).

    Returns
    -------
    CallSegmentation
        Times on the file's clock, s.
    """
    duration_s = len(samples) / float(sample_rate_hz)
    speech, tones, vad, voiced_s = speech_and_tones(samples, sample_rate_hz)
    beeps = [t for t in tones if t.kind == "beep"]
    opening = _opening_beep(beeps, speech)
    if opening is not None:
        head_end, boundary = opening.end_s, "last_beep" if opening is beeps[-1] else "beep_before_end_tone"
    elif tones:
        head_end, boundary = _head_tones_end(tones, speech), "after_call_tones"
    else:
        head_end, boundary = 0.0, "whole_file"
    later = [s for s in speech if s[0] >= head_end]
    if tones and not _is_message(later):
        later = []  # after the tones, nothing that is a message
    message: list[tuple[float, float]] = []
    after: list[tuple[float, float]] = []
    if later:
        # the message runs until the next tone (a prompt's or hang-up tone); the rest is "after"
        cut = min((t.start_s for t in tones if t.start_s > later[0][0]), default=duration_s + 1.0)
        message = [s for s in later if s[0] < cut]
        after = [s for s in later if s[0] >= cut]
        after += [(t.start_s, t.end_s) for t in tones if t.start_s >= cut]
    greeting = [s for s in speech if s[1] <= head_end]
    atoms: list[tuple[str, float, float, str | None]] = []
    for t in tones:
        if after and t.start_s >= min(a for a, _ in after):
            continue
        atoms.append((t.kind, t.start_s, t.end_s, None))
    atoms += [("greeting", s, e, None) for s, e in greeting]
    atoms += [("message", s, e, None) for s, e in message]
    atoms += [("after", s, e, None) for s, e in after]
    segments = _timeline(atoms, duration_s)
    msg = [s for s in segments if s.kind == "message"]
    evidence = {
        "boundary": boundary,
        "analysis_rate_hz": ANALYSIS_RATE_HZ,
        "vad": vad,
        "speech_s": round(sum(e - s for s, e in speech), ROUND_S),
        "voiced_speech_s": round(voiced_s, ROUND_S),
        "longest_speech_s": round(max((e - s for s, e in speech), default=0.0), ROUND_S),
        "tones": [t.to_dict() for t in tones],
        "beep_times_s": [[round(b.start_s, ROUND_S), round(b.end_s, ROUND_S)] for b in beeps],
    }
    return CallSegmentation(
        segments=tuple(segments),
        message_start_s=msg[0].start_s if msg else None,
        message_end_s=msg[-1].end_s if msg else None,
        beeps=tuple(s for s in segments if s.kind == "beep"),
        is_call_recording=bool(tones),
        evidence=evidence,
        speech=tuple((float(a), float(b)) for a, b in speech),
    )


def _opening_beep(beeps: list[Tone], speech: list[tuple[float, float]]) -> Tone | None:
    """The beep that opens the message: the last one with speech after it before the next beep.

    A beep after a complete message (a phone system's end tone) does not open
    an empty message.  With no speech after any beep, the last beep (the
    message is empty: a greeting-only recording, or a message that ended in
    the tone, decided by meaning later).
    """
    for i in range(len(beeps) - 1, -1, -1):
        end = beeps[i + 1].start_s if i + 1 < len(beeps) else float("inf")
        said = sum(min(e, end) - max(s, beeps[i].end_s) for s, e in speech if s < end and e > beeps[i].end_s)
        if said >= MIN_MESSAGE_SPEECH_S:
            return beeps[i]
    return beeps[-1] if beeps else None


def _is_message(speech: list[tuple[float, float]]) -> bool:
    """Enough speech to be a message: under MIN_MESSAGE_SPEECH_S (0.7 s of line noise after a
    beep, a click) there is none."""
    return sum(e - s for s, e in speech) >= MIN_MESSAGE_SPEECH_S


def _head_tones_end(tones: list[Tone], speech: list[tuple[float, float]]) -> float:
    """End (s) of the run of tones that comes before any speech (ringback, dialling).

    Ringback ends when the far end answers, so every ring belongs to the head, whatever noise
    (a cafe, a car) the VAD finds between rings; other tones only while the speech between them
    stays under ``HEAD_BLIP_S``.
    """
    head_end = 0.0
    last_ring = max((t.end_s for t in tones if t.kind == "ringback"), default=0.0)
    for t in tones:
        between = sum(min(e, t.start_s) - max(s, head_end)
                      for s, e in speech if s < t.start_s and e > head_end)
        if between >= HEAD_BLIP_S and t.start_s > last_ring:
            break
        head_end = t.end_s
    return head_end


def _timeline(atoms: list[tuple[str, float, float, str | None]], duration_s: float) -> list[CallSegment]:
    """Merge same-kind neighbours (not beeps), fill the gaps with silence, cover [0, duration]."""
    merged: list[list] = []
    for kind, s, e, text in sorted(atoms, key=lambda a: a[1]):
        if merged and s < merged[-1][2]:
            s = merged[-1][2]  # tones and speech were made disjoint; guard rounding only
        if e <= s:
            continue
        if merged and merged[-1][0] == kind and kind != "beep":
            merged[-1][2] = e
        else:
            merged.append([kind, s, e, text])
    out: list[CallSegment] = []
    t = 0.0
    for kind, s, e, text in merged:
        if s > t:
            out.append(CallSegment("silence", float(t), float(s)))
        out.append(CallSegment(kind, float(s), float(min(e, duration_s)), text))
        t = min(e, duration_s)
    if duration_s > t:
        out.append(CallSegment("silence", float(t), float(duration_s)))
    return out
