"""K12 control and the growth points (docs/analytics-timing.md has every definition).

K12:
- ``next_task_coverage``: open tickets now, and how many have an open task whose assignee is
  active (every task has a due time). Promise 2 makes it 100%; it is computed, not assumed, so
  a broken promise shows as ``uncovered`` tickets with their drill-down.
- ``overdue_rate``: tasks open at a moment and how many of them were past due then (due time
  as it stood at that moment: a later reschedule is undone from its event).
- ``sla_compliance``: stays of stages with an SLA closed in the period, and how many closed by
  their due time. A pause moves the due time on (the clock stops while waiting for the client);
  a stay closed while paused is within its SLA if business time was left when it paused.
- ``escalations``: escalations raised and acknowledged in the period, from their events.

Growth points: lead volume by channel against the previous period, average deal size by month,
the stage where the most value is lost, and the next-step share of each stage against the
previous period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q

from estafeta.core import clock
from estafeta.domain.codes import EventType, MoveKind, StageSemantic, TaskStatus, TicketStatus
from estafeta.history.models import Event
from estafeta.tasks.models import Task
from estafeta.tickets.models import StageVisit, Ticket

from .figures import (
    Fact,
    Table,
    _in_period,
    _money,
    _not_void,
    _person_filter,
    _standing,
    _ticket_filter,
    k2_leads,
    k4_transitions,
    k10_outcomes,
)
from .period import Cut, Period


def share(part: float | Decimal, whole: float | Decimal) -> float | None:
    """``part / whole`` as a fraction, ``None`` when there is nothing to divide."""
    return float(part) / float(whole) if whole else None


# --- K12 next-task coverage -----------------------------------------------------------------


def next_task_coverage(cut: Cut) -> Table:
    """Open tickets now by pipeline and owner: ``open_tickets``, ``covered`` (an open task with
    an active assignee) and ``uncovered``. Current state by nature: the figure is "now"."""
    valid = Task.objects.filter(ticket_id=OuterRef("pk"), status=TaskStatus.OPEN,
                                assignee__is_active=True)
    rows = (Ticket.objects.filter(status=TicketStatus.OPEN)
            .filter(_person_filter(cut, "owner"), _ticket_filter(cut, ""))
            .annotate(covered=Exists(valid))
            .values_list("pk", "pipeline__code", "owner_id", "covered"))
    facts = tuple(Fact(pk, {"pipeline": pipeline, "owner": owner},
                       {"open_tickets": 1, "covered": int(covered), "uncovered": int(not covered)})
                  for pk, pipeline, owner, covered in rows)
    return Table("K12 coverage", "tickets", Period.days(clock.now().date(), clock.now().date()),
                 cut, ("pipeline", "owner"), ("open_tickets", "covered", "uncovered"), facts)


# --- K12 overdue rate -----------------------------------------------------------------------


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def overdue_rate(at: datetime, cut: Cut) -> Table:
    """Tasks open at ``at`` by pipeline and assignee: ``open_tasks`` and ``overdue`` (due
    strictly before ``at``). Cut: ``seller``/``team`` is the assignee and their team."""
    rows = list(Task.objects
                .filter(created_at__lte=at)
                .filter(Q(done_at__isnull=True) | Q(done_at__gt=at))
                .exclude(ticket__status=TicketStatus.VOID)
                .filter(_person_filter(cut, "assignee"), _ticket_filter(cut, "ticket__"))
                .values_list("pk", "ticket_id", "ticket__pipeline__code", "assignee_id",
                             "due_at"))
    # A task moved after ``at`` was due, at ``at``, where its first later move took it from;
    # a task handed to someone else after ``at`` still counts for its current assignee.
    due_then: dict[int, datetime] = {}
    tickets = {row[1] for row in rows}
    for payload in (Event.objects
                    .filter(type=EventType.TASK_RESCHEDULED, occurred_at__gt=at,
                            ticket_id__in=tickets)
                    .order_by("-occurred_at", "-seq").values_list("payload", flat=True)):
        due_then[int(payload["task"])] = _moment(payload["from"])
    facts = tuple(
        Fact(ticket, {"pipeline": pipeline, "assignee": assignee},
             {"open_tasks": 1, "overdue": int(due_then.get(pk, due) < at)})
        for pk, ticket, pipeline, assignee, due in rows)
    return Table("K12 overdue", "tasks", Period.days(at.date(), at.date()), cut,
                 ("pipeline", "assignee"), ("open_tasks", "overdue"), facts)


# --- K12 SLA compliance ---------------------------------------------------------------------


def sla_compliance(period: Period, cut: Cut) -> Table:
    """Stays of stages with an SLA that closed in the period, by pipeline, stage and executor:
    ``closed``, ``within`` (closed at or before the SLA due time) and ``late``."""
    rows = (StageVisit.objects
            .filter(stage__semantic=StageSemantic.OPEN, closed_at__gte=period.start,
                    closed_at__lt=period.end)
            .exclude(stage__sla="")
            .exclude(ticket__status=TicketStatus.VOID)
            .filter(Q(sla_due_at__isnull=False) | Q(sla_left__isnull=False))
            .filter(_person_filter(cut, "executor"), _ticket_filter(cut, "ticket__"))
            .values_list("ticket_id", "ticket__pipeline__code", "stage__code", "executor_id",
                         "closed_at", "sla_due_at", "sla_left"))
    facts = []
    for ticket, pipeline, stage, executor, closed_at, due, left in rows:
        if due is not None:
            within = closed_at is not None and closed_at <= due
        else:  # closed while paused: within if business time was left when it paused
            within = left is not None and left > timedelta()
        facts.append(Fact(ticket, {"pipeline": pipeline, "stage": stage, "executor": executor},
                          {"closed": 1, "within": int(within), "late": int(not within)}))
    return Table("K12 SLA", "stays", period, cut, ("pipeline", "stage", "executor"),
                 ("closed", "within", "late"), tuple(facts))


# --- K12 escalations ------------------------------------------------------------------------


def escalations(period: Period, cut: Cut) -> Table:
    """Escalations raised and acknowledged in the period (each by the moment of its own event),
    by reason, level and the ticket's owner at that moment."""
    from estafeta.control.models import Escalation

    rows = list(Event.objects
                .filter(_in_period(period, "occurred_at"), _not_void(),
                        type__in=(EventType.ESCALATION_RAISED,
                                  EventType.ESCALATION_ACKNOWLEDGED))
                .filter(_person_filter(cut, "owner"), _ticket_filter(cut, "ticket__"))
                .values_list("ticket_id", "type", "owner_id", "payload"))
    reasons = dict(Escalation.objects.filter(pk__in={int(r[3]["escalation"]) for r in rows})
                   .values_list("pk", "reason"))
    facts = []
    for ticket, type_, owner, payload in rows:
        raised = type_ == EventType.ESCALATION_RAISED
        facts.append(Fact(ticket, {"reason": reasons.get(int(payload["escalation"])),
                                   "level": payload.get("level"), "owner": owner},
                          {"raised": 1} if raised else {"acknowledged": 1}))
    return Table("K12 escalations", "escalations", period, cut, ("reason", "level", "owner"),
                 ("raised", "acknowledged"), tuple(facts))


