"""K1, K2, K3, K4 and K10 on small histories made through the services at chosen moments.

Every expected number is worked out by hand in the test from the history it builds. Moments are
Moscow time (UTC+3), the company time zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from estafeta.analytics.figures import (
    k1_contacts,
    k2_leads,
    k3_documents,
    k4_transitions,
    k10_outcomes,
)
from estafeta.analytics.period import Cut, Period
from estafeta.clients.models import Segment
from estafeta.clients.services import classification_ensure, client_create, client_update
from estafeta.core import clock
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    document_issue,
    stage_close,
    stage_return,
    ticket_close_lost,
    ticket_close_won,
    ticket_reassign,
    ticket_reopen,
    ticket_void,
)

from .factories import World

MSK = ZoneInfo("Europe/Moscow")
NOV = Period.parse("2026-11")
DEC = Period.parse("2026-12")
ALL = Cut()


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


def fill_offer(ticket: Ticket, actor: Any, number: str) -> None:
    checklist_item_complete(actor=actor, ticket=ticket, stage="offer", item="quote_number",
                            evidence=number)
    checklist_item_complete(actor=actor, ticket=ticket, stage="offer", item="units",
                            evidence="1")


def fill_contract(ticket: Ticket, actor: Any) -> None:
    checklist_item_complete(actor=actor, ticket=ticket, stage="contract", item="signed_on",
                            evidence="2026-11-20")


def call(ticket: Ticket, actor: Any, when: datetime, outcome: str = "connected",
         direction: str = "out") -> None:
    with clock.frozen(when):
        activity_log(actor=actor, ticket=ticket, kind="call", direction=direction,
                     outcome=outcome)


def ids(queryset: Any) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


# --- K1 -------------------------------------------------------------------------------------


def test_k1_counts_done_contacts_by_performer_and_missed_apart(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        t1 = w.ticket(owner=w.ann)
        t2 = w.ticket(owner=w.olga)
    # Ann, on t1, in November: 2 emails out, 1 email in (not a contact made), 3 outbound calls
    # of which 1 connected, 1 inbound call (not made by her), a meeting held, a video missed.
    with clock.frozen(at(11, 3)):
        for _ in range(2):
            activity_log(actor=w.ann, ticket=t1, kind="email", direction="out", outcome="sent")
        activity_log(actor=w.ann, ticket=t1, kind="email", direction="in", outcome="received")
        activity_log(actor=w.ann, ticket=t1, kind="meeting", direction="out", outcome="held")
        activity_log(actor=w.ann, ticket=t1, kind="video", direction="out", outcome="missed")
    call(t1, w.ann, at(11, 4), "connected")
    call(t1, w.ann, at(11, 4), "no_answer")
    call(t1, w.ann, at(11, 4), "busy")
    call(t1, w.ann, at(11, 5), "connected", direction="in")
    # The head calls on Ann's ticket: it counts for the head, who performed it, not the owner.
    call(t1, w.head, at(11, 30, 23, 30))  # 23:30 on the last day: November
    call(t1, w.head, at(12, 1, 0, 0))  # midnight: December
    # Olga, other team, a video presentation held; a contact logged in October is outside.
    with clock.frozen(at(11, 6)):
        activity_log(actor=w.olga, ticket=t2, kind="video", direction="out", outcome="held")
        activity_log(actor=w.olga, ticket=t2, kind="call", direction="out",
                     outcome="connected", occurred_at=at(10, 31, 23, 59))

    table = k1_contacts(NOV, ALL)
    rows = {row["performer"]: row for row in table.rows}
    assert rows[w.ann.pk] == {
        "performer": w.ann.pk, "contacts": 2 + 1 + 1, "emails_out": 2, "calls_attempted": 3,
        "calls_connected": 1, "videos_held": 0, "meetings_held": 1, "videos_missed": 1,
        "meetings_missed": 0}
    assert rows[w.head.pk]["contacts"] == 1 and rows[w.head.pk]["calls_connected"] == 1
    assert rows[w.olga.pk]["contacts"] == 1 and rows[w.olga.pk]["videos_held"] == 1
    assert set(rows) == {w.ann.pk, w.head.pk, w.olga.pk}
    assert table.total("contacts") == 6
    assert table.total("calls_attempted") == 4

    assert k1_contacts(DEC, ALL).total("contacts") == 1
    assert k1_contacts(Period.parse("2026-10"), ALL).total("contacts") == 1

    team = k1_contacts(NOV, Cut(team=w.other.pk))
    assert [row["performer"] for row in team.rows] == [w.olga.pk]
    assert team.total("contacts") == 1
    assert k1_contacts(NOV, Cut(seller=w.head.pk)).total("contacts") == 1
    assert k1_contacts(NOV, Cut(seller=w.bob.pk)).rows == []
    assert k1_contacts(NOV, Cut(channel="email")).total("contacts") == 0

    assert ids(table.tickets("videos_held")) == {t2.pk}
    assert ids(table.tickets("contacts", performer=w.head.pk)) == {t1.pk}
    assert ids(table.tickets("meetings_missed")) == set()


# --- K2 -------------------------------------------------------------------------------------


def test_k2_leads_by_channel_creator_owner_with_void_beside(world: World) -> None:
    w = world
    with clock.frozen(at(11, 30, 23, 30)):  # last minutes of November in Moscow
        late = w.ticket(owner=w.ann, channel="email")
    with clock.frozen(at(11, 10)):
        own = w.ticket(actor=w.bob, owner=w.bob, channel="walk_in")
        spam = w.ticket(owner=w.ann, channel="email")
    with clock.frozen(at(11, 11)):
        ticket_void(actor=w.ann, ticket=spam, reason="spam")
    with clock.frozen(at(12, 1, 0, 0)):
        w.ticket(owner=w.ann)  # December

    table = k2_leads(NOV, ALL)
    assert table.rows == [
        {"channel": "email", "creator": w.operator.pk, "owner": w.ann.pk, "leads": 1,
         "void": 1},
        {"channel": "walk_in", "creator": w.bob.pk, "owner": w.bob.pk, "leads": 1, "void": 0},
    ]
    assert table.rollup("channel") == [
        {"channel": "email", "leads": 1, "void": 1},
        {"channel": "walk_in", "leads": 1, "void": 0}]
    assert ids(table.tickets("leads", channel="email")) == {late.pk}
    assert ids(table.tickets("void")) == {spam.pk}
    assert ids(table.tickets("leads", owner=w.bob.pk)) == {own.pk}
    assert k2_leads(DEC, ALL).total("leads") == 1
    assert k2_leads(NOV, Cut(seller=w.ann.pk)).total("leads") == 1
    assert k2_leads(NOV, Cut(channel="walk_in")).total("leads") == 1


def test_k2_segment_is_the_one_at_creation(world: World) -> None:
    w = world
    retail = classification_ensure(actor=None, model=Segment, code="retail", name="Retail")
    fleet = classification_ensure(actor=None, model=Segment, code="fleet", name="Fleet")
    with clock.frozen(at(11, 2)):
        client = client_create(actor=w.operator, name="OOO Romashka", segment=retail)
        ticket = w.ticket(owner=w.ann, client=client)
    with clock.frozen(at(11, 20)):
        client_update(actor=w.admin, client=client, segment=fleet)
    assert ids(k2_leads(NOV, Cut(segment="retail")).tickets()) == {ticket.pk}
    assert k2_leads(NOV, Cut(segment="fleet")).total("leads") == 0


# --- K3 -------------------------------------------------------------------------------------


def test_k3_documents_count_distinct_tickets_and_sum(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        t1 = w.ticket(owner=w.ann)
        t2 = w.ticket(owner=w.ann)
        t3 = w.ticket(owner=w.bob)
    with clock.frozen(at(11, 5)):
        document_issue(actor=w.ann, ticket=t1, kind="quote", number="Q-1", amount="1000.50")
        document_issue(actor=w.ann, ticket=t1, kind="quote", number="Q-2", amount="900")
        document_issue(actor=w.ann, ticket=t2, kind="quote", number="Q-3", amount="100")
        document_issue(actor=w.bob, ticket=t3, kind="invoice", number="I-1", amount="5000")
        document_issue(actor=w.bob, ticket=t3, kind="quote", number="Q-4", amount="7")
    with clock.frozen(at(11, 6)):
        ticket_void(actor=w.bob, ticket=t3, reason="duplicate")  # its documents leave K3
    with clock.frozen(at(11, 30, 23, 30)):
        document_issue(actor=w.head, ticket=t2, kind="invoice", number="I-2", amount="100")
    with clock.frozen(at(12, 1, 0, 0)):
        document_issue(actor=w.ann, ticket=t2, kind="invoice", number="I-3", amount="1")

    table = k3_documents(NOV, ALL)
    assert table.rollup("kind") == [
        {"kind": "invoice", "documents": 1, "tickets": 1, "amount": Decimal("100")},
        {"kind": "quote", "documents": 3, "tickets": 2, "amount": Decimal("2000.50")},
    ]
    # The head issued the invoice on Ann's ticket: issuer the head, owner Ann.
    assert table.rollup("owner") == [
        {"owner": w.ann.pk, "documents": 4, "tickets": 2, "amount": Decimal("2100.50")}]
    assert {(r["issuer"], r["kind"]): r["documents"] for r in table.rollup("issuer", "kind")} == {
        (w.ann.pk, "quote"): 3, (w.head.pk, "invoice"): 1}
    assert table.total("tickets") == 2
    assert ids(table.tickets("documents", kind="invoice")) == {t2.pk}
    assert k3_documents(DEC, ALL).total("amount") == Decimal("1")


# --- K4 -------------------------------------------------------------------------------------


def test_k4_moves_with_skips_back_moves_losses_and_reopenings(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        a = w.ticket(owner=w.ann)
        b = w.ticket(owner=w.bob)
        v = w.ticket(owner=w.bob)
    with clock.frozen(at(11, 3)):
        w.fill_new(a)
        stage_close(actor=w.ann, ticket=a, stage="new", to="contract")  # skip new→contract
        w.fill_new(b)
        stage_close(actor=w.bob, ticket=b, stage="new")  # forward new→offer
        w.fill_new(v)
        stage_close(actor=w.bob, ticket=v, stage="new")  # forward, but v is voided later
    with clock.frozen(at(11, 4)):
        stage_return(actor=w.head, ticket=a, stage="contract", to="new", reason="no budget")
        ticket_void(actor=w.bob, ticket=v, reason="test ticket")
    with clock.frozen(at(11, 5)):
        w.fill_new(a)
        stage_close(actor=w.ann, ticket=a, stage="new")  # forward new→offer
        ticket_close_lost(actor=w.bob, ticket=b, reason="price")  # close offer→lost
    with clock.frozen(at(11, 30, 23, 30)):
        ticket_reopen(actor=w.head, ticket=b, reason="client came back")  # reopen lost→offer
    with clock.frozen(at(12, 1, 0, 0)):
        fill_offer(a, w.ann, "Q-10")
        stage_close(actor=w.ann, ticket=a, stage="offer")  # December

    table = k4_transitions(NOV, ALL)
    assert table.rollup("kind") == [
        {"kind": "backward", "moves": 1}, {"kind": "close", "moves": 1},
        {"kind": "forward", "moves": 2}, {"kind": "reopen", "moves": 1},
        {"kind": "skip", "moves": 1}]
    matrix = {(r["from_stage"], r["to_stage"]): r["moves"]
              for r in table.rollup("from_stage", "to_stage")}
    assert matrix == {("new", "contract"): 1, ("contract", "new"): 1, ("new", "offer"): 2,
                      ("offer", "lost"): 1, ("lost", "offer"): 1}
    by_actor = {r["actor"]: r["moves"] for r in table.rollup("actor")}
    # head: the back-move and the reopening; Ann: skip and forward; Bob: forward and the loss
    # (his move on the voided ticket is not counted).
    assert by_actor == {w.head.pk: 2, w.ann.pk: 2, w.bob.pk: 2}
    by_owner = {r["owner"]: r["moves"] for r in table.rollup("owner")}
    assert by_owner == {w.ann.pk: 3, w.bob.pk: 3}
    assert ids(table.tickets("moves", kind="backward")) == {a.pk}
    assert ids(table.tickets("moves", from_stage="new", to_stage="offer")) == {a.pk, b.pk}
    assert k4_transitions(DEC, ALL).rows == [
        {"pipeline": "sales", "kind": "forward", "from_stage": "offer", "to_stage": "contract",
         "actor": w.ann.pk, "owner": w.ann.pk, "moves": 1}]


# --- K10 ------------------------------------------------------------------------------------


def test_k10_wins_revenue_and_losses_by_reason(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        won = w.ticket(owner=w.ann, amount="1000")
        lost1 = w.ticket(owner=w.ann, amount="300")
        lost2 = w.ticket(owner=w.bob, amount="200")
        undone = w.ticket(owner=w.bob, amount="50")
        voided = w.ticket(owner=w.bob, amount="70")
    with clock.frozen(at(11, 3)):
        w.fill_new(won)
        stage_close(actor=w.ann, ticket=won, stage="new", to="contract")
        fill_contract(won, w.ann)
        ticket_close_won(actor=w.ann, ticket=won, stage="contract", amount="1250.00")
        ticket_close_lost(actor=w.ann, ticket=lost1, reason="price")
        ticket_close_lost(actor=w.bob, ticket=lost2, reason="competitor")
        ticket_close_lost(actor=w.bob, ticket=undone, reason="price")
        ticket_close_lost(actor=w.bob, ticket=voided, reason="price")
    with clock.frozen(at(11, 30, 23, 30)):
        ticket_reopen(actor=w.head, ticket=undone, reason="it was not lost")
        ticket_reopen(actor=w.head, ticket=voided, reason="a duplicate in fact")
    with clock.frozen(at(12, 1, 0, 0)):
        ticket_void(actor=w.head, ticket=voided, reason="duplicate")
        ticket_close_lost(actor=w.bob, ticket=undone, reason="competitor")

    table = k10_outcomes(NOV, ALL)
    assert table.total("won") == 1 and table.total("revenue") == Decimal("1250.00")
    assert table.rollup("reason") == [
        {"reason": "competitor", "won": 0, "revenue": 0, "lost": 1, "lost_value": Decimal(200)},
        {"reason": "price", "won": 0, "revenue": 0, "lost": 1, "lost_value": Decimal(300)},
        {"reason": None, "won": 1, "revenue": Decimal("1250.00"), "lost": 0, "lost_value": 0},
    ]
    assert ids(table.tickets("lost")) == {lost1.pk, lost2.pk}
    assert ids(table.tickets("won", owner=w.ann.pk)) == {won.pk}
    dec = k10_outcomes(DEC, ALL)
    assert (dec.total("lost"), dec.total("lost_value")) == (1, Decimal(50))
    assert ids(dec.tickets("lost", reason="competitor")) == {undone.pk}
    assert k10_outcomes(NOV, Cut(seller=w.bob.pk)).total("lost") == 1
    assert k10_outcomes(NOV, Cut(team=w.other.pk)).rows == []


# --- attribution ----------------------------------------------------------------------------


@pytest.mark.parametrize("figure", [k1_contacts, k2_leads, k3_documents, k4_transitions,
                                    k10_outcomes])
def test_reassigning_later_changes_no_past_figure(world: World, figure: Any) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        ticket = w.ticket(owner=w.ann, amount="500")
        w.fill_new(ticket)
        activity_log(actor=w.ann, ticket=ticket, kind="call", direction="out",
                     outcome="connected")
    with clock.frozen(at(11, 3)):
        stage_close(actor=w.ann, ticket=ticket, stage="new")
        document_issue(actor=w.ann, ticket=ticket, kind="quote", number="Q-77", amount="500")
        fill_offer(ticket, w.ann, "Q-77")
        stage_close(actor=w.ann, ticket=ticket, stage="offer")
        fill_contract(ticket, w.ann)
        ticket_close_won(actor=w.ann, ticket=ticket, stage="contract")
    early = Period.parse("2026-11-01..2026-11-15")
    before = figure(early, ALL).rows
    ann_before = figure(early, Cut(seller=w.ann.pk)).rows
    assert before and before == ann_before
    with clock.frozen(at(11, 20)):
        ticket_reopen(actor=w.head, ticket=ticket, reason="more cars", to="contract")
        ticket_reassign(actor=w.head, ticket=ticket, owner=w.bob)
    after = figure(early, ALL)
    if figure is k10_outcomes:  # the reopening undid the win; the owner is not what changed
        assert after.rows == []
        return
    assert after.rows == before
    assert figure(early, Cut(seller=w.ann.pk)).rows == ann_before
    assert figure(early, Cut(seller=w.bob.pk)).rows == []


def test_k1_contacts_logged_by_an_integration_have_no_performer(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        ticket = w.ticket(owner=w.ann)
        activity_log(actor=None, ticket=ticket, kind="call", direction="out",
                     outcome="connected", source="telephony")
        activity_log(actor=w.ann, ticket=ticket, kind="call", direction="out",
                     outcome="no_answer")
    table = k1_contacts(NOV, ALL)
    assert [(r["performer"], r["contacts"], r["calls_attempted"]) for r in table.rows] == [
        (w.ann.pk, 0, 1), (None, 1, 1)]
    assert k1_contacts(NOV, Cut(seller=w.ann.pk)).total("contacts") == 0


@pytest.mark.parametrize(("figure", "queries"), [
    (k1_contacts, 1), (k2_leads, 1), (k3_documents, 1), (k4_transitions, 1), (k10_outcomes, 2)])
def test_a_figure_reads_a_fixed_number_of_queries(world: World, figure: Any, queries: int,
                                                  django_assert_num_queries: Any) -> None:
    w = world

    def history(count: int, day: int) -> None:
        for n in range(count):
            with clock.frozen(at(11, day)):
                ticket = w.ticket(owner=w.ann, amount="10")
                w.fill_new(ticket)
                activity_log(actor=w.ann, ticket=ticket, kind="call", direction="out",
                             outcome="connected")
                document_issue(actor=w.ann, ticket=ticket, kind="quote",
                               number=f"Q-{day}-{n}", amount="10")
                stage_close(actor=w.ann, ticket=ticket, stage="new")
                ticket_close_lost(actor=w.ann, ticket=ticket, reason="price")

    history(1, 2)
    few = Period.parse("2026-11-02..2026-11-02")
    with django_assert_num_queries(queries):
        assert figure(few, ALL).facts
    history(6, 3)
    many = Period.parse("2026-11-02..2026-11-03")
    with django_assert_num_queries(queries):
        assert len(figure(many, ALL).facts) >= 7


def test_seller_rows_sum_to_the_team_total(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        for owner, amount in ((w.ann, "100"), (w.bob, "250"), (w.bob, "5"), (w.olga, "9")):
            ticket = w.ticket(owner=owner, amount=amount)
            ticket_close_lost(actor=owner, ticket=ticket, reason="price")
    team = k10_outcomes(NOV, Cut(team=w.sales.pk))
    sellers = [k10_outcomes(NOV, Cut(seller=s.pk)) for s in (w.ann, w.bob)]
    assert team.total("lost_value") == sum(t.total("lost_value") for t in sellers) == 355
    assert team.total("lost") == sum(t.total("lost") for t in sellers) == 3
    assert k10_outcomes(NOV, ALL).total("lost") == 4
