"""Reads about people: the facts the policy needs, who is available now."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Count, Q, QuerySet

from estafeta.domain.codes import Role
from estafeta.domain.errors import NotFound
from estafeta.domain.policy import ActorFacts

from .models import Absence, Team, User


def actor_facts(user: User) -> ActorFacts:
    """Role and headed teams of ``user``; cached on the instance for the rest of the request."""
    cached: ActorFacts | None = getattr(user, "_estafeta_facts", None)
    if cached is None:
        headed = frozenset(Team.objects.filter(head=user).values_list("id", flat=True))
        cached = ActorFacts(user.pk, Role(user.role), user.is_active, headed)
        user._estafeta_facts = cached  # type: ignore[attr-defined]  # per-instance cache
    return cached


def absent_user_ids(user_ids: Iterable[int], at: datetime) -> set[int]:
    return set(
        Absence.objects.filter(user_id__in=list(user_ids), starts_at__lte=at, ends_at__gt=at,
                               cancelled_at__isnull=True).values_list("user_id", flat=True)
    )


_PRESENT = """NOT EXISTS (SELECT 1 FROM accounts_absence a
                  WHERE a.user_id = u.id AND a.starts_at <= %s AND a.ends_at > %s
                    AND a.cancelled_at IS NULL)"""


def hold_available(user_id: int, at: datetime) -> User | None:
    """The user, read now, if active and present at ``at``; else None. On PostgreSQL the row
    is locked FOR SHARE until commit, like ``claim_users``, so the answer holds: a concurrent
    deactivation waits and then hands over the work given here."""
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    moment = connection.ops.adapt_datetimefield_value(at)
    found = list(User.objects.raw(f"SELECT u.* FROM accounts_user u WHERE u.id = %s AND "
                                  f"u.is_active AND {_PRESENT}{lock}", [user_id, moment, moment]))
    return found[0] if found else None


def user_by_username(username: str) -> User:
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"there is no user {username!r}", code="unknown_user") from None


def team_named(name: str) -> Team | None:
    """The team called ``name``, whatever the letter case.

    Compared in Python: SQLite folds only ASCII letters, and team names are Russian. There are
    few teams, so this reads them all.
    """
    key = " ".join(name.split()).casefold()
    return next((t for t in Team.objects.select_related("head")
                 if " ".join(t.name.split()).casefold() == key), None)


def team_by_name(name: str) -> Team:
    team = team_named(name)
    if team is None:
        raise NotFound(f"there is no team {name!r}", code="unknown_team")
    return team


_AVAILABLE_MEMBERS = """
SELECT u.*, {load} AS open_tasks
FROM accounts_user u
WHERE u.team_id = %s AND u.role = %s AND u.is_active
  AND {present}
ORDER BY u.id{lock}
"""
_OPEN_TASKS = ("(SELECT COUNT(*) FROM tasks_task t "
               "WHERE t.assignee_id = u.id AND t.status = 'open')")


def available_members(team_id: int, role: str, at: datetime, *,
                      with_load: bool) -> list[User]:
    """The active members with ``role`` in a team who are present at ``at``, each with
    ``open_tasks`` (counted only ``with_load``).

    On PostgreSQL the rows are locked FOR SHARE, like ``claim_users``: a concurrent
    deactivation waits for this transaction and then hands over what it assigned. Plain SQL:
    this runs on every creation and stage close, and compiling the ORM's absence subquery cost
    more than running it.
    """
    postgres = connection.vendor == "postgresql"
    sql = _AVAILABLE_MEMBERS.format(present=_PRESENT,
                                    load=_OPEN_TASKS if with_load else "0",
                                    lock=" FOR SHARE OF u" if postgres and not with_load
                                    else "")
    moment = connection.ops.adapt_datetimefield_value(at)
    people = list(User.objects.raw(sql, [team_id, role, moment, moment]))
    if postgres and with_load and people:
        # FOR SHARE cannot sit beside the count's aggregate: lock the same rows separately.
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM accounts_user WHERE id = ANY(%s) ORDER BY id "
                           "FOR SHARE", [[p.pk for p in people]])
    return people


# --- lists for the web interface --------------------------------------------------------------


def users_search(text: str = "", *, active: bool | None = None) -> QuerySet[User]:
    """People by username, name or email (any part), with their team; by username."""
    qs = User.objects.select_related("team").order_by("username")
    text = " ".join((text or "").split())[:150]
    if text:
        qs = qs.filter(Q(username__icontains=text) | Q(first_name__icontains=text)
                       | Q(last_name__icontains=text) | Q(email__icontains=text))
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


def people_for_work(team_ids: Iterable[int] | None = None) -> QuerySet[User]:
    """Active sellers and heads (who can own tickets and hold tasks), optionally of some teams."""
    qs = (User.objects.filter(is_active=True, role__in=[Role.SELLER, Role.HEAD])
          .select_related("team").order_by("team__name", "last_name", "username"))
    if team_ids is not None:
        qs = qs.filter(team_id__in=list(team_ids))
    return qs


def teams_search(text: str = "") -> QuerySet[Team]:
    """Teams with their head and the number of active members."""
    qs = (Team.objects.select_related("head")
          .annotate(members_count=Count("members", filter=Q(members__is_active=True)))
          .order_by("name"))
    text = " ".join((text or "").split())[:100]
    if text:
        qs = qs.filter(name__icontains=text)
    return qs


def team_members(team_ids: Iterable[int]) -> list[User]:
    """Active people of these teams (heads included), by name."""
    return list(User.objects.filter(team_id__in=list(team_ids), is_active=True)
                .exclude(role=Role.ADMIN).select_related("team")
                .order_by("team__name", "last_name", "first_name", "username"))


def absences_search(text: str = "", *, current_from: datetime | None = None
                    ) -> QuerySet[Absence]:
    """Absences, latest first; ``current_from``: only those not ended by then."""
    qs = Absence.objects.select_related("user").order_by("-starts_at", "-pk")
    text = " ".join((text or "").split())[:150]
    if text:
        qs = qs.filter(Q(user__username__icontains=text) | Q(user__last_name__icontains=text)
                       | Q(user__first_name__icontains=text))
    if current_from is not None:
        qs = qs.filter(ends_at__gt=current_from)
    return qs
