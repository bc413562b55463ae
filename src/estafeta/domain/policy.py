"""Who may do what to a ticket. Services ask these questions; interfaces add visibility rules.

A *supervisor* of a ticket is a director or the head of the team the ticket's owner or the
current stage's executor belongs to. Supervisors act as recorded overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codes import Role
from .errors import Forbidden


@dataclass(frozen=True, slots=True)
class ActorFacts:
    id: int
    role: Role
    active: bool = True
    headed_team_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    owner_id: int
    team_ids: frozenset[int]  # teams of the owner and of the current executor
    executor_id: int | None
    task_assignee_ids: frozenset[int] = field(default_factory=frozenset)


def is_supervisor(actor: ActorFacts, ticket: TicketFacts) -> bool:
    if actor.role is Role.DIRECTOR:
        return True
    return actor.role is Role.HEAD and bool(actor.headed_team_ids & ticket.team_ids)


def is_participant(actor: ActorFacts, ticket: TicketFacts) -> bool:
    return actor.id in {ticket.owner_id, ticket.executor_id} or actor.id in ticket.task_assignee_ids


def require_active(actor: ActorFacts) -> None:
    if not actor.active:
        raise Forbidden("a deactivated user cannot act", code="actor_inactive")


def stage_authority(actor: ActorFacts, ticket: TicketFacts) -> bool:
    """May ``actor`` work the current stage? Returns True when it is a supervisor's override."""
    require_active(actor)
    if actor.id == ticket.executor_id:
        return False
    if is_supervisor(actor, ticket):
        return True
    raise Forbidden(
        "only the current stage's executor or a head of sales can do this", code="not_executor"
    )


def work_authority(actor: ActorFacts, ticket: TicketFacts) -> bool:
    """May ``actor`` plan tasks, log contacts, issue documents? True when it is an override."""
    require_active(actor)
    if is_participant(actor, ticket):
        return False
    if is_supervisor(actor, ticket):
        return True
    raise Forbidden("only people working on this ticket or their head can do this",
                    code="not_participant")


def outcome_authority(actor: ActorFacts, ticket: TicketFacts) -> bool:
    """May ``actor`` close the ticket lost or void? Owner, executor or a supervisor."""
    require_active(actor)
    if actor.id in {ticket.owner_id, ticket.executor_id}:
        return False
    if is_supervisor(actor, ticket):
        return True
    raise Forbidden("only the owner, the executor or a head can close this ticket",
                    code="not_owner")


def supervisor_only(actor: ActorFacts, ticket: TicketFacts, what: str) -> None:
    require_active(actor)
    if not is_supervisor(actor, ticket):
        raise Forbidden(f"only a head of sales of this ticket's team can {what}",
                        code="supervisor_only")


def require_role(actor: ActorFacts | None, *roles: Role, what: str) -> None:
    """``None`` is the system (console commands, the demo): trusted for configuration."""
    if actor is None:
        return
    require_active(actor)
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"only {allowed} can {what}", code="role_required")
