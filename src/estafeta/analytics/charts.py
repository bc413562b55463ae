"""Charts as server-rendered SVG (no JavaScript, no CDN): bars, a funnel and a trend line.

Only numbers computed here go into the geometry; every label and title passes through
``format_html``/``escape``, so a seller named ``<script>`` is drawn as text, never run.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal
Item = tuple[str, Number]

ROW = 22  # height of a bar row
LABEL = 150  # width kept for the labels
WIDTH = 520


def _num(value: Number) -> str:
    if isinstance(value, Decimal):
        value = value.normalize()
        return f"{value:f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


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
        rows.append((LABEL - 6, y + 15, label, LABEL, y + 4, length, LABEL + length + 4, y + 15,
                     _num(value)))
    body = format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
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
        rows.append((LABEL - 6, y + 16, label, round(middle - length / 2, 1), y + 4,
                     max(length, 1), middle, y + 16, f"{_num(value)}{share}"))
        previous = float(value)
    body = format_html_join(
        "", '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect class="bar funnel" x="{}" y="{}" width="{}" height="18"></rect>'
        '<text class="value" x="{}" y="{}" text-anchor="middle">{}</text>', rows)
    return _svg(WIDTH, len(steps) * (ROW + 6) + 4, title, body)


def line(points: Sequence[Item], title: str, height: int = 120) -> SafeString:
    """A trend line through (label, value) points, labels under the axis."""
    if not points:
        return mark_safe("")
    top = max((float(v) for _, v in points), default=0) or 1.0
    pad, bottom = 20, height - 24
    step = (WIDTH - 2 * pad) / max(len(points) - 1, 1)
    coords = [(round(pad + i * step, 1), round(bottom - (bottom - pad) * float(v) / top, 1))
              for i, (_, v) in enumerate(points)]
    polyline = " ".join(f"{x},{y}" for x, y in coords)
    dots = format_html_join(
        "", '<circle class="dot" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>'
        '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((x, y, label, _num(v), x, height - 6, label)
         for (x, y), (label, v) in zip(coords, points, strict=True)))
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
