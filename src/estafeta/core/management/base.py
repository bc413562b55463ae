"""The base of every ``estafeta`` command: refusals become one line on stderr and exit 1;
argument mistakes one line and exit 2; no tracebacks for expected failures."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from estafeta.domain.errors import EstafetaError, PipelineInvalid


class OneLineParser(CommandParser):
    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
        raise CommandError(f"Error: {message}")


class EstafetaCommand(BaseCommand):
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineParser  # same object, one-line errors
        return parser

    def subcommands(self, parser: CommandParser, dest: str = "action") -> Any:
        # Subparsers inherit the one-line errors; Django's kwargs must be passed through.
        return parser.add_subparsers(
            dest=dest, required=True, metavar="ACTION",
            parser_class=OneLineParser,
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except PipelineInvalid as exc:
            for problem in exc.problems[1:]:
                self.stderr.write(f"  also: {problem}")
            raise CommandError(exc.message) from exc
        except EstafetaError as exc:
            raise CommandError(exc.message) from exc
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"database error: {first}") from exc

    def run_from_argv(self, argv: list[str]) -> None:
        """Django's, with the error line prefixed by the command instead of "CommandError"."""
        self._called_from_command_line = True
        parser = self.create_parser(argv[0], argv[1])
        options = parser.parse_args(argv[2:])
        cmd_options = vars(options)
        args = cmd_options.pop("args", ())
        from django.core.management.base import handle_default_options

        handle_default_options(options)
        try:
            self.execute(*args, **cmd_options)
        except CommandError as exc:
            if options.traceback:
                raise
            self.stderr.write(f"{argv[0]} {argv[1]}: {exc}")
            sys.exit(exc.returncode)
        finally:
            connections.close_all()
