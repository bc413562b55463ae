"""K9 time in stage and K12 control on small histories made through the services.

Moments are Moscow time, the company zone; the business week is Mon-Fri 09:00-13:00 and
14:00-18:00 (lunch 13-14). November 2026: Mon 9 .. Fri 13, Mon 16, Tue 17 are working days
(the only public holiday in November is Wed 4). Every expected number is worked out here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.services import user_deactivate
from estafeta.analytics.control import (
    average_deal_by_month,
    escalations,
    largest_loss,
    lead_volume_by_channel,
    lost_value_by_stage,
    next_task_coverage,
    overdue_rate,
    share,
    sla_compliance,
    stage_conversion,
)
from estafeta.analytics.period import Cut, Period
from estafeta.analytics.timing import k9_time_in_stage, median, percentile
from estafeta.control.models import Escalation
from estafeta.control.services import escalation_acknowledge, monitor_pass
from estafeta.core import clock
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_reschedule
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.services import (
    checklist_item_complete,
    stage_close,
    stage_pause,
    stage_resume,
    ticket_close_lost,
    ticket_close_won,
    ticket_reopen,
    ticket_void,
)

from .factories import PIPELINES, World

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
NOV = Period.parse("2026-11")
ALL = Cut()
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


def pausable_sales() -> None:
    """A second version of "sales" whose first stage, "new", may wait for the client."""
    text = (PIPELINES / "sales.yaml").read_text()
    pipeline_load(actor=None, source="sales.yaml",
                  text=text.replace("    sla: 2h\n", "    sla: 2h\n    pausable: true\n"))


def created(w: World, when: datetime, owner: Any = None) -> Ticket:
    with clock.frozen(when):
        return w.ticket(owner=owner or w.ann)


def close_new(w: World, ticket: Ticket, when: datetime) -> None:
    with clock.frozen(when):
        w.fill_new(ticket, w.head)
        stage_close(actor=w.head, ticket=ticket, stage="new")


def lose(w: World, ticket: Ticket, when: datetime) -> None:
    with clock.frozen(when):
        ticket_close_lost(actor=w.head, ticket=ticket, reason="price")


def test_median_and_nearest_rank_percentile() -> None:
    assert median([]) is None and percentile([], 0.8) is None
    assert median([3 * H, H, 2 * H]) == 2 * H
    assert median([H, 4 * H, 2 * H, 3 * H]) == 2 * H + 30 * M
    five = [H, 2 * H, 3 * H, 4 * H, 5 * H]
    assert percentile(five, 0.8) == 4 * H  # ceil(0.8 * 5) = 4th
    assert percentile([*five, 6 * H, 7 * H, 8 * H, 9 * H, 10 * H], 0.8) == 8 * H
    assert percentile([H], 0.8) == H


@pytest.fixture
def history(world: World) -> dict[str, Ticket]:
    w = world
    pausable_sales()
    # t0: entered "offer" on Fri Oct 30 17:30, lost Mon Nov 2 10:00: 30 min + 1 h = 1h30 in
    # November; its "new" stay ended in October and is not in November's figure.
    t0 = created(w, at(10, 30, 17, 0))
    close_new(w, t0, at(10, 30, 17, 30))
    lose(w, t0, at(11, 2, 10, 0))
    # t1: "new" Mon 9 10:00-12:30 = 2h30; then in "offer" from 12:30, still open.
    t1 = created(w, at(11, 9, 10, 0))
    close_new(w, t1, at(11, 9, 12, 30))
    # t2: "new" Mon 9 12:00-14:30 over lunch = 1 h + 30 min = 1h30; "offer" 14:30-16:00 = 1h30.
    t2 = created(w, at(11, 9, 12, 0))
    close_new(w, t2, at(11, 9, 14, 30))
    lose(w, t2, at(11, 9, 16, 0))
    # t3 (Bob's): "new" Fri 13 17:00 - Mon 16 09:45 over the weekend = 1 h + 45 min = 1h45;
    # then in "offer" from Mon 16 09:45, still open.
    t3 = created(w, at(11, 13, 17, 0), owner=w.bob)
    close_new(w, t3, at(11, 16, 9, 45))
    # t4: "new" Tue 10 09:00-09:20 = 20 min; "offer" 09:20-09:50 = 30 min.
    t4 = created(w, at(11, 10, 9, 0))
    close_new(w, t4, at(11, 10, 9, 20))
    lose(w, t4, at(11, 10, 9, 50))
    # t5: "new" Wed 11 09:00-16:00 with a pause 10:00-15:00: the stay counts whole, 4 h + 2 h
    # = 6 h; "offer" 16:00-17:00 = 1 h.
    t5 = created(w, at(11, 11, 9, 0))
    with clock.frozen(at(11, 11, 10, 0)):
        stage_pause(actor=w.head, ticket=t5, reason="waits for the bank")
    with clock.frozen(at(11, 11, 15, 0)):
        stage_resume(actor=w.head, ticket=t5)
    close_new(w, t5, at(11, 11, 16, 0))
    lose(w, t5, at(11, 11, 17, 0))
    # t6: "new" since Tue 17 09:00 (SLA 2 h: due 11:00), open.
    t6 = created(w, at(11, 17, 9, 0))
    # t7: void: none of its stays count.
    t7 = created(w, at(11, 12, 9, 0))
    with clock.frozen(at(11, 12, 10, 0)):
        ticket_void(actor=w.head, ticket=t7, reason="duplicate")
    return {"t0": t0, "t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6, "t7": t7}


def test_k9_closed_stays_in_business_time(world: World, history: dict[str, Ticket]) -> None:
    t = history
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, ALL, stuck_after=7 * H)
    assert k9.at == at(11, 17, 9, 30)
    new = sorted(k9.durations(stage="new"))
    assert new == [20 * M, 90 * M, 105 * M, 150 * M, 6 * H]
    offer = sorted(k9.durations(stage="offer"))
    assert offer == [30 * M, H, 90 * M, 90 * M]
    rows = {row["stage"]: row for row in k9.rows()}
    # new: 5 stays, the middle one 1h45; 80th percentile: ceil(0.8 * 5) = the 4th, 2h30.
    assert rows["new"]["closed"] == 5
    assert rows["new"]["median"] == 105 * M
    assert rows["new"]["p80"] == 150 * M
    # offer: 4 stays, median (1 h + 1h30) / 2 = 1h15; p80: ceil(3.2) = the 4th, 1h30.
    assert rows["offer"]["median"] == 75 * M
    assert rows["offer"]["p80"] == 90 * M
    # Drill-down: the tickets behind a stage's closed stays; t7 (void) and nothing else.
    assert set(k9.closed.ticket_ids(stage="new")) == {t[k].pk for k in ("t1", "t2", "t3", "t4",
                                                                           "t5")}
    assert set(k9.closed.ticket_ids(stage="offer")) == {t[k].pk for k in ("t0", "t2", "t4",
                                                                             "t5")}
    assert k9.closed.total("seconds") == int(
        sum(new + offer, timedelta()).total_seconds())


def test_k9_open_stays_with_their_age_and_the_stuck_list(world: World,
                                                         history: dict[str, Ticket]) -> None:
    t = history
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, ALL, stuck_after=7 * H)
    ages = {f.ticket: timedelta(seconds=float(f.values["age_seconds"])) for f in k9.open.facts}
    # t1 in "offer" since Mon 9 12:30: 30 min + 4 h that day, 4 x 8 h (Tue-Fri), 8 h on Mon 16,
    # 30 min on Tue 17 = 45 h. t3 since Mon 16 09:45: 3h15 + 4 h + 30 min = 7h45. t6: 30 min.
    assert ages == {t["t1"].pk: 45 * H, t["t3"].pk: 7 * H + 45 * M, t["t6"].pk: 30 * M}
    rows = {row["stage"]: row for row in k9.rows()}
    assert rows["offer"]["open"] == 2 and rows["offer"]["oldest_open"] == 45 * H
    assert rows["new"]["open"] == 1
    # Stuck: t1 is past its SLA (1 working day: due Tue 10 12:30); t3 is within its SLA (due
    # Tue 17 09:45) but older than 7 h; t6 neither.
    assert [(s.ticket, s.why) for s in k9.stuck] == [(t["t1"].pk, "sla"), (t["t3"].pk, "age")]
    assert rows["offer"]["stuck"] == 2 and rows["new"]["stuck"] == 0
    # Without a duration only the SLA counts.
    with clock.frozen(at(11, 17, 9, 30)):
        assert [s.ticket for s in k9_time_in_stage(NOV, ALL).stuck] == [t["t1"].pk]


def test_k9_open_stays_as_of_the_end_of_a_past_period(world: World,
                                                      history: dict[str, Ticket]) -> None:
    t = history
    # Asked in December about October: at Nov 1 00:00, t0 was in "offer" (since Fri Oct 30
    # 17:30: 30 min) and t1..t7 did not exist yet.
    with clock.frozen(at(12, 5)):
        k9 = k9_time_in_stage(Period.parse("2026-10"), ALL)
    assert k9.at == at(11, 1, 0, 0)
    assert {f.ticket: f.values["age_seconds"] for f in k9.open.facts} == {t["t0"].pk: 30 * 60}
    assert k9.durations(stage="new") == [30 * M]  # t0: Fri Oct 30 17:00-17:30


def test_k9_cut_by_executor(world: World, history: dict[str, Ticket]) -> None:
    t = history
    # "offer" is run by the owner: Bob has only t3, open.
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, Cut(seller=world.bob.pk))
    assert k9.durations(stage="offer") == []
    assert [f.ticket for f in k9.open.facts if f.keys["stage"] == "offer"] == [t["t3"].pk]
    with clock.frozen(at(11, 17, 9, 30)):
        other = k9_time_in_stage(NOV, Cut(team=world.other.pk))
    assert other.closed.facts == () and other.open.facts == ()


# --- K12 control ------------------------------------------------------------------------------


def test_k12_next_task_coverage_is_computed(world: World) -> None:
    w = world
    a = created(w, at(11, 9, 10), owner=w.ann)
    b = created(w, at(11, 9, 10), owner=w.bob)
    lost = created(w, at(11, 9, 10), owner=w.bob)
    lose(w, lost, at(11, 9, 11))
    void = created(w, at(11, 9, 10), owner=w.ann)
    with clock.frozen(at(11, 9, 11)):
        ticket_void(actor=w.head, ticket=void, reason="test")
        # Bob leaves: his open ticket and its task go to someone active, so coverage holds.
        user_deactivate(actor=w.admin, user=w.bob, reason="left")
    table = next_task_coverage(ALL)
    # Open now: a and b (the lost and the void ticket are not open): both covered.
    assert table.total("open_tickets") == 2
    assert table.total("covered") == 2 and table.total("uncovered") == 0
    assert share(table.total("covered"), table.total("open_tickets")) == 1.0
    assert table.ticket_ids("covered") == {a.pk, b.pk}
    assert next_task_coverage(Cut(team=w.other.pk)).facts == ()


def test_k12_overdue_rate_at_a_moment(world: World) -> None:
    w = world
    # t1's first task "Call the client" is due 1 business hour after Mon 9 10:00: 11:00.
    t1 = created(w, at(11, 9, 10, 0))
    task1 = Task.objects.get(ticket=t1)
    assert task1.due_at == at(11, 9, 11, 0)
    # t2 at 12:00: due one business hour later, over lunch: 13:00.
    t2 = created(w, at(11, 9, 12, 0))
    assert Task.objects.get(ticket=t2).due_at == at(11, 9, 13, 0)
    with clock.frozen(at(11, 9, 12, 0)):
        task_reschedule(actor=w.head, task=task1, due_at=at(11, 10, 12, 0),
                        reason="client asked")
    lose(w, t2, at(11, 9, 15, 0))  # its task is cancelled at 15:00

    def rate(moment: datetime) -> tuple[int, int]:
        table = overdue_rate(moment, ALL)
        return int(table.total("overdue")), int(table.total("open_tasks"))

    assert rate(at(11, 9, 9, 0)) == (0, 0)  # nothing existed yet
    assert rate(at(11, 9, 10, 30)) == (0, 1)
    assert rate(at(11, 9, 11, 0)) == (0, 1)  # due 11:00 is not past due at 11:00
    # 11:30: task1 was still due 11:00 (moved only at 12:00): overdue.
    assert rate(at(11, 9, 11, 30)) == (1, 1)
    assert overdue_rate(at(11, 9, 11, 30), ALL).ticket_ids("overdue") == {t1.pk}
    assert rate(at(11, 9, 12, 30)) == (0, 2)  # task1 now due tomorrow, t2's due 13:00
    assert rate(at(11, 9, 14, 30)) == (1, 2)  # t2's task past due
    assert overdue_rate(at(11, 9, 14, 30), ALL).ticket_ids("overdue") == {t2.pk}
    assert rate(at(11, 9, 15, 30)) == (0, 1)  # t2 lost: its task is closed
    assert rate(at(11, 10, 12, 30)) == (1, 1)
    assert overdue_rate(at(11, 10, 12, 30), Cut(team=w.other.pk)).facts == ()


def test_k12_sla_compliance_with_lunch_and_pauses(world: World) -> None:
    w = world
    pausable_sales()  # "new": SLA 2 business hours, may wait for the client
    # a: Mon 9 09:00, due 11:00, closed exactly at 11:00: within.
    a = created(w, at(11, 9, 9, 0))
    close_new(w, a, at(11, 9, 11, 0))
    # b: Mon 9 12:00, due over lunch at 15:00, closed 15:01: late.
    b = created(w, at(11, 9, 12, 0))
    close_new(w, b, at(11, 9, 15, 1))
    # c: Tue 10 09:00, due 11:00; paused at 10:00 with 1 h left, resumed at 16:00 (due 17:00),
    # closed 16:30: within (it would be late without the pause).
    c = created(w, at(11, 10, 9, 0))
    with clock.frozen(at(11, 10, 10, 0)):
        stage_pause(actor=w.head, ticket=c, reason="waits for the bank")
    with clock.frozen(at(11, 10, 16, 0)):
        stage_resume(actor=w.head, ticket=c)
    assert StageVisit.objects.get(ticket=c, stage__code="new").sla_due_at == at(11, 10, 17, 0)
    close_new(w, c, at(11, 10, 16, 30))
    # d: Tue 10 12:00, due 15:00; paused at 12:30 with 1h30 left and closed while paused on
    # Wed 11 10:00: within (the clock was stopped with time left).
    d = created(w, at(11, 10, 12, 0))
    with clock.frozen(at(11, 10, 12, 30)):
        stage_pause(actor=w.head, ticket=d, reason="waits for the bank")
    close_new(w, d, at(11, 11, 10, 0))
    assert StageVisit.objects.get(ticket=d, stage__code="new").sla_left == 90 * M
    # e: Wed 11 09:00, due 11:00; paused only at 12:00 (nothing left), closed 12:30: late.
    e = created(w, at(11, 11, 9, 0))
    with clock.frozen(at(11, 11, 12, 0)):
        stage_pause(actor=w.head, ticket=e, reason="waits for the bank")
    close_new(w, e, at(11, 11, 12, 30))
    # f: closed in December: not in November.
    f = created(w, at(11, 30, 17, 0))
    close_new(w, f, at(12, 1, 9, 30))

    table = sla_compliance(NOV, ALL)
    rows = {row["stage"]: row for row in table.rollup("stage")}
    assert rows == {"new": {"stage": "new", "closed": 5, "within": 3, "late": 2}}
    assert table.ticket_ids("within") == {a.pk, c.pk, d.pk}
    assert table.ticket_ids("late") == {b.pk, e.pk}
    assert share(table.total("within"), table.total("closed")) == 0.6
    dec = sla_compliance(Period.parse("2026-12"), ALL)
    # f: Mon Nov 30 17:00, due Tue Dec 1 10:00, closed 09:30: within.
    assert dec.ticket_ids("within") == {f.pk} and dec.total("late") == 0


def test_k12_escalations_raised_and_acknowledged(world: World) -> None:
    w = world
    t = created(w, at(11, 9, 9, 0))  # task due 10:00, "new" due 11:00
    with clock.frozen(at(11, 9, 12, 0)):
        monitor_pass(now=at(11, 9, 12, 0))
    november = list(Escalation.objects.order_by("pk"))
    # The head hears of the overdue task and of the breached stage.
    assert {(e.reason, e.level) for e in november} >= {("task_overdue", "head"),
                                                      ("stage_breached", "head")}
    with clock.frozen(at(11, 9, 13, 0)):
        escalation_acknowledge(actor=w.head, escalation=november[0])
    with clock.frozen(at(12, 1, 10, 0)):
        monitor_pass(now=at(12, 1, 10, 0))
        escalation_acknowledge(actor=w.director, escalation=november[1])
    december = Escalation.objects.filter(decided_at=at(12, 1, 10, 0)).count()
    assert december >= 1  # the director's level, 4 business hours after the breach

    nov = escalations(NOV, ALL)
    assert nov.total("raised") == len(november) and nov.total("acknowledged") == 1
    assert nov.ticket_ids("raised") == {t.pk}
    heads = {r["level"]: r for r in nov.rollup("level")}
    assert heads["head"]["raised"] == 2
    dec = escalations(Period.parse("2026-12"), ALL)
    assert dec.total("raised") == december and dec.total("acknowledged") == 1
    assert escalations(NOV, Cut(seller=w.olga.pk)).facts == ()


# --- growth points ----------------------------------------------------------------------------


def won(w: World, ticket: Ticket, when: datetime, amount: str) -> None:
    with clock.frozen(when):
        w.fill_new(ticket, w.head)
        stage_close(actor=w.head, ticket=ticket, stage="new", to="contract")
        checklist_item_complete(actor=w.head, ticket=ticket, stage="contract", item="signed_on",
                                evidence="2026-11-20")
        ticket_close_won(actor=w.head, ticket=ticket, stage="contract", amount=amount)


def test_growth_lead_volume_by_channel_against_the_previous_period(world: World) -> None:
    w = world
    with clock.frozen(at(10, 20)):
        w.ticket(channel="phone")
        w.ticket(channel="phone")
        w.ticket(channel="web_form")
    with clock.frozen(at(11, 20)):
        w.ticket(channel="phone")
        w.ticket(channel="email")
        w.ticket(channel="email")
    growth = lead_volume_by_channel(NOV, ALL)
    assert growth.rows == [
        {"channel": "email", "leads": 2, "previous": 0, "change": 2, "change_share": None},
        {"channel": "phone", "leads": 1, "previous": 2, "change": -1, "change_share": -0.5},
        {"channel": "web_form", "leads": 0, "previous": 1, "change": -1,
         "change_share": -1.0}]
    assert len(growth.current.ticket_ids("leads", channel="email")) == 2


def test_growth_average_deal_and_the_stage_that_loses_most(world: World) -> None:
    w = world
    a = created(w, at(10, 5))
    won(w, a, at(10, 6), "1000")
    b = created(w, at(11, 5))
    won(w, b, at(11, 6), "3000")
    c = created(w, at(11, 5))
    won(w, c, at(11, 9), "2000")
    rows = average_deal_by_month(NOV, ALL, months=3)
    assert [(r["month"], r["won"], r["revenue"], r["average"]) for r in rows] == [
        ("2026-10", 1, Decimal("1000"), Decimal("1000.00")),
        ("2026-11", 2, Decimal("5000"), Decimal("2500.00"))]
    # Lost in November: two in "new" worth 100 + 200, one in "offer" worth 500; one lost in
    # "offer" worth 900 but reopened, so it counts nowhere.
    with clock.frozen(at(11, 2)):
        n1 = w.ticket(amount="100")
        n2 = w.ticket(amount="200")
        o1 = w.ticket(amount="500")
        o2 = w.ticket(amount="900")
    for ticket in (o1, o2):
        close_new(w, ticket, at(11, 3))
    for ticket in (n1, n2, o1, o2):
        lose(w, ticket, at(11, 10))
    with clock.frozen(at(11, 11)):
        ticket_reopen(actor=w.head, ticket=o2, reason="client came back")
    table = lost_value_by_stage(NOV, ALL)
    assert {(r["stage"], r["lost"], r["lost_value"]) for r in table.rows} == {
        ("new", 2, Decimal("300")), ("offer", 1, Decimal("500"))}
    top = largest_loss(table)
    assert top is not None and top["stage"] == "offer"
    assert table.ticket_ids("lost", stage="new") == {n1.pk, n2.pk}


def test_growth_next_step_share_per_stage_against_the_previous_period(world: World) -> None:
    w = world
    # October: 2 tickets leave "new", both forward: 2/2.
    for _ in range(2):
        close_new(w, created(w, at(10, 5)), at(10, 6))
    # November: 4 leave "new": 2 forward, 1 skip to "contract", 1 lost: 3/4. "offer": 1 left,
    # lost: 0/1.
    f1, f2 = created(w, at(11, 2)), created(w, at(11, 2))
    close_new(w, f1, at(11, 3))
    close_new(w, f2, at(11, 3))
    s = created(w, at(11, 2))
    with clock.frozen(at(11, 3)):
        w.fill_new(s, w.head)
        stage_close(actor=w.head, ticket=s, stage="new", to="contract")
    lose(w, created(w, at(11, 2)), at(11, 3))
    lose(w, f1, at(11, 5))
    rows = {r["stage"]: r for r in stage_conversion(NOV, ALL).rows}
    assert (rows["new"]["exits"], rows["new"]["next"], rows["new"]["next_share"]) == (4, 3, 0.75)
    assert rows["new"]["previous_share"] == 1.0 and rows["new"]["change"] == -0.25
    assert (rows["offer"]["exits"], rows["offer"]["next_share"]) == (1, 0.0)
    assert rows["offer"]["previous_share"] is None and rows["offer"]["change"] is None


# --- a fixed number of queries ---------------------------------------------------------------


def _queries(call: Any) -> int:
    with CaptureQueriesContext(connection) as seen:
        call()
    return len(seen)


def test_each_figure_reads_a_fixed_number_of_queries(world: World) -> None:
    w = world

    def figures() -> list[int]:
        with clock.frozen(at(11, 20)):
            return [_queries(lambda: k9_time_in_stage(NOV, ALL, stuck_after=H)),
                    _queries(lambda: next_task_coverage(ALL)),
                    _queries(lambda: overdue_rate(at(11, 20), ALL)),
                    _queries(lambda: sla_compliance(NOV, ALL)),
                    _queries(lambda: escalations(NOV, ALL)),
                    _queries(lambda: lost_value_by_stage(NOV, ALL)),
                    _queries(lambda: stage_conversion(NOV, ALL))]

    def grow(n: int) -> None:
        for i in range(n):
            ticket = created(w, at(11, 9 + i % 3, 9 + i))
            close_new(w, ticket, at(11, 12, 10 + i))
            if i % 2:
                lose(w, ticket, at(11, 13, 10))
            with clock.frozen(at(11, 16, 12)):
                monitor_pass(now=at(11, 16, 12))

    grow(2)  # one lost ticket: with none, the reopenings need not be read at all
    figures()  # the calendar is built once per process
    few = figures()
    grow(5)
    assert figures() == few
