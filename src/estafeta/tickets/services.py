"""Writes about tickets: the whole lifecycle, one transaction and one event per call.

Every function locks the ticket first (``ticket_for_update``), checks who may act
(``domain.policy``), applies the pipeline's rules (``domain.pipeline``), writes the rows and
the event, and either commits all of it or, on any refusal, nothing. Promise 2 is kept here:
no function leaves an open ticket without an open task.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.accounts.services import claim_users
from estafeta.calendars.selectors import calendar_for
from estafeta.clients.models import Client
from estafeta.clients.selectors import client_facts
from estafeta.core import clock
from estafeta.core.db import insert
from estafeta.domain.codes import (
    OUTCOMES_BY_KIND,
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Channel,
    Direction,
    DocumentKind,
    EventType,
    EvidenceKind,
    MoveKind,
    Role,
    StageSemantic,
    TicketStatus,
)
from estafeta.domain.errors import BadInput, Conflict, EvidenceInvalid, Forbidden, NotFound
from estafeta.domain.evidence import parse_money, validate_evidence
from estafeta.domain.pipeline import plan_forward, plan_return, require_checklist
from estafeta.domain.policy import (
    outcome_authority,
    require_active,
    stage_authority,
    supervisor_only,
    work_authority,
)
from estafeta.history.services import ticket_event
from estafeta.pipelines.executors import executor_pick
from estafeta.pipelines.models import Pipeline, Stage
from estafeta.pipelines.selectors import lost_reason_for, version_for_new_ticket
from estafeta.tasks.services import (
    TaskDraft,
    task_brief,
    task_from_draft,
    task_from_template,
    tasks_cancel_open,
)

from .files import store_file
from .models import Activity, ChecklistEntry, Document, StageVisit, Ticket
from .numbering import next_number
from .selectors import (
    open_visit,
    require_stage,
    stage_pausable,
    ticket_by_number,
    ticket_facts,
    ticket_for_update,
)

MAX_SUBJECT = 200
MAX_TEXT = 10000
FUTURE_TOLERANCE = timedelta(minutes=5)
_UNSET: Any = object()


# --- input checks --------------------------------------------------------------------------


def _subject(value: str) -> str:
    subject = " ".join((value or "").split())
    if not subject:
        raise BadInput("the ticket needs a subject", code="bad_subject")
    if len(subject) > MAX_SUBJECT:
        raise BadInput(f"the subject is longer than {MAX_SUBJECT} characters", code="too_long")
    return subject


def _text(value: str, what: str, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise BadInput(f"the {what} is required", code="reason_required")
    if len(text) > MAX_TEXT:
        raise BadInput(f"the {what} is longer than {MAX_TEXT} characters", code="too_long")
    return text


def _amount(value: Any, *, positive: bool = False) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = parse_money(value)
    except EvidenceInvalid as exc:
        raise BadInput(exc.message, code="bad_amount") from None
    if positive and amount <= 0:
        raise BadInput("the amount must be greater than zero", code="bad_amount")
    return amount


def _currency(value: str) -> str:
    code = (value or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise BadInput(f"{value!r} is not a currency code (like RUB)", code="bad_currency")
    return code


def _choice(enum: Any, value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise BadInput(f"{value!r} is not a {what}; use one of {allowed}",
                       code=f"bad_{what.replace(' ', '_')}") from None


# --- helpers -------------------------------------------------------------------------------


def _stage(ticket: Ticket, code: str) -> Stage:
    for stage in ticket.version.stage_list:
        if stage.code == code:
            return stage
    raise BadInput(f"{code!r} is not a stage of this pipeline", code="unknown_stage")


def _entries(visit: StageVisit) -> dict[str, ChecklistEntry]:
    """Item code → entry for the items done in this visit (codes from the cached stage)."""
    codes = {item.pk: item.code for item in visit.stage.items.all()}
    return {codes[e.item_id]: e for e in ChecklistEntry.objects.filter(visit=visit)}


def _snapshot(visit: StageVisit, entries: dict[str, ChecklistEntry]) -> list[dict[str, Any]]:
    """The checklist as it stood when the stage closed (stored on the visit)."""
    out = []
    for item in visit.stage.items.all():
        entry = entries.get(item.code)
        out.append({
            "code": item.code, "title": item.title, "required": item.required,
            "evidence_kind": item.evidence, "done": entry is not None,
            "evidence": entry.evidence if entry else None,
            "by": entry.done_by_id if entry else None,
            "at": entry.done_at.isoformat() if entry else None,
        })
    return out


def _public_evidence(kind: str, value: Any) -> Any:
    """Text evidence may hold personal data: events keep its digest, the visit row the text."""
    if kind == EvidenceKind.TEXT and isinstance(value, str):
        return {"sha256": hashlib.sha256(value.encode()).hexdigest()}
    return value


def _snapshot_payload(snapshot: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"code": s["code"], "done": s["done"], "by": s["by"],
             "evidence": _public_evidence(s["evidence_kind"], s["evidence"])} for s in snapshot]


def _close_visit(visit: StageVisit, actor: User | None, now: datetime, override: bool,
                 entries: dict[str, ChecklistEntry] | None = None) -> list[dict[str, Any]]:
    snapshot = _snapshot(visit, _entries(visit) if entries is None else entries)
    visit.closed_at, visit.closed_by, visit.override = now, actor, override
    visit.checklist_snapshot = snapshot
    visit.save(update_fields=["closed_at", "closed_by", "override", "checklist_snapshot"])
    return snapshot


def _enter(ticket: Ticket, stage: Stage, *, seq: int, kind: MoveKind, actor: User | None,
           executor: User | None, now: datetime) -> StageVisit:
    """A new visit; terminal stages are entered and left at once (closed tickets have no open
    stage)."""
    terminal = stage.semantic != StageSemantic.OPEN
    due = risk = None
    target = stage.sla_target
    if not terminal and target is not None and not target.is_zero():
        due, risk = calendar_for(ticket.version).sla(now, target, _risk_share())
    return insert(
        StageVisit, ticket=ticket, stage=stage, seq=seq, kind=kind, entered_at=now,
        entered_by=actor, executor=None if terminal else executor,
        closed_at=now if terminal else None, closed_by=actor if terminal else None,
        sla_due_at=due, sla_risk_at=risk)


def _risk_share() -> float:
    return float(getattr(settings, "ESTAFETA_SLA_RISK_SHARE", 0.8))


def _client_facts(ticket: Ticket) -> dict[str, Any]:
    """Classification as of this event: analytics read it from here, not from today's client."""
    return client_facts(ticket.client_id).payload()


