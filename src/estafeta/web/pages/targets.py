"""Targets (K6 potentials and plans) for directors, admins and heads of sales: ``/targets/``
lists the targets in force (the latest set for each object and period), sets one and imports a
CSV or XLSX file (all rows or none); ``/targets/<kind>/<ref>/`` is one object's history. A head
sees and sets only the targets of the sellers of the teams they head (``targets.services``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import Segment, Territory
from estafeta.domain.codes import Role
from estafeta.domain.errors import BadInput, EstafetaError
from estafeta.targets.models import Target, TargetKind
from estafeta.targets.services import (
    DEFAULT_CURRENCY,
    MAX_AMOUNT,
    may_set,
    target_set,
    targets_import,
)
from estafeta.tickets.access import clients_visible_to

from ..errors import describe, status_for
from .common import error_page, paginate, query_without, roles_required

TARGET_ROLES = (Role.DIRECTOR, Role.ADMIN, Role.HEAD)


class TargetForm(forms.Form):
    kind = forms.ChoiceField(label=_l("Kind"), choices=TargetKind.choices)
    ref = forms.CharField(label=_l("Object"), max_length=64,
                          help_text=_l("The id of a client, seller or team; the code of a "
                                       "territory or segment"))
    start = forms.DateField(label=_l("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_l("To (included)"),
                          widget=forms.DateInput(attrs={"type": "date"}))
    amount = forms.DecimalField(label=_l("Amount"), min_value=0, max_value=MAX_AMOUNT,
                                max_digits=14, decimal_places=2)
    currency = forms.CharField(label=_l("Currency"), min_length=3, max_length=3,
                               initial=DEFAULT_CURRENCY)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError(_("The period must end on or after the day it starts."))
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label=_l("File"),
                           help_text=_l("CSV or XLSX; the first row names the columns kind, "
                                        "object, start, end, amount and (optional) currency"))


class SearchForm(forms.Form):
    q = forms.CharField(label=_l("Search"), required=False, max_length=100,
                        help_text=_l("Object: name, id or code"))


# --- reads ---------------------------------------------------------------------------------------


def _as_refs(rows: QuerySet[Any]) -> QuerySet[Any]:
    return rows.annotate(ref_text=Cast("pk", CharField())).values("ref_text")


def targets_in_force(user: User, text: str = "") -> QuerySet[Target]:
    """The targets ``user`` may see that no later target for the same object and period
    supersedes, the latest periods first; ``text`` narrows them to objects whose name, id or
    code contains it."""
    later = Target.objects.filter(
        kind=OuterRef("kind"), ref=OuterRef("ref"), period_start=OuterRef("period_start"),
        period_end=OuterRef("period_end"),
    ).filter(Q(created_at__gt=OuterRef("created_at"))
             | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk")))
    rows = Target.objects.filter(~Exists(later)).select_related("created_by")
    facts = actor_facts(user)
    if facts.role not in (Role.DIRECTOR, Role.ADMIN):
        sellers = User.objects.filter(role=Role.SELLER, team_id__in=list(facts.headed_team_ids))
        rows = rows.filter(kind=TargetKind.SELLER, ref__in=_as_refs(sellers))
    text = text.strip()
    if text:
        people = User.objects.filter(Q(first_name__icontains=text) | Q(last_name__icontains=text)
                                     | Q(username__icontains=text))
        rows = rows.filter(
            Q(ref__icontains=text)
            | Q(kind=TargetKind.SELLER, ref__in=_as_refs(people))
            | Q(kind=TargetKind.TEAM, ref__in=_as_refs(Team.objects.filter(name__icontains=text)))
            | Q(kind=TargetKind.CLIENT,
                ref__in=_as_refs(clients_visible_to(user).filter(name__icontains=text)))
            | Q(kind=TargetKind.TERRITORY,
                ref__in=Territory.objects.filter(name__icontains=text).values("code"))
            | Q(kind=TargetKind.SEGMENT,
                ref__in=Segment.objects.filter(name__icontains=text).values("code")))
    return rows.order_by("-period_start", "-period_end", "kind", "ref", "pk")


def object_names(user: User, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The names of the targets' objects: at most one query per kind, whatever their number."""
    refs: dict[str, set[str]] = {}
    for kind, ref in pairs:
        refs.setdefault(kind, set()).add(ref)
    ids = {k: [int(r) for r in v if r.isdigit()] for k, v in refs.items()}
    names: dict[tuple[str, str], str] = {}
    if ids.get(TargetKind.SELLER):
        for u in User.objects.filter(pk__in=ids[TargetKind.SELLER]):
            names[(TargetKind.SELLER, str(u.pk))] = u.get_full_name() or u.username
    if ids.get(TargetKind.TEAM):
        for pk, name in Team.objects.filter(pk__in=ids[TargetKind.TEAM]).values_list("pk",
                                                                                    "name"):
            names[(TargetKind.TEAM, str(pk))] = name
    if ids.get(TargetKind.CLIENT):
        for pk, name in clients_visible_to(user).filter(
                pk__in=ids[TargetKind.CLIENT]).values_list("pk", "name"):
            names[(TargetKind.CLIENT, str(pk))] = name
    for kind, model in ((TargetKind.TERRITORY, Territory), (TargetKind.SEGMENT, Segment)):
        if refs.get(kind):
            for code, name in model.objects.filter(code__in=refs[kind]).values_list("code",
                                                                                   "name"):
                names[(kind, code)] = name
    return names


