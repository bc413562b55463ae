"""K7 conversions and K8 funnel on small histories made through the services at chosen moments.

Every expected number is worked out by hand from the history the test builds. Moments are
Moscow time (UTC+3), the company time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from estafeta.analytics.conversions import (
    ANY_ORDER,
    k7_call_to_meeting,
    k7_email_to_call,
    k7_lead_to_sale,
    k8_funnel,
    rates,
    win_rate,
)
from estafeta.analytics.period import Cut, Period
from estafeta.core import clock
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    stage_close,
    stage_return,
    ticket_close_lost,
    ticket_close_won,
    ticket_reopen,
    ticket_void,
)

from .factories import World

MSK = ZoneInfo("Europe/Moscow")
NOV = Period.parse("2026-11")
DEC = Period.parse("2026-12")
ALL = Cut()
LATER = datetime(2027, 3, 1, tzinfo=MSK)  # every November window has closed


def at(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


def act(ticket: Ticket, actor: Any, when: datetime, kind: str, outcome: str,
        direction: str = "out") -> None:
    with clock.frozen(when):
        activity_log(actor=actor, ticket=ticket, kind=kind, direction=direction,
                     outcome=outcome)


def ids(queryset: Any) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


# --- K7 email → call ------------------------------------------------------------------------


def test_email_to_call_cohort_by_first_email_window_and_edges(world: World) -> None:
    w = world
    with clock.frozen(at(10, 1)):
        ok, before, edge, dec, spam = (w.ticket(owner=w.ann) for _ in range(5))
        early = w.ticket(owner=w.bob)
    act(ok, w.ann, at(11, 2), "email", "sent")
    act(ok, w.head, at(11, 16, 11), "call", "connected")  # 13 days 23 h later: converted
    act(before, w.ann, at(10, 30), "email", "sent")  # first email in October: not November's
    act(before, w.ann, at(11, 5), "email", "sent")
    act(before, w.ann, at(11, 6), "call", "connected")
    act(edge, w.ann, at(11, 30, 23, 30), "email", "sent")  # the last minutes of November
    act(edge, w.ann, at(12, 15, 23, 31), "call", "connected")  # 14 days and 1 minute: too late
    act(dec, w.ann, at(12, 1, 0, 0), "email", "sent")  # midnight: December
    act(early, w.bob, at(11, 9), "call", "connected")  # a call before the email does not count
    act(early, w.bob, at(11, 10), "email", "sent")
    act(early, w.bob, at(11, 11), "call", "no_answer")  # not connected
    act(spam, w.ann, at(11, 3), "email", "sent")
    act(spam, w.ann, at(11, 4), "call", "connected")
    with clock.frozen(at(11, 4)):
        ticket_void(actor=w.ann, ticket=spam, reason="spam")

    table = k7_email_to_call(NOV, ALL, now=LATER)
    assert table.rows == [
        {"performer": w.ann.pk, "cohort": 2, "converted": 1, "immature": 0},
        {"performer": w.bob.pk, "cohort": 1, "converted": 0, "immature": 0}]
    assert ids(table.tickets("cohort")) == {ok.pk, edge.pk, early.pk}
    assert ids(table.tickets("converted")) == {ok.pk}
    assert rates(table) == [{"cohort": 3, "converted": 1, "immature": 0,
                             "conversion": Fraction(1, 3), "is_immature": False}]
    assert ids(k7_email_to_call(Period.parse("2026-10"), ALL, now=LATER).tickets()) == {
        before.pk}
    assert ids(k7_email_to_call(DEC, ALL, now=LATER).tickets()) == {dec.pk}
    # A longer window converts the edge ticket; the seller cut is the first email's sender.
    assert k7_email_to_call(NOV, ALL, window=timedelta(days=16), now=LATER).total(
        "converted") == 2
    assert ids(k7_email_to_call(NOV, Cut(seller=w.bob.pk), now=LATER).tickets()) == {early.pk}
    assert k7_email_to_call(NOV, Cut(team=w.other.pk), now=LATER).rows == []

    # On 5 December the windows of the emails of 30 November (closes 14 December) and of
    # 2 November (closed 16 November) differ: only the first is immature.
    young = k7_email_to_call(NOV, ALL, now=at(12, 5))
    assert ids(young.tickets("immature")) == {edge.pk}
    assert rates(young)[0]["is_immature"] is True


def test_call_to_presentation(world: World) -> None:
    w = world
    with clock.frozen(at(11, 1)):
        a, b, c = (w.ticket(owner=w.ann) for _ in range(3))
    act(a, w.ann, at(11, 2), "call", "connected")
    act(a, w.ann, at(11, 9), "meeting", "held")
    act(b, w.ann, at(11, 2), "call", "connected")
    act(b, w.ann, at(11, 3), "video", "missed")  # missed is not held
    act(c, w.ann, at(11, 2), "call", "busy")  # no connected call: not in the cohort
    act(c, w.ann, at(11, 3), "video", "held")
    table = k7_call_to_meeting(NOV, ALL, now=LATER)
    assert (table.total("cohort"), table.total("converted")) == (2, 1)
    assert ids(table.tickets("converted")) == {a.pk}


# --- K7 lead → sale, win rate ---------------------------------------------------------------


def test_lead_to_sale_shares_sum_to_one_with_reopenings_void_and_immature(world: World) -> None:
    w = world
    with clock.frozen(at(11, 2)):
        won, lost, open_, reopened, late_win, spam = (w.ticket(owner=w.ann) for _ in range(6))
        bobs = w.ticket(owner=w.bob)
    with clock.frozen(at(11, 30, 23, 30)):
        young = w.ticket(owner=w.bob)
    with clock.frozen(at(11, 3)):
        w.fill_new(won)
        stage_close(actor=w.ann, ticket=won, stage="new", to="contract")
        checklist_item_complete(actor=w.ann, ticket=won, stage="contract", item="signed_on",
                                evidence="2026-11-03")
        ticket_close_won(actor=w.ann, ticket=won, stage="contract")
        ticket_close_lost(actor=w.ann, ticket=lost, reason="price")
        ticket_close_lost(actor=w.ann, ticket=reopened, reason="price")
        ticket_close_lost(actor=w.bob, ticket=bobs, reason="competitor")
        ticket_void(actor=w.ann, ticket=spam, reason="spam")
    with clock.frozen(at(11, 8)):
        ticket_reopen(actor=w.head, ticket=reopened, reason="client came back")
    with clock.frozen(at(11, 20)):  # after its window (2-16 November): still open at the end
        ticket_close_lost(actor=w.ann, ticket=late_win, reason="price")

    table = k7_lead_to_sale(NOV, ALL, now=LATER)
    assert table.rollup("owner") == [
        {"owner": w.ann.pk, "cohort": 5, "won": 1, "lost": 1, "open": 3, "immature": 0},
        {"owner": w.bob.pk, "cohort": 2, "won": 0, "lost": 1, "open": 1, "immature": 0}]
    assert ids(table.tickets("open")) == {open_.pk, reopened.pk, late_win.pk, young.pk}
    total = rates(table)[0]
    assert (total["won_share"], total["lost_share"], total["open_share"]) == (
        Fraction(1, 7), Fraction(2, 7), Fraction(4, 7))
    assert total["won_share"] + total["lost_share"] + total["open_share"] == 1
    # On 5 December the ticket created at 23:30 on 30 November is still in its window.
    young_table = k7_lead_to_sale(NOV, ALL, now=at(12, 5))
    assert ids(young_table.tickets("immature")) == {young.pk}
    assert k7_lead_to_sale(NOV, Cut(seller=w.bob.pk), now=LATER).total("cohort") == 2
    assert k7_lead_to_sale(DEC, ALL, now=LATER).rows == []

    # Win rate by closing date: November closed 1 won and 3 lost (the reopened loss is undone,
    # the late loss counts) = 1/4; Ann alone 1 won, 2 lost.
    assert win_rate(NOV, ALL) == [{"won": 1, "lost": 3, "win_rate": Fraction(1, 4)}]
    assert win_rate(NOV, Cut(seller=w.ann.pk), "owner") == [
        {"owner": w.ann.pk, "won": 1, "lost": 2, "win_rate": Fraction(1, 3)}]
    assert win_rate(DEC, ALL) == []


# --- K8 funnel ------------------------------------------------------------------------------


def fill_offer(ticket: Ticket, actor: Any) -> None:
    checklist_item_complete(actor=actor, ticket=ticket, stage="offer", item="quote_number",
                            evidence=f"Q-{ticket.pk}")
    checklist_item_complete(actor=actor, ticket=ticket, stage="offer", item="units",
                            evidence="1")


def fill_contract(ticket: Ticket, actor: Any) -> None:
    checklist_item_complete(actor=actor, ticket=ticket, stage="contract", item="signed_on",
                            evidence="2026-11-20")


def test_funnel_back_moves_skips_reopenings_void_and_edges(world: World) -> None:
    w = world
    u, h = w.ann, w.head  # Ann owns the tickets; her head moves them (any executor)
    with clock.frozen(at(10, 31, 23, 30)):
        october = w.ticket(owner=u)  # the last minutes of October: not November's cohort
    with clock.frozen(at(11, 2)):
        a, b, c, d, g, void = (w.ticket(owner=u) for _ in range(6))
    with clock.frozen(at(11, 30, 23, 30)):
        edge = w.ticket(owner=w.bob)  # November's cohort, still in "new"
    with clock.frozen(at(11, 3)):
        # a: new → offer → contract → won
        w.fill_new(a, h)
        stage_close(actor=h, ticket=a, stage="new")
        fill_offer(a, h)
        stage_close(actor=h, ticket=a, stage="offer")
        fill_contract(a, h)
        ticket_close_won(actor=h, ticket=a, stage="contract")
        # b: skips the offer, then wins
        w.fill_new(b, h)
        stage_close(actor=h, ticket=b, stage="new", to="contract")
        fill_contract(b, h)
        ticket_close_won(actor=h, ticket=b, stage="contract")
        # c: new → offer → back to new → offer → lost (offer counted once)
        w.fill_new(c, h)
        stage_close(actor=h, ticket=c, stage="new")
        stage_return(actor=w.head, ticket=c, stage="offer", to="new", reason="no budget")
        w.fill_new(c, h)
        stage_close(actor=h, ticket=c, stage="new")
        ticket_close_lost(actor=h, ticket=c, reason="price")
        # d: lost in new, reopened, then to the offer
        ticket_close_lost(actor=h, ticket=d, reason="price")
        ticket_reopen(actor=w.head, ticket=d, reason="came back")
        w.fill_new(d, h)
        stage_close(actor=h, ticket=d, stage="new")
        # g: won, then reopened into the contract stage: not won now
        w.fill_new(g, h)
        stage_close(actor=h, ticket=g, stage="new")
        fill_offer(g, h)
        stage_close(actor=h, ticket=g, stage="offer")
        fill_contract(g, h)
        ticket_close_won(actor=h, ticket=g, stage="contract")
        ticket_reopen(actor=w.head, ticket=g, reason="more cars", to="contract")
        # void: moved on, then voided; never in a cohort
        w.fill_new(void, h)
        stage_close(actor=h, ticket=void, stage="new")
        ticket_void(actor=h, ticket=void, reason="test")
        # October's ticket moves in November: still not November's cohort
        w.fill_new(october, h)
        stage_close(actor=h, ticket=october, stage="new")

    strict = k8_funnel(NOV, ALL, now=LATER)
    # Cohort: a, b, c, d, g, edge = 6. Strict: offer a, c, d, g; contract a, g (b skipped the
    # offer); won a (g's win was undone).
    assert strict.steps("sales") == [
        {"stage": "new", "reached": 6, "next_step": Fraction(4, 6), "cumulative": 1},
        {"stage": "offer", "reached": 4, "next_step": Fraction(2, 4),
         "cumulative": Fraction(4, 6)},
        {"stage": "contract", "reached": 2, "next_step": Fraction(1, 2),
         "cumulative": Fraction(2, 6)},
        {"stage": "won", "reached": 1, "next_step": None, "cumulative": Fraction(1, 6)}]
    assert ids(strict.table.tickets("reached", stage="new")) == {
        a.pk, b.pk, c.pk, d.pk, g.pk, edge.pk}
    assert ids(strict.table.tickets("reached", stage="won")) == {a.pk}

    any_order = k8_funnel(NOV, ALL, mode=ANY_ORDER, now=LATER)
    # Any order: contract a, b, g; won a, b. offer→contract: of a, c, d, g both a and g = 2/4.
    assert any_order.steps("sales") == [
        {"stage": "new", "reached": 6, "next_step": Fraction(4, 6), "cumulative": 1},
        {"stage": "offer", "reached": 4, "next_step": Fraction(2, 4),
         "cumulative": Fraction(4, 6)},
        {"stage": "contract", "reached": 3, "next_step": Fraction(2, 3),
         "cumulative": Fraction(3, 6)},
        {"stage": "won", "reached": 2, "next_step": None, "cumulative": Fraction(2, 6)}]

    assert k8_funnel(Period.parse("2026-10"), ALL, now=LATER).steps("sales")[0]["reached"] == 1
    bob = k8_funnel(NOV, Cut(seller=w.bob.pk), now=LATER)
    assert [s["reached"] for s in bob.steps("sales")] == [1, 0, 0, 0]
    assert [s["reached"] for s in strict.steps("sales", owner=u.pk)] == [5, 4, 2, 1]
    assert k8_funnel(DEC, ALL, now=LATER).steps("sales")[0] == {
        "stage": "new", "reached": 0, "next_step": None, "cumulative": None}


def test_funnel_reads_a_fixed_number_of_queries(world: World,
                                                django_assert_num_queries: Any) -> None:
    w = world

    def history(count: int) -> None:
        with clock.frozen(at(11, 2)):
            for _ in range(count):
                ticket = w.ticket(owner=w.ann)
                w.fill_new(ticket)
                stage_close(actor=w.ann, ticket=ticket, stage="new")
                ticket_close_lost(actor=w.ann, ticket=ticket, reason="price")

    history(1)
    with django_assert_num_queries(4):
        assert k8_funnel(NOV, ALL, now=LATER).table.facts
    history(5)
    with django_assert_num_queries(4):
        assert len(k8_funnel(NOV, ALL, now=LATER).table.facts) == 12
