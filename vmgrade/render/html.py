"""Self-contained HTML pages: one graded voicemail, or a comparison of several.

The pages are rendered with Jinja2 (``vmgrade/render/templates/``) from report dicts
(``Report.to_dict()``, or stored JSON), so the batch runner and the web app
can render saved reports.  Everything is inside the one file: charts as SVG
data URIs (:mod:`vmgrade.render.charts`), the audio as an MP3 data URI (16 kHz mono,
about 5 kB per second), a few lines of inline CSS and JavaScript.  The page
loads nothing from the network and works offline.

Clicking a finding, a word of the transcript or a point of the timeline plays
the recording from that moment.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VmgradeError
from ..fileio import write_atomic
from ..report import not_graded_kind
from ..timestamps import format_clock, format_span
from . import charts
from .style import score_colour

if TYPE_CHECKING:
    from ..audio import Audio
    from ..compare import Comparison
    from ..scoring import Rubric

# The page embeds the recording re-encoded, not the original file: a phone
# recording may be AMR or M4A that browsers cannot play, and a WAV is ~7x larger.
EMBED_FORMAT = ("MP3", "MPEG_LAYER_III", "audio/mpeg")
EMBED_FALLBACK = ("WAV", "PCM_16", "audio/wav")  # libsndfile builds without MP3
MAX_EMBED_DURATION_S = 1800.0  # the page of a 10 min voicemail is ~3 MB; refuse nothing sensible
TRANSCRIPT_PAUSE_MIN_MS = 250.0  # every pause the report lists is shown between words
FINDING_WORD_SLACK_S = 0.05  # Whisper word edges are rounded to 10-20 ms
FLAG_MAX_SPAN_S = 3.5  # transcript words are underlined for findings up to this long (all on click)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AppNav:
    """The web app's navigation bar, on a report or comparison page that ``vmgrade serve`` serves.

    A page written for a file (``vmgrade grade --html``, a batch) has none: no server answers its links.

    Attributes
    ----------
    links : tuple of (str, str)
        ``(href, label)`` of each link, in order.
    user : str
        Who is logged in, as the bar shows it (``"rita (rep, east)"``).
    csrf_token : str
        For the log-out form (a POST to ``logout_url``).
    current : str, optional
        The ``href`` of the link to mark as the current page.
    logout_url : str
    """

    links: tuple[tuple[str, str], ...]
    user: str
    csrf_token: str
    current: str | None = None
    logout_url: str = "/logout"


def render_app_nav(nav: AppNav) -> str:
    """The markup of ``nav`` alone (its styles are in every page's ``base.html.j2``)."""
    return str(_environment().get_template("macros.html.j2").make_module().app_nav(nav))


def insert_app_nav(page: str, nav: AppNav) -> str:
    """``page`` (a report or comparison page rendered without navigation) with ``nav`` at the top of its body.

    For a page rendered once and cached: the bar, which differs by user, goes in when it is served.
    """
    body = page.find("<body>")
    if body < 0:
        raise ValueError("not a vmgrade page: no <body>")
    at = body + len("<body>")
    return page[:at] + "\n" + render_app_nav(nav) + page[at:]


def render_report_html(report: Mapping[str, Any], audio_path: str | os.PathLike | None = None, *,
                       app_nav: AppNav | None = None) -> str:
    """One self-contained HTML page for a graded voicemail.

    Parameters
    ----------
    report : mapping
        A report dict (``Report.to_dict()``), possibly an error report.
    audio_path : str or PathLike, optional
        The recording.  Default: ``report["file"]`` when that file exists.
        With audio the page embeds it (MP3, decoded once) and draws the
        waveform; without, the speech track stands in.  The pitch contour
        comes from the report's ``metrics.pitch_track`` (a report saved
        before that key draws pitch only when its audio is at hand).
    app_nav : AppNav, optional
        The web app's navigation bar (only for a page the web app serves; never in a written file).

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    AudioError
        When ``audio_path`` is given explicitly and cannot be decoded.
    """
    view = _recording_view(dict(report), _audio_for(report, audio_path), key="a0")
    return render_template("report.html.j2", r=view, title=f"vmgrade: {view['name']}", app_nav=app_nav)


def write_report_html(
    report: Mapping[str, Any], path: str | os.PathLike, audio_path: str | os.PathLike | None = None
) -> Path:
    """Render :func:`render_report_html` and write it to ``path`` atomically.

    Returns
    -------
    Path
        The file written.
    """
    return write_atomic(Path(path), render_report_html(report, audio_path))


def render_comparison_html(comparison: Comparison, *, app_nav: AppNav | None = None) -> str:
    """One self-contained HTML page comparing recordings (``vmgrade.compare.Comparison``).

    Two recordings: side-by-side timelines with their audio, grouped dimension
    bars, per-dimension and per-metric deltas with noticeable changes marked,
    the transcript diff and the plain-language summary.  Three or more: the
    same for the first and last graded recording, plus a trend chart per
    dimension across all of them.  The audio of the two recordings shown side
    by side is embedded when their ``file`` exists.  ``app_nav``: the web app's
    navigation bar (:class:`AppNav`), only for a page the web app serves.
    """
    recordings = list(comparison.recordings)
    shown = [i for i in (comparison.before, comparison.after) if i is not None]
    views: dict[int, dict] = {}
    ok_reports = [recordings[i].report for i in shown]
    shared = {  # one scale on both sides, so the charts compare at a glance
        "pitch_ylim_hz": _shared_pitch_ylim(ok_reports),
        "pace_ymax_wpm": _shared_pace_ymax(ok_reports),
        "duration_s": max([float(r.get("duration_s") or 0.0) for r in ok_reports] + [0.1]),
        "size_in": charts.COMPARE_TIMELINE_SIZE_IN,
        "show_words": False,
    }
    for n, i in enumerate(shown):
        rec = recordings[i]
        views[i] = _recording_view(dict(rec.report), _audio_for(rec.report, None), key=f"a{n}",
                                   label=rec.label, **shared)
    dims_chart = None
    if len(shown) == 2:
        b, a = (recordings[i] for i in shown)
        dims_chart = _svg_uri(charts.dimension_chart(
            {b.label: b.report.get("dimensions") or [], a.label: a.report.get("dimensions") or []},
            width_in=6.2,
        ))
    trend_chart = None
    if comparison.trends:
        labels = [r.label for r in recordings]
        wanted = [t for t in comparison.trends if t.kind in ("score", "dimension")]
        trend_chart = _svg_uri(charts.trend_chart(labels, {t.label: list(t.values) for t in wanted}))
    return render_template(
        "compare.html.j2",
        c=comparison,
        recordings=recordings,
        sides=[views[i] for i in shown],
        dims_chart=dims_chart,
        trend_chart=trend_chart,
        diff=_diff_view(comparison, [views[i]["audio_key"] for i in shown]),
        fmt=_fmt_delta,
        title="vmgrade: comparison of " + ", ".join(r.label for r in recordings),
        app_nav=app_nav,
    )


def write_comparison_html(comparison: Comparison, path: str | os.PathLike) -> Path:
    """Render :func:`render_comparison_html` and write it to ``path`` atomically."""
    return write_atomic(Path(path), render_comparison_html(comparison))


# --------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------


def _audio_for(report: Mapping[str, Any], audio_path) -> Audio | None:
    """Decode the recording: the explicit path (errors raised) or the report's file (if there)."""
    from ..audio import load

    if audio_path is not None:
        return load(audio_path, max_duration_s=MAX_EMBED_DURATION_S)
    file = report.get("file")
    if not file or report.get("error") or not Path(file).is_file():
        return None
    try:
        return load(file, max_duration_s=MAX_EMBED_DURATION_S)
    except VmgradeError:
        return None  # the report renders without its audio


def audio_data_uri(audio: Audio) -> str:
    """The decoded recording as a ``data:`` URI browsers play (MP3, else WAV)."""
    import soundfile as sf

    for fmt, subtype, mime in (EMBED_FORMAT, EMBED_FALLBACK):
        buf = io.BytesIO()
        try:
            sf.write(buf, audio.samples, audio.sample_rate, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, ValueError, TypeError):
            continue
        return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
    raise RuntimeError("soundfile can write neither MP3 nor WAV")  # pragma: no cover


# --------------------------------------------------------------------------
# View models: plain dicts the templates read
# --------------------------------------------------------------------------


def _recording_view(report: dict, audio: Audio | None, *, key: str, label: str | None = None,
                    **timeline_options: Any) -> dict:
    name = Path(str(report.get("file", "recording"))).name
    view: dict[str, Any] = {
        "report": report,
        "name": name,
        "label": label or name,
        "audio_key": key,
        "error": report.get("error"),
        "has_audio": audio is not None,
        "model": report.get("model") or {},
        "rubric": report.get("rubric") or {},
        "vmgrade_version": report.get("vmgrade_version", ""),
        # what the file is (recording.kind): "greeting only" etc. for a file that is no rep's message
        "kind": ((report.get("recording") or {}).get("kind") or "").replace("_", " "),
        "not_graded": not_graded_kind(report) is not None,
    }
    if report.get("error"):
        return view
    rubric = _rubric_of(report)
    findings = [dict(f, n=n) for n, f in enumerate(report.get("feedback") or [], 1)]
    for f in findings:
        f["when"] = _span(f.get("start_s"), f.get("end_s"))
    by_code = {(f["code"], f.get("start_s"), f["message"]): f["n"] for f in findings}
    tips = [dict(t, n=by_code.get((t["code"], t.get("start_s"), t["message"])),
                 when=_span(t.get("start_s"), t.get("end_s"))) for t in report.get("tips") or []]
    timeline = charts.timeline_chart(
        report,
        None if audio is None else audio.samples,
        None if audio is None else audio.sample_rate,
        pace_band_wpm=_pace_band(rubric),
        findings=findings,
        **timeline_options,
    )
    dims = report.get("dimensions") or []
    count_by_dim: dict[str, int] = {}
    for f in findings:
        count_by_dim[f.get("dimension")] = count_by_dim.get(f.get("dimension"), 0) + 1
    view.update(
        score=report.get("score"),
        letter=report.get("grade"),
        score_colour=score_colour(report.get("score") or 0.0),
        duration_s=report.get("duration_s"),
        dimensions=[dict(d, findings=count_by_dim.get(d["key"], 0), colour=score_colour(d["score"]))
                    for d in dims],
        findings=findings,
        tips=tips,
        strengths=report.get("strengths") or [],
        timeline={
            "src": _svg_uri(timeline.svg),
            "t0": timeline.t0_s, "t1": timeline.t1_s, "x0": timeline.x0_frac, "x1": timeline.x1_frac,
        },
        dims_chart=_svg_uri(charts.dimension_chart({name: dims})) if dims else None,
        audio_src=None if audio is None else audio_data_uri(audio),
        transcript=_transcript_tokens(report, findings, rubric),
        moves=_moves_view(report),
        key_numbers=_key_numbers(report, rubric),
        context=report.get("context") or {},
        call=_call_view(report),
    )
    return view


# What each move is called on the page, and whether a trainer would cut it.
MOVE_LABELS = {
    "greeting": "greeting", "identity": "who's calling", "prospect": "addresses them", "reason": "reason",
    "value": "value / proof", "generic_pitch": "generic pitch", "dump": "feature or price dump",
    "ask_callback": "ask: call back", "ask_meeting": "ask: meeting", "ask_email": "ask: email",
    "ask_text": "ask: text", "ask_other": "ask: other", "number": "number", "signoff": "sign-off",
    "hedge": "hedge / apology", "filler_talk": "filler talk",
}
WEAK_MOVES = frozenset({"generic_pitch", "dump", "hedge", "filler_talk"})


def _moves_view(report: Mapping[str, Any]) -> dict | None:
    """Each sentence with the moves it makes, and the reason's concrete details; None without moves."""
    content = report.get("content") or {}
    moves = content.get("moves") or []
    if not moves:
        return None
    reason = content.get("reason") or {}
    engine = content.get("engine") or {}
    return {
        "sentences": [{"t": m["start_s"], "clock": format_clock(m["start_s"]), "text": m["text"],
                       "moves": [{"label": MOVE_LABELS.get(k, k), "weak": k in WEAK_MOVES}
                                 for k in m["moves"]]}
                      for m in moves],
        "specificity": reason.get("specificity"),
        "details": [{"t": d["start_s"], "text": d["text"], "kind": d["kind"]}
                    for d in (reason.get("details") or []) + (reason.get("proof_details") or [])],
        "engine": engine.get("name"),
        "fallback_reason": engine.get("fallback_reason"),
    }


def _call_view(report: Mapping[str, Any]) -> dict | None:
    """A call recording's graded span and channel, for the line above the timeline; None otherwise."""
    if not report.get("is_call_recording"):
        return None
    audio = report.get("audio") or {}
    used = audio.get("channel_used")
    return {
        "message": _span(report.get("message_start_s"), report.get("message_end_s")),
        "message_start_s": report.get("message_start_s"),
        "channel": f"{used} channel ({audio.get('channel_reason')})" if used in ("left", "right") else None,
        "beeps": [_span(s["start_s"], s["end_s"]) for s in report.get("segments") or []
                  if s["kind"] == "beep"],
    }


def _transcript_tokens(
    report: Mapping, findings: Sequence[Mapping], rubric: Rubric | None = None
) -> list[dict]:
    """Words (with filler/number/finding marks), pause chips and finding badges, in time order.

    A pause chip is marked long from the rubric's ``long_pause_s`` (as the grade counts it)."""
    words = (report.get("transcript") or {}).get("words") or []
    metrics = report.get("metrics") or {}
    callback = (report.get("content") or {}).get("callback") or {}
    fillers = [(f["start_s"], f["end_s"])
               for f in metrics.get("fillers") or [] if f.get("source") == "transcript"]
    numbers = [(m["start_s"], m["end_s"]) for m in callback.get("mentions") or []]
    timed = [f for f in findings if f.get("start_s") is not None]
    pauses = sorted((p for p in metrics.get("pauses") or [] if p["duration_ms"] >= TRANSCRIPT_PAUSE_MIN_MS),
                    key=lambda p: p["start_s"])
    long_ms = 1000.0 * rubric.t("long_pause_s") if rubric else math.inf
    slack = FINDING_WORD_SLACK_S
    tokens: list[dict] = []
    badge_done: set[int] = set()
    pi = 0
    for w in words:
        start, end = float(w["start"]), float(w["end"])
        while pi < len(pauses) and pauses[pi]["end_s"] <= start + slack:
            p = pauses[pi]
            tokens.append({"kind": "pause", "t": p["start_s"], "ms": p["duration_ms"],
                           "long": p["duration_ms"] >= long_ms})
            pi += 1
        for f in timed:
            if f["n"] not in badge_done and start + slack >= f["start_s"]:
                badge_done.add(f["n"])
                tokens.append({"kind": "badge", "n": f["n"], "t": f["start_s"], "severity": f["severity"]})
        mid = (start + end) / 2
        covering = [f["n"] for f in timed
                    if f["start_s"] - slack <= mid <= (f["end_s"] or f["start_s"]) + slack]
        tokens.append({
            "kind": "word",
            "text": w["word"].strip(),
            "t": start,
            "end": end,
            "filler": any(a - slack <= mid <= b + slack for a, b in fillers),
            "number": any(a - slack <= mid <= b + slack for a, b in numbers),
            "unsure": w.get("probability", 1.0) < 0.4,
            "findings": " ".join(str(n) for n in covering),
            # underline only short spans; a span over most of the message would mark every word
            "flag": any((f["end_s"] or f["start_s"]) - f["start_s"] <= FLAG_MAX_SPAN_S
                        for f in timed if f["n"] in covering),
        })
    for f in timed:  # findings after the last word
        if f["n"] not in badge_done:
            tokens.append({"kind": "badge", "n": f["n"], "t": f["start_s"], "severity": f["severity"]})
    return tokens


def _key_numbers(report: Mapping, rubric: Rubric | None = None) -> list[dict]:
    """The measurements a rep can act on, with units, as (label, value, note); targets from ``rubric``."""
    m = report.get("metrics") or {}
    callback = (report.get("content") or {}).get("callback") or {}
    rows = []

    def add(label, value, note=""):
        rows.append({"label": label, "value": value, "note": note})

    if m.get("message_length_s") is not None:
        add("Message length", f"{m['message_length_s']:.0f} s", f"{m.get('word_count') or 0} words")
    if m.get("rate_wpm") is not None:
        band = _pace_band(rubric)
        add("Pace", f"{m['rate_wpm']:.0f} wpm",
            f"target {band['ideal_min']:.0f}–{band['ideal_max']:.0f}" if band else "")
    if m.get("filler_count") is not None:
        add("Fillers", f"{m['filler_count']}", f"{m.get('filler_rate_per_min') or 0:.1f} per minute")
    add("Pauses", f"{m.get('pause_count', 0)}", f"longest {(m.get('longest_pause_ms') or 0) / 1000:.1f} s")
    if m.get("f0_sd_st") is not None:
        add("Pitch variation", f"{m['f0_sd_st']:.1f} st",
            f"monotone below {rubric.t('monotone_sd_st'):g}" if rubric else "")
    times = callback.get("times_said")
    if times is not None:
        mentions = callback.get("mentions") or []
        rate = max((x.get("digits_per_s") or 0 for x in mentions), default=0)
        add("Number said", f"{times}×", f"{rate:.1f} digits/s" if mentions else "not said")
    if m.get("snr_db") is not None:
        add("Signal to noise", f"{m['snr_db']:.0f} dB", m.get("bandwidth", ""))
    return rows


def _diff_view(comparison: Comparison, audio_keys: Sequence[str]) -> list[dict]:
    """The transcript diff as runs the template colours; times seek each side's audio."""
    before_key = audio_keys[0] if audio_keys else None
    after_key = audio_keys[-1] if audio_keys else None
    out = []
    for op in comparison.transcript_diff:
        out.append({
            "op": op.op,
            "before": " ".join(op.before),
            "after": " ".join(op.after),
            "before_t": op.before_start_s,
            "after_t": op.after_start_s,
            "before_key": before_key,
            "after_key": after_key,
        })
    return out


def _rubric_of(report: Mapping) -> Rubric | None:
    """The rubric the report names (its ``rubric.path``), else the packaged one; None if unreadable."""
    from ..scoring import load_rubric

    path = (report.get("rubric") or {}).get("path")
    try:
        return load_rubric(path if path and Path(path).is_file() else None)
    except VmgradeError:
        return None


def _pace_band(rubric: Rubric | None) -> dict | None:
    """The rubric's speaking-rate bands (wpm)."""
    if rubric is None:
        return None
    t = rubric.thresholds
    try:
        return {"ideal_min": t["rate_ideal_min_wpm"], "ideal_max": t["rate_ideal_max_wpm"],
                "ok_min": t["rate_acceptable_min_wpm"], "ok_max": t["rate_acceptable_max_wpm"]}
    except KeyError:
        return None


def _shared_pitch_ylim(reports: Sequence[Mapping]) -> tuple[float, float] | None:
    medians = [(r.get("metrics") or {}).get("f0_median_hz") for r in reports]
    medians = [m for m in medians if m]
    if not medians:
        return None
    return (min(medians) / 2.0, max(medians) * 2.0)


def _shared_pace_ymax(reports: Sequence[Mapping]) -> float:
    rates = [w["rate_wpm"] for r in reports for w in (r.get("metrics") or {}).get("pace_windows") or []]
    return max(rates + [200.0]) * 1.15


def _fmt_delta(d) -> dict:
    """Before/after/delta of a ``compare.Delta`` as display strings."""
    unit = {"": "", "points": "", "%": "%", "times": "×"}.get(d.unit, " " + d.unit)

    def num(v):
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.1f}"

    delta = "—" if d.delta is None else ("+" if d.delta > 0 else "") + num(d.delta)
    rel = "" if d.relative is None or d.kind != "metric" else f" ({d.relative * 100:+.0f}%)"
    return {"before": num(d.before) + (unit if d.before is not None else ""),
            "after": num(d.after) + (unit if d.after is not None else ""),
            "delta": delta + (unit if d.delta is not None else "") + rel}


# --------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------


def render_template(template: str, **context: Any) -> str:
    """Render one of ``vmgrade/render/templates/`` in the one shared Jinja environment."""
    return _environment().get_template(template).render(**context)


_ENV = None


def _environment():
    global _ENV
    if _ENV is None:
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        _ENV = Environment(
            loader=PackageLoader("vmgrade.render", "templates"),
            autoescape=select_autoescape(("html", "j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _ENV.filters["clock"] = format_clock
        _ENV.filters["span"] = lambda f: _span(f.get("start_s"), f.get("end_s"))
    return _ENV


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _span(start_s: float | None, end_s: float | None) -> str:
    return format_span(start_s, end_s, point_below_s=0.05)  # a point finding shows one time
