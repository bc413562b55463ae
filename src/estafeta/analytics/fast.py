"""K7, K8, K9 and K12 for the dashboard from the per-ticket summaries and per-stay spans (or
from current state with SQL aggregates), equal to the exact figures (docs/analytics-scale.md).

Each function answers what the dashboard shows (rows by the figure's keys, totals), with one or
a few GROUP BY queries; its tables carry no tickets (drill-downs read the exact figures). When
the rollups are not ready, or a case the stored rows cannot answer exactly comes up (a window
other than 14 days for lead→sale, a stage entry or outcome dated after ``now``, summaries read
against other funnel steps than the pipelines' current ones, ``stuck_after``), the exact figure
answers instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)

from estafeta.accounts.models import User
from estafeta.calendars.selectors import calendar_for
from estafeta.core import clock
from estafeta.domain.codes import EventType, TaskStatus, TicketStatus
from estafeta.history.models import Event
from estafeta.pipelines.models import PipelineVersion
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket

from . import control, conversions, monthly, timing
from .figures import Fact, Table, _person_filter, _ticket_filter
from .models import StaySpan, TicketSummary
from .period import Cut, Period
from .rollup import is_ready
from .summary import DEFAULT_WINDOW, LOST, OPEN, WON, steps_key

STUCK_SHOWN = 100  # stuck stays listed on the dashboard (the export lists them all)


def no_jit() -> None:
    """PostgreSQL, for this connection: no JIT compilation, and enough sort memory for a
    GROUP BY over a year of summaries or spans. The planner would compile those queries (a
    quarter of a second, more than it saves) and sort them on disk with the default 4 MB."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")
            cursor.execute("SET work_mem = '64MB'")


def _one(condition: Q) -> Sum:
    return Sum(Case(When(condition, then=Value(1)), default=Value(0),
                    output_field=IntegerField()))


def _dims(cut: Cut) -> Q:
    q = Q()
    for name in ("pipeline", "channel", "segment", "territory"):
        value = getattr(cut, name)
        if value is not None:
            q &= Q(**{name: value})
    return q


def _person(cut: Cut, field: str) -> Q:
    q = Q()
    if cut.seller is not None:
        q &= Q(**{field: cut.seller})
    if cut.team is not None:
        q &= Q(**{f"{field}__in": User.objects.filter(team_id=cut.team).values("pk")})
    return q


def _int(value: Any) -> int:
    return int(value or 0)


def _rows(qs: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in qs]


# --- K7 --------------------------------------------------------------------------------------

ACTIVITY_PARTS = {"email_call": ("email", conversions.k7_email_to_call,
                                 "K7 email→call"),
                  "call_meeting": ("call", conversions.k7_call_to_meeting,
                                   "K7 call→presentation")}


def k7_activity(part: str, period: Period, cut: Cut, *, window: timedelta = DEFAULT_WINDOW,
                now: datetime | None = None) -> Table:
    """A K7 activity cohort (email→call or call→presentation): from the monthly cells for a
    period of whole months (``monthly.k7_activity``), else from the summaries."""
    _prefix, exact, title = ACTIVITY_PARTS[part]
    now = now or clock.now()
    if not is_ready():
        return exact(period, cut, window=window, now=now)
    if window == DEFAULT_WINDOW:
        found = monthly.k7_activity(part, period, cut, now, lambda tail: _k7_activity_daily(
            part, tail, cut, window, now).facts)
        if found is not None:
            return Table(title, "tickets", period, cut, ("performer",),
                         ("cohort", "converted", "immature"), tuple(
                             Fact(0, {"performer": person},
                                  {"cohort": c, "converted": k, "immature": i})
                             for person, (c, k, i) in found))
    return _k7_activity_daily(part, period, cut, window, now)


