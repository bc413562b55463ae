"""The team page for heads of sales (directors: every team): each person's open tasks, overdue
tasks and tickets without a recent contact, with links to their lists."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy as _l

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import actor_facts, team_members
from estafeta.core import clock
from estafeta.domain.codes import Role
from estafeta.tickets.selectors import team_workload

from .common import HEAD_ROLES, roles_required

DEFAULT_QUIET_DAYS = 7


class TeamForm(forms.Form):
    days = forms.IntegerField(label=_l("No contact for, days"), required=False, min_value=1,
                              max_value=365, initial=DEFAULT_QUIET_DAYS)


@roles_required(*HEAD_ROLES)
def team(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TeamForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    days = (form.cleaned_data.get("days") if request.GET and valid else None) \
        or DEFAULT_QUIET_DAYS
    if Role(user.role) is Role.DIRECTOR:
        teams = list(Team.objects.select_related("head").order_by("name"))
    else:
        teams = list(Team.objects.filter(pk__in=actor_facts(user).headed_team_ids)
                     .select_related("head").order_by("name"))
    members = team_members([t.pk for t in teams]) if teams else []
    rows = team_workload(members, now=clock.now(), quiet_days=days)
    by_team = [{"team": t, "rows": [r for r in rows if r.user.team_id == t.pk]} for t in teams]
    return render(request, "web/team/team.html", {
        "section": "team", "form": form, "teams": by_team, "days": days,
    }, status=200 if valid else 400)


urlpatterns = [
    path("team/", team, name="team"),
]
