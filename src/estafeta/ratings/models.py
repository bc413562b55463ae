"""K11 energy level: a head of sales rates each seller of their team once a week, 1 to 5 with a
comment. Rows are never deleted nor changed: rating the same seller and week again adds a row,
and the latest one counts (the earlier ones stay as the history)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel

MIN_SCORE, MAX_SCORE = 1, 5


class EnergyRating(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True  # a correction is a new row; UPDATE is refused too

    seller = models.ForeignKey("accounts.User", on_delete=models.PROTECT,
                               related_name="energy_ratings", verbose_name=_("seller"))
    rater = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("rated by"))
    week = models.DateField(_("week"), help_text=_("The Monday of the ISO week"))
    score = models.PositiveSmallIntegerField(
        _("score"), validators=[MinValueValidator(MIN_SCORE), MaxValueValidator(MAX_SCORE)])
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("energy rating")
        verbose_name_plural = _("energy ratings")
        ordering = ["seller", "-week", "-created_at", "-pk"]
        indexes = [models.Index(fields=["seller", "week", "created_at"],
                                name="energy_seller_week")]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=MIN_SCORE, score__lte=MAX_SCORE),
                                   name="energy_score_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.seller_id} {self.week}: {self.score}"

    @property
    def stream(self) -> str:
        return f"energy_rating:{self.pk}"
