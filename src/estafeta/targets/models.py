"""Revenue potentials and plans (K6): an amount in one currency for a client, territory,
segment, seller or team over a period of days. Rows are never deleted nor changed: setting a
target for the same object and period again adds a row that supersedes the earlier one (the
latest counts; the earlier ones stay as the history)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel


class TargetKind(models.TextChoices):
    CLIENT = "client", _("client")
    TERRITORY = "territory", _("territory")
    SEGMENT = "segment", _("segment")
    SELLER = "seller", _("seller")
    TEAM = "team", _("team")


class Target(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True  # a correction is a new row; UPDATE is refused too

    kind = models.CharField(_("kind"), max_length=16, choices=TargetKind.choices)
    ref = models.CharField(_("object"), max_length=64,
                           help_text=_("The id of a client, seller or team; the code of a "
                                       "territory or segment"))
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to"), help_text=_("Included"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("set by"))
    created_at = models.DateTimeField(_("set at"))

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["kind", "ref", "period_start", "period_end", "-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "ref", "period_start", "period_end",
                                        "created_at"], name="target_object_period")]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")),
                                   name="target_period_ordered"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="target_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.ref} {self.period_start}..{self.period_end}: " \
               f"{self.amount} {self.currency}"

    @property
    def stream(self) -> str:
        return f"target:{self.pk}"
