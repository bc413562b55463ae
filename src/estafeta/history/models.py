"""The append-only history (promise 5).

Every service writes one ``Event`` per transition in its own transaction. Events form a hash
chain per stream (``ticket:42``, ``user:7``...) so work on different tickets never waits on a
shared lock; ``Checkpoint`` rows seal every stream head periodically. Triggers refuse DELETE and
UPDATE on both tables.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Now

from estafeta.core.models import UndeletableModel
from estafeta.domain.errors import DeletionRefused
from estafeta.domain.hashchain import EventFacts


class Event(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True

    stream = models.CharField(max_length=40)
    seq = models.PositiveIntegerField()
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, null=True,
                               blank=True, related_name="events")
    type = models.CharField(max_length=40)
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+")
    owner = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(db_default=Now())
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "event"
        verbose_name_plural = "events"
        ordering = ["stream", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="event_stream_seq_unique"),
        ]
        indexes = [models.Index(fields=["type", "occurred_at"], name="event_type_time")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise DeletionRefused("history is append-only: events are never changed")
        super().save(*args, **kwargs)

    @property
    def facts(self) -> EventFacts:
        return EventFacts(self.stream, self.seq, self.prev_hash, self.type, self.occurred_at,
                          self.actor_id, self.owner_id, self.payload)


class Checkpoint(UndeletableModel):
    """Seals the heads of every stream that changed up to ``upto_event_id``."""

    ESTAFETA_APPEND_ONLY = True

    created_at = models.DateTimeField()
    upto_event_id = models.BigIntegerField(unique=True)
    streams = models.PositiveIntegerField()
    heads_digest = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["upto_event_id"]

    def __str__(self) -> str:
        return f"checkpoint up to event {self.upto_event_id}"
