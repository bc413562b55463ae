"""Settings for administrators: people, teams, absences, pipelines and lost reasons.

Every page is for the admin role only (others get the 403 page). Every change is a POST with
its CSRF token and goes through one service of ``accounts.services`` or ``pipelines.services``;
a refusal is shown as its translated message with a 4xx status, and nothing changes. Nothing is
ever deleted: people are deactivated, absences cancelled, pipelines and reasons switched off.
Stages, checklists, SLA targets and executor rules are edited as YAML: export, edit, import
(each import is a new version; running tickets keep theirs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from estafeta.accounts.models import Absence, Team, User
from estafeta.accounts.selectors import (
    absences_search,
    team_members,
    teams_search,
    users_search,
)
from estafeta.accounts.services import (
    absence_add,
    absence_cancel,
    team_create,
    team_rename,
    team_set_head,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_password,
    user_update,
)
from estafeta.core import clock
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError
from estafeta.pipelines.models import LostReason, Pipeline, PipelineVersion
from estafeta.pipelines.selectors import (
    lost_reasons_search,
    pipeline_by_code,
    pipeline_versions,
    pipelines_search,
)
from estafeta.pipelines.services import (
    lost_reason_add,
    lost_reason_set_active,
    pipeline_dump,
    pipeline_load,
    pipeline_set_active,
)

from ..errors import describe, problems
from ..forms import (
    AbsenceForm,
    DeactivateForm,
    LostReasonForm,
    PipelineYamlForm,
    SetPasswordForm,
    TeamForm,
    UserForm,
)
from ..labels import label
from .common import error_page, paginate, query_without, refusal, roles_required

admin_only = roles_required(Role.ADMIN)
# Pages with a form answer GET and POST; every other page only reads. DELETE, PUT and the like
# get 405 everywhere: nothing is ever deleted.
read_or_post = require_http_methods(["GET", "HEAD", "POST"])

# The pipeline guide of the repository (absent when Estafeta is installed from a wheel).
GUIDE = Path(__file__).resolve().parents[4] / "docs" / "pipelines.md"
GUIDE_URL = "docs/pipelines.md"


# Which entry of the settings menu each page belongs to.
AREAS = {
    "home.html": "home", "users.html": "users", "user_new.html": "users", "user.html": "users",
    "teams.html": "teams", "team.html": "teams", "absences.html": "absences",
    "pipelines.html": "pipelines", "pipeline.html": "pipelines", "version.html": "pipelines",
    "import.html": "pipelines", "guide.html": "pipelines", "lost_reasons.html": "lost_reasons",
}


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _page(request: HttpRequest, template: str, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    context.setdefault("section", "settings")
    context.setdefault("area", AREAS.get(template, ""))
    return render(request, f"web/settings/{template}", context, status=status)


def _missing(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such item in the settings."))


def _search(request: HttpRequest) -> str:
    return (request.GET.get("q") or "").strip()[:200]


def _list_context(request: HttpRequest, items: Any) -> dict[str, Any]:
    return {"page": paginate(request, items), "q": _search(request),
            "query": query_without(request, "page")}


def _name(user: User | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.username


def _drop(form: forms.Form, *names: str) -> forms.Form:
    for name in names:
        del form.fields[name]
    return form


def _flag(request: HttpRequest, name: str) -> bool | None:
    value = request.POST.get(name)
    return {"1": True, "0": False}.get(value or "")


# --- start ---------------------------------------------------------------------------------------


@admin_only
@require_safe
def settings_home(request: HttpRequest) -> HttpResponse:
    return _page(request, "home.html", {})


# --- people --------------------------------------------------------------------------------------


USER_STATES = {"active": True, "inactive": False, "all": None}


@admin_only
@require_safe
def users(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or "active"
    if state not in USER_STATES:
        state = "active"
    context = _list_context(request, users_search(_search(request), active=USER_STATES[state]))
    for person in context["page"]:
        person.role_label = label(person.role, "role")
    context["state"] = state
    return _page(request, "users.html", context)


@admin_only
@read_or_post
def user_new(request: HttpRequest) -> HttpResponse:
    status = 200
    form = UserForm(request.POST or None, initial={"language": "ru", "role": Role.SELLER})
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                person = user_create(
                    actor=_me(request), username=data["username"], role=data["role"],
                    password=data["password"] or None, team=data["team"], email=data["email"],
                    first_name=data["first_name"], last_name=data["last_name"],
                    language=data["language"])
            except EstafetaError as exc:
                status = refusal(request, exc)
            else:
                messages.success(request, _("%(name)s can now be given work.")
                                 % {"name": _name(person)})
                return redirect("web:settings_user", pk=person.pk)
    return _page(request, "user_new.html", {"form": form}, status=status)


def _user_initial(person: User) -> dict[str, Any]:
    return {"username": person.username, "first_name": person.first_name,
            "last_name": person.last_name, "email": person.email, "role": person.role,
            "team": person.team_id, "language": person.language}


def _user_page(request: HttpRequest, person: User, status: int = 200,
               **forms_: forms.Form) -> HttpResponse:
    context: dict[str, Any] = {
        "person": person,
        "role_label": label(person.role, "role"),
        "form": forms_.get("form") or UserForm(editing=True, initial=_user_initial(person)),
        "password_form": forms_.get("password_form") or SetPasswordForm(user=person),
        "deactivate_form": forms_.get("deactivate_form") or DeactivateForm(user=person),
        "headed": list(Team.objects.filter(head=person).order_by("name")),
    }
    return _page(request, "user.html", context, status=status)


def _person(pk: int) -> User | None:
    return User.objects.select_related("team").filter(pk=pk).first()


@admin_only
@read_or_post
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    if person is None:
        return _missing(request)
    if request.method != "POST":
        return _user_page(request, person)
    form = UserForm(request.POST, editing=True, initial=_user_initial(person))
    if not form.is_valid():
        return _user_page(request, person, 400, form=form)
    data = form.cleaned_data
    try:
        user_update(actor=_me(request), user=person, role=data["role"], team=data["team"],
                    email=data["email"], first_name=data["first_name"],
                    last_name=data["last_name"], language=data["language"])
    except EstafetaError as exc:
        return _user_page(request, person, refusal(request, exc), form=form)
    messages.success(request, _("Saved."))
    return redirect("web:settings_user", pk=person.pk)


@admin_only
@require_POST
def user_password(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    if person is None:
        return _missing(request)
    form = SetPasswordForm(request.POST, user=person)
    if not form.is_valid():
        return _user_page(request, person, 400, password_form=form)
    try:
        user_set_password(actor=_me(request), user=person, password=form.cleaned_data["password"])
    except EstafetaError as exc:
        return _user_page(request, person, refusal(request, exc), password_form=form)
    messages.success(request, _("The new password is set; tell it to the person."))
    return redirect("web:settings_user", pk=person.pk)


@admin_only
@require_POST
def user_deactivate_view(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    if person is None:
        return _missing(request)
    form = DeactivateForm(request.POST, user=person)
    if not form.is_valid():
        return _user_page(request, person, 400, deactivate_form=form)
    try:
        handover = user_deactivate(actor=_me(request), user=person,
                                   successor=form.cleaned_data["successor"],
                                   reason=form.cleaned_data["reason"])
    except EstafetaError as exc:
        return _user_page(request, person, refusal(request, exc), deactivate_form=form)
    messages.success(request, _(
        "%(name)s is deactivated. %(successor)s took over %(tickets)s ticket(s), %(tasks)s open "
        "task(s) and %(teams)s team(s).") % {
        "name": _name(person), "successor": _name(handover.successor),
        "tickets": handover.tickets, "tasks": handover.tasks, "teams": handover.teams})
    return redirect("web:settings_user", pk=person.pk)


@admin_only
@require_POST
def user_reactivate_view(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    if person is None:
        return _missing(request)
    try:
        user_reactivate(actor=_me(request), user=person)
    except EstafetaError as exc:
        return _user_page(request, person, refusal(request, exc))
    messages.success(request, _("%(name)s is active again.") % {"name": _name(person)})
    return redirect("web:settings_user", pk=person.pk)


# --- teams ---------------------------------------------------------------------------------------


@admin_only
@require_safe
def teams(request: HttpRequest) -> HttpResponse:
    return _teams_page(request, TeamForm())


def _teams_page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
    context = _list_context(request, teams_search(_search(request)))
    context["form"] = form
    return _page(request, "teams.html", context, status=status)


@admin_only
@require_POST
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST)
    if not form.is_valid():
        return _teams_page(request, form, 400)
    try:
        team = team_create(actor=_me(request), name=form.cleaned_data["name"],
                           head=form.cleaned_data["head"])
    except EstafetaError as exc:
        return _teams_page(request, form, refusal(request, exc))
    messages.success(request, _("The team “%(name)s” is created.") % {"name": team.name})
    return redirect("web:settings_team", pk=team.pk)


def _rename_form(team: Team, data: Any = None) -> forms.Form:
    return _drop(TeamForm(data, prefix="rename", initial={"name": team.name}), "head")


def _head_form(team: Team, data: Any = None) -> forms.Form:
    return _drop(TeamForm(data, prefix="head", initial={"head": team.head_id}), "name")


def _team_page(request: HttpRequest, team: Team, status: int = 200,
               **forms_: forms.Form) -> HttpResponse:
    members = [{"person": person, "role": label(person.role, "role")}
               for person in team_members([team.pk])]
    return _page(request, "team.html", {
        "team": team, "members": members,
        "rename_form": forms_.get("rename_form") or _rename_form(team),
        "head_form": forms_.get("head_form") or _head_form(team),
    }, status=status)


def _team(pk: int) -> Team | None:
    return Team.objects.select_related("head").filter(pk=pk).first()


@admin_only
@require_safe
def team_view(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team(pk)
    if team is None:
        return _missing(request)
    return _team_page(request, team)


@admin_only
@require_POST
def team_rename_view(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team(pk)
    if team is None:
        return _missing(request)
    form = _rename_form(team, request.POST)
    if not form.is_valid():
        return _team_page(request, team, 400, rename_form=form)
    try:
        team_rename(actor=_me(request), team=team, name=form.cleaned_data["name"])
    except EstafetaError as exc:
        return _team_page(request, team, refusal(request, exc), rename_form=form)
    messages.success(request, _("Saved."))
    return redirect("web:settings_team", pk=team.pk)


@admin_only
@require_POST
def team_head_view(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team(pk)
    if team is None:
        return _missing(request)
    form = _head_form(team, request.POST)
    if not form.is_valid():
        return _team_page(request, team, 400, head_form=form)
    try:
        team_set_head(actor=_me(request), team=team, head=form.cleaned_data["head"])
    except EstafetaError as exc:
        return _team_page(request, team, refusal(request, exc), head_form=form)
    messages.success(request, _("Saved."))
    return redirect("web:settings_team", pk=team.pk)


# --- absences ------------------------------------------------------------------------------------


def _absences_page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
    everything = request.GET.get("all") == "1"
    items = absences_search(_search(request), current_from=None if everything else clock.now())
    context = _list_context(request, items)
    context.update({"form": form, "all": everything, "now": clock.now()})
    return _page(request, "absences.html", context, status=status)


@admin_only
@require_safe
def absences(request: HttpRequest) -> HttpResponse:
    return _absences_page(request, AbsenceForm())


@admin_only
@require_POST
def absence_new(request: HttpRequest) -> HttpResponse:
    form = AbsenceForm(request.POST)
    if not form.is_valid():
        return _absences_page(request, form, 400)
    starts_at, ends_at = form.period()
    try:
        absence_add(actor=_me(request), user=form.cleaned_data["user"], starts_at=starts_at,
                    ends_at=ends_at, reason=form.cleaned_data["reason"])
    except EstafetaError as exc:
        return _absences_page(request, form, refusal(request, exc))
    messages.success(request, _("The absence is recorded: new work skips %(name)s meanwhile.")
                     % {"name": _name(form.cleaned_data["user"])})
    return redirect("web:settings_absences")


@admin_only
@require_POST
def absence_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    absence = Absence.objects.select_related("user").filter(pk=pk).first()
    if absence is None:
        return _missing(request)
    try:
        absence_cancel(actor=_me(request), absence=absence)
    except EstafetaError as exc:
        return _absences_page(request, AbsenceForm(), refusal(request, exc))
    messages.success(request, _("The absence is cancelled."))
    return redirect("web:settings_absences")


# --- pipelines -----------------------------------------------------------------------------------


@admin_only
@require_safe
def pipelines(request: HttpRequest) -> HttpResponse:
    return _page(request, "pipelines.html", _list_context(request, pipelines_search(
        _search(request))))


def _pipeline(code: str) -> Pipeline | None:
    try:
        return pipeline_by_code(code)
    except EstafetaError:
        return None


@admin_only
@require_safe
def pipeline_view(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = _pipeline(code)
    if pipeline is None:
        return _missing(request)
    context = _list_context(request, pipeline_versions(pipeline))
    context["pipeline"] = pipeline
    return _page(request, "pipeline.html", context)


def _rule(stage: Any) -> dict[str, str] | None:
    rule = stage.executor_rule
    if rule is None:
        return None
    return {"rule": label(rule.rule, "executor_rule"), "user": rule.user or "",
            "team": rule.team or "", "role": label(rule.role, "role") if rule.role else "",
            "strategy": label(rule.strategy, "strategy") if rule.strategy else ""}


@admin_only
@require_safe
def pipeline_version_view(request: HttpRequest, code: str, number: int) -> HttpResponse:
    pipeline = _pipeline(code)
    version = (PipelineVersion.objects.select_related("created_by")
               .filter(pipeline=pipeline, number=number).first() if pipeline else None)
    if pipeline is None or version is None:
        return _missing(request)
    stages = []
    for stage in version.stage_list:
        template = stage.task_template
        stages.append({
            "stage": stage, "executor": _rule(stage),
            "task": {"kind": label(template.kind, "task_kind"), "title": template.title,
                     "due": template.due} if template else None,
            "items": [{"item": item, "evidence": label(item.evidence, "evidence")}
                      for item in stage.items.all()],
        })
    return _page(request, "version.html", {
        "pipeline": pipeline, "version": version, "stages": stages,
        "is_current": pipeline.current_version_id == version.pk,
    })


def _filename(code: str, number: int) -> str:
    safe = re.sub(r"[^a-z0-9_-]+", "-", code.lower()).strip("-") or "pipeline"
    return f"{safe}-v{number}.yaml"


@admin_only
@require_safe
def pipeline_export(request: HttpRequest, code: str, number: int) -> HttpResponse:
    try:
        text = pipeline_dump(code, number)
    except EstafetaError:
        return _missing(request)
    response = HttpResponse(text, content_type="text/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(code, number)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@admin_only
@require_POST
def pipeline_active(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = _pipeline(code)
    if pipeline is None:
        return _missing(request)
    active = _flag(request, "active")
    if active is None:
        messages.error(request, _("Choose one of the offered options."))
        return redirect("web:settings_pipeline", code=pipeline.code)
    try:
        pipeline_set_active(actor=_me(request), pipeline=pipeline, active=active)
    except EstafetaError as exc:
        refusal(request, exc)
        return redirect("web:settings_pipeline", code=pipeline.code)
    messages.success(request, _("“%(name)s” accepts new tickets.") % {"name": pipeline.name}
                     if active else
                     _("“%(name)s” accepts no new tickets; running tickets go on.")
                     % {"name": pipeline.name})
    return redirect("web:settings_pipeline", code=pipeline.code)


def _source(form: PipelineYamlForm) -> str:
    upload = form.cleaned_data.get("file")
    if upload is None:
        return "web form"
    return (Path(upload.name or "upload").name or "upload")[:100]


@admin_only
@read_or_post
def pipeline_import(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        # ``?from=CODE``: start from the pipeline's current definition, edited in the page.
        code = (request.GET.get("from") or "")[:40]
        try:
            initial = {"text": pipeline_dump(code)} if code else {}
        except EstafetaError:
            initial = {}
        return _page(request, "import.html", {"form": PipelineYamlForm(initial=initial),
                                              "from": code if initial else ""})
    form = PipelineYamlForm(request.POST, request.FILES or None)
    context: dict[str, Any] = {"form": form}
    if not form.is_valid():
        return _page(request, "import.html", context, status=400)
    try:
        result = pipeline_load(actor=_me(request), text=form.content(), source=_source(form))
    except EstafetaError as exc:
        found = problems(exc)
        if not found:
            return _page(request, "import.html", context, status=refusal(request, exc))
        # Every problem the loader found, each with its place in the file (shown escaped).
        context.update({"error": describe(exc), "problems": found})
        return _page(request, "import.html", context, status=400)
    if result.created:
        messages.success(request, _("Version %(number)s of “%(name)s” is now current: new tickets "
                                    "get it, running tickets keep theirs.")
                         % {"number": result.version.number, "name": result.pipeline.name})
    else:
        messages.warning(request, _("Nothing changed: this is the definition of the current "
                                    "version %(number)s.") % {"number": result.version.number})
    return redirect("web:settings_pipeline", code=result.pipeline.code)


@admin_only
@require_safe
def pipeline_guide(request: HttpRequest) -> HttpResponse:
    text = GUIDE.read_text(encoding="utf-8") if GUIDE.is_file() else ""
    return _page(request, "guide.html", {"text": text, "path": GUIDE_URL})


# --- lost reasons --------------------------------------------------------------------------------


def _reasons_page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
    context = _list_context(request, lost_reasons_search(_search(request)))
    context["form"] = form
    return _page(request, "lost_reasons.html", context, status=status)


@admin_only
@require_safe
def lost_reasons(request: HttpRequest) -> HttpResponse:
    return _reasons_page(request, LostReasonForm())


@admin_only
@require_POST
def lost_reason_new(request: HttpRequest) -> HttpResponse:
    form = LostReasonForm(request.POST)
    if not form.is_valid():
        return _reasons_page(request, form, 400)
    data = form.cleaned_data
    try:
        lost_reason_add(actor=_me(request), code=data["code"], title=data["title"],
                        pipeline=data["pipeline"])
    except EstafetaError as exc:
        return _reasons_page(request, form, refusal(request, exc))
    messages.success(request, _("The lost reason is added."))
    return redirect("web:settings_lost_reasons")


@admin_only
@require_POST
def lost_reason_active(request: HttpRequest, pk: int) -> HttpResponse:
    reason = LostReason.objects.filter(pk=pk).first()
    active = _flag(request, "active")
    if reason is None or active is None:
        return _missing(request)
    try:
        lost_reason_set_active(actor=_me(request), reason=reason, active=active)
    except EstafetaError as exc:
        return _reasons_page(request, LostReasonForm(), refusal(request, exc))
    messages.success(request, _("Saved."))
    return redirect("web:settings_lost_reasons")


urlpatterns = [
    path("settings/", settings_home, name="settings"),
    path("settings/users/", users, name="settings_users"),
    path("settings/users/new/", user_new, name="settings_user_new"),
    path("settings/users/<int:pk>/", user_edit, name="settings_user"),
    path("settings/users/<int:pk>/password/", user_password, name="settings_user_password"),
    path("settings/users/<int:pk>/deactivate/", user_deactivate_view,
         name="settings_user_deactivate"),
    path("settings/users/<int:pk>/reactivate/", user_reactivate_view,
         name="settings_user_reactivate"),
    path("settings/teams/", teams, name="settings_teams"),
    path("settings/teams/new/", team_new, name="settings_team_new"),
    path("settings/teams/<int:pk>/", team_view, name="settings_team"),
    path("settings/teams/<int:pk>/rename/", team_rename_view, name="settings_team_rename"),
    path("settings/teams/<int:pk>/head/", team_head_view, name="settings_team_head"),
    path("settings/absences/", absences, name="settings_absences"),
    path("settings/absences/new/", absence_new, name="settings_absence_new"),
    path("settings/absences/<int:pk>/cancel/", absence_cancel_view,
         name="settings_absence_cancel"),
    path("settings/pipelines/", pipelines, name="settings_pipelines"),
    path("settings/pipelines/import/", pipeline_import, name="settings_pipeline_import"),
    path("settings/pipelines/guide/", pipeline_guide, name="settings_pipeline_guide"),
    path("settings/pipeline/<slug:code>/", pipeline_view, name="settings_pipeline"),
    path("settings/pipeline/<slug:code>/active/", pipeline_active,
         name="settings_pipeline_active"),
    path("settings/pipeline/<slug:code>/v<int:number>/", pipeline_version_view,
         name="settings_pipeline_version"),
    path("settings/pipeline/<slug:code>/v<int:number>/export/", pipeline_export,
         name="settings_pipeline_export"),
    path("settings/lost-reasons/", lost_reasons, name="settings_lost_reasons"),
    path("settings/lost-reasons/new/", lost_reason_new, name="settings_lost_reason_new"),
    path("settings/lost-reasons/<int:pk>/active/", lost_reason_active,
         name="settings_lost_reason_active"),
]
