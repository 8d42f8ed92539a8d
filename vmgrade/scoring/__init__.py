"""Score a voicemail against the rubric: dimensions, overall score, letter,
timestamped findings, the top tips and strengths.

Every threshold and weight comes from the rubric file (``rubric.toml`` in
the package by default, each with its source; :mod:`.rubric` reads it).  The
checks apply them: :mod:`.content_checks` (opening, relevance, call to action)
and :mod:`.delivery_checks` (brevity, pace, fluency, voice, audio quality),
each with the named shapes of its score curves (how much of a check a partial
miss keeps) and why that value; :mod:`.grade` holds the result types.  The
rubric also sets the labels of the report's metrics: :func:`label_thresholds`
hands its cut-offs to :func:`vmgrade.delivery.measure`.

A check whose measurement is missing (no SNR without speech frames, no pitch
without voiced frames) is left out of its dimension, which then scores on the
checks it could measure, rather than being given marks it did not earn.
"""

from __future__ import annotations

from ..content import ContentFindings
from ..delivery import DeliveryMetrics
from .content_checks import _call_to_action, _opening, _relevance, _transcribability
from .delivery_checks import _audio_quality, _brevity, _fluency, _pace, _voice
from .grade import (
    ACCEPTABLE_EDGE_SCORE,
    FLAG_EDGE_SCORE,
    MIN_TIP_GAIN,
    TIP_COUNT,
    UNKNOWN_DIMENSION_SCORE,
    DimensionScore,
    Finding,
    Grade,
    _Dimension,
    band_score,
)
from .rubric import (
    DIMENSIONS,
    LATER_THRESHOLDS,
    REQUIRED_POINTS,
    REQUIRED_THRESHOLDS,
    SEVERITIES,
    Rubric,
    default_rubric_path,
    label_thresholds,
    load_rubric,
)


def score(delivery: DeliveryMetrics, content: ContentFindings, rubric: Rubric | None = None) -> Grade:
    """Grade one voicemail.

    Parameters
    ----------
    delivery : DeliveryMetrics
        How it was said.
    content : ContentFindings
        What was said.
    rubric : Rubric, optional
        Thresholds and weights; the packaged default when None.

    Returns
    -------
    Grade
    """
    rubric = rubric or load_rubric()
    dims = {key: _Dimension(key, rubric) for key in DIMENSIONS}
    start = delivery.speech_start_s if delivery.message_length_s > 0 else content.message_start_s
    end = delivery.speech_end_s if delivery.message_length_s > 0 else content.message_end_s
    _opening(dims["opening"], content, rubric, start, end)
    _relevance(dims["relevance"], content, rubric)
    _call_to_action(dims["call_to_action"], content, rubric)
    _brevity(dims["brevity"], delivery, rubric, start, end)
    _pace(dims["pace"], delivery, rubric)
    _fluency(dims["fluency"], delivery, rubric)
    _voice(dims["voice"], delivery, rubric)
    _audio_quality(dims["audio_quality"], delivery, rubric)
    for dim in dims.values():
        dim.rescale()

    total_weight = sum(rubric.weights.values())
    dimension_scores = tuple(
        DimensionScore(k, rubric.labels[k], dims[k].earned, rubric.weights[k]) for k in DIMENSIONS
    )
    overall = sum(d.score * d.weight for d in dimension_scores) / total_weight
    if content.callback.matches_expected is False:
        overall = min(overall, rubric.t("number_mismatch_max_score"))
    findings = []
    for key, dim in dims.items():
        share = rubric.weights[key] / total_weight
        for code, severity, message, s, e, lost in dim.findings:
            findings.append(Finding(code, severity, key, message, s, e, lost * share))
    findings += _transcribability(content)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), -f.gain))
    strengths = tuple(s for k in DIMENSIONS for s in dims[k].strengths)
    return Grade(
        score=overall,
        letter=rubric.letter(overall),
        dimensions=dimension_scores,
        findings=tuple(findings),
        strengths=strengths,
        rubric_version=rubric.version,
        rubric_path=rubric.path,
    )


CONTENT_DIMENSIONS = ("opening", "relevance", "call_to_action")


def content_score(content: ContentFindings, rubric: Rubric | None = None) -> float:
    """The weighted score (0-100) of what was said alone: opening, relevance, call to action.

    For a script graded before it is recorded (``content.analyze_text``) and
    for benchmarks that feed text; the callback-number cap applies as in :func:`score`.
    """
    rubric = rubric or load_rubric()
    dims = {key: _Dimension(key, rubric) for key in CONTENT_DIMENSIONS}
    start, end = content.message_start_s, content.message_end_s
    _opening(dims["opening"], content, rubric, start, end)
    _relevance(dims["relevance"], content, rubric)
    _call_to_action(dims["call_to_action"], content, rubric)
    for dim in dims.values():
        dim.rescale()
    total = sum(rubric.weights[k] for k in CONTENT_DIMENSIONS)
    value = sum(dims[k].earned * rubric.weights[k] for k in CONTENT_DIMENSIONS) / total
    if content.callback.matches_expected is False:
        value = min(value, rubric.t("number_mismatch_max_score"))
    return value


__all__ = [
    "ACCEPTABLE_EDGE_SCORE", "DIMENSIONS", "FLAG_EDGE_SCORE", "LATER_THRESHOLDS", "MIN_TIP_GAIN",
    "REQUIRED_POINTS", "REQUIRED_THRESHOLDS", "SEVERITIES", "TIP_COUNT", "UNKNOWN_DIMENSION_SCORE",
    "DimensionScore", "Finding", "Grade", "Rubric", "band_score", "content_score", "default_rubric_path",
    "label_thresholds", "load_rubric", "score", "_Dimension", "_call_to_action", "_relevance",
]
