"""``estafeta user create|update|deactivate|reactivate|password|list``."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand
from estafeta.domain.codes import Role

ROLES = [r.value for r in Role]


def read_password(stdin: Any = None) -> str:
    """From the terminal (asked twice) or the first line of standard input."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords do not match")
        password = first
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("no password given on standard input")
    return password


class Command(EstafetaCommand):
    help = "Create, change, deactivate and list users."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        create = actions.add_parser("create", help="create a user; the password is read from "
                                                   "standard input")
        create.add_argument("username")
        create.add_argument("--role", required=True, choices=ROLES)
        create.add_argument("--team", help="team name")
        create.add_argument("--email", default="")
        create.add_argument("--first-name", default="")
        create.add_argument("--last-name", default="")
        create.add_argument("--language", default="ru", choices=["ru", "en"])
        update = actions.add_parser("update", help="change role, team or details")
        update.add_argument("username")
        update.add_argument("--role", choices=ROLES)
        update.add_argument("--team", help="team name ('-' for none)")
        update.add_argument("--email")
        update.add_argument("--first-name")
        update.add_argument("--last-name")
        update.add_argument("--language", choices=["ru", "en"])
        deactivate = actions.add_parser(
            "deactivate", help="deactivate a user; open work moves to the successor")
        deactivate.add_argument("username")
        deactivate.add_argument("--successor", help="who takes the open work (default: the "
                                                    "head of the user's team)")
        deactivate.add_argument("--reason", default="")
        reactivate = actions.add_parser("reactivate", help="let a deactivated user work again")
        reactivate.add_argument("username")
        password = actions.add_parser("password", help="set a password (read from standard "
                                                       "input)")
        password.add_argument("username")
        listing = actions.add_parser("list", help="list users")
        listing.add_argument("--all", action="store_true", help="include deactivated users")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.accounts import services
        from estafeta.accounts.models import User
        from estafeta.accounts.selectors import team_by_name, user_by_username

        action = options["action"]
        if action == "create":
            team = team_by_name(options["team"]) if options["team"] else None
            password = read_password()
            user = services.user_create(
                actor=None, username=options["username"], role=options["role"],
                password=password, team=team, email=options["email"],
                first_name=options["first_name"], last_name=options["last_name"],
                language=options["language"])
            self.stdout.write(f"created {user.username} ({user.role})")
        elif action == "update":
            user = user_by_username(options["username"])
            changes: dict[str, Any] = {k: options[k] for k in
                                       ("role", "email", "first_name", "last_name", "language")
                                       if options[k] is not None}
            if options["team"] is not None:
                changes["team"] = None if options["team"] == "-" else team_by_name(options["team"])
            if not changes:
                raise CommandError("nothing to change: give --role, --team, --email, ...")
            services.user_update(actor=None, user=user, **changes)
            self.stdout.write(f"updated {user.username}")
        elif action == "deactivate":
            user = user_by_username(options["username"])
            successor = (user_by_username(options["successor"]) if options["successor"]
                         else None)
            handover = services.user_deactivate(actor=None, user=user, successor=successor,
                                                reason=options["reason"])
            self.stdout.write(
                f"deactivated {user.username}: {handover.tickets} ticket(s), {handover.tasks} "
                f"task(s) and {handover.teams} team(s) moved to {handover.successor.username}")
        elif action == "reactivate":
            services.user_reactivate(actor=None, user=user_by_username(options["username"]))
            self.stdout.write(f"reactivated {options['username']}")
        elif action == "password":
            user = user_by_username(options["username"])
            services.user_set_password(actor=None, user=user, password=read_password())
            self.stdout.write(f"password set for {user.username}")
        else:
            users = User.objects.select_related("team").order_by("username")
            if not options["all"]:
                users = users.filter(is_active=True)
            for u in users:
                state = "" if u.is_active else "\t(deactivated)"
                team_name = u.team.name if u.team else "-"
                self.stdout.write(f"{u.username}\t{u.role}\t{team_name}\t{u.get_full_name()}{state}")
