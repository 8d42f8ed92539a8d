"""Charts for the HTML report, written directly as self-contained SVG (:mod:`vmgrade.render.svg`).

Every function takes plain report data (``Report.to_dict()`` pieces) and, for
the waveform, decoded samples; none reads files or knows about HTML.  No
plotting library is involved: a page is rendered in a few milliseconds and a
batch worker never imports matplotlib.  Time charts return a
:class:`TimeChart` that also says where the time axis sits in the image, so the
page can put a playhead over it and turn a click into a time.

Pitch is drawn from the report's ``metrics.pitch_track``: the contour
:func:`vmgrade.delivery.measure` keeps of the same YIN track it summarises, so
a saved report charts pitch without its audio.  A report saved before that key
existed has its contour computed from the audio when the audio is given
(:func:`vmgrade.delivery.pitch_track_from_audio`); without either, the pitch
row says it needs the audio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import delivery
from .style import score_colour  # the bands every renderer shares
from .svg import Svg, nice_ticks, points, polyline_path, text_width, tick_label

# Figure geometry, inches (1 in = 72 units of the SVG).  The time axis spans LEFT..RIGHT of
# the width in every time chart, so stacked charts line up and the page can map x to time.
TIMELINE_SIZE_IN = (11.0, 5.4)
TIMELINE_MARGINS_IN = (0.82, 0.17)  # left (axis labels) and right of the time axis
TIMELINE_TOP = (0.955, 0.93)  # top of the plots, fraction of the height from the bottom (no title, title)
TIMELINE_BOTTOM_IN = 0.4  # below the plots: time ticks and label
TIMELINE_ROW_GAP = 0.3  # between rows, as a fraction of the mean row height
COMPARE_TIMELINE_SIZE_IN = (6.4, 4.2)  # one of two side by side
WAVEFORM_COLUMNS = 1400  # envelope resolution: about one column per screen pixel
WORD_FONT_PT = 7.5
WORD_ROWS = 4  # staggered rows of word labels under the waveform
WORD_GAP_PT = 4.0  # least space between two labels in a row
MAX_WORDS_PER_IN = 12.0  # denser than this (about 80 s of speech at 11 in) and words are not drawn
MARKER_R_PT = 5.5  # numbered finding markers
MARKER_ROW_PT = 12.0  # a marker too close to the previous one steps up this much
TREND_LABEL_CHARS = 12  # longer recording labels become 1..N under the trend panels
TREND_PANEL_IN = 2.1  # height of a row of trend panels

# Text sizes, points, and axis furniture.
FONT_PT = 8.5
TICK_FONT_PT = 8.0
TITLE_PT = 11.0
TICK_LEN_PT = 3.5
TICK_PAD_PT = 3.5
SPINE_PT = 0.8

# Palette (shared with the page's CSS).
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
SPINE = "#cbd5e1"
TRACK = "#f1f5f9"
NUMBER_INK = "#047857"
WAVE = "#64748b"
PAUSE = "#cbd5e1"
FILLER = "#f59e0b"
NUMBER = "#10b981"
PITCH = "#6366f1"
PACE = "#0284c7"
BAND_IDEAL = "#bbf7d0"
BAND_OK = "#ecfccb"
TREND_BAND = "#f0fdf4"
# call recordings (docs/calls.md): what is not the rep's message is shaded behind the waveform
CALL_SHADES = {"greeting": "#e9d5ff", "beep": "#fb923c", "message": "#dcfce7", "ringback": "#e2e8f0",
               "dtmf": "#e2e8f0", "tone": "#e2e8f0", "after": "#e9d5ff"}
CALL_LABELS = ("greeting", "beep", "message")  # named above the waveform (the rest: the legend)
SEVERITY_COLOURS = {"critical": "#dc2626", "major": "#ea580c", "minor": "#ca8a04", "info": "#6b7280"}
SERIES_COLOURS = ("#94a3b8", "#2563eb", "#7c3aed", "#db2777", "#059669", "#d97706")
PITCH_DEFAULT_YLIM_HZ = (50.0, 300.0)  # a pitch row with no voiced frame and no shared scale


@dataclass(frozen=True)
class TimeChart:
    """An SVG chart whose x axis is time.

    ``x0_frac``/``x1_frac`` are where ``t0_s``/``t1_s`` fall, as fractions of
    the image width (for a playhead and click-to-seek over the image).
    """

    svg: str
    t0_s: float
    t1_s: float
    x0_frac: float
    x1_frac: float


@dataclass(frozen=True)
class _Axes:
    """A plot area: a box in SVG units and the data ranges it shows."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def x(self, value):
        """Where data x ``value`` (a number or an array) falls, in SVG units."""
        frac = (np.asarray(value, np.float64) - self.x0) / (self.x1 - self.x0)
        return _scalar(self.left + frac * self.width)

    def y(self, value):
        """Where data y ``value`` (a number or an array) falls, in SVG units."""
        frac = (np.asarray(value, np.float64) - self.y0) / (self.y1 - self.y0)
        return _scalar(self.bottom - frac * self.height)

    def with_y(self, y0: float, y1: float) -> _Axes:
        return _Axes(self.left, self.top, self.width, self.height, self.x0, self.x1, y0, max(y1, y0 + 1e-6))


