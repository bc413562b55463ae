"""Admin for web forms: read-only. Forms are managed under Settings › Web forms (through the
services, with their history); submissions are written only by the public form."""

from __future__ import annotations

from django.contrib import admin

from estafeta.core.admin_base import ReadOnlyAdmin

from .models import WebForm, WebFormSubmission


@admin.register(WebForm)
class WebFormAdmin(ReadOnlyAdmin):
    list_display = ("slug", "title", "pipeline", "is_active", "updated_at")
    list_filter = ("is_active",)
    list_select_related = ("pipeline",)
    search_fields = ("slug", "title")
    fields = ("slug", "title", "pipeline", "is_active", "name_field", "phone_field",
              "email_field", "message_field", "frame_origins", "min_fill_seconds",
              "created_at", "updated_at")


@admin.register(WebFormSubmission)
class WebFormSubmissionAdmin(ReadOnlyAdmin):
    # The thank-you token and the rate-limit keys are left out: nothing to read there.
    list_display = ("created_at", "form", "ticket", "language")
    list_select_related = ("form", "ticket")
    fields = ("form", "ticket", "language", "created_at")
