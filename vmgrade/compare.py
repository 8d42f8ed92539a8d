"""Compare graded voicemails: before/after deltas, a word-level transcript
diff, a plain-language summary and, for three or more recordings, a trend.

Works on report dicts (``Report.to_dict()``, or the JSON of
``vmgrade grade --format json``), so saved reports need no re-grading.

A change is *noticeable* when a listener would hear it: it crosses a rubric
band (pace into the 140-160 wpm target, fillers under 5 per minute, the
number said twice...) or it exceeds a just-noticeable difference from
``rubric.toml`` (``jnd_*`` thresholds, each with its source; tempo: 10%).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Recording:
    """One report taking part in a comparison, in comparison order.

    Attributes
    ----------
    label : str
        Short name shown in tables and charts (the file name unless labels were given).
    file : str
        ``report["file"]``: the audio path the report was made from.
    report : dict
        The full report dict (for charts: transcript words, metrics, findings).
    recorded_at : str or None
        ISO 8601 recording time when known, else None.
    recorded_at_source : str or None
        Where ``recorded_at`` came from: ``"report"`` (a ``recorded_at`` key in the
        report or its context) or ``"file_mtime"`` (the audio file's modification time).
    score : float or None
        Overall score 0-100; None when the report is an error.
    letter : str or None
        Grade letter; None when the report is an error.
    error : dict or None
        ``{"code", "message"}`` when the file could not be graded; such a
        recording is listed but left out of deltas and trends.
    """

    label: str
    file: str
    report: dict
    recorded_at: str | None = None
    recorded_at_source: str | None = None
    score: float | None = None
    letter: str | None = None
    error: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "file": self.file,
            "recorded_at": self.recorded_at,
            "recorded_at_source": self.recorded_at_source,
            "score": self.score,
            "grade": self.letter,
            "error": self.error,
        }


@dataclass(frozen=True)
class Delta:
    """How one quantity changed from the first (before) to the last (after) recording.

    Attributes
    ----------
    key : str
        ``"score"``, a dimension key (``"pace"``) or a metric key (``"rate_wpm"``).
    kind : str
        ``"score"``, ``"dimension"`` or ``"metric"``.
    label : str
        Human name ("Speaking rate", "Pace and pauses").
    unit : str
        Unit of ``before``/``after``/``delta`` ("points", "wpm", "s", "per min", "st", "dB", "%", "").
    dimension : str or None
        The rubric dimension a metric feeds (None for the overall score).
    before, after : float or None
        Values in the first and last recording (None: not measured, e.g. no number said).
    delta : float or None
        ``after - before`` (None when either is None).
    relative : float or None
        ``delta / |before|`` (None when before is None or 0).
    band_before, band_after : str or None
        Rubric band of each value ("target", "too fast", "B"...); None for unbanded quantities.
    crossed_band : bool
        The value moved into another rubric band.
    jnd : float or None
        Just-noticeable relative change for this quantity (0.10 = 10%) when one is known.
    noticeable : bool
        A listener would notice: ``crossed_band``, ``|relative| >= jnd``, or (dimensions)
        a finding of that dimension was fixed or appeared.
    direction : str
        ``"better"``, ``"worse"`` or ``"same"``, by the rubric (not by the sign of ``delta``).
    source : str
        Why it counts as noticeable: the cited source of the JND or band thresholds ("" if not).
    fixed, new : tuple of str
        Dimensions only: finding codes present before and gone after, and the reverse.
    """

    key: str
    kind: str
    label: str
    unit: str
    dimension: str | None
    before: float | None
    after: float | None
    delta: float | None
    relative: float | None
    band_before: str | None = None
    band_after: str | None = None
    crossed_band: bool = False
    jnd: float | None = None
    noticeable: bool = False
    direction: str = "same"
    source: str = ""
    fixed: tuple[str, ...] = ()
    new: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "unit": self.unit,
            "dimension": self.dimension,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "relative": self.relative,
            "band_before": self.band_before,
            "band_after": self.band_after,
            "crossed_band": self.crossed_band,
            "jnd": self.jnd,
            "noticeable": self.noticeable,
            "direction": self.direction,
            "source": self.source,
            "fixed": list(self.fixed),
            "new": list(self.new),
        }


@dataclass(frozen=True)
class DiffOp:
    """One run of the word-level transcript diff (difflib opcodes on words).

    Attributes
    ----------
    op : str
        ``"equal"``, ``"delete"`` (only before), ``"insert"`` (only after) or ``"replace"``.
    before, after : tuple of str
        The words on each side as transcribed (punctuation kept; empty for insert/delete).
    before_start_s, after_start_s : float or None
        Start time of the run's first word on each side (None when that side is empty
        or the report has no word times).
    """

    op: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    before_start_s: float | None = None
    after_start_s: float | None = None

    def to_dict(self) -> dict:
        return {
            "op": self.op,
            "before": list(self.before),
            "after": list(self.after),
            "before_start_s": self.before_start_s,
            "after_start_s": self.after_start_s,
        }


@dataclass(frozen=True)
class Trend:
    """One quantity across all recordings (three or more), in comparison order.

    Attributes
    ----------
    key, kind, label, unit : str
        As in :class:`Delta` (kind ``"score"``, ``"dimension"`` or ``"metric"``).
    values : tuple of (float or None)
        One per recording, aligned with ``Comparison.recordings`` (None: error or not measured).
    direction : str
        First to last graded value, judged by the rubric: ``"improving"``, ``"declining"``,
        ``"steady"``; ``"mixed"`` when it went both ways by a noticeable step; ``"n/a"``
        with fewer than two values.
    best_index : int or None
        Index (into ``values``) of the best value by the rubric.
    """

    key: str
    kind: str
    label: str
    unit: str
    values: tuple[float | None, ...]
    direction: str = "n/a"
    best_index: int | None = None

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "unit": self.unit,
            "values": list(self.values),
            "direction": self.direction,
            "best_index": self.best_index,
        }


@dataclass
class Comparison:
    """The result of :func:`compare_reports`.

    ``before`` is the first graded recording and ``after`` the last, in comparison
    order; with three or more recordings ``trends`` holds the progress per dimension.

    Attributes
    ----------
    recordings : list of Recording
        Every input, in comparison order (error reports included, flagged).
    order : str
        ``"given"`` (as passed) or ``"recorded_at"`` (sorted by recording time).
    before, after : int or None
        Indexes into ``recordings`` of the first and last graded recording (None when
        fewer than two could be graded).
    score : Delta or None
        Overall score, banded by grade letter.
    dimensions : list of Delta
        One per rubric dimension, in rubric order, with ``fixed``/``new`` finding codes.
    metrics : list of Delta
        Delivery and content metrics a listener can hear (pace, length, fillers, pauses,
        pitch variation, loudness variation, noise, clipping, the callback number, asks,
        when name and company come).
    transcript_diff : list of DiffOp
        Word-level diff of the before and after transcripts.
    trends : list of Trend
        Score and every dimension (and the key metrics) across all recordings; empty
        with fewer than three graded recordings.
    summary : list of str
        Plain-language lines, most important first.
    errors : list of str
        One message per recording that could not be graded or compared.
    rubric_version : str
        Version of the rubric the bands and JNDs came from.
    """

    recordings: list[Recording]
    order: str = "given"
    before: int | None = None
    after: int | None = None
    score: Delta | None = None
    dimensions: list[Delta] = field(default_factory=list)
    metrics: list[Delta] = field(default_factory=list)
    transcript_diff: list[DiffOp] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rubric_version: str = ""

    @property
    def ok(self) -> bool:
        """At least two recordings were graded and compared."""
        return self.before is not None and self.after is not None

    @property
    def noticeable(self) -> list[Delta]:
        """Dimension and metric deltas a listener would notice."""
        return [d for d in self.dimensions + self.metrics if d.noticeable]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``vmgrade compare --format json``; keys documented in README)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "comparison",
            "rubric_version": self.rubric_version,
            "order": self.order,
            "recordings": [r.to_dict() for r in self.recordings],
            "before": self.before,
            "after": self.after,
            "score": self.score.to_dict() if self.score else None,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "metrics": [m.to_dict() for m in self.metrics],
            "transcript_diff": [op.to_dict() for op in self.transcript_diff],
            "trends": [t.to_dict() for t in self.trends],
            "summary": list(self.summary),
            "errors": list(self.errors),
        }

    def to_text(self) -> str:
        """Plain text: summary, score, noticeable changes, all deltas, trends, transcript diff."""
        return format_text(self)


def compare_reports(reports, labels=None, rubric=None, *, order: str = "given") -> Comparison:
    """Compare report dicts (see module docstring). Implementation follows."""
    raise NotImplementedError


def format_text(comparison: Comparison) -> str:
    raise NotImplementedError
