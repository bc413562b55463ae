"""The board: the open tickets of a pipeline by stage, and moving a card on by closing its stage
(the same ``stage_close`` service as the ticket page, checklist gate included)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from estafeta.accounts.models import User
from estafeta.clients.models import Segment, Territory
from estafeta.core import clock
from estafeta.domain.codes import StageSemantic, TicketStatus
from estafeta.domain.errors import EstafetaError
from estafeta.pipelines.models import Pipeline, Stage
from estafeta.tickets.access import access_ticket, tickets_visible_to
from estafeta.tickets.selectors import BoardFilters, board_columns
from estafeta.tickets.services import stage_close

from ..errors import describe, status_for
from ..forms import BoardFilterForm
from .common import BOARD_ROLES, roles_required
from .lists import _people_for, _teams_for

FILTERS = ("pipeline", "owner", "team", "segment", "territory", "channel", "q")


class MoveForm(forms.Form):
    number = forms.CharField(max_length=32)
    stage = forms.SlugField(max_length=40)


def _age(since: datetime | None, now: datetime) -> str:
    """How long a card has been in its stage, in the largest whole unit."""
    if since is None:
        return ""
    seconds = max(int((now - since).total_seconds()), 0)
    days, hours = seconds // 86400, seconds // 3600
    if days:
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    if hours:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    minutes = seconds // 60
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def _next_stages(stages: list[Stage]) -> dict[str, Stage]:
    """Stage code → the stage that closing it leads to (the next one that is not "lost")."""
    out: dict[str, Stage] = {}
    for i, stage in enumerate(stages):
        if not stage.is_open:
            continue
        ahead = [s for s in stages[i + 1:] if s.semantic != StageSemantic.LOST]
        if ahead:
            out[stage.code] = ahead[0]
    return out


def _board(request: HttpRequest, params: QueryDict, *, status: int = 200) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    now = clock.now()
    pipelines = list(Pipeline.objects.filter(current_version__isnull=False)
                     .select_related("current_version").order_by("name"))
    form = BoardFilterForm(params, pipelines=pipelines, people=_people_for(user),
                           teams=list(_teams_for(user)), segments=list(Segment.objects.all()),
                           territories=list(Territory.objects.all()))
    data: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    if params and not form.is_valid():
        status = 400
    pipeline = next((p for p in pipelines if p.code == data.get("pipeline")), None)
    if pipeline is None and pipelines:  # the busiest pipeline the person sees
        busiest = (tickets_visible_to(user).filter(status=TicketStatus.OPEN)
                   .values("pipeline_id").annotate(n=Count("pk")).order_by("-n")
                   .values_list("pipeline_id", flat=True).first())
        pipeline = next((p for p in pipelines if p.pk == busiest), pipelines[0])
    columns: list[Any] = []
    stages: list[Stage] = []
    if pipeline is not None and (form.is_valid() or not params):
        stages = pipeline.current_version.stage_list  # type: ignore[union-attr]
        filters = BoardFilters(owner=data.get("owner"), team=data.get("team"),
                               segment=data.get("segment") or "",
                               territory=data.get("territory") or "",
                               channel=data.get("channel") or "", q=data.get("q") or "")
        columns = board_columns(tickets_visible_to(user), pipeline_id=pipeline.pk, stages=stages,
                                filters=filters, now=now)
        following = _next_stages(stages)
        for column in columns:
            target = following.get(column.code)
            for card in column.cards:  # annotated rows: what the card shows
                card.age = _age(card.entered_at, now)  # type: ignore[attr-defined]
                card.next_stage = target  # type: ignore[attr-defined]
    back = params.copy()
    back.pop("page", None)
    return render(request, "web/board/board.html", {
        "section": "board", "form": form, "pipeline": pipeline, "columns": columns,
        "back": back.urlencode(),
    }, status=status)


@roles_required(*BOARD_ROLES)
def board(request: HttpRequest) -> HttpResponse:
    return _board(request, request.GET)


@roles_required(*BOARD_ROLES)
@require_POST
def board_move(request: HttpRequest) -> HttpResponse:
    """Close the card's current stage (the stage it showed, so a stale board is refused) and
    go back to the board with the same filters; a refusal renders the board with why."""
    user: User = request.user  # type: ignore[assignment]
    back = _only_filters(QueryDict(request.POST.get("back", "")))
    form = MoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The request is not valid."))
        return _board(request, back, status=400)
    stages: list[Stage] = []
    try:
        ticket = access_ticket(user, form.cleaned_data["number"])
        stages = ticket.version.stage_list
        stage_close(actor=user, ticket=ticket, stage=form.cleaned_data["stage"])
    except EstafetaError as exc:
        messages.error(request, describe(exc, **_names(stages)))
        return _board(request, back, status=status_for(exc))
    ticket.refresh_from_db(fields=["stage", "status"])
    messages.success(request, _("%(number)s moved to “%(stage)s”.") % {
        "number": ticket.number, "stage": ticket.stage.name})
    url = reverse("web:board")
    return redirect(f"{url}?{back.urlencode()}" if back else url)


def _only_filters(params: QueryDict) -> QueryDict:
    out = QueryDict(mutable=True)
    for key in FILTERS:
        value = params.get(key)
        if value:
            out[key] = value[:200]
    return out


def _names(stages: list[Stage]) -> dict[str, dict[str, str]]:
    """Checklist item and stage names, so a refusal names what the person sees."""
    items = {i.code: i.title for s in stages for i in s.items.all()}
    return {"items": items, "stages": {s.code: s.name for s in stages}}


urlpatterns = [
    path("board/", board, name="board"),
    path("board/move/", board_move, name="board_move"),
]
