"""``estafeta audit verify`` walks every hash chain; ``estafeta audit checkpoint`` seals heads."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Verify the history's hash chains and checkpoints, or seal a new checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        actions.add_parser("verify", help="walk every chain and checkpoint; exit 1 at the first "
                                          "broken link")
        actions.add_parser("checkpoint", help="seal the heads of every stream changed since the "
                                              "last checkpoint and print its hash")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.history.services import audit_verify, checkpoint_create

        if options["action"] == "checkpoint":
            cp = checkpoint_create()
            if cp is None:
                self.stdout.write("nothing new to seal")
            else:
                self.stdout.write(f"checkpoint {cp.pk}: up to event {cp.upto_event_id}, "
                                  f"{cp.streams} stream(s), hash {cp.hash}")
            return

        def progress(n: int) -> None:
            if n and n % 500_000 == 0:
                self.stderr.write(f"  {n:,} events checked")

        report = audit_verify(progress=progress)
        summary = (f"{report.events:,} events in {report.streams:,} streams, "
                   f"{report.checkpoints} checkpoint(s), {report.seconds:.1f}s")
        if not report.ok:
            raise CommandError(f"broken link: {report.broken} ({summary})")
        self.stdout.write(f"ok: {summary}; {report.unsealed_events:,} event(s) after the last "
                          "checkpoint")
