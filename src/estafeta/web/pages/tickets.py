"""The ticket page and its actions.

The page shows the ticket (client with contacts, pipeline, stage progress, owner, amount), the
current stage's checklist with an evidence input per item, the tasks, contacts, documents and
the timeline of every event. Each action is a POST (with CSRF) to ``tickets/<number>/<action>/``
that calls one service and redirects back; a refusal re-renders the page with the translated
message, a 4xx status and nothing changed. The ticket is found only through ``access_ticket``:
missing and forbidden tickets get the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models import Case, IntegerField, Value, When
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import ClientContact
from estafeta.control.selectors import sla_clock, ticket_escalations
from estafeta.core import clock
from estafeta.domain.codes import EventType, StageSemantic, TaskStatus
from estafeta.domain.errors import EstafetaError, NotFound
from estafeta.domain.policy import TicketFacts, is_participant, is_supervisor
from estafeta.intake.selectors import survivor_of
from estafeta.pipelines.models import Stage
from estafeta.pipelines.selectors import lost_reasons_usable
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, task_plan
from estafeta.tickets.access import access_ticket
from estafeta.tickets.models import Activity, Document, StageVisit, Ticket
from estafeta.tickets.selectors import (
    evidence_file,
    stage_pausable,
    ticket_timeline,
    visit_entries,
)
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    document_issue,
    stage_close,
    stage_pause,
    stage_resume,
    ticket_close_lost,
    ticket_close_won,
    ticket_reassign,
    ticket_reopen,
    ticket_void,
)

from ..errors import describe, status_for
from ..forms import (
    ActivityForm,
    ChecklistItemForm,
    DocumentForm,
    LostForm,
    ReassignForm,
    StageChoiceForm,
    StageCloseForm,
    TaskPlanForm,
    VoidForm,
    WonForm,
)
from ..labels import label
from .common import TICKET_ROLES, error_page, roles_required
from .intake import ticket_intake_context

# --- reading the page ------------------------------------------------------------------------


def _ticket_or_none(request: HttpRequest, number: str) -> Ticket | None:
    try:
        return access_ticket(request.user, number)  # type: ignore[arg-type]
    except NotFound:
        return None


def _not_found(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such ticket."))


def _open_visit(ticket: Ticket) -> StageVisit | None:
    if not ticket.is_open:
        return None
    visit = (StageVisit.objects.select_related("executor")
             .filter(ticket=ticket, closed_at__isnull=True).first())
    if visit is not None:
        visit.stage = next(s for s in ticket.version.stage_list if s.pk == visit.stage_id)
    return visit


def _people(ids: set[int]) -> dict[int, str]:
    """Names of the people an event payload mentions by id (one query)."""
    ids = {i for i in ids if isinstance(i, int)}
    if not ids:
        return {}
    return {u.pk: u.get_full_name() or u.username
            for u in User.objects.filter(pk__in=ids).only("username", "first_name", "last_name")}


EVENT_TITLES: dict[str, Any] = {
    EventType.TICKET_CREATED: gettext_lazy("Ticket registered"),
    EventType.TICKET_UPDATED: gettext_lazy("Ticket changed"),
    EventType.TICKET_REASSIGNED: gettext_lazy("Ticket reassigned"),
    EventType.TICKET_HANDED_OVER: gettext_lazy("Handed over (a person was deactivated)"),
    EventType.TICKET_WON: gettext_lazy("Won"),
    EventType.TICKET_LOST: gettext_lazy("Lost"),
    EventType.TICKET_VOIDED: gettext_lazy("Void"),
    EventType.TICKET_REOPENED: gettext_lazy("Reopened"),
    EventType.CHECKLIST_ITEM_COMPLETED: gettext_lazy("Checklist item done"),
    EventType.STAGE_CLOSED: gettext_lazy("Stage closed"),
    EventType.STAGE_RETURNED: gettext_lazy("Returned to an earlier stage"),
    EventType.TASK_PLANNED: gettext_lazy("Task planned"),
    EventType.TASK_COMPLETED: gettext_lazy("Task completed"),
    EventType.TASK_REASSIGNED: gettext_lazy("Task reassigned"),
    EventType.TASK_RESCHEDULED: gettext_lazy("Task rescheduled"),
    EventType.TASK_CANCELLED: gettext_lazy("Task cancelled"),
    EventType.ACTIVITY_LOGGED: gettext_lazy("Contact logged"),
    EventType.DOCUMENT_ISSUED: gettext_lazy("Document issued"),
    EventType.STAGE_PAUSED: gettext_lazy("Waiting for the client (SLA clock stopped)"),
    EventType.STAGE_RESUMED: gettext_lazy("Resumed (SLA clock running again)"),
    EventType.INTAKE_RECEIVED: gettext_lazy("Request received"),
    EventType.TICKET_MERGED: gettext_lazy("Another ticket merged into this one"),
    EventType.DUPLICATE_DISMISSED: gettext_lazy("Not a duplicate"),
}


@dataclass
class TimelineRow:
    occurred_at: Any
    actor: str
    title: str
    details: list[tuple[str, str]]
    override: bool


def _details(etype: str, p: dict[str, Any], stages: dict[str, str], items: dict[str, str],
             people: dict[int, str], reasons: dict[str, str]) -> list[tuple[str, str]]:
    """What an event says, as (label, text) pairs; every text is escaped by the template."""
    out: list[tuple[str, str]] = []

    def person(value: Any) -> str:
        return people.get(value, "—") if value is not None else "—"

    def stage(code: Any) -> str:
        return stages.get(str(code), str(code))

    move = p.get("transition")
    if isinstance(move, dict):
        out.append((_("Stage"), f"{stage(move.get('from'))} → {stage(move.get('to'))}"))
    if etype == EventType.TICKET_CREATED:
        out.append((_("Stage"), stage(p.get("stage"))))
        out.append((_("Channel"), label(p.get("channel"), "channel")))
        out.append((_("Owner"), person(p.get("owner"))))
    elif etype == EventType.TICKET_REASSIGNED:
        out.append((_("Owner"), f"{person(p.get('from'))} → {person(p.get('to'))}"))
    elif etype == EventType.CHECKLIST_ITEM_COMPLETED:
        out.append((_("Item"), items.get(str(p.get("item")), str(p.get("item")))))
        ev = p.get("evidence")
        if ev is not None and not isinstance(ev, dict):
            out.append((_("Evidence"), str(ev)))
    elif etype == EventType.TICKET_UPDATED:
        changes = p.get("changes") or {}
        out.append((_("Changed"), ", ".join(sorted(changes))))
    elif etype in (EventType.TASK_PLANNED,):
        task = p.get("task") or {}
        out.append((_("Task"), label(task.get("kind"), "task_kind")))
        out.append((_("Assignee"), person(task.get("assignee"))))
    elif etype == EventType.TASK_COMPLETED:
        out.append((_("Result"), label(p.get("outcome"), "task_status")))
        if p.get("successor"):
            out.append((_("Next task for"), person(p["successor"].get("assignee"))))
    elif etype == EventType.TASK_REASSIGNED:
        out.append((_("Assignee"), f"{person(p.get('from'))} → {person(p.get('to'))}"))
    elif etype == EventType.ACTIVITY_LOGGED:
        out.append((_("Contact"), f"{label(p.get('kind'), 'activity_kind')}, "
                                  f"{label(p.get('direction'), 'direction')}, "
                                  f"{label(p.get('outcome'), 'outcome')}"))
    elif etype == EventType.DOCUMENT_ISSUED:
        out.append((label(p.get("kind"), "document_kind"),
                    f"{p.get('number')} · {p.get('amount')} {p.get('currency')}"))
    elif etype in (EventType.STAGE_PAUSED, EventType.STAGE_RESUMED):
        out.append((_("Stage"), stage(p.get("stage"))))
    elif etype == EventType.INTAKE_RECEIVED:
        out.append((_("Channel"), label(p.get("channel"), "channel")))
        if p.get("duplicate_of"):
            out.append((_("Possible duplicate of"), str(p["duplicate_of"])))
    elif etype == EventType.TICKET_MERGED:
        out.append((_("Merged"), str(p.get("merged", ""))))
    elif etype == EventType.TICKET_WON and p.get("amount") is not None:
        out.append((_("Amount"), f"{p.get('amount')} {p.get('currency') or ''}".strip()))
    if etype in (EventType.STAGE_CLOSED, EventType.STAGE_RETURNED,
                 EventType.TICKET_REOPENED) and p.get("executor") is not None:
        out.append((_("Executor"), person(p.get("executor"))))
    if p.get("reason"):
        reason = str(p["reason"])
        if etype == EventType.TICKET_LOST:
            reason = reasons.get(reason, reason)
        out.append((_("Reason"), reason))
    if p.get("duplicate_of"):
        out.append((_("Duplicate of"), str(p["duplicate_of"])))
    return out


def _timeline(ticket: Ticket, stage_list: list[Stage]) -> list[TimelineRow]:
    """Every event of the ticket, newest first: two queries (events, people they name)."""
    entries = list(ticket_timeline(ticket))
    stages = {s.code: s.name for s in stage_list}
    items = {i.code: i.title for s in stage_list for i in s.items.all()}
    ids: set[int] = set()
    for e in entries:
        p = e.payload
        for key in ("owner", "executor", "from", "to"):
            if isinstance(p.get(key), int):
                ids.add(p[key])
        for key in ("task", "successor"):
            if isinstance(p.get(key), dict) and isinstance(p[key].get("assignee"), int):
                ids.add(p[key]["assignee"])
    people = _people(ids)
    reasons = {ticket.lost_reason.code: ticket.lost_reason.title} if ticket.lost_reason else {}
    rows = [TimelineRow(e.occurred_at, e.actor, str(EVENT_TITLES.get(e.type, e.type)),
                        _details(e.type, e.payload, stages, items, people, reasons),
                        bool(e.payload.get("override")))
            for e in entries]
    rows.reverse()
    return rows


@dataclass
class ChecklistRow:
    item: Any
    entry: Any
    form: ChecklistItemForm
    evidence_label: str
    evidence_text: str
    file_id: int | None


def _evidence_text(entry: Any) -> tuple[str, int | None]:
    if entry is None or entry.evidence is None:
        return "", None
    ev = entry.evidence
    if isinstance(ev, dict) and "file_id" in ev:
        return _("a file"), int(ev["file_id"])
    return str(ev), None


def _close_form(data: Any, stage_list: list[Stage], current: Stage) -> StageCloseForm:
    """The close-stage form; it asks for the deal amount only when the move can win."""
    targets = _forward_targets(stage_list, current)
    form = StageCloseForm(data, targets=targets)
    won = {s.code for s in stage_list if s.semantic == StageSemantic.WON}
    if not won & {code for code, _name in targets}:
        del form.fields["amount"]
    return form


def _forward_targets(stage_list: list[Stage], current: Stage) -> list[tuple[str, str]]:
    """Where closing ``current`` may lead: the next stage, and further over skippable ones."""
    ahead = [s for s in stage_list if s.position > current.position
             and s.semantic != StageSemantic.LOST]
    out = []
    for stage in ahead:
        out.append((stage.code, stage.name))
        if not stage.skippable:
            break
    return out


class PauseForm(forms.Form):
    """Why the current stage waits for the client (shown in the history)."""

    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=10000,
                             widget=forms.Textarea(attrs={"rows": 2}))


def _page_context(request: HttpRequest, ticket: Ticket, bound: dict[str, Any]) -> dict[str, Any]:
    user = request.user
    stage_list = ticket.version.stage_list
    visit = _open_visit(ticket)
    tasks = list(Task.objects.filter(ticket=ticket).select_related("assignee")
                 .annotate(open_first=Case(When(status=TaskStatus.OPEN, then=Value(0)),
                                           default=Value(1), output_field=IntegerField()))
                 .order_by("open_first", "due_at", "pk"))
    open_assignees = frozenset(t.assignee_id for t in tasks if t.status == TaskStatus.OPEN)
    for t in tasks:
        t.kind_label = label(t.kind, "task_kind")  # type: ignore[attr-defined]
        t.status_label = label(t.status, "task_status")  # type: ignore[attr-defined]
    executor = visit.executor if visit is not None else None
    facts = TicketFacts(ticket.owner_id,
                        frozenset(t for t in {ticket.team_id,
                                              executor.team_id if executor else None}
                                  if t is not None),
                        executor.pk if executor else None, open_assignees)
    actor = actor_facts(user)  # type: ignore[arg-type]
    supervisor = is_supervisor(actor, facts)
    works = supervisor or is_participant(actor, facts)
    runs_stage = supervisor or (executor is not None and executor.pk == user.pk)

    checklist: list[ChecklistRow] = []
    if visit is not None:
        entries = visit_entries(visit)
        for item in visit.stage.items.all():
            entry = entries.get(item.pk)
            text, file_id = _evidence_text(entry)
            form = bound.get(f"item-{item.code}") or ChecklistItemForm(item=item)
            checklist.append(ChecklistRow(item, entry, form, label(item.evidence, "evidence"),
                                          text, file_id))
    activities = list(Activity.objects.filter(ticket=ticket).select_related("performed_by")
                      .order_by("-occurred_at", "-pk"))
    for a in activities:
        a.summary = ", ".join((label(a.kind, "activity_kind"),  # type: ignore[attr-defined]
                               label(a.direction, "direction"), label(a.outcome, "outcome")))
    documents = list(Document.objects.filter(ticket=ticket).select_related("issued_by")
                     .order_by("-issued_at", "-pk"))
    for d in documents:
        d.kind_label = label(d.kind, "document_kind")  # type: ignore[attr-defined]
    contacts = list(ClientContact.objects.filter(client_id=ticket.client_id).order_by("kind", "pk"))
    current = next((s for s in stage_list if s.pk == ticket.stage_id), None)
    progress = [{"name": s.name, "current": s.pk == ticket.stage_id,
                 "done": current is not None and s.position < current.position
                 and s.semantic == StageSemantic.OPEN}
                for s in stage_list if s.semantic == StageSemantic.OPEN
                or s.pk == ticket.stage_id]
    context: dict[str, Any] = {
        "section": "tickets", "ticket": ticket, "visit": visit, "stage": current,
        "status_label": label(ticket.status, "ticket_status"),
        "channel_label": label(ticket.channel, "channel"),
        "progress": progress, "contacts": contacts, "checklist": checklist, "tasks": tasks,
        "activities": activities, "documents": documents,
        "timeline": _timeline(ticket, stage_list),
        "works": works, "supervisor": supervisor, "runs_stage": runs_stage,
        "is_open": ticket.is_open,
    }
    # Internal control: the stage's SLA clock and the escalation history.
    context["sla"] = sla_clock(ticket, visit, clock.now())
    context["escalations"] = ticket_escalations(ticket)
    context.update(ticket_intake_context(user, ticket, supervisor))  # type: ignore[arg-type]
    if ticket.is_open and works:
        context["plan_form"] = bound.get("plan") or TaskPlanForm(prefix="plan")
        context["activity_form"] = bound.get("contact") or ActivityForm()
        context["document_form"] = bound.get("document") or DocumentForm()
        context["lost_form"] = bound.get("lost") or LostForm(
            reasons=lost_reasons_usable(ticket.pipeline_id))
        context["void_form"] = bound.get("void") or VoidForm()
        if visit is not None and runs_stage:
            context["close_form"] = bound.get("close") or _close_form(None, stage_list,
                                                                      visit.stage)
            context["missing"] = [row.item.title for row in checklist
                                  if row.item.required and row.entry is None]
            context["won_form"] = bound.get("won") or WonForm()
            if visit.paused_at is not None:
                context["resume_allowed"] = True
            elif stage_pausable(ticket, visit.stage):
                context["pause_form"] = bound.get("pause") or PauseForm(prefix="pause")
    elif ticket.status == "won" and works:
        context["document_form"] = bound.get("document") or DocumentForm()
    if supervisor and ticket.is_open:
        context["reassign_form"] = bound.get("reassign") or ReassignForm(exclude=ticket.owner_id)
    if supervisor and not ticket.is_open:
        context["reopen_form"] = bound.get("reopen") or StageChoiceForm(
            prefix="reopen", optional=True,
            stages=[(s.code, s.name) for s in stage_list if s.semantic == StageSemantic.OPEN])
    return context


@roles_required(*TICKET_ROLES)
@require_GET
def ticket_page(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_or_none(request, number)
    if ticket is None:
        return _not_found(request)
    if ticket.merged_into_id is not None and not request.GET.get("merged"):
        # A merged number opens the ticket it became (``?merged=1`` shows it as it was).
        survivor = _ticket_or_none(request, survivor_of(ticket).number)
        if survivor is not None:
            messages.info(request, _("Ticket %(old)s was merged into %(new)s.")
                          % {"old": ticket.number, "new": survivor.number})
            return redirect("web:ticket", survivor.number)
    return render(request, "web/ticket/page.html", _page_context(request, ticket, {}))


@roles_required(*TICKET_ROLES)
@require_GET
def evidence_download(request: HttpRequest, number: str, file_id: int) -> HttpResponse:
    """A file given as evidence on this ticket, always as a download (never rendered)."""
    ticket = _ticket_or_none(request, number)
    if ticket is None:
        return _not_found(request)
    try:
        stored = evidence_file(ticket, file_id)
    except NotFound:
        return _not_found(request)
    return FileResponse(  # type: ignore[return-value]  # a streaming response
        default_storage.open(stored.path, "rb"), as_attachment=True, filename=stored.name,
        content_type="application/octet-stream")


# --- actions ------------------------------------------------------------------------------------

def _names(ticket: Ticket) -> dict[str, dict[str, str]]:
    """Item and stage names for refusals, so they say what the page shows."""
    stage_list = ticket.version.stage_list
    return {"items": {i.code: i.title for s in stage_list for i in s.items.all()},
            "stages": {s.code: s.name for s in stage_list}}


def _perform(request: HttpRequest, ticket: Ticket, name: str, form: forms.Form | None,
             act: Callable[[], object], success: str) -> HttpResponse:
    """Validate ``form``, run ``act`` (one service call); redirect back on success. A bad form
    or a refusal re-renders the page with the bound form, the message and a 4xx status."""
    status = 400
    if form is None or form.is_valid():
        try:
            act()
        except EstafetaError as exc:
            messages.error(request, describe(exc, **_names(ticket)))
            status = status_for(exc)
        else:
            messages.success(request, success)
            return redirect("web:ticket", ticket.number)
    # Read the ticket again: a refused service changed nothing, but the page shows the truth.
    fresh = _ticket_or_none(request, ticket.number)
    if fresh is None:
        return _not_found(request)
    bound = {name: form} if form is not None else {}
    return render(request, "web/ticket/page.html", _page_context(request, fresh, bound),
                  status=status)


def _action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """POST only, a ticket worker's role, the ticket through ``access_ticket`` (else 404)."""

    @roles_required(*TICKET_ROLES)
    @require_POST
    def wrapper(request: HttpRequest, number: str, **kwargs: Any) -> HttpResponse:
        ticket = _ticket_or_none(request, number)
        if ticket is None:
            return _not_found(request)
        return view(request, ticket, **kwargs)
    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _stage_seen(request: HttpRequest) -> str:
    """The stage the person saw when they sent the form (a stale one is refused: 409)."""
    return (request.POST.get("stage") or "")[:40]


