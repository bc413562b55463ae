"""Reads of K11 energy ratings: the latest rating per seller and week (earlier ones are the
history), a seller's trend, the sellers a person rates, whether sellers see their own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.domain.codes import Role

from .models import EnergyRating
from .services import current_week, week_of


@dataclass(frozen=True)
class WeekScore:
    week: date
    score: int | None  # None: not rated that week
    comment: str = ""
    rater_id: int | None = None
    ratings: int = 0  # how many ratings were given that week (the latest counts)


def sellers_see_own_energy() -> bool:
    """The company setting ``ESTAFETA_SELLERS_SEE_OWN_ENERGY`` (default: no)."""
    return bool(getattr(settings, "ESTAFETA_SELLERS_SEE_OWN_ENERGY", False))


def weeks_back(count: int, until: date | None = None) -> list[date]:
    """The Mondays of the ``count`` weeks ending with the week of ``until`` (default: now)."""
    last = week_of(until) if until else current_week()
    return [last - timedelta(weeks=i) for i in range(count - 1, -1, -1)]


def energy_trends(seller_ids: Iterable[int], weeks: list[date]) -> dict[int, list[WeekScore]]:
    """For each seller, one ``WeekScore`` per week of ``weeks`` (latest rating counts), in one
    query whatever the number of sellers."""
    ids = list(seller_ids)
    latest: dict[tuple[int, date], WeekScore] = {}
    if ids and weeks:
        rows = (EnergyRating.objects
                .filter(seller_id__in=ids, week__gte=min(weeks), week__lte=max(weeks))
                .order_by("created_at", "pk")
                .values_list("seller_id", "week", "score", "comment", "rater_id"))
        for seller_id, week, score, comment, rater_id in rows:
            before = latest.get((seller_id, week))
            latest[(seller_id, week)] = WeekScore(week, score, comment, rater_id,
                                                  (before.ratings if before else 0) + 1)
    return {sid: [latest.get((sid, w), WeekScore(w, None)) for w in weeks] for sid in ids}


def energy_trend(seller: User, weeks: int = 8, until: date | None = None) -> list[WeekScore]:
    """``seller``'s energy over the last ``weeks`` weeks, oldest first."""
    return energy_trends([seller.pk], weeks_back(weeks, until))[seller.pk]


def energy_history(seller: User, week: date) -> QuerySet[EnergyRating]:
    """Every rating of ``seller`` for the week of ``week``, latest first."""
    return (EnergyRating.objects.filter(seller=seller, week=week_of(week))
            .select_related("rater").order_by("-created_at", "-pk"))


def sellers_rated_by(actor: User, text: str = "") -> QuerySet[User]:
    """Active sellers ``actor`` rates (a head: of the teams they head; a director: all),
    searched by name, username or email."""
    facts = actor_facts(actor)
    qs = (User.objects.filter(is_active=True, role=Role.SELLER).select_related("team")
          .order_by("team__name", "last_name", "first_name", "username"))
    if facts.role == Role.HEAD:
        qs = qs.filter(team_id__in=list(facts.headed_team_ids))
    elif facts.role != Role.DIRECTOR or not facts.active:
        qs = qs.none()
    text = " ".join((text or "").split())[:100]
    for word in text.split():
        qs = qs.filter(Q(username__icontains=word) | Q(first_name__icontains=word)
                       | Q(last_name__icontains=word) | Q(email__icontains=word))
    return qs
