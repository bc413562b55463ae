"""Admin for tasks: read-only. Tasks are planned, completed and reassigned through the services."""

from __future__ import annotations

from django.contrib import admin

from estafeta.core.admin_base import ReadOnlyAdmin

from .models import Task


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("title", "ticket", "kind", "assignee", "due_at", "status", "done_at")
    list_filter = ("status", "kind")
    list_select_related = ("ticket", "assignee")
    search_fields = ("ticket__number", "title", "assignee__username")
    show_full_result_count = False
    fields = ("ticket", "visit", "kind", "title", "assignee", "due_at", "status", "result",
              "created_by", "created_at", "done_at", "done_by")
