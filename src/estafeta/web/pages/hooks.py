"""Settings for administrators: telephony and messenger webhook sources (docs/webhooks-in.md).

List and create sources, rotate a secret, switch a source off and on; each change is a POST with
its CSRF token through one service of ``hooks.services``. A secret is shown once: the creating or
rotating POST keeps it in the session for the next page view, which takes it out again.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from estafeta.accounts.models import User
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError
from estafeta.hooks.models import DEFAULT_TOLERANCE, HookCall, HookKind, HookMessage, HookSource
from estafeta.hooks.services import (
    MAX_TOLERANCE,
    MIN_TOLERANCE,
    fingerprint,
    hook_source_create,
    hook_source_rotate_secret,
    hook_source_set_active,
)
from estafeta.pipelines.models import Pipeline

from ..errors import describe, status_for
from .common import error_page, paginate, query_without, roles_required

admin_only = roles_required(Role.ADMIN)
REVEAL = "estafeta_hook_secret"  # session key: {"pk": ..., "secret": ...} until shown once

# The refusals of hooks.services, as people read them (other codes: web.errors).
MESSAGES = {
    "bad_name": gettext_lazy("Enter a name of 1 to 200 characters."),
    "bad_code": gettext_lazy("Use lower-case Latin letters, digits and hyphens for the code."),
    "bad_kind": gettext_lazy("Choose telephony or messenger."),
    "bad_tolerance": gettext_lazy("The clock tolerance is %(low)s to %(high)s seconds."),
    "hook_source_exists": gettext_lazy("A webhook source with this code exists."),
}


class HookSourceForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200,
                           help_text=gettext_lazy("Like “Office PBX” or “Telegram bot”."))
    slug = forms.SlugField(label=gettext_lazy("Code"), max_length=50,
                           help_text=gettext_lazy("Part of the endpoint's address; it never "
                                                  "changes."))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=HookKind.choices)
    pipeline = forms.ModelChoiceField(label=gettext_lazy("Pipeline for new tickets"),
                                      queryset=Pipeline.objects.none())
    tolerance_seconds = forms.IntegerField(
        label=gettext_lazy("Clock tolerance, seconds"), initial=DEFAULT_TOLERANCE,
        min_value=MIN_TOLERANCE, max_value=MAX_TOLERANCE,
        help_text=gettext_lazy("Older signed requests are refused (replay protection)."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].queryset = (  # type: ignore[attr-defined]
            Pipeline.objects.filter(is_active=True).order_by("name"))


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _refusal(request: HttpRequest, exc: EstafetaError) -> int:
    text = MESSAGES.get(exc.code)
    messages.error(request, str(text) % dict(exc.params) if text else describe(exc))
    return status_for(exc)


def _page(request: HttpRequest, template: str, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    context.setdefault("section", "settings")
    context.setdefault("area", "hooks")
    return render(request, f"web/hooks/{template}", context, status=status)


def _source(pk: int) -> HookSource | None:
    return HookSource.objects.select_related("pipeline").filter(pk=pk).first()


def _missing(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such item in the settings."))


def _endpoint(request: HttpRequest, source: HookSource) -> str:
    return request.build_absolute_uri(reverse(f"hooks:{source.kind}", args=[source.slug]))


def _list(request: HttpRequest, form: HookSourceForm, status: int = 200) -> HttpResponse:
    q = (request.GET.get("q") or "").strip()[:200]
    rows = HookSource.objects.select_related("pipeline").order_by("name", "pk")
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(slug__icontains=q))
    context = {"page": paginate(request, rows), "q": q, "query": query_without(request, "page"),
               "form": form}
    return _page(request, "list.html", context, status=status)


@admin_only
@require_safe
def hook_sources(request: HttpRequest) -> HttpResponse:
    return _list(request, HookSourceForm())


@admin_only
@require_POST
def hook_source_new(request: HttpRequest) -> HttpResponse:
    form = HookSourceForm(request.POST)
    if not form.is_valid():
        return _list(request, form, 400)
    data = form.cleaned_data
    try:
        source, secret = hook_source_create(
            actor=_me(request), name=data["name"], slug=data["slug"], kind=data["kind"],
            pipeline=data["pipeline"], tolerance_seconds=data["tolerance_seconds"])
    except EstafetaError as exc:
        return _list(request, form, _refusal(request, exc))
    request.session[REVEAL] = {"pk": source.pk, "secret": secret}
    messages.success(request, _("The webhook source is added. Copy its secret now."))
    return redirect("web:settings_hook", pk=source.pk)


@admin_only
@require_safe
def hook_source(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    if source is None:
        return _missing(request)
    reveal = request.session.get(REVEAL)
    secret = ""
    if isinstance(reveal, dict) and reveal.get("pk") == source.pk:
        # Shown on this one page view only: a reload shows the fingerprint alone.
        secret = str(reveal.get("secret") or "")
        del request.session[REVEAL]
    model = HookCall if source.kind == HookKind.TELEPHONY else HookMessage
    recent = list(model.objects.filter(source=source).select_related("ticket")
                  .order_by("-received_at", "-pk")[:10])
    context = {"source": source, "secret": secret, "fingerprint": fingerprint(source.secret),
               "endpoint": _endpoint(request, source), "recent": recent,
               "telephony": source.kind == HookKind.TELEPHONY}
    response = _page(request, "source.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin_only
@require_POST
def hook_source_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    if source is None:
        return _missing(request)
    try:
        source, secret = hook_source_rotate_secret(actor=_me(request), source=source)
    except EstafetaError as exc:
        _refusal(request, exc)
        return redirect("web:settings_hook", pk=source.pk)
    request.session[REVEAL] = {"pk": source.pk, "secret": secret}
    messages.success(request, _("A new secret is set; the old one no longer works. Copy it now."))
    return redirect("web:settings_hook", pk=source.pk)


@admin_only
@require_POST
def hook_source_active(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    if source is None:
        return _missing(request)
    active = {"1": True, "0": False}.get(request.POST.get("active") or "")
    if active is None:
        messages.error(request, _("Choose whether the source is active."))
        return redirect("web:settings_hook", pk=source.pk)
    try:
        hook_source_set_active(actor=_me(request), source=source, active=active)
    except EstafetaError as exc:
        _refusal(request, exc)
        return redirect("web:settings_hook", pk=source.pk)
    messages.success(request, _("The source accepts calls and messages again.") if active
                     else _("The source is switched off: its endpoint answers 404."))
    return redirect("web:settings_hook", pk=source.pk)


urlpatterns = [
    path("settings/hooks/", hook_sources, name="settings_hooks"),
    path("settings/hooks/new/", hook_source_new, name="settings_hook_new"),
    path("settings/hooks/<int:pk>/", hook_source, name="settings_hook"),
    path("settings/hooks/<int:pk>/rotate/", hook_source_rotate, name="settings_hook_rotate"),
    path("settings/hooks/<int:pk>/active/", hook_source_active, name="settings_hook_active"),
]