# --- growth points --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A figure for the period and the previous one, row by row."""

    current: Table
    previous: Table
    rows: list[dict[str, Any]]


def _compare(current: Table, previous: Table, keys: tuple[str, ...], column: str
             ) -> list[dict[str, Any]]:
    now = {tuple(r[k] for k in keys): r[column] for r in current.rollup(*keys)}
    before = {tuple(r[k] for k in keys): r[column] for r in previous.rollup(*keys)}
    out = []
    for key in sorted(set(now) | set(before), key=lambda k: tuple(str(x) for x in k)):
        a, b = now.get(key, 0), before.get(key, 0)
        out.append({**dict(zip(keys, key, strict=True)), column: a, "previous": b,
                    "change": a - b, "change_share": share(a - b, b)})
    return out


def lead_volume_by_channel(period: Period, cut: Cut, *, figure: Any = k2_leads) -> Comparison:
    """K2 leads by channel in the period against the previous period (``figure``: K2 or its
    rollup)."""
    current, previous = figure(period, cut), figure(period.previous(), cut)
    return Comparison(current, previous, _compare(current, previous, ("channel",), "leads"))


def _month_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def average_deal_by_month(period: Period, cut: Cut, *, months: int = 6,
                          figure: Any = k10_outcomes) -> list[dict[str, Any]]:
    """Won deals, revenue and average deal (revenue / won) per month and currency, for the
    ``months`` months ending with the month of the period's last day (from K10)."""
    out = []
    for back in range(months - 1, -1, -1):
        first = _month_back(period.last, back)
        month = Period.month(first.year, first.month)
        for row in figure(month, cut).rollup("currency"):
            if row["won"]:
                out.append({"month": month.label, "currency": row["currency"],
                            "won": row["won"], "revenue": row["revenue"],
                            "average": (Decimal(row["revenue"]) / row["won"]).quantize(
                                Decimal("0.01"))})
    return out


