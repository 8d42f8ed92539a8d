"""Report JSON checked at the edge: what ``compare`` reads from a file is a vmgrade report or refused.

A saved report is the user's file, not ours: it may be hand-edited, cut off by a
full disk or made by something else. :func:`report_problems` lists everything
in one report dict that :mod:`vmgrade.compare` would trip over or, worse,
compare silently (a score of ``"90"``, ``NaN``, ``1e308``, a negative pause);
:func:`vmgrade.compare.load_reports` turns them into ``report_invalid`` naming
the file and where in it.
"""

from __future__ import annotations

import math
from typing import Any

SCORE_RANGE = (0.0, 100.0)  # scores and dimension scores are points out of 100
MAX_PROBLEMS = 10  # problems listed per file: enough to fix it, not a wall of text
# Upper bounds far beyond any real recording (the longest graded file is 600 s by default): a value
# past them is a typo or a forgery, and would draw a chart axis to infinity.
MAX_SECONDS = 86_400.0
MAX_RATE = 10_000.0  # words or digits per unit, fillers per minute
MAX_INT = 10**300  # an integer past this overflows float(): no report value comes near
# Metrics compare reads, with their ranges (None: no bound on that side). snr_db may be negative
# (more noise than speech); the rest are durations, rates, spreads and ratios, never negative.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    "rate_wpm": (0.0, MAX_RATE),
    "syllable_wpm_estimate": (0.0, MAX_RATE),
    "message_length_s": (0.0, MAX_SECONDS),
    "filler_rate_per_min": (0.0, MAX_RATE),
    "longest_pause_ms": (0.0, MAX_SECONDS * 1000.0),
    "leading_silence_s": (0.0, MAX_SECONDS),
    "speech_start_s": (0.0, MAX_SECONDS),
    "f0_sd_st": (0.0, 48.0),  # four octaves of spread: no voice
    "word_loudness_sd_db": (0.0, 200.0),
    "snr_db": (-200.0, 200.0),
    "clipping_ratio": (0.0, 1.0),
    "f0_median_hz": (0.0, 10_000.0),
    "f0_mean_hz": (0.0, 10_000.0),
}
# The metrics that are words or yes/no; every other scalar metric is a number within MAX_METRIC.
METRIC_TEXTS = frozenset({"pace_source", "vad", "word_loudness_source", "snr_note", "bandwidth"})
METRIC_FLAGS = frozenset({"pace_measurable", "monotone", "level_too_low", "level_too_high"})
MAX_METRIC = 1e6  # past any duration in ms, count or level in dB a recording has


