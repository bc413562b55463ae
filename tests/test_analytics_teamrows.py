"""A director's company dashboard shows a row per team in the per-person cards (K1-K4, K10),
each team opening the dashboard for that team with a row per seller; heads and sellers see
their rows as before, and the totals never change.

History: that of ``test_analytics_web`` (Ann and Bob of team Sales and Olga of team Other each
own a ticket and make a connected call; Ann's ticket goes to Olga), plus a connected call by
the director, who is in no team.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from estafeta.core import clock
from estafeta.tickets.services import activity_log

from .factories import World
from .test_analytics_web import NOV, at, make_history, page

pytestmark = pytest.mark.django_db

PER_PERSON = ("K1", "K2", "K3", "K4", "K10")


def history(w: World) -> None:
    tickets = make_history(w, extra=2)
    with clock.frozen(at(5)):
        activity_log(actor=w.director, ticket=tickets["bob"], kind="call", direction="out",
                     outcome="connected")
        activity_log(actor=w.head, ticket=tickets["bob"], kind="email", direction="out",
                     outcome="sent")


def cards_of(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200
    return {c.code: c for c in answer.context["cards"]}


def sums(card: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: sum((r[c] for r in card.rows), start=Decimal(0)) for c in columns}


def test_a_director_without_a_cut_sees_a_row_per_team_adding_up_to_the_total(
        world: World) -> None:
    w = world
    history(w)
    answer = page(w.director)
    cards = cards_of(answer)
    for code in PER_PERSON:
        card = cards[code]
        assert card.keys[0] == "team", code
        assert card.teams_how and not card.energy, code
        additive = tuple(c for c in card.columns if c not in card.table.distinct)
        assert sums(card, additive) == {c: card.total[c] for c in additive}, code
    k1 = cards["K1"]
    # Sales: Ann's and Bob's calls and Helen's email; Other: Olga's call; the director's call
    # is in no team (last)
    assert [(r["team"], r["contacts"]) for r in k1.rows] == [
        (w.other.pk, 1), (w.sales.pk, 3), (None, 1)]
    with translation.override("ru"):  # the director's page speaks the default language
        no_team = translation.gettext("No team")
    assert no_team != "No team"
    assert [r["labels"][0] for r in k1.rows] == ["Other", "Sales", no_team]
    assert k1.total["contacts"] == 5
    k2 = cards["K2"]  # leads for the owner at creation: Ann 1 and Bob 3 in Sales, Olga 1
    assert {r["team"]: r["leads"] for r in k2.rows} == {w.sales.pk: 4, w.other.pk: 1}
    text = answer.content.decode()
    assert f'href="/analytics/?period=2026-11&amp;team={w.sales.pk}"' in text
    # a team's count drills down through the team cut
    assert (f"/analytics/K2/tickets/?period=2026-11&amp;team={w.sales.pk}&amp;column=leads"
            in text)
    # the per-person cards list no people (K7 and K12 keep their per-seller tables for now)
    cards_html = text[text.index('id="K1"'):text.index('id="K8"')]
    assert "k_owner=" not in cards_html and "k_performer=" not in cards_html
    assert ">bob<" not in cards_html and ">olga<" not in cards_html
    assert ">bob<" in text  # the K7 tables below still name the sellers
    drill = page(w.director, f"{NOV}&team={w.sales.pk}&column=leads", "/analytics/K2/tickets/")
    assert drill.status_code == 200 and drill.context["page"].paginator.count == 4


def test_a_team_opened_from_the_company_view_shows_its_sellers(world: World) -> None:
    w = world
    history(w)
    company = cards_of(page(w.director))
    team = cards_of(page(w.director, f"{NOV}&team={w.sales.pk}"))
    k1 = team["K1"]
    assert k1.keys == ("performer",) and not k1.teams_how
    assert {r["performer"]: r["contacts"] for r in k1.rows} == {
        w.ann.pk: 1, w.bob.pk: 1, w.head.pk: 1}
    # the team's row in the company view is the total of the team's own dashboard
    for code in PER_PERSON:
        rows = [r for r in company[code].rows if r["team"] == w.sales.pk]
        additive = tuple(c for c in team[code].columns if c not in team[code].table.distinct)
        assert {c: sum((r[c] for r in rows), start=0) for c in additive} == {
            c: team[code].total[c] for c in additive}, code
    seller = cards_of(page(w.director, f"{NOV}&seller={w.bob.pk}"))
    assert seller["K1"].keys == ("performer",)


def test_heads_and_sellers_see_their_rows_as_before(world: World) -> None:
    w = world
    history(w)
    head = cards_of(page(w.head))
    assert head["K1"].keys == ("performer",) and not head["K1"].teams_how
    assert [r["performer"] for r in head["K1"].rows] == sorted([w.ann.pk, w.bob.pk, w.head.pk])
    seller = cards_of(page(w.ann))
    assert seller["K2"].keys == ("owner",) and [r["owner"] for r in seller["K2"].rows] == [
        w.ann.pk]
    assert 'class="teams-how"' not in page(w.head).content.decode()
    assert 'class="teams-how"' in page(w.director).content.decode()


def test_the_totals_and_the_exports_stay_per_seller(world: World) -> None:
    w = world
    history(w)
    director = cards_of(page(w.director))
    csv = page(w.director, f"{NOV}&format=csv", "/analytics/K1/export/")
    assert csv.status_code == 200
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + 5 + 1  # header, Ann, Bob, Olga, Helen, Dora, the total
    assert director["K1"].total["contacts"] == 5


def test_team_names_are_escaped(world: World) -> None:
    w = world
    history(w)
    w.sales.name = '<script>alert("x")</script>'
    w.sales.save()
    text = page(w.director).content.decode()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
