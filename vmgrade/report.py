"""The ``Report``: everything vmgrade says about one recording (renderers: :mod:`vmgrade.render`).

``Report.to_dict()`` is the public JSON schema (documented in README.md).
Keys are added freely; none is renamed or removed without a migration note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .audio import SourceInfo
from .transcript import Transcript

if TYPE_CHECKING:  # for annotations only: no import cost at run time, no cycle with the stages
    from .calls import CallSegmentation
    from .calls.kinds import RecordingKind
    from .content import ContentFindings
    from .delivery import DeliveryMetrics
    from .scoring import Grade

SCHEMA_VERSION = 1
# Kinds of recording that hold no rep's message (``recording.kind``; vmgrade.calls.kinds): their
# reports carry an error code and are counted apart as "not graded", never as failures.
NOT_GRADED_KINDS = ("greeting_only", "live_call", "no_speech")
KIND_LABELS = {"greeting_only": "greeting", "live_call": "live call", "no_speech": "no speech"}
# What a trainer calls each finding (``feedback[].code``): the one place every page, report and
# summary takes a finding's name from, so none shows a code. Short, in the rep's terms.
FINDING_LABELS = {
    "no_caller_name": "Name not given",
    "no_company": "Company not given",
    "late_caller_name": "Name given late",
    "late_company": "Company given late",
    "identity_not_repeated": "Name not repeated at the end",
    "no_specific_reason": "No reason for the call",
    "vague_reason": "Vague reason for the call",
    "thin_reason": "Thin reason for the call",
    "research_theatre": "Research named, not used",
    "prospect_not_named": "Prospect not named",
    "generic_pitch": "Generic pitch",
    "weak_phrase": "Weak phrases (\u201cjust checking in\u201d)",
    "no_call_to_action": "No clear ask",
    "soft_ask": "Soft ask",
    "too_many_asks": "Too many asks",
    "no_callback_number": "No callback number",
    "number_mismatch": "Callback number differs",
    "number_unconfirmed": "Number not confirmed",
    "number_once": "Number said only once",
    "number_fast": "Number said too fast",
    "number_not_chunked": "Number not grouped",
    "number_not_cued": "Number not announced",
    "too_short": "Too short",
    "too_long": "Too long",
    "too_fast": "Talks too fast",
    "too_slow": "Talks too slowly",
    "long_pause": "Long pauses",
    "late_start": "Slow start",
    "fillers": "Filler words",
    "monotone": "Monotone voice",
    "flat_loudness": "Flat loudness",
    "noisy": "Background noise",
    "clipping": "Distorted (clipping)",
    "level_too_low": "Recorded too quietly",
    "level_too_high": "Recorded too loudly",
    "hard_to_transcribe": "Hard to understand",
    "low_confidence": "Hard to understand",
}


def finding_label(code: str) -> str:
    """A finding's name for people (:data:`FINDING_LABELS`); an unknown code reads as words, not a code."""
    label = FINDING_LABELS.get(code)
    if label is not None:
        return label
    words = code.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def not_graded_kind(report: dict) -> str | None:
    """The ``recording.kind`` of a report (JSON dict) not graded because the file is no message, else None."""
    kind = (report.get("recording") or {}).get("kind")
    return kind if report.get("error") and kind in NOT_GRADED_KINDS else None


def not_graded_text(counts: dict[str, int]) -> str:
    """ "3 greetings, 1 live call": counts of files that are no rep's message, by kind."""
    parts = []
    for kind, n in counts.items():
        label = KIND_LABELS.get(kind, kind)
        plural = "" if n == 1 or label == "no speech" else "s"
        parts.append(f"{n} {label}{plural}")
    return ", ".join(parts)


@dataclass(frozen=True)
class ErrorInfo:
    """Why a file could not be graded."""

    code: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class ChannelChoice:
    """Which channel of the file was graded, and why (the report's ``audio.channel_used``).

    ``used``: "mono", "mix", "left" or "right"; ``asked``: the option ("auto",
    "left", "right", "mix"); ``reason``: :func:`vmgrade.calls.pick_channel`'s
    reason under "auto" ("speaks_after_beep", "same_audio", ...), "asked" for a
    side or the mix asked for, "mono" for a one-channel file.
    """

    used: str
    asked: str = "auto"
    reason: str = ""
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """The result of grading one file (or the error that stopped it)."""

    file: str
    duration_s: float | None = None
    engine: str | None = None
    model_name: str | None = None
    precision: str | None = None
    threads: int | None = None  # the recogniser's CPU threads (the idle cores unless --threads)
    source: SourceInfo | None = None
    transcript: Transcript | None = None
    metrics: DeliveryMetrics | None = None
    content: ContentFindings | None = None
    grade: Grade | None = None
    context: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    error: ErrorInfo | None = None
    vmgrade_version: str = ""
    channel: ChannelChoice | None = None
    segmentation: CallSegmentation | None = None  # None: --whole-file (no segmentation ran)
    recording: RecordingKind | None = None  # what the file is (voicemail, greeting_only, live_call, ...)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_graded(self) -> bool:
        """True when the file is no rep's message (a greeting, a live call, no speech): not a failure."""
        kind = None if self.recording is None else self.recording.kind
        return self.error is not None and kind in NOT_GRADED_KINDS

    def to_dict(self) -> dict:
        """The JSON report (see README: "JSON report")."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "vmgrade_version": self.vmgrade_version,
            "file": self.file,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
            if self.recording is not None:
                out["recording"] = self.recording.to_dict()
            return out
        out["duration_s"] = round(self.duration_s or 0.0, 3)
        out["model"] = {"engine": self.engine, "name": self.model_name}
        if self.precision is not None:
            out["model"]["precision"] = self.precision
        if self.threads is not None:
            out["model"]["threads"] = self.threads
        if self.source is not None:
            s = self.source
            out["audio"] = {
                "format": s.format,
                "codec": s.codec,
                "sample_rate_hz": s.sample_rate_hz,
                "channels": s.channels,
                "duration_s": round(s.duration_s, 3),
                "size_bytes": s.size_bytes,
            }
            if self.channel is not None:
                out["audio"]["channel_used"] = self.channel.used
                out["audio"]["channel_reason"] = self.channel.reason
        out["context"] = dict(self.context)
        if self.recording is not None:
            out["recording"] = self.recording.to_dict()
        if self.segmentation is not None:
            seg = self.segmentation.to_dict()
            out["is_call_recording"] = seg["is_call_recording"]
            out["message_start_s"] = seg["message_start_s"]
            out["message_end_s"] = seg["message_end_s"]
            out["segments"] = seg["segments"]
        if self.transcript is not None:
            out["transcript"] = self.transcript.to_dict()
        if self.metrics is not None:
            out["metrics"] = self.metrics.to_dict()
        if self.content is not None:
            out["content"] = self.content.to_dict()
        if self.grade is not None:
            out.update(self.grade.to_dict())
        out["timings_s"] = {k: round(v, 3) for k, v in self.timings_s.items()}
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