def report_problems(report: Any) -> list[str]:
    """What is wrong with one report dict as ``compare`` reads it (empty: nothing).

    Checks the keys compare uses: ``file``; ``error`` (code and message) or
    ``score`` and ``grade``; and, when present, ``dimensions``, ``metrics``,
    ``content``, ``feedback``, ``transcript``, ``recorded_at`` and ``rubric``:
    their types, that numbers are finite (``NaN`` and infinities are refused)
    and within range (:data:`SCORE_RANGE`, :data:`METRIC_RANGES`).
    """
    if not isinstance(report, dict):
        return [f"a {type(report).__name__}, not a report object"]
    problems: list[str] = []
    check = _Checker(problems)
    check.text(report, "file", required=True)
    if "error" in report and report["error"] is not None:
        error = report["error"]
        if not isinstance(error, dict):
            problems.append("error: not an object with code and message")
        else:
            check.text(error, "code", required=True, where="error.")
            check.text(error, "message", where="error.")
        return problems
    if "score" not in report:
        problems.append("neither score nor error: not a vmgrade report")
    check.number(report, "score", SCORE_RANGE, required=True)
    check.text(report, "grade", required=True)
    check.number(report, "duration_s", (0.0, MAX_SECONDS))
    for i, dim in enumerate(check.items(report, "dimensions")):
        check.text(dim, "key", required=True, where=f"dimensions[{i}].")
        check.text(dim, "label", required=True, where=f"dimensions[{i}].")
        check.number(dim, "score", SCORE_RANGE, required=True, where=f"dimensions[{i}].")
    metrics = check.mapping(report, "metrics")
    for name, bounds in METRIC_RANGES.items():
        check.number(metrics, name, bounds, where="metrics.")
    for name, value in metrics.items():  # every other scalar metric: text, a flag or a number
        if name in METRIC_RANGES or isinstance(value, (list, dict)) or value is None:
            continue
        if name in METRIC_TEXTS:
            check.text(metrics, name, where="metrics.")
        elif name in METRIC_FLAGS:
            check.flag(metrics, name, where="metrics.")
        else:
            check.number(metrics, name, (-MAX_METRIC, MAX_METRIC), where="metrics.")
    for name in ("message_start_s", "message_end_s"):
        check.number(report, name, (0.0, MAX_SECONDS))
    content = check.mapping(report, "content")
    check.number(content, "ask_count", (0.0, MAX_RATE), where="content.")
    identity = check.mapping(content, "identity", where="content.")
    for name in ("name_first_s", "company_first_s"):
        check.number(identity, name, (0.0, MAX_SECONDS), where="content.identity.")
    callback = check.mapping(content, "callback", where="content.")
    check.number(callback, "times_said", (0.0, MAX_RATE), where="content.callback.")
    for i, mention in enumerate(check.items(callback, "mentions", where="content.callback.")):
        check.number(mention, "digits_per_s", (0.0, MAX_RATE), required=True,
                     where=f"content.callback.mentions[{i}].")
    for key in ("feedback", "tips"):
        for i, item in enumerate(check.items(report, key)):
            at = f"{key}[{i}]."
            check.text(item, "code", required=True, where=at)
            for name in ("dimension", "message", "severity"):
                check.text(item, name, where=at)
            check.number(item, "gain", (0.0, SCORE_RANGE[1]), where=at)
            check.span(item, where=at)
    check.texts(report, "strengths")
    transcript = check.mapping(report, "transcript")
    check.text(transcript, "text", where="transcript.")
    for i, word in enumerate(check.items(transcript, "words", where="transcript.")):
        check.text(word, "word", required=True, where=f"transcript.words[{i}].")
        check.span(word, ("start", "end"), required=True, where=f"transcript.words[{i}].")
        check.number(word, "probability", (0.0, 1.0), required=True, where=f"transcript.words[{i}].")
    for key in ("pauses", "fillers"):
        for i, item in enumerate(check.items(metrics, key, where="metrics.")):
            check.span(item, required=True, where=f"metrics.{key}[{i}].")
            check.number(item, "duration_ms", (0.0, MAX_SECONDS * 1000.0), required=key == "pauses",
                         where=f"metrics.{key}[{i}].")
    for i, mention in enumerate(check.items(callback, "mentions", where="content.callback.")):
        check.span(mention, required=True, where=f"content.callback.mentions[{i}].")
    for i, move in enumerate(check.items(content, "moves", where="content.")):
        check.span(move, required=True, where=f"content.moves[{i}].")
        check.text(move, "text", where=f"content.moves[{i}].")
        check.texts(move, "moves", required=True, where=f"content.moves[{i}].")
    check.mapping(content, "engine", where="content.")
    check.text(report, "recorded_at")
    check.text(check.mapping(report, "context"), "recorded_at", where="context.")
    rubric = check.mapping(report, "rubric")
    check.text(rubric, "version", where="rubric.")
    check.text(rubric, "path", where="rubric.")
    # what the HTML comparison draws
    check.text(check.mapping(report, "recording"), "kind", where="recording.")
    for i, window in enumerate(check.items(metrics, "pace_windows", where="metrics.")):
        for name in ("start_s", "end_s", "rate_wpm"):
            check.number(window, name, (0.0, MAX_SECONDS if name != "rate_wpm" else MAX_RATE), required=True,
                         where=f"metrics.pace_windows[{i}].")
    pitch = check.mapping(metrics, "pitch_track", where="metrics.")
    if pitch:  # a time per pitch value
        for name in ("times_s", "f0_hz"):
            check.numbers(pitch, name, (0.0, MAX_SECONDS if name == "times_s" else 10_000.0), required=True,
                          where="metrics.pitch_track.")
        times, f0 = pitch.get("times_s"), pitch.get("f0_hz")
        if isinstance(times, list) and isinstance(f0, list) and len(times) != len(f0):
            check.problems.append(f"metrics.pitch_track: {len(times)} times for {len(f0)} values")
    reason = check.mapping(content, "reason", where="content.")
    for key in ("details", "proof_details"):
        for i, detail in enumerate(check.items(reason, key, where="content.reason.")):
            at = f"content.reason.{key}[{i}]."
            check.number(detail, "start_s", (0.0, MAX_SECONDS), required=True, where=at)
            check.text(detail, "text", required=True, where=at)
            check.text(detail, "kind", required=True, where=at)
    return problems


