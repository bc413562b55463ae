"""Reads about tasks: a person's to-do list."""

from __future__ import annotations

from django.db.models import QuerySet

from estafeta.accounts.models import User
from estafeta.domain.codes import TaskStatus

from .models import Task


def open_tasks_for_user(user: User) -> QuerySet[Task]:
    """A person's open tasks, soonest due first, with what the list shows about each ticket.

    Served by the partial index (assignee, due_at, id) WHERE status = 'open': slicing it reads
    only the rows shown, however many tickets the database holds. Three tables, one query.
    """
    return (Task.objects.filter(assignee=user, status=TaskStatus.OPEN)
            .select_related("ticket", "ticket__client", "ticket__stage")
            .only("kind", "title", "due_at", "assignee_id", "ticket__number",
                  "ticket__subject", "ticket__client__name", "ticket__stage__name")
            .order_by("due_at", "id"))