def _save(ticket: Ticket, now: datetime, *fields: str) -> None:
    ticket.updated_at = now
    ticket.save(update_fields=[*fields, "updated_at"])


def _lock_open(ticket: Ticket, stage: str | None = None) -> tuple[Ticket, StageVisit]:
    """Lock an open ticket and read its current stage visit; ``stage`` is the stage the caller
    saw (a ticket that has moved on meanwhile is a conflict, not a silent change)."""
    ticket = ticket_for_update(ticket)
    if not ticket.is_open:
        raise Conflict(f"{ticket.number} is {ticket.status}", code="ticket_closed",
                       status=ticket.status)
    visit = open_visit(ticket)
    if stage is not None:
        require_stage(ticket, visit, stage)
    return ticket, visit


def _last_visit_seq(ticket: Ticket) -> int:
    last = StageVisit.objects.filter(ticket=ticket).order_by("-seq").values_list("seq",
                                                                                flat=True).first()
    return last or 0


# --- creation ------------------------------------------------------------------------------


def ticket_create(
    *, actor: User | None, pipeline: Pipeline | str, client: Client, channel: str | Channel,
    subject: str, description: str = "", amount: Any = None, owner: User | None = None,
    first_task: TaskDraft | None = None,
) -> Ticket:
    """Register a request: a new number, the first stage, an owner and a first task.

    The owner is ``owner`` when given, else whoever the first stage's executor rule picks (a
    seller or head creating their own ticket counts as the rule's "owner"). The first task comes
    from the stage's template unless ``first_task`` is given. ``actor=None`` is the system
    (intake, imports).
    """
    if actor is not None:
        require_active(actor_facts(actor))
    channel = _choice(Channel, channel, "channel")
    subject = _subject(subject)
    description = _text(description, "description")
    expected = _amount(amount)
    now = clock.now()
    with transaction.atomic():
        facts = client_facts(client.pk)
        if facts.anonymised:
            raise BadInput("this client was anonymised; register the request with a new client",
                           code="client_anonymised")
        # Always read the current version now: an object loaded earlier may predate a new one.
        version = version_for_new_ticket(pipeline if isinstance(pipeline, str) else pipeline.code)
        first = version.stage_list[0]
        rule = first.executor_rule
        if owner is None:
            if rule is None:  # pragma: no cover - validated pipelines always have one
                raise Conflict("the first stage has no executor rule", code="no_executor")
            own = actor if actor is not None and actor.role in (Role.SELLER, Role.HEAD) else None
            owner = executor_pick(rule=rule, owner=own, at=now, team_id=first.executor_team_id)
        else:
            claim_users([owner])
        prefix = version.number_prefix or _default_prefix()
        ticket = insert(
            Ticket, number=next_number(prefix, now), pipeline_id=version.pipeline_id,
            version=version, stage=first, client_id=facts.id, owner=owner,
            team_id=owner.team_id, created_by=actor, channel=channel, subject=subject,
            description=description, amount=expected, created_at=now, updated_at=now)
        visit = _enter(ticket, first, seq=1, kind=MoveKind.ENTER, actor=actor, executor=owner,
                       now=now)
        task = _first_task(ticket, visit, first, owner, first_task, actor, now)
        ticket_event(ticket, EventType.TICKET_CREATED, actor, new_stream=True, payload={
            "number": ticket.number, "pipeline": version.pipeline.code, "version": version.number,
            "stage": first.code, "channel": channel, "owner": owner.pk, "team": owner.team_id,
            "executor": owner.pk, "amount": expected, "task": task_brief(task),
            **facts.payload(),
        })
    return ticket