def _k7_activity_daily(part: str, period: Period, cut: Cut, window: timedelta,
                       now: datetime) -> Table:
    """A K7 activity cohort from the summaries (one GROUP BY)."""
    prefix, _exact, title = ACTIVITY_PARTS[part]
    at, by, nxt = f"{prefix}_at", f"{prefix}_by", f"{prefix}_next"
    rows = (TicketSummary.objects
            .filter(_dims(cut), _person(cut, by), void=False,
                    **{f"{at}__gte": period.start, f"{at}__lt": period.end})
            .values(by).order_by(by)
            .annotate(cohort=Count("pk"),
                      converted=_one(Q(**{f"{nxt}__isnull": False,
                                          f"{nxt}__lte": F(at) + window})),
                      immature=_one(Q(**{f"{at}__gt": now - window}))))
    facts = tuple(Fact(0, {"performer": r[by]},
                       {"cohort": r["cohort"], "converted": _int(r["converted"]),
                        "immature": _int(r["immature"])}) for r in rows)
    return Table(title, "tickets", period, cut, ("performer",),
                 ("cohort", "converted", "immature"), facts)


def _future(qs: QuerySet[TicketSummary], now: datetime) -> bool:
    """Whether a member has an outcome or a stage entry dated after ``now`` (the stored
    results are as of all records; the exact figure reads them as of ``now``)."""
    return qs.filter(horizon__gt=now).exists()


def k7_lead_to_sale(period: Period, cut: Cut, *, window: timedelta = DEFAULT_WINDOW,
                    now: datetime | None = None, channels: bool = True) -> Table:
    """K7 lead→sale from the summaries: won/lost/open as the ticket stood 14 days after its
    creation (stored), or now for a cohort member still inside its window; a period of whole
    months from the monthly cells (``monthly.k7_lead_to_sale``; ``channels`` False: rows by
    owner only there, for a caller that adds the channels up)."""
    now = now or clock.now()
    members = TicketSummary.objects.filter(
        _dims(cut), _person(cut, "lead_owner"), void=False, lead_at__gte=period.start,
        lead_at__lt=period.end)
    if not is_ready() or window != DEFAULT_WINDOW or _future(members, now):
        return conversions.k7_lead_to_sale(period, cut, window=window, now=now)
    found = monthly.k7_lead_to_sale(period, cut, now,
                                    lambda tail: _k7_lead_daily(tail, cut, window, now).facts,
                                    channels)
    if found is not None:
        keys = ("channel", "owner") if channels else ("owner",)
        return _lead_table(period, cut, tuple(
            Fact(0, dict(zip(keys, (channel, owner)[-len(keys):], strict=True)),
                 dict(zip(("cohort", WON, LOST, OPEN, "immature"), row, strict=True)))
            for (channel, owner), row in found), keys)
    return _k7_lead_daily(period, cut, window, now)


def _lead_table(period: Period, cut: Cut, facts: tuple[Fact, ...],
                keys: tuple[str, ...] = ("channel", "owner")) -> Table:
    return Table("K7 lead→sale", "tickets", period, cut, keys,
                 ("cohort", WON, LOST, OPEN, "immature"), facts)


def _k7_lead_daily(period: Period, cut: Cut, window: timedelta, now: datetime) -> Table:
    """K7 lead→sale from the summaries (one GROUP BY)."""
    members = TicketSummary.objects.filter(
        _dims(cut), _person(cut, "lead_owner"), void=False, lead_at__gte=period.start,
        lead_at__lt=period.end)
    mature = Q(lead_at__lte=now - window)
    columns = {status: _one((mature & Q(status_window=status))
                            | (~mature & Q(status_final=status)))
               for status in (WON, LOST, OPEN)}
    rows = _rows(members.values("channel", "lead_owner").order_by("channel", "lead_owner")
            .annotate(cohort=Count("pk"), immature=_one(~mature), **columns))
    return _lead_table(period, cut, tuple(
        Fact(0, {"channel": r["channel"], "owner": r["lead_owner"]},
             {"cohort": r["cohort"], **{s: _int(r[s]) for s in (WON, LOST, OPEN)},
              "immature": _int(r["immature"])}) for r in rows))


K7_PARTS = ("email_call", "call_meeting", "lead_sale")


def k7_part(part: str, period: Period, cut: Cut, *, channels: bool = True) -> Table:
    """One K7 cohort table (``channels`` False: lead→sale may add the channels up)."""
    if part == "lead_sale":
        return k7_lead_to_sale(period, cut, channels=channels)
    return k7_activity(part, period, cut)


