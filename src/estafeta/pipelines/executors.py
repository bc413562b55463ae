"""Applying a stage's executor rule: who gets the work now (see ``domain.executors``)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import available_members, hold_available, team_named
from estafeta.core.db import sequence_next
from estafeta.domain.codes import Role
from estafeta.domain.errors import NoExecutorAvailable
from estafeta.domain.executors import Candidate, choose, in_turn
from estafeta.domain.pipeline import ExecutorSpec

from .models import Rotation


def executor_pick(*, rule: ExecutorSpec, owner: User | None, at: datetime,
                  team_id: int | None = None) -> User:
    """The person who takes a stage under ``rule``; locked so they stay active until commit.

    Absent or deactivated people are skipped; when nobody is left, the head of the relevant
    team takes the work; when even the head is away, ``NoExecutorAvailable`` refuses the action.
    """
    return _pick(rule, owner, at, team_id)


def _pick(rule: ExecutorSpec, owner: User | None, at: datetime, team_id: int | None) -> User:
    """Every candidate is checked in the database and held (FOR SHARE on PostgreSQL; SQLite's
    transaction holds the only write lock) before it is returned."""
    fallback_team_id: int | None = owner.team_id if owner is not None else None
    if rule.rule == "keep_owner":
        held = hold_available(owner.pk, at) if owner is not None else None
        if held is not None:
            return held
    elif rule.rule == "user":
        named = User.objects.filter(username=rule.user).values_list("pk", "team_id").first()
        if named is not None:
            held = hold_available(named[0], at)
            if held is not None:
                return held
            fallback_team_id = named[1]
    else:
        if team_id is None and rule.team:  # a version loaded before teams were resolved
            named_team = team_named(rule.team)
            team_id = named_team.pk if named_team else None
        team_id = team_id if rule.team else fallback_team_id
        if team_id is not None:
            fallback_team_id = team_id
            picked = _from_team(team_id, Role(rule.role or Role.SELLER),
                                rule.strategy or "round_robin", at)
            if picked is not None:
                return picked
    team = Team.objects.filter(pk=fallback_team_id).first() if fallback_team_id else None
    head = hold_available(team.head_id, at) if team is not None else None
    if head is not None:
        return head
    raise NoExecutorAvailable(
        "nobody can take this stage now: everyone it could go to is absent or deactivated",
        team=team.name if team else None,
    )


def _from_team(team_id: int, role: Role, strategy: str, at: datetime) -> User | None:
    """Choose among the team's present members with the rotation row locked, so that
    concurrent choices queue and round robin stays exact."""
    key = f"team:{team_id}:{role}"
    if strategy == "round_robin" and connection.vendor == "postgresql":
        # Turns from a sequence: concurrent creations in one team never wait on each other
        # (a locked rotation row would hold them in line until each one commits).
        people = {u.pk: u for u in available_members(team_id, role, at, with_load=False)}
        if not people:
            return None
        chosen = in_turn(list(people), sequence_next(f"estafeta_turn_{team_id}_{role}"))
        return people[chosen] if chosen is not None else None
    rotation_id, last_user_id = _lock_rotation(key)
    people = {u.pk: u for u in available_members(team_id, role, at,
                                                 with_load=strategy == "least_loaded")}
    chosen = choose([Candidate(pk, open_tasks=getattr(u, "open_tasks", 0))
                     for pk, u in people.items()],
                    strategy, last_user_id)
    if chosen is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pipelines_rotation SET last_user_id = %s WHERE id = %s",
                       [chosen, rotation_id])
    return people[chosen]


def _lock_rotation(key: str) -> tuple[int, int | None]:
    """(row id, last chosen user) of a rotation, locked until commit (plain SQL: this runs on
    every creation and stage close)."""
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    sql = f"SELECT id, last_user_id FROM pipelines_rotation WHERE key = %s{lock}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
        if row is None:
            Rotation.objects.bulk_create([Rotation(key=key)], ignore_conflicts=True)
            cursor.execute(sql, [key])
            row = cursor.fetchone()
    return int(row[0]), row[1]
