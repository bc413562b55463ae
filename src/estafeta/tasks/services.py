"""Writes about tasks. The rule they all keep (promise 2): an open ticket is never left
without an open task; completing or cancelling its last one needs a successor in the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.accounts.services import claim_users
from estafeta.calendars.selectors import calendar_for
from estafeta.core import clock
from estafeta.core.db import insert
from estafeta.domain.codes import (
    CONTACT_TASK_KINDS,
    DEFAULT_OUTCOME,
    OUTCOMES_BY_KIND,
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Direction,
    EventType,
    TaskKind,
    TaskStatus,
)
from estafeta.domain.durations import Duration
from estafeta.domain.errors import BadInput, Conflict, Forbidden, SuccessorRequired
from estafeta.domain.policy import is_supervisor, require_active, work_authority
from estafeta.history.services import ticket_event
from estafeta.pipelines.models import Stage
from estafeta.tickets.models import Activity, StageVisit, Ticket
from estafeta.tickets.selectors import ticket_facts, ticket_for_update

from .models import Task

# A due time this far in the past is a typo, not a plan.
PAST_TOLERANCE = timedelta(minutes=5)
MAX_TITLE = 200
MAX_TEXT = 5000


@dataclass(frozen=True)
class TaskDraft:
    """A task someone wants planned. ``assignee=None`` means the caller decides (usually the
    person planning it, or the current stage's executor)."""

    kind: TaskKind | str
    title: str
    due_at: datetime
    assignee: User | None = None


def _kind(value: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in TaskKind)
        raise BadInput(f"{value!r} is not a task kind; use one of {allowed}",
                       code="bad_task_kind") from None


def _title(value: str) -> str:
    title = " ".join((value or "").split())
    if not title:
        raise BadInput("the task needs a title", code="bad_title")
    if len(title) > MAX_TITLE:
        raise BadInput(f"the task title is longer than {MAX_TITLE} characters", code="too_long")
    return title


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise BadInput(f"the {what} is longer than {MAX_TEXT} characters", code="too_long")
    return value


def _due(value: datetime, now: datetime) -> datetime:
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise BadInput("the due time needs a date, a time and a time zone", code="bad_due")
    if value < now - PAST_TOLERANCE:
        raise BadInput("the due time is in the past", code="due_in_past")
    return value


def task_insert(*, ticket: Ticket, visit: StageVisit | None, kind: TaskKind, title: str,
                assignee: User, due_at: datetime, actor: User | None, now: datetime,
                claimed: bool = False) -> Task:
    """The row only: callers (ticket and task services) write the event that explains it.

    ``claimed``: the caller already holds the assignee (``executor_pick`` and ``claim_users``
    lock until commit), so checking again would only cost a query.
    """
    if not claimed:
        claim_users([assignee])
    return insert(Task, ticket=ticket, visit=visit, kind=kind, title=title, assignee=assignee,
                  due_at=due_at, created_by=actor, created_at=now)


def task_from_template(*, ticket: Ticket, visit: StageVisit, stage: Stage, assignee: User,
                       actor: User | None, now: datetime, claimed: bool = False) -> Task:
    """The stage's next task, due after the template's offset in business time (``1d`` is
    the same time the next working day; ``4h`` four working hours; docs/calendar.md)."""
    template = stage.task_template
    if template is None:  # a validated pipeline has one on every open stage
        raise Conflict(f"stage {stage.code!r} has no next-task template", code="no_template")
    due = calendar_for(ticket.version).add(now, Duration.parse(template.due))
    return task_insert(ticket=ticket, visit=visit, kind=TaskKind(template.kind),
                       title=template.title, assignee=assignee, due_at=due, actor=actor, now=now,
                       claimed=claimed)


def task_from_draft(*, ticket: Ticket, visit: StageVisit | None, draft: TaskDraft,
                    default_assignee: User, actor: User | None, now: datetime,
                    default_claimed: bool = False) -> Task:
    return task_insert(ticket=ticket, visit=visit, kind=_kind(draft.kind),
                       title=_title(draft.title), assignee=draft.assignee or default_assignee,
                       due_at=_due(draft.due_at, now), actor=actor, now=now,
                       claimed=default_claimed and draft.assignee is None)


def task_brief(task: Task) -> dict[str, object]:
    """How a task appears in event payloads (no title: it may name the client)."""
    return {"id": task.pk, "kind": task.kind, "assignee": task.assignee_id, "due_at": task.due_at}


def _current_visit(ticket: Ticket) -> StageVisit | None:
    return (StageVisit.objects.select_related("executor")
            .filter(ticket=ticket, closed_at__isnull=True).first())


def task_plan(*, actor: User, ticket: Ticket, draft: TaskDraft) -> Task:
    """Plan a task on an open ticket (the assignee defaults to the person planning it)."""
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if not ticket.is_open:
            raise Conflict(f"{ticket.number} is closed; reopen it first", code="ticket_closed")
        visit = _current_visit(ticket)
        override = work_authority(actor_facts(actor), ticket_facts(ticket, visit))
        task = task_from_draft(ticket=ticket, visit=visit, draft=draft, default_assignee=actor,
                               actor=actor, now=now)
        ticket_event(ticket, EventType.TASK_PLANNED, actor,
                     {"task": task_brief(task), "override": override})
    return task


def _lock_task(task: Task) -> tuple[Ticket, Task]:
    ticket = ticket_for_update(task.ticket_id)
    task = Task.objects.select_related("assignee").get(pk=task.pk)
    if not task.is_open:
        raise Conflict(f"this task is already {task.status}", code="task_closed",
                       status=task.status)
    return ticket, task


def _task_authority(actor: User, ticket: Ticket, task: Task) -> bool:
    """The assignee works a task; a supervisor may, as a recorded override."""
    facts = actor_facts(actor)
    require_active(facts)
    if actor.pk == task.assignee_id:
        return False
    if is_supervisor(facts, ticket_facts(ticket, _current_visit(ticket), assignees=False)):
        return True
    raise Forbidden("only the task's assignee or their head can do this", code="not_assignee")


def _others_open(ticket: Ticket, task: Task) -> bool:
    return Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).exclude(pk=task.pk).exists()