@_action
def item_complete(request: HttpRequest, ticket: Ticket, code: str) -> HttpResponse:
    visit = _open_visit(ticket)
    item = next((i for i in visit.stage.items.all() if i.code == code), None) if visit else None
    if visit is None or item is None:
        status = 409 if visit is None else 400
        messages.error(request, _("There is no such checklist item in the current stage.")
                       if visit else _("This ticket is closed."))
        return render(request, "web/ticket/page.html", _page_context(request, ticket, {}),
                      status=status)
    form = ChecklistItemForm(request.POST, request.FILES, item=item)

    def act() -> object:
        evidence = form.evidence() if "evidence" in form.fields else None
        upload = evidence if hasattr(evidence, "read") else None
        return checklist_item_complete(
            actor=request.user, ticket=ticket, stage=_stage_seen(request),  # type: ignore[arg-type]
            item=item.code, evidence=None if upload is not None else evidence, file=upload)
    return _perform(request, ticket, f"item-{item.code}", form, act,
                    _("Checklist item “%(item)s” done.") % {"item": item.title})


@_action
def close_stage(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    visit = _open_visit(ticket)
    form = (_close_form(request.POST, ticket.version.stage_list, visit.stage) if visit
            else StageCloseForm(request.POST, targets=[]))

    def act() -> object:
        return stage_close(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                           stage=_stage_seen(request), to=form.cleaned_data.get("to") or None,
                           amount=form.cleaned_data.get("amount"))
    return _perform(request, ticket, "close", form, act, _("Stage closed."))


@_action
def close_won(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = WonForm(request.POST)

    def act() -> object:
        return ticket_close_won(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                                stage=_stage_seen(request), amount=form.cleaned_data.get("amount"))
    return _perform(request, ticket, "won", form, act, _("The ticket is won."))


@_action
def close_lost(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = LostForm(request.POST, reasons=lost_reasons_usable(ticket.pipeline_id))

    def act() -> object:
        return ticket_close_lost(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                                 reason=form.cleaned_data["reason"],
                                 note=form.cleaned_data.get("note") or "")
    return _perform(request, ticket, "lost", form, act, _("The ticket is closed as lost."))


@_action
def close_void(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = VoidForm(request.POST)

    def act() -> object:
        return ticket_void(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                           reason=form.cleaned_data["reason"],
                           duplicate_of=(form.cleaned_data.get("duplicate_of") or "").strip()
                           or None)
    return _perform(request, ticket, "void", form, act, _("The ticket is void."))


@_action
def plan(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = TaskPlanForm(request.POST, prefix="plan")

    def act() -> object:
        data = form.cleaned_data
        return task_plan(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                         draft=TaskDraft(kind=data["kind"], title=data["title"],
                                         due_at=data["due_at"], assignee=data.get("assignee")))
    return _perform(request, ticket, "plan", form, act, _("Task planned."))


@_action
def contact(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = ActivityForm(request.POST)

    def act() -> object:
        data = form.cleaned_data
        minutes = data.get("duration_minutes")
        return activity_log(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                            kind=data["kind"], direction=data["direction"],
                            outcome=data["outcome"],
                            duration_seconds=minutes * 60 if minutes is not None else None,
                            occurred_at=data.get("occurred_at"), note=data.get("note") or "")
    return _perform(request, ticket, "contact", form, act, _("Contact logged."))


@_action
def document(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = DocumentForm(request.POST)

    def act() -> object:
        data = form.cleaned_data
        amount: Decimal = data["amount"]
        return document_issue(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                              kind=data["kind"], number=data["number"], amount=amount,
                              currency=data["currency"].upper())
    return _perform(request, ticket, "document", form, act, _("Document recorded."))


@_action
def reassign(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = ReassignForm(request.POST, exclude=ticket.owner_id)

    def act() -> object:
        data = form.cleaned_data
        return ticket_reassign(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                               owner=data["owner"], reason=data.get("reason") or "",
                               move_tasks=bool(data.get("move_tasks")))
    return _perform(request, ticket, "reassign", form, act, _("Ticket reassigned."))


@_action
def reopen(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    stages = [(s.code, s.name) for s in ticket.version.stage_list
              if s.semantic == StageSemantic.OPEN]
    form = StageChoiceForm(request.POST, prefix="reopen", optional=True, stages=stages)

    def act() -> object:
        return ticket_reopen(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                             reason=form.cleaned_data["reason"],
                             to=form.cleaned_data.get("to") or None)
    return _perform(request, ticket, "reopen", form, act, _("Ticket reopened."))


@_action
def pause(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    form = PauseForm(request.POST, prefix="pause")

    def act() -> object:
        return stage_pause(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                           reason=form.cleaned_data["reason"], stage=_stage_seen(request) or None)
    return _perform(request, ticket, "pause", form, act,
                    _("The stage waits for the client; its SLA clock is stopped."))


@_action
def resume(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    def act() -> object:
        return stage_resume(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                            stage=_stage_seen(request) or None)
    return _perform(request, ticket, "resume", None, act,
                    _("The stage is resumed; its SLA clock runs again."))


urlpatterns = [
    path("tickets/<str:number>/", ticket_page, name="ticket"),
    path("tickets/<str:number>/items/<slug:code>/", item_complete, name="ticket_item"),
    path("tickets/<str:number>/close/", close_stage, name="ticket_close"),
    path("tickets/<str:number>/won/", close_won, name="ticket_won"),
    path("tickets/<str:number>/lost/", close_lost, name="ticket_lost"),
    path("tickets/<str:number>/void/", close_void, name="ticket_void"),
    path("tickets/<str:number>/tasks/", plan, name="ticket_plan"),
    path("tickets/<str:number>/contacts/", contact, name="ticket_contact"),
    path("tickets/<str:number>/documents/", document, name="ticket_document"),
    path("tickets/<str:number>/reassign/", reassign, name="ticket_reassign"),
    path("tickets/<str:number>/reopen/", reopen, name="ticket_reopen"),
    path("tickets/<str:number>/pause/", pause, name="ticket_pause"),
    path("tickets/<str:number>/resume/", resume, name="ticket_resume"),
    path("tickets/<str:number>/files/<int:file_id>/", evidence_download, name="ticket_file"),
]
