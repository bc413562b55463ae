"""K6 realisation of potential for heads of sales: their team's share of each client and
territory potential (docs/analytics-sales.md), against the director's company view, on the
dashboard, the drill-down, the export, the API and the report; a seller is refused.

History (November 2026, Moscow time), teams Sales (head Helen: Ann, Bob) and Other (head Oscar:
Olga). Clients Shop (north, key account) and Cafe (north), Mall (south):
- Ann wins Shop for 300 on the 5th; Olga wins Shop for 700 on the 6th and Cafe for 200 on the 7th;
- open now: Bob's Mall ticket of 1000 and Olga's Shop ticket of 500, both in stage "new"
  (probability 10%: 100 and 50 weighted).
Targets for November: clients Shop 2000, Cafe 1000, Mall 500; territories north 5000, south 1000.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from openpyxl import load_workbook
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.analytics.access import check_k6
from estafeta.analytics.period import Cut, Period
from estafeta.analytics.sales import k6_realisation
from estafeta.clients.models import Client, Territory
from estafeta.clients.services import classification_ensure, client_create
from estafeta.core import clock
from estafeta.domain.errors import Forbidden
from estafeta.targets.services import target_set
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import checklist_item_complete, stage_close, ticket_close_won

from .factories import PASSWORD, World

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
NOV = Period.parse("2026-11")


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 12, tzinfo=MSK)


def client(w: World, name: str, territory: str, key: bool = False) -> Client:
    ter = classification_ensure(actor=None, model=Territory, code=territory, name=territory)
    return client_create(actor=w.operator, name=name, territory=ter, key_account=key)


def open_ticket(w: World, owner: User, to: Client, amount: str) -> Ticket:
    return w.ticket(owner=owner, client=to, amount=amount)


def win(w: World, owner: User, to: Client, day: int, amount: str) -> Ticket:
    with clock.frozen(at(day)):
        t = open_ticket(w, owner, to, amount)
        w.fill_new(t)
        t = stage_close(actor=owner, ticket=t, stage="new", to="contract")
        checklist_item_complete(actor=owner, ticket=t, stage="contract", item="signed_on",
                                evidence=f"2026-11-{day:02d}")
        return ticket_close_won(actor=owner, ticket=t, stage="contract", amount=amount)


@pytest.fixture
def history(world: World) -> dict[str, Any]:
    w = world
    shop, cafe = client(w, "Shop", "north", key=True), client(w, "Cafe", "north")
    mall = client(w, "Mall", "south")
    won = {"ann_shop": win(w, w.ann, shop, 5, "300"), "olga_shop": win(w, w.olga, shop, 6, "700"),
           "olga_cafe": win(w, w.olga, cafe, 7, "200")}
    with clock.frozen(at(10)):
        open_ticket(w, w.bob, mall, "1000")
        open_ticket(w, w.olga, shop, "500")
        for kind, ref, amount in (("client", shop.pk, "2000"), ("client", cafe.pk, "1000"),
                                  ("client", mall.pk, "500"), ("territory", "north", "5000"),
                                  ("territory", "south", "1000")):
            target_set(w.director, kind=kind, ref=ref, start="2026-11-01", end="2026-11-30",
                       amount=amount)
    return {"shop": shop, "cafe": cafe, "mall": mall, **won}


def figures(rows: list[Any], names: dict[str, str]) -> dict[str, tuple[Decimal, Decimal]]:
    """``kind object`` (clients by name) -> (won revenue, weighted pipeline)."""
    return {f"{r.kind} {names.get(r.ref, r.ref)}": (r.won_revenue, r.weighted_pipeline)
            for r in rows}


def named(h: dict[str, Any]) -> dict[str, str]:
    return {str(h[n].pk): n for n in ("shop", "cafe", "mall")}


# --- the figure ------------------------------------------------------------------------------


def test_a_team_counts_its_own_share_against_the_whole_potential(world: World,
                                                                  history: dict[str, Any]
                                                                  ) -> None:
    w, h = world, history
    names = named(h)
    company = figures(k6_realisation(NOV), names)
    assert company == {
        "client shop": (Decimal(1000), Decimal(50)), "client cafe": (Decimal(200), Decimal(0)),
        "client mall": (Decimal(0), Decimal(100)),
        "territory north": (Decimal(1200), Decimal(50)),
        "territory south": (Decimal(0), Decimal(100))}
    sales = k6_realisation(NOV, Cut(team=w.sales.pk))
    # Cafe: Sales neither won there nor has an open ticket there, so it is not listed
    assert figures(sales, names) == {
        "client shop": (Decimal(300), Decimal(0)), "client mall": (Decimal(0), Decimal(100)),
        "territory north": (Decimal(300), Decimal(0)),
        "territory south": (Decimal(0), Decimal(100))}
    shop = next(r for r in sales if r.ref == str(h["shop"].pk))
    assert (shop.potential, shop.realisation, shop.key_account) == (Decimal(2000),
                                                                   Decimal("15.0"), True)
    other = figures(k6_realisation(NOV, Cut(team=w.other.pk)), names)
    assert other == {
        "client shop": (Decimal(700), Decimal(50)), "client cafe": (Decimal(200), Decimal(0)),
        "territory north": (Decimal(900), Decimal(50)),
        "territory south": (Decimal(0), Decimal(0))}
    # every team's share adds up to the company's figure (every owner is in a team)
    team_rows = figures(sales, names), other
    for key, (won, weighted) in company.items():
        assert sum(t.get(key, (0, 0))[0] for t in team_rows) == won
        assert sum(t.get(key, (0, 0))[1] for t in team_rows) == weighted
    # one seller's slice: Bob only has the Mall pipeline
    assert figures(k6_realisation(NOV, Cut(seller=w.bob.pk)), names) == {
        "client mall": (Decimal(0), Decimal(100)), "territory north": (Decimal(0), Decimal(0)),
        "territory south": (Decimal(0), Decimal(100))}
    # the other filters of a cut do not apply to K6
    assert k6_realisation(NOV, Cut(team=w.sales.pk, territory="south")) == sales


def test_a_win_stays_with_the_owner_at_the_time_of_the_win(world: World,
                                                           history: dict[str, Any]) -> None:
    w, h = world, history
    from estafeta.tickets.services import ticket_reassign

    with clock.frozen(at(20)):
        bobs = Ticket.objects.get(owner=w.bob)
        ticket_reassign(actor=w.director, ticket=bobs, owner=w.olga)
    names = named(h)
    sales = figures(k6_realisation(NOV, Cut(team=w.sales.pk)), names)
    # Ann's win of the 5th is still the team's; the open Mall ticket is now Other's pipeline
    assert sales["client shop"] == (Decimal(300), Decimal(0))
    assert "client mall" not in sales
    assert sales["territory south"] == (Decimal(0), Decimal(0))
    assert figures(k6_realisation(NOV, Cut(team=w.other.pk)), names)["client mall"] == (
        Decimal(0), Decimal(100))


def test_check_k6_lets_directors_and_heads_in_and_refuses_sellers(world: World) -> None:
    w = world
    check_k6(w.director)
    check_k6(w.head)
    for user in (w.ann, w.operator, w.admin):
        with pytest.raises(Forbidden):
            check_k6(user)


# --- where it shows --------------------------------------------------------------------------


def signed(user: User) -> HttpClient:
    http = HttpClient()
    assert http.login(username=user.username, password=PASSWORD)
    return http


def k6_card(user: User, query: str = "") -> Any:
    answer = signed(user).get(f"/analytics/?period=2026-11{query}")
    assert answer.status_code == 200
    return next((c for c in answer.context["simple_cards"] if c and c.code == "K6"), None)


def cells(card: Any) -> dict[str, list[str]]:
    return {f"{r['cells'][0][0]} {r['cells'][1][0]}": [t for t, _l in r["cells"]]
            for r in card.rows}


def test_the_head_sees_the_team_share_on_the_dashboard_and_drills_down(
        world: World, history: dict[str, Any]) -> None:
    w, h = world, history
    User.objects.filter(pk=w.head.pk).update(language="en")
    card = k6_card(w.head)
    assert card is not None
    shop = f"client {h['shop'].pk}"
    rows = cells(card)
    assert set(rows) == {shop, f"client {h['mall'].pk}", "territory north", "territory south"}
    assert rows[shop][5:8] == ["2000.00", "300.00", "15.0"]
    assert rows["territory north"][5:8] == ["5000.00", "300.00", "6.0"]
    assert "a head sees their team" in card.how
    # the won revenue links to the tickets behind it: Ann's win only, not Olga's
    link = next(r for r in card.rows if f"{r['cells'][0][0]} {r['cells'][1][0]}" == shop
                )["cells"][6][1]
    assert f"team={w.sales.pk}" in link
    answer = signed(w.head).get(link)
    assert answer.status_code == 200
    assert [t.pk for t in answer.context["page"].object_list] == [h["ann_shop"].pk]
    # the director's row counts both wins and lists both tickets
    director = k6_card(w.director)
    assert cells(director)[shop][5:8] == ["2000.00", "1000.00", "50.0"]
    link = next(r for r in director.rows
                if f"{r['cells'][0][0]} {r['cells'][1][0]}" == shop)["cells"][6][1]
    assert {t.pk for t in signed(w.director).get(link).context["page"].object_list} == {
        h["ann_shop"].pk, h["olga_shop"].pk}
    # and may look at one team's share too
    assert cells(k6_card(w.director, f"&team={w.other.pk}"))[shop][5:8] == [
        "2000.00", "700.00", "35.0"]


def test_the_other_team_and_a_seller_are_refused(world: World, history: dict[str, Any]) -> None:
    w, h = world, history
    other = f"&team={w.other.pk}"
    assert signed(w.head).get(f"/analytics/?period=2026-11{other}").status_code == 403
    for path in ("/analytics/K6/export/", "/analytics/K6/tickets/"):
        answer = signed(w.head).get(f"{path}?period=2026-11{other}&k_target=1&column=won")
        assert answer.status_code == 403
    api = APIClient()
    api.force_authenticate(w.head)
    assert api.get(f"/api/v1/analytics/K6/?period=2026-11{other}").status_code == 403
    # the other head sees their own team's share, not Sales'
    rows = cells(k6_card(w.other_head))
    assert rows[f"client {h['shop'].pk}"][6] == "700.00"
    assert f"client {h['mall'].pk}" not in rows
    # a seller: no card, and the export, the drill-down and the API answer 403
    assert k6_card(w.ann) is None
    page = signed(w.ann).get("/analytics/?period=2026-11").content.decode()
    assert 'id="K6"' not in page
    for path in ("/analytics/K6/export/?period=2026-11&format=csv",
                 "/analytics/K6/tickets/?period=2026-11&k_target=1&column=won"):
        assert signed(w.ann).get(path).status_code == 403
    api.force_authenticate(w.ann)
    assert api.get("/api/v1/analytics/K6/?period=2026-11").status_code == 403


def test_the_export_the_api_and_the_report_equal_the_head_card(world: World,
                                                               history: dict[str, Any],
                                                               tmp_path: Path) -> None:
    w = world
    card = k6_card(w.head)
    shown = sorted(cells(card).values())
    answer = signed(w.head).get("/analytics/K6/export/?period=2026-11&format=csv")
    assert answer.status_code == 200
    exported = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert exported[0] == card.headers
    assert sorted(exported[1:]) == shown
    api = APIClient()
    api.force_authenticate(w.head)
    data = api.get("/api/v1/analytics/K6/?period=2026-11").json()
    assert data["cut"] == {"team": w.sales.pk}
    assert sorted((r["kind"], r["object"], r["won_revenue"], r["weighted_pipeline"])
                  for r in data["rows"]) == sorted((r[0], r[1], r[6], r[8]) for r in shown)
    out = tmp_path / "sales.xlsx"
    call_command("report", "--period", "2026-11", "--format", "xlsx", "--out", str(out),
                 "--team", "Sales", stdout=io.StringIO())
    book = load_workbook(out)
    [name] = [n for n in book.sheetnames if n.startswith("K6 ")]
    values = [[str(v) if v is not None else "" for v in row]
              for row in book[name].iter_rows(values_only=True)]
    assert len(values) == 1 + len(shown)
    assert sorted((r[0], r[1]) for r in values[1:]) == sorted((r[0], r[1]) for r in shown)