def task_complete(
    *, actor: User, task: Task, outcome: str = TaskStatus.DONE, result: str = "",
    contact_outcome: str | None = None, duration_seconds: int | None = None,
    successor: TaskDraft | None = None,
) -> Task:
    """Close a task as done or missed (planned but not held).

    A done contact task (call, email, meeting, video) records the contact; a missed meeting or
    video presentation is recorded as missed, never as a contact. When this was the last open
    task of an open ticket, ``successor`` must be given and is planned in the same transaction
    (promise 2); otherwise ``SuccessorRequired`` refuses and nothing changes.
    """
    if outcome not in (TaskStatus.DONE, TaskStatus.MISSED):
        raise BadInput("a task is completed as done or missed", code="bad_outcome")
    result = _text(result, "result")
    if duration_seconds is not None and not 0 <= duration_seconds <= 86400:
        raise BadInput("the duration must be between 0 and 24 hours", code="bad_duration")
    now = clock.now()
    with transaction.atomic():
        ticket, task = _lock_task(task)
        override = _task_authority(actor, ticket, task)
        if ticket.is_open and successor is None and not _others_open(ticket, task):
            raise SuccessorRequired(
                f"this is the last open task of {ticket.number}: plan the next task in the same"
                " step (every open ticket always has a next task)")
        activity = _contact_of(task, outcome, contact_outcome, duration_seconds, result, actor,
                               now)
        task.status, task.result, task.done_at, task.done_by = outcome, result, now, actor
        task.save(update_fields=["status", "result", "done_at", "done_by"])
        planned = None
        if successor is not None:
            visit = _current_visit(ticket) if ticket.is_open else None
            if not ticket.is_open:
                raise Conflict(f"{ticket.number} is closed; no next task is needed",
                               code="ticket_closed")
            planned = task_from_draft(ticket=ticket, visit=visit, draft=successor,
                                      default_assignee=actor, actor=actor, now=now)
        ticket_event(ticket, EventType.TASK_COMPLETED, actor, {
            "task": task.pk, "kind": task.kind, "outcome": outcome, "override": override,
            "activity": _activity_brief(activity),
            "successor": task_brief(planned) if planned else None,
        })
    return task


