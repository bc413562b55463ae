"""A director's company dashboard shows a row per team in the per-person cards (K1-K4, K10)
and tables (K7, K12), each team opening the dashboard for that team with a row per seller;
heads and sellers see their rows as before, and the totals never change.

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
    # the per-person cards list no people, nor do K7 and K12 (a row per team there too)
    for start, end in (('id="K1"', 'id="K8"'), ('id="K7"', 'id="K9"'), ('id="K12"', "growth")):
        html = text[text.index(start):text.index(end, text.index(start))]
        assert "k_owner=" not in html and "k_performer=" not in html, start
        assert "k_assignee=" not in html, start
        assert ">bob<" not in html and ">olga<" not in html, start
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


def _k7(answer: Any) -> dict[str, Any]:
    return {t.part: t for t in answer.context["conversions"].tables}


def _k12(answer: Any) -> dict[str, Any]:
    return {t.part: t for t in answer.context["control"].tables}


def test_a_director_sees_k7_and_k12_per_team_with_shares_from_the_team_counts(
        world: World) -> None:
    w = world
    history(w)
    company = page(w.director)
    k7, k12 = _k7(company), _k12(company)
    assert company.context["conversions"].teams_how and company.context["control"].teams_how
    calls = k7["call_meeting"]  # tickets' first connected calls: Ann, Bob (Sales), Olga
    assert {r["performer"]: r["cohort"] for r in calls.rows} == {w.sales.pk: 2, w.other.pk: 1}
    assert [r["labels"][0] for r in calls.rows] == ["Other", "Sales"]  # by name, as the cards
    sales = next(r for r in calls.rows if r["performer"] == w.sales.pk)
    assert sales["labels"][0] == "Sales" and sales["label_links"][0][1].endswith(
        f"team={w.sales.pk}")
    assert sales["cell"].startswith(f"team={w.sales.pk}&")
    assert sum(r["cohort"] for r in calls.rows) == calls.total["cohort"]
    # K1 ratios: the director's call is in no team's row
    ratios = {r["performer"]: r for r in company.context["conversions"].ratio_rows}
    assert set(ratios) == {w.sales.pk, w.other.pk, None}
    with translation.override("ru"):
        assert ratios[None]["label"] == translation.gettext("No team")
    leads = k7["lead_sale"]  # by channel and the owner's team
    assert {r["owner"] for r in leads.rows} <= {w.sales.pk, w.other.pk, None}
    assert sum(r["cohort"] for r in leads.rows) == leads.total["cohort"]
    for row in leads.rows:  # shares of the team's own counts
        assert row["won_share"] == (row["won"] / row["cohort"] if row["cohort"] else None) \
            or row["won_share"] * row["cohort"] == row["won"]
    coverage, overdue = k12["coverage"], k12["overdue"]
    assert {r["owner"] for r in coverage.rows} <= {w.sales.pk, w.other.pk}
    assert sum(r["open_tickets"] for r in coverage.rows) == coverage.total["open_tickets"]
    assert sum(r["open_tasks"] for r in overdue.rows) == overdue.total["open_tasks"]
    wins = company.context["conversions"].win_rows
    assert all(r["label"] in ("Sales", "Other") or r["owner"] is None for r in wins)
    # the team's own dashboard: a row per seller again, adding up to the team's row
    team = page(w.director, f"{NOV}&team={w.sales.pk}")
    team_calls = _k7(team)["call_meeting"]
    assert sorted(r["performer"] for r in team_calls.rows) == sorted([w.ann.pk, w.bob.pk])
    assert team_calls.total["cohort"] == sales["cohort"]
    assert not team.context["conversions"].teams_how
    team_coverage = _k12(team)["coverage"]
    assert team_coverage.total["open_tickets"] == next(
        r["open_tickets"] for r in coverage.rows if r["owner"] == w.sales.pk)
