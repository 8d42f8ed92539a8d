"""How scores look: the colour bands every renderer shares (terminal, HTML, charts).

Display only; the grade letter comes from the rubric's letter bands.
"""

from __future__ import annotations

# (lowest score, band), best first: a score takes the first band whose floor it reaches.
SCORE_BANDS = ((80.0, "good"), (60.0, "fair"), (0.0, "poor"))
SCORE_HEX = {"good": "#16a34a", "fair": "#d97706", "poor": "#dc2626"}  # HTML and charts (green, amber, red)
SCORE_STYLE = {"good": "green", "fair": "yellow", "poor": "red"}  # rich styles on a terminal


def score_band(score: float) -> str:
    """``"good"``, ``"fair"`` or ``"poor"`` for a 0–100 score (below every floor: the last band)."""
    return next((band for floor, band in SCORE_BANDS if score >= floor), SCORE_BANDS[-1][1])


def score_colour(score: float) -> str:
    """Green, amber or red (CSS hex) for a 0–100 score."""
    return SCORE_HEX[score_band(score)]


def score_style(score: float) -> str:
    """Green, yellow or red (a rich style) for a 0–100 score."""
    return SCORE_STYLE[score_band(score)]
