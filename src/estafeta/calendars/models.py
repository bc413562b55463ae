"""The admins' calendar days: extra days off and extra or moved working days on top of the weekly
hours and the public holidays. Rows are kept; ``kind="normal"`` returns a day to the usual rule.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel


class DayKind(models.TextChoices):
    OFF = "off", _("day off")
    WORKING = "working", _("working day")
    NORMAL = "normal", _("as usual")


class CalendarDay(UndeletableModel):
    day = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=DayKind.choices)
    starts = models.TimeField(_("starts"), null=True, blank=True)
    ends = models.TimeField(_("ends"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated"))
    updated_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.kind}"

    @property
    def stream(self) -> str:
        return f"calendar_day:{self.pk}"
