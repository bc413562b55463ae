"""Charts as server-rendered SVG (no JavaScript, no CDN): bars, percentage (conversion) bars,
100% stacked bars, a funnel, a trend line, a time distribution per row and a sparkline.

Only numbers computed here go into the geometry; every label and title passes through
``format_html``/``escape``, so a seller named ``<script>`` is drawn as text, never run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal | Fraction
Item = tuple[str, Number]

ROW = 22  # height of a bar row
LABEL = 150  # width kept for the labels
WIDTH = 520


def _num(value: Number) -> str:
    if isinstance(value, Decimal):
        value = value.normalize()
        return f"{value:f}"
    if isinstance(value, float | Fraction):
        return f"{float(value):.1f}"
    return str(value)


CHAR = 7.5  # the width of a character of an 11px label (Cyrillic included), roughly


def _fit(label: str, width: float) -> str:
    """``label`` cut with "…" to fit ``width`` pixels (the whole label stays in the tooltip)."""
    room = max(int(width / CHAR), 4)
    return label if len(label) <= room else label[:room - 1] + "…"


def _svg(width: int, height: int, title: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" '
        'height="{}" role="img" aria-label="{}"><title>{}</title>{}</svg>',
        width, height, width, height, title, title, body)


def bars(items: Sequence[Item], title: str) -> SafeString:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    if not items:
        return mark_safe("")
    top = max((float(v) for _, v in items), default=0) or 1.0
    span = WIDTH - LABEL - 60
    rows = []
    for i, (label, value) in enumerate(items):
        y = i * ROW
        length = round(span * max(float(value), 0) / top, 1)
        rows.append((LABEL - 6, y + 15, label, _fit(label, LABEL - 8), LABEL, y + 4, length,
                     LABEL + length + 4, y + 15, _num(value)))
    body = format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="14"></rect>'
        '<text class="value" x="{}" y="{}">{}</text>', rows)
    return _svg(WIDTH, len(items) * ROW + 4, title, body)


def funnel(steps: Sequence[Item], title: str) -> SafeString:
    """Centred bars narrowing step by step, each with its share of the step before."""
    if not steps:
        return mark_safe("")
    top = max((float(v) for _, v in steps), default=0) or 1.0
    middle = LABEL + (WIDTH - LABEL) / 2
    span = WIDTH - LABEL - 20
    rows = []
    previous: float | None = None
    for i, (label, value) in enumerate(steps):
        y = i * (ROW + 6)
        length = round(span * max(float(value), 0) / top, 1)
        share = ("" if previous is None else
                 f" ({round(100 * float(value) / previous)}%)" if previous else " (-)")
        rows.append((LABEL - 6, y + 16, label, _fit(label, LABEL - 8),
                     round(middle - length / 2, 1), y + 4, max(length, 1), middle, y + 16,
                     f"{_num(value)}{share}"))
        previous = float(value)
    body = format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>'
        '<rect class="bar funnel" x="{}" y="{}" width="{}" height="18"></rect>'
        '<text class="value" x="{}" y="{}" text-anchor="middle">{}</text>', rows)
    return _svg(WIDTH, len(steps) * (ROW + 6) + 4, title, body)


def line(points: Sequence[Item], title: str, height: int = 120) -> SafeString:
    """A trend line through (label, value) points, labels under the axis."""
    if not points:
        return mark_safe("")
    top = max((float(v) for _, v in points), default=0) or 1.0
    widest = max(len(label) for label, _ in points) * CHAR
    pad, bottom = round(min(widest, WIDTH / 3) / 2) + 4, height - 24
    step = (WIDTH - 2 * pad) / max(len(points) - 1, 1)
    every = max(1, math.ceil((widest + 8) / step)) if len(points) > 1 else 1
    coords = [(round(pad + i * step, 1), round(bottom - (bottom - 20) * float(v) / top, 1))
              for i, (_, v) in enumerate(points)]
    polyline = " ".join(f"{x},{y}" for x, y in coords)
    dots = format_html_join(
        "", '<circle class="dot" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>'
        '<text class="value" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((x, y, label, _num(v), x, y - 6, _num(v))
         for (x, y), (label, v) in zip(coords, points, strict=True)))
    dots += format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((x, height - 6, _fit(label, WIDTH / 3)) for i, ((x, _y), (label, _v))
         in enumerate(zip(coords, points, strict=True))
         if i % every == 0 or (i == len(points) - 1 and (i % every) * step > widest + 8)))
    body = format_html('<polyline class="line" fill="none" points="{}"></polyline>{}',
                       polyline, dots)
    return _svg(WIDTH, height, title, body)


def sparkline(scores: Sequence[int | None], title: str, low: int = 1, high: int = 5,
              width: int = 80, height: int = 20) -> SafeString:
    """A small trend of scores from ``low`` to ``high`` (None: not rated, a gap), one point a
    week; its own picture beside a row, never part of the row's figures."""
    step = width / max(len(scores) - 1, 1)
    span = max(high - low, 1)
    segments: list[list[str]] = [[]]
    dots = []
    for i, score in enumerate(scores):
        if score is None:
            if segments[-1]:
                segments.append([])
            continue
        x, y = round(i * step, 1), round(height - 2 - (score - low) * (height - 4) / span, 1)
        segments[-1].append(f"{x},{y}")
        dots.append((x, y, score))
    body = format_html_join("", '<polyline class="spark" fill="none" points="{}"></polyline>',
                            ((" ".join(s),) for s in segments if len(s) > 1))
    body += format_html_join("", '<circle class="spark-dot" cx="{}" cy="{}" r="1.5">'
                             '<title>{}</title></circle>', dots and [
                                 (x, y, score) for x, y, score in dots[-1:]])
    return format_html(
        '<svg class="chart sparkline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'width="{}" height="{}" role="img" aria-label="{}"><title>{}</title>{}</svg>',
        width, height, width, height, title, title, body)


