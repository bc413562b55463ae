"""``estafeta analytics rebuild [--batch N] [--monthly]`` and ``estafeta analytics verify
--period P``.

rebuild: recompute the analytics rollups (daily and monthly) from the history, a batch of
tickets per transaction (memory stays flat; progress on stdout). Run it after loading rows by
SQL (a bulk load bypasses the services that keep the rollups in step) and once after upgrading
to a version with rollups. ``--monthly``: only the monthly cells, worked out from the daily rows
in one transaction (after upgrading to a version with monthly cells; much faster, but ticket
events wait until it ends).

verify: compare the rollups with a recomputation from the history for a period (and cut);
exit status 1 and the differences when they disagree.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Rebuild the analytics rollups from the history, or verify them against it."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        rebuild = actions.add_parser("rebuild", help="recompute the rollups from the history")
        rebuild.add_argument("--batch", type=int, default=2000,
                             help="tickets per transaction (default 2000)")
        rebuild.add_argument("--monthly", action="store_true",
                             help="only the monthly cells, from the daily rows (after an "
                                  "upgrade; ticket events wait while it runs)")
        verify = actions.add_parser("verify", help="compare the rollups with the history")
        verify.add_argument("--period", required=True,
                            help="2026-11, 2026-W48, 2026-Q4, 2026 or 2026-11-01..2026-11-15")
        for name in ("seller", "team", "pipeline", "segment", "territory", "channel"):
            verify.add_argument(f"--{name}", help=f"only this {name} (as in the API)")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.analytics import fast, monthly, rollup
        from estafeta.analytics.period import CUT_FIELDS, Cut, Period

        if options["action"] == "rebuild":
            if options["batch"] < 1:
                raise CommandError("--batch must be at least 1")
            began = time.monotonic()
            if options["monthly"]:
                if not rollup.is_ready() or not monthly.is_kept():
                    raise CommandError("the rollups were not built by this version: run "
                                       "`estafeta analytics rebuild` (it fills both levels)")
                monthly.derive(progress=lambda text: self.stdout.write(
                    f"{text}, {time.monotonic() - began:.0f} s"))
                self.stdout.write("monthly cells worked out from the daily rows in "
                                  f"{time.monotonic() - began:.1f} s")
                return
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= 2 or done >= total:
                    last[0] = now
                    self.stdout.write(f"{done}/{total} tickets, {now - began:.0f} s")

            count = rollup.rebuild(batch=options["batch"], progress=progress,
                                   say=lambda text: self.stdout.write(
                                       f"monthly cells: {text}, {time.monotonic() - began:.0f} s"))
            self.stdout.write(f"rollups rebuilt from the history: {count} tickets in "
                              f"{time.monotonic() - began:.1f} s")
            return
        period = Period.parse(options["period"])
        cut = Cut.parse({k: options.get(k) for k in CUT_FIELDS if options.get(k)})
        problems = [*rollup.differences(period, cut), *fast.differences(period, cut)]
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"the rollups and the history disagree for {period.label}: "
                               f"{len(problems)} difference(s)")
        state = ("ready" if monthly.is_ready() else "ready (daily only: the monthly cells are "
                 "not; run `estafeta analytics rebuild --monthly`)") if rollup.is_ready() \
            else "not ready (the figures read the history)"
        self.stdout.write(f"the rollups and the history agree for {period.label}; "
                          f"rollups {state}")
