"""What must hold at every committed moment, checked over the whole database by SQL.

Each check streams the numbers of the tickets that break it, so ``estafeta check`` lists every
violation with flat memory, whatever the size of the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection

from estafeta.core.db import missing_guards
from estafeta.domain.numbering import parse_number


@dataclass(frozen=True)
class Check:
    code: str
    description: str
    sql: str


CHECKS = [
    Check("next_task", "open ticket without an open task with an active assignee and a due time",
          """SELECT t.number FROM tickets_ticket t WHERE t.status = 'open' AND NOT EXISTS (
                 SELECT 1 FROM tasks_task k JOIN accounts_user u ON u.id = k.assignee_id
                 WHERE k.ticket_id = t.id AND k.status = 'open' AND u.is_active
                   AND k.due_at IS NOT NULL)
             ORDER BY t.id"""),
    Check("open_stage", "open ticket not in exactly its current stage",
          """SELECT t.number FROM tickets_ticket t
             LEFT JOIN tickets_stagevisit v ON v.ticket_id = t.id AND v.closed_at IS NULL
             WHERE t.status = 'open' AND (v.id IS NULL OR v.stage_id <> t.stage_id)
             ORDER BY t.id"""),
    Check("stage_executor", "current stage without an active executor",
          """SELECT t.number FROM tickets_stagevisit v JOIN tickets_ticket t ON t.id = v.ticket_id
             LEFT JOIN accounts_user u ON u.id = v.executor_id
             WHERE v.closed_at IS NULL AND (u.id IS NULL OR NOT u.is_active)
             ORDER BY t.id"""),
    Check("owner_active", "open ticket owned by a deactivated user",
          """SELECT t.number FROM tickets_ticket t JOIN accounts_user u ON u.id = t.owner_id
             WHERE t.status = 'open' AND NOT u.is_active ORDER BY t.id"""),
    Check("closed_clean", "closed ticket with an open stage, an open task or no closing time",
          """SELECT t.number FROM tickets_ticket t WHERE t.status <> 'open' AND (
                 t.closed_at IS NULL
                 OR EXISTS (SELECT 1 FROM tickets_stagevisit v
                            WHERE v.ticket_id = t.id AND v.closed_at IS NULL)
                 OR EXISTS (SELECT 1 FROM tasks_task k
                            WHERE k.ticket_id = t.id AND k.status = 'open'))
             ORDER BY t.id"""),
    Check("outcome_reason", "lost ticket without a reason or void ticket without a note",
          """SELECT t.number FROM tickets_ticket t
             WHERE (t.status = 'lost' AND t.lost_reason_id IS NULL)
                OR (t.status = 'void' AND t.close_note = '')
             ORDER BY t.id"""),
    Check("open_closed_at", "open ticket with a closing time",
          """SELECT t.number FROM tickets_ticket t
             WHERE t.status = 'open' AND t.closed_at IS NOT NULL ORDER BY t.id"""),
    Check("history", "ticket whose history does not start with its creation",
          """SELECT t.number FROM tickets_ticket t
             LEFT JOIN history_event e ON e.stream = 'ticket:' || t.id AND e.seq = 1
             WHERE e.id IS NULL OR e.type <> 'ticket.created' ORDER BY t.id"""),
]


@dataclass(frozen=True)
class Violation:
    code: str
    description: str
    subject: str

    def __str__(self) -> str:
        return f"{self.code}: {self.subject}: {self.description}"


def violations(progress: Callable[[str], None] | None = None) -> Iterator[Violation]:
    """Every violation of every invariant, check by check."""
    for name in missing_guards():
        yield Violation("guard", "a trigger refusing deletion is missing", name)
    for check in CHECKS:
        if progress:
            progress(check.code)
        with connection.cursor() as cursor:
            cursor.execute(check.sql)
            while rows := cursor.fetchmany(2000):
                for (number,) in rows:
                    yield Violation(check.code, check.description, number)
    if progress:
        progress("numbers")
    # Every ticket's number: a server-side cursor on PostgreSQL, so that they are not all held
    # in the client at once (SQLite's cursor steps through the rows anyway).
    with connection.chunked_cursor() as cursor:
        cursor.execute("SELECT number FROM tickets_ticket ORDER BY id")
        while rows := cursor.fetchmany(5000):
            for (number,) in rows:
                if parse_number(number) is None:
                    yield Violation("number", "ticket number is not well formed", number)
