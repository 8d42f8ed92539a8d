"""Charts for the HTML report: matplotlib figures rendered to self-contained SVG.

Every function takes plain report data (``Report.to_dict()`` pieces) and, for
the waveform, decoded samples; none reads files or knows about HTML.
Time charts return a :class:`TimeChart` that also says where the time axis
sits in the image, so the page can put a playhead over it and turn a click
into a time.

Pitch is drawn from the report's ``metrics.pitch_track``: the contour
:func:`vmgrade.delivery.measure` keeps of the same YIN track it summarises, so
a saved report charts pitch without its audio.  A report saved before that key
existed has its contour computed from the audio when the audio is given
(:func:`vmgrade.delivery.pitch_track_from_audio`); without either, the pitch
row says it needs the audio.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import delivery

# Figure geometry, inches.  The time axis spans LEFT..RIGHT of the width in
# every time chart, so stacked charts line up and the page can map x to time.
TIMELINE_SIZE_IN = (11.0, 5.4)
TIMELINE_MARGINS_IN = (0.82, 0.17)  # left (axis labels) and right of the time axis
COMPARE_TIMELINE_SIZE_IN = (6.4, 4.2)  # one of two side by side
WAVEFORM_COLUMNS = 1400  # envelope resolution: about one column per screen pixel
WORD_FONT_PT = 7.5
WORD_ROWS = 4  # staggered rows of word labels under the waveform
MAX_WORDS_PER_IN = 12.0  # denser than this (about 80 s of speech at 11 in) and words are not drawn
TREND_LABEL_CHARS = 12  # longer recording labels become 1..N under the trend panels

# Palette (shared with the page's CSS).
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
WAVE = "#64748b"
PAUSE = "#cbd5e1"
FILLER = "#f59e0b"
NUMBER = "#10b981"
PITCH = "#6366f1"
PACE = "#0284c7"
BAND_IDEAL = "#bbf7d0"
BAND_OK = "#ecfccb"
# call recordings (docs/calls.md): what is not the rep's message is shaded behind the waveform
CALL_SHADES = {"greeting": "#e9d5ff", "beep": "#fb923c", "message": "#dcfce7", "ringback": "#e2e8f0",
               "dtmf": "#e2e8f0", "tone": "#e2e8f0", "after": "#e9d5ff"}
CALL_LABELS = ("greeting", "beep", "message")  # named above the waveform (the rest: the legend)
SEVERITY_COLOURS = {"critical": "#dc2626", "major": "#ea580c", "minor": "#ca8a04", "info": "#6b7280"}
SERIES_COLOURS = ("#94a3b8", "#2563eb", "#7c3aed", "#db2777", "#059669", "#d97706")


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


def score_colour(score: float) -> str:
    """Green, amber or red for a 0–100 score (the page uses the same bands)."""
    if score >= 80:
        return "#16a34a"
    if score >= 60:
        return "#d97706"
    return "#dc2626"


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

    with _style():
        fig = _figure(size_in)
        left, right = TIMELINE_MARGINS_IN[0] / size_in[0], 1.0 - TIMELINE_MARGINS_IN[1] / size_in[0]
        grid = fig.add_gridspec(3, 1, height_ratios=(2.5 if words else 1.6, 1.0, 1.0), hspace=0.3,
                                left=left, right=right, top=0.93 if title else 0.955,
                                bottom=0.4 / size_in[1])
        ax_wave = fig.add_subplot(grid[0])
        ax_pitch = fig.add_subplot(grid[1], sharex=ax_wave)
        ax_pace = fig.add_subplot(grid[2], sharex=ax_wave)
        if title:
            fig.suptitle(title, x=left, ha="left", fontsize=11, fontweight="bold", color=INK)
        _draw_waveform(ax_wave, report, samples, sr, duration_s, words, findings or ())
        _draw_pitch(ax_pitch, report, samples, sr, pitch_ylim_hz)
        _draw_pace(ax_pace, metrics, pace_band_wpm, pace_ymax_wpm)
        ax_wave.set_xlim(0.0, duration_s)
        for ax in (ax_wave, ax_pitch):
            ax.tick_params(labelbottom=False)
        ax_pace.set_xlabel("time (s)")
        svg = _to_svg(fig)
    return TimeChart(svg=svg, t0_s=0.0, t1_s=duration_s, x0_frac=left, x1_frac=right)


def _draw_waveform(ax, report, samples, sr, duration_s, words, findings) -> None:
    metrics = report.get("metrics") or {}
    content = report.get("content") or {}
    ax.set_ylim(-1.0, 1.0)
    ax.set_yticks([])
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    # the wave fills the upper part; word labels sit in rows below it
    wave_lo, wave_hi = (-0.05, 0.78) if words else (-0.92, 0.72)
    centre, half = (wave_lo + wave_hi) / 2, (wave_hi - wave_lo) / 2
    if report.get("is_call_recording"):
        _shade_call(ax, report.get("segments") or [], wave_lo, wave_hi)
    for pause in metrics.get("pauses") or []:
        ax.axvspan(pause["start_s"], pause["end_s"], ymin=0.5 * (wave_lo + 1), ymax=0.5 * (wave_hi + 1),
                   color=PAUSE, alpha=0.55, lw=0, zorder=0)
    if samples is not None and sr and len(samples):
        lo, hi = waveform_envelope(samples)
        peak = max(float(np.max(np.abs(samples))), 1e-6)
        t = np.linspace(0, len(samples) / sr, len(lo))
        ax.fill_between(t, centre + half * lo / peak, centre + half * hi / peak, color=WAVE, lw=0, zorder=2)
    else:
        for start, end in metrics.get("speech_intervals") or []:
            ax.fill_between([start, end], centre - 0.5 * half, centre + 0.5 * half, color=WAVE, lw=0,
                            zorder=2)
    ax.axhline(centre, color=WAVE, lw=0.4, zorder=1)
    callback = content.get("callback") or {}
    for mention in callback.get("mentions") or []:
        ax.axvspan(mention["start_s"], mention["end_s"], ymin=0.5 * (wave_lo + 1), ymax=0.5 * (wave_hi + 1),
                   color=NUMBER, alpha=0.22, lw=0, zorder=1)
        ax.text(mention["start_s"], wave_hi + 0.015, "number", color="#047857", fontsize=7.5,
                fontweight="bold", va="bottom", ha="left")
    for filler in metrics.get("fillers") or []:
        ax.axvspan(filler["start_s"], max(filler["end_s"], filler["start_s"] + 0.06),
                   ymin=0.5 * (wave_lo + 1), ymax=0.5 * (wave_hi + 1), color=FILLER, alpha=0.85, lw=0,
                   zorder=3)
    _draw_words(ax, words, metrics.get("fillers") or [], duration_s, top=wave_lo - 0.04)
    # numbered finding markers along the top; close ones step up a row
    marker_s = duration_s * 11.0 / (ax.figure.get_figwidth() * ax.get_position().width * 72.0)
    row_last: list[float] = []
    for number, finding in sorted(enumerate(findings, 1), key=lambda nf: nf[1].get("start_s") or 0.0):
        if finding.get("start_s") is None:
            continue
        x = finding["start_s"]
        row = next((i for i, last in enumerate(row_last) if x - last >= marker_s), len(row_last))
        row_last[row:row + 1] = [x]
        y = 0.92 + 0.15 * row
        colour = SEVERITY_COLOURS.get(finding.get("severity"), MUTED)
        ax.plot([x], [y], marker="o", ms=10, color=colour, zorder=5, clip_on=False)
        ax.text(x, y, str(number), color="white", fontsize=6.5, fontweight="bold",
                ha="center", va="center", zorder=6, clip_on=False)
    ax.set_ylabel("waveform\n& words" if words else "waveform", color=MUTED)


def _shade_call(ax, segments, wave_lo: float, wave_hi: float) -> None:
    """Shade the greeting, the beep(s), the message (and ringback/tones) of a call recording."""
    labelled: set[str] = set()
    for seg in segments:
        colour = CALL_SHADES.get(seg.get("kind"))
        if colour is None:
            continue
        start, end = seg["start_s"], seg["end_s"]
        if seg["kind"] == "beep":
            end = max(end, start + 0.08)  # a short beep stays visible on a long axis
        ax.axvspan(start, end, ymin=0.5 * (wave_lo + 1), ymax=0.5 * (wave_hi + 1), color=colour,
                   alpha=0.9 if seg["kind"] == "beep" else 0.6, lw=0, zorder=0)
        if seg["kind"] in CALL_LABELS and seg["kind"] not in labelled:
            labelled.add(seg["kind"])
            # the beep's name above the wave, the others below: a beep sits right before the message
            top = seg["kind"] == "beep"
            ax.text(start, wave_hi - 0.02 if top else wave_lo + 0.02, seg["kind"], color=MUTED, fontsize=7,
                    va="top" if top else "bottom", ha="right" if top else "left", zorder=4)


def _draw_words(ax, words, fillers, duration_s, top) -> None:
    """Word labels in staggered rows, each in the first row where it fits (measured widths)."""
    if not words:
        return
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure, font = TextToPath(), FontProperties(size=WORD_FONT_PT)
    axes_width_pt = ax.figure.get_figwidth() * ax.get_position().width * 72.0
    gap_s = duration_s * 4.0 / axes_width_pt  # 4 pt between labels
    row_height = (top + 1.0) / WORD_ROWS
    filler_times = [(f["start_s"] - 0.05, f["end_s"] + 0.05)
                    for f in fillers if f.get("source") == "transcript"]
    row_end = [-1e9] * WORD_ROWS
    for w in words:
        text = w["word"].strip()
        if not text:
            continue
        start = float(w["start"])
        is_filler = any(a <= start <= b for a, b in filler_times)
        font.set_weight("bold" if is_filler else "normal")
        width_pt = measure.get_text_width_height_descent(text, font, ismath=False)[0]
        free = [r for r in range(WORD_ROWS) if row_end[r] <= start]
        row = free[0] if free else int(np.argmin(row_end))
        row_end[row] = start + duration_s * width_pt / axes_width_pt + gap_s
        y = top - row * row_height
        ax.plot([start, start], [y, top + 0.03], color=FILLER if is_filler else GRID, lw=0.6, zorder=0)
        ax.text(start, y, text, fontsize=WORD_FONT_PT, va="top", ha="left",
                color=FILLER if is_filler else INK, fontweight="bold" if is_filler else "normal",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.4})


def _draw_pitch(ax, report, samples, sr, ylim_hz) -> None:
    metrics = report.get("metrics") or {}
    ax.set_ylabel("pitch (Hz)", color=MUTED)
    contour = report_pitch_track(metrics, samples, sr)
    if contour is None:
        ax.text(0.5, 0.5, "pitch contour needs the audio file", transform=ax.transAxes, ha="center",
                va="center", color=MUTED, fontsize=8)
        ax.set_yticks([])
        return
    times, f0 = contour
    ax.plot(times, f0, color=PITCH, lw=1.6, solid_capstyle="round", solid_joinstyle="round")
    median = metrics.get("f0_median_hz")
    if median:
        ax.axhline(median, color=PITCH, lw=0.8, ls=(0, (3, 3)), alpha=0.7)
        sd = metrics.get("f0_sd_st")
        note = f"median {median:.0f} Hz" + (f", varies {sd:.1f} semitones" if sd is not None else "")
        ax.text(1.0, 1.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color=PITCH)
    if ylim_hz:
        ax.set_ylim(*ylim_hz)
    elif np.isfinite(f0).any():
        lo, hi = np.percentile(f0[np.isfinite(f0)], [1, 99])
        ax.set_ylim(max(0.0, float(lo) * 0.8), float(hi) * 1.3)


def _draw_pace(ax, metrics, band, ymax_wpm) -> None:
    ax.set_ylabel("pace (wpm)", color=MUTED)
    windows = metrics.get("pace_windows") or []
    if band:
        ax.axhspan(band["ok_min"], band["ok_max"], color=BAND_OK, lw=0, zorder=0)
        ax.axhspan(band["ideal_min"], band["ideal_max"], color=BAND_IDEAL, lw=0, zorder=0)
    top = ymax_wpm or max([w["rate_wpm"] for w in windows] + [band["ok_max"] if band else 0, 200.0]) * 1.15
    ax.set_ylim(0, top)
    for w in windows:
        ax.plot([w["start_s"], w["end_s"]], [w["rate_wpm"]] * 2, color=PACE, lw=2.2, solid_capstyle="butt")
        ax.text((w["start_s"] + w["end_s"]) / 2, w["rate_wpm"] + top * 0.04, f"{w['rate_wpm']:.0f}",
                ha="center", va="bottom", fontsize=7, color=PACE)
    rate = metrics.get("rate_wpm")
    if rate:
        ax.axhline(rate, color=PACE, lw=0.8, ls=(0, (3, 3)), alpha=0.7)
        label = f"average {rate:.0f} wpm" + ("; green band: target" if band else "")
        ax.text(1.0, 1.02, label, transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color=PACE)
    if not windows:
        ax.text(0.5, 0.5, "no pace measured", transform=ax.transAxes, ha="center", va="center", color=MUTED)


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
    """
    series = list(dimensions_by_series.items())
    first = series[0][1] if series else []
    keys = [d["key"] for d in first]
    labels = [d["label"] for d in first]
    n_series = max(1, len(series))
    bar_h = 0.74 / n_series
    with _style():
        fig = _figure((width_in, 0.42 * len(keys) * (1 + 0.35 * (n_series - 1)) + 0.7))
        ax = fig.subplots()
        for i, (name, dims) in enumerate(series):
            by_key = {d["key"]: d for d in dims}
            for j, key in enumerate(keys):
                d = by_key.get(key)
                if d is None:
                    continue
                y = j + (i - (n_series - 1) / 2) * bar_h
                colour = (score_colour(d["score"]) if n_series == 1
                          else SERIES_COLOURS[i % len(SERIES_COLOURS)])
                ax.barh(y, 100, height=bar_h * 0.86, color="#f1f5f9", zorder=0)
                ax.barh(y, max(d["score"], 0.8), height=bar_h * 0.86, color=colour, zorder=1,
                        label=name if j == 0 else None)
                ax.text(min(d["score"], 100) + 1.5, y, f"{d['score']:.0f}", va="center", fontsize=8,
                        color=INK)
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 110)
        ax.set_xticks([0, 20, 40, 60, 80, 100])
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        if n_series > 1:
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=n_series, frameon=False,
                      fontsize=8)
        ax.set_xlabel("score (0–100)")
        fig.tight_layout()
        return _to_svg(fig)


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
    """
    names = list(series)
    # long names (file names) do not fit under a small panel: number them; the page lists them
    ticks = list(labels) if all(len(label) <= TREND_LABEL_CHARS for label in labels) else [
        str(i) for i in range(1, len(labels) + 1)]
    rows = max(1, -(-len(names) // columns))
    x = np.arange(len(labels))
    with _style():
        fig = _figure((11.0, 2.1 * rows))
        axes = fig.subplots(rows, columns, squeeze=False, sharex=True)
        for ax, name in zip(axes.flat, names):
            values = np.array([np.nan if v is None else float(v) for v in series[name]])
            ax.axhspan(80, 100, color="#f0fdf4", lw=0, zorder=0)
            ax.plot(x, values, color=PACE, lw=1.8, zorder=2)
            ok = np.isfinite(values)
            ax.scatter(x[ok], values[ok], s=26, zorder=3, edgecolors="white", linewidths=0.8,
                       c=[score_colour(v) for v in values[ok]])
            finite = np.flatnonzero(np.isfinite(values))
            if finite.size:
                last = finite[-1]
                ax.annotate(f"{values[last]:.0f}", (x[last], values[last]), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize=8, color=INK, fontweight="bold")
            ax.set_title(name, fontsize=9, loc="left", color=INK)
            ax.set_ylim(0, 108)
            ax.set_yticks([0, 50, 100])
            ax.set_xticks(x)
            ax.set_xticklabels(ticks, fontsize=7.5)
            ax.set_xlim(-0.3, len(labels) - 0.7)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            ax.grid(axis="y", color=GRID, lw=0.6)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        fig.tight_layout()
        return _to_svg(fig)


def _figure(size_in: tuple[float, float]):
    # Figure without pyplot: no global figure registry, no GUI backend.
    from matplotlib.figure import Figure

    return Figure(figsize=size_in)


def _style():
    import matplotlib

    return matplotlib.rc_context({
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
        "font.size": 8.5,
        "axes.edgecolor": "#cbd5e1",
        "axes.labelcolor": MUTED,
        "axes.labelsize": 8.5,
        "xtick.color": MUTED,
        "ytick.color": INK,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8.5,
        "svg.fonttype": "path",
        "svg.hashsalt": "vmgrade",  # stable ids: the same report gives the same page
        "figure.facecolor": "white",
        "axes.facecolor": "white",
    })


def _to_svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()
