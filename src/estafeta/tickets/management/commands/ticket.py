"""``estafeta ticket show NUMBER``: the ticket, its open tasks and its whole timeline."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Show a ticket with its tasks and the timeline of every event."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        show = actions.add_parser("show", help="print one ticket")
        show.add_argument("number")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.tickets.selectors import ticket_by_number, ticket_timeline

        t = ticket_by_number(options["number"])
        w = self.stdout.write
        w(f"{t.number}  {t.subject}")
        w(f"  status {t.status}, stage {t.stage.name} ({t.stage.code}), pipeline {t.pipeline.code}")
        w(f"  client {t.client.name}; owner {t.owner.username}; channel {t.channel}; "
          f"amount {t.amount if t.amount is not None else '-'} {t.currency}")
        for task in t.tasks.filter(status="open").select_related("assignee").order_by("due_at"):
            due = timezone.localtime(task.due_at)
            w(f"  task: {task.title} — {task.assignee.username}, due {due:%Y-%m-%d %H:%M}")
        w("  timeline:")
        for entry in ticket_timeline(t):
            at = timezone.localtime(entry.occurred_at)
            w(f"    {entry.seq:>3} {at:%Y-%m-%d %H:%M} {entry.type:<26} {entry.actor}")
