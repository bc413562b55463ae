"""Rollups of the analytics figures (docs/analytics-scale.md).

``Cell``: the sums of one figure's facts for one local day (company time zone) and one
combination of the cut dimensions and the figure's keys. ``TicketRollup``: what each ticket
contributes to the cells (its facts as stored at the last refresh), so a refresh can take the
old contribution out and put the new one in. Both are derived data, rebuilt from the history
with ``estafeta analytics rebuild``; nothing else reads them as a source of truth.
"""

from __future__ import annotations

from django.db import models

VALUES = 8


class Cell(models.Model):
    figure = models.CharField(max_length=16)
    day = models.DateField()
    person = models.BigIntegerField(default=0)  # the cut's seller (0: nobody)
    pipeline = models.CharField(max_length=64, default="")
    channel = models.CharField(max_length=16, default="")
    segment = models.CharField(max_length=64, default="")
    territory = models.CharField(max_length=64, default="")
    keys = models.CharField(max_length=600)  # the figure's keys, JSON
    v0 = models.BigIntegerField(default=0)
    v1 = models.BigIntegerField(default=0)
    v2 = models.BigIntegerField(default=0)
    v3 = models.BigIntegerField(default=0)
    v4 = models.BigIntegerField(default=0)
    v5 = models.BigIntegerField(default=0)
    v6 = models.BigIntegerField(default=0)
    v7 = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["figure", "day", "person", "pipeline", "channel", "segment", "territory",
                    "keys"], name="analytics_cell_unique")]

    def __str__(self) -> str:
        return f"{self.figure} {self.day} {self.keys}"


class TicketRollup(models.Model):
    ticket_id = models.BigIntegerField(primary_key=True)
    cells = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"rollup of ticket {self.ticket_id}"


class RollupState(models.Model):
    """One row: ``ready`` once the cells hold every ticket (a rebuild finished, or there was
    nothing to roll up); the figures read the cells only then."""

    ready = models.BooleanField(default=False)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups {'ready' if self.ready else 'not ready'}"