def _scalar(values: np.ndarray):
    return float(values) if values.ndim == 0 else values


def report_pitch_track(
    metrics: Mapping, samples: np.ndarray | None = None, sr: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The pitch contour to draw: times (s) and F0 (Hz, NaN where unvoiced).

    From ``metrics["pitch_track"]``; for a report saved before that key, from
    ``samples`` at ``sr`` Hz when given (YIN on ``metrics["speech_intervals"]``);
    else None.
    """
    track = metrics.get("pitch_track")
    if track is None:
        if samples is None or not sr:
            return None
        track = delivery.pitch_track_from_audio(samples, sr, metrics.get("speech_intervals") or []).to_dict()
    times = np.asarray(track.get("times_s") or [], np.float64)
    f0 = np.asarray([np.nan if f is None else f for f in track.get("f0_hz") or []], np.float64)
    return times, f0


def waveform_envelope(samples: np.ndarray, columns: int = WAVEFORM_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of ``samples`` in ``columns`` equal slices: a waveform at screen resolution."""
    y = np.asarray(samples, np.float32)
    columns = max(1, min(columns, len(y)))
    edges = np.linspace(0, len(y), columns + 1).astype(int)
    lo = np.minimum.reduceat(y, edges[:-1])
    hi = np.maximum.reduceat(y, edges[:-1])
    return lo, hi


def timeline_chart(
    report: Mapping,
    samples: np.ndarray | None = None,
    sr: int | None = None,
    *,
    pace_band_wpm: Mapping[str, float] | None = None,
    findings: Sequence[Mapping] | None = None,
    title: str | None = None,
    pitch_ylim_hz: tuple[float, float] | None = None,
    pace_ymax_wpm: float | None = None,
    duration_s: float | None = None,
    size_in: tuple[float, float] = TIMELINE_SIZE_IN,
    show_words: bool = True,
) -> TimeChart:
    """Waveform with words, pauses, fillers and the callback number; pitch; pace over time.

    Parameters
    ----------
    report : mapping
        A report dict (``Report.to_dict()``).
    samples, sr : np.ndarray, int, optional
        The decoded audio, for the waveform.  Without it the speech track
        stands in for the waveform.  Pitch comes from ``metrics.pitch_track``;
        only a report saved before that key needs the audio for its pitch row
        (see :func:`report_pitch_track`).
    pace_band_wpm : mapping, optional
        ``ideal_min``, ``ideal_max``, ``ok_min``, ``ok_max`` (wpm) to shade.
    findings : sequence of mappings, optional
        Findings to mark by number (1-based, in the given order) along the top.
    title : str, optional
    pitch_ylim_hz, pace_ymax_wpm : optional
        Shared scales, for side-by-side charts.
    duration_s : float, optional
        Length of the time axis, s (default: the recording's; a shared one
        makes two recordings' lengths comparable).
    size_in : (float, float)
        Figure size, inches.
    show_words : bool
        Label the words under the waveform (off for narrow side-by-side charts).

    Returns
    -------
    TimeChart
        The SVG (``size_in`` at 72 units per inch) and where its time axis lies.
    """
    metrics = report.get("metrics") or {}
    words = (report.get("transcript") or {}).get("words") or [] if show_words else []
    axis_in = size_in[0] - sum(TIMELINE_MARGINS_IN)
    if len(words) > MAX_WORDS_PER_IN * axis_in:
        words = []  # a long recording: labels would overprint; the transcript has them
    duration_s = float(duration_s or report.get("duration_s") or metrics.get("duration_s") or 0.0)
    if samples is not None and sr:
        duration_s = max(duration_s, len(samples) / sr)
    duration_s = max(duration_s, 0.1)

    width, height = size_in[0] * 72.0, size_in[1] * 72.0
    left, right = TIMELINE_MARGINS_IN[0] * 72.0, width - TIMELINE_MARGINS_IN[1] * 72.0
    markers = _marker_rows(findings or (), duration_s, right - left)
    title_bottom = height * 0.02 + TITLE_PT + 2.0 if title else 0.0
    # room above the waveform for the rows of markers that step up out of it
    top = max(height * (1.0 - TIMELINE_TOP[bool(title)]),
              title_bottom + max((row for row, _, _, _ in markers), default=0) * MARKER_ROW_PT)
    bottom = height - TIMELINE_BOTTOM_IN * 72.0
    ratios = (2.5 if words else 1.6, 1.0, 1.0)
    mean_h = (bottom - top) / (len(ratios) + TIMELINE_ROW_GAP * (len(ratios) - 1))
    rows, y = [], top
    for ratio in ratios:
        h = mean_h * ratio / np.mean(ratios)
        rows.append(_Axes(left, y, right - left, h, 0.0, duration_s, -1.0, 1.0))
        y += h + TIMELINE_ROW_GAP * mean_h
    ax_wave, ax_pitch, ax_pace = rows

    svg = Svg(width, height)
    if title:
        svg.text(left, height * 0.02, title, size=TITLE_PT, va="top", bold=True, fill=INK)
    _draw_waveform(svg, ax_wave, report, samples, sr, words, markers)
    scaled = [_draw_pitch(svg, ax_pitch, report, samples, sr, pitch_ylim_hz),
              _draw_pace(svg, ax_pace, metrics, pace_band_wpm, pace_ymax_wpm)]
    label_x = left - TICK_LEN_PT - TICK_PAD_PT - 4.0 - max(
        [text_width(label, FONT_PT) for ax in scaled if ax for _, label in _y_ticks(ax)] + [0.0])
    for ax, label in ((ax_wave, "waveform\n& words" if words else "waveform"), (ax_pitch, "pitch (Hz)"),
                      (ax_pace, "pace (wpm)")):
        svg.text(label_x, ax.top + ax.height / 2, label, size=FONT_PT, anchor="middle", va="bottom",
                 rotate=True, fill=MUTED)
    ticks, step = nice_ticks(0.0, duration_s, _tick_bins(right - left, TICK_FONT_PT, 3.0))
    for ax in rows:
        for t in ticks:
            x = ax.x(t)
            svg.line(x, ax.bottom, x, ax.bottom + TICK_LEN_PT, stroke=MUTED, stroke_width=SPINE_PT)
    label_y = ax_pace.bottom + TICK_LEN_PT + TICK_PAD_PT
    for t in ticks:
        svg.text(ax_pace.x(t), label_y, tick_label(t, step), size=TICK_FONT_PT, anchor="middle", va="top",
                 fill=MUTED)
    svg.text((left + right) / 2, label_y + TICK_FONT_PT + 4.0, "time (s)", size=FONT_PT, anchor="middle",
             va="top", fill=MUTED)
    return TimeChart(svg=svg.document(), t0_s=0.0, t1_s=duration_s, x0_frac=left / width,
                     x1_frac=right / width)


def _draw_waveform(svg: Svg, ax: _Axes, report, samples, sr, words, markers) -> None:
    metrics = report.get("metrics") or {}
    content = report.get("content") or {}
    # the wave fills the upper part; word labels sit in rows below it (data units: -1..1)
    wave_lo, wave_hi = (-0.05, 0.78) if words else (-0.92, 0.72)
    centre, half = (wave_lo + wave_hi) / 2, (wave_hi - wave_lo) / 2
    band_top, band_h = ax.y(wave_hi), ax.y(wave_lo) - ax.y(wave_hi)

    def span(start: float, end: float, **style) -> None:
        x0, x1 = ax.x(max(start, ax.x0)), ax.x(min(end, ax.x1))
        svg.rect(x0, band_top, x1 - x0, band_h, **style)

    call_labels = []
    if report.get("is_call_recording"):
        for seg in report.get("segments") or []:
            colour = CALL_SHADES.get(seg.get("kind"))
            if colour is None:
                continue
            start, end = seg["start_s"], seg["end_s"]
            if seg["kind"] == "beep":
                end = max(end, start + 0.08)  # a short beep stays visible on a long axis
            span(start, end, fill=colour, fill_opacity=0.9 if seg["kind"] == "beep" else 0.6)
            if seg["kind"] in CALL_LABELS and seg["kind"] not in (k for k, _ in call_labels):
                call_labels.append((seg["kind"], start))
    for pause in metrics.get("pauses") or []:
        span(pause["start_s"], pause["end_s"], fill=PAUSE, fill_opacity=0.55)
    svg.line(ax.left, ax.y(centre), ax.right, ax.y(centre), stroke=WAVE, stroke_width=0.4)
    callback = content.get("callback") or {}
    for mention in callback.get("mentions") or []:
        span(mention["start_s"], mention["end_s"], fill=NUMBER, fill_opacity=0.22)
    if samples is not None and sr and len(samples):
        lo, hi = waveform_envelope(samples)
        peak = max(float(np.max(np.abs(samples))), 1e-6)
        xs = ax.x(np.linspace(0, len(samples) / sr, len(lo)))
        upper, lower = ax.y(centre + half * hi / peak), ax.y(centre + half * lo / peak)
        svg.path("M" + points(np.concatenate([xs, xs[::-1]]), np.concatenate([upper, lower[::-1]]))
                 .replace(" ", "L", 1) + "Z", fill=WAVE)
    else:
        for start, end in metrics.get("speech_intervals") or []:
            x0, x1 = ax.x(start), ax.x(end)
            y_top = ax.y(centre + 0.5 * half)
            svg.rect(x0, y_top, x1 - x0, ax.y(centre - 0.5 * half) - y_top, fill=WAVE)
    for filler in metrics.get("fillers") or []:
        end = max(filler["end_s"], filler["start_s"] + 0.06)
        span(filler["start_s"], end, fill=FILLER, fill_opacity=0.85)
    _draw_words(svg, ax, words, metrics.get("fillers") or [], top=wave_lo - 0.04)
    for kind, start in call_labels:
        # the beep's name above the wave, the others below: a beep sits right before the message
        above = kind == "beep"
        svg.text(ax.x(start), ax.y(wave_hi - 0.02 if above else wave_lo + 0.02), kind, size=7.0,
                 anchor="end" if above else "start", va="top" if above else "bottom", fill=MUTED)
    for mention in callback.get("mentions") or []:
        svg.text(ax.x(mention["start_s"]), ax.y(wave_hi + 0.015), "number", size=7.5, bold=True,
                 va="bottom", fill=NUMBER_INK)
    svg.line(ax.left, ax.bottom, ax.right, ax.bottom, stroke=SPINE, stroke_width=SPINE_PT)
    # numbered finding markers along the top; close ones step up a row
    for row, start, number, colour in markers:
        x, y = ax.x(start), ax.top + MARKER_R_PT + 1.0 - row * MARKER_ROW_PT
        svg.circle(x, y, MARKER_R_PT, fill=colour)
        svg.text(x, y, str(number), size=6.5, anchor="middle", va="center", bold=True, fill="white")


def _marker_rows(findings: Sequence[Mapping], duration_s: float, axis_pt: float) -> list[tuple]:
    """(row, start_s, number, colour) of each finding with a time; a close one takes the next row up."""
    marker_s = duration_s * 2 * MARKER_R_PT / axis_pt
    row_last: list[float] = []
    out = []
    for number, finding in sorted(enumerate(findings, 1), key=lambda nf: nf[1].get("start_s") or 0.0):
        x = finding.get("start_s")
        if x is None:
            continue
        row = next((i for i, last in enumerate(row_last) if x - last >= marker_s), len(row_last))
        row_last[row:row + 1] = [x]
        out.append((row, x, number, SEVERITY_COLOURS.get(finding.get("severity"), MUTED)))
    return out


def _draw_words(svg: Svg, ax: _Axes, words, fillers, top: float) -> None:
    """Word labels in staggered rows, each in the first row where it fits; no row free: no label.

    Labels never overlap: in each row a label starts at least ``WORD_GAP_PT`` after the previous
    one ends (estimated widths, :func:`vmgrade.render.svg.text_width`).  Every word stays in the
    page's transcript; the chart drops the labels that would collide.  Each label is a
    ``<text class="word">``.
    """
    if not words:
        return
    row_height = (top + 1.0) / WORD_ROWS
    filler_times = [(f["start_s"] - 0.05, f["end_s"] + 0.05)
                    for f in fillers if f.get("source") == "transcript"]
    right_edge = ax.right + TIMELINE_MARGINS_IN[1] * 72.0 - 2.0  # a label may run into the right margin
    row_end = [-np.inf] * WORD_ROWS  # where the last label of each row ends, SVG units
    ticks, labels = [], []
    for w in words:
        text = w["word"].strip()
        if not text:
            continue
        start = float(w["start"])
        is_filler = any(a <= start <= b for a, b in filler_times)
        width_pt = text_width(text, WORD_FONT_PT, is_filler)
        x = ax.x(start)
        # a label running off the right edge ends at it (its tick stays at the word)
        tx = max(ax.left, min(x, right_edge - width_pt))
        row = next((r for r in range(WORD_ROWS) if row_end[r] + WORD_GAP_PT <= tx - 1.0), None)
        if row is None:
            continue  # no room: the transcript has it
        row_end[row] = tx + width_pt + 1.0  # the label's white box reaches 1 unit past the text
        y = ax.y(top - row * row_height)
        colour = FILLER if is_filler else INK
        ticks.append((x, y, ax.y(top + 0.03), FILLER if is_filler else GRID))
        labels.append((tx, y, text, width_pt, is_filler, colour))
    for x, y0, y1, colour in ticks:
        svg.line(x, y0, x, y1, stroke=colour, stroke_width=0.6)
    for x, y, text, width_pt, bold, colour in labels:
        svg.rect(x - 1.0, y - 1.0, width_pt + 2.0, WORD_FONT_PT + 2.0, fill="white")
        svg.text(x, y, text, size=WORD_FONT_PT, va="top", bold=bold, fill=colour, **{"class": "word"})


def _draw_pitch(svg: Svg, ax: _Axes, report, samples, sr, ylim_hz) -> _Axes | None:
    metrics = report.get("metrics") or {}
    contour = report_pitch_track(metrics, samples, sr)
    if contour is None:
        _note(svg, ax, "pitch contour needs the audio file", size=8.0)
        _frame(svg, ax)
        return None  # no y scale
    times, f0 = contour
    finite = np.isfinite(f0)
    median = metrics.get("f0_median_hz")
    if ylim_hz:
        ax = ax.with_y(*ylim_hz)
    elif finite.any():
        lo, hi = np.percentile(f0[finite], [1, 99])
        ax = ax.with_y(max(0.0, float(lo) * 0.8), float(hi) * 1.3)
    elif median:
        ax = ax.with_y(median * 0.8, median * 1.3)
    else:
        ax = ax.with_y(*PITCH_DEFAULT_YLIM_HZ)
    clip = svg.clip(ax.left, ax.top, ax.width, ax.height)
    svg.open_group(clip_path=clip)
    if median:
        svg.line(ax.left, ax.y(median), ax.right, ax.y(median), stroke=PITCH, stroke_width=0.8,
                 stroke_dasharray="2.4 2.4", stroke_opacity=0.7)
    svg.path(polyline_path(_runs(ax.x(times), ax.y(f0))), fill="none", stroke=PITCH, stroke_width=1.6,
             stroke_linecap="round", stroke_linejoin="round")
    svg.close_group()
    if median:
        sd = metrics.get("f0_sd_st")
        note = f"median {median:.0f} Hz" + (f", varies {sd:.1f} semitones" if sd is not None else "")
        svg.text(ax.right, ax.top - 0.02 * ax.height, note, size=7.5, anchor="end", va="bottom", fill=PITCH)
    _frame(svg, ax, y_ticks=True)
    return ax


def _runs(xs: np.ndarray, ys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stretches of (xs, ys) between non-finite ys: one polyline each."""
    ok = np.isfinite(ys) & np.isfinite(xs)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    return [(xs[a:b], ys[a:b]) for a, b in zip(edges[::2], edges[1::2])]


def _draw_pace(svg: Svg, ax: _Axes, metrics, band, ymax_wpm) -> _Axes:
    windows = metrics.get("pace_windows") or []
    top = ymax_wpm or max([w["rate_wpm"] for w in windows] + [band["ok_max"] if band else 0, 200.0]) * 1.15
    ax = ax.with_y(0.0, top)
    clip = svg.clip(ax.left, ax.top, ax.width, ax.height)
    svg.open_group(clip_path=clip)
    if band:
        for lo, hi, colour in ((band["ok_min"], band["ok_max"], BAND_OK),
                               (band["ideal_min"], band["ideal_max"], BAND_IDEAL)):
            y_hi, y_lo = ax.y(hi), ax.y(lo)
            svg.rect(ax.left, y_hi, ax.width, y_lo - y_hi, fill=colour)
    rate = metrics.get("rate_wpm")
    if rate:
        svg.line(ax.left, ax.y(rate), ax.right, ax.y(rate), stroke=PACE, stroke_width=0.8,
                 stroke_dasharray="2.4 2.4", stroke_opacity=0.7)
    for w in windows:
        y = ax.y(w["rate_wpm"])
        svg.line(ax.x(w["start_s"]), y, ax.x(w["end_s"]), y, stroke=PACE, stroke_width=2.2)
    svg.close_group()
    for w in windows:
        svg.text(ax.x((w["start_s"] + w["end_s"]) / 2), ax.y(w["rate_wpm"] + top * 0.04),
                 f"{w['rate_wpm']:.0f}", size=7.0, anchor="middle", va="bottom", fill=PACE)
    if rate:
        label = f"average {rate:.0f} wpm" + ("; green band: target" if band else "")
        svg.text(ax.right, ax.top - 0.02 * ax.height, label, size=7.5, anchor="end", va="bottom", fill=PACE)
    if not windows:
        _note(svg, ax, "no pace measured")
    _frame(svg, ax, y_ticks=True)
    return ax


def _y_ticks(ax: _Axes) -> list[tuple[float, str]]:
    ticks, step = nice_ticks(ax.y0, ax.y1, _tick_bins(ax.height, FONT_PT, 2.0))
    return [(t, tick_label(t, step)) for t in ticks]


def _frame(svg: Svg, ax: _Axes, y_ticks: bool = False) -> None:
    """The box around a plot and, with ``y_ticks``, its y ticks and their labels."""
    svg.rect(ax.left, ax.top, ax.width, ax.height, fill="none", stroke=SPINE, stroke_width=SPINE_PT)
    if not y_ticks:
        return
    for value, label in _y_ticks(ax):
        y = ax.y(value)
        svg.line(ax.left - TICK_LEN_PT, y, ax.left, y, stroke=INK, stroke_width=SPINE_PT)
        svg.text(ax.left - TICK_LEN_PT - TICK_PAD_PT, y, label, size=FONT_PT, anchor="end", va="center",
                 fill=INK)


def _note(svg: Svg, ax: _Axes, text: str, size: float = FONT_PT) -> None:
    """A muted line of text in the middle of a plot (what it would show is missing)."""
    svg.text(ax.left + ax.width / 2, ax.top + ax.height / 2, text, size=size, anchor="middle", va="center",
             fill=MUTED)


def _tick_bins(length_pt: float, font_pt: float, per_label: float) -> int:
    """How many tick intervals fit along an axis (matplotlib's rule: up to 9, a label's room apart)."""
    return int(np.clip(length_pt // (font_pt * per_label), 1, 9))


def dimension_chart(
    dimensions_by_series: Mapping[str, Sequence[Mapping]], *, width_in: float = 5.6
) -> str:
    """Horizontal bars of dimension scores (0–100), one bar per series per dimension.

    Parameters
    ----------
    dimensions_by_series : mapping of series label to the report's ``dimensions`` list
        One series (a single report) colours each bar by its score band; several
        (a comparison) use one colour per series, in order, with a legend.
    width_in : float
        Figure width, inches.

    Returns
    -------
    str
        The SVG document.
    """
    series = list(dimensions_by_series.items())
    first = series[0][1] if series else []
    keys = [d["key"] for d in first]
    labels = [d["label"] for d in first]
    n_series = max(1, len(series))
    bar_h = 0.74 / n_series
    width = width_in * 72.0
    height = (0.42 * len(keys) * (1 + 0.35 * (n_series - 1)) + 0.7) * 72.0
    legend = n_series > 1
    left = 6.0 + max([text_width(label, FONT_PT) for label in labels] + [0.0]) + TICK_PAD_PT
    top = 8.0 + (16.0 if legend else 0.0)
    bottom = height - (TICK_LEN_PT + TICK_PAD_PT + TICK_FONT_PT + 4.0 + FONT_PT + 6.0)
    lo, hi = -0.5 * (n_series * bar_h), len(keys) - 1 + 0.5 * (n_series * bar_h)
    pad = 0.05 * max(hi - lo, 1.0)
    # y runs down the page: dimension j sits at data y = j
    ax = _Axes(left, top, width - 10.0 - left, bottom - top, 0.0, 110.0, hi + pad, lo - pad)
    svg = Svg(width, height)
    xticks = [0, 20, 40, 60, 80, 100]
    for t in xticks:
        x = ax.x(t)
        svg.line(x, ax.top, x, ax.bottom, stroke=GRID, stroke_width=0.6)
    thick = bar_h * 0.86 * ax.height / abs(ax.y1 - ax.y0)
    for i, (_, dims) in enumerate(series):
        by_key = {d["key"]: d for d in dims}
        for j, key in enumerate(keys):
            d = by_key.get(key)
            if d is None:
                continue
            y = ax.y(j + (i - (n_series - 1) / 2) * bar_h)
            colour = score_colour(d["score"]) if n_series == 1 else SERIES_COLOURS[i % len(SERIES_COLOURS)]
            svg.rect(ax.left, y - thick / 2, ax.x(100) - ax.left, thick, fill=TRACK)
            svg.rect(ax.left, y - thick / 2, ax.x(min(max(d["score"], 0.8), 100)) - ax.left, thick,
                     fill=colour)
            svg.text(ax.x(min(d["score"], 100) + 1.5), y, f"{d['score']:.0f}", size=8.0, va="center",
                     fill=INK)
    for j, label in enumerate(labels):
        svg.text(ax.left - TICK_PAD_PT, ax.y(j), label, size=FONT_PT, anchor="end", va="center", fill=INK)
    svg.line(ax.left, ax.bottom, ax.right, ax.bottom, stroke=SPINE, stroke_width=SPINE_PT)
    for t in xticks:
        x = ax.x(t)
        svg.line(x, ax.bottom, x, ax.bottom + TICK_LEN_PT, stroke=MUTED, stroke_width=SPINE_PT)
        svg.text(x, ax.bottom + TICK_LEN_PT + TICK_PAD_PT, str(t), size=TICK_FONT_PT, anchor="middle",
                 va="top", fill=MUTED)
    svg.text(ax.left + ax.width / 2, ax.bottom + TICK_LEN_PT + TICK_PAD_PT + TICK_FONT_PT + 4.0,
             "score (0–100)", size=FONT_PT, anchor="middle", va="top", fill=MUTED)
    if legend:
        _legend(svg, ax.right, ax.top - 10.0,
                [(name, SERIES_COLOURS[i % len(SERIES_COLOURS)]) for i, (name, _) in enumerate(series)])
    return svg.document()


def _legend(svg: Svg, right: float, y: float, entries: Sequence[tuple[str, str]]) -> None:
    """One row of colour swatches and names, ending at ``right``, centred on ``y``."""
    size, swatch, gap, spacing = 8.0, 16.0, 6.4, 16.0
    widths = [swatch + gap + text_width(name, size) for name, _ in entries]
    x = right - sum(widths) - spacing * (len(entries) - 1)
    for (name, colour), w in zip(entries, widths):
        svg.rect(x, y - 0.35 * size, swatch, 0.7 * size, fill=colour)
        svg.text(x + swatch + gap, y, name, size=size, va="center", fill=INK)
        x += w + spacing


def trend_chart(labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
                columns: int = 3) -> str:
    """Small multiples: one line per dimension (and overall) across recordings, in order.

    Parameters
    ----------
    labels : sequence of str
        The recordings, oldest first (x axis).
    series : mapping of title to scores (0–100, None where missing), one per label
    columns : int
        Panels per row.

    Returns
    -------
    str
        The SVG document.
    """
    names = list(series)
    # long names (file names) do not fit under a small panel: number them; the page lists them
    ticks = list(labels) if all(len(label) <= TREND_LABEL_CHARS for label in labels) else [
        str(i) for i in range(1, len(labels) + 1)]
    rows = max(1, -(-len(names) // columns))
    width, panel_h = 11.0 * 72.0, TREND_PANEL_IN * 72.0
    panel_w = width / columns
    svg = Svg(width, panel_h * rows)
    x = np.arange(len(labels), dtype=np.float64)
    for k, name in enumerate(names):
        px, py = (k % columns) * panel_w, (k // columns) * panel_h
        ax = _Axes(px + 34.0, py + 20.0, panel_w - 46.0, panel_h - 40.0, -0.3, len(labels) - 0.7, 0.0, 108.0)
        values = np.array([np.nan if v is None else float(v) for v in series[name]], np.float64)
        band_top = ax.y(100)
        svg.rect(ax.left, band_top, ax.width, ax.y(80) - band_top, fill=TREND_BAND)
        for t in (0, 50, 100):
            y = ax.y(t)
            svg.line(ax.left, y, ax.right, y, stroke=GRID, stroke_width=0.6)
            svg.line(ax.left - TICK_LEN_PT, y, ax.left, y, stroke=INK, stroke_width=SPINE_PT)
            svg.text(ax.left - TICK_LEN_PT - TICK_PAD_PT, y, str(t), size=FONT_PT, anchor="end", va="center",
                     fill=INK)
        svg.line(ax.left, ax.top, ax.left, ax.bottom, stroke=SPINE, stroke_width=SPINE_PT)
        svg.line(ax.left, ax.bottom, ax.right, ax.bottom, stroke=SPINE, stroke_width=SPINE_PT)
        for i, tick in enumerate(ticks):
            xi = ax.x(i)
            svg.line(xi, ax.bottom, xi, ax.bottom + TICK_LEN_PT, stroke=MUTED, stroke_width=SPINE_PT)
            svg.text(xi, ax.bottom + TICK_LEN_PT + TICK_PAD_PT, tick, size=7.5, anchor="middle", va="top",
                     fill=MUTED)
        svg.text(ax.left, ax.top - 5.0, name, size=9.0, va="bottom", fill=INK)
        svg.path(polyline_path(_runs(ax.x(x), ax.y(values))), fill="none", stroke=PACE, stroke_width=1.8,
                 stroke_linejoin="round")
        for i in np.flatnonzero(np.isfinite(values)):
            svg.circle(ax.x(i), ax.y(values[i]), 2.9, fill=score_colour(values[i]), stroke="white",
                       stroke_width=0.8)
        finite = np.flatnonzero(np.isfinite(values))
        if finite.size:
            last = finite[-1]
            svg.text(ax.x(last), ax.y(values[last]) - 6.0, f"{values[last]:.0f}", size=8.0,
                     anchor="middle", va="bottom", bold=True, fill=INK)
    return svg.document()

