"""Reads about people: the facts the policy needs, who is available now."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection

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
