"""Tasks: dated pieces of work with one assignee. Every open ticket has at least one open task
with an active assignee (promise 2); the partial index serves each person's to-do list.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import TaskKind, TaskStatus


class Task(UndeletableModel):
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="tasks")
    visit = models.ForeignKey("tickets.StageVisit", on_delete=models.PROTECT, null=True,
                              blank=True, related_name="tasks")
    kind = models.CharField(_("kind"), max_length=10,
                            choices=[(k.value, k.value) for k in TaskKind])
    title = models.CharField(_("title"), max_length=200)
    assignee = models.ForeignKey("accounts.User", on_delete=models.PROTECT,
                                 related_name="tasks", verbose_name=_("assignee"))
    due_at = models.DateTimeField(_("due"))
    status = models.CharField(_("status"), max_length=10, default=TaskStatus.OPEN,
                              choices=[(s.value, s.value) for s in TaskStatus])
    result = models.TextField(_("result"), blank=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"))
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at"]
        indexes = [
            # "My tasks": one index range scan whatever the size of the database.
            models.Index(fields=["assignee", "due_at", "id"], name="task_open_by_assignee",
                         condition=Q(status="open")),
            # The monitor polls this for overdue work.
            models.Index(fields=["due_at"], name="task_open_due", condition=Q(status="open")),
            models.Index(fields=["ticket", "status"], name="task_ticket_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", done_at__isnull=True)
                | (~Q(status="open") & Q(done_at__isnull=False)),
                name="task_done_at_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == TaskStatus.OPEN