def _contact_of(task: Task, outcome: str, contact_outcome: str | None,
                duration: int | None, note: str, actor: User, now: datetime) -> Activity | None:
    linked = Activity.objects.filter(task=task).order_by("pk").first()
    if linked is not None:
        # The contact was already made and logged (a reply sent from the ticket, a call the
        # exchange reported: ``tasks_fulfil`` linked it while the task had to stay open as the
        # ticket's last one); completing the task must not count it a second time.
        if outcome != TaskStatus.DONE:
            raise BadInput("the contact this task asked for was already made: complete it as"
                           " done", code="contact_made")
        return linked
    kind = CONTACT_TASK_KINDS.get(TaskKind(task.kind))
    if kind is None:
        if contact_outcome is not None:
            raise BadInput(f"a {task.kind} task records no contact outcome", code="bad_outcome")
        return None
    if outcome == TaskStatus.MISSED:
        if kind not in (ActivityKind.MEETING, ActivityKind.VIDEO):
            return None  # a call or email that was never made is simply not a contact
        chosen = ActivityOutcome.MISSED
    else:
        # An outgoing contact that happened: never "received", never "missed".
        allowed = sorted(o.value for o in OUTCOMES_BY_KIND[kind]
                         if o not in (ActivityOutcome.RECEIVED, ActivityOutcome.MISSED))
        value = contact_outcome or DEFAULT_OUTCOME[kind].value
        if value not in allowed:
            raise BadInput(f"{contact_outcome!r} is not an outcome of a {kind.value}; use one of"
                           f" {', '.join(allowed)}", code="bad_outcome")
        chosen = ActivityOutcome(value)
    return Activity.objects.create(
        ticket_id=task.ticket_id, kind=kind, direction=Direction.OUT, outcome=chosen,
        duration_seconds=duration, occurred_at=now, performed_by=actor, note=note,
        source=ActivitySource.TASK, task=task, created_at=now)


@dataclass(frozen=True)
class Fulfilled:
    """What ``tasks_fulfil`` did: the tasks it completed and the one it had to leave open."""

    done: tuple[Task, ...] = ()
    kept: Task | None = None  # the open ticket's last open task: still open, contact linked


def tasks_fulfil(*, actor: User | None, ticket: Ticket, tasks: Sequence[Task],
                 activity: Activity, successor: TaskDraft | None = None) -> Fulfilled:
    """Complete open contact tasks that a contact already logged has fulfilled: a reply sent
    from the ticket completes its "reply to the client" task, a connected outgoing call its
    "call the client back" task. The contact is linked to the task (``Activity.task``) instead
    of a second one being logged, so K1 counts it once; one ``task.completed`` event per task
    (payload ``by_contact: true``), written by ``actor`` (``None``: an integration).

    Only tasks of the contact's kind are completed (an email does not complete a call task).
    The person who made the contact completes the task whoever it was assigned to: the contact
    itself was checked when it was logged. Promise 2: if completing them would leave the open
    ticket with no open task, the last one is planned as ``successor`` when given; without one
    it stays open (``Fulfilled.kept``) with the contact linked, and completing it later by hand
    (with its successor) reuses that contact. ``successor`` is used only in that case (it is
    ignored when other tasks stay open). Call inside the transaction that logged the
    contact."""
    if activity.direction != Direction.OUT or activity.outcome in (
            ActivityOutcome.RECEIVED, ActivityOutcome.MISSED, ActivityOutcome.NO_ANSWER,
            ActivityOutcome.BUSY):
        return Fulfilled()  # not a contact made: nothing is fulfilled
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if activity.ticket_id != ticket.pk:
            raise BadInput("the contact was logged on another ticket", code="wrong_ticket")
        matching = [
            t for t in Task.objects.select_for_update().filter(
                pk__in=[t.pk for t in tasks], ticket=ticket, status=TaskStatus.OPEN)
            .order_by("due_at", "pk")
            if CONTACT_TASK_KINDS.get(TaskKind(t.kind)) == activity.kind]
        if not matching:
            return Fulfilled()
        others = (Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN)
                  .exclude(pk__in=[t.pk for t in matching]).exists())
        last_needed = ticket.is_open and not others
        kept = matching.pop() if last_needed and successor is None else None
        brief = _activity_brief(activity)
        done: list[Task] = []
        for index, task in enumerate(matching):
            planned = None
            if last_needed and successor is not None and index == len(matching) - 1:
                planned = task_from_draft(ticket=ticket, visit=_current_visit(ticket),
                                          draft=successor, default_assignee=actor or task.assignee,
                                          actor=actor, now=now)
            task.status, task.done_at, task.done_by = TaskStatus.DONE, now, actor
            task.save(update_fields=["status", "done_at", "done_by"])
            ticket_event(ticket, EventType.TASK_COMPLETED, actor, {
                "task": task.pk, "kind": task.kind, "outcome": TaskStatus.DONE,
                "override": False, "activity": brief, "by_contact": True,
                "successor": task_brief(planned) if planned else None})
            done.append(task)
        linked = kept or (done[0] if done else None)  # the kept task's completion reuses it
        if activity.task_id is None and linked is not None:
            activity.task = linked
            Activity.objects.filter(pk=activity.pk, task__isnull=True).update(task=linked)
    return Fulfilled(done=tuple(done), kept=kept)


