"""Escalations: late work made known to the people above, each level once.

``Escalation`` rows are never deleted; acknowledging one fills in who and when. The unique
(subject, level) constraint is the monitor's compare-and-set: whoever inserts the row decided
the escalation, and a second worker's insert fails and is skipped.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.escalation import Reason


class Escalation(UndeletableModel):
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="escalations", verbose_name=_("ticket"))
    task = models.ForeignKey("tasks.Task", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="escalations")
    visit = models.ForeignKey("tickets.StageVisit", on_delete=models.PROTECT, null=True,
                              blank=True, related_name="escalations")
    # "task:<id>", "visit:<id>" or "ticket:<id>:..." : what is late.
    subject = models.CharField(max_length=80)
    reason = models.CharField(_("reason"), max_length=24,
                              choices=[(r.value, r.value) for r in Reason])
    level = models.CharField(_("level"), max_length=30)
    # The person the level names; empty when it names a group (admins).
    recipient = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="escalations",
                                  verbose_name=_("recipient"))
    due_at = models.DateTimeField(_("deadline"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"))
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    acknowledged_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                        blank=True, related_name="+")

    class Meta:
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        ordering = ["-decided_at"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "level"], name="escalation_once"),
        ]
        indexes = [
            models.Index(fields=["task", "level"], name="escalation_task_level",
                         condition=Q(task__isnull=False)),
            models.Index(fields=["visit", "level"], name="escalation_visit_level",
                         condition=Q(visit__isnull=False)),
            models.Index(fields=["ticket", "decided_at"], name="escalation_ticket"),
            models.Index(fields=["decided_at"], name="escalation_unacknowledged",
                         condition=Q(acknowledged_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.level}"


class MonitorCursor(models.Model):
    """How far a monitor check has read an append-only stream (the event log)."""

    name = models.CharField(max_length=40, unique=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"
