"""Admin for the history: events and checkpoints, read-only (they are append-only anyway)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

from estafeta.core.admin_base import ReadOnlyAdmin, show_json
from estafeta.domain.codes import EventType

from .models import Checkpoint, Event


class EventTypeFilter(admin.SimpleListFilter):
    """By type code, from the list of codes (not a DISTINCT over a large table)."""

    title = gettext_lazy("type")
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t.value, t.value) for t in EventType]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(type=value) if value else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "stream", "seq", "type", "ticket", "actor", "owner")
    list_filter = (EventTypeFilter,)
    list_select_related = ("ticket", "actor", "owner")
    search_fields = ("=stream", "=ticket__number")
    ordering = ("-id",)
    show_full_result_count = False
    fields = ("stream", "seq", "type", "ticket", "actor", "owner", "occurred_at",
              "recorded_at", "payload_shown", "prev_hash", "hash")
    readonly_fields = ("payload_shown",)

    @admin.display(description=gettext_lazy("payload"))
    def payload_shown(self, obj: Event) -> SafeString:
        return show_json(obj.payload)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("upto_event_id", "created_at", "streams", "hash")
    ordering = ("-upto_event_id",)
    fields = ("created_at", "upto_event_id", "streams", "heads_digest", "prev_hash", "hash")
