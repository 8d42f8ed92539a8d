"""The terminal report: grade and score, a bar per dimension, the top tips with
timestamps, strengths, and the transcript with findings highlighted.

Rendered with rich. On a terminal it is coloured; anywhere else (a pipe, a file,
a test's captured stdout) it is plain text with no ANSI codes and the same
information, marked with brackets instead of colours.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import IO, Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..errors import printable, terminal_safe
from ..report import KIND_LABELS, not_graded_kind
from ..timestamps import format_span
from .style import score_style

BAR_CELLS = 20
GLUE = set("-.,:;!?%)")  # a transcript token starting with one of these continues the previous word
PLAIN_WIDTH = 100  # columns when not writing to a terminal
MAX_HIGHLIGHT_S = 6.0  # longer finding spans get only their [n] marker: colouring half a message says nothing
WORD_SLACK_S = 0.05  # a word belongs to a span when its middle lies within the span, give or take this
SEVERITY_STYLE = {"critical": "bold white on red", "major": "bold red", "minor": "yellow", "info": "dim"}
FILLER_STYLE = "magenta"
NUMBER_STYLE = "bold cyan underline"
DIRECTION_STYLE = {"better": "green", "worse": "red", "same": "dim"}


def render_report(report: Any, *, color: bool | None = None, width: int | None = None) -> str:
    """The report as a string for a terminal (ANSI styles) or as plain text.

    Parameters
    ----------
    report : dict or Report
        A report dict (``Report.to_dict()``, the JSON of ``vmgrade grade --format json``)
        or a :class:`vmgrade.report.Report`.
    color : bool, optional
        Styles and Unicode bars (True) or plain text without ANSI codes (False);
        default: whether stdout is a terminal.
    width : int, optional
        Columns (default: the terminal's width, or ``PLAIN_WIDTH`` for plain text).
    """
    color = _is_tty(sys.stdout) if color is None else color
    console = _console(io.StringIO(), color, width)
    console.print(report_renderable(report, plain=not color))
    text = console.file.getvalue()
    # rich pads every line to the full width; plain text should not carry trailing blanks
    return text if color else "\n".join(line.rstrip() for line in text.split("\n"))


def to_text(report: Any) -> str:
    """The terminal report as plain text (no ANSI codes), for a ``Report`` or a report dict."""
    return render_report(report, color=False)


def print_report(report: Any, file: IO[str] | None = None) -> None:
    """Print :func:`render_report` to ``file`` (default stdout), coloured only on a terminal."""
    file = file or sys.stdout
    file.write(render_report(report, color=_is_tty(file)))
    file.flush()


def terminal_strings(value: Any) -> Any:
    """``value`` with every string in it made safe for a terminal (:func:`~vmgrade.errors.terminal_safe`).

    The one place the terminal renderers escape what they show: report and comparison
    strings come from file names, context fields, transcripts and report JSON a user
    handed in, any of which can hold an ANSI escape, a newline that fakes a line or a
    bidi control. Lists, tuples, dicts and dataclasses are copied with their strings escaped.
    """
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, dict):
        return {terminal_strings(k): terminal_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(terminal_strings(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: terminal_strings(getattr(value, f.name))
                                 for f in fields(value) if f.init})
    return value


def report_renderable(report: Any, *, plain: bool = False) -> Group:
    """The report as a rich renderable (for callers composing their own screen)."""
    r = terminal_strings(report.to_dict() if hasattr(report, "to_dict") else report)
    if r.get("error"):
        err = r["error"]
        kind = not_graded_kind(r)
        if kind is not None:  # no rep's message: say what the file is and why, not a failure
            conf = (r.get("recording") or {}).get("confidence")
            line = (f"NOT GRADED ({KIND_LABELS.get(kind, kind)}"
                    + (f", confidence {conf:.2f}" if isinstance(conf, (int, float)) else "")
                    + f"): {terminal_safe(err.get('message', ''))}")
            return Group(Text(line, style="" if plain else "bold yellow"))
        line = f"{r.get('file', '?')}: ERROR [{err.get('code', 'error')}] {err.get('message', '')}"
        return Group(Text(line, style="" if plain else "bold red"))
    parts: list[Any] = [_header(r, plain)]
    kind = (r.get("recording") or {}).get("kind")
    if kind:
        parts.append(Text(f"  Recording: {kind.replace('_', ' ')}", style="" if plain else "dim"))
    if r.get("is_call_recording"):
        parts += [_heading("Call recording", plain), _indent(Text(_call_lines(r)))]
    numbers = _finding_numbers(r)
    if r.get("dimensions"):
        parts += [_heading("Dimensions", plain), _dimensions(r, plain)]
    if r.get("tips"):
        parts += [_heading("Top tips", plain), _tips(r, numbers, plain)]
    if r.get("strengths"):
        strengths = _grid()
        for s in r["strengths"]:
            strengths.add_row(Text("+", style="" if plain else "bold green"), s)
        parts += [_heading("Strengths", plain), _indent(strengths)]
    if r.get("metrics"):
        parts += [_heading("Delivery", plain), _indent(Text(_delivery_line(r["metrics"])))]
    if (r.get("content") or {}).get("moves"):
        parts += [_heading("Content", plain), _indent(Text(_content_line(r["content"])))]
    if r.get("transcript"):
        parts += [_heading("Transcript:", plain), _indent(_transcript(r, numbers, plain)),
                  _indent(_legend(plain))]
    if r.get("feedback"):
        parts += [_heading("Findings", plain), _findings(r, numbers, plain)]
    return Group(*parts)


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


def _header(r: dict, plain: bool) -> Any:
    model = r.get("model") or {}
    facts = [f"{r.get('duration_s', 0):.1f} s"]
    if model.get("name"):
        facts.append(f"{model.get('engine')} {model.get('name')}")
    if (r.get("rubric") or {}).get("version"):
        facts.append(f"rubric {r['rubric']['version']}")
    title = Text(r.get("file", ""), style="" if plain else "bold")
    title.append(f"  ({', '.join(facts)})", style="" if plain else "dim")
    if r.get("score") is None:
        return title
    grade = Text(f"Grade {r.get('grade', '?')}   score {r['score']:.0f}/100")
    if plain:
        return Group(title, Text("  " + grade.plain))
    grade.stylize(f"bold {score_style(r['score'])}")
    return Group(title, Panel.fit(grade, border_style=score_style(r["score"])))


CALL_SEGMENT_KINDS_SHOWN = ("ringback", "dtmf", "greeting", "beep", "message", "after", "tone")


def _call_lines(r: dict) -> str:
    """What was graded in a call recording: the message span, the channel, the segments in brief."""
    audio = r.get("audio") or {}
    used = audio.get("channel_used")
    side = f" ({used} channel: {audio.get('channel_reason')})" if used in ("left", "right") else ""
    span = format_span(r.get("message_start_s"), r.get("message_end_s"))
    lines = [f"Graded the rep's message alone: {span}{side}; times are on the file's clock."]
    shown = [s for s in r.get("segments") or [] if s.get("kind") in CALL_SEGMENT_KINDS_SHOWN]
    if shown:
        lines.append(" · ".join(f"{s['kind']} {format_span(s['start_s'], s['end_s'], point_below_s=1.6)}"
                                for s in shown[:12]) + (" …" if len(shown) > 12 else ""))
    return "\n".join(lines)


def _dimensions(r: dict, plain: bool) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column("label", no_wrap=True)
    table.add_column("bar", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("weight", no_wrap=True)
    for d in r["dimensions"]:
        table.add_row(f" {d['label']}", _bar(d["score"], plain), f"{d['score']:.0f}",
                      Text(f"weight {d['weight']:g}", style="" if plain else "dim"))
    return table


def _bar(score: float, plain: bool) -> Text:
    filled = int(round(max(0.0, min(100.0, score)) / 100.0 * BAR_CELLS))
    if plain:
        return Text("[" + "#" * filled + "." * (BAR_CELLS - filled) + "]")
    bar = Text("█" * filled, style=score_style(score))
    bar.append("░" * (BAR_CELLS - filled), style="dim")
    return bar


def _tips(r: dict, numbers: dict, plain: bool) -> Padding:
    grid = _grid(4)
    for i, tip in enumerate(r["tips"], 1):
        ref = numbers.get(_fkey(tip))
        message = Text(tip["message"])
        message.append(f"  (+{tip.get('gain', 0):.1f} points)", style="" if plain else "dim")
        when = Text(format_span(tip.get("start_s"), tip.get("end_s")), style="" if plain else "bold cyan")
        grid.add_row(f"{i}.", when,
                     Text(f"[{ref}]" if ref is not None else "",
                          style="" if plain else SEVERITY_STYLE.get(tip["severity"], "")),
                     message)
    return _indent(grid)


def _findings(r: dict, numbers: dict, plain: bool) -> Padding:
    grid = _grid(4)
    ordered = sorted(r["feedback"], key=lambda f: (numbers.get(_fkey(f)) is None, numbers.get(_fkey(f), 0)))
    for f in ordered:
        n = numbers.get(_fkey(f))
        style = "" if plain else SEVERITY_STYLE.get(f["severity"], "")
        grid.add_row(Text(f"[{n}]" if n is not None else "-", style=style),
                     format_span(f.get("start_s"), f.get("end_s")), Text(f["severity"], style=style),
                     f["message"])
    return _indent(grid)


def _delivery_line(m: dict) -> str:
    bits = []
    if m.get("message_length_s") is not None:
        bits.append(f"message {m['message_length_s']:.1f} s")
    rate = m.get("rate_wpm") or m.get("syllable_wpm_estimate")
    if rate is not None:
        bits.append(f"{rate:.0f} wpm")
    if m.get("pause_count") is not None:
        bits.append(f"{m['pause_count']} pauses")
    if m.get("filler_count") is not None:
        bits.append(f"{m['filler_count']} fillers ({m.get('filler_rate_per_min') or 0:.1f}/min)")
    if m.get("f0_sd_st") is not None:
        bits.append(f"pitch varies {m['f0_sd_st']:.1f} st")
    return ", ".join(bits)


def _content_line(c: dict) -> str:
    """The reason's specificity and details, the asks, the number's status and the engine, in a line."""
    reason = c.get("reason") or {}
    details = ", ".join(f"{d['text']} ({d['kind']})" for d in (reason.get("details") or [])[:4])
    parts = [f"reason {reason.get('specificity', '?')}" + (f": {details}" if details else "")]
    parts.append("asks: " + (", ".join(c.get("ask_kinds") or []) or "none"))
    status = (c.get("callback") or {}).get("status")
    if status and status not in ("no_expected", "not_said"):
        parts.append(f"number {status}")
    engine = c.get("engine") or {}
    if engine.get("name"):
        parts.append(f"read by {engine['name']}" + (f" ({engine['fallback_reason']})"
                                                      if engine.get("fallback_reason") else ""))
    return printable(" · ".join(parts))


def _transcript(r: dict, numbers: dict, plain: bool) -> Text:
    """Words with finding markers ``[n]`` where a finding starts; in plain text fillers are
    ``{um}`` and the callback number ``<415-555-0198>``, on a terminal both are coloured."""
    words = (r.get("transcript") or {}).get("words") or []
    if not words:
        return Text(((r.get("transcript") or {}).get("text") or "").strip())
    metrics, content = r.get("metrics") or {}, r.get("content") or {}
    fillers = [(f["start_s"], f["end_s"]) for f in metrics.get("fillers") or []
               if f.get("source", "transcript") == "transcript"]
    number = [(m["start_s"], m["end_s"]) for m in ((content.get("callback") or {}).get("mentions") or [])]
    timed = sorted((n, f) for f in r.get("feedback") or [] if (n := numbers.get(_fkey(f))) is not None)
    pending = list(timed)  # markers not yet placed, by start time
    rank = {s: i for i, s in enumerate(("critical", "major", "minor", "info"))}
    out = Text()
    in_number = False
    for i, w in enumerate(words):
        mid = (w["start"] + w["end"]) / 2
        text = w["word"].strip()
        if i and text[:1] not in GLUE:
            out.append(" ")
        here = [f for _, f in pending if f["start_s"] < w["end"] - WORD_SLACK_S]
        if here:
            refs = [n for n, f in pending if f in here]
            pending = [(n, f) for n, f in pending if f not in here]
            worst = min(here, key=lambda f: rank.get(f["severity"], 9))
            out.append(f"[{','.join(map(str, refs))}]",
                       style="" if plain else f"reverse {SEVERITY_STYLE.get(worst['severity'], '')}")
            out.append(" ")
        style = ""
        covering = [f for _, f in timed if f["end_s"] is not None
                    and f["end_s"] - f["start_s"] <= MAX_HIGHLIGHT_S
                    and f["start_s"] - WORD_SLACK_S <= mid <= f["end_s"] + WORD_SLACK_S]
        if covering:
            worst = min(covering, key=lambda f: rank.get(f["severity"], 9))
            style = SEVERITY_STYLE.get(worst["severity"], "")
        is_filler = _inside(mid, fillers)
        is_number = _inside(mid, number)
        if is_filler:
            style = FILLER_STYLE
            if plain:
                text = "{" + text + "}"
        if is_number:
            style = NUMBER_STYLE
            if plain and not in_number:
                text = "<" + text
            nxt = words[i + 1] if i + 1 < len(words) else None
            if plain and (nxt is None or not _inside((nxt["start"] + nxt["end"]) / 2, number)):
                text += ">"
        in_number = is_number
        out.append(text, style="" if plain else style)
    for n, f in pending:  # findings that start after the last word
        out.append(f" [{n}]", style="" if plain else SEVERITY_STYLE.get(f["severity"], ""))
    return out


def _legend(plain: bool) -> Text:
    if plain:
        return Text("([n] finding n starts, see Findings; {um} filler; <...> callback number)")
    legend = Text()
    legend.append("[n]", style="reverse bold red")
    legend.append(" finding n starts  ")
    legend.append("critical", style=SEVERITY_STYLE["critical"])
    legend.append(" ")
    legend.append("major", style=SEVERITY_STYLE["major"])
    legend.append(" ")
    legend.append("minor", style=SEVERITY_STYLE["minor"])
    legend.append("  ")
    legend.append("filler", style=FILLER_STYLE)
    legend.append("  ")
    legend.append("callback number", style=NUMBER_STYLE)
    return legend


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _finding_numbers(r: dict) -> dict[tuple, int]:
    """Number the timed findings 1..n in order of start time (tips and transcript share them)."""
    timed = sorted((f for f in r.get("feedback") or [] if f.get("start_s") is not None),
                   key=lambda f: (f["start_s"], f.get("end_s") or 0))
    return {_fkey(f): i for i, f in enumerate(timed, 1)}


def _fkey(f: dict) -> tuple:
    return (f.get("code"), f.get("start_s"), f.get("end_s"))


def _inside(t: float, spans: Sequence[tuple[float, float]]) -> bool:
    return any(a - WORD_SLACK_S <= t <= b + WORD_SLACK_S for a, b in spans)


def _grid(columns: int = 2) -> Table:
    """Borderless rows, indented; the last column wraps."""
    grid = Table.grid(padding=(0, 1), pad_edge=False)
    for _ in range(columns - 1):
        grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _indent(renderable: Any) -> Padding:
    return Padding(renderable, (0, 0, 0, 2))


def _heading(title: str, plain: bool) -> Text:
    return Text("\n" + title, style="" if plain else "bold underline")


def _is_tty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


def _console(file: IO[str], color: bool, width: int | None) -> Console:
    if not color:
        return Console(file=file, force_terminal=False, no_color=True, color_system=None, highlight=False,
                       emoji=False, markup=False, width=width or PLAIN_WIDTH, soft_wrap=False)
    if width is None:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError, AttributeError):
            width = PLAIN_WIDTH
    return Console(file=file, force_terminal=True, color_system="standard", highlight=False, emoji=False,
                   markup=False, width=width)


# --------------------------------------------------------------------------
# Comparison (vmgrade compare)
# --------------------------------------------------------------------------

def render_comparison(comparison: Any, *, color: bool | None = None, width: int | None = None) -> str:
    """A :class:`vmgrade.compare.Comparison` for the terminal: coloured on a TTY, else the
    plain text of :func:`vmgrade.render.compare_text.format_text` (same information)."""
    from .compare_text import format_text, table_rows

    color = _is_tty(sys.stdout) if color is None else color
    c = terminal_strings(comparison)
    if not color:
        return format_text(c) + "\n"

    console = _console(io.StringIO(), True, width)
    names = [r.label for r in c.recordings]
    title = (f"{c.recordings[c.before].label} → {c.recordings[c.after].label}" if c.ok else ", ".join(names))
    facts = f"({len(names)} recordings, {c.order.replace('_', ' ')} order, rubric {c.rubric_version})"
    console.print(Text(f"Comparison: {title}", style="bold"), Text(facts, style="dim"))
    console.print(_heading("Summary", False))
    summary = _grid()
    for line in c.summary:
        summary.add_row("•", line)
    console.print(_indent(summary))
    if c.warnings:
        console.print(_heading("Warnings", False))
        console.print(_indent(Text("\n".join(c.warnings), style="yellow")))
    if c.errors:
        console.print(_heading("Errors", False))
        console.print(_indent(Text("\n".join(c.errors), style="bold red")))
    if not c.ok:
        return console.file.getvalue()
    console.print(_heading("Changes", False),
                  Text("  ★ a listener would notice: crosses a rubric band or exceeds the JND", style="dim"))
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_header=True, header_style="dim")
    for name, justify in (("", "left"), ("", "left"), ("before", "right"), ("after", "right"),
                          ("change", "right"), ("", "left"), ("", "left")):
        table.add_column(name, justify=justify, no_wrap=justify == "right")
    section = None
    for d, label, before, after, change, note in table_rows(c):
        if d.kind != "score" and d.kind != section:
            section = d.kind
            table.add_row("", Text(f"{section.capitalize()}s", style="bold underline"))
        style = DIRECTION_STYLE.get(d.direction, "") + (" bold" if d.noticeable else "")
        table.add_row(Text("★" if d.noticeable else "", style="bold yellow"), label, before, after,
                      Text(change, style=style), Text(d.direction, style=style), Text(note, style="dim"))
    console.print(_indent(table))
    if c.trends:
        console.print(_heading(f"Trend over {len(names)} recordings", False))
        trends = _grid(3)
        for t in c.trends:
            if t.kind != "metric":
                values = " → ".join("-" if v is None else f"{v:.0f}" for v in t.values)
                style = {"improving": "green", "declining": "red", "mixed": "yellow"}.get(t.direction, "dim")
                trends.add_row(t.label, values, Text(t.direction, style=style))
        console.print(_indent(trends))
    console.print(_heading("Transcript diff", False))
    diff = Text()
    for op in c.transcript_diff:
        if op.op == "equal":
            diff.append(" ".join(op.before) + " ")
            continue
        if op.before:
            diff.append(" ".join(op.before), style="red strike")
            diff.append(" ")
        if op.after:
            diff.append(" ".join(op.after), style="bold green")
            diff.append(" ")
    console.print(_indent(diff))
    return console.file.getvalue()


def print_comparison(comparison: Any, file: IO[str] | None = None) -> None:
    """Print :func:`render_comparison` to ``file`` (default stdout), coloured only on a terminal."""
    file = file or sys.stdout
    file.write(render_comparison(comparison, color=_is_tty(file)))
    file.flush()