# --- K8 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountedFunnel(conversions.Funnel):
    """K8 from the summaries: the steps' counts per pipeline (no tickets)."""

    counts: Any = None  # pipeline -> [(reached, reached with the next step)] per step

    def steps(self, pipeline: str, **cell: Any) -> list[dict[str, Any]]:
        if cell:
            raise ValueError("a counted funnel answers whole pipelines: ask the exact figure")
        order = self.stages.get(pipeline, ())
        counted = self.counts.get(pipeline) or [(0, 0)] * len(order)
        cohort = counted[0][0] if counted else 0
        rows = []
        for i, stage in enumerate(order):
            reached, both = counted[i]
            last = i + 1 == len(order)
            rows.append({"stage": stage, "reached": reached,
                         "next_step": None if last else conversions.rate(both, reached),
                         "cumulative": conversions.rate(reached, cohort)})
        return rows


def _bit(i: int) -> Q:
    return Q(**{f"bit{i}": 1 << i})


def k8_funnel(period: Period, cut: Cut, *, mode: str = conversions.STRICT,
              now: datetime | None = None) -> conversions.Funnel:
    """K8 from the monthly cells for a period of whole months (``monthly.k8_counts``: the
    steps' counts, no facts), else from the summaries (``conversions.k8_funnel`` defines
    it)."""
    if mode not in (conversions.STRICT, conversions.ANY_ORDER):
        raise ValueError(f"unknown funnel mode {mode!r}")
    now = now or clock.now()
    steps = conversions._pipeline_steps(cut)
    if not is_ready() or _future(_funnel_members(period, cut), now):
        return conversions.k8_funnel(period, cut, mode=mode, now=now)

    def daily(part: Period) -> dict[str, list[tuple[int, int]]] | None:
        found = _k8_daily(part, cut, steps, mode)
        return None if found is None else found[0]

    counts = monthly.k8_counts(period, cut, steps, mode == conversions.STRICT, daily)
    facts: tuple[Fact, ...] = ()
    if counts is None:
        found = _k8_daily(period, cut, steps, mode)
        if found is None:  # summaries read against other steps: the history answers
            return conversions.k8_funnel(period, cut, mode=mode, now=now)
        counts, facts = found
    table = Table(f"K8 funnel ({mode})", "tickets", period, cut, ("pipeline", "stage", "owner"),
                  ("reached",), facts)
    return CountedFunnel(table, steps, mode, counts)


def _funnel_members(period: Period, cut: Cut) -> QuerySet[TicketSummary]:
    return TicketSummary.objects.filter(
        _dims(cut), _person(cut, "lead_owner"), void=False, funnel_at__gte=period.start,
        funnel_at__lt=period.end)


def _k8_daily(period: Period, cut: Cut, steps: dict[str, tuple[str, ...]], mode: str
              ) -> tuple[dict[str, list[tuple[int, int]]], tuple[Fact, ...]] | None:
    """K8's counts per pipeline and step and its facts per owner from the summaries; None
    when a member was read against other steps than the pipeline's current ones."""
    members = _funnel_members(period, cut)
    current = {p: steps_key(order) for p, order in steps.items()}
    stale = members.exclude(
        Q(*[Q(pipeline=p, steps=k) for p, k in current.items()], _connector=Q.OR)
        if current else Q(pk__in=[]))
    if stale.exists():
        return None
    won = Q(status_final=WON)
    counts: dict[str, list[tuple[int, int]]] = {}
    facts: list[Fact] = []
    for pipeline, order in sorted(steps.items()):
        n = len(order)
        reached: dict[str, Any] = {}
        both: dict[str, Any] = {}
        qs = members.filter(pipeline=pipeline)
        if mode == conversions.STRICT:
            for i in range(n - 1):
                reached[f"r{i}"] = _one(Q(strict_n__gt=i))
                both[f"b{i}"] = _one(Q(strict_n__gt=i + 1)) if i + 2 < n else \
                    _one(Q(strict_last=True) & won)
            reached[f"r{n - 1}"] = _one(Q(strict_last=True) & won)
        else:
            qs = qs.annotate(**{f"bit{i}": F("any_mask").bitand(1 << i) for i in range(n - 1)})
            last = Q(any_last=True) & won
            for i in range(n - 1):
                reached[f"r{i}"] = _one(_bit(i))
                both[f"b{i}"] = _one(_bit(i) & (_bit(i + 1) if i + 2 < n else last))
            reached[f"r{n - 1}"] = _one(last)
        rows = _rows(qs.values("lead_owner").order_by("lead_owner").annotate(**reached, **both))
        totals = [(sum(_int(r[f"r{i}"]) for r in rows),
                   sum(_int(r.get(f"b{i}")) for r in rows)) for i in range(n)]
        if rows:
            counts[pipeline] = totals
        for r in rows:
            facts.extend(Fact(0, {"pipeline": pipeline, "stage": stage,
                                  "owner": r["lead_owner"]}, {"reached": _int(r[f"r{i}"])})
                         for i, stage in enumerate(order) if _int(r[f"r{i}"]))
    return counts, tuple(facts)


