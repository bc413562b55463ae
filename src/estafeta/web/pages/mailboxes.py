"""Settings › Mailboxes (admins only): the mailboxes the worker reads, and the quarantine of
mail that could not be taken in (reason, raw message as a download, "resolved").

Every change is a POST with its CSRF token through ``mailin.services``; nothing is deleted (a
mailbox is deactivated, a quarantined message resolved). The password is write-only: the form
never shows it, and an empty password field keeps the stored one.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from estafeta.accounts.models import User
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError
from estafeta.mailin.models import Mailbox, MailboxKind, Quarantine
from estafeta.mailin.services import mailbox_save, quarantine_resolve
from estafeta.pipelines.models import Pipeline

from .common import error_page, paginate, query_without, refusal, roles_required

admin_only = roles_required(Role.ADMIN)
read_or_post = require_http_methods(["GET", "HEAD", "POST"])


class MailboxForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    address = forms.EmailField(label=gettext_lazy("Address"), max_length=254,
                               help_text=gettext_lazy("The mailbox's own address: From of "
                                                      "replies and acknowledgements."))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=MailboxKind.choices)
    pipeline = forms.ModelChoiceField(label=gettext_lazy("Pipeline"),
                                      queryset=Pipeline.objects.none())
    host = forms.CharField(label=gettext_lazy("IMAP host"), max_length=255, required=False)
    port = forms.IntegerField(label=gettext_lazy("Port"), min_value=1, max_value=65535,
                              initial=993)
    starttls = forms.BooleanField(label=gettext_lazy("STARTTLS instead of IMAP over TLS"),
                                  required=False)
    ssl_verify = forms.BooleanField(label=gettext_lazy("Verify the server's certificate"),
                                    required=False, initial=True)
    username = forms.CharField(label=gettext_lazy("User name"), max_length=255, required=False)
    password = forms.CharField(label=gettext_lazy("Password"), max_length=255, required=False,
                               strip=False,
                               widget=forms.PasswordInput(render_value=False),
                               help_text=gettext_lazy("Never shown; leave empty to keep the "
                                                      "stored one."))
    folder = forms.CharField(label=gettext_lazy("Folder"), max_length=255, initial="INBOX")
    path = forms.CharField(label=gettext_lazy("Maildir path"), max_length=500, required=False)
    acknowledge = forms.BooleanField(label=gettext_lazy("Send the ticket number back"),
                                     required=False)
    active = forms.BooleanField(label=gettext_lazy("Active (read by the worker)"),
                                required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["pipeline"])
        field.queryset = Pipeline.objects.order_by("name")


FIELDS = ["name", "address", "kind", "host", "port", "starttls", "ssl_verify", "username",
          "folder", "path", "acknowledge", "active"]


def _page(request: HttpRequest, template: str, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    context.setdefault("section", "settings")
    context.setdefault("area", "mailboxes")
    return render(request, f"web/mailboxes/{template}", context, status=status)


def _missing(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such item in the settings."))


@admin_only
@require_safe
def mailboxes(request: HttpRequest) -> HttpResponse:
    items = Mailbox.objects.select_related("pipeline").order_by("-active", "name")
    open_count = Quarantine.objects.filter(resolved_at__isnull=True).count()
    return _page(request, "list.html", {"mailboxes": items, "open_count": open_count})


def _save(request: HttpRequest, mailbox: Mailbox, form: MailboxForm) -> HttpResponse | int:
    data = form.cleaned_data
    for name in FIELDS:
        setattr(mailbox, name, data[name])
    mailbox.pipeline = data["pipeline"]
    try:
        mailbox_save(actor=cast(User, request.user), mailbox=mailbox,
                     password=data["password"] or None)
    except EstafetaError as exc:
        return refusal(request, exc)
    messages.success(request, _("The mailbox is saved."))
    return redirect("web:settings_mailbox", pk=mailbox.pk)


@admin_only
@read_or_post
def mailbox_new(request: HttpRequest) -> HttpResponse:
    form = MailboxForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            done = _save(request, Mailbox(), form)
            if not isinstance(done, int):
                return done
            status = done
    return _page(request, "edit.html", {"form": form, "mailbox": None}, status=status)


@admin_only
@read_or_post
def mailbox_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = Mailbox.objects.filter(pk=pk).first()
    if mailbox is None:
        return _missing(request)
    initial = {name: getattr(mailbox, name) for name in FIELDS}
    initial["pipeline"] = mailbox.pipeline_id
    form = MailboxForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            done = _save(request, Mailbox.objects.get(pk=pk), form)
            if not isinstance(done, int):
                return done
            status = done
    return _page(request, "edit.html", {"form": form, "mailbox": mailbox}, status=status)


STATES = ("open", "resolved", "all")


@admin_only
@require_safe
def quarantine(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or "open"
    if state not in STATES:
        state = "open"
    items = Quarantine.objects.select_related("mailbox", "resolved_by", "raw")
    if state == "open":
        items = items.filter(resolved_at__isnull=True)
    elif state == "resolved":
        items = items.filter(resolved_at__isnull=False)
    return _page(request, "quarantine.html", {
        "page": paginate(request, items.order_by("-received_at", "-pk")), "state": state,
        "query": query_without(request, "page")})


@admin_only
@require_safe
def quarantine_raw(request: HttpRequest, pk: int) -> HttpResponse:
    item = Quarantine.objects.select_related("raw").filter(pk=pk).first()
    if item is None or not default_storage.exists(item.raw.path):
        return _missing(request)
    response = FileResponse(default_storage.open(item.raw.path, "rb"), as_attachment=True,
                            filename=f"quarantine-{item.pk}.eml",
                            content_type="application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"
    return response  # type: ignore[return-value]  # a streaming response


@admin_only
@require_POST
def quarantine_done(request: HttpRequest, pk: int) -> HttpResponse:
    item = Quarantine.objects.filter(pk=pk).first()
    if item is None:
        return _missing(request)
    try:
        quarantine_resolve(actor=cast(User, request.user), item=item)
    except EstafetaError as exc:
        refusal(request, exc)
    else:
        messages.success(request, _("Marked as resolved."))
    return redirect("web:settings_quarantine")


urlpatterns = [
    path("settings/mailboxes/", mailboxes, name="settings_mailboxes"),
    path("settings/mailboxes/new/", mailbox_new, name="settings_mailbox_new"),
    path("settings/mailboxes/<int:pk>/", mailbox_edit, name="settings_mailbox"),
    path("settings/mailboxes/quarantine/", quarantine, name="settings_quarantine"),
    path("settings/mailboxes/quarantine/<int:pk>/raw/", quarantine_raw,
         name="settings_quarantine_raw"),
    path("settings/mailboxes/quarantine/<int:pk>/resolve/", quarantine_done,
         name="settings_quarantine_resolve"),
]
