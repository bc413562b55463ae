"""The ticket list (search and filters) and registering a new ticket."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import actor_facts, people_for_work
from estafeta.clients.models import Client
from estafeta.clients.selectors import clients_matching
from estafeta.clients.services import client_create
from estafeta.core import clock
from estafeta.domain.codes import Role, TicketStatus
from estafeta.domain.errors import EstafetaError
from estafeta.pipelines.models import Pipeline, Stage
from estafeta.pipelines.selectors import pipelines_accepting
from estafeta.tickets.access import tickets_visible_to
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import tickets_list
from estafeta.tickets.services import ticket_create

from ..forms import NewTicketForm
from ..labels import choices, label
from .common import TICKET_ROLES, paginate, query_without, refusal, roles_required

MAX_QUIET_DAYS = 365


def _teams_for(user: User) -> QuerySet[Team]:
    """The teams a person may filter by: a head their own, a director every team."""
    role = Role(user.role)
    if role is Role.DIRECTOR:
        return Team.objects.order_by("name")
    if role is Role.HEAD:
        return Team.objects.filter(pk__in=actor_facts(user).headed_team_ids).order_by("name")
    return Team.objects.none()


def _people_for(user: User) -> list[User]:
    """Owners a person may filter by (sellers and heads of the teams they see; a seller sees
    only their own tickets' owner, themselves)."""
    role = Role(user.role)
    if role is Role.DIRECTOR:
        return list(people_for_work())
    if role is Role.HEAD:
        teams = set(actor_facts(user).headed_team_ids)
        if user.team_id:
            teams.add(user.team_id)
        return list(people_for_work(teams))
    return [user] if role is Role.SELLER else []


class TicketFilterForm(forms.Form):
    q = forms.CharField(label=_l("Search"), required=False, max_length=200,
                        help_text=_l("Number, client's name, phone or email"))
    status = forms.ChoiceField(label=_l("Status"), required=False,
                               choices=choices("ticket_status", blank="—"))
    pipeline = forms.ChoiceField(label=_l("Pipeline"), required=False, choices=[])
    stage = forms.ChoiceField(label=_l("Stage"), required=False, choices=[])
    owner = forms.TypedChoiceField(label=_l("Owner"), required=False, coerce=int,
                                   empty_value=None, choices=[])
    team = forms.TypedChoiceField(label=_l("Team"), required=False, coerce=int,
                                  empty_value=None, choices=[])
    quiet = forms.IntegerField(label=_l("No contact for, days"), required=False, min_value=1,
                               max_value=MAX_QUIET_DAYS)

    def __init__(self, *args: Any, pipelines: list[Pipeline], stages: list[tuple[str, str]],
                 people: list[User], teams: list[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].choices = [  # type: ignore[attr-defined]
            ("", "—"), *((p.code, p.name) for p in pipelines)]
        self.fields["stage"].choices = [("", "—"), *stages]  # type: ignore[attr-defined]
        self.fields["owner"].choices = [  # type: ignore[attr-defined]
            ("", "—"), *((u.pk, u.get_full_name() or u.username) for u in people)]
        self.fields["team"].choices = [  # type: ignore[attr-defined]
            ("", "—"), *((t.pk, t.name) for t in teams)]
        if not teams:
            del self.fields["team"]
        if len(people) < 2:
            del self.fields["owner"]


def _stage_choices(pipelines: list[Pipeline]) -> list[tuple[str, str]]:
    """Stages of the pipelines' current versions, one per code (the first name seen)."""
    seen: dict[str, str] = {}
    rows = (Stage.objects.filter(version_id__in=[p.current_version_id for p in pipelines
                                                 if p.current_version_id])
            .order_by("version__pipeline__name", "position").values_list("code", "name"))
    for code, name in rows:
        seen.setdefault(code, name)
    return list(seen.items())


@roles_required(*TICKET_ROLES)
def ticket_list(request: HttpRequest) -> HttpResponse:
    """The tickets the person may see, searched and filtered, newest first, 25 a page."""
    user: User = request.user  # type: ignore[assignment]
    pipelines = list(Pipeline.objects.filter(current_version__isnull=False).order_by("name"))
    form = TicketFilterForm(request.GET or None, pipelines=pipelines,
                            stages=_stage_choices(pipelines), people=_people_for(user),
                            teams=list(_teams_for(user)))
    data: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    status = 200 if form.is_valid() or not request.GET else 400
    tickets = tickets_list(
        tickets_visible_to(user), q=data.get("q") or "", status=data.get("status") or "",
        pipeline=data.get("pipeline") or "", owner=data.get("owner"), team=data.get("team"),
        stage=data.get("stage") or "", quiet_days=data.get("quiet"), now=clock.now())
    if request.GET and not form.is_valid():
        tickets = tickets.none()
    page = paginate(request, tickets)
    rows = list(page.object_list)
    for t in rows:
        t.status_label = label(t.status, "ticket_status")
    return render(request, "web/lists/tickets.html", {
        "section": "tickets", "form": form, "page": page, "rows": rows,
        "query": query_without(request, "page"), "searched": bool(request.GET),
    }, status=status)


# --- a new ticket ------------------------------------------------------------------------------


def _open_tickets_of(clients: list[Client], pipeline_code: str, user: User
                     ) -> dict[int, list[dict[str, Any]]]:
    """The open tickets of each found client in the chosen pipeline, and whether the person
    may open each (the number and owner are shown either way, so the request can go to the
    person already working with the client; the subject only when visible)."""
    if not clients:
        return {}
    found = list(Ticket.objects.filter(client__in=clients, status=TicketStatus.OPEN,
                                       pipeline__code=pipeline_code)
                 .select_related("owner", "stage")
                 .only("number", "subject", "client_id", "owner__username", "owner__first_name",
                       "owner__last_name", "stage__name")
                 .order_by("created_at", "pk"))
    visible = set(tickets_visible_to(user).filter(pk__in=[t.pk for t in found])
                  .values_list("pk", flat=True)) if found else set()
    out: dict[int, list[dict[str, Any]]] = {}
    for t in found:
        out.setdefault(t.client_id, []).append({"ticket": t, "visible": t.pk in visible})
    return out


def _new_form(request: HttpRequest, data: Any = None) -> NewTicketForm:
    user: User = request.user  # type: ignore[assignment]
    return NewTicketForm(data, pipelines=list(pipelines_accepting()),
                         can_take=Role(user.role) in (Role.SELLER, Role.HEAD))


def _render_new(request: HttpRequest, form: NewTicketForm, *, status: int = 200,
                matches: list[Client] | None = None) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    pipeline = getattr(form, "cleaned_data", {}).get("pipeline", "")
    open_by_client = _open_tickets_of(matches or [], pipeline, user)
    found = [{"client": c, "tickets": open_by_client.get(c.pk, [])} for c in matches or []]
    return render(request, "web/lists/new.html", {
        "section": "new", "form": form, "found": found,
    }, status=status)


@roles_required(*TICKET_ROLES)
def ticket_new(request: HttpRequest) -> HttpResponse:
    """Register a request: find the client by phone or email (warning about the ones that
    exist before making another), then the ticket; the page of the new ticket follows."""
    user: User = request.user  # type: ignore[assignment]
    if request.method != "POST":
        return _render_new(request, _new_form(request))
    form = _new_form(request, request.POST)
    if not form.is_valid():
        return _render_new(request, form, status=400)
    data = form.cleaned_data
    phones = [data["phone"]] if (data.get("phone") or "").strip() else []
    emails = [data["email"]] if (data.get("email") or "").strip() else []
    matches = list(clients_matching(phones=phones, emails=emails)[:10])
    client: Client | None = None
    if data.get("client"):
        client = next((c for c in matches if c.pk == data["client"]), None)
        if client is None:
            form.add_error("client", _("Choose one of the clients found by this phone or "
                                       "email."))
            return _render_new(request, form, status=400, matches=matches)
    elif matches and not data.get("confirm_new"):
        # The duplicate warning: nothing is made until the person chooses.
        messages.warning(request, _("A client with this phone or email exists. Choose the "
                                    "client, or confirm that this is a new one."))
        return _render_new(request, form, matches=matches)
    owner = user if data.get("take_myself") else None
    try:
        with transaction.atomic():
            if client is None:
                client = client_create(actor=user, name=data["client_name"],
                                       kind=data["client_kind"], phones=phones, emails=emails)
            ticket = ticket_create(actor=user, pipeline=data["pipeline"], client=client,
                                   channel=data["channel"], subject=data["subject"],
                                   description=data.get("description") or "",
                                   amount=data.get("amount"), owner=owner)
    except EstafetaError as exc:
        return _render_new(request, form, status=refusal(request, exc), matches=matches)
    messages.success(request, _("Ticket %(number)s is registered.") % {"number": ticket.number})
    return redirect("web:ticket", number=ticket.number)


urlpatterns = [
    path("tickets/", ticket_list, name="tickets"),
    path("tickets/new/", ticket_new, name="ticket_new"),
]