def _default_prefix() -> str:
    return str(settings.ESTAFETA_TICKET_PREFIX)


def ticket_update(*, actor: User, ticket: Ticket, subject: str | None = None,
                  description: str | None = None, amount: Any = _UNSET) -> Ticket:
    """Change what the request is about or the expected amount (``amount=None`` clears it)."""
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket)
        override = work_authority(actor_facts(actor), ticket_facts(ticket, visit))
        changes: dict[str, Any] = {}
        if subject is not None and _subject(subject) != ticket.subject:
            ticket.subject, changes["subject"] = _subject(subject), "*"
        if description is not None and _text(description, "description") != ticket.description:
            ticket.description, changes["description"] = _text(description, "description"), "*"
        if amount is not _UNSET:
            new = _amount(amount)
            if new != ticket.amount:
                changes["amount"] = [ticket.amount, new]
                ticket.amount = new
        if not changes:
            return ticket
        _save(ticket, now, "subject", "description", "amount")
        ticket_event(ticket, EventType.TICKET_UPDATED, actor,
                     {"changes": changes, "override": override})
    return ticket


# --- checklist and stages ------------------------------------------------------------------


def checklist_item_complete(
    *, actor: User, ticket: Ticket, stage: str, item: str, evidence: Any = None,
    file: File | None = None,
) -> ChecklistEntry:
    """Mark a checklist item of the current stage done, with the evidence it asks for.

    Doing an item again replaces its evidence (the history keeps both). ``stage`` is the stage
    the person saw; if the ticket has moved on, ``Conflict`` (stale_stage).
    """
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket, stage)
        override = stage_authority(actor_facts(actor), ticket_facts(ticket, visit, assignees=False))
        items = list(visit.stage.items.all())  # prefetched with the cached version
        template = next((i for i in items if i.code == item), None)
        if template is None:
            codes = ", ".join(i.code for i in items) or "none"
            raise BadInput(f"{item!r} is not an item of stage {stage!r} (items: {codes})",
                           code="unknown_item")
        if template.evidence == EvidenceKind.FILE:
            if file is None:
                raise EvidenceInvalid("this item needs a file")
            stored = store_file(file, actor=actor)
            evidence = {"file_id": stored.pk, "sha256": stored.sha256, "size": stored.size}
        elif file is not None:
            raise EvidenceInvalid("this item takes no file")
        value = validate_evidence(template.evidence, evidence)
        entry, created = ChecklistEntry.objects.update_or_create(
            visit=visit, item=template,
            defaults={"evidence": value, "done_by": actor, "done_at": now, "override": override})
        ticket_event(ticket, EventType.CHECKLIST_ITEM_COMPLETED, actor, {
            "stage": stage, "item": item, "evidence_kind": template.evidence,
            "evidence": _public_evidence(template.evidence, value), "redone": not created,
            "override": override})
    return entry


