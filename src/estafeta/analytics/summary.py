"""Per-ticket summaries (K7, K8) and per-stay spans (K9, K12 SLA), kept in step with the history
(docs/analytics-scale.md).

``refresh(ids)`` — called by ``rollup.refresh`` in the transaction of every ticket event, and
by the rebuild — works out, from the tickets' records and by the rules of ``conversions.py``
and ``timing.py``:

- ``TicketSummary``: the creation moment and owner, the first outbound email / connected call
  with who made it and the first target after it (the first connected call, the first
  presentation held: converted within a window W when it falls within W), the outcome as it
  stood 14 days after creation and after every outcome, and for the funnel the first entry into
  the pipeline's first step, how many steps were reached in order, which were reached at all,
  and the steps they were read against (a new pipeline version with other steps makes those
  rows stale: the figures then read the history until a rebuild);
- ``StaySpan``: every stay in an open stage with the ticket's cut dimensions, its SLA fields
  as they are now and, once it is closed, its business length, computed with the calendar once
  (kept as long as the stay's start and end do not change).

Both are written with one upsert each per refresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F

from estafeta.calendars.selectors import calendar_for
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    Direction,
    EventType,
    StageSemantic,
    TaskStatus,
    TicketStatus,
)
from estafeta.pipelines.models import Stage, cached_version
from estafeta.tasks.models import Task
from estafeta.tickets.models import StageVisit

from . import monthly
from .models import StaySpan, TicketSummary
from .monthly import Contribution
from .period import company_tz

DEFAULT_WINDOW = timedelta(days=14)
WON, LOST, OPEN = "won", "lost", "open"
OUTCOMES = (EventType.TICKET_WON, EventType.TICKET_LOST, EventType.TICKET_REOPENED)


def steps_of(pipelines: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Each pipeline's funnel steps (its current version's open stages in order, then the won
    stage), as ``conversions._pipeline_steps``."""
    stages = Stage.objects.filter(version__pipeline__current_version_id=F("version_id"))
    if pipelines is not None:
        stages = stages.filter(version__pipeline__code__in=sorted(set(pipelines)))
    open_: dict[str, list[str]] = {}
    won: dict[str, str] = {}
    for pipeline, code, semantic in (stages.order_by("position")
                                     .values_list("version__pipeline__code", "code",
                                                  "semantic")):
        if semantic == StageSemantic.OPEN:
            open_.setdefault(pipeline, []).append(code)
        elif semantic == StageSemantic.WON:
            won[pipeline] = code
    return {p: (*codes, *([won[p]] if p in won else [])) for p, codes in open_.items()}


# (version id, digest) -> the steps of that pipeline version: versions are append-only, and the
# digest guards against an id reused after a rolled-back load (as ``pipelines.models`` does)
_STEPS: dict[tuple[int | None, str | None], tuple[str, ...]] = {}


