"""Admin for intake: read-only. Arrivals are recorded by the channels, duplicates decided and
follow-ups planned through ``intake.services`` (the heads' "Possible duplicates" page)."""

from __future__ import annotations

from django.contrib import admin

from estafeta.core.admin_base import ReadOnlyAdmin

from .models import DuplicateFlag, FollowUp, IntakeRecord


@admin.register(IntakeRecord)
class IntakeRecordAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "channel", "source", "external_id", "ticket", "created_ticket",
                    "flagged")
    list_filter = ("channel", "created_ticket", "flagged")
    list_select_related = ("ticket",)
    search_fields = ("ticket__number", "source", "external_id")
    show_full_result_count = False
    fields = ("source", "external_id", "channel", "ticket", "client", "activity",
              "created_ticket", "flagged", "name", "phones", "emails", "subject", "text",
              "occurred_at", "recorded_at")


@admin.register(DuplicateFlag)
class DuplicateFlagAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "ticket", "of", "status", "decided_by", "decided_at")
    list_filter = ("status",)
    list_select_related = ("ticket", "of", "decided_by")
    search_fields = ("ticket__number", "of__number")
    fields = ("ticket", "of", "record", "status", "created_at", "decided_at", "decided_by",
              "note")


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "ticket", "task")
    list_filter = ("kind",)
    list_select_related = ("ticket", "task")
    search_fields = ("ticket__number",)
    fields = ("task", "ticket", "kind", "record", "created_at")
