"""Admin for clients: reference data (segments, territories) and read-only clients.

Clients change through the web UI and the API (``client_update``); here an admin can only look
and, on an erasure request, anonymise one (``client_anonymise``) with a recorded reason.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from estafeta.core.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    ServiceForm,
    actor_of,
    refusal_messages,
)
from estafeta.domain.errors import EstafetaError

from .models import Client, ClientContact, Segment, Territory
from .services import classification_save, client_anonymise


class ReferenceForm(ServiceForm):
    """Adds or renames a segment or territory through ``classification_save``."""

    def perform(self) -> Segment | Territory:
        model = type(self.instance)
        existing = self.instance if self.instance.pk else None
        return classification_save(
            actor=self.actor, model=model, name=self.cleaned_data["name"],
            code=self.cleaned_data.get("code", "") if existing is None else existing.code,
            instance=existing)


class ReferenceAdmin(ServiceAdmin):
    """Segments and territories: reference data, added and renamed here (with an event).

    The code is fixed once created: events and analytics refer to it.
    """

    can_add = True
    can_change = True
    form = ReferenceForm
    list_display = ("name", "code")
    search_fields = ("name", "code")
    ordering = ("name",)
    readonly_fields = ("code",)
    fields = ("code", "name")


@admin.register(Segment)
class SegmentAdmin(ReferenceAdmin):
    pass


@admin.register(Territory)
class TerritoryAdmin(ReferenceAdmin):
    pass


class ContactInline(ReadOnlyInline):
    model = ClientContact
    fields = ("kind", "value")


class AnonymiseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("For example the erasure request's reference. It is recorded."))
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand"),
        help_text=gettext_lazy(
            "The client's name, phones, emails and notes, ticket descriptions and contact notes "
            "are erased for good. The tickets, their numbers and their history stay."))


@admin.register(Client)
class ClientAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "segment", "territory", "key_account", "created_at",
                    "anonymised_at")
    list_filter = ("kind", "segment", "territory", "key_account",
                   ("anonymised_at", admin.EmptyFieldListFilter))
    list_select_related = ("segment", "territory")
    search_fields = ("name", "contacts__value")
    inlines = (ContactInline,)
    actions = ("anonymise",)
    fields = ("name", "kind", "segment", "territory", "key_account", "notes", "created_by",
              "created_at", "anonymised_at", "tickets", "erasure")
    readonly_fields = ("tickets", "erasure")

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/anonymise/", self.admin_site.admin_view(self.anonymise_view),
                 name="clients_client_anonymise"),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("tickets"))
    def tickets(self, obj: Client) -> SafeString:
        url = reverse("admin:tickets_ticket_changelist") + f"?client__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.tickets.count())

    @admin.display(description=gettext_lazy("personal data"))
    def erasure(self, obj: Client) -> SafeString | str:
        if obj.anonymised_at is not None:
            return _("anonymised")
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:clients_client_anonymise", args=[obj.pk]),
                           _("Anonymise on an erasure request…"))

    @admin.action(description=gettext_lazy("Anonymise the selected client (asks for a reason)"),
                  permissions=["write"])
    def anonymise(self, request: HttpRequest, queryset: QuerySet[Client]) -> Any:
        client = self.single(request, queryset)
        if client is None:
            return None
        return HttpResponseRedirect(reverse("admin:clients_client_anonymise", args=[client.pk]))

    def anonymise_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self.require_write(request)
        client: Client = self.object_or_404(request, object_id)
        if client.anonymised_at is not None:
            self.message_user(request, _("This client is already anonymised."), messages.WARNING)
            return self.redirect_to(client)
        post = request.method == "POST"
        form = AnonymiseForm(request.POST) if post else AnonymiseForm()
        if post and form.is_valid():
            try:
                client_anonymise(actor=actor_of(request), client=client,
                                 reason=form.cleaned_data["reason"])
            except EstafetaError as exc:
                for message in refusal_messages(exc):
                    form.add_error(None, message)
            else:
                self.log_change(request, client, _("Anonymised"))
                self.message_user(request, _("Client #%(id)d is anonymised.") % {"id": client.pk},
                                  messages.SUCCESS)
                return self.redirect_to(client)
        intro = [_("Anonymise %(client)s (client #%(id)d, %(tickets)d tickets).")
                 % {"client": client, "id": client.pk, "tickets": client.tickets.count()}]
        return self.form_page(request, title=_("Anonymise"), form=form,
                              submit=_("Anonymise"), original=client, intro=intro)
