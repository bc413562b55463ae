"""Reads about tickets, and the locked read every ticket service starts with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from estafeta.domain.codes import TaskStatus
from estafeta.domain.errors import Conflict, NotFound
from estafeta.domain.numbering import parse_number
from estafeta.domain.policy import TicketFacts
from estafeta.history.models import Event

from .models import ChecklistEntry, StageVisit, Ticket


def ticket_for_update(ticket: Ticket | int) -> Ticket:
    """Lock the ticket row: every change to a ticket is serialised here, so a stale request
    (two people closing the same stage) is detected after the lock, not lost."""
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    try:
        # Joining the version is safe under the lock: a ticket's version never changes. (A
        # join on a column that does change, like the stage, would be re-checked against the
        # joined row read before waiting, and a concurrent stage change would make the ticket
        # vanish from the result: the stage comes from the cache instead.)
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("version")
                  .order_by().get(pk=pk))
    except Ticket.DoesNotExist:
        raise NotFound("there is no such ticket", code="unknown_ticket") from None
    # The stage comes from the version's cached stage list (versions never change), which
    # saves a join on every change to a ticket; the rest loads when a service needs it.
    ticket.stage = next(s for s in ticket.version.stage_list if s.pk == ticket.stage_id)
    return ticket


def ticket_by_number(number: str) -> Ticket:
    """The ticket with this number (whitespace and case forgiven); ``NotFound`` otherwise."""
    if parse_number(number) is None:
        raise NotFound(f"{number!r} is not a ticket number", code="unknown_ticket")
    try:
        return Ticket.objects.select_related("stage", "pipeline", "owner", "client").get(
            number=number.strip().upper())
    except Ticket.DoesNotExist:
        raise NotFound(f"there is no ticket {number.strip()}", code="unknown_ticket") from None


def open_visit(ticket: Ticket) -> StageVisit:
    """The ticket's current stage visit, with its executor and the version's cached stage."""
    visit = (StageVisit.objects.select_related("executor")
             .filter(ticket=ticket, closed_at__isnull=True).first())
    if visit is None:
        raise Conflict(f"{ticket.number} is not in an open stage", code="ticket_closed")
    visit.stage = next(s for s in ticket.version.stage_list if s.pk == visit.stage_id)
    return visit


def require_stage(ticket: Ticket, visit: StageVisit, stage_code: str) -> None:
    """The caller names the stage it saw; if the ticket moved on meanwhile, refuse (409)."""
    if visit.stage.code != stage_code:
        raise Conflict(
            f"{ticket.number} is now in stage {visit.stage.code!r}, not {stage_code!r};"
            " reload and try again", code="stale_stage", current=visit.stage.code)


def ticket_facts(ticket: Ticket, visit: StageVisit | None, *,
                 assignees: bool = True) -> TicketFacts:
    """What the policy needs; ``assignees=False`` when only executors and heads matter (the
    open tasks' assignees are one more query)."""
    executor = visit.executor if visit is not None else None
    teams = {ticket.team_id, executor.team_id if executor else None} - {None}
    holders = frozenset(ticket.tasks.filter(status=TaskStatus.OPEN)
                        .values_list("assignee_id", flat=True)) if assignees else frozenset()
    return TicketFacts(ticket.owner_id, frozenset(t for t in teams if t is not None),
                       executor.pk if executor else None, holders)


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    type: str
    occurred_at: Any
    actor: str
    payload: dict[str, Any]


def ticket_timeline(ticket: Ticket) -> Iterator[TimelineEntry]:
    """Every event of the ticket in order, with the actor's name; read from the history only."""
    events = (Event.objects.filter(stream=ticket.stream).select_related("actor")
              .order_by("seq").only("seq", "type", "occurred_at", "payload", "actor__username",
                                    "actor__first_name", "actor__last_name"))
    for e in events.iterator():
        actor = (e.actor.get_full_name() or e.actor.username) if e.actor else "system"
        yield TimelineEntry(e.seq, e.type, e.occurred_at, actor, e.payload)


def visits_with_entries(ticket: Ticket) -> list[StageVisit]:
    return list(ticket.visits.select_related("stage", "executor").prefetch_related(
        Prefetch("entries", queryset=ChecklistEntry.objects.select_related("item"))))