def stage_close(
    *, actor: User, ticket: Ticket, stage: str, to: str | None = None, amount: Any = None,
    next_task: TaskDraft | None = None,
) -> Ticket:
    """Close the current stage by its checklist and move on, all in one transaction.

    Gate (executor or a head's recorded override; every required item done) → next stage (or
    ``to`` over skippable stages) → its executor by rule → its first task (template, or
    ``next_task``). Closing the last open stage enters the won stage and wins the ticket;
    ``amount`` then sets the deal amount. The completed checklist is stored with the move.
    """
    now = clock.now()
    new_amount = _amount(amount)
    with transaction.atomic():
        ticket, visit = _lock_open(ticket, stage)
        override = stage_authority(actor_facts(actor), ticket_facts(ticket, visit, assignees=False))
        move = plan_forward(ticket.version.stage_facts(), stage, to)
        entries = _entries(visit)
        require_checklist(visit.stage.item_facts(), entries)
        snapshot = _snapshot_payload(_close_visit(visit, actor, now, override, entries))
        target = _stage(ticket, move.target.code)
        transition = {"from": stage, "to": target.code, "kind": move.kind}
        if new_amount is not None and new_amount != ticket.amount:
            ticket.amount = new_amount
        if move.wins:
            _enter(ticket, target, seq=visit.seq + 1, kind=move.kind, actor=actor,
                   executor=None, now=now)
            cancelled = tasks_cancel_open(ticket=ticket, actor=actor, reason="ticket won",
                                          now=now)
            ticket.status, ticket.closed_at, ticket.stage = TicketStatus.WON, now, target
            _save(ticket, now, "status", "closed_at", "stage", "amount")
            ticket_event(ticket, EventType.TICKET_WON, actor, {
                "transition": transition, "checklist": snapshot, "amount": ticket.amount,
                "currency": ticket.currency, "cancelled_tasks": cancelled, "override": override,
                **_client_facts(ticket)})
            return ticket
        executor = _executor_for(target, ticket, now)
        new_visit = _enter(ticket, target, seq=visit.seq + 1, kind=move.kind, actor=actor,
                           executor=executor, now=now)
        task = _first_task(ticket, new_visit, target, executor, next_task, actor, now)
        ticket.stage = target
        _save(ticket, now, "stage", "amount")
        ticket_event(ticket, EventType.STAGE_CLOSED, actor, {
            "transition": transition, "checklist": snapshot, "executor": executor.pk,
            "task": task_brief(task), "amount": ticket.amount, "override": override})
    return ticket


def ticket_close_won(*, actor: User, ticket: Ticket, stage: str, amount: Any = None) -> Ticket:
    """Win the ticket: close the current stage into the won stage (checklists still apply)."""
    won = next(s.code for s in ticket.version.stage_list if s.semantic == StageSemantic.WON)
    return stage_close(actor=actor, ticket=ticket, stage=stage, to=won, amount=amount)


def _executor_for(stage: Stage, ticket: Ticket, now: datetime) -> User:
    rule = stage.executor_rule
    if rule is None:  # pragma: no cover - validated pipelines always have one
        raise Conflict(f"stage {stage.code!r} has no executor rule", code="no_executor")
    # Only the owner's id and the ticket's team are needed: executor_pick reads the person it
    # chooses afresh (and holds them), so the owner is not loaded twice.
    owner = User(pk=ticket.owner_id, team_id=ticket.team_id)
    return executor_pick(rule=rule, owner=owner, at=now, team_id=stage.executor_team_id)


