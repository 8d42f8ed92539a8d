"""``grade()``: the one public entry point every shell (CLI, batch, web) calls.

audio.load -> transcribe -> delivery.measure -> content.analyze -> scoring.score -> Report
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import content, delivery, scoring
from ._version import __version__
from .asr.transcribe import (
    DEFAULT_LANGUAGE,
    FILLER_PROMPT,
    TranscribeOptions,
    Transcriber,
    default_filler_prompt,
    make_transcriber,
)
from .asr.weights import DEFAULT_MODEL
from .audio import DEFAULT_MAX_DURATION_S, load
from .errors import AudioError, file_error, printable
from .report import ErrorInfo, Report

# No speech (noise, hum, a random body behind a valid header): no transcript words, or Whisper
# sure there is no speech, AND little for the VAD (under NO_SPEECH_MAX_VAD_S of speech, or fewer
# than NO_SPEECH_MAX_SYLLABLES syllable nuclei: a steady hum fills the energy VAD but has none).
# Every bundled sample has words, >= 5 s of VAD speech and >= 21 syllables.
NO_SPEECH_PROB = 0.8
NO_SPEECH_MAX_VAD_S = 1.0
NO_SPEECH_MAX_SYLLABLES = 3


@dataclass(frozen=True)
class Context:
    """What the rep tells us about the call; every field optional."""

    caller_name: str | None = None
    company: str | None = None
    callback_number: str | None = None
    prospect_name: str | None = None
    prospect_company: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


# The context's names, in order: manifest and CSV columns, web form fields, batch resume keys.
CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Context))


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
    """

    def __init__(self, options: GradeOptions | None = None, transcriber: Transcriber | None = None):
        self.options = options or GradeOptions()
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
                ),
            )
        self.transcriber = transcriber
        self.rubric = scoring.load_rubric(self.options.rubric)

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
            audio = load(Path(path), max_duration_s=self.options.max_duration_s)
            timings["decode"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            transcript = self.transcriber.transcribe(audio)
            timings["asr"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            # the report's labels (pauses, monotone, level) follow the rubric that grades it
            metrics = delivery.measure(audio, transcript, thresholds=scoring.label_thresholds(self.rubric))
            timings["delivery"] = time.perf_counter() - t0
            if _no_speech(transcript, metrics):
                raise AudioError(f"{name}: no speech found (noise, hum or music?); nothing to grade",
                                 code="no_speech", path=name)

            t0 = time.perf_counter()
            findings = content.analyze(transcript, metrics, **context.to_dict())
            timings["content"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            verdict = scoring.score(metrics, findings, self.rubric)
            timings["scoring"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - one bad file becomes its own error record, never a crash
            error = file_error(exc, name)
            return Report(error=ErrorInfo(error.code, printable(error.message)), timings_s=timings, **common)
        return Report(
            duration_s=audio.duration_s,
            engine=self.transcriber.engine,
            model_name=self.transcriber.model_name,
            precision=getattr(self.transcriber, "precision", None),
            source=audio.source,
            transcript=transcript,
            metrics=metrics,
            content=findings,
            grade=verdict,
            timings_s=timings,
            **common,
        )


def _no_speech(transcript, metrics) -> bool:
    """True when neither the recogniser nor the VAD finds speech (see ``NO_SPEECH_PROB``)."""
    heard = bool(transcript.words) and transcript.no_speech_prob < NO_SPEECH_PROB
    vad_s = sum(end - start for start, end in metrics.speech_intervals)
    return not heard and (vad_s < NO_SPEECH_MAX_VAD_S or metrics.syllable_count < NO_SPEECH_MAX_SYLLABLES)


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
