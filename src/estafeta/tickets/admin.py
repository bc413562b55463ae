"""Admin for tickets: a read-only view of each ticket with its stages, tasks, contacts,
documents and timeline. Tickets change only through the services (web UI, API, console).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from estafeta.core.admin_base import ReadOnlyAdmin, ReadOnlyInline
from estafeta.history.models import Event
from estafeta.tasks.models import Task

from .models import Activity, ChecklistEntry, Document, StageVisit, Ticket


def compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class VisitInline(ReadOnlyInline):
    model = StageVisit
    fields = ("seq", "stage", "kind", "entered_at", "executor", "closed_at", "closed_by",
              "override", "checklist")
    readonly_fields = ("checklist",)
    ordering = ("seq",)
    verbose_name_plural = gettext_lazy("stages")

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageVisit]:
        entries = ChecklistEntry.objects.select_related("item").order_by("item__position")
        return (super().get_queryset(request).select_related("stage", "executor", "closed_by")
                .prefetch_related(Prefetch("entries", queryset=entries)))

    @admin.display(description=gettext_lazy("checklist done"))
    def checklist(self, obj: StageVisit) -> SafeString:
        return format_html_join(mark_safe("<br>"), "{}{}{}", (
            (e.item.title, ": " if e.evidence is not None else "",
             compact(e.evidence) if e.evidence is not None else "")
            for e in obj.entries.all()))


class TaskInline(ReadOnlyInline):
    model = Task
    fk_name = "ticket"
    fields = ("kind", "title", "assignee", "due_at", "status", "done_at", "result")
    ordering = ("due_at", "pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return super().get_queryset(request).select_related("assignee")


class ActivityInline(ReadOnlyInline):
    model = Activity
    fields = ("occurred_at", "kind", "direction", "outcome", "duration_seconds",
              "performed_by", "source", "note")
    ordering = ("occurred_at", "pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Activity]:
        return super().get_queryset(request).select_related("performed_by")


class DocumentInline(ReadOnlyInline):
    model = Document
    fields = ("kind", "number", "amount", "currency", "issued_at", "issued_by")
    ordering = ("issued_at", "pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).select_related("issued_by")


class EventInline(ReadOnlyInline):
    """The ticket's timeline: its events in chain order."""

    model = Event
    fk_name = "ticket"
    fields = ("seq", "occurred_at", "type", "actor", "owner", "details")
    readonly_fields = ("details",)
    ordering = ("seq",)
    verbose_name = gettext_lazy("event")
    verbose_name_plural = gettext_lazy("timeline")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).select_related("actor", "owner")

    @admin.display(description=gettext_lazy("details"))
    def details(self, obj: Event) -> str:
        return compact(obj.payload)


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("number", "subject", "client", "pipeline", "stage", "status", "owner",
                    "created_at")
    list_filter = ("status", "pipeline", "channel", "team")
    list_select_related = ("client", "pipeline", "stage", "owner")
    search_fields = ("number", "subject", "client__name")
    show_full_result_count = False
    inlines = (VisitInline, TaskInline, ActivityInline, DocumentInline, EventInline)
    fieldsets = (
        (None, {"fields": ("number", "subject", "status", "client", "channel", "description")}),
        (gettext_lazy("Process"), {"fields": ("pipeline", "version", "stage", "owner", "team")}),
        (gettext_lazy("Money and outcome"), {"fields": (
            "amount", "currency", "lost_reason", "close_note", "duplicate_of")}),
        (gettext_lazy("Times"), {"fields": ("created_by", "created_at", "updated_at",
                                            "closed_at")}),
    )