# Objects a report may leave out: an explicit null reads as left out (normalised() drops it), so
# the comparison's ``report.get(key, {})`` never meets a None.
OPTIONAL_OBJECTS = ("content", "metrics", "transcript", "recording", "rubric", "context")
OPTIONAL_CONTENT_OBJECTS = ("identity", "callback", "reason")


def normalised(report: dict) -> dict:
    """``report`` (checked by :func:`report_problems`) with null objects dropped, as if absent."""
    out = {k: v for k, v in report.items() if not (k in OPTIONAL_OBJECTS and v is None)}
    if isinstance(out.get("content"), dict):
        out["content"] = {k: v for k, v in out["content"].items()
                          if not (k in OPTIONAL_CONTENT_OBJECTS and v is None)}
    return out


class _Checker:
    """Appends one line per problem to ``problems``; each check passes a missing optional key."""

    def __init__(self, problems: list[str]):
        self.problems = problems

    def _get(self, node: dict, key: str, required: bool, where: str) -> tuple[bool, Any]:
        if key not in node or node[key] is None:
            if required:
                self.problems.append(f"{where}{key}: missing")
            return False, None
        return True, node[key]

    def text(self, node: dict, key: str, required: bool = False, where: str = "") -> None:
        present, value = self._get(node, key, required, where)
        if present and not isinstance(value, str):
            self.problems.append(f"{where}{key}: {_shown(value)} is not text")

    def number(self, node: dict, key: str, bounds: tuple[float | None, float | None],
               required: bool = False, where: str = "") -> None:
        present, value = self._get(node, key, required, where)
        if not present:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problems.append(f"{where}{key}: {_shown(value)} is not a number")
        elif isinstance(value, int) and abs(value) > MAX_INT:  # math.isfinite overflows on it
            self.problems.append(f"{where}{key}: {_shown(value)} is out of range")
        elif not math.isfinite(value):
            self.problems.append(f"{where}{key}: {value} is not a finite number")
        elif (bounds[0] is not None and value < bounds[0]) or (bounds[1] is not None and value > bounds[1]):
            low, high = ("" if b is None else f"{b:g}" for b in bounds)
            self.problems.append(f"{where}{key}: {value:g} is outside {low}..{high}")

    def numbers(self, node: dict, key: str, bounds: tuple[float | None, float | None],
                required: bool = False, where: str = "") -> None:
        """A list of numbers (null entries allowed: an unvoiced pitch frame), each within ``bounds``."""
        present, value = self._get(node, key, required, where)
        if not present:
            return
        if not isinstance(value, list):
            self.problems.append(f"{where}{key}: {_shown(value)} is not a list")
            return
        for i, item in enumerate(value):
            if item is not None:
                before = len(self.problems)
                self.number({"v": item}, "v", bounds, where=f"{where}{key}[{i}].")
                if len(self.problems) > before:
                    return  # one bad entry is enough to name

    def flag(self, node: dict, key: str, where: str = "") -> None:
        present, value = self._get(node, key, False, where)
        if present and not isinstance(value, bool):
            self.problems.append(f"{where}{key}: {_shown(value)} is not true or false")

    def span(self, node: dict, keys: tuple[str, str] = ("start_s", "end_s"), required: bool = False,
             where: str = "") -> None:
        """A start and an end time, seconds (each may be null unless ``required``)."""
        for key in keys:
            self.number(node, key, (0.0, MAX_SECONDS), required=required, where=where)

    def texts(self, node: dict, key: str, required: bool = False, where: str = "") -> None:
        """A list of strings."""
        present, value = self._get(node, key, required, where)
        if present and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            self.problems.append(f"{where}{key}: {_shown(value)} is not a list of text")

    def mapping(self, node: dict, key: str, where: str = "") -> dict:
        present, value = self._get(node, key, False, where)
        if present and not isinstance(value, dict):
            self.problems.append(f"{where}{key}: {_shown(value)} is not an object")
            return {}
        return value or {}

    def items(self, node: dict, key: str, where: str = "") -> list[dict]:
        present, value = self._get(node, key, False, where)
        if not present:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{where}{key}: {_shown(value)} is not a list")
            return []
        bad = [i for i, v in enumerate(value) if not isinstance(v, dict)]
        if bad:
            self.problems.append(f"{where}{key}[{bad[0]}]: not an object")
        return [v for v in value if isinstance(v, dict)]


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reject_constant(name: str) -> float:
    """``json.loads(parse_constant=…)``: ``NaN`` and ``Infinity`` are no JSON numbers; refuse them."""
    raise ValueError(f"{name} is not a JSON number")
