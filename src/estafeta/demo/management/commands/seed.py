"""``estafeta seed --tickets N``: synthetic tickets for benchmarks, through the services."""

from __future__ import annotations

import sys
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise ArgumentTypeError(f"{value!r} must be at least 1")
    return number


class Command(EstafetaCommand):
    help = ("Add N synthetic tickets spread over the past year, made through the same services "
            "people use (progress bar on stderr; memory stays flat). The synthetic teams, "
            "sellers (about one per thousand tickets), pipeline and clients are created once "
            "and reused.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=_at_least_one, required=True,
                            help="how many tickets to add")
        parser.add_argument("--jobs", type=_at_least_one, default=None,
                            help="worker processes (default: 1 on SQLite, which has one "
                                 "writer at a time; up to 4 on PostgreSQL)")
        parser.add_argument("--seed", type=int, default=1,
                            help="random seed (the same seed tells the same stories)")
        parser.add_argument("--light", action="store_true",
                            help="only create the tickets (open, each with its first task and "
                                 "event): about ten times faster, for million-ticket benchmarks")
        parser.add_argument("--batch", type=_at_least_one, default=None,
                            help="tickets per transaction (default 50 on SQLite, 20 on "
                                 "PostgreSQL)")

    def handle(self, *args: Any, **options: Any) -> None:
        from tqdm import tqdm

        from estafeta.demo.seed import SeedSetup, SeedWorkerFailed, default_jobs, seed_run

        tickets = options["tickets"]
        jobs = min(options["jobs"] or default_jobs(), tickets)
        quiet = options["verbosity"] == 0
        bars: list[tqdm[Any]] = []

        def on_setup(setup: SeedSetup) -> None:
            if not quiet:
                self.stderr.write(f"seeding {tickets:,} tickets with {jobs} job(s) over "
                                  f"{len(setup.seller_ids)} sellers and "
                                  f"{len(setup.client_ids):,} clients")
            bars.append(tqdm(total=tickets, unit="ticket", file=sys.stderr, smoothing=0.05,
                             disable=quiet))

        try:
            result = seed_run(tickets=tickets, jobs=jobs, seed=options["seed"],
                              batch=options["batch"], progress=lambda n: bars[0].update(n),
                              on_setup=on_setup, light=options["light"])
        except SeedWorkerFailed as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            done = bars[0].n if bars else 0
            raise CommandError(f"interrupted after {done:,} tickets; they are kept (every "
                               "batch is committed whole)") from None
        finally:
            for bar in bars:
                bar.close()
        self.stdout.write(result.summary())