def _steps_cached(tickets: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """``steps_of`` for the tickets' pipelines, read once per pipeline version and process."""
    wanted = {t.pipeline: t.current for t in tickets}
    missing = {p for p, key in wanted.items() if key not in _STEPS}
    if missing:
        found = steps_of(missing)
        for pipeline in missing:
            _STEPS[wanted[pipeline]] = found.get(pipeline, ())
    return {p: _STEPS[key] for p, key in wanted.items()}


def steps_key(order: tuple[str, ...]) -> str:
    return "\x1f".join(order)


def status_at(events: list[tuple[datetime, str]], moment: datetime) -> str:
    """As ``conversions._status_at``: the last outcome event up to ``moment`` (in order)."""
    status = OPEN
    for when, type_ in events:
        if when > moment:
            break
        status = WON if type_ == EventType.TICKET_WON else LOST \
            if type_ == EventType.TICKET_LOST else OPEN
    return status


@dataclass
class _Summary:
    ticket_id: int
    void: bool
    pipeline: str
    channel: str
    segment: str
    territory: str
    lead_at: datetime | None = None
    lead_owner: int | None = None
    email_at: datetime | None = None
    email_by: int | None = None
    email_next: datetime | None = None
    call_at: datetime | None = None
    call_by: int | None = None
    call_next: datetime | None = None
    status_window: str = OPEN
    status_final: str = OPEN
    horizon: datetime | None = None
    steps: str = ""
    funnel_at: datetime | None = None
    strict_n: int = 0
    strict_last: bool = False
    any_mask: int = 0
    any_last: bool = False
    open_now: bool = False
    owner_now: int | None = None
    covered_now: bool = False
    open_tasks: list[list[Any]] = field(default_factory=list)


SUMMARY_FIELDS = tuple(f.name for f in fields(_Summary))
SPAN_FIELDS = ("visit_id", "ticket_id", "version_id", "void", "pipeline", "channel", "segment",
               "territory", "stage", "executor", "sla", "entered_at", "closed_at", "seconds",
               "sla_due_at", "paused_at", "sla_left")


def _is(kind: str, direction: str, outcome: str, what: str) -> bool:
    if what == "email":
        return (kind == ActivityKind.EMAIL and direction == Direction.OUT
                and outcome == ActivityOutcome.SENT)
    if what == "call":
        return (kind == ActivityKind.CALL and direction == Direction.OUT
                and outcome == ActivityOutcome.CONNECTED)
    return (kind in (ActivityKind.VIDEO, ActivityKind.MEETING)
            and outcome == ActivityOutcome.HELD)


def _first_after(moments: list[datetime], start: datetime | None) -> datetime | None:
    if start is None:
        return None
    return min((m for m in moments if m >= start), default=None)


def _funnel(s: _Summary, order: tuple[str, ...], entries: dict[str, tuple[int, datetime]]
            ) -> None:
    s.steps = steps_key(order)
    if not order or order[0] not in entries:
        return
    s.funnel_at = entries[order[0]][1]
    before_last = order[:-1]
    s.any_mask = sum(1 << i for i, stage in enumerate(before_last) if stage in entries)
    s.any_last = order[-1] in entries
    last_seq, n = 0, 0
    for stage in before_last:
        if stage not in entries or entries[stage][0] < last_seq:
            break
        n += 1
        last_seq = entries[stage][0]
    s.strict_n = n
    s.strict_last = (n == len(before_last) and order[-1] in entries
                     and entries[order[-1]][0] >= last_seq)


def compute(tickets: dict[int, Any], events: dict[int, list[tuple[Any, ...]]],
            activities: dict[int, list[tuple[Any, ...]]]
            ) -> tuple[dict[int, tuple[Any, ...]], dict[int, dict[str, Any]]]:
    """Summaries (as tuples in ``SUMMARY_FIELDS`` order) and spans (by visit id) of the
    tickets. ``tickets``: pk -> rollup ``_Ticket`` (with ``version``); ``events``: the rows
    ``rollup.compute`` read (ticket, seq, type, occurred_at, actor, owner, payload) in seq
    order; ``activities``: (occurred_at, pk, performer, kind, direction, outcome) per ticket."""
    ids = sorted(tickets)
    order_of = _steps_cached(tickets.values())
    visits: dict[int, list[tuple[Any, ...]]] = {}
    for row in (StageVisit.objects.filter(ticket_id__in=ids).order_by("ticket_id", "seq")
                .values_list("pk", "ticket_id", "seq", "stage__code", "stage__semantic",
                             "stage__sla", "executor_id", "entered_at", "closed_at",
                             "sla_due_at", "paused_at", "sla_left")):
        visits.setdefault(row[1], []).append(row)
    open_tasks: dict[int, list[tuple[int | None, datetime | None, bool]]] = {}
    for ticket_id, assignee, due, active in (
            Task.objects.filter(ticket_id__in=ids, status=TaskStatus.OPEN)
            .values_list("ticket_id", "assignee_id", "due_at", "assignee__is_active")):
        open_tasks.setdefault(ticket_id, []).append((assignee, due, bool(active)))
    summaries: dict[int, tuple[Any, ...]] = {}
    spans: dict[int, dict[str, Any]] = {}
    for pk in ids:
        t = tickets[pk]
        void = t.status == TicketStatus.VOID
        s = _Summary(pk, void, t.pipeline, t.channel, t.segment, t.territory)
        # the current state (K12 coverage and overdue tasks, as ``fast`` counts them)
        s.open_now, s.owner_now = t.status == TicketStatus.OPEN, t.owner
        mine = open_tasks.get(pk, [])
        s.covered_now = any(active for _a, _d, active in mine)
        s.open_tasks = sorted([assignee, _local_day(due)] for assignee, due, _act in mine)
        outcomes: list[tuple[datetime, str]] = []
        horizon: list[datetime] = []
        for _tid, _seq, type_, when, _actor, owner, _payload in events.get(pk, ()):
            if type_ == EventType.TICKET_CREATED and s.lead_at is None:
                s.lead_at, s.lead_owner = when, owner
            if type_ in OUTCOMES:
                outcomes.append((when, type_))
                horizon.append(when)
        acts = sorted(activities.get(pk, ()), key=lambda a: (a[0], a[1]))
        calls = [a[0] for a in acts if _is(a[3], a[4], a[5], "call")]
        held = [a[0] for a in acts if _is(a[3], a[4], a[5], "held")]
        email = next((a for a in acts if _is(a[3], a[4], a[5], "email")), None)
        call = next((a for a in acts if _is(a[3], a[4], a[5], "call")), None)
        if email is not None:
            s.email_at, s.email_by = email[0], email[2]
            s.email_next = _first_after(calls, email[0])
        if call is not None:
            s.call_at, s.call_by = call[0], call[2]
            s.call_next = _first_after(held, call[0])
        if s.lead_at is not None:
            s.status_window = status_at(outcomes, s.lead_at + DEFAULT_WINDOW)
        if outcomes:  # the status after every outcome event
            s.status_final = status_at(outcomes, max(when for when, _type in outcomes))
        entries: dict[str, tuple[int, datetime]] = {}
        for (visit, _tid, seq, stage, semantic, sla, executor, entered, closed, due, paused,
             left) in visits.get(pk, ()):
            entries.setdefault(stage, (seq, entered))
            horizon.append(entered)
            if semantic == StageSemantic.OPEN:
                spans[visit] = {
                    "visit_id": visit, "ticket_id": pk, "version_id": t.version, "void": void,
                    "pipeline": t.pipeline, "channel": t.channel, "segment": t.segment,
                    "territory": t.territory, "stage": stage, "executor": executor,
                    "sla": bool(sla), "entered_at": entered, "closed_at": closed,
                    "seconds": None, "sla_due_at": due, "paused_at": paused, "sla_left": left}
        s.horizon = max(horizon, default=None)
        _funnel(s, order_of.get(t.pipeline, ()), entries)
        summaries[pk] = astuple(s)
    return summaries, spans


NO_DUE = "9999-12-31"  # an open task without a due time is never overdue


def _local_day(moment: datetime | None) -> str:
    if moment is None:
        return NO_DUE
    return moment.astimezone(company_tz()).date().isoformat()


def _span_tuple(span: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(span[name] for name in SPAN_FIELDS)


def refresh(tickets: dict[int, Any], events: dict[int, list[tuple[Any, ...]]],
            activities: dict[int, list[tuple[Any, ...]]]) -> dict[int, Contribution]:
    """Bring the tickets' summaries and spans in step (inside the caller's transaction) and
    return each ticket's monthly cells from them (``monthly.from_summary``/``from_span``).
    Written whole with one upsert each (cheaper than reading them back to compare): a closed
    stay's business length is worked out again, a few windows of its calendar."""
    ids = sorted(tickets)
    if not ids:
        return {}
    summaries, spans = compute(tickets, events, activities)
    out: dict[int, Contribution] = {}
    for pk in ids:
        out[pk] = monthly.from_summary(dict(zip(SUMMARY_FIELDS, summaries[pk], strict=True)))
    TicketSummary.objects.bulk_create(
        [TicketSummary(**dict(zip(SUMMARY_FIELDS, summaries[pk], strict=True))) for pk in ids],
        update_conflicts=True, unique_fields=["ticket_id"],
        update_fields=list(SUMMARY_FIELDS[1:]))
    calendars: dict[int, Any] = {}
    for span in spans.values():
        closed = span["closed_at"]
        span["bucket"] = None
        if closed is not None:
            version = span["version_id"]
            if version not in calendars:
                calendars[version] = calendar_for(cached_version(
                    version, tickets[span["ticket_id"]].version_digest))
            span["seconds"] = int(calendars[version].between(span["entered_at"], closed)
                                  .total_seconds())
            span["bucket"] = monthly.bucket(span["seconds"])
            monthly.merge(out[span["ticket_id"]], monthly.from_span(span))
    if spans:
        StaySpan.objects.bulk_create([StaySpan(**span) for span in spans.values()],
                                     update_conflicts=True, unique_fields=["visit_id"],
                                     update_fields=[*SPAN_FIELDS[1:], "bucket"])
    return out
