"""Charts as server-rendered SVG. Pure: numbers in, markup out.

Why SVG from the server rather than a charting library in the browser: the
page needs no script to show its numbers, nothing is fetched from a CDN (the
service works offline), a chart costs a few kilobytes, and the same numbers
that drew it are in the page as text for screen readers and for copying.
Every chart has a <title> and a <desc>, and each mark its own <title> (the
value on hover or focus); the page puts a data table beside each chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# Colours checked for contrast against white (WCAG AA for graphics, 3:1).
INK = "#1f2933"
MUTED = "#52606d"
COLOURS = ("#0b6e4f", "#1d4ed8", "#b45309", "#7c3aed", "#be123c")


def _num(value: float) -> str:
    """Compact number for axis labels: 1234 -> 1.2k."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}"


def funnel(steps: Sequence[tuple[str, int, str]], title: str = "Funnel") -> str:
    """Horizontal bars, one per step, as wide as the step's share of the first.

    `steps`: (label, count, note) - the note is printed beside the bar (the
    rate and its denominator).
    """
    # Narrow on purpose: label and note above each bar, so the text stays
    # readable when a phone scales the chart down to its width.
    width, row = 400, 52
    top = max((c for _, c, _ in steps), default=0) or 1
    height = row * len(steps) + 4
    desc = "; ".join(f"{label}: {count} ({note})" if note else f"{label}: {count}"
                     for label, count, note in steps)
    out = [f'<svg class="chart funnel" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="funnel-t funnel-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="funnel-t">{escape(title)}</title>',
           f'<desc id="funnel-d">{escape(desc)}</desc>']
    bar_max = width - 60
    for i, (label, count, note) in enumerate(steps):
        y = i * row
        w = max(2.0, bar_max * count / top) if count else 0.0
        out.append(f'<g class="step"><title>{escape(label)}: {count}</title>'
                   f'<text x="0" y="{y + 16}" fill="{INK}" font-size="14">{escape(label)}</text>'
                   f'<text x="{width}" y="{y + 16}" fill="{MUTED}" font-size="12" '
                   f'text-anchor="end">{escape(note)}</text>'
                   f'<rect x="0" y="{y + 22}" width="{w:.1f}" height="22" rx="3" '
                   f'fill="{COLOURS[0]}"/>'
                   f'<text x="{w + 6:.1f}" y="{y + 38}" fill="{INK}" font-size="14" '
                   f'font-weight="600">{count:,}</text></g>')
    out.append("</svg>")
    return "".join(out)


def columns(title: str, labels: Sequence[str], values: Sequence[float], *,
            unit: str = "", colour: int = 0, ident: str = "c") -> str:
    """A column chart over time: one column per bucket, a zero line, the max on
    the axis, the first and last bucket labels under it."""
    width, height, left, bottom = 640, 180, 44, 24
    n = max(len(values), 1)
    top = max(max(values, default=0), 0) or 1
    plot_w, plot_h = width - left - 4, height - bottom - 10
    step = plot_w / n
    total = sum(values)
    out = [f'<svg class="chart columns" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{ident}-t">{escape(title)}</title>',
           f'<desc id="{ident}-d">{escape(f"{len(values)} buckets, total {_num(total)}{unit}")}'
           "</desc>",
           f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 4}" y2="{10 + plot_h}" '
           f'stroke="{MUTED}"/>',
           f'<text x="{left - 6}" y="16" fill="{MUTED}" font-size="12" '
           f'text-anchor="end">{escape(_num(top))}</text>',
           f'<text x="{left - 6}" y="{10 + plot_h}" fill="{MUTED}" font-size="12" '
           'text-anchor="end">0</text>']
    colour_hex = COLOURS[colour % len(COLOURS)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * max(value, 0) / top
        x = left + i * step + step * 0.1
        out.append(f'<rect x="{x:.1f}" y="{10 + plot_h - h:.1f}" width="{step * 0.8:.1f}" '
                   f'height="{h:.1f}" fill="{colour_hex}"><title>{escape(label)}: '
                   f'{escape(_num(value))}{escape(unit)}</title></rect>')
    if labels:
        out.append(f'<text x="{left}" y="{height - 6}" fill="{MUTED}" font-size="12">'
                   f'{escape(labels[0])}</text>')
        out.append(f'<text x="{width - 4}" y="{height - 6}" fill="{MUTED}" font-size="12" '
                   f'text-anchor="end">{escape(labels[-1])}</text>')
    out.append("</svg>")
    return "".join(out)
