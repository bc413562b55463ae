"""Reads about intake: possible duplicates a person may decide, merged numbers."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from estafeta.accounts.models import Team, User
from estafeta.domain.codes import Role
from estafeta.tickets.models import Ticket

from .models import DuplicateFlag, FlagStatus


def headed_team_ids(user: User) -> list[int]:
    return list(Team.objects.filter(head=user).values_list("pk", flat=True))


def flags_for(user: User, *, status: str = FlagStatus.OPEN) -> QuerySet[DuplicateFlag]:
    """Flags a head may decide (the new ticket in a team they head: dismissing needs that,
    merging needs both) or, for a director, all; nobody else sees any. A head of only the other
    ticket's team could do nothing with the flag and would read a ticket they may not see.
    Oldest first: the longest-waiting decision comes first."""
    qs = (DuplicateFlag.objects.filter(status=status)
          .select_related("ticket__client", "ticket__owner", "of__client", "of__owner",
                          "record"))
    if user.role == Role.DIRECTOR:
        return qs.order_by("created_at", "pk")
    if user.role != Role.HEAD:
        return qs.none()
    teams = headed_team_ids(user)
    return qs.filter(ticket__team_id__in=teams).order_by("created_at", "pk")


def flag_for(user: User, pk: int) -> DuplicateFlag | None:
    return flags_for(user).filter(pk=pk).first() if 0 < pk < 2**63 else None


def survivor_of(ticket: Ticket) -> Ticket:
    """The ticket a merged ticket became (itself when never merged); merges chain."""
    seen = {ticket.pk}
    current = ticket
    while current.merged_into_id is not None and current.merged_into_id not in seen:
        seen.add(current.merged_into_id)
        current = Ticket.objects.select_related("client").get(pk=current.merged_into_id)
    return current


def ticket_resolve(number: str) -> Ticket:
    """The ticket with this number, or, when it was merged, the ticket it became."""
    from estafeta.tickets.selectors import ticket_by_number

    return survivor_of(ticket_by_number(number))


def open_flags_of(ticket: Ticket) -> list[DuplicateFlag]:
    return list(DuplicateFlag.objects.filter(Q(ticket=ticket) | Q(of=ticket),
                                             status=FlagStatus.OPEN)
                .select_related("ticket", "of").order_by("pk"))
