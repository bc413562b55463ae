"""``estafeta check``: Django's system checks, then every invariant of Estafeta's data."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = ("Verify the invariants over the whole database (every open ticket has a next task,"
            " closed tickets are clean, history starts at creation, deletion guards installed)"
            " and list every violation; exits 1 when there is any.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=0,
                            help="stop listing after this many violations (0: list all)")
        parser.add_argument("--quiet", action="store_true", help="print only violations")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.tickets.invariants import violations

        started = time.monotonic()
        self.check(display_num_errors=False)  # Django's system checks: raise on errors
        found = 0
        limit = options["limit"]
        for violation in violations(progress=None if options["quiet"] else self._progress):
            found += 1
            if not limit or found <= limit:
                self.stdout.write(str(violation))
        seconds = time.monotonic() - started
        if found:
            raise CommandError(f"{found} violation(s) found in {seconds:.1f}s")
        if not options["quiet"]:
            self.stdout.write(f"ok: every invariant holds ({seconds:.1f}s)")

    def _progress(self, name: str) -> None:
        self.stderr.write(f"checking {name}")
