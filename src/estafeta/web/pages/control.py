"""The control panel for heads of sales and directors: overdue tasks, stages at risk or past
their SLA, unacknowledged escalations and tickets without a contact, over the tickets the person
sees, per person and per team; acknowledging an escalation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_POST

from estafeta.accounts.models import User
from estafeta.control.models import Escalation
from estafeta.control.services import escalation_acknowledge
from estafeta.core import clock
from estafeta.domain.errors import EstafetaError
from estafeta.tasks.models import Task
from estafeta.tickets.access import tickets_visible_to
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.selectors import ticket_search, tickets_list

from ..errors import describe, status_for
from .common import HEAD_ROLES, error_page, paginate, query_without, roles_required
from .lists import _people_for, _teams_for

DEFAULT_QUIET_DAYS = 7
TABS = ("overdue", "stages", "escalations", "quiet")
TAB_LABELS = {"overdue": _l("Overdue tasks"), "stages": _l("Stages at risk or breached"),
              "escalations": _l("Unacknowledged escalations"),
              "quiet": _l("No contact")}


class ControlFilterForm(forms.Form):
    q = forms.CharField(label=_l("Search"), required=False, max_length=200,
                        help_text=_l("Number, client's name, phone or email"))
    person = forms.TypedChoiceField(label=_l("Person"), required=False, coerce=int,
                                    empty_value=None, choices=[])
    team = forms.TypedChoiceField(label=_l("Team"), required=False, coerce=int,
                                  empty_value=None, choices=[])
    days = forms.IntegerField(label=_l("No contact for, days"), required=False, min_value=1,
                              max_value=365)

    def __init__(self, *args: Any, people: list[User], teams: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [  # type: ignore[attr-defined]
            ("", "—"), *((u.pk, u.get_full_name() or u.username) for u in people)]
        self.fields["team"].choices = [  # type: ignore[attr-defined]
            ("", "—"), *((t.pk, t.name) for t in teams)]


def _overdue(visible: QuerySet[Ticket], data: dict[str, Any], now: datetime) -> QuerySet[Task]:
    qs = Task.objects.filter(status="open", due_at__lt=now, ticket__in=visible.values("pk"))
    if data.get("person"):
        qs = qs.filter(assignee_id=data["person"])
    if data.get("team"):
        qs = qs.filter(assignee__team_id=data["team"])
    if data.get("q"):
        qs = qs.filter(ticket_search(data["q"], prefix="ticket__"))
    return qs


def _stages(visible: QuerySet[Ticket], data: dict[str, Any], now: datetime
            ) -> QuerySet[StageVisit]:
    qs = StageVisit.objects.filter(closed_at__isnull=True, sla_risk_at__lte=now,
                                   ticket__in=visible.values("pk"))
    if data.get("person"):
        qs = qs.filter(executor_id=data["person"])
    if data.get("team"):
        qs = qs.filter(executor__team_id=data["team"])
    if data.get("q"):
        qs = qs.filter(ticket_search(data["q"], prefix="ticket__"))
    return qs


def _escalations(visible: QuerySet[Ticket], data: dict[str, Any]) -> QuerySet[Escalation]:
    qs = Escalation.objects.filter(acknowledged_at__isnull=True,
                                   ticket__in=visible.values("pk"))
    if data.get("person"):
        qs = qs.filter(ticket__owner_id=data["person"])
    if data.get("team"):
        qs = qs.filter(ticket__team_id=data["team"])
    if data.get("q"):
        qs = qs.filter(ticket_search(data["q"], prefix="ticket__"))
    return qs


def _quiet(visible: QuerySet[Ticket], data: dict[str, Any], now: datetime, days: int
           ) -> QuerySet[Ticket]:
    return tickets_list(visible, q=data.get("q") or "", status="open",
                        owner=data.get("person"), team=data.get("team"), quiet_days=days,
                        now=now)


@roles_required(*HEAD_ROLES)
def control(request: HttpRequest) -> HttpResponse:
    """One tab at a time (``?show=``), 25 rows a page, with the count of every tab and the
    overdue tasks per person; a fixed number of queries whatever the number of rows."""
    user: User = request.user  # type: ignore[assignment]
    params = request.GET.copy()
    show = params.pop("show", ["overdue"])[-1]
    if show not in TABS:
        show = "overdue"
    form = ControlFilterForm(params or None, people=_people_for(user),
                             teams=list(_teams_for(user)))
    valid = form.is_valid() if params else True
    data: dict[str, Any] = form.cleaned_data if params and valid else {}
    days = data.get("days") or DEFAULT_QUIET_DAYS
    now = clock.now()
    visible = tickets_visible_to(user)
    querysets: dict[str, QuerySet[Any]] = {
        "overdue": _overdue(visible, data, now), "stages": _stages(visible, data, now),
        "escalations": _escalations(visible, data), "quiet": _quiet(visible, data, now, days)}
    if not valid:
        querysets = {k: v.none() for k, v in querysets.items()}
    counts = {k: v.order_by().count() for k, v in querysets.items()}
    rows_qs: QuerySet[Any] = querysets[show]
    if show == "overdue":
        rows_qs = rows_qs.select_related("ticket__client", "assignee").order_by("due_at", "pk")
    elif show == "stages":
        rows_qs = rows_qs.select_related("ticket__client", "stage", "executor").order_by(
            "sla_due_at", "pk")
    elif show == "escalations":
        rows_qs = rows_qs.select_related("ticket__client", "recipient", "task").order_by(
            "-decided_at", "-pk")
    page = paginate(request, rows_qs)
    per_person = list(querysets["overdue"].order_by().values(
        "assignee_id", "assignee__username", "assignee__first_name", "assignee__last_name",
        "assignee__team__name").annotate(n=Count("pk")).order_by("-n", "assignee__username")[:20])
    tabs = [{"code": t, "label": TAB_LABELS[t], "count": counts[t]} for t in TABS]
    return render(request, "web/control/control.html", {
        "section": "control", "form": form, "show": show, "tabs": tabs, "page": page,
        "rows": list(page.object_list), "now": now, "days": days, "per_person": per_person,
        "filters": query_without(request, "page", "show"),
        "query": query_without(request, "page"),
    }, status=200 if valid else 400)


@roles_required(*HEAD_ROLES)
@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge an escalation on a ticket the person sees (else the same 404 as a missing
    one); the service decides whether this person may (the team's head or a director)."""
    user: User = request.user  # type: ignore[assignment]
    escalation = Escalation.objects.filter(
        pk=pk, ticket__in=tickets_visible_to(user).values("pk")).first()
    if escalation is None:
        return error_page(request, 404, _("Not found"), _("There is no such escalation."))
    try:
        escalation_acknowledge(actor=user, escalation=escalation)
    except EstafetaError as exc:
        return error_page(request, status_for(exc), _("Not acknowledged"), describe(exc))
    messages.success(request, _("Escalation acknowledged."))
    back = request.POST.get("next") or ""
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
    return redirect(back if back and safe else "web:control")


urlpatterns = [
    path("control/", control, name="control"),
    path("control/escalations/<int:pk>/acknowledge/", acknowledge,
         name="escalation_acknowledge"),
]