def lost_value_by_stage(period: Period, cut: Cut) -> Table:
    """Tickets lost in the period (an outcome undone by a later reopening counts nowhere) by
    the stage they were lost in: ``lost`` and ``lost_value`` (the ticket's amount), per
    pipeline, stage and currency. ``largest_loss`` picks the stage."""
    q = Q()
    for name in ("segment", "territory"):
        value = getattr(cut, name)
        if value is not None:
            q &= Q(**{f"payload__{name}": value})
    rows = list(Event.objects
                .filter(_in_period(period, "occurred_at"), _not_void(),
                        type=EventType.TICKET_LOST)
                .filter(q, _person_filter(cut, "owner"),
                        _ticket_filter(cut, "ticket__", classified_by_creation=False))
                .values_list("ticket_id", "seq", "ticket__pipeline__code", "payload",
                             "ticket__currency"))
    standing = _standing((r[0], r[1]) for r in rows)
    facts = tuple(
        Fact(ticket, {"pipeline": pipeline, "stage": payload.get("at_stage"),
                      "currency": payload.get("currency") or currency},
             {"lost": 1, "lost_value": _money(payload.get("amount"))})
        for ticket, seq, pipeline, payload, currency in rows if (ticket, seq) in standing)
    return Table("Lost value by stage", "tickets, money", period, cut,
                 ("pipeline", "stage", "currency"), ("lost", "lost_value"), facts)


def largest_loss(table: Table) -> dict[str, Any] | None:
    """The row with the most lost value (ties: the most tickets, then the first by key)."""
    rows = [r for r in table.rows if r["lost_value"] or r["lost"]]
    return max(rows, key=lambda r: (r["lost_value"], r["lost"]), default=None)


NEXT_STEP = (MoveKind.FORWARD, MoveKind.SKIP)
STAGE_KEYS = ("pipeline", "from_stage", "kind")  # the K4 keys ``stage_conversion`` reads


def stage_conversion(period: Period, cut: Cut, *, figure: Any = k4_transitions) -> Comparison:
    """Per stage, the tickets that left it in the period (K4 moves out of it: forward, skip,
    backward, closed as lost; reopenings leave no open stage) and how many went on to a later
    stage (forward or skip, into the won stage included): ``next_share`` = next / exits, for
    the period and the previous one."""

    def rows(table: Table) -> dict[tuple[str, str], dict[str, int]]:
        out: dict[tuple[str, str], dict[str, int]] = {}
        for row in table.rollup(*STAGE_KEYS):
            if row["kind"] == MoveKind.REOPEN:
                continue
            cell = out.setdefault((row["pipeline"], row["from_stage"]), {"exits": 0, "next": 0})
            cell["exits"] += row["moves"]
            if row["kind"] in NEXT_STEP:
                cell["next"] += row["moves"]
        return out

    current, previous = figure(period, cut), figure(period.previous(), cut)
    now, before = rows(current), rows(previous)
    out = []
    for key in sorted(set(now) | set(before)):
        a, b = now.get(key, {"exits": 0, "next": 0}), before.get(key, {"exits": 0, "next": 0})
        share_now, share_before = share(a["next"], a["exits"]), share(b["next"], b["exits"])
        out.append({"pipeline": key[0], "stage": key[1], "exits": a["exits"],
                    "next": a["next"], "next_share": share_now,
                    "previous_exits": b["exits"], "previous_next": b["next"],
                    "previous_share": share_before,
                    "change": (share_now - share_before
                               if share_now is not None and share_before is not None
                               else None)})
    return Comparison(current, previous, out)