def _first_task(ticket: Ticket, visit: StageVisit, stage: Stage, executor: User,
                draft: TaskDraft | None, actor: User | None, now: datetime) -> Any:
    """The stage's first task for ``executor``, who was just picked and locked."""
    if draft is not None:
        return task_from_draft(ticket=ticket, visit=visit, draft=draft,
                               default_assignee=executor, actor=actor, now=now,
                               default_claimed=True)
    return task_from_template(ticket=ticket, visit=visit, stage=stage, assignee=executor,
                              actor=actor, now=now, claimed=True)


def stage_return(*, actor: User, ticket: Ticket, stage: str, to: str, reason: str) -> Ticket:
    """A head sends the ticket back to an earlier stage (a new visit there, a new task)."""
    reason = _text(reason, "reason", required=True)
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket, stage)
        supervisor_only(actor_facts(actor), ticket_facts(ticket, visit, assignees=False),
                        "return a ticket to an earlier stage")
        move = plan_return(ticket.version.stage_facts(), stage, to)
        snapshot = _snapshot_payload(_close_visit(visit, actor, now, True))
        target = _stage(ticket, move.target.code)
        executor = _executor_for(target, ticket, now)
        new_visit = _enter(ticket, target, seq=visit.seq + 1, kind=MoveKind.BACKWARD,
                           actor=actor, executor=executor, now=now)
        task = _first_task(ticket, new_visit, target, executor, None, actor, now)
        ticket.stage = target
        _save(ticket, now, "stage")
        ticket_event(ticket, EventType.STAGE_RETURNED, actor, {
            "transition": {"from": stage, "to": target.code, "kind": MoveKind.BACKWARD},
            "checklist": snapshot, "executor": executor.pk, "task": task_brief(task),
            "reason": reason})
    return ticket


# --- waiting for the client ----------------------------------------------------------------


def stage_pause(*, actor: User, ticket: Ticket, reason: str, stage: str | None = None) -> Ticket:
    """Stop the current stage's SLA clock while the ticket waits for the client.

    Only where the stage allows it (``pausable: true``); the business time left is kept on the
    visit and the due/at-risk moments are cleared, so the monitor does not see the visit.
    """
    reason = _text(reason, "reason", required=True)
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket, stage)
        override = stage_authority(actor_facts(actor), ticket_facts(ticket, visit, assignees=False))
        if not stage_pausable(ticket, visit.stage):
            raise Forbidden(f"stage {visit.stage.code!r} cannot be paused in this pipeline",
                            code="not_pausable")
        if visit.paused_at is not None:
            raise Conflict("the stage is already waiting for the client", code="already_paused")
        calendar = calendar_for(ticket.version)
        left = risk_left = None
        if visit.sla_due_at is not None:
            left = calendar.between(now, visit.sla_due_at)
            risk_left = calendar.between(now, visit.sla_risk_at or now)
        visit.paused_at, visit.sla_left, visit.sla_risk_left = now, left, risk_left
        visit.sla_due_at = visit.sla_risk_at = None
        visit.save(update_fields=["paused_at", "sla_left", "sla_risk_left", "sla_due_at",
                                  "sla_risk_at"])
        _save(ticket, now)
        ticket_event(ticket, EventType.STAGE_PAUSED, actor, {
            "stage": visit.stage.code, "reason": reason,
            "sla_left": int(left.total_seconds()) if left is not None else None,
            "override": override})
    return ticket


def stage_resume(*, actor: User, ticket: Ticket, stage: str | None = None) -> Ticket:
    """Start the stage's SLA clock again: due and at risk after the business time that was left
    when it stopped."""
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket, stage)
        override = stage_authority(actor_facts(actor), ticket_facts(ticket, visit, assignees=False))
        if visit.paused_at is None:
            raise Conflict("the stage is not waiting for the client", code="not_paused")
        calendar = calendar_for(ticket.version)
        paused_for = calendar.between(visit.paused_at, now)
        if visit.sla_left is not None:
            visit.sla_due_at = calendar.add_time(now, visit.sla_left)
            visit.sla_risk_at = calendar.add_time(now, visit.sla_risk_left or timedelta())
        visit.paused_at = visit.sla_left = visit.sla_risk_left = None
        visit.save(update_fields=["paused_at", "sla_left", "sla_risk_left", "sla_due_at",
                                  "sla_risk_at"])
        _save(ticket, now)
        ticket_event(ticket, EventType.STAGE_RESUMED, actor, {
            "stage": visit.stage.code, "sla_due_at": visit.sla_due_at,
            "paused_for": int(paused_for.total_seconds()), "override": override})
    return ticket