# --- pages ---------------------------------------------------------------------------------------


def _text(exc: EstafetaError) -> str:
    """The refusal's message: a kind of target named by its translated label; ``describe``
    reads a ``missing`` param as a list of codes, where the import gives a string."""
    params = dict(exc.params)
    if params.get("kind") in TargetKind.values:
        params["kind"] = str(TargetKind(params["kind"]).label)
    if isinstance(params.get("missing"), str):
        params["missing"] = params["missing"].split(", ")
    if params != exc.params:
        exc = BadInput(str(exc), code=exc.code, **params)
    return describe(exc)


def _list_page(request: HttpRequest, status: int = 200, form: TargetForm | None = None,
               upload: ImportForm | None = None,
               bad_rows: list[dict[str, Any]] | None = None) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    search = SearchForm(request.GET)
    text = search.cleaned_data["q"] if search.is_valid() else ""
    page = paginate(request, targets_in_force(user, text))
    targets = list(page.object_list)
    names = object_names(user, {(t.kind, t.ref) for t in targets})
    rows = [{"target": t, "name": names.get((t.kind, t.ref), "")} for t in targets]
    return render(request, "web/targets/targets.html", {
        "section": "targets", "search": search, "page": page, "rows": rows,
        "form": form or TargetForm(initial={"currency": DEFAULT_CURRENCY}),
        "upload": upload or ImportForm(), "bad_rows": bad_rows or [],
        "query": query_without(request, "page"),
        "heads_only": actor_facts(user).role == Role.HEAD,
    }, status=status)


@roles_required(*TARGET_ROLES)
@require_http_methods(["GET", "HEAD", "POST"])
def targets(request: HttpRequest) -> HttpResponse:
    """The targets in force and the form to set one."""
    if request.method != "POST":
        return _list_page(request)
    form = TargetForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The target was not set: check the form."))
        return _list_page(request, 400, form=form)
    data = form.cleaned_data
    try:
        target = target_set(request.user, kind=data["kind"],  # type: ignore[arg-type]
                            ref=data["ref"], start=data["start"], end=data["end"],
                            amount=data["amount"], currency=data["currency"])
    except EstafetaError as exc:
        messages.error(request, _text(exc))
        return _list_page(request, status_for(exc), form=form)
    messages.success(request, _("Target set."))
    return redirect("web:target_history", kind=target.kind, ref=target.ref)


@roles_required(*TARGET_ROLES)
@require_POST
def targets_upload(request: HttpRequest) -> HttpResponse:
    """Import targets from a CSV or XLSX file: every row is checked and nothing is written when
    any row is bad; the page then lists each bad row by its line and reason."""
    upload = ImportForm(request.POST, request.FILES)
    if not upload.is_valid():
        messages.error(request, _("Choose a CSV or XLSX file to import."))
        return _list_page(request, 400, upload=upload)
    file = upload.cleaned_data["file"]
    fmt = "xlsx" if file.name.lower().endswith(".xlsx") else (
        "csv" if file.name.lower().endswith(".csv") else file.name.rsplit(".", 1)[-1])
    try:
        done = targets_import(request.user, file, fmt)  # type: ignore[arg-type]
    except EstafetaError as exc:
        messages.error(request, _text(exc))
        bad = exc.params.get("rows") if exc.code == "bad_import" else None
        return _list_page(request, status_for(exc), upload=upload,
                          bad_rows=list(bad) if isinstance(bad, list) else None)
    messages.success(request, _("Targets imported: %(count)s.") % {"count": len(done)})
    return redirect("web:targets")


@roles_required(*TARGET_ROLES)
@require_GET
def target_history(request: HttpRequest, kind: str, ref: str) -> HttpResponse:
    """Every target set for one object, period by period, the one in force first."""
    missing = error_page(request, 404, _("Not found"), _("There is no such target."))
    user: User = request.user  # type: ignore[assignment]
    if kind not in TargetKind.values or len(ref) > 64:
        return missing
    facts = actor_facts(user)
    if facts.role not in (Role.DIRECTOR, Role.ADMIN) and not (
            kind == TargetKind.SELLER and ref.isdigit() and may_set(user, kind, ref)):
        return missing
    name = object_names(user, {(kind, ref)}).get((kind, ref))
    rows = list(Target.objects.filter(kind=kind, ref=ref).select_related("created_by")
                .order_by("-period_start", "-period_end", "-created_at", "-pk"))
    if name is None and not rows:
        return missing
    history = []
    seen: set[tuple[Any, Any]] = set()
    for t in rows:
        period = (t.period_start, t.period_end)
        history.append({"target": t, "in_force": period not in seen})
        seen.add(period)
    return render(request, "web/targets/history.html", {
        "section": "targets", "kind": kind, "ref": ref, "name": name or "",
        "kind_label": TargetKind(kind).label, "history": history,
    })


urlpatterns = [
    path("targets/", targets, name="targets"),
    path("targets/import/", targets_upload, name="targets_import"),
    path("targets/<str:kind>/<str:ref>/", target_history, name="target_history"),
]
