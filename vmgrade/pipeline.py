"""``grade()``: the one public entry point every shell (CLI, batch, web) calls.

audio.load -> transcribe -> delivery.measure -> content.analyze -> scoring.score -> Report
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
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
from .errors import VmgradeError
from .report import ErrorInfo, Report


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
        common = dict(
            file=str(path),
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
            metrics = delivery.measure(audio, transcript)
            timings["delivery"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            findings = content.analyze(transcript, metrics, **context.to_dict())
            timings["content"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            verdict = scoring.score(metrics, findings, self.rubric)
            timings["scoring"] = time.perf_counter() - t0
        except VmgradeError as exc:
            return Report(error=ErrorInfo(exc.code, exc.message), timings_s=timings, **common)
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
