"""What a trainer reads off several graded reports: the points each finding cost, and the trend.

Shared by the shells that summarise many reports (the batch summary and its index page, the web
app's coaching dashboard), so both say the same thing about the same reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def points_lost(feedback: Iterable[Mapping] | None) -> dict[str, float]:
    """Points each finding code cost one report: the sum of its feedback items' ``gain``.

    Parameters
    ----------
    feedback : iterable of mapping
        A report's ``feedback`` items (``code``, ``gain`` in points out of 100, maybe null).
    """
    lost: dict[str, float] = {}
    for item in feedback or ():
        code = str(item["code"])
        lost[code] = lost.get(code, 0.0) + float(item.get("gain") or 0.0)
    return lost


def half_means(scores: Sequence[float]) -> tuple[float, float] | None:
    """Mean score of the first half of ``scores`` (oldest first) and of the last half; None under two.

    With an odd count the middle score belongs to neither half.
    """
    half = len(scores) // 2
    if half == 0:
        return None
    return sum(scores[:half]) / half, sum(scores[-half:]) / half
