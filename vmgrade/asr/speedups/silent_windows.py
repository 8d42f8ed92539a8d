"""No decoder run for a window that starts after the last speech (the ctranslate2 engine).

With word timestamps on, faster-whisper starts its next 30-s window where
the last word it heard ends, unless the window ended on a lone timestamp.
A voicemail's last word is usually followed by a second or two of silence
or a hang-up, so a 23-s message can cost a second window holding one second
of silence: a whole encoder pass over 30 s (0.45 s of the engine's 1.3 s on
the 2-core Xeon host) and a decode that finds nothing, or reads words into
the silence (``samples/before_practice.wav`` with the filler prompt: a
second "Bye.").

:class:`SilentWindows` passes such a window over when the energy VAD
(:func:`vmgrade.vad.detect_speech`) finds no speech ending more than
:data:`TAIL_SLACK_S` after the last word heard: faster-whisper is told the
window holds no speech, which its own no-speech check would say, and moves on
(nothing is encoded or decoded). Speech the VAD does find after that point is
decoded as before, so a pause before a last sentence never loses it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ...vad import detect_speech

# Speech ending this soon after the last word heard is that word's own end: word
# times from the alignment run early by up to about a tenth of a second, and the
# energy VAD holds on a little after the voice stops.
TAIL_SLACK_S = 0.3
_SILENT = object()  # stands for a window's encoding that was not computed
_NO_SPEECH = SimpleNamespace(no_speech_prob=1.0, sequences_ids=[[]], scores=[float("-inf")])


@dataclass
class Heard:
    """One transcription's progress: how far its words reach, and where the recording holds speech.

    Attributes
    ----------
    samples : np.ndarray
        What the recogniser reads (mono, ``sample_rate``).
    sample_rate : int
        In Hz.
    until_s : float
        End of the last word heard so far (of the last segment when it has no words), s.
    windows : int
        Windows asked for so far.
    """

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    until_s: float = 0.0
    windows: int = 0
    _speech_ends_s: list[float] | None = field(default=None, repr=False)

    def hear(self, segment) -> None:
        """Note a decoded faster-whisper segment (its ``end`` and its ``words``)."""
        words = getattr(segment, "words", None) or []
        self.until_s = max(self.until_s, float(words[-1].end if words else segment.end))

    def speech_after(self) -> bool:
        """Whether the VAD finds speech ending more than ``TAIL_SLACK_S`` after ``until_s``."""
        if self._speech_ends_s is None:  # found once, and only when a later window is asked for
            speech, _ = detect_speech(self.samples, self.sample_rate, vad="energy")
            self._speech_ends_s = [float(end) for _, end in speech]
        return any(end > self.until_s + TAIL_SLACK_S for end in self._speech_ends_s)


class SilentWindows:
    """Installed on a faster-whisper ``WhisperModel``: windows after the last speech are passed over.

    Only transcriptions inside :meth:`listening` are affected, and only from
    their second window on; the state is per thread, as one model serves
    several transcribing threads. They must keep faster-whisper's no-speech
    check on (``no_speech_threshold`` set), which is what passes the window over.

    Attributes
    ----------
    skipped : int
        Windows passed over so far (tests and benchmarks read it).
    """

    def __init__(self, model) -> None:
        self._encode = model.encode
        self._generate = model.generate_with_fallback
        self._local = threading.local()
        self.skipped = 0
        model.encode = self.encode
        model.generate_with_fallback = self.generate_with_fallback

    @contextmanager
    def listening(self, samples: np.ndarray, sample_rate: int) -> Iterator[Heard]:
        """Skip silent windows of this thread's transcription of ``samples``; feed it each segment."""
        heard = Heard(samples, sample_rate)
        self._local.heard = heard
        try:
            yield heard
        finally:
            self._local.heard = None

    def encode(self, features):
        """faster-whisper's ``encode``, or nothing for a window after the last speech."""
        heard = getattr(self._local, "heard", None)
        if heard is not None:
            heard.windows += 1
            if heard.windows > 1 and not heard.speech_after():
                return _SILENT
        return self._encode(features)

    def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
        """faster-whisper's ``generate_with_fallback``; a certain no-speech result for a skipped window."""
        if encoder_output is _SILENT:
            self.skipped += 1
            # (result, avg_logprob, temperature, compression_ratio): no speech, and a log-probability
            # below any threshold, so faster-whisper skips the window as its no-speech check does
            return _NO_SPEECH, float("-inf"), 0.0, 0.0
        return self._generate(encoder_output, prompt, tokenizer, options)
