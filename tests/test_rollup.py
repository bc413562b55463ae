"""The analytics rollups agree with a recomputation from the history (issue 5, scale).

On random histories made through the services (the property test's: back-moves, skips,
reassignments, void, reopening, contacts and documents around the edges of November 2026 in
the company time zone), every rolled-up figure equals the exact figure for several periods and
cuts, kept in step event by event, and again after ``rebuild`` from scratch.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Q
from hypothesis import HealthCheck, Phase, given, settings

from estafeta.accounts.services import user_deactivate
from estafeta.analytics import control, fast, monthly, rollup
from estafeta.analytics.figures import k2_leads, k3_documents, k10_outcomes
from estafeta.analytics.models import (
    Cell,
    MonthCell,
    RollupState,
    StaySpan,
    TicketRollup,
    TicketSummary,
)
from estafeta.analytics.period import Cut, Period
from estafeta.analytics.timing import k9_time_in_stage
from estafeta.calendars.selectors import clear_calendar_cache
from estafeta.core import clock
from estafeta.pipelines.models import clear_version_cache
from estafeta.tasks.models import Task
from estafeta.tickets.services import (
    document_issue,
    stage_close,
    ticket_close_lost,
    ticket_reassign,
    ticket_reopen,
    ticket_void,
)

from . import factories
from .test_analytics_properties import _play, history

MSK = ZoneInfo("Europe/Moscow")
# The month, the quarter and the two month-led ranges are answered from the monthly cells
# for the cuts of people (the second range: October whole, November 1-20 from the daily rows).
PERIODS = (Period.parse("2026-11"), Period.parse("2026-10-31..2026-11-01"),
           Period.parse("2026-11-30..2026-12-03"), Period.parse("2026-W46"),
           Period.parse("2026-Q4"), Period.parse("2026-10-01..2026-11-20"))


def _cuts(w: factories.World) -> list[Cut]:
    return [Cut(), Cut(team=w.sales.pk), Cut(team=w.other.pk), Cut(seller=w.ann.pk),
            Cut(seller=w.olga.pk, team=w.other.pk), Cut(pipeline="sales"), Cut(channel="phone"),
            Cut(channel="email", team=w.sales.pk)]


def _fast_agrees(period: Period, cut: Cut) -> None:
    """The dashboard's K7, K8, K9 and K12 from the summaries, spans and SQL counts equal the
    exact figures (and are counted, not recomputed)."""
    problems = list(fast.differences(period, cut))
    assert not problems, (period, cut, problems)
    assert all(f.ticket == 0 for part in fast.K7_PARTS
               for f in fast.k7_part(part, period, cut).facts)
    assert isinstance(fast.k8_funnel(period, cut), fast.CountedFunnel)
    moment = period.start + timedelta(hours=13)  # overdue at a moment inside the period
    assert (fast.overdue_rate(moment, cut).rollup("pipeline", "assignee")
            == control.overdue_rate(moment, cut).rollup("pipeline", "assignee"))


def _agree(w: factories.World) -> None:
    for period in PERIODS:
        for cut in _cuts(w):
            problems = list(rollup.differences(period, cut))
            assert not problems, (period, cut, problems)
            _fast_agrees(period, cut)
            # the monthly cells really answered the periods that start a month, cut by people
            by_month = period.first.day == 1 and period.kind != "week" and all(
                getattr(cut, name) is None for name in monthly.DIMENSIONS)
            assert (monthly.split(period, cut) is not None) == by_month, (period, cut)


def _stored_rows() -> tuple[list[tuple[Any, ...]], ...]:
    """Every summary, span and per-ticket rollup as stored."""
    return tuple(sorted(tuple(r) for r in model.objects.values_list())
                 for model in (TicketSummary, StaySpan, TicketRollup))


def _stored_monthly() -> list[tuple[Any, ...]]:
    values = tuple(f"v{i}" for i in range(8))
    nonzero = Q(*[Q(**{v: 0}) for v in values])
    return sorted(MonthCell.objects.exclude(nonzero).values_list(
        "figure", "month", "person", "since", "keys", *values))


def _stored_cells() -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in Cell.objects.exclude(
        v0=0, v1=0, v2=0, v3=0, v4=0, v5=0, v6=0, v7=0).values_list(
        "figure", "day", "person", "pipeline", "channel", "segment", "territory", "keys",
        "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7"))


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=history)
def test_rollups_equal_the_history_on_random_histories(
        drawn: tuple[int, list[Any], list[Any], int]) -> None:
    start, creations, steps, tail = drawn
    clear_version_cache()
    clear_calendar_cache()
    with transaction.atomic():
        assert rollup.is_ready()
        with clock.frozen(datetime(2026, 10, 1, 12, 0, tzinfo=MSK)):
            w = factories.build_world()
        now = _play(w, start, creations + steps) + timedelta(minutes=tail)
        with clock.frozen(now):
            _agree(w)  # kept in step, event by event
            kept, kept_monthly, kept_rows = _stored_cells(), _stored_monthly(), _stored_rows()
            assert kept_monthly
            monthly.derive()  # the monthly cells worked out again from the daily rows
            assert _stored_monthly() == kept_monthly
            rollup.rebuild(batch=3)
            # a rebuild finds exactly what was kept, so the figures it answers are those above
            assert _stored_cells() == kept
            assert _stored_monthly() == kept_monthly
            assert _stored_rows() == kept_rows
        transaction.set_rollback(True)
    clear_version_cache()
    clear_calendar_cache()


@pytest.fixture
def world(db: Any) -> factories.World:
    with clock.frozen(datetime(2026, 10, 1, 12, 0, tzinfo=MSK)):
        return factories.build_world()


def _at(year: int, month: int, day: int, hour: int, minute: int) -> Any:
    return clock.frozen(datetime(year, month, day, hour, minute, tzinfo=MSK))


def test_period_edges_in_the_company_time_zone(world: factories.World) -> None:
    w = world
    with _at(2026, 10, 31, 23, 59):  # 20:59 UTC: still October in Moscow
        late = w.ticket(owner=w.ann, channel="phone")
    with _at(2026, 11, 1, 0, 0):
        early = w.ticket(owner=w.ann, channel="phone")
    november, october = Period.parse("2026-11"), Period.parse("2026-10")
    assert rollup.rolled("K2", november, Cut()).total("leads") == 1
    assert rollup.rolled("K2", october, Cut()).total("leads") == 1
    assert Cell.objects.filter(figure="K2", day=date(2026, 10, 31)).count() == 1
    assert Cell.objects.filter(figure="K2", day=date(2026, 11, 1)).count() == 1
    assert late.pk != early.pk
    assert not list(rollup.differences(november))
    assert not list(rollup.differences(october))


def test_stays_closed_just_after_local_midnight_count_in_their_local_month(
        world: factories.World) -> None:
    """01:00 in Moscow on 1 November is 22:00 UTC on 31 October: the monthly histogram puts the
    stay in November, and the look-up of its bucket must find it there (it compared UTC text
    with a local moment on SQLite once, and found nothing)."""
    w = world
    with _at(2026, 10, 30, 10, 0):
        ticket = w.ticket(owner=w.ann)
        w.fill_new(ticket)
    with _at(2026, 11, 1, 1, 0):
        stage_close(actor=w.ann, ticket=ticket, stage="new", to="contract")
    november = Period.parse("2026-11")
    with _at(2026, 11, 20, 10, 0):
        assert monthly.split(november, Cut()) is not None
        timing = fast.k9_timing(november, Cut())
        row = next(r for r in timing.rows if r["stage"] == "new")
        assert row["closed"] == 1 and row["median"] == row["shortest"] == row["longest"]
        assert not list(fast.differences(november))
        assert not list(fast.differences(Period.parse("2026-10")))


def test_coverage_and_overdue_tasks_read_the_current_state_cells(
        world: factories.World) -> None:
    """K12 coverage and overdue tasks come from the counters the hook keeps (open tickets per
    owner now, open tasks per assignee and due day) when nothing changed the open tasks after
    the moment asked; a task due that same day is read from the tasks' due index; a moment
    with tasks created after it reads the tasks (the counters hold now, not then)."""
    w = world
    with _at(2026, 11, 2, 9, 0):
        early = w.ticket(owner=w.ann, first_task=factories.draft("Call", hours=3))  # 12:00
        w.ticket(owner=w.bob, first_task=factories.draft("Call", days=30))
    with _at(2026, 11, 2, 11, 0):
        late = w.ticket(owner=w.olga, first_task=factories.draft("Call", hours=1))  # 12:00
    noon_and_a_bit = datetime(2026, 11, 2, 12, 30, tzinfo=MSK)
    people = (Cut(), Cut(team=w.sales.pk), Cut(seller=w.olga.pk))

    def due_today(start: datetime, end: datetime) -> Any:
        return Task.objects.filter(status="open", due_at__gte=start, due_at__lt=end)

    with clock.frozen(noon_and_a_bit):
        for cut in people:
            counted = monthly.overdue(noon_and_a_bit, cut, due_today)
            assert counted is not None, cut  # the counters answered
            fast_rows = fast.overdue_rate(noon_and_a_bit, cut).rollup("pipeline", "assignee")
            assert fast_rows == control.overdue_rate(noon_and_a_bit, cut).rollup(
                "pipeline", "assignee"), cut
            assert monthly.coverage(cut) is not None
            assert (fast.next_task_coverage(cut).rollup("pipeline", "owner")
                    == control.next_task_coverage(cut).rollup("pipeline", "owner")), cut
        overdue = {r["assignee"]: r["overdue"]
                   for r in fast.overdue_rate(noon_and_a_bit, Cut()).rollup("assignee")}
        assert overdue == {w.ann.pk: 1, w.bob.pk: 0, w.olga.pk: 1}  # due at 12:00 today
        # 10:00, before Olga's ticket: the counters hold now, so the tasks answer
        ten = datetime(2026, 11, 2, 10, 0, tzinfo=MSK)
        assert monthly.overdue(ten, Cut(), due_today) is None
        assert (fast.overdue_rate(ten, Cut()).rollup("assignee")
                == control.overdue_rate(ten, Cut()).rollup("assignee"))
        # a deactivated owner's work moves on: the counters follow, coverage stays whole
        user_deactivate(actor=None, user=w.olga, successor=w.ann)
        assert (fast.next_task_coverage(Cut()).rollup("owner")
                == control.next_task_coverage(Cut()).rollup("owner"))
        assert fast.next_task_coverage(Cut()).total("uncovered") == 0
        ticket_void(actor=w.head, ticket=late, reason="a duplicate")
        ticket_close_lost(actor=w.ann, ticket=early, reason="price")
        for cut in people:
            assert (fast.next_task_coverage(cut).rollup("pipeline", "owner")
                    == control.next_task_coverage(cut).rollup("pipeline", "owner")), cut
            assert (fast.overdue_rate(noon_and_a_bit, cut).rollup("pipeline", "assignee")
                    == control.overdue_rate(noon_and_a_bit, cut).rollup("pipeline",
                                                                        "assignee")), cut


def test_void_reopen_and_reassignment_change_what_they_should(world: factories.World) -> None:
    w = world
    november = Period.parse("2026-11")
    with _at(2026, 11, 2, 10, 0):
        first = w.ticket(owner=w.ann, channel="phone")
        second = w.ticket(owner=w.ann, channel="email")
        document_issue(actor=w.ann, ticket=first, kind="quote", number="Q-1", amount="100.50")
    with _at(2026, 11, 3, 10, 0):
        ticket_reassign(actor=w.head, ticket=first, owner=w.bob, reason="holiday")
        document_issue(actor=w.bob, ticket=first, kind="invoice", number="I-1", amount="99.50")
    by_owner = {(r["owner"], r["currency"]): r
                for r in rollup.rolled("K3", november, Cut()).rollup("owner", "currency")}
    assert by_owner[(w.ann.pk, "RUB")]["tickets"] == 1
    assert by_owner[(w.bob.pk, "RUB")]["tickets"] == 1
    total = rollup.rolled("K3", november, Cut()).rollup()[0]
    assert (total["documents"], total["tickets"], total["amount"]) == (2, 1, Decimal("200.00"))
    # the reassignment changed no past figure: Ann keeps her document and her lead
    assert rollup.rolled("K2", november, Cut(seller=w.ann.pk)).total("leads") == 2
    with _at(2026, 11, 4, 10, 0):
        lost = ticket_close_lost(actor=w.bob, ticket=first, reason="price")
    assert rollup.rolled("K10", november, Cut()).total("lost") == 1
    assert rollup.rolled("LOST", november, Cut()).total("lost") == 1
    with _at(2026, 11, 5, 10, 0):
        ticket_reopen(actor=w.head, ticket=lost, reason="came back")
    assert rollup.rolled("K10", november, Cut()).total("lost") == 0  # undone by the reopening
    assert rollup.rolled("LOST", november, Cut()).rows == []
    with _at(2026, 11, 6, 10, 0):
        ticket_void(actor=w.head, ticket=second, reason="a duplicate")
    leads = rollup.rolled("K2", november, Cut())
    assert (leads.total("leads"), leads.total("void")) == (1, 1)
    assert leads.rollup() == k2_leads(november, Cut()).rollup()
    assert rollup.rolled("K3", november, Cut()).rollup() == k3_documents(november,
                                                                         Cut()).rollup()
    assert rollup.rolled("K10", november, Cut()).rollup() == k10_outcomes(november,
                                                                          Cut()).rollup()
    assert not list(rollup.differences(november, Cut(team=w.sales.pk)))


def test_rolled_tables_list_no_tickets(world: factories.World) -> None:
    with _at(2026, 11, 2, 10, 0):
        ticket = world.ticket(owner=world.ann)
        document_issue(actor=world.ann, ticket=ticket, kind="quote", number="Q-1", amount="1")
    with pytest.raises(ValueError, match="do not list tickets"):
        rollup.rolled("K2", Period.parse("2026-11"), Cut()).ticket_ids("leads")
    with pytest.raises(ValueError, match="distinct tickets only by"):
        rollup.rolled("K3", Period.parse("2026-11"), Cut()).rollup("kind")


def test_table_reads_the_history_until_the_rollups_are_ready(world: factories.World) -> None:
    w = world
    with _at(2026, 11, 2, 10, 0):
        w.ticket(owner=w.ann, channel="phone")
    november = Period.parse("2026-11")
    RollupState.objects.filter(pk=1).update(ready=False)
    # cells wiped behind the application's back: the figure still answers from the history
    Cell.objects.all().delete()
    TicketRollup.objects.all().delete()
    assert rollup.table("K2", november, Cut()).total("leads") == 1
    assert rollup.table("K2", november, Cut()).facts[0].ticket != 0
    out = io.StringIO()
    call_command("analytics", "rebuild", "--batch", "1", stdout=out)
    assert "tickets" in out.getvalue()
    assert rollup.is_ready()
    assert isinstance(rollup.table("K2", november, Cut()), rollup.RolledTable)
    assert rollup.table("K2", november, Cut()).total("leads") == 1


def test_verify_exits_non_zero_on_a_mismatch(world: factories.World) -> None:
    w = world
    with _at(2026, 11, 2, 10, 0):
        w.ticket(owner=w.ann, channel="phone")
    out = io.StringIO()
    call_command("analytics", "verify", "--period", "2026-11", stdout=out)
    assert "agree" in out.getvalue()
    with connection.cursor() as cursor:  # a cell changed behind the rollups' back
        cursor.execute(f"UPDATE {Cell._meta.db_table} SET v0 = v0 + 1 WHERE figure = 'K2'")
    with pytest.raises(CommandError):
        call_command("analytics", "verify", "--period", "2026-11", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("analytics", "verify", "--period", "2026-13", stdout=io.StringIO())
    with connection.cursor() as cursor:  # the cell put right, a summary changed instead
        cursor.execute(f"UPDATE {Cell._meta.db_table} SET v0 = v0 - 1 WHERE figure = 'K2'")
    call_command("analytics", "verify", "--period", "2026-11", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TicketSummary._meta.db_table} SET channel = 'email'")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("analytics", "verify", "--period", "2026-11", stdout=io.StringIO(),
                     stderr=err)
    assert "K7 lead_sale" in err.getvalue()


def test_verify_sees_a_wrong_monthly_cell_and_rebuild_monthly_mends_it(
        world: factories.World) -> None:
    w = world
    with _at(2026, 11, 2, 10, 0):
        ticket = w.ticket(owner=w.ann, channel="phone")
        document_issue(actor=w.ann, ticket=ticket, kind="quote", number="Q-1", amount="10")
    with _at(2026, 11, 20, 10, 0):
        call_command("analytics", "verify", "--period", "2026-11", stdout=io.StringIO())
        MonthCell.objects.filter(figure="K2", person=w.ann.pk).update(v0=5)
        err = io.StringIO()
        with pytest.raises(CommandError):
            call_command("analytics", "verify", "--period", "2026-11", stdout=io.StringIO(),
                         stderr=err)
        assert "K2 by owner (monthly)" in err.getvalue()
        # the daily rows still agree: only the monthly level is off
        assert "(daily)" not in err.getvalue()
        out = io.StringIO()
        call_command("analytics", "rebuild", "--monthly", stdout=out)
        assert "monthly cells worked out" in out.getvalue()
        assert MonthCell.objects.get(figure="K2", person=w.ann.pk).v0 == 1
        call_command("analytics", "verify", "--period", "2026-11", stdout=out)
        assert out.getvalue().strip().endswith("rollups ready")
        RollupState.objects.filter(pk=1).update(ready=False)
        with pytest.raises(CommandError, match="not built by this version"):
            call_command("analytics", "rebuild", "--monthly", stdout=io.StringIO())
        # rolled up by an earlier version: the tickets' rows lack their monthly cells, which
        # the next event of each would fail to take out, so only a whole rebuild will do
        RollupState.objects.filter(pk=1).update(ready=True, monthly_kept=False)
        with pytest.raises(CommandError, match="not built by this version"):
            call_command("analytics", "rebuild", "--monthly", stdout=io.StringIO())
        call_command("analytics", "rebuild", stdout=io.StringIO())
        assert monthly.is_kept() and monthly.is_ready()


def test_monthly_cells_wait_for_a_rebuild_and_the_daily_rows_answer_meanwhile(
        world: factories.World) -> None:
    w = world
    with _at(2026, 11, 2, 10, 0):
        w.ticket(owner=w.ann, channel="phone")
    november = Period.parse("2026-11")
    # as after the upgrade that added the monthly cells to a database with tickets
    RollupState.objects.filter(pk=1).update(monthly_ready=False, monthly_kept=False)
    MonthCell.objects.all().delete()
    TicketRollup.objects.update(monthly=[])
    with _at(2026, 11, 20, 10, 0):
        assert monthly.split(november, Cut()) is None
        assert rollup.table("K2", november, Cut(), ("owner",)).total("leads") == 1
        assert not list(rollup.differences(november))
        with pytest.raises(CommandError, match="not built by this version"):
            call_command("analytics", "rebuild", "--monthly", stdout=io.StringIO())
        call_command("analytics", "rebuild", stdout=io.StringIO())
        assert monthly.split(november, Cut()) is not None
        assert TicketRollup.objects.exclude(monthly=[]).exists()
        assert monthly.cell_table("K2", november, Cut(), ("owner",)).total("leads") == 1


def test_the_dashboards_stuck_list_keeps_the_exact_order_with_ties(
        world: factories.World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard lists the oldest stuck stays only; starts with no working time between
    them have the same business age, and the exact order then goes by ticket."""
    w = world
    starts = [(11, 15, 12, 0), (11, 14, 11, 0), (11, 14, 10, 0), (11, 13, 17, 30),
              (11, 16, 10, 0)]  # Sun, Sat, Sat, Fri evening, Mon: created in this order
    for month, day, hour, minute in starts:
        with _at(2026, month, day, hour, minute):
            w.ticket(owner=w.ann)
    november = Period.parse("2026-11")
    with _at(2026, 11, 17, 12, 0):
        exact = k9_time_in_stage(november, Cut())
        assert len(exact.stuck) == 5
        for shown in (1, 2, 3, 5):
            monkeypatch.setattr(fast, "STUCK_SHOWN", shown)
            timing = fast.k9_timing(november, Cut())
            assert timing.stuck == exact.stuck[:shown], shown
            assert timing.stuck_total == 5
        assert not list(fast.differences(november))


def test_k9_buckets_keep_the_order_of_the_lengths_and_hold_one_value_below_128_seconds(
        ) -> None:
    lengths = [*range(0, 300), 1000, 32_400, 32_401, 86_399, 10**6, 10**7, 2**40 - 1]
    buckets = [monthly.bucket(s) for s in lengths]
    assert buckets == sorted(buckets)  # a longer stay is never in an earlier bucket
    assert all(monthly.bucket(s) == s for s in range(128))  # the value itself
    assert monthly.bucket(128) == 128 and monthly.bucket(255) == monthly.bucket(254) == 191
    assert monthly.bucket(256) == 192
    # about 64 buckets per doubling from 128 s on: each at most 1/64 of its values wide
    for s in (1000, 32_400, 10**6, 10**7):
        same = [t for t in range(s - s // 32, s + s // 32)
                if monthly.bucket(t) == monthly.bucket(s)]
        assert max(same) - min(same) <= s // 64 + 1
    assert monthly.bucket(-5) < monthly.bucket(0)  # a negative length (bad clocks) sorts first