# --- outcomes ------------------------------------------------------------------------------


def ticket_close_lost(*, actor: User, ticket: Ticket, reason: str, note: str = "") -> Ticket:
    """Close the ticket as lost with a reason from the configured list; open tasks end."""
    note = _text(note, "note")
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket)
        override = outcome_authority(actor_facts(actor),
                                     ticket_facts(ticket, visit, assignees=False))
        lost_reason = lost_reason_for(ticket.pipeline_id, reason)
        at_stage = visit.stage.code
        snapshot = _snapshot_payload(_close_visit(visit, actor, now, override))
        lost_stage = next((s for s in ticket.version.stage_list
                           if s.semantic == StageSemantic.LOST), None)
        transition = None
        if lost_stage is not None:
            _enter(ticket, lost_stage, seq=visit.seq + 1, kind=MoveKind.CLOSE, actor=actor,
                   executor=None, now=now)
            transition = {"from": at_stage, "to": lost_stage.code, "kind": MoveKind.CLOSE}
            ticket.stage = lost_stage
        cancelled = tasks_cancel_open(ticket=ticket, actor=actor, reason="ticket lost", now=now)
        ticket.status, ticket.closed_at = TicketStatus.LOST, now
        ticket.lost_reason, ticket.close_note = lost_reason, note
        _save(ticket, now, "status", "closed_at", "stage", "lost_reason", "close_note")
        ticket_event(ticket, EventType.TICKET_LOST, actor, {
            "reason": lost_reason.code, "at_stage": at_stage, "transition": transition,
            "checklist": snapshot, "amount": ticket.amount, "cancelled_tasks": cancelled,
            "override": override, **_client_facts(ticket)})
    return ticket


def ticket_void(*, actor: User, ticket: Ticket, reason: str,
                duplicate_of: str | None = None) -> Ticket:
    """Close a ticket that was never a real request (duplicate, spam, test) with a reason."""
    reason = _text(reason, "reason", required=True)
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket)
        override = outcome_authority(actor_facts(actor),
                                     ticket_facts(ticket, visit, assignees=False))
        original = None
        if duplicate_of:
            try:
                original = ticket_by_number(duplicate_of)
            except NotFound:
                raise BadInput(f"there is no ticket {duplicate_of!r}",
                               code="unknown_ticket") from None
            if original.pk == ticket.pk:
                raise BadInput("a ticket cannot duplicate itself", code="bad_duplicate")
        void_locked(ticket, visit, actor=actor, now=now, reason=reason, close_note=reason,
                    duplicate_of=original, override=override)
    return ticket


def void_locked(ticket: Ticket, visit: StageVisit, *, actor: User | None, now: datetime,
                reason: str, close_note: str, duplicate_of: Ticket | None, override: bool,
                merged_into: Ticket | None = None, task_reason: str = "ticket void",
                payload: dict[str, Any] | None = None) -> None:
    """The void transition of a locked open ticket, after the caller's authority checks: the
    stage visit closes with its checklist snapshot, open tasks are cancelled, one
    ``ticket.voided`` event. Shared by ``ticket_void`` and intake's merge."""
    at_stage = visit.stage.code
    snapshot = _snapshot_payload(_close_visit(visit, actor, now, override))
    cancelled = tasks_cancel_open(ticket=ticket, actor=actor, reason=task_reason, now=now)
    ticket.status, ticket.closed_at = TicketStatus.VOID, now
    ticket.close_note, ticket.duplicate_of = close_note, duplicate_of
    fields = ["status", "closed_at", "close_note", "duplicate_of"]
    if merged_into is not None:
        ticket.merged_into = merged_into
        fields.append("merged_into")
    _save(ticket, now, *fields)
    ticket_event(ticket, EventType.TICKET_VOIDED, actor, {
        "reason": reason, "duplicate_of": duplicate_of.number if duplicate_of else None,
        "at_stage": at_stage, "checklist": snapshot, "cancelled_tasks": cancelled,
        "override": override, **(payload or {})})


