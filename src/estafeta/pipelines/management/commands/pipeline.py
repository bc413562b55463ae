"""``estafeta pipeline load FILE | dump CODE | list``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Load a pipeline from a YAML file (a new version when it changed), dump one, list them."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        load = actions.add_parser("load", help="validate FILE and make it the current version")
        load.add_argument("file", help="a YAML file ('-' reads standard input)")
        dump = actions.add_parser("dump", help="print the current version as YAML")
        dump.add_argument("code", help="the pipeline's code")
        dump.add_argument("--version", type=int, help="an earlier version's number")
        for name, text in (("disable", "stop accepting new tickets (running ones go on)"),
                           ("enable", "accept new tickets again")):
            toggle = actions.add_parser(name, help=text)
            toggle.add_argument("code")
        actions.add_parser("list", help="list pipelines with their current version")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.pipelines.models import Pipeline
        from estafeta.pipelines.selectors import pipeline_by_code
        from estafeta.pipelines.services import pipeline_dump, pipeline_load, pipeline_set_active

        action = options["action"]
        if action == "load":
            name = options["file"]
            if name == "-":
                import sys

                text, source = sys.stdin.read(), "<stdin>"
            else:
                path = Path(name)
                try:
                    text, source = path.read_bytes().decode("utf-8", "strict"), path.name
                except FileNotFoundError:
                    raise CommandError(f"no such file: {name}") from None
                except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
                    raise CommandError(f"cannot read {name}: {exc}") from None
            result = pipeline_load(actor=None, text=text, source=source)
            stages = result.version.stages.count()
            if result.created:
                self.stdout.write(f"loaded {result.pipeline.code} version "
                                  f"{result.version.number} ({stages} stages)")
            else:
                self.stdout.write(f"{result.pipeline.code} is unchanged (version "
                                  f"{result.version.number})")
        elif action == "dump":
            self.stdout.write(pipeline_dump(options["code"], options["version"]), ending="")
        elif action in ("disable", "enable"):
            pipeline = pipeline_set_active(actor=None, pipeline=pipeline_by_code(options["code"]),
                                           active=action == "enable")
            state = "accepts" if pipeline.is_active else "no longer accepts"
            self.stdout.write(f"{pipeline.code} {state} new tickets")
        else:
            for p in Pipeline.objects.select_related("current_version").order_by("code"):
                version = p.current_version.number if p.current_version else "-"
                state = "" if p.is_active else " (closed to new tickets)"
                self.stdout.write(f"{p.code}\tv{version}\t{p.name}{state}")
