"""The grade's data and the one accumulator every check writes into.

:class:`Finding`, :class:`DimensionScore` and :class:`Grade` are the typed
result of scoring; :class:`_Dimension` collects one dimension's earned points,
findings and strengths; :func:`band_score` is the shared curve of banded
metrics (length, rate, fillers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..timestamps import format_clock
from .rubric import Rubric

TIP_COUNT = 3
MIN_TIP_GAIN = 0.1  # overall points; smaller fixes are not worth a tip
# Score at the edge of the acceptable band and at the flag line, for banded
# metrics (length, rate, fillers): a curve shape, not a threshold.
ACCEPTABLE_EDGE_SCORE = 75.0
FLAG_EDGE_SCORE = 30.0
# A dimension none of whose checks could be measured scores this: neither
# credit nor penalty (the old half-marks for an unknown measurement).
UNKNOWN_DIMENSION_SCORE = 50.0


@dataclass(frozen=True)
class Finding:
    """Something to fix (or know), with where it happened and what fixing it is worth."""

    code: str
    severity: str
    dimension: str
    message: str
    start_s: float | None = None
    end_s: float | None = None
    gain: float = 0.0  # overall score points recovered by fixing it

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "dimension": self.dimension,
            "message": self.message,
            "start_s": None if self.start_s is None else round(self.start_s, 2),
            "end_s": None if self.end_s is None else round(self.end_s, 2),
            "gain": round(self.gain, 1),
        }


@dataclass(frozen=True)
class DimensionScore:
    key: str
    label: str
    score: float  # 0-100
    weight: float

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "score": round(self.score, 1), "weight": self.weight}


@dataclass(frozen=True)
class Grade:
    """The verdict: overall score and letter, per-dimension scores, findings, tips, strengths."""

    score: float
    letter: str
    dimensions: tuple[DimensionScore, ...]
    findings: tuple[Finding, ...]
    strengths: tuple[str, ...]
    rubric_version: str
    rubric_path: str

    @property
    def tips(self) -> tuple[Finding, ...]:
        """The findings whose fix would raise the score most."""
        ranked = sorted((f for f in self.findings if f.gain >= MIN_TIP_GAIN),
                        key=lambda f: (-f.gain, f.start_s or 0))
        return tuple(ranked[:TIP_COUNT])

    def to_dict(self) -> dict:
        return {
            "score": round(self.score, 1),
            "grade": self.letter,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "feedback": [f.to_dict() for f in self.findings],
            "tips": [f.to_dict() for f in self.tips],
            "strengths": list(self.strengths),
            "rubric": {"version": self.rubric_version, "path": self.rubric_path},
        }


@dataclass
class _Dimension:
    """Accumulates one dimension's checks: earned points, findings, strengths."""

    key: str
    rubric: Rubric
    earned: float = 0.0
    findings: list[tuple[str, str, str, float | None, float | None, float]] = field(default_factory=list)
    strengths: list[str] = field(default_factory=list)
    measured_points: float = 0.0  # points of the checks that could be measured
    unmeasured_points: float = 0.0  # points of checks left out (measurement missing)

    def check(self, name: str, fraction: float | None, *, finding=None, strength: str | None = None) -> None:
        """Award ``fraction`` of the check's points; a shortfall is attributed to ``finding``
        = (code, severity, message, start_s, end_s).  ``fraction=None``: the measurement
        is missing and the check is left out of the dimension (see :meth:`rescale`)."""
        points = self.rubric.points[self.key][name]
        if fraction is None:
            self.unmeasured_points += points
            return
        self.measured_points += points
        fraction = float(np.clip(fraction, 0.0, 1.0))
        self.earned += points * fraction
        if fraction < 1.0 and finding is not None:
            code, severity, message, start, end = finding
            self.findings.append((code, severity, message, start, end, points * (1.0 - fraction)))
        elif fraction >= 1.0 and strength:
            self.strengths.append(strength)

    def rescale(self) -> None:
        """Score on the measured checks only: scale earned points (and findings' lost
        points) by all points over measured points.  A no-op when every check was
        measured; ``UNKNOWN_DIMENSION_SCORE`` when none was."""
        if not self.unmeasured_points:
            return
        if not self.measured_points:
            self.earned = UNKNOWN_DIMENSION_SCORE
            return
        scale = (self.measured_points + self.unmeasured_points) / self.measured_points
        self.earned *= scale
        self.findings = [(*f[:5], f[5] * scale) for f in self.findings]

    def banded(self, score: float, finding=None, strength: str | None = None) -> None:
        """For dimensions scored by one curve (0-100) rather than points."""
        self.earned = float(np.clip(score, 0.0, 100.0))
        if self.earned < 100.0 and finding is not None:
            code, severity, message, start, end = finding
            self.findings.append((code, severity, message, start, end, 100.0 - self.earned))
        elif self.earned >= 100.0 and strength:
            self.strengths.append(strength)


def band_score(value: float, ideal: tuple[float, float], acceptable: tuple[float, float],
               flagged: tuple[float, float]) -> float:
    """100 inside ``ideal``, ACCEPTABLE_EDGE_SCORE at the acceptable edges,
    FLAG_EDGE_SCORE at the flag lines, 0 as far again beyond them; linear between."""
    lo_flag, hi_flag = flagged
    xs = [lo_flag - (acceptable[0] - lo_flag), lo_flag, acceptable[0], ideal[0],
          ideal[1], acceptable[1], hi_flag, hi_flag + (hi_flag - acceptable[1])]
    ys = [0.0, FLAG_EDGE_SCORE, ACCEPTABLE_EDGE_SCORE, 100.0, 100.0, ACCEPTABLE_EDGE_SCORE,
          FLAG_EDGE_SCORE, 0.0]
    return float(np.interp(value, xs, ys))


def clock(seconds: float | None) -> str:
    return format_clock(seconds, missing="?")


def past(value: float, limit: float, decimals: int = 0) -> str:
    """``value`` to ``decimals`` places, never shown as ``limit`` or on its far side.

    A tip quotes a measurement beside the rubric's line it crossed: 2.54
    digits/s over a 2.5 limit reads "2.6", not "2.5" ("went by at 2.5 digits/s:
    slow to about 2.5" contradicts itself).  Plain rounding is kept whenever it
    already shows the value on its side of the line.
    """
    step = 10.0 ** -decimals
    shown = round(value, decimals)
    if value > limit and shown <= limit:
        shown = math.floor(round(limit / step, 9)) * step + step
    elif value < limit and shown >= limit:
        shown = math.ceil(round(limit / step, 9)) * step - step
    return f"{shown:.{decimals}f}"
