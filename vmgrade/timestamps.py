"""Recording times as users write them (manifests, report context, saved reports)."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date or date-time (``2026-11-02``, ``2026-11-02T14:05``, ``…Z``, ``…+01:00``).

    A time without a zone is taken as UTC; a stated offset is kept.

    Raises
    ------
    ValueError
        When ``text`` is not ISO 8601.
    """
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_clock(seconds: float | None, missing: str = "") -> str:
    """A time in a recording as ``m:ss.s`` (``75.25`` → ``"1:15.2"``), tenths rounded first.

    Rounding before splitting keeps 59.97 s from reading ``0:60.0``: it is ``1:00.0``.

    Parameters
    ----------
    seconds : float or None
        Seconds from the start of the recording.
    missing : str
        What to show when ``seconds`` is None.
    """
    if seconds is None:
        return missing
    # "%.1f" rounds the exact binary value, as the split formatting always did; then split
    minutes, tenths = divmod(round(float(f"{seconds:.1f}") * 10), 600)
    return f"{minutes}:{tenths / 10:04.1f}"


def format_span(start_s: float | None, end_s: float | None, *, point_below_s: float | None = None) -> str:
    """A stretch of a recording as ``m:ss.s–m:ss.s``; ``"whole message"`` when ``start_s`` is None.

    Parameters
    ----------
    start_s, end_s : float or None
        Start and end in seconds; a missing end is taken as the start.
    point_below_s : float, optional
        Show a single time instead of a range when the end is missing or less than this
        many seconds from the start (default: always a range).
    """
    if start_s is None:
        return "whole message"
    if point_below_s is not None and (end_s is None or abs(end_s - start_s) < point_below_s):
        return format_clock(start_s)
    return f"{format_clock(start_s)}–{format_clock(end_s if end_s is not None else start_s)}"
