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