def _activity_brief(activity: Activity | None) -> dict[str, object] | None:
    if activity is None:
        return None
    return {"id": activity.pk, "kind": activity.kind, "direction": activity.direction,
            "outcome": activity.outcome, "duration": activity.duration_seconds}


def task_reassign(*, actor: User, task: Task, assignee: User, reason: str = "") -> Task:
    reason = _text(reason, "reason")
    with transaction.atomic():
        ticket, task = _lock_task(task)
        override = _task_authority(actor, ticket, task)
        if assignee.pk == task.assignee_id:
            raise BadInput(f"the task is already assigned to {assignee.username}",
                           code="no_change")
        claim_users([assignee])
        old = task.assignee_id
        task.assignee = assignee
        task.save(update_fields=["assignee"])
        ticket_event(ticket, EventType.TASK_REASSIGNED, actor, {
            "task": task.pk, "from": old, "to": assignee.pk, "reason": reason,
            "override": override})
    return task


def task_reschedule(*, actor: User, task: Task, due_at: datetime, reason: str) -> Task:
    """Move a due time; the reason is required and kept (a promise to the client moved)."""
    reason = _text(reason, "reason")
    if not reason:
        raise BadInput("say why the due time moves", code="reason_required")
    now = clock.now()
    due_at = _due(due_at, now)
    with transaction.atomic():
        ticket, task = _lock_task(task)
        override = _task_authority(actor, ticket, task)
        old = task.due_at
        task.due_at = due_at
        task.save(update_fields=["due_at"])
        ticket_event(ticket, EventType.TASK_RESCHEDULED, actor, {
            "task": task.pk, "from": old, "to": due_at, "reason": reason, "override": override})
    return task


def task_cancel(*, actor: User, task: Task, reason: str) -> Task:
    """Cancel a task that is no longer needed; never the last open task of an open ticket."""
    reason = _text(reason, "reason")
    if not reason:
        raise BadInput("say why the task is cancelled", code="reason_required")
    now = clock.now()
    with transaction.atomic():
        ticket, task = _lock_task(task)
        override = _task_authority(actor, ticket, task)
        if ticket.is_open and not _others_open(ticket, task):
            raise SuccessorRequired(
                f"this is the last open task of {ticket.number}: complete it with a successor"
                " instead of cancelling it")
        task.status, task.result, task.done_at, task.done_by = (
            TaskStatus.CANCELLED, reason, now, actor)
        task.save(update_fields=["status", "result", "done_at", "done_by"])
        ticket_event(ticket, EventType.TASK_CANCELLED, actor,
                     {"task": task.pk, "reason": reason, "override": override})
    return task


def tasks_cancel_open(*, ticket: Ticket, actor: User | None, reason: str,
                      now: datetime) -> list[int]:
    """Cancel every open task of a ticket that is closing; the ticket's event lists them."""
    ids = list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN)
               .values_list("pk", flat=True))
    Task.objects.filter(pk__in=ids).update(status=TaskStatus.CANCELLED, result=reason,
                                           done_at=now, done_by=actor)
    return ids
