"""``grade()``: the one public entry point every shell (CLI, batch, web) calls.

audio.load -> calls (channel, segments) -> transcribe -> delivery.measure -> content.analyze
-> scoring.score -> Report

A call recording (ringback, the far end's greeting, the beep, then the rep's
message; see docs/calls.md) is graded on the rep's message alone: the span
from the end of the last beep (or greeting) to the end of the message is cut
out, transcribed and measured on its own, and every time is then moved back
onto the file's clock in one place (:func:`to_file_clock`), so the report and
the HTML player agree with the file.  A plain voicemail (no call-progress
tone) is graded as a whole, exactly as before the segmentation existed.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from . import content, delivery, scoring
from ._version import __version__
from .asr.transcribe import (
    DEFAULT_LANGUAGE,
    DEVICES,
    FILLER_PROMPT,
    TranscribeOptions,
    Transcriber,
    default_filler_prompt,
    make_transcriber,
)
from .asr.weights import DEFAULT_MODEL
from .audio import CHANNEL_CHOICES, DEFAULT_MAX_DURATION_S, Audio, load, start_decoder
from .calls import CallSegmentation, pick_channel, segment_call
from .calls.kinds import RecordingKind, live_call, live_call_reason, refuse, voices_after_beep
from .calls.span import resolve
from .errors import file_error, printable
from .report import ChannelChoice, ErrorInfo, Report
from .transcript import Transcript, Word

# No speech (noise, hum, a random body behind a valid header): no transcript words, or Whisper
# sure there is no speech, AND little for the VAD (under NO_SPEECH_MAX_VAD_S of speech, or fewer
# than NO_SPEECH_MAX_SYLLABLES syllable nuclei: a steady hum fills the energy VAD but has none).
# Every bundled sample has words, >= 5 s of VAD speech and >= 21 syllables.
NO_SPEECH_PROB = 0.8
NO_SPEECH_MAX_VAD_S = 1.0
NO_SPEECH_MAX_SYLLABLES = 3
NO_SPEECH_MIN_RUN_S = 0.5  # ... or no speech run this long (clatter, clicks: blips of 0.15-0.3 s)
NO_SPEECH_CONFIDENCE = 0.9  # neither the recogniser nor the VAD hears speech

CHANNELS = CHANNEL_CHOICES  # the rep's side of a two-channel file: auto, left, right or mix
_SIDES = {"left": 0, "right": 1}


@dataclass(frozen=True)
class Context:
    """What the rep tells us about the call; every field optional."""

    caller_name: str | None = None
    company: str | None = None
    callback_number: str | None = None
    prospect_name: str | None = None
    prospect_company: str | None = None
    # the rep's side of a two-channel file (one of CHANNELS), for this file only; None: GradeOptions.channel
    channel: str | None = None
    # grade the whole file as the rep's message, for this file only (a rep who knows better than the
    # segmentation: a greeting that is theirs, an end tone taken for a beep); or GradeOptions.whole_file
    whole_file: bool = False

    def __post_init__(self) -> None:
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}

    def call_facts(self) -> dict[str, str]:
        """The set fields that describe the call (what content analysis takes): all but how to read it."""
        return {k: v for k, v in self.to_dict().items() if k in CONTEXT_FIELDS}


# How to read the file, not who called: their own manifest column / form field, not context fields.
READING_FIELDS = ("channel", "whole_file")
# The context's names, in order: manifest and CSV columns, web form fields, batch resume keys.
CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Context) if f.name not in READING_FIELDS)


@dataclass(frozen=True)
class GradeOptions:
    """Settings for a :class:`Grader`."""

    model: str = DEFAULT_MODEL
    language: str = DEFAULT_LANGUAGE
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    rubric: str | None = None  # path to a rubric TOML; None: the packaged default
    # None: the engine's default (vmgrade.asr.transcribe.default_filler_prompt): openai-whisper
    # places fillers with the filler probe, ctranslate2 decodes without the prompt
    filler_prompt: bool | None = None
    threads: int | None = field(default=None)
    engine: str = "openai-whisper"  # or "ctranslate2" (faster-whisper, the vmgrade[fast] extra)
    beam_size: int | None = None  # None: the engine's default (greedy on both)
    int8_logits: bool = True  # openai-whisper: int8 vocabulary projection, exact rescoring (asr.speedups)
    # openai-whisper on a CPU with bf16 matrix units (AMX): the encoder in bf16 (asr.speedups.bf16)
    bf16_encoder: bool = True
    whole_file: bool = False  # True: no call segmentation; grade the whole file as before (docs/calls.md)
    channel: str = "auto"  # the rep's side of a two-channel file: one of CHANNELS
    # what labels the sentences' moves: "auto" (sentence embeddings when installed, else the phrase
    # lists, recorded in content.engine), "embedding" (required) or "phrases" (docs/content.md)
    content_engine: str = "auto"
    # where the recogniser runs: "auto" (a CUDA GPU when the engine sees one, else the CPU), "cpu"
    # or "cuda" (vmgrade.asr.transcribe.resolve_device; docs/performance.md, "On a GPU")
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")
        if self.content_engine not in content.ENGINES:
            raise ValueError(f"content_engine must be one of {', '.join(content.ENGINES)}, "
                             f"not {self.content_engine!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")

    def uses_filler_prompt(self) -> bool:
        """``filler_prompt``, or where it is None the engine's default."""
        return default_filler_prompt(self.engine) if self.filler_prompt is None else self.filler_prompt


