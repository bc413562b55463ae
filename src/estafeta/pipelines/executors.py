"""Applying a stage's executor rule: who gets the work now (see ``domain.executors``)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import absent_user_ids, is_available, team_named
from estafeta.accounts.services import claim_users
from estafeta.domain.codes import Role, TaskStatus
from estafeta.domain.errors import NoExecutorAvailable
from estafeta.domain.executors import Candidate, choose
from estafeta.domain.pipeline import ExecutorSpec

from .models import Rotation


def executor_pick(*, rule: ExecutorSpec, owner: User | None, at: datetime) -> User:
    """The person who takes a stage under ``rule``; locked so they stay active until commit.

    Absent or deactivated people are skipped; when nobody is left, the head of the relevant
    team takes the work; when even the head is away, ``NoExecutorAvailable`` refuses the action.
    """
    user = _pick(rule, owner, at)
    claim_users([user])
    return user


def _pick(rule: ExecutorSpec, owner: User | None, at: datetime) -> User:
    team: Team | None = owner.team if owner is not None else None
    if rule.rule == "keep_owner":
        if owner is not None and is_available(owner, at):
            return owner
    elif rule.rule == "user":
        named = User.objects.select_related("team").filter(username=rule.user).first()
        if named is not None:
            if is_available(named, at):
                return named
            team = named.team
    else:
        if rule.team:
            team = team_named(rule.team)
        if team is not None:
            picked = _from_team(team, Role(rule.role or Role.SELLER),
                                rule.strategy or "round_robin", at)
            if picked is not None:
                return picked
    if team is not None and is_available(team.head, at):
        return team.head
    raise NoExecutorAvailable(
        "nobody can take this stage now: everyone it could go to is absent or deactivated",
        team=team.name if team else None,
    )


def _from_team(team: Team, role: Role, strategy: str, at: datetime) -> User | None:
    key = f"team:{team.pk}:{role}"
    Rotation.objects.bulk_create([Rotation(key=key)], ignore_conflicts=True)
    rotation = Rotation.objects.select_for_update().get(key=key)  # serialises fair choices
    members = User.objects.filter(team=team, role=role, is_active=True)
    if strategy == "least_loaded":
        members = members.annotate(load=Count("tasks", filter=Q(tasks__status=TaskStatus.OPEN)))
        rows = list(members.values_list("pk", "load"))
    else:
        rows = [(pk, 0) for pk in members.values_list("pk", flat=True)]
    absent = absent_user_ids([pk for pk, _ in rows], at)
    chosen = choose([Candidate(pk, True, pk in absent, load) for pk, load in rows], strategy,
                    rotation.last_user_id)
    if chosen is None:
        return None
    Rotation.objects.filter(pk=rotation.pk).update(last_user_id=chosen)
    return User.objects.select_related("team").get(pk=chosen)
