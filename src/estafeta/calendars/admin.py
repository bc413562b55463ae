"""Admin for calendar days: read-only. Days are set on the settings page, through the service."""

from __future__ import annotations

from django.contrib import admin

from estafeta.core.admin_base import ReadOnlyAdmin

from .models import CalendarDay


@admin.register(CalendarDay)
class CalendarDayAdmin(ReadOnlyAdmin):
    list_display = ("day", "kind", "starts", "ends", "note", "updated_by", "updated_at")
    list_filter = ("kind",)
    list_select_related = ("updated_by",)
    fields = ("day", "kind", "starts", "ends", "note", "updated_by", "updated_at")
