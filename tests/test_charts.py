"""The server-rendered SVG charts (analytics/charts.py): well-formed SVG, geometry that follows
the numbers, labels escaped; and the dashboard's conversion bars (K7, K8) and the time-in-stage
distribution (K9) drawn from the figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from fractions import Fraction
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client as HttpClient

from estafeta.analytics.charts import (
    LABEL,
    WIDTH,
    Spread,
    bars,
    funnel,
    line,
    nice_top,
    percent_bars,
    sparkline,
    spreads,
    stacked,
)
from estafeta.core import clock
from estafeta.tickets.services import stage_close

from .factories import PASSWORD, World

SVG = "{http://www.w3.org/2000/svg}"
MSK = ZoneInfo("Europe/Moscow")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == f"{SVG}svg"
    return root


def rects(root: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if cls in (r.get("class") or "").split()]


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


# --- the drawing functions ------------------------------------------------------------------


def test_percent_bars_use_a_fixed_0_to_100_scale() -> None:
    root = parse(percent_bars([("a", Fraction(1, 4), False), ("b", Fraction(1, 2), True),
                               ("c", None, False), ("d", 1, False)], "t"))
    shares = rects(root, "share")
    widths = [float(r.get("width") or 0) for r in shares]
    span = WIDTH - LABEL - 60
    # 25% is a quarter of the track whatever the largest share, 50% a half, none 0, 100% all
    assert widths == [span / 4, span / 2, 0.0, span]
    assert [float(r.get("width") or 0) for r in rects(root, "track")] == [span] * 4
    assert "immature" in (shares[1].get("class") or "")
    assert "immature" not in (shares[0].get("class") or "")
    values = [t for t in texts(root) if t not in ("a", "b", "c", "d")]
    assert values == ["25%", "50% *", "-", "100%"]
    assert percent_bars([], "t") == ""


def test_percent_bars_clip_shares_outside_0_and_1() -> None:
    root = parse(percent_bars([("over", Fraction(3, 2), False), ("under", -1, False)], "t"))
    widths = [float(r.get("width") or 0) for r in rects(root, "share")]
    assert widths == [WIDTH - LABEL - 60, 0.0]


def test_stacked_bars_split_the_track_by_the_shares() -> None:
    root = parse(stacked([("x", [Fraction(1, 2), Fraction(1, 4), Fraction(1, 4)]),
                          ("empty", [None, None, None]),
                          ("y", [0, 0, 1])], ["won", "lost", "open"], "t"))
    span = WIDTH - LABEL - 10
    parts = [r for r in rects(root, "part") if r.find(f"{SVG}title") is not None]
    x_parts = parts[:3]
    assert [float(r.get("width") or 0) for r in x_parts] == [span / 2, span / 4, span / 4]
    # each part starts where the previous ended, the last ends at the end of the track
    starts = [float(r.get("x") or 0) for r in x_parts]
    assert starts == [LABEL, LABEL + span / 2, LABEL + 3 * span / 4]
    # "empty" draws no part; "y" one full part (zero shares draw nothing)
    assert len(parts) == 4 and float(parts[3].get("width") or 0) == span
    assert "part-2" in (parts[3].get("class") or "")
    assert "x: won 50%" in ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert {"won", "lost", "open"} <= set(texts(root))  # the legend


def test_nice_axis_ends() -> None:
    assert [nice_top(v) for v in (0, 0.3, 1, 1.2, 3, 4.1, 7, 12, 230, 1000)] == [
        1.0, 0.5, 1.0, 2.0, 5.0, 5.0, 10.0, 20.0, 250.0, 1000.0]


def test_spreads_place_median_p80_and_the_open_stay_on_one_axis() -> None:
    root = parse(spreads([Spread("new", 5, 1.0, 2.0, 4.0, 8.0, 10.0),
                          Spread("offer", 0, None, None, None, None, 3.0)],
                         "t", "hours", "median", "p80", "oldest open", width=WIDTH,
                         label=LABEL))
    span = WIDTH - LABEL - 20
    top = 10.0  # the oldest open stay is the largest value: the axis ends at 10

    def x(v: float) -> float:
        return round(LABEL + span * v / top, 1)

    box = rects(root, "box")[0]
    assert float(box.get("x") or 0) == x(2.0)
    assert float(box.get("width") or 0) == pytest.approx(x(4.0) - x(2.0), abs=0.11)
    whisker = next(root.iter(f"{SVG}line"))
    assert (float(whisker.get("x1") or 0), float(whisker.get("x2") or 0)) == (x(1.0), x(8.0))
    medians = [e for e in root.iter(f"{SVG}line") if e.get("class") == "median"]
    assert [float(m.get("x1") or 0) for m in medians] == [x(2.0)]
    opens = [e for e in root.iter(f"{SVG}polygon") if e.get("class") == "open"]
    assert len(opens) == 2  # "offer" has only an open stay: no box, no whisker, a diamond
    assert float((opens[1].get("points") or "").split()[0].split(",")[0]) == x(3.0)
    assert len(rects(root, "box")) == 1
    ticks = [t for t in texts(root) if t.replace(".", "").isdigit()]
    assert ticks == ["0", "2.5", "5", "7.5", "10"]
    assert "new (5)" in texts(root) and "hours" in texts(root)
    tips = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert "new: median 2.0, p80 4.0 hours" in tips
    assert "offer: oldest open 3.0 hours" in tips
    assert spreads([], "t", "h", "m", "p", "o") == ""


def test_long_labels_are_cut_to_fit_with_the_whole_label_in_the_tooltip() -> None:
    long = "Оформленные документы и ещё очень длинное название"
    root = parse(bars([(long, 3)], "t"))
    [label] = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    shown = label.text or ""
    assert shown == "" and (label[0].tail or "").endswith("…")
    assert len(label[0].tail or "") * 7.5 <= LABEL and label[0].text == long
    assert "short" in "".join(parse(funnel([("short", 1)], "t")).itertext())


def test_a_long_trend_shows_every_dot_but_thins_its_labels() -> None:
    points = [(f"2026-{m:02d}-01..2026-{m:02d}-28", m) for m in range(1, 13)]
    root = parse(line(points, "t"))
    assert len(list(root.iter(f"{SVG}circle"))) == 12
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert 1 < len(labels) < 12
    xs = [float(t.get("x") or 0) for t in labels]
    widest = max(len(t.text or "") for t in labels) * 7.5
    assert all(b - a >= widest for a, b in pairwise(xs))  # no overlap
    assert min(xs) - widest / 2 >= 0 and max(xs) + widest / 2 <= WIDTH  # inside the picture
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == [str(m) for m in range(1, 13)]


@pytest.mark.parametrize("draw", [
    lambda s: bars([(s, 1)], s),
    lambda s: funnel([(s, 2), (s, 1)], s),
    lambda s: line([(s, 1), (s, 2)], s),
    lambda s: percent_bars([(s, Fraction(1, 3), True)], s),
    lambda s: stacked([(s, [1, 0])], [s, s], s),
    lambda s: spreads([Spread(s, 1, 1.0, 1.0, 1.0, 1.0, 2.0)], s, s, s, s, s),
    lambda s: sparkline([1, None, 3, 4], s),
])
def test_every_label_and_title_is_escaped(draw: Any) -> None:
    evil = '<script>alert("x")</script>&'
    svg = str(draw(evil))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = parse(svg)  # still well-formed XML with the name as text
    assert evil in "".join(root.itertext())


# --- on the dashboard -----------------------------------------------------------------------


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=MSK)


def test_the_dashboard_draws_conversion_bars_and_the_time_in_stage_spread(world: World
                                                                          ) -> None:
    w = world
    tickets = []
    with clock.frozen(at(2, 10)):  # Monday 2 November, business hours
        for _ in range(3):
            tickets.append(w.ticket(owner=w.ann))
    for n, ticket in enumerate(tickets):  # stays of 1, 2 and 3 business hours in "new"
        with clock.frozen(at(2, 11 + n)):
            w.fill_new(ticket, w.head)
            stage_close(actor=w.head, ticket=ticket, stage="new")
    client = HttpClient()
    assert client.login(username=w.director.username, password=PASSWORD)
    with clock.frozen(at(30)):
        answer = client.get("/analytics/?period=2026-11")
    assert answer.status_code == 200
    ctx = answer.context
    row = next(r for r in ctx["timing"].rows if r["stage"] == "new")
    assert row["closed"] == 3
    k9 = parse(str(ctx["timing"].chart))
    tips = ["".join(t.itertext()) for t in k9.iter(f"{SVG}title")]
    assert any(t.startswith(f"{row['pipeline']} new: ") for t in tips)
    assert len(rects(k9, "box")) == 1
    k7 = str(ctx["conversions"].chart)
    assert 'class="bar share' in k7 and 'class="part part-' in k7
    k8 = "".join(str(c) for c in ctx["stage_funnel"].charts)
    assert 'class="bar funnel"' in k8 and 'class="bar share"' in k8
    text = answer.content.decode()
    assert 'class="box"' in text and 'class="median"' in text


def test_the_energy_column_lines_up_with_its_header(world: World) -> None:
    import re

    w = world
    from estafeta.tickets.services import activity_log

    with clock.frozen(at(2, 10)):
        ticket = w.ticket(owner=w.ann)
        activity_log(actor=w.ann, ticket=ticket, kind="call", direction="out",
                     outcome="connected")
    client = HttpClient()
    assert client.login(username=w.director.username, password=PASSWORD)
    with clock.frozen(at(30)):  # a team: the director's company view has a row per team
        text = client.get(f"/analytics/?period=2026-11&team={w.sales.pk}").content.decode()
    k1 = text[text.index('id="K1"'):]
    k1 = k1[:k1.index("</table>")]
    headers = re.findall(r"<th[\s>][^>]*>?", k1)
    assert 'class="energy"' in headers[-1]
    rows = re.findall(r"<tr>(.*?)</tr>", k1.split("<tbody>")[1], re.S)
    assert rows
    for row in rows:
        cells = re.findall(r"<td[^>]*>", row)
        assert len(cells) == len(headers) and 'class="energy"' in cells[-1]