# --- conversions: shares on a 0-100% scale ---------------------------------------------------

Share = tuple[str, Number | None, bool]  # (label, share from 0 to 1 or None, immature?)


def _pct(share: Number | None) -> str:
    return "-" if share is None else f"{round(100 * float(share))}%"


def percent_bars(items: Sequence[Share], title: str) -> SafeString:
    """Horizontal bars of shares (0 to 1) on a fixed 0-100% scale, so bars of different
    conversions compare by length; a share that divides nothing (None) has no bar and reads
    "-"; an immature one (its window still open) is drawn hatched and marked "*"."""
    if not items:
        return mark_safe("")
    span = WIDTH - LABEL - 60
    rows = []
    for i, (label, share, immature) in enumerate(items):
        y = i * ROW
        clipped = min(max(float(share or 0), 0.0), 1.0)
        length = round(span * clipped, 1)
        text = _pct(share) + (" *" if immature else "")
        rows.append((LABEL - 6, y + 15, _fit(label, LABEL - 8), LABEL, y + 4, span,
                     "bar share immature" if immature else "bar share", LABEL, y + 4,
                     length, label, text, LABEL + length + 4, y + 15, text))
    body = format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect class="track" x="{}" y="{}" width="{}" height="14"></rect>'
        '<rect class="{}" x="{}" y="{}" width="{}" height="14"><title>{}: {}</title></rect>'
        '<text class="value" x="{}" y="{}">{}</text>', rows)
    return _svg(WIDTH, len(items) * ROW + 4, title, body)