# --- K9 ----------------------------------------------------------------------------------------


class _Percentile(Aggregate):
    """PostgreSQL's ordered-set aggregates (``percentile_cont`` / ``percentile_disc``)."""

    template = "%(function)s(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, function: str, share: float) -> None:
        super().__init__(expression, function=function, share=share)


@dataclass(frozen=True)
class StageTiming:
    """What the dashboard shows of K9: a row per pipeline and stage (``rows`` as
    ``TimeInStage.rows`` with ``shortest``/``longest`` for the chart), the stuck stays (at
    most ``STUCK_SHOWN``, the oldest) and how many there are."""

    at: datetime
    rows: list[dict[str, Any]]
    stuck: tuple[timing.Stuck, ...]
    stuck_total: int


def _seconds(value: Any) -> timedelta | None:
    return None if value is None else timedelta(seconds=float(value))


def _spans(cut: Cut) -> QuerySet[StaySpan]:
    return StaySpan.objects.filter(_dims(cut), _person(cut, "executor"), void=False)


def _past_due(moment: datetime) -> Q:
    return (Q(sla_due_at__isnull=False, sla_due_at__lte=moment)
            | Q(closed_at__isnull=True, paused_at__isnull=False, sla_left__isnull=False,
                sla_left__lte=timedelta()))


def k9_timing(period: Period, cut: Cut, *, at: datetime | None = None) -> StageTiming:
    """K9 from the spans: closed stays' count, median, 80th percentile, shortest and longest
    (PostgreSQL: in SQL; SQLite: over the durations), open stays' count and oldest age (the
    earliest start per calendar, aged with the calendar), stuck stays past their SLA."""
    moment = at or min(clock.now(), period.end)
    if not is_ready():
        return _exact_timing(period, cut, moment)
    closed = _spans(cut).filter(closed_at__gte=period.start, closed_at__lt=period.end)
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def row(pipeline: str, stage: str) -> dict[str, Any]:
        return out.setdefault((pipeline, stage), {
            "pipeline": pipeline, "stage": stage, "closed": 0, "median": None, "p80": None,
            "shortest": None, "longest": None, "open": 0, "oldest_open": None, "stuck": 0})

    by_month = monthly.k9_closed(period, cut)
    if by_month is not None:
        for (pipeline, stage), figures in by_month.items():
            row(pipeline, stage).update(figures)
    elif connection.vendor == "postgresql":
        for r in _rows(closed.values("pipeline", "stage").order_by("pipeline", "stage")
                       .annotate(n=Count("pk"), low=Min("seconds"), high=Max("seconds"),
                            mid=_Percentile("seconds", "percentile_cont", 0.5),
                            p80=_Percentile("seconds", "percentile_disc", 0.8))):
            row(r["pipeline"], r["stage"]).update(
                closed=r["n"], median=_seconds(r["mid"]), p80=_seconds(r["p80"]),
                shortest=_seconds(r["low"]), longest=_seconds(r["high"]))
    else:
        spans: dict[tuple[str, str], list[timedelta]] = defaultdict(list)
        for pipeline, stage, seconds in closed.values_list("pipeline", "stage", "seconds"):
            spans[(pipeline, stage)].append(timedelta(seconds=float(seconds or 0)))
        for (pipeline, stage), values in spans.items():
            row(pipeline, stage).update(
                closed=len(values), median=timing.median(values),
                p80=timing.percentile(values, 0.8), shortest=min(values), longest=max(values))
    # open at ``moment``: still open (a partial index), or closed after it (by closed_at)
    still = [_spans(cut).filter(closed_at__isnull=True, entered_at__lte=moment),
             _spans(cut).filter(closed_at__gt=moment, entered_at__lte=moment)]
    groups = [r for qs in still for r in _rows(
        qs.values("pipeline", "stage", "version_id").order_by("pipeline", "stage", "version_id")
        .annotate(n=Count("pk"), first=Min("entered_at"), stuck=_one(_past_due(moment))))]
    calendars = {v.pk: calendar_for(v) for v in PipelineVersion.objects.filter(
        pk__in=sorted({r["version_id"] for r in groups}))}
    for r in groups:
        cell = row(r["pipeline"], r["stage"])
        age = calendars[r["version_id"]].between(r["first"], moment)
        age = timedelta(seconds=int(age.total_seconds()))
        cell["open"] += r["n"]
        cell["stuck"] += _int(r["stuck"])
        cell["oldest_open"] = age if cell["oldest_open"] is None else max(cell["oldest_open"],
                                                                          age)
    rows = [out[key] for key in sorted(out)]
    stuck_total = sum(r["stuck"] for r in rows)
    return StageTiming(moment, rows, _oldest_stuck(
        [qs.filter(_past_due(moment)) for qs in still], moment, calendars), stuck_total)


