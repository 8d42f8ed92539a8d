"""The rubric: dimensions, weights, thresholds with their sources, points and letter bands.

Every threshold a grade or a label depends on is read from the rubric file
(``rubric.toml`` in the package by default, each with its source); the report's
labels take their cut-offs from :func:`label_thresholds`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import tomllib

from ..delivery import LabelThresholds
from ..errors import RubricError

DIMENSIONS = (
    "opening", "relevance", "call_to_action", "brevity", "pace", "fluency", "voice", "audio_quality",
)  # fmt: skip
SEVERITIES = ("critical", "major", "minor", "info")
REQUIRED_THRESHOLDS = (
    "opening_window_s", "closing_window_s", "length_ideal_min_s", "length_ideal_max_s",
    "length_acceptable_min_s", "length_acceptable_max_s", "length_too_long_s", "length_too_short_s",
    "rate_ideal_min_wpm", "rate_ideal_max_wpm", "rate_acceptable_min_wpm", "rate_acceptable_max_wpm",
    "rate_too_fast_wpm", "rate_too_slow_wpm", "long_pause_s", "dead_air_s", "leading_silence_max_s",
    "filler_ok_per_min", "filler_bad_per_min", "monotone_sd_st", "lively_sd_st", "word_loudness_sd_min_db",
    "number_times_target", "number_max_digits_per_s", "number_min_pause_before_ms",
    "number_mismatch_max_score", "asks_target",
    "snr_good_db", "snr_poor_db", "clipping_max_ratio",
)  # fmt: skip
# Added after rubrics were first written: a rubric file without them takes the
# packaged rubric's value (:func:`label_thresholds`), so older files still load.
# The numbers a rubric may hold: a weight is relative (so any size up to this), points and letter
# lines are on the 0-100 scale, a threshold is any finite number of sane size.
WEIGHT_RANGE = (0.0, 1e6)
SCORE_RANGE = (0.0, 100.0)
THRESHOLD_RANGE = (-1e9, 1e9)
LATER_THRESHOLDS = ("pause_min_ms", "level_low_dbfs", "level_peak_high_dbfs", "reason_specific_details",
                    "number_mismatch_min_probability", "pace_min_speech_s", "pace_min_words")
REQUIRED_POINTS = {
    "opening": ("name_early", "company_early", "identity_repeated"),
    "relevance": ("prospect_named", "specific_reason", "no_generic_pitch", "no_weak_phrases"),
    "call_to_action": ("one_clear_ask", "number_said", "number_twice", "number_slow", "number_chunked",
                       "number_cued"),
    "voice": ("pitch_variation", "loudness_variation"),
    "audio_quality": ("snr", "no_clipping", "level"),
}


@dataclass(frozen=True)
class Rubric:
    """Weights, thresholds (with sources), points and letter bands."""

    version: str
    letters: dict[str, float]
    labels: dict[str, str]
    weights: dict[str, float]
    thresholds: dict[str, float]
    sources: dict[str, str]
    points: dict[str, dict[str, float]]
    path: str

    def t(self, name: str) -> float:
        """Threshold ``name``; one of ``LATER_THRESHOLDS`` that the file lacks is the packaged rubric's."""
        if name not in self.thresholds and name in LATER_THRESHOLDS:
            return _packaged_thresholds()[name]
        return self.thresholds[name]

    def letter(self, score: float) -> str:
        for letter, floor in sorted(self.letters.items(), key=lambda kv: -kv[1]):
            if score >= floor:
                return letter
        return "F"


def default_rubric_path() -> Path:
    return Path(str(resources.files("vmgrade") / "rubric.toml"))