class Grader:
    """Holds the loaded model so many files share one load.

    Parameters
    ----------
    options : GradeOptions
    transcriber : Transcriber, optional
        An engine to use instead of building one from ``options``.
    load_ahead : bool
        Start loading the model in a thread as soon as a file has decoded, so that the load
        overlaps the call segmentation and the speaker check (the CLI: one cold process, one
        file). Off for long-lived graders, which load at start, and where a refused file should
        not cost a load.
    """

    def __init__(self, options: GradeOptions | None = None, transcriber: Transcriber | None = None,
                 load_ahead: bool = False):
        self.options = options or GradeOptions()
        self.load_ahead = load_ahead
        start_decoder()  # the decoding child imports while the model loads
        if transcriber is None:
            transcriber = make_transcriber(
                self.options.engine,
                self.options.model,
                TranscribeOptions(
                    language=self.options.language,
                    initial_prompt=FILLER_PROMPT if self.options.uses_filler_prompt() else None,
                    threads=self.options.threads,
                    beam_size=self.options.beam_size,
                    int8_logits=self.options.int8_logits,
                    bf16_encoder=self.options.bf16_encoder,
                    device=self.options.device,
                ),
            )
        self.transcriber = transcriber
        # loaded once here, so batch and web workers embed with one model per process
        self.content_engine = content.classifier(self.options.content_engine)
        self.rubric = scoring.load_rubric(self.options.rubric)
        # the report's labels (pauses, monotone, level) follow the rubric that grades it
        self.label_thresholds = scoring.label_thresholds(self.rubric)
        # greetings are read by meaning with the content stage's sentence encoder (None: phrase cues)
        self._encode = getattr(getattr(self.content_engine, "encoder", None), "encode", None)

    def grade(self, path: str | os.PathLike, context: Context | None = None) -> Report:
        """Grade one file. Problems with the file become ``Report.error``, never exceptions."""
        context = context or Context()
        timings: dict[str, float] = {}
        name = printable(os.fsdecode(path))  # a name that is not UTF-8 shows its odd bytes as \xNN
        common = dict(
            file=name,
            context=context.to_dict(),
            vmgrade_version=__version__,
        )
        try:
            t0 = time.perf_counter()
            audio = load(Path(path), max_duration_s=self.options.max_duration_s, keep_channels=True)
            timings["decode"] = time.perf_counter() - t0
            if self.load_ahead and hasattr(self.transcriber, "preload"):
                self.transcriber.preload()

            t0 = time.perf_counter()
            whole_file = self.options.whole_file or context.whole_file
            graded, choice = _choose_channel(audio, context.channel or self.options.channel,
                                             pick=not whole_file)
            segmentation = None
            if not whole_file:
                segmentation = segment_call(audio.samples, audio.sample_rate)  # the mix: the beep is far-side
                timings["segment"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                heard = voices_after_beep(audio.channels, graded.samples, graded.sample_rate, segmentation)
                live = live_call(audio.channels, graded.samples, graded.sample_rate, segmentation, heard)
                timings["voices"] = time.perf_counter() - t0
                if live is not None:
                    raise refuse(live, name, live_call_reason(live))

            def measure(span):
                return self._measure(graded, span, timings)

            if segmentation is None:
                span, recording = None, RecordingKind("voicemail", 1.0, {"found_by": "whole_file_asked"})
                transcript, metrics = measure(None)
            else:
                segmentation, span, transcript, metrics, recording = resolve(
                    segmentation, audio.duration_s, graded.samples, graded.sample_rate, measure,
                    self._encode, name, heard)
            if _no_speech(transcript, metrics, None if segmentation is None else segmentation.evidence):
                vad_s = round(sum(e - s for s, e in metrics.speech_intervals), 3)
                found = {"words": len(transcript.words), "vad_speech_s": vad_s,
                         "syllables": metrics.syllable_count}
                quiet = RecordingKind("no_speech", NO_SPEECH_CONFIDENCE, found)
                raise refuse(quiet, name, "no speech found (noise, hum or music?); nothing to grade")

            t0 = time.perf_counter()
            findings = content.analyze(
                transcript, metrics, engine=self.content_engine,
                number_min_probability=self.rubric.t("number_mismatch_min_probability"),
                **context.call_facts())
            timings["content"] = time.perf_counter() - t0
            if findings.callback.status in ("unconfirmed", "mismatch"):
                t0 = time.perf_counter()
                findings = self._recheck_number(graded, findings)
                timings["number_recheck"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            verdict = scoring.score(metrics, findings, self.rubric)
            if span is not None:
                verdict = _late_start_from(verdict, span[0])
            timings["scoring"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - one bad file becomes its own error record, never a crash
            error = file_error(exc, name)
            kind = getattr(error, "recording", None)  # NotGradedError: what the file is, though not graded
            if kind is None and error.code == "silent":  # nothing above -60 dBFS: no speech, by definition
                kind = RecordingKind("no_speech", 1.0, {"error": "silent"}).to_dict()
            return Report(error=ErrorInfo(error.code, printable(error.message)), timings_s=timings,
                          recording=RecordingKind(**kind) if kind else None, **common)
        return Report(
            duration_s=audio.duration_s,
            engine=self.transcriber.engine,
            model_name=self.transcriber.model_name,
            precision=getattr(self.transcriber, "precision", None),
            threads=getattr(self.transcriber, "threads", None),
            source=audio.source,
            transcript=transcript,
            metrics=metrics,
            content=findings,
            grade=verdict,
            timings_s=timings,
            channel=choice,
            segmentation=None if segmentation is None else _with_text(segmentation, transcript),
            recording=recording,
            **common,
        )

    def _recheck_number(self, graded: Audio, findings: content.ContentFindings) -> content.ContentFindings:
        """A second listen to a number that differs from the rep's: the span of its first such saying
        re-decoded with digit-friendly prompts (``content.REREAD_PROMPTS``), before the verdict stands."""
        reread = getattr(self.transcriber, "reread", None)
        cb = findings.callback
        slipped = [m for m in cb.mentions if m.digits != cb.expected]
        if reread is None or not slipped:
            return findings
        m, sr = slipped[0], graded.sample_rate
        i0 = max(0, int((m.start_s - content.REREAD_PAD_S) * sr))
        i1 = min(len(graded.samples), int((m.end_s + content.REREAD_PAD_S) * sr))
        clip = replace(graded, samples=graded.samples[i0:i1], channels=None)
        texts: list[str] = []
        for prompt in content.REREAD_PROMPTS:
            texts.append(reread(clip, prompt))
            cb = content.recheck(findings.callback, texts)
            if cb.status == "match":
                break
        return replace(findings, callback=cb)

    def _measure(self, graded: Audio, span: tuple[float, float] | None, timings: dict[str, float]):
        """Transcript and delivery metrics of ``graded`` (or of its ``span``, s), on the file's clock."""
        clip, offset_s = graded, 0.0
        if span is not None:
            sr = graded.sample_rate
            i0, i1 = int(round(span[0] * sr)), int(round(span[1] * sr))
            clip, offset_s = replace(graded, samples=graded.samples[i0:i1], channels=None), i0 / sr

        t0 = time.perf_counter()
        transcript = self.transcriber.transcribe(clip)
        timings["asr"] = timings.get("asr", 0.0) + time.perf_counter() - t0

        t0 = time.perf_counter()
        metrics = delivery.measure(clip, transcript, thresholds=self.label_thresholds)
        timings["delivery"] = timings.get("delivery", 0.0) + time.perf_counter() - t0
        if span is None:
            return transcript, metrics
        return to_file_clock(transcript, offset_s), to_file_clock(metrics, offset_s)


# --------------------------------------------------------------------------
# Call recordings: the channel, the message span, the file's clock
# --------------------------------------------------------------------------


def _choose_channel(audio: Audio, wanted: str, pick: bool = True) -> tuple[Audio, ChannelChoice]:
    """The audio to grade (a side of a two-channel file, or the mix) and why.

    ``pick=False`` (``--whole-file``): "auto" is the mix, as before segmentation existed.
    """
    if audio.channels is None:
        used = "mono" if audio.source.channels == 1 else "mix"
        reason = "mono" if used == "mono" else f"{audio.source.channels} channels: mixed"
        return audio, ChannelChoice(used, wanted, reason)
    if wanted == "auto" and not pick:
        return audio, ChannelChoice("mix", wanted, "whole_file")
    if wanted == "auto":
        index, evidence = pick_channel(audio.channels, audio.sample_rate)
        reason = str(evidence.get("reason", ""))
    else:
        index, evidence, reason = _SIDES.get(wanted), {}, "asked"
    if index is None:
        return audio, ChannelChoice("mix", wanted, reason, evidence)
    side = replace(audio, samples=np.ascontiguousarray(audio.channels[index]))
    return side, ChannelChoice(("left", "right")[index], wanted, reason, evidence)


def to_file_clock(item, offset_s: float):
    """``item`` (a Transcript or DeliveryMetrics measured on a cut) with every time moved by ``offset_s``.

    The one place where a span's clock becomes the file's: word and segment
    times, pauses, speech intervals, pace windows, fillers, the pitch track.
    Lengths (message length, leading and trailing silence) do not move.
    """
    if offset_s == 0.0:
        return item
    if isinstance(item, Transcript):
        return replace(
            item,
            segments=tuple(
                replace(s, start=s.start + offset_s, end=s.end + offset_s,
                        words=tuple(_shift_word(w, offset_s) for w in s.words))
                for s in item.segments
            ),
            asr_offset_s=item.asr_offset_s + offset_s,
        )
    if isinstance(item, delivery.DeliveryMetrics):
        m = item
        track = m.pitch_track
        return replace(
            m,
            speech_start_s=m.speech_start_s + offset_s,
            speech_end_s=m.speech_end_s + offset_s,
            pace_windows=tuple(_shift_span(w, offset_s) for w in m.pace_windows),
            pauses=tuple(_shift_span(p, offset_s) for p in m.pauses),
            speech_intervals=tuple((s + offset_s, e + offset_s) for s, e in m.speech_intervals),
            fillers=tuple(_shift_span(f, offset_s) for f in m.fillers),
            uncovered_voiced=tuple(_shift_span(p, offset_s) for p in m.uncovered_voiced),
            pitch_track=None if track is None else replace(
                track, times_s=tuple(t + offset_s for t in track.times_s)),
        )
    raise TypeError(f"to_file_clock takes a Transcript or DeliveryMetrics, not {type(item).__name__}")


def _shift_word(w: Word, offset_s: float) -> Word:
    return replace(w, start=w.start + offset_s, end=w.end + offset_s)


def _shift_span(item, offset_s: float):
    return replace(item, start_s=item.start_s + offset_s, end_s=item.end_s + offset_s)


def _late_start_from(verdict: scoring.Grade, start_s: float) -> scoring.Grade:
    """The late-start finding spans the silence before the rep speaks: from the span's start, not 0 s."""
    findings = tuple(
        replace(f, start_s=start_s) if f.code == "late_start" and f.start_s == 0.0 else f
        for f in verdict.findings
    )
    return replace(verdict, findings=findings)


def _with_text(seg: CallSegmentation, transcript: Transcript) -> CallSegmentation:
    """Segments of speech with the transcript's words whose middle falls inside them."""
    out = []
    for s in seg.segments:
        text = s.text
        if text is None and s.kind in ("greeting", "message", "after"):
            words = [w.word for w in transcript.words if s.start_s <= (w.start + w.end) / 2 < s.end_s]
            text = " ".join(words) if words else None
        out.append(replace(s, text=text) if text else s)
    return replace(seg, segments=tuple(out))


def _no_speech(transcript, metrics, segmentation: dict | None = None) -> bool:
    """True when neither the recogniser nor the VAD finds speech (see ``NO_SPEECH_PROB``).

    ``segmentation``: the call segmentation's evidence, when it ran: its voiced speech seconds and
    its longest speech run (clatter and line noise fill an energy VAD in blips of 0.15-0.3 s; speech
    has phrases).
    """
    heard = bool(transcript.words) and transcript.no_speech_prob < NO_SPEECH_PROB
    vad_s = sum(end - start for start, end in metrics.speech_intervals)
    blips = False
    if segmentation is not None:
        vad_s = min(vad_s, segmentation.get("voiced_speech_s", vad_s))
        blips = segmentation.get("longest_speech_s", NO_SPEECH_MIN_RUN_S) < NO_SPEECH_MIN_RUN_S
    return not heard and (vad_s < NO_SPEECH_MAX_VAD_S or metrics.syllable_count < NO_SPEECH_MAX_SYLLABLES
                          or blips)


def grade(
    path: str | os.PathLike,
    context: Context | None = None,
    *,
    options: GradeOptions | None = None,
    grader: Grader | None = None,
) -> Report:
    """Grade one voicemail recording.

    Parameters
    ----------
    path : str or PathLike
        The audio file.
    context : Context, optional
        Caller, company, callback number and prospect, when known.
    options : GradeOptions, optional
        Used to build a :class:`Grader` when ``grader`` is not given.
    grader : Grader, optional
        Reuse a loaded model across calls (recommended for many files).

    Returns
    -------
    Report
        With ``error`` set when the file could not be graded.
    """
    grader = grader or Grader(options)
    return grader.grade(path, context)