def _oldest_stuck(stuck: list[QuerySet[StaySpan]], moment: datetime,
                  calendars: dict[int, Any]) -> tuple[timing.Stuck, ...]:
    """The ``STUCK_SHOWN`` oldest stuck stays, ordered as the exact figure (age, then ticket).
    Per calendar the business age does not grow as the start gets later, and two starts have
    the same age only with no working time between them: so the earliest ``STUCK_SHOWN``
    starts, and those tied with the last of them, hold every candidate."""
    fields = ("ticket_id", "pipeline", "stage", "executor", "entered_at", "sla_due_at")
    found = []
    for version, calendar in calendars.items():
        rows: list[tuple[Any, ...]] = []
        for qs in stuck:
            rows += qs.filter(version_id=version).order_by("entered_at", "ticket_id"
                                                           ).values_list(*fields)[:STUCK_SHOWN]
        rows.sort(key=lambda r: (r[4], r[0]))
        rows = rows[:STUCK_SHOWN]
        if len(rows) == STUCK_SHOWN:
            edge = rows[-1][4]
            tied = calendar.next_working_moment(edge)
            seen = {(r[0], r[4]) for r in rows}
            # those tied with the edge have its age, and among equal ages the order goes by
            # ticket: the STUCK_SHOWN first tickets of them are all that can be listed
            for qs in stuck:
                rows += [r for r in qs.filter(version_id=version, entered_at__gte=edge,
                                              entered_at__lte=tied)
                         .order_by("ticket_id", "entered_at").values_list(*fields)
                         [:STUCK_SHOWN] if (r[0], r[4]) not in seen]
        ages: dict[datetime, timedelta] = {}  # stays entered at the same moment: one age
        for ticket, pipeline, stage, executor, entered, due in rows:
            if entered not in ages:
                ages[entered] = calendar.between(entered, moment)
            found.append(timing.Stuck(ticket, pipeline, stage, executor, entered,
                                      ages[entered], due, "sla"))
    found.sort(key=lambda s: (-s.age, s.ticket))
    return tuple(found[:STUCK_SHOWN])


def _exact_timing(period: Period, cut: Cut, moment: datetime) -> StageTiming:
    exact = timing.k9_time_in_stage(period, cut, at=moment)
    rows = exact.rows()
    for r in rows:
        spans = exact.durations(pipeline=r["pipeline"], stage=r["stage"])
        r["shortest"], r["longest"] = min(spans, default=None), max(spans, default=None)
    return StageTiming(moment, rows, exact.stuck[:STUCK_SHOWN], len(exact.stuck))


# --- K12 ---------------------------------------------------------------------------------------


