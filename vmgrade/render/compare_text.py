"""A :class:`vmgrade.compare.Comparison` as plain text (no colour, fixed-width columns).

:func:`table_rows` is the one comparison table: this module and the coloured
terminal rendering (:func:`vmgrade.render.terminal.render_comparison`) both draw it.
"""

from __future__ import annotations

import textwrap

from ..compare import METRICS, Comparison, Delta, DiffOp

DIFF_WIDTH = 100  # columns of the wrapped transcript diff


def format_text(c: Comparison) -> str:
    """Plain text: summary, warnings, errors, every delta (noticeable ones starred), trends and the
    transcript diff."""
    names = [r.label for r in c.recordings]
    lines = []
    if c.ok:
        lines.append(f"Comparison: {c.recordings[c.before].label} -> {c.recordings[c.after].label}"
                     f"  ({len(c.recordings)} recordings, {c.order.replace('_', ' ')} order, "
                     f"rubric {c.rubric_version})")
    else:
        lines.append(f"Comparison of {', '.join(names)}")
    lines.append("")
    lines.append("Summary")
    lines += [f"  - {s}" for s in c.summary]
    if c.warnings:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in c.warnings]
    if c.errors:
        lines += ["", "Errors"] + [f"  ! {e}" for e in c.errors]
    if not c.ok:
        return "\n".join(lines)
    lines += ["", "Changes  (* = a listener would notice: crosses a rubric band or exceeds the JND)"]
    section = None
    for d, label, before, after, change, note in table_rows(c):
        if d.kind != "score" and d.kind != section:
            section = d.kind
            lines.append(f"  {section.capitalize()}s")
        lines.append(_row(label, before, after, change, d, note))
    if c.trends:
        lines += ["", f"Trend over {len(c.recordings)} recordings ({', '.join(names)})"]
        for t in c.trends:
            if t.kind == "metric":
                continue
            values = " -> ".join("-" if v is None else f"{v:.0f}" for v in t.values)
            lines.append(f"  {t.label:<36} {values}   {t.direction}")
    lines += ["", "Transcript diff  ([-removed-] {+added+})", "  " + _diff_text(c.transcript_diff)]
    return "\n".join(lines)


def table_rows(c: Comparison) -> list[tuple[Delta, str, str, str, str, str]]:
    """The deltas as display strings: (delta, label, before, after, change, note), score first,
    then dimensions, then metrics. ``note`` holds band changes or fixed/new finding codes."""
    if not c.ok:
        return []
    rows = []
    s = c.score
    rows.append((s, s.label, f"{_v(s.before, 0)} {s.band_before or ''}".strip(),
                 f"{_v(s.after, 0)} {s.band_after or ''}".strip(),
                 "" if s.delta is None else f"{s.delta:+.0f}", ""))
    for d in c.dimensions:
        note = "; ".join(p for p in (("fixed: " + ", ".join(d.fixed)) if d.fixed else "",
                                     ("new: " + ", ".join(d.new)) if d.new else "") if p)
        rows.append((d, d.label, _v(d.before, 0), _v(d.after, 0),
                     "" if d.delta is None else f"{d.delta:+.0f}", note))
    specs = {m.key: m for m in METRICS}
    for d in c.metrics:
        spec = specs[d.key]
        rel = f" ({d.relative:+.0%})" if d.relative is not None and spec.jnd else ""
        note = f"{d.band_before} -> {d.band_after}" if d.crossed_band else (d.band_after or "")
        rows.append((d, f"{d.label} ({d.unit})" if d.unit else d.label, _v(d.before, spec.digits),
                     _v(d.after, spec.digits),
                     ("" if d.delta is None else f"{d.delta:+.{spec.digits}f}") + rel, note))
    return rows


def _v(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(label: str, before: str, after: str, delta: str, d: Delta, extra: str = "") -> str:
    mark = "*" if d.noticeable else " "
    return (f"  {mark} {label:<40} {before:>9} -> {after:<9} {delta:>12}  {d.direction:<6}"
            f"{'  ' + extra if extra else ''}").rstrip()


def _diff_text(ops: list[DiffOp], width: int = DIFF_WIDTH) -> str:
    parts = []
    for op in ops:
        if op.op == "equal":
            parts.append(" ".join(op.before))
            continue
        if op.before:
            parts.append("[-" + " ".join(op.before) + "-]")
        if op.after:
            parts.append("{+" + " ".join(op.after) + "+}")
    return "\n  ".join(textwrap.wrap(" ".join(parts), width, break_long_words=False, break_on_hyphens=False))
