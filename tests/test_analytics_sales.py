"""K5 sales dynamics and K6 realisation of potential on hand-built histories; targets set and
imported (CSV, XLSX) with every bad row named and nothing written. Moments are Moscow time."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from estafeta.analytics.period import Cut, Period
from estafeta.analytics.sales import buckets, k5_dynamics, k6_realisation, year_ago
from estafeta.clients.models import Client, Segment, Territory
from estafeta.clients.services import classification_ensure, client_create
from estafeta.core import clock
from estafeta.domain.codes import EventType
from estafeta.domain.errors import BadInput, DeletionRefused, Forbidden
from estafeta.history.models import Event
from estafeta.targets.models import Target
from estafeta.targets.selectors import target_history, targets_current
from estafeta.targets.services import target_set, targets_import
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import checklist_item_complete, stage_close, ticket_close_won

from .factories import World

MSK = ZoneInfo("Europe/Moscow")


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=MSK)


def make_client(w: World, name: str, segment: str, territory: str = "north",
                key: bool = False) -> Client:
    seg = classification_ensure(actor=None, model=Segment, code=segment, name=segment)
    ter = classification_ensure(actor=None, model=Territory, code=territory, name=territory)
    return client_create(actor=w.operator, name=name, segment=seg, territory=ter,
                         key_account=key)


def open_ticket(w: World, client: Client, amount: str, currency: str = "RUB") -> Ticket:
    t = w.ticket(owner=w.ann, client=client, amount=amount)
    if currency != "RUB":
        # No service changes a ticket's currency yet; the test sets it before any outcome.
        Ticket.objects.filter(pk=t.pk).update(currency=currency)
        t.refresh_from_db()
    return t


def win(w: World, client: Client, when: datetime, amount: str, currency: str = "RUB") -> Ticket:
    with clock.frozen(when):
        t = open_ticket(w, client, amount, currency)
        w.fill_new(t)
        t = stage_close(actor=w.ann, ticket=t, stage="new", to="contract")
        checklist_item_complete(actor=w.ann, ticket=t, stage="contract", item="signed_on",
                                evidence="2026-11-20")
        return ticket_close_won(actor=w.ann, ticket=t, stage="contract", amount=amount)


# --- K5 -------------------------------------------------------------------------------------


def test_buckets_and_the_same_bucket_a_year_earlier() -> None:
    assert [b.label for b in buckets(Period.parse("2026-11-20..2027-01-05"), "month")] == [
        "2026-11", "2026-12", "2027-01"]
    assert [b.label for b in buckets(Period.parse("2026-Q4"), "quarter")] == ["2026-Q4"]
    assert year_ago(Period.parse("2026-Q4")) == Period.parse("2025-Q4")
    assert year_ago(Period.parse("2026-02")) == Period.parse("2025-02")
    assert year_ago(Period.parse("2026-W10")) == Period.parse("2025-W10")
    assert year_ago(Period.parse("2026-W53")) is None  # 2025 had 52 ISO weeks
    with pytest.raises(BadInput):
        buckets(Period.parse("2026-11"), "day")


def test_k5_by_segment_with_previous_and_year_ago_and_currencies_apart(world: World) -> None:
    w = world
    retail = make_client(w, "Shop", "retail")
    fleet = make_client(w, "Taxi", "fleet")
    win(w, retail, at(2025, 11, 10), "100")  # a year earlier
    win(w, retail, at(2026, 11, 3), "300")
    win(w, retail, at(2026, 11, 30), "500")
    win(w, retail, at(2026, 11, 15), "40", currency="USD")
    win(w, fleet, at(2026, 12, 1), "1000")  # midnight-safe noon on Dec 1: December

    dyn = k5_dynamics(Period.parse("2026-11-01..2026-12-31"), Cut(),
                      "month")
    rows = {(r.bucket.label, r.segment, r.currency): r.as_dict() for r in dyn.rows}
    nov = rows[("2026-11", "retail", "RUB")]
    # November: 2 wins, 800, average 400; October empty (no base); November 2025: 1 win of 100.
    assert (nov["won"], nov["revenue"], nov["average"]) == (2, Decimal(800), Decimal("400.00"))
    assert (nov["previous_won"], nov["previous_revenue"], nov["won_vs_previous"]) == (
        0, Decimal(0), None)
    assert nov["previous_average"] is None and nov["average_vs_previous"] is None
    assert (nov["year_ago_won"], nov["year_ago_revenue"]) == (1, Decimal(100))
    assert nov["won_vs_year_ago"] == Decimal("100.0")  # 1 -> 2
    assert nov["revenue_vs_year_ago"] == Decimal("700.0")  # 100 -> 800
    assert nov["average_vs_year_ago"] == Decimal("300.0")  # 100 -> 400
    usd = rows[("2026-11", "retail", "USD")]  # never added to roubles
    assert (usd["won"], usd["revenue"], usd["year_ago_won"]) == (1, Decimal(40), 0)
    dec = rows[("2026-12", "retail", "RUB")]  # December vs November: -100%
    assert (dec["won"], dec["average"], dec["won_vs_previous"]) == (0, None, Decimal("-100.0"))
    assert dec["revenue_vs_previous"] == Decimal("-100.0")
    fleet_dec = rows[("2026-12", "fleet", "RUB")]
    assert (fleet_dec["won"], fleet_dec["revenue"], fleet_dec["won_vs_previous"]) == (
        1, Decimal(1000), None)
    assert len(dyn.rows) == 2 * 3  # two months × (retail RUB, retail USD, fleet RUB)
    assert dyn.tickets("2026-11", "retail", "RUB").count() == 2

    only_fleet = k5_dynamics(Period.parse("2026-12"), Cut(segment="fleet"), "quarter")
    assert [(r.bucket.label, r.segment, r.current.won) for r in only_fleet.rows] == [
        ("2026-Q4", "fleet", 1)]


# --- targets --------------------------------------------------------------------------------


def test_a_new_target_supersedes_and_history_is_kept(world: World) -> None:
    w = world
    client = make_client(w, "Shop", "retail", key=True)
    first = target_set(w.director, kind="client", ref=client.pk, start="2026-11-01",
                       end="2026-11-30", amount="1000")
    second = target_set(w.admin, kind="client", ref=str(client.pk), start=date(2026, 11, 1),
                        end=date(2026, 11, 30), amount="2000.50", currency="rub")
    assert [t.pk for t in targets_current(("client",), date(2026, 11, 1),
                                          date(2026, 11, 30))] == [second.pk]
    assert list(target_history("client", str(client.pk), date(2026, 11, 1),
                               date(2026, 11, 30))) == [second, first]
    event = Event.objects.get(stream=second.stream)
    assert event.type == EventType.TARGET_SET and event.payload["supersedes"] == first.pk
    assert event.payload["amount"] == "2000.50" and event.payload["currency"] == "RUB"
    with pytest.raises(DeletionRefused):
        first.delete()


def test_heads_set_targets_of_their_own_sellers_only(world: World) -> None:
    w = world
    target_set(w.head, kind="seller", ref=w.ann.pk, start="2026-11-01", end="2026-11-30",
               amount="10")
    before = Target.objects.count()
    for actor, kind, ref in ((w.head, "seller", w.olga.pk), (w.head, "team", w.sales.pk),
                             (w.ann, "seller", w.ann.pk)):
        with pytest.raises(Forbidden):
            target_set(actor, kind=kind, ref=ref, start="2026-11-01", end="2026-11-30",
                       amount="10")
    with pytest.raises(BadInput):
        target_set(w.director, kind="planet", ref=1, start="2026-11-01", end="2026-11-30",
                   amount="10")
    assert Target.objects.count() == before


def test_an_import_with_one_bad_row_writes_nothing(world: World) -> None:
    w = world
    make_client(w, "Shop", "retail")
    data = (b"kind,object,start,end,amount,currency\n"
            b"territory,north,2026-11-01,2026-11-30,5000,RUB\n"
            b"territory,south,2026-11-01,2026-11-30,5000,RUB\n"
            b"segment,retail,2026-11-01,2026-10-30,1,RUB\n")
    events = Event.objects.count()
    with pytest.raises(BadInput) as caught:
        targets_import(w.director, io.BytesIO(data), "csv")
    assert caught.value.code == "bad_import"
    assert [r["line"] for r in caught.value.params["rows"]] == [3, 4]
    assert "south" in caught.value.params["rows"][0]["reason"]
    assert Target.objects.count() == 0 and Event.objects.count() == events


def test_csv_and_xlsx_imports(world: World) -> None:
    w = world
    client = make_client(w, "Shop", "retail")
    data = ("kind;object;start;end;amount\n"
            f"client;{client.pk};2026-11-01;2026-11-30;1 000,50\n\n").encode("utf-8-sig")
    [row] = targets_import(w.director, data, "csv")
    assert (row.kind, row.ref, row.amount, row.currency) == (
        "client", str(client.pk), Decimal("1000.50"), "RUB")

    book = Workbook()
    sheet = book.active
    sheet.append(["Kind", "Object", "Start", "End", "Amount", "Currency"])
    sheet.append(["territory", "north", date(2026, 11, 1), datetime(2026, 11, 30), 700, "usd"])
    sheet.append(["seller", w.ann.pk, "2026-11-01", "2026-11-30", 12.5, None])
    out = io.BytesIO()
    book.save(out)
    rows = targets_import(w.admin, out.getvalue(), "xlsx")
    assert [(t.kind, t.ref, t.period_end, t.amount, t.currency) for t in rows] == [
        ("territory", "north", date(2026, 11, 30), Decimal(700), "USD"),
        ("seller", str(w.ann.pk), date(2026, 11, 30), Decimal("12.50"), "RUB")]
    with pytest.raises(BadInput):
        targets_import(w.admin, b"not a workbook", "xlsx")


# --- K6 -------------------------------------------------------------------------------------


def test_k6_realisation_and_weighted_pipeline_coverage(world: World) -> None:
    w = world
    shop = make_client(w, "Shop", "retail", "north", key=True)
    other = make_client(w, "Cafe", "retail", "north")
    win(w, shop, at(2026, 11, 5), "300")
    win(w, shop, at(2026, 11, 6), "99", currency="USD")  # another currency: not added
    win(w, other, at(2026, 11, 7), "200")
    win(w, shop, at(2026, 10, 31), "5000")  # before the target's period
    with clock.frozen(at(2026, 11, 20)):
        open_ticket(w, shop, "1000")  # stage new, probability 10%: 100 weighted
        t = open_ticket(w, other, "500")  # moved to offer, 40%: 200 weighted
        w.fill_new(t)
        stage_close(actor=w.ann, ticket=t, stage="new", to="offer")
        with clock.frozen(at(2026, 11, 21)):
            target_set(w.director, kind="client", ref=shop.pk, start="2026-11-01",
                       end="2026-11-30", amount="500")
            target_set(w.director, kind="client", ref=shop.pk, start="2026-11-01",
                       end="2026-11-30", amount="1200")  # supersedes the 500
        target_set(w.director, kind="territory", ref="north", start="2026-11-01",
                   end="2026-11-30", amount="2000")
        target_set(w.director, kind="territory", ref="north", start="2026-12-01",
                   end="2026-12-31", amount="0")  # outside November

    rows = {r.kind: r for r in k6_realisation(Period.parse("2026-11"))}
    assert set(rows) == {"client", "territory"}
    c = rows["client"]
    assert (c.potential, c.won_revenue, c.realisation) == (Decimal(1200), Decimal(300),
                                                           Decimal("25.0"))
    assert (c.weighted_pipeline, c.coverage, c.key_account) == (Decimal(100),
                                                                 Decimal("8.3"), True)
    t = rows["territory"]  # 300 + 200 won, 100 + 200 weighted, of 2000
    assert (t.won_revenue, t.realisation) == (Decimal(500), Decimal("25.0"))
    assert (t.weighted_pipeline, t.coverage) == (Decimal(300), Decimal("15.0"))
    [dec] = k6_realisation(Period.parse("2026-12"))
    assert dec.realisation is None and dec.coverage is None  # a zero potential has no ratio
