"""A small SVG writer for the report charts: elements, escaping, text widths, axis ticks.

Charts are drawn in points (1/72 in) as user units, like a print figure: a
chart ``size_in`` wide is ``72 * size_in`` units wide and says so in its
``width``/``height`` (``pt``), and the page scales it to the column.  Numbers
are written with at most two decimals, so the same chart gives the same bytes.

Text is laid out without a font library: :func:`text_width` adds up DejaVu Sans
advance widths (the first font the charts ask for; the fallbacks are narrower,
so the estimate errs towards room).
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
# Advance widths of DejaVu Sans (Book, Bold) for ASCII 32..126, in 1/1000 em.
_WIDTHS_REGULAR = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775,
    752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390,
    337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612,
    635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
)
_WIDTHS_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821,
    837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457,
    365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687,
    716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
)
_OTHER_WIDTH = (610, 680)  # a letter outside ASCII that does not decompose to one (regular, bold)
# Where text sits relative to its baseline, as fractions of the font size (DejaVu Sans).
ASCENT = 0.76  # top of capitals and tall letters
DESCENT = 0.24  # bottom of descenders
X_MIDDLE = 0.36  # half the x-height: the baseline offset that centres text vertically
TICK_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)  # "nice" tick steps within a decade
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def num(value: float) -> str:
    """``value`` rounded to two decimals, without trailing zeros (``-0`` is ``0``)."""
    return f"{round(float(value), 2) + 0.0:g}"  # six significant digits: two decimals below 10 000


def escape(text: str) -> str:
    """``text`` safe in XML character data and attribute values (characters XML cannot hold dropped)."""
    return html.escape(_NOT_XML.sub("", str(text)), quote=True)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated advance width of ``text`` at ``size`` points, in points."""
    table = _WIDTHS_BOLD if bold else _WIDTHS_REGULAR
    total = 0
    for ch in text:
        code = ord(ch)
        if 32 <= code < 127:
            total += table[code - 32]
            continue
        base = unicodedata.normalize("NFD", ch)[0]  # é -> e
        if 32 <= ord(base) < 127:
            total += table[ord(base) - 32]
        elif unicodedata.combining(ch):
            continue
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1000
        else:
            total += _OTHER_WIDTH[bold]
    return total * size / 1000.0


def nice_ticks(lo: float, hi: float, max_bins: int) -> tuple[list[float], float]:
    """Ticks at a round step (1, 2, 2.5 or 5 times a power of ten) within ``lo..hi``, and the step.

    The step is the smallest that cuts the span in at most ``max_bins``
    intervals (at least one).
    """
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo], 1.0
    raw = span / max(1, max_bins)
    scale = 10.0 ** math.floor(math.log10(raw))
    step = next(s * scale for s in TICK_STEPS if s * scale >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)], step


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as ``step`` needs (``2.5``, ``10``, ``0.25``)."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


class Svg:
    """An SVG document built element by element; :meth:`document` writes it out.

    Coordinates are user units (points); ``width``/``height`` are the canvas
    size in them.  Styling goes in keyword arguments, ``stroke_width`` written
    ``stroke-width``; ``None`` values are left out.
    """

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height
        self._parts: list[str] = []
        self._clips = 0

    def add(self, markup: str) -> None:
        """Append raw markup (already escaped)."""
        self._parts.append(markup)

    def rect(self, x: float, y: float, w: float, h: float, **style) -> None:
        if w > 0 and h > 0:
            self.add(f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}"{_attrs(style)}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, **style) -> None:
        self.add(f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}"{_attrs(style)}/>')

    def circle(self, cx: float, cy: float, r: float, **style) -> None:
        self.add(f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(r)}"{_attrs(style)}/>')

    def path(self, d: str, **style) -> None:
        if d:
            self.add(f'<path d="{d}"{_attrs(style)}/>')

    def text(self, x: float, y: float, text: str, *, size: float, anchor: str = "start", va: str = "baseline",
             bold: bool = False, rotate: bool = False, **style) -> None:
        """``text`` at (x, y): ``anchor`` start/middle/end; ``va`` top, center, bottom or baseline.

        ``rotate`` turns it a quarter anticlockwise about (x, y) (a y-axis label).
        Lines separated by a newline stack downwards (rightwards when rotated).
        """
        lines = text.split("\n")
        lead = 1.2 * size
        block = lead * (len(lines) - 1)
        offset = {"top": ASCENT * size, "center": X_MIDDLE * size - block / 2,
                  "bottom": -DESCENT * size - block}.get(va, 0.0)
        attrs = _attrs(dict(style, font_size=num(size), text_anchor=None if anchor == "start" else anchor,
                            font_weight="bold" if bold else None))
        turn = f' transform="rotate(-90 {num(x)} {num(y)})"' if rotate else ""
        for i, line in enumerate(lines):
            y_line = num(y + offset + i * lead)
            self.add(f'<text x="{num(x)}" y="{y_line}"{attrs}{turn}>{escape(line)}</text>')

    def clip(self, x: float, y: float, w: float, h: float) -> str:
        """Define a clip rectangle; returns the ``clip-path`` value for elements drawn inside it."""
        self._clips += 1
        ident = f"c{self._clips}"
        box = f'x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}"'
        self.add(f'<clipPath id="{ident}"><rect {box}/></clipPath>')
        return f"url(#{ident})"

    def open_group(self, **style) -> None:
        self.add(f"<g{_attrs(style)}>")

    def close_group(self) -> None:
        self.add("</g>")

    def document(self) -> str:
        """The standalone SVG file."""
        w, h = num(self.width), num(self.height)
        head = ('<?xml version="1.0" encoding="utf-8"?>\n'
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}" '
                f'font-family="{FONT_FAMILY}">\n'
                f'<rect width="{w}" height="{h}" fill="white"/>\n')
        return head + "\n".join(self._parts) + "\n</svg>\n"


def points(xs: Sequence[float], ys: Sequence[float]) -> str:
    """``x,y x,y ...`` for a ``points`` attribute or after ``M``/``L`` in a path (numbers as :func:`num`)."""
    xy = np.round(np.column_stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)]), 2) + 0.0
    return " ".join(f"{x:g},{y:g}" for x, y in xy.tolist())


def polyline_path(runs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> str:
    """Path data drawing each (xs, ys) run as its own open polyline (a run of one point draws nothing)."""
    return " ".join("M" + points(xs, ys).replace(" ", "L", 1) for xs, ys in runs if len(xs) > 1)


def _attrs(style: dict) -> str:
    return "".join(f' {key.replace("_", "-")}="{escape(value) if isinstance(value, str) else num(value)}"'
                   for key, value in style.items() if value is not None)
