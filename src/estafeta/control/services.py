"""The monitor: find late work through the due-time indexes and escalate it, each level once.

``monitor_pass(now=...)`` runs every check once:

- tasks overdue (``Task`` partial index on ``due_at`` where open) and, once stage visits carry
  their SLA moments, stage SLAs at risk and breached: one query per ladder step asks for open
  work whose start moment is at or before the step's threshold (``latest_start``: the step's
  business-time delay inverted once per pass) and that has no escalation at that level yet
  (an anti-join on the escalation's (task, level) index);
- open tickets whose owner is deactivated or absent now (through the few such people);
- open tickets left without a valid next task (through the event log since the last pass: any
  change that could leave a ticket without one is an event on it).

Each new (subject, level) is decided in its own transaction: lock the ticket, re-check the
work is still late, insert the ``Escalation`` (the unique constraint is the compare-and-set: a
concurrent worker's insert fails and is skipped), write the ticket event and the outbox rows
(``notifications.services.notify``). Delivery happens later (``deliver_pending``), so a crash
at any point either loses the whole decision (redone by the next pass) or keeps all of it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q

from estafeta.accounts.models import Absence, User
from estafeta.accounts.selectors import actor_facts
from estafeta.calendars.selectors import calendar_for
from estafeta.core import clock
from estafeta.domain.calendar import BusinessCalendar
from estafeta.domain.codes import EventType, Role, TaskStatus, TicketStatus
from estafeta.domain.durations import Duration
from estafeta.domain.errors import Conflict, Forbidden
from estafeta.domain.escalation import Notify, Reason, Step, Trigger, ladder_from_data, latest_start
from estafeta.domain.policy import is_supervisor, require_active
from estafeta.history.models import Event
from estafeta.history.services import ticket_event
from estafeta.intake.models import FollowUp
from estafeta.notifications.services import notify
from estafeta.pipelines.models import PipelineVersion
from estafeta.tasks.models import Task
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.selectors import open_visit, ticket_facts, ticket_for_update

from .models import Escalation, MonitorCursor

log = logging.getLogger("estafeta.control")

KIND = "escalation"
# Event ids are taken before commit, so a transaction may commit an id lower than one already
# read; the next-task check re-reads this many events behind its cursor to catch those.
EVENT_LAG = 200


@dataclass
class PassReport:
    now: datetime
    escalated: Counter[str] = field(default_factory=Counter)  # "reason/level" -> count
    skipped: int = 0  # candidates another worker decided first, or no longer late
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.escalated.values())

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.escalated.items())) or "nothing new"
        return f"monitor {self.now.isoformat()}: {parts} ({self.seconds * 1000:.0f} ms)"


@dataclass(frozen=True)
class Candidate:
    ticket_id: int
    subject: str
    reason: Reason
    level: str
    notify: Notify
    due_at: datetime | None = None
    task_id: int | None = None
    visit_id: int | None = None
    person_id: int | None = None  # whose work it is (assignee, executor, owner)
    threshold: datetime | None = None  # the step's latest start moment in this pass


# --- ladders -------------------------------------------------------------------------------


def _ladders() -> dict[int, tuple[Step, ...]]:
    """Ladder of every pipeline version (a few dozen rows; versions never change)."""
    return {pk: ladder_from_data(spec.get("escalation") if isinstance(spec, dict) else None)
            for pk, spec in PipelineVersion.objects.values_list("pk", "spec")}


def _steps(ladders: dict[int, tuple[Step, ...]], when: Trigger
           ) -> Iterator[tuple[Step, list[int] | None]]:
    """Each distinct step with the versions that have it (``None``: every version)."""
    by_step: dict[Step, list[int]] = defaultdict(list)
    for version_id, ladder in ladders.items():
        for step in ladder:
            if step.when is when:
                by_step[step].append(version_id)
    for step, versions in by_step.items():
        yield step, (None if len(versions) == len(ladders) else versions)


def _add(calendar: BusinessCalendar, after: Duration, moment: datetime) -> datetime:
    return calendar.add(moment, after)


def _threshold(step: Step, version_ids: list[int] | None, now: datetime) -> datetime:
    """Latest start moment whose delay has passed by ``now`` (the earliest over the zones of
    the versions that have the step, so no version's work is taken early)."""
    if step.after.is_zero():
        return now
    versions = PipelineVersion.objects.filter(
        **({"pk__in": version_ids} if version_ids is not None else {}))
    out = now
    seen: set[str] = set()
    for version in versions:
        calendar = calendar_for(version)
        if str(calendar.zone) in seen:
            continue
        seen.add(str(calendar.zone))
        out = min(out, latest_start(partial(_add, calendar, step.after), now))
    return out


# --- finding candidates --------------------------------------------------------------------


def _overdue_tasks(ladders: dict[int, tuple[Step, ...]], now: datetime) -> Iterator[Candidate]:
    for step, versions in _steps(ladders, Trigger.BREACH):
        threshold = _threshold(step, versions, now)
        rows = (Task.objects.filter(status=TaskStatus.OPEN, due_at__lte=threshold)
                .filter(~Exists(Escalation.objects.filter(task_id=OuterRef("pk"),
                                                          level=step.level))))
        if versions is not None:
            rows = rows.filter(ticket__version_id__in=versions)
        # A reply or call-back intake planned: the client's message is what went unanswered.
        rows = rows.annotate(unanswered=Exists(FollowUp.objects.filter(task_id=OuterRef("pk"))))
        for pk, ticket_id, due_at, assignee_id, unanswered in rows.order_by().values_list(
                "pk", "ticket_id", "due_at", "assignee_id", "unanswered"
        ).iterator(chunk_size=2000):
            reason = Reason.UNANSWERED_MESSAGE if unanswered else Reason.TASK_OVERDUE
            yield Candidate(ticket_id, f"task:{pk}", reason, step.level,
                            step.notify, due_at, task_id=pk, person_id=assignee_id)


def _late_visits(ladders: dict[int, tuple[Step, ...]], now: datetime) -> Iterator[Candidate]:
    """Open stage visits past their risk moment (risk steps) or SLA due time (breach steps);
    paused visits have neither and are not found."""
    for when, column, reason in ((Trigger.RISK, "sla_risk_at", Reason.STAGE_AT_RISK),
                                 (Trigger.BREACH, "sla_due_at", Reason.STAGE_BREACHED)):
        for step, versions in _steps(ladders, when):
            threshold = _threshold(step, versions, now)
            rows = (StageVisit.objects.filter(closed_at__isnull=True,
                                              **{f"{column}__lte": threshold})
                    .filter(~Exists(Escalation.objects.filter(visit_id=OuterRef("pk"),
                                                              level=step.level))))
            if versions is not None:
                rows = rows.filter(ticket__version_id__in=versions)
            for pk, ticket_id, due_at, executor_id in rows.order_by().values_list(
                    "pk", "ticket_id", "sla_due_at", "executor_id").iterator(chunk_size=2000):
                yield Candidate(ticket_id, f"visit:{pk}", reason, step.level, step.notify,
                                due_at, visit_id=pk, person_id=executor_id,
                                threshold=threshold)


def _unavailable_owners(now: datetime) -> Iterator[Candidate]:
    """Open tickets whose owner is deactivated or away now (one escalation per absence)."""
    away: dict[int, str] = {}
    for pk in User.objects.filter(is_active=False).values_list("pk", flat=True):
        away[pk] = "inactive"
    for absence_id, user_id in Absence.objects.filter(
            cancelled_at__isnull=True, starts_at__lte=now, ends_at__gt=now
    ).values_list("pk", "user_id"):
        away.setdefault(user_id, f"absence:{absence_id}")
    if not away:
        return
    rows = Ticket.objects.filter(status=TicketStatus.OPEN, owner_id__in=list(away)).order_by()
    for pk, owner_id in rows.values_list("pk", "owner_id").iterator(chunk_size=2000):
        subject = f"ticket:{pk}:owner:{owner_id}:{away[owner_id]}"
        yield Candidate(pk, subject, Reason.OWNER_UNAVAILABLE, "head", Notify.HEAD,
                        person_id=owner_id)


def _without_next_task(now: datetime) -> Iterator[Candidate]:
    """Open tickets touched since the last pass that have no open task with an active
    assignee (promise 2 says this never happens: it is reported loudly if it does)."""
    cursor, _ = MonitorCursor.objects.get_or_create(
        name="next_task", defaults={"position": -1, "updated_at": now})
    top = Event.objects.aggregate(top=Max("pk"))["top"] or 0
    start = top - EVENT_LAG if cursor.position < 0 else cursor.position - EVENT_LAG
    # The monitor's own events change nothing about a ticket's tasks.
    own = Q(type__startswith="escalation.")
    ticket_ids = set(Event.objects.filter(pk__gt=start, pk__lte=top, ticket__isnull=False)
                     .exclude(own).values_list("ticket_id", flat=True))
    MonitorCursor.objects.filter(pk=cursor.pk, position__lt=top).update(position=top,
                                                                         updated_at=now)
    if not ticket_ids:
        return
    valid = Task.objects.filter(ticket_id=OuterRef("pk"), status=TaskStatus.OPEN,
                                assignee__is_active=True)
    rows = (Ticket.objects.filter(pk__in=ticket_ids, status=TicketStatus.OPEN)
            .filter(~Exists(valid)).order_by())
    # The subject names the ticket's last change, so a later breakage is reported again.
    last_change = Max("events__pk", filter=~Q(events__type__startswith="escalation."))
    for pk, number, last in rows.annotate(last=last_change).values_list("pk", "number", "last"):
        log.error("ticket %s is open without a valid next task (promise 2 broken)", number)
        yield Candidate(pk, f"ticket:{pk}:no-task:{last}", Reason.NO_NEXT_TASK, "admins",
                        Notify.ADMINS)


def _candidates(now: datetime) -> Iterator[Candidate]:
    ladders = _ladders()
    yield from _overdue_tasks(ladders, now)
    yield from _late_visits(ladders, now)
    yield from _unavailable_owners(now)
    yield from _without_next_task(now)


# --- deciding ------------------------------------------------------------------------------


def _directors() -> list[User]:
    return list(User.objects.filter(role=Role.DIRECTOR, is_active=True).order_by("pk"))


def _recipients(c: Candidate, ticket: Ticket) -> list[User]:
    """Who the step names, active people only (a missing head goes up to the directors)."""
    if c.notify is Notify.ADMINS:
        return list(User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk"))
    if c.notify is Notify.DIRECTOR:
        return _directors()
    person = User.objects.select_related("team__head").filter(pk=c.person_id).first()
    if c.notify is Notify.EXECUTOR:
        return [person] if person is not None and person.is_active else _directors()
    team = person.team if person is not None and person.team_id else ticket.team
    head = team.head if team is not None else None
    if head is not None and head.is_active and head.pk != c.person_id:
        return [head]
    return _directors()


def _still_late(c: Candidate, ticket: Ticket, now: datetime) -> bool:
    """Re-checked under the ticket lock: the work may have been done since it was read."""
    if not ticket.is_open:
        return False
    if c.task_id is not None:
        return Task.objects.filter(pk=c.task_id, status=TaskStatus.OPEN,
                                   due_at__lte=c.due_at).exists()
    if c.visit_id is not None:
        column = "sla_risk_at" if c.reason is Reason.STAGE_AT_RISK else "sla_due_at"
        # Paused, resumed or closed since it was read: only its current moment counts.
        return StageVisit.objects.filter(pk=c.visit_id, closed_at__isnull=True,
                                         **{f"{column}__lte": c.threshold}).exists()
    if c.reason is Reason.OWNER_UNAVAILABLE:
        return ticket.owner_id == c.person_id
    return True


def _payload(c: Candidate, ticket: Ticket) -> dict[str, Any]:
    task = Task.objects.select_related("assignee").get(pk=c.task_id) if c.task_id else None
    person = task.assignee if task else User.objects.filter(pk=c.person_id).first()
    return {
        "level": c.level, "reason": str(c.reason), "ticket": ticket.number,
        "client": ticket.client.name, "stage": ticket.stage.name,
        "task": task.title if task else "",
        "due_at": c.due_at.isoformat() if c.due_at else "",
        "assignee": (person.get_full_name() or person.username) if person else "",
        # The promise is what the task says will be done (e.g. "Contract by Monday").
        "promise": task.title if task else "",
    }


def _decide(c: Candidate, now: datetime) -> Escalation | None:
    """One candidate, one transaction: the escalation, its event and its outbox rows."""
    with transaction.atomic():
        ticket = ticket_for_update(c.ticket_id)
        if Escalation.objects.filter(subject=c.subject, level=c.level).exists():
            return None  # another worker decided it while this one read
        if not _still_late(c, ticket, now):
            return None
        recipients = _recipients(c, ticket)
        try:
            with transaction.atomic():
                escalation: Escalation = Escalation.objects.create(
                    ticket=ticket, task_id=c.task_id, visit_id=c.visit_id, subject=c.subject,
                    reason=c.reason, level=c.level, due_at=c.due_at, decided_at=now,
                    recipient=recipients[0] if recipients and c.notify is not Notify.ADMINS
                    else None)
        except IntegrityError:
            return None  # the compare-and-set lost: someone else inserted (subject, level)
        payload = _payload(c, ticket)
        ticket_event(ticket, EventType.ESCALATION_RAISED, None, {
            "escalation": escalation.pk, "subject": c.subject, "reason": str(c.reason),
            "level": c.level, "due_at": c.due_at, "task": c.task_id, "visit": c.visit_id,
            "recipients": [u.pk for u in recipients]})
        for i, person in enumerate(recipients):
            key = f"{KIND}:{escalation.pk}" if i == 0 else f"{KIND}:{escalation.pk}:{person.pk}"
            notify(recipient=person, kind=KIND, payload=payload, key=key, ticket=ticket)
    return escalation


def monitor_pass(*, now: datetime | None = None) -> PassReport:
    """Find late work and escalate each new (subject, level) once; see the module docstring.

    Safe to run in several workers at once: candidates are read without locks, and each is
    decided under its ticket's lock against the unique (subject, level) constraint.
    """
    now = now or clock.now()
    report = PassReport(now=now)
    started = time.perf_counter()
    with clock.frozen(now):
        for candidate in list(_candidates(now)):
            escalation = _decide(candidate, now)
            if escalation is None:
                report.skipped += 1
            else:
                report.escalated[f"{candidate.reason}/{candidate.level}"] += 1
    report.seconds = time.perf_counter() - started
    return report


# --- acknowledging -------------------------------------------------------------------------


def escalation_acknowledge(*, actor: User, escalation: Escalation) -> Escalation:
    """A head of the ticket's team or a director says "seen, on it": recorded once, and the
    escalation leaves the unacknowledged lists (its level is never raised again anyway)."""
    facts = actor_facts(actor)
    require_active(facts)
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(escalation.ticket_id)
        visit = open_visit(ticket) if ticket.is_open else None
        if not (facts.role is Role.DIRECTOR
                or is_supervisor(facts, ticket_facts(ticket, visit))
                or (escalation.recipient_id == actor.pk and facts.role is Role.HEAD)):
            raise Forbidden("only a head of the ticket's team or a director can acknowledge",
                            code="not_supervisor")
        row = Escalation.objects.select_for_update().get(pk=escalation.pk)
        if row.acknowledged_at is not None:
            raise Conflict("this escalation is already acknowledged",
                           code="escalation_acknowledged")
        row.acknowledged_at, row.acknowledged_by = now, actor
        row.save(update_fields=["acknowledged_at", "acknowledged_by"])
        ticket_event(ticket, EventType.ESCALATION_ACKNOWLEDGED, actor,
                     {"escalation": row.pk, "level": row.level, "subject": row.subject})
    return row
