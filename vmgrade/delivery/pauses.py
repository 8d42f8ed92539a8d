"""Pauses: silent gaps between stretches of speech, and span arithmetic.

Times are in seconds; a speech track is a sequence of (start_s, end_s) pairs
in order (:func:`vmgrade.vad.detect_speech`).  How long a gap must be to count
as a pause is the rubric's ``pause_min_ms`` (see
:class:`vmgrade.delivery.metrics.LabelThresholds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._round import _r


@dataclass(frozen=True)
class Pause:
    """A silent gap between two stretches of speech."""

    start_s: float
    end_s: float

    @property
    def duration_ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0

    def to_dict(self) -> dict:
        return {
            "start_s": _r(self.start_s, 3),
            "end_s": _r(self.end_s, 3),
            "duration_ms": _r(self.duration_ms, 0),
        }


def find_pauses(
    intervals: Sequence[tuple[float, float]], *, min_pause_ms: float
) -> list[Pause]:
    """Gaps of at least ``min_pause_ms`` between consecutive speech intervals
    (leading and trailing silence excluded)."""
    out = []
    for (_, e0), (s1, _) in zip(intervals[:-1], intervals[1:]):
        if (s1 - e0) * 1000.0 >= min_pause_ms:
            out.append(Pause(float(e0), float(s1)))
    return out


def subtract_spans(
    spans: Sequence[tuple[float, float]], cover: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Parts of ``spans`` not covered by any of ``cover`` (both lists of (start, end))."""
    cover = sorted(cover)
    out = []
    for s, e in spans:
        cur = s
        for cs, ce in cover:
            if ce <= cur or cs >= e:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out
