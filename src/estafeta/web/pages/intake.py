"""Intake for heads: possible duplicates to merge or dismiss, and merging from the ticket page.

Every change is a POST (CSRF) through ``intake.services``; refusals come back as messages.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from estafeta.accounts.models import User
from estafeta.domain.errors import EstafetaError, NotFound
from estafeta.intake.selectors import flag_for, flags_for, open_flags_of
from estafeta.intake.services import duplicate_dismiss, flag_merge, ticket_merge
from estafeta.tickets.access import access_ticket, tickets_visible_to
from estafeta.tickets.models import Ticket

from ..errors import describe, status_for
from .common import HEAD_ROLES, error_page, paginate, query_without, roles_required


class MergeForm(forms.Form):
    into = forms.CharField(label=gettext_lazy("Merge into ticket"), max_length=40,
                           help_text=gettext_lazy("The number of the ticket that stays, like "
                                                  "Z-2026-000123"))
    reason = forms.CharField(label=gettext_lazy("Note"), max_length=2000, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))


class DismissForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), max_length=2000, required=False)


def ticket_intake_context(user: User, ticket: Ticket, supervisor: bool) -> dict[str, Any]:
    """What the ticket page shows about merges and duplicates (and the merge form for heads)."""
    context: dict[str, Any] = {
        "merged_here": list(Ticket.objects.filter(merged_into=ticket)
                            .values_list("number", flat=True).order_by("number")),
        "merged_into": (Ticket.objects.filter(pk=ticket.merged_into_id)
                        .values_list("number", flat=True).first()
                        if ticket.merged_into_id else None),
        "duplicate_flags": open_flags_of(ticket) if supervisor else [],
    }
    if supervisor and ticket.is_open:
        context["merge_form"] = MergeForm(prefix="merge")
    return context


@roles_required(*HEAD_ROLES)
@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    page = paginate(request, flags_for(user))
    rows = list(page.object_list)
    # The ticket a flag points at may belong to another team: its number only, then.
    seen = set(tickets_visible_to(user, point=True)
               .filter(pk__in=[f.of_id for f in rows]).values_list("pk", flat=True))
    for f in rows:
        f.of_visible = f.of_id in seen
    return render(request, "web/intake/duplicates.html", {
        "section": "duplicates", "page": page, "rows": rows,
        "query": query_without(request, "page"), "dismiss_form": DismissForm()})


@roles_required(*HEAD_ROLES)
@require_POST
def duplicate_merge(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    flag = flag_for(user, pk)
    if flag is None:
        return error_page(request, 404, _("Not found"), _("There is no such possible duplicate."))
    form = DismissForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        survivor = flag_merge(actor=user, flag=flag, note=note)
    except EstafetaError as exc:
        return error_page(request, status_for(exc), _("Not merged"), describe(exc))
    messages.success(request, _("Ticket %(old)s was merged into %(new)s.")
                     % {"old": flag.ticket.number, "new": survivor.number})
    return redirect("web:duplicates")


@roles_required(*HEAD_ROLES)
@require_POST
def duplicate_dismiss_view(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    flag = flag_for(user, pk)
    if flag is None:
        return error_page(request, 404, _("Not found"), _("There is no such possible duplicate."))
    form = DismissForm(request.POST)
    if not form.is_valid():
        return error_page(request, 400, _("Not dismissed"), _("The note is too long."))
    try:
        duplicate_dismiss(actor=user, flag=flag, note=form.cleaned_data["note"])
    except EstafetaError as exc:
        return error_page(request, status_for(exc), _("Not dismissed"), describe(exc))
    messages.success(request, _("%(number)s stays a request of its own.")
                     % {"number": flag.ticket.number})
    return redirect("web:duplicates")


@roles_required(*HEAD_ROLES)
@require_POST
def merge(request: HttpRequest, number: str) -> HttpResponse:
    """Merge this ticket into another one the person sees (the service checks they head both
    tickets' team, or direct)."""
    user: User = request.user  # type: ignore[assignment]
    try:
        ticket = access_ticket(user, number)
    except NotFound:
        return error_page(request, 404, _("Not found"), _("There is no such ticket."))
    form = MergeForm(request.POST, prefix="merge")
    if not form.is_valid():
        messages.error(request, _("Enter the number of the ticket that stays."))
        return redirect("web:ticket", ticket.number)
    try:
        into = access_ticket(user, form.cleaned_data["into"])
        survivor = ticket_merge(actor=user, ticket=ticket, into=into,
                                reason=form.cleaned_data["reason"])
    except EstafetaError as exc:
        messages.error(request, describe(exc))
        return redirect("web:ticket", ticket.number)
    messages.success(request, _("Ticket %(old)s was merged into %(new)s.")
                     % {"old": ticket.number, "new": survivor.number})
    return redirect("web:ticket", survivor.number)


urlpatterns = [
    path("duplicates/", duplicates, name="duplicates"),
    path("duplicates/<int:pk>/merge/", duplicate_merge, name="duplicate_merge"),
    path("duplicates/<int:pk>/dismiss/", duplicate_dismiss_view, name="duplicate_dismiss"),
    path("tickets/<str:number>/merge/", merge, name="ticket_merge"),
]
