"""Rounding for the report's JSON (shared by the result types of this package)."""

from __future__ import annotations

import math


def _r(value: float | None, digits: int) -> float | None:
    """Round to plain float (None stays None; non-finite becomes None)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits > 0 else float(round(value))
