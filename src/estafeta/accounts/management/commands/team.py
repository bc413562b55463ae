"""``estafeta team create NAME --head USERNAME | head NAME USERNAME | list``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Create teams, change their head of sales, list them."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        create = actions.add_parser("create", help="create a team led by a head of sales")
        create.add_argument("name")
        create.add_argument("--head", required=True, help="username of a head of sales")
        rename = actions.add_parser("rename", help="rename a team")
        rename.add_argument("name")
        rename.add_argument("new_name")
        head = actions.add_parser("head", help="give a team another head of sales")
        head.add_argument("name")
        head.add_argument("username")
        actions.add_parser("list", help="list teams")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.accounts.models import Team
        from estafeta.accounts.selectors import team_by_name, user_by_username
        from estafeta.accounts.services import team_create, team_rename, team_set_head

        if options["action"] == "create":
            team = team_create(actor=None, name=options["name"],
                               head=user_by_username(options["head"]))
            self.stdout.write(f"created team {team.name} (head {team.head.username})")
        elif options["action"] == "rename":
            team = team_rename(actor=None, team=team_by_name(options["name"]),
                               name=options["new_name"])
            self.stdout.write(f"renamed to {team.name}")
        elif options["action"] == "head":
            team = team_set_head(actor=None, team=team_by_name(options["name"]),
                                 head=user_by_username(options["username"]))
            self.stdout.write(f"{team.name} is now led by {team.head.username}")
        else:
            for t in Team.objects.select_related("head").order_by("name"):
                members = t.members.filter(is_active=True).count()
                self.stdout.write(f"{t.name}\thead {t.head.username}\t{members} member(s)")
