"""``estafeta lost-reason add CODE TITLE [--pipeline CODE] | retire CODE | list``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Manage the list of reasons a ticket can be lost for."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        add = actions.add_parser("add", help="add a reason")
        add.add_argument("code")
        add.add_argument("title")
        add.add_argument("--pipeline", help="only for this pipeline (default: every pipeline)")
        retire = actions.add_parser("retire", help="stop offering a reason (tickets keep it)")
        retire.add_argument("code")
        retire.add_argument("--pipeline")
        actions.add_parser("list", help="list reasons")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.pipelines.models import LostReason
        from estafeta.pipelines.selectors import pipeline_by_code
        from estafeta.pipelines.services import lost_reason_add, lost_reason_set_active

        pipeline = pipeline_by_code(options["pipeline"]) if options.get("pipeline") else None
        if options["action"] == "add":
            reason = lost_reason_add(actor=None, code=options["code"], title=options["title"],
                                     pipeline=pipeline)
            self.stdout.write(f"added {reason.code}")
        elif options["action"] == "retire":
            found = LostReason.objects.filter(code=options["code"], pipeline=pipeline).first()
            if found is None:
                raise CommandError(f"there is no lost reason {options['code']!r}")
            lost_reason_set_active(actor=None, reason=found, active=False)
            self.stdout.write(f"retired {found.code}")
        else:
            for r in LostReason.objects.select_related("pipeline").order_by("pipeline", "code"):
                scope = r.pipeline.code if r.pipeline else "*"
                state = "" if r.is_active else " (retired)"
                self.stdout.write(f"{scope}\t{r.code}\t{r.title}{state}")
