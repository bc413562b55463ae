"""The one writer of K11 energy ratings. A head of sales rates the sellers of the teams they
head, a director any seller; every rating is a new row and one ``energy.rated`` event."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.core import clock
from estafeta.domain.codes import EventType, Role
from estafeta.domain.errors import BadInput, Forbidden
from estafeta.domain.policy import require_active
from estafeta.history.services import event_record

from .models import MAX_SCORE, MIN_SCORE, EnergyRating

MAX_COMMENT = 2000


def week_of(day: date) -> date:
    """The Monday of the ISO week of ``day``."""
    return day - timedelta(days=day.weekday())


def current_week() -> date:
    return week_of(timezone.localdate(clock.now()))


def may_rate(actor: User, seller: User) -> bool:
    """A director rates any seller; a head the sellers of the teams they head."""
    facts = actor_facts(actor)
    if not facts.active or seller.role != Role.SELLER:
        return False
    if facts.role == Role.DIRECTOR:
        return True
    return facts.role == Role.HEAD and seller.team_id in facts.headed_team_ids


def energy_rate(actor: User, seller: User, week: date, score: int,
                comment: str = "") -> EnergyRating:
    """Rate ``seller``'s energy for the ISO week of ``week`` (any day of it; stored as its
    Monday). A second rating of the same seller and week is a new row; the latest counts."""
    facts = actor_facts(actor)
    require_active(facts)
    if facts.role not in (Role.HEAD, Role.DIRECTOR):
        raise Forbidden("only heads of sales and directors rate energy", code="role_required")
    if seller.role != Role.SELLER or not seller.is_active:
        raise BadInput("only active sellers are rated", code="not_a_seller")
    if not may_rate(actor, seller):
        raise Forbidden("a head rates the sellers of their own teams", code="not_your_seller")
    if isinstance(score, bool) or not isinstance(score, int) or not (
            MIN_SCORE <= score <= MAX_SCORE):
        raise BadInput(f"the score is a whole number from {MIN_SCORE} to {MAX_SCORE}",
                       code="bad_score", low=MIN_SCORE, high=MAX_SCORE)
    if not isinstance(week, date):
        raise BadInput("give the week as a date", code="bad_date")
    monday = week_of(week.date() if isinstance(week, datetime) else week)
    if monday > current_week():
        raise BadInput("a week that has not started cannot be rated", code="future_week")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise BadInput(f"the comment is longer than {MAX_COMMENT} characters", code="too_long",
                       limit=MAX_COMMENT)
    with transaction.atomic():
        rating = EnergyRating.objects.create(seller=seller, rater=actor, week=monday,
                                             score=score, comment=comment,
                                             created_at=clock.now())
        event_record(stream=rating.stream, type=EventType.ENERGY_RATED, actor=actor,
                     new_stream=True,
                     payload={"seller": seller.pk, "team": seller.team_id,
                              "week": monday.isoformat(), "score": score, "comment": comment})
    return rating
