"""Admin: every notification (failed ones first to look at), read-only and never deleted; webhook
endpoints added and switched off here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.safestring import SafeString

from estafeta.core.admin_base import ReadOnlyAdmin, ServiceAdmin, ServiceForm, show_json

from .models import Notification, WebhookEndpoint
from .services import webhook_endpoint_save


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "status", "channel", "kind", "recipient", "ticket",
                    "attempts", "next_attempt_at", "last_error")
    list_filter = ("status", "channel", "kind")
    list_select_related = ("recipient", "ticket")
    search_fields = ("=ticket__number", "recipient__username", "=idempotency_key")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    readonly_fields = ("recipient", "channel", "kind", "ticket", "endpoint", "payload_json",
                       "idempotency_key", "created_at", "status", "attempts", "next_attempt_at",
                       "last_error", "sent_at", "read_at")
    exclude = ("payload",)

    @admin.display(description="payload")
    def payload_json(self, obj: Notification) -> SafeString:
        return show_json(obj.payload)


class EndpointForm(ServiceForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), min_length=16)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "secret", "is_active", "allow_private"]

    def perform(self) -> WebhookEndpoint:
        return webhook_endpoint_save(actor=self.actor, endpoint=self.instance)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    can_add = True
    can_change = True
    form = EndpointForm
    list_display = ("id", "url", "is_active", "allow_private", "created_at")