def _counted(title: str, unit: str, period: Period, cut: Cut, keys: tuple[str, ...],
             columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Table:
    return Table(title, unit, period, cut, keys, columns, tuple(
        Fact(0, {k: r[k] for k in keys}, {c: _int(r[c]) for c in columns}) for r in rows))


def next_task_coverage(cut: Cut) -> Table:
    """``control.next_task_coverage`` with the counting in SQL: the open tickets by pipeline
    and owner, and those of them among the tickets of an open task of an active person (a
    semi-join over the open tasks, not a probe per ticket)."""
    counted = monthly.coverage(cut)
    if counted is not None:  # the current-state cells
        today = clock.now().date()
        return _counted("K12 coverage", "tickets", Period.days(today, today), cut,
                        ("pipeline", "owner"), ("open_tickets", "covered", "uncovered"),
                        counted)
    tickets = (Ticket.objects.filter(status=TicketStatus.OPEN)
               .filter(_person_filter(cut, "owner"), _ticket_filter(cut, "")))
    valid = Task.objects.filter(status=TaskStatus.OPEN, assignee__is_active=True)
    keys = ("pipeline__code", "owner_id")
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for qs, column in ((tickets, "open_tickets"),
                       (tickets.filter(pk__in=valid.values("ticket_id")), "covered")):
        for r in _rows(qs.values(*keys).order_by(*keys).annotate(n=Count("pk"))):
            row = found.setdefault((r["pipeline__code"], r["owner_id"]), {
                "pipeline": r["pipeline__code"], "owner": r["owner_id"], "open_tickets": 0,
                "covered": 0})
            row[column] = r["n"]
    rows = list(found.values())
    for row in rows:
        row["uncovered"] = row["open_tickets"] - row["covered"]
    today = clock.now().date()
    return _counted("K12 coverage", "tickets", Period.days(today, today), cut,
                    ("pipeline", "owner"), ("open_tickets", "covered", "uncovered"), rows)


def overdue_rate(at: datetime, cut: Cut) -> Table:
    """``control.overdue_rate`` with the counting in SQL; the tasks moved after ``at`` are
    counted by their due time then, one by one. Open at ``at``: still open (the open-task
    index), or done after ``at`` (an index on done_at, migration 0003), counted apart."""
    counted = monthly.overdue(at, cut, lambda start, end: Task.objects.filter(
        status=TaskStatus.OPEN, due_at__gte=start, due_at__lt=end).exclude(
            ticket__status=TicketStatus.VOID))
    if counted is not None:  # the current-state cells
        return _counted("K12 overdue", "tasks", Period.days(at.date(), at.date()), cut,
                        ("pipeline", "assignee"), ("open_tasks", "overdue"), counted)
    scope = (Task.objects.filter(created_at__lte=at)
             .exclude(ticket__status=TicketStatus.VOID)
             .filter(_person_filter(cut, "assignee"), _ticket_filter(cut, "ticket__")))
    parts = (scope.filter(status=TaskStatus.OPEN),
             scope.filter(done_at__gt=at).exclude(status=TaskStatus.OPEN))
    moved: dict[int, datetime] = {}
    for payload in (Event.objects.filter(type=EventType.TASK_RESCHEDULED, occurred_at__gt=at)
                    .order_by("-occurred_at", "-seq").values_list("payload", flat=True)):
        moved[int(payload["task"])] = control._moment(payload["from"])
    rows: dict[tuple[str, Any], dict[str, Any]] = {}

    def cell(pipeline: str, assignee: Any) -> dict[str, Any]:
        return rows.setdefault((pipeline, assignee), {
            "pipeline": pipeline, "assignee": assignee, "open_tasks": 0, "overdue": 0})

    keys = ("ticket__pipeline__code", "assignee_id")
    for tasks in parts:
        for r in _rows(tasks.exclude(pk__in=sorted(moved)).values(*keys).order_by(*keys)
                       .annotate(n=Count("pk"), overdue=_one(Q(due_at__lt=at)))):
            row = cell(r["ticket__pipeline__code"], r["assignee_id"])
            row["open_tasks"] += r["n"]
            row["overdue"] += _int(r["overdue"])
        if moved:
            for pk, pipeline, assignee, due in (tasks.filter(pk__in=sorted(moved)).values_list(
                    "pk", "ticket__pipeline__code", "assignee_id", "due_at")):
                row = cell(pipeline, assignee)
                row["open_tasks"] += 1
                row["overdue"] += int(moved.get(pk, due) < at)
    return _counted("K12 overdue", "tasks", Period.days(at.date(), at.date()), cut,
                    ("pipeline", "assignee"), ("open_tasks", "overdue"), list(rows.values()))


def sla_compliance(period: Period, cut: Cut) -> Table:
    """``control.sla_compliance`` from the spans: by pipeline, stage and executor, or for a
    period of whole months from the monthly cells by pipeline and stage (what the dashboard
    shows; ``monthly.sla``)."""
    if not is_ready():
        return control.sla_compliance(period, cut)
    found = monthly.sla(period, cut, lambda tail: _sla_rows(tail, cut))
    if found is not None:
        return _counted("K12 SLA", "stays", period, cut, ("pipeline", "stage"),
                        ("closed", "within", "late"), found)
    rows = _sla_rows(period, cut)
    for r in rows:
        r["late"] = r["closed"] - _int(r["within"])
    return _counted("K12 SLA", "stays", period, cut, ("pipeline", "stage", "executor"),
                    ("closed", "within", "late"), rows)


def _sla_rows(period: Period, cut: Cut) -> list[dict[str, Any]]:
    within = (Q(sla_due_at__isnull=False, closed_at__lte=F("sla_due_at"))
              | Q(sla_due_at__isnull=True, sla_left__gt=timedelta()))
    return _rows(_spans(cut).filter(closed_at__gte=period.start, closed_at__lt=period.end,
                                    sla=True)
                 .filter(Q(sla_due_at__isnull=False) | Q(sla_left__isnull=False))
                 .values("pipeline", "stage", "executor").order_by("pipeline", "stage",
                                                                   "executor")
                 .annotate(closed=Count("pk"), within=_one(within)))


# --- verify --------------------------------------------------------------------------------------


def _funnel_rows(funnel: conversions.Funnel) -> list[dict[str, Any]]:
    return [{"pipeline": p, **step} for p in sorted(funnel.stages) for step in funnel.steps(p)]


def differences(period: Period, cut: Cut | None = None) -> Any:
    """Where this module's answers and the exact figures disagree for ``period`` and ``cut``
    (K7's three cohorts, K8 in both modes, K9, K12 coverage, overdue and SLA compliance): from
    the monthly cells where they answer, and again from the summaries and spans alone."""
    cut = cut or Cut()
    yield from _differences(period, cut)
    if monthly.split(period, cut) is not None:  # else the same answers again
        with monthly.off():
            yield from (f"{problem} (without the monthly cells)"
                        for problem in _differences(period, cut))


def _differences(period: Period, cut: Cut) -> Any:
    def table(name: str, a: Table, b: Table, keys: tuple[str, ...]) -> Any:
        # the monthly cells answer K12 SLA by pipeline and stage only (what is shown)
        keys = tuple(k for k in keys if k in a.keys)
        for group in (keys, ()):
            if a.rollup(*group) != b.rollup(*group):
                yield f"{name} by {','.join(group) or 'total'}: fast {a.rollup(*group)} != " \
                      f"exact {b.rollup(*group)}"

    for part, keys, exact in (("email_call", ("performer",), conversions.k7_email_to_call),
                              ("call_meeting", ("performer",), conversions.k7_call_to_meeting),
                              ("lead_sale", ("channel", "owner"), conversions.k7_lead_to_sale)):
        yield from table(f"K7 {part}", k7_part(part, period, cut), exact(period, cut), keys)
    yield from table("K7 lead_sale across channels", k7_lead_to_sale(period, cut, channels=False),
                     conversions.k7_lead_to_sale(period, cut), ("owner",))
    for mode in (conversions.STRICT, conversions.ANY_ORDER):
        a, b = (_funnel_rows(k8_funnel(period, cut, mode=mode)),
                _funnel_rows(conversions.k8_funnel(period, cut, mode=mode)))
        if a != b:
            yield f"K8 {mode}: fast {a} != exact {b}"
    fast9 = k9_timing(period, cut)
    exact9 = _exact_timing(period, cut, fast9.at)
    if fast9 != exact9:
        yield f"K9: fast {fast9} != exact {exact9}"
    yield from table("K12 coverage", next_task_coverage(cut), control.next_task_coverage(cut),
                     ("pipeline", "owner"))
    yield from table("K12 overdue", overdue_rate(fast9.at, cut),
                     control.overdue_rate(fast9.at, cut), ("pipeline", "assignee"))
    yield from table("K12 SLA", sla_compliance(period, cut), control.sla_compliance(period, cut),
                     ("pipeline", "stage", "executor"))
