"""Who may see which tickets: the one choke point every interface goes through.

- seller: the tickets they own and those where they hold (or held) a task;
- head of sales: those, and every ticket of the teams they head;
- director: every ticket (read-mostly: the services decide what they may change);
- operator: the tickets they created (and any they hold a task on);
- admin: configuration only; tickets are not theirs to see (the Django admin, for
  superusers, is the exception and is read-only).

Tasks are seen with their ticket (``access_task``); client cards by ``clients_visible_to``.

``access_ticket`` answers "not found" the same way for a ticket that does not exist and for one
the person may not see, so that numbers cannot be probed.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import Client
from estafeta.domain.codes import Role
from estafeta.domain.errors import NotFound
from estafeta.domain.numbering import parse_number
from estafeta.tasks.models import Task

from .models import Ticket


def tickets_visible_to(user: User, *, point: bool = False) -> QuerySet[Ticket]:
    """Every ticket ``user`` may see (an empty set for the inactive and the anonymous).

    ``point=True`` states the same rule for looking up a few tickets (by number, by client):
    "holds a task on it" becomes a correlated EXISTS probing the task index of each candidate,
    instead of reading every task the person ever held (thousands for a busy seller), which
    suits lists."""
    if not getattr(user, "is_active", False) or not getattr(user, "pk", None):
        return Ticket.objects.none()
    role = Role(user.role)
    if role is Role.DIRECTOR:
        return Ticket.objects.all()
    if role is Role.ADMIN:
        return Ticket.objects.none()
    if point:
        worked = Q(Exists(Task.objects.filter(ticket=OuterRef("pk"), assignee=user)))
    else:
        worked = Q(pk__in=Task.objects.filter(assignee=user).values("ticket_id"))
    q = Q(owner=user) | worked
    if role is Role.HEAD:
        headed = actor_facts(user).headed_team_ids
        if headed:
            q |= Q(team_id__in=headed)
    if role is Role.OPERATOR:
        q |= Q(created_by=user)
    return Ticket.objects.filter(q)


def can_see(user: User, ticket: Ticket) -> bool:
    return tickets_visible_to(user, point=True).filter(pk=ticket.pk).exists()


def access_ticket(user: User, number: str) -> Ticket:
    """The ticket ``number`` if ``user`` may see it; ``NotFound`` otherwise, worded the same
    whether it is missing or someone else's. What the person may then *do* with it, the
    services decide (and refuse with ``Forbidden``)."""
    parsed = parse_number(number or "")
    if parsed is None:
        raise NotFound(f"there is no ticket {number!r}", code="unknown_ticket")
    normal = (number or "").strip().upper()
    ticket = (tickets_visible_to(user, point=True)
              .select_related("stage", "pipeline", "owner", "client")
              .filter(number=normal).first())
    if ticket is None:
        raise NotFound(f"there is no ticket {normal}", code="unknown_ticket")
    return ticket


# Ids from a URL or a body reach the database as 64-bit integers; larger ones match nothing.
_MAX_ID = 2**63 - 1


def access_task(user: User, task_id: int) -> Task:
    """The task ``task_id`` if ``user`` may see its ticket; ``NotFound`` otherwise, the same
    for a missing task and for one on a ticket the person may not see."""
    task = None
    if 0 < task_id <= _MAX_ID:
        task = Task.objects.select_related("ticket", "assignee").filter(pk=task_id).first()
        if task is not None and not can_see(user, task.ticket):
            task = None
    if task is None:
        raise NotFound(f"there is no task {task_id}", code="unknown_task")
    return task


def clients_visible_to(user: User) -> QuerySet[Client]:
    """Clients whose card ``user`` may open: directors and admins (erasure requests) every
    client; others those they registered or that have a ticket they may see. Finding a client
    by phone or email before registering a request is a search, not this."""
    if not getattr(user, "is_active", False) or not getattr(user, "pk", None):
        return Client.objects.none()
    if Role(user.role) in (Role.DIRECTOR, Role.ADMIN):
        return Client.objects.all()
    tickets = tickets_visible_to(user).values("client_id")
    return Client.objects.filter(Q(created_by=user) | Q(pk__in=tickets))


def access_client(user: User, client_id: int) -> Client:
    """The client ``client_id`` if ``user`` may open it; ``NotFound`` alike otherwise.

    The same rule as ``clients_visible_to``, asked of one client: read it, then look for a
    visible ticket of that client only (the client index), rather than filtering the client by
    every ticket the person sees."""
    client = None
    if 0 < client_id <= _MAX_ID and getattr(user, "is_active", False) and getattr(user, "pk", None):
        client = Client.objects.filter(pk=client_id).first()
        if (client is not None and Role(user.role) not in (Role.DIRECTOR, Role.ADMIN)
                and client.created_by_id != user.pk
                and not tickets_visible_to(user, point=True).filter(client_id=client_id).exists()):
            client = None
    if client is None:
        raise NotFound(f"there is no client {client_id}", code="unknown_client")
    return client