def stacked(items: Sequence[tuple[str, Sequence[Number | None]]], parts: Sequence[str],
            title: str) -> SafeString:
    """A 100% bar per row split into ``parts`` (shares summing to 1, e.g. won/lost/open), with
    a legend; a row without a cohort (its shares None) is drawn as an empty track."""
    if not items:
        return mark_safe("")
    span = WIDTH - LABEL - 10
    legend = format_html_join(
        "", '<rect class="part part-{}" x="{}" y="2" width="10" height="10"></rect>'
        '<text class="legend" x="{}" y="11">{}</text>',
        ((n, LABEL + 90 * n, LABEL + 90 * n + 14, name) for n, name in enumerate(parts)))
    rows = []
    for i, (label, shares) in enumerate(items):
        y = 20 + i * ROW
        rows.append(format_html(
            '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
            '<rect class="track" x="{}" y="{}" width="{}" height="14"></rect>',
            LABEL - 6, y + 15, _fit(label, LABEL - 8), LABEL, y + 4, span))
        x = float(LABEL)
        for n, (name, share) in enumerate(zip(parts, shares, strict=True)):
            if not share:
                continue
            length = round(span * min(max(float(share), 0.0), 1.0), 1)
            rows.append(format_html(
                '<rect class="part part-{}" x="{}" y="{}" width="{}" height="14">'
                '<title>{}: {} {}</title></rect>', n, round(x, 1), y + 4, length, label, name,
                _pct(share)))
            x += length
    return _svg(WIDTH, 20 + len(items) * ROW + 4, title, legend + SafeString("".join(rows)))


# --- time in stage: the spread of the stays per row -------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The closed stays of a row (hours): shortest, median, 80th percentile, longest and how
    many; ``oldest_open`` the age of the oldest stay still open (drawn apart), if any."""

    label: str
    count: int
    low: float | None
    median: float | None
    p80: float | None
    high: float | None
    oldest_open: float | None = None


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above ``value`` (an axis end)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10 × power


def _hours(value: float) -> str:
    return f"{value:g}" if value >= 10 else f"{value:.1f}"


def spreads(items: Sequence[Spread], title: str, unit: str, median_name: str,
            p80_name: str, open_name: str, width: int = 680, label: int = 230) -> SafeString:
    """Per row: a whisker from the shortest to the longest closed stay, a box from the median
    to the 80th percentile, a tick at the median, and a hollow diamond at the oldest open stay
    (open stays are never part of the spread); one axis in ``unit`` with five ticks."""
    if not items:
        return mark_safe("")
    values = [v for s in items for v in (s.high, s.p80, s.oldest_open) if v is not None]
    top = nice_top(max(values, default=0.0))
    span = width - label - 20
    axis_y = len(items) * ROW + 6

    def x(value: float) -> float:
        return round(label + span * min(max(value, 0.0), top) / top, 1)

    parts = []
    for i, s in enumerate(items):
        y = i * ROW
        mid = y + 11
        parts.append(format_html('<text class="label" x="{}" y="{}" text-anchor="end">{} '
                                 '<tspan class="muted">({})</tspan></text>',
                                 label - 6, y + 15, _fit(s.label, label - 50), s.count))
        if s.low is not None and s.high is not None:
            parts.append(format_html(
                '<line class="whisker" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                x(s.low), mid, x(s.high), mid))
        if s.median is not None and s.p80 is not None:
            parts.append(format_html(
                '<rect class="box" x="{}" y="{}" width="{}" height="14"><title>{}: {} {}, '
                '{} {} {}</title></rect>'
                '<line class="median" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                x(s.median), y + 4, max(round(x(s.p80) - x(s.median), 1), 1.0), s.label,
                median_name, _hours(s.median), p80_name, _hours(s.p80), unit,
                x(s.median), y + 2, x(s.median), y + 20))
        if s.oldest_open is not None:
            cx = x(s.oldest_open)
            parts.append(format_html(
                '<polygon class="open" points="{},{} {},{} {},{} {},{}"><title>{}: {} {} {}'
                '</title></polygon>', cx, mid - 5, cx + 5, mid, cx, mid + 5, cx - 5, mid,
                s.label, open_name, _hours(s.oldest_open), unit))
    ticks = [top * n / 4 for n in range(5)]
    parts.append(format_html('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                             label, axis_y, label + span, axis_y))
    parts.append(format_html_join(
        "", '<line class="tick" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
        '<text class="tick-label" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((x(t), axis_y, x(t), axis_y + 4, x(t), axis_y + 15, f"{t:g}") for t in ticks)))
    parts.append(format_html('<text class="unit" x="{}" y="{}" text-anchor="end">{}</text>',
                             label + span, axis_y + 29, unit))
    return _svg(width, axis_y + 34, title, SafeString("".join(parts)))