def ticket_reopen(*, actor: User, ticket: Ticket, reason: str, to: str | None = None) -> Ticket:
    """A head reopens a closed ticket: back into an open stage (by default the last one it was
    in) with an executor by rule and a new task. The earlier outcome stays in the history."""
    reason = _text(reason, "reason", required=True)
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if ticket.is_open:
            raise Conflict(f"{ticket.number} is open", code="ticket_open")
        supervisor_only(actor_facts(actor), ticket_facts(ticket, None, assignees=False),
                        "reopen a ticket")
        if to is None:
            last_open = (StageVisit.objects.filter(ticket=ticket, stage__semantic="open")
                         .order_by("-seq").select_related("stage").first())
            target = last_open.stage if last_open else ticket.version.stage_list[0]
        else:
            target = _stage(ticket, to)
            if target.semantic != StageSemantic.OPEN:
                raise BadInput(f"{to!r} is not an open stage", code="not_open_stage")
        previous = ticket.status
        owner_changed = not ticket.owner.is_active
        executor = _executor_for(target, ticket, now)
        if owner_changed:  # a closed ticket's owner may have left since; the executor takes it
            ticket.owner, ticket.team_id = executor, executor.team_id
        visit = _enter(ticket, target, seq=_last_visit_seq(ticket) + 1, kind=MoveKind.REOPEN,
                       actor=actor, executor=executor, now=now)
        task = _first_task(ticket, visit, target, executor, None, actor, now)
        from_stage = ticket.stage.code
        ticket.status, ticket.closed_at, ticket.stage = TicketStatus.OPEN, None, target
        ticket.lost_reason, ticket.close_note = None, ""
        _save(ticket, now, "status", "closed_at", "stage", "lost_reason", "close_note", "owner",
              "team")
        ticket_event(ticket, EventType.TICKET_REOPENED, actor, {
            "transition": {"from": from_stage, "to": target.code, "kind": MoveKind.REOPEN},
            "previous_status": previous, "reason": reason, "executor": executor.pk,
            "owner_changed": owner_changed, "task": task_brief(task)})
    return ticket


def ticket_reassign(*, actor: User, ticket: Ticket, owner: User, reason: str = "",
                    move_tasks: bool = True) -> Ticket:
    """A head gives the ticket to another owner; the old owner's open tasks on it and the
    current stage (when the old owner was its executor) move too. Past figures keep the old
    owner: every earlier event recorded who owned the ticket then."""
    reason = _text(reason, "reason")
    now = clock.now()
    with transaction.atomic():
        ticket, visit = _lock_open(ticket)
        supervisor_only(actor_facts(actor), ticket_facts(ticket, visit, assignees=False),
                        "reassign a ticket")
        if owner.pk == ticket.owner_id:
            raise BadInput(f"{ticket.number} is already {owner.username}'s", code="no_change")
        claim_users([owner])
        old = ticket.owner_id
        executor_moved = visit.executor_id == old
        if executor_moved:
            visit.executor = owner
            visit.save(update_fields=["executor"])
        tasks: list[int] = []
        if move_tasks:
            open_tasks = ticket.tasks.filter(assignee_id=old, status="open")
            tasks = list(open_tasks.values_list("pk", flat=True))
            open_tasks.update(assignee=owner)
        ticket.owner, ticket.team_id = owner, owner.team_id
        _save(ticket, now, "owner", "team")
        ticket_event(ticket, EventType.TICKET_REASSIGNED, actor, {
            "from": old, "to": owner.pk, "team": owner.team_id, "executor_moved": executor_moved,
            "tasks": tasks, "reason": reason})
    return ticket


# --- contacts and documents ----------------------------------------------------------------


