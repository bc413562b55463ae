"""``estafeta idempotency_prune [--hours N]``: forget old Idempotency-Key answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from estafeta.api.idempotency import KEEP, idempotency_prune


class Command(BaseCommand):
    help = "Remove Idempotency-Key records older than --hours (default 24)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, default=int(KEEP.total_seconds() // 3600))

    def handle(self, *args: Any, **options: Any) -> None:
        hours = max(int(options["hours"]), 1)
        removed = idempotency_prune(older_than=timedelta(hours=hours))
        self.stdout.write(f"{removed} idempotency keys removed")