def load_rubric(path: str | os.PathLike | None = None) -> Rubric:
    """Read and check a rubric TOML file (the packaged default when ``path`` is None).

    Raises
    ------
    RubricError
        When the file is missing, not TOML, or lacks a dimension, threshold or point.
    """
    path = Path(path) if path is not None else default_rubric_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RubricError(f"{path}: rubric file not found", code="rubric_not_found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: not a valid TOML rubric ({exc})", code="rubric_invalid") from exc
    try:
        dims = data["dimensions"]
        missing = [d for d in DIMENSIONS if d not in dims]
        if missing:
            raise RubricError(f"{path}: missing dimensions: {', '.join(missing)}", code="rubric_invalid")
        weights = {d: float(dims[d]["weight"]) for d in DIMENSIONS}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise RubricError(f"{path}: weights must be >= 0 and not all 0", code="rubric_invalid")
        raw = data["thresholds"]
        missing = [t for t in REQUIRED_THRESHOLDS if t not in raw]
        if missing:
            raise RubricError(f"{path}: missing thresholds: {', '.join(missing)}", code="rubric_invalid")
        thresholds = {k: float(v["value"] if isinstance(v, dict) else v) for k, v in raw.items()}
        sources = {k: str(v.get("source", "")) for k, v in raw.items() if isinstance(v, dict)}
        points = {d: {k: float(v) for k, v in data["points"][d].items()} for d in REQUIRED_POINTS}
        for d, names in REQUIRED_POINTS.items():
            absent = [n for n in names if n not in points[d]]
            if absent:
                raise RubricError(f"{path}: [points.{d}] lacks {', '.join(absent)}", code="rubric_invalid")
        letters = {k: float(v) for k, v in data["letters"].items()}
        _check_ranges(path, weights, thresholds, points, letters)
        return Rubric(
            version=str(data.get("version", "unversioned")),
            letters=letters,
            labels={d: str(dims[d].get("label", d)) for d in DIMENSIONS},
            weights=weights,
            thresholds=thresholds,
            sources=sources,
            points=points,
            path=str(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RubricError(f"{path}: malformed rubric ({type(exc).__name__}: {exc})",
                          code="rubric_invalid") from exc


def _check_ranges(path, weights: dict, thresholds: dict, points: dict, letters: dict) -> None:
    """Refuse numbers no grade can be made of: NaN, infinities, and values past their range (a
    weight of 1e308 overflows the weighted mean into NaN, and NaN is not JSON)."""
    problems = []
    groups = (("weight", weights, WEIGHT_RANGE), ("threshold", thresholds, THRESHOLD_RANGE),
              ("letter", letters, SCORE_RANGE))
    for group, values, (lo, hi) in groups:
        problems += [f"{group} {k} = {v}" for k, v in values.items()
                     if not (math.isfinite(v) and lo <= v <= hi)]
    for d, checks in points.items():
        problems += [f"points.{d}.{k} = {v}" for k, v in checks.items()
                     if not (math.isfinite(v) and SCORE_RANGE[0] <= v <= SCORE_RANGE[1])]
    if problems:
        raise RubricError(f"{path}: numbers out of range (weights 0-{WEIGHT_RANGE[1]:g}, points and letters "
                          f"0-100, thresholds finite): {'; '.join(problems[:5])}", code="rubric_invalid")


_PACKAGED: dict[str, float] = {}


def _packaged_thresholds() -> dict[str, float]:
    if not _PACKAGED:
        _PACKAGED.update(load_rubric().thresholds)
    return _PACKAGED


def label_thresholds(rubric: Rubric | None = None) -> LabelThresholds:
    """The rubric's cut-offs for the report's labels, for :func:`vmgrade.delivery.measure`.

    Parameters
    ----------
    rubric : Rubric, optional
        The rubric in use; the packaged default when None.  A threshold in
        ``LATER_THRESHOLDS`` that the file lacks is the packaged rubric's.

    Returns
    -------
    LabelThresholds
    """
    rubric = rubric or load_rubric()
    t = rubric.t
    return LabelThresholds(
        min_pause_ms=t("pause_min_ms"),
        pace_min_speech_s=t("pace_min_speech_s"),
        pace_min_words=int(t("pace_min_words")),
        long_pause_s=t("long_pause_s"),
        monotone_sd_st=t("monotone_sd_st"),
        level_low_dbfs=t("level_low_dbfs"),
        peak_high_dbfs=t("level_peak_high_dbfs"),
        clip_ratio_high=t("clipping_max_ratio"),
    )

