"""What was said: ``Word``, ``Segment`` and ``Transcript``, the recogniser's typed result.

A neutral module (no engine, no audio): the ASR engines (:mod:`vmgrade.asr`)
produce these, and the stages after them (call spans, delivery, content,
numbers, the report) read them without importing an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Word:
    """One recognised word; times in seconds from the start of the file."""

    word: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "probability": round(self.probability, 4),
        }


@dataclass(frozen=True)
class Segment:
    """A decoded stretch of speech (Whisper's segment)."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """What was said, with word times and confidences."""

    text: str
    language: str
    segments: tuple[Segment, ...]
    no_speech_prob: float  # highest segment no-speech probability (0 when no segments)
    engine: str
    model_name: str
    dropped_segments: tuple[str, ...] = field(default=())  # texts removed as hallucinations
    # How the recording was fitted into Whisper's windows (vmgrade.asr.windows):
    # the recogniser read it from asr_offset_s on, asr_speedup times faster.
    asr_offset_s: float = 0.0
    asr_speedup: float = 1.0

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "no_speech_prob": round(self.no_speech_prob, 4),
            "words": [w.to_dict() for w in self.words],
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text,
                    "avg_logprob": round(s.avg_logprob, 4),
                    "no_speech_prob": round(s.no_speech_prob, 4),
                }
                for s in self.segments
            ],
            "dropped_segments": list(self.dropped_segments),
            "asr_offset_s": round(self.asr_offset_s, 3),
            "asr_speedup": round(self.asr_speedup, 4),
        }
