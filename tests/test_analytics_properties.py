"""Property test of the figures (issue 5): on random histories made through the real services,

- the K8 funnel never shows more than 100% next-step (or cumulative) conversion, in both modes;
- K7 lead→sale: won + lost + open = cohort, and the shares sum to exactly 1 (fractions);
- K1, K2, K3, K4 and K10: the figures of each seller of a team add up to the team's figure.

A history is up to 8 tickets (owner Ann, Bob or Olga, any channel) and a random sequence of
actions on them at random moments around November 2026 (the period asked about): checklist
items, forward closes and skips, a head's back-move, contacts, documents, won/lost/void,
reopening and reassignment. The services refuse what the rules forbid (a close with the
checklist undone, a reopening of an open ticket...); a refusal is part of real use and the
history simply goes on. Each example builds its own world in a transaction that is rolled back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estafeta.accounts.models import Team, User
from estafeta.analytics.conversions import ANY_ORDER, STRICT, k7_lead_to_sale, k8_funnel, rates
from estafeta.analytics.figures import (
    k1_contacts,
    k2_leads,
    k3_documents,
    k4_transitions,
    k10_outcomes,
)
from estafeta.analytics.period import Cut, Period
from estafeta.calendars.selectors import clear_calendar_cache
from estafeta.core import clock
from estafeta.domain.errors import EstafetaError
from estafeta.pipelines.models import clear_version_cache
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import open_visit
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

from . import factories

MSK = ZoneInfo("Europe/Moscow")
PERIOD = Period.parse("2026-11")
# Histories begin between 31 October 20:00 and 30 November 20:00 (Moscow), so they straddle
# either edge of November or lie inside it.
ORIGIN = datetime(2026, 10, 31, 20, 0, tzinfo=MSK)
MAX_TICKETS = 8

CHANNELS = ("phone", "email", "web_form", "walk_in", "messenger", "api")
CONTACTS = (("email", "out", "sent"), ("email", "in", "received"),
            ("call", "out", "connected"), ("call", "out", "no_answer"), ("call", "out", "busy"),
            ("call", "in", "connected"), ("video", "out", "held"), ("video", "out", "missed"),
            ("meeting", "out", "held"), ("meeting", "out", "missed"))
# The required items of each open stage of tests/pipelines/sales.yaml and their evidence.
ITEMS: dict[str, tuple[tuple[str, Any], ...]] = {
    "new": (("contacted", None), ("need", "a family car")),
    "offer": (("quote_number", "Q-1"), ("units", "2")),
    "contract": (("signed_on", "2026-11-20"),),
}
EARLIER = {"offer": ("new",), "contract": ("new", "offer")}

# Repeats weigh the draw towards the usual work, so that 25 examples make rich histories.
ACTIONS = ("create", "advance", "advance", "advance", "fill", "item", "close", "skip", "back",
           "contact", "contact", "document", "document", "won", "lost", "void", "reopen",
           "reassign", "reassign")
step = st.tuples(
    st.sampled_from(ACTIONS),
    st.integers(0, MAX_TICKETS - 1),  # which ticket (modulo those made so far)
    st.sampled_from(("owner", "executor", "head")),  # who acts
    st.one_of(st.integers(1, 12 * 60), st.integers(1, 4 * 24 * 60)),  # minutes since the last
    st.integers(0, 10_000),  # a free choice: owner, channel, contact, amount, stage...
)
creation = st.tuples(st.just("create"), st.just(0), st.just("head"),
                     st.integers(1, 3 * 24 * 60), st.integers(0, 10_000))
history = st.tuples(st.integers(0, 30 * 24 * 60),  # minutes from ORIGIN to the first step
                    st.lists(creation, min_size=2, max_size=5),  # the first tickets
                    st.lists(step, min_size=15, max_size=40),  # then anything, more tickets too
                    st.integers(0, 30 * 24 * 60))  # minutes from the last step to "now"


def _head_of(w: factories.World, ticket: Ticket) -> User:
    return w.head if ticket.team_id == w.sales.pk else w.other_head


def _actor(w: factories.World, ticket: Ticket, who: str) -> User:
    if who == "owner":
        return ticket.owner
    if who == "executor" and ticket.is_open:
        executor = open_visit(ticket).executor
        if executor is not None:
            return executor
    return _head_of(w, ticket)


def _act(w: factories.World, tickets: list[Ticket], action: str, index: int, who: str,
         choice: int, serial: int) -> None:
    """One step through the services; a refusal (EstafetaError) is left to the caller."""
    sellers = (w.ann, w.bob, w.olga)
    if action == "create" or not tickets:
        if len(tickets) < MAX_TICKETS:
            ticket = w.ticket(owner=sellers[choice % 3],
                              channel=CHANNELS[choice // 3 % len(CHANNELS)])
            tickets.append(ticket)
        return
    picked = tickets[index % len(tickets)].pk
    ticket = Ticket.objects.select_related("owner", "stage").get(pk=picked)
    actor = _actor(w, ticket, who)
    stage = ticket.stage.code
    if action == "advance":  # the usual work: the stage's items, then a forward close
        for item, evidence in ITEMS.get(stage, ()):
            checklist_item_complete(actor=actor, ticket=ticket, stage=stage, item=item,
                                    evidence=evidence)
        stage_close(actor=actor, ticket=ticket, stage=stage, amount=str(5000 + choice))
    elif action == "fill":
        for item, evidence in ITEMS.get(stage, ()):
            checklist_item_complete(actor=actor, ticket=ticket, stage=stage, item=item,
                                    evidence=evidence)
    elif action == "item":
        items = ITEMS.get(stage, ())
        if items:
            item, evidence = items[choice % len(items)]
            checklist_item_complete(actor=actor, ticket=ticket, stage=stage, item=item,
                                    evidence=evidence)
    elif action == "close":
        stage_close(actor=actor, ticket=ticket, stage=stage)
    elif action == "skip":  # over the skippable offer stage
        stage_close(actor=actor, ticket=ticket, stage=stage, to="contract")
    elif action == "back":
        targets = EARLIER.get(stage, ())
        if targets:
            stage_return(actor=_head_of(w, ticket), ticket=ticket, stage=stage,
                         to=targets[choice % len(targets)], reason="not ready yet")
    elif action == "contact":
        kind, direction, outcome = CONTACTS[choice % len(CONTACTS)]
        activity_log(actor=actor, ticket=ticket, kind=kind, direction=direction,
                     outcome=outcome)
    elif action == "document":
        document_issue(actor=actor, ticket=ticket, kind=("quote", "invoice")[choice % 2],
                       number=f"D-{serial}", amount=str(1000 + choice))
    elif action == "won":
        ticket_close_won(actor=actor, ticket=ticket, stage=stage, amount=str(5000 + choice))
    elif action == "lost":
        ticket_close_lost(actor=actor, ticket=ticket, reason=("price", "competitor")[choice % 2])
    elif action == "void":
        ticket_void(actor=actor, ticket=ticket, reason="a duplicate")
    elif action == "reopen":
        ticket_reopen(actor=_head_of(w, ticket), ticket=ticket, reason="the client came back")
    elif action == "reassign":
        others = [s for s in sellers if s.pk != ticket.owner_id]
        ticket_reassign(actor=_head_of(w, ticket), ticket=ticket,
                        owner=others[choice % len(others)], reason="holiday")


def _play(w: factories.World, start: int,
          steps: list[tuple[str, int, str, int, int]]) -> datetime:
    """Play the steps in time order; returns the moment of the last one."""
    moment = ORIGIN + timedelta(minutes=start)
    tickets: list[Ticket] = []
    for serial, (action, index, who, gap, choice) in enumerate(steps):
        moment += timedelta(minutes=gap)
        with clock.frozen(moment):
            try:
                with transaction.atomic():  # a refusal leaves the example's transaction usable
                    _act(w, tickets, action, index, who, choice, serial)
            except EstafetaError:
                pass
    return moment


# --- the properties ---------------------------------------------------------------------------


def _check_funnel(now: datetime) -> None:
    for mode in (STRICT, ANY_ORDER):
        funnel = k8_funnel(PERIOD, Cut(), mode=mode, now=now)
        owners = {f.keys["owner"] for f in funnel.table.facts}
        for pipeline in funnel.stages:
            cells: list[dict[str, Any]] = [{}, *({"owner": o} for o in owners)]
            for cell in cells:
                rows = funnel.steps(pipeline, **cell)
                for row in rows:
                    assert row["next_step"] is None or 0 <= row["next_step"] <= 1, (mode, row)
                    assert row["cumulative"] is None or 0 <= row["cumulative"] <= 1, (mode, row)
                assert rows[-1]["next_step"] is None
                if mode == STRICT:  # a strict step is reached only by those who reached the last
                    sets = [funnel.table.ticket_ids("reached", pipeline=pipeline, stage=r["stage"],
                                                    **cell) for r in rows]
                    assert all(b <= a for a, b in pairwise(sets)), (mode, sets)


def _check_lead_to_sale(now: datetime) -> None:
    table = k7_lead_to_sale(PERIOD, Cut(), now=now)
    for keys in ((), ("owner",), ("channel",), ("channel", "owner")):
        for row in rates(table, *keys):
            assert row["won"] + row["lost"] + row["open"] == row["cohort"], row
            assert row["cohort"] > 0
            shares = (row["won_share"], row["lost_share"], row["open_share"])
            assert all(isinstance(s, Fraction) and 0 <= s <= 1 for s in shares), row
            assert sum(shares) == 1, row
    # The cohort is exactly the period's leads (K2, void tickets apart).
    assert table.total("cohort") == k2_leads(PERIOD, Cut()).total("leads")


FIGURES = (  # figure, the key naming the seller, additive columns, distinct-ticket columns
    (k1_contacts, "performer", ("contacts", "emails_out", "calls_attempted", "calls_connected",
                                "videos_held", "meetings_held", "videos_missed",
                                "meetings_missed"), ()),
    (k2_leads, "owner", ("leads", "void"), ()),
    (k3_documents, "owner", ("documents", "amount"), ("tickets",)),
    (k4_transitions, "owner", ("moves",), ()),
    (k10_outcomes, "owner", ("won", "revenue", "lost", "lost_value"), ()),
)


def _check_team_sums(w: factories.World) -> None:
    for team in (w.sales, w.other):
        members = list(User.objects.filter(team=team).values_list("pk", flat=True))
        for figure, seller_key, columns, distinct in FIGURES:
            team_table = figure(PERIOD, Cut(team=team.pk))
            per_seller = {m: figure(PERIOD, Cut(seller=m)) for m in members}
            # Every fact of the team's figure is a member's.
            assert {f.keys[seller_key] for f in team_table.facts} <= set(members)
            rows = team_table.rollup(seller_key)
            for column in columns:
                total = team_table.total(column)
                assert sum((r[column] for r in rows), start=Decimal(0)) == total, column
                assert sum((t.total(column) for t in per_seller.values()),
                           start=Decimal(0)) == total, (figure.__name__, column)
                for row in rows:  # each seller's row is that seller's own figure
                    assert row[column] == per_seller[row[seller_key]].total(column)
            for column in distinct:  # a ticket reassigned between documents counts for both
                total = team_table.total(column)
                assert sum(r[column] for r in rows) >= total
                assert total == len(team_table.ticket_ids(column))


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=history)
def test_figures_hold_on_random_histories(drawn: tuple[int, list[Any], list[Any], int]) -> None:
    start, creations, steps, tail = drawn
    # Each example rolls back what it made: ids are reused, so forget cached versions/calendars.
    clear_version_cache()
    clear_calendar_cache()
    with transaction.atomic():
        with clock.frozen(ORIGIN - timedelta(days=30)):
            w = factories.build_world()
        now = _play(w, start, creations + steps) + timedelta(minutes=tail)
        with clock.frozen(now):
            _check_funnel(now)
            _check_lead_to_sale(now)
            _check_team_sums(w)
        assert Team.objects.count() == 2
        transaction.set_rollback(True)
    clear_version_cache()
    clear_calendar_cache()