def activity_log(
    *, actor: User | None, ticket: Ticket, kind: str, direction: str, outcome: str,
    duration_seconds: int | None = None, occurred_at: datetime | None = None, note: str = "",
    source: str = ActivitySource.MANUAL,
) -> Activity:
    """Record a contact with the client. ``actor=None`` is an integration (intake, telephony)."""
    kind_ = _choice(ActivityKind, kind, "contact kind")
    direction_ = _choice(Direction, direction, "direction")
    outcome_ = _choice(ActivityOutcome, outcome, "outcome")
    source_ = _choice(ActivitySource, source, "source")
    if outcome_ not in OUTCOMES_BY_KIND[kind_]:
        allowed = ", ".join(sorted(o.value for o in OUTCOMES_BY_KIND[kind_]))
        raise BadInput(f"a {kind_.value} has outcome {allowed}, not {outcome_.value}",
                       code="bad_outcome")
    if kind_ is ActivityKind.EMAIL and (outcome_ is ActivityOutcome.SENT) != (
            direction_ is Direction.OUT):
        raise BadInput("an outgoing email is sent, an incoming one received",
                       code="bad_outcome")
    if duration_seconds is not None and not 0 <= duration_seconds <= 86400:
        raise BadInput("the duration must be between 0 and 24 hours", code="bad_duration")
    note = _text(note, "note")
    now = clock.now()
    when = occurred_at or now
    if timezone.is_naive(when):
        raise BadInput("the time of the contact needs a time zone", code="naive_time")
    if when > now + FUTURE_TOLERANCE:
        raise BadInput("a contact cannot be logged in the future; plan a task instead",
                       code="in_future")
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if ticket.status == TicketStatus.VOID:
            raise Conflict(f"{ticket.number} is void", code="ticket_void")
        override = False
        if actor is not None:
            visit = open_visit(ticket) if ticket.is_open else None
            override = work_authority(actor_facts(actor), ticket_facts(ticket, visit))
        activity = Activity.objects.create(
            ticket=ticket, kind=kind_, direction=direction_, outcome=outcome_,
            duration_seconds=duration_seconds, occurred_at=when, performed_by=actor, note=note,
            source=source_, created_at=now)
        ticket_event(ticket, EventType.ACTIVITY_LOGGED, actor, {
            "activity": activity.pk, "kind": kind_, "direction": direction_,
            "outcome": outcome_, "duration": duration_seconds, "occurred_at": when,
            "source": source_, "override": override})
    return activity


def document_issue(*, actor: User, ticket: Ticket, kind: str, number: str, amount: Any,
                   currency: str = "RUB") -> Document:
    """Record a quote, invoice or contract issued to the client (numbers unique per kind)."""
    kind_ = _choice(DocumentKind, kind, "document kind")
    try:
        number = validate_evidence(EvidenceKind.DOCUMENT_NUMBER, number)
    except EvidenceInvalid as exc:
        raise BadInput(exc.message, code="bad_document_number") from None
    value = _amount(amount, positive=True)
    if value is None:
        raise BadInput("the document needs an amount", code="bad_amount")
    currency = _currency(currency)
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if ticket.status not in (TicketStatus.OPEN, TicketStatus.WON):
            raise Conflict(f"{ticket.number} is {ticket.status}", code="ticket_closed")
        visit = open_visit(ticket) if ticket.is_open else None
        override = work_authority(actor_facts(actor), ticket_facts(ticket, visit))
        if Document.objects.filter(kind=kind_, number=number).exists():
            raise Conflict(f"a {kind_.value} numbered {number} was already issued",
                           code="document_exists")
        try:
            with transaction.atomic():
                document = Document.objects.create(ticket=ticket, kind=kind_, number=number,
                                                   amount=value, currency=currency,
                                                   issued_at=now, issued_by=actor)
        except IntegrityError:  # issued concurrently by someone else
            raise Conflict(f"a {kind_.value} numbered {number} was already issued",
                           code="document_exists") from None
        ticket_event(ticket, EventType.DOCUMENT_ISSUED, actor, {
            "document": document.pk, "kind": kind_, "number": number, "amount": value,
            "currency": currency, "override": override})
    return document
