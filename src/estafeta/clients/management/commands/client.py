"""``estafeta client find PHONE-OR-EMAIL | anonymise ID --reason TEXT``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Find clients by phone or email; anonymise a client on an erasure request."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        find = actions.add_parser("find", help="clients with this phone or email")
        find.add_argument("contact")
        anonymise = actions.add_parser(
            "anonymise", help="erase a client's personal data; tickets and history stay")
        anonymise.add_argument("id", type=int)
        anonymise.add_argument("--reason", required=True,
                               help="why (for example the erasure request's reference)")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.clients.models import Client
        from estafeta.clients.selectors import clients_matching
        from estafeta.clients.services import client_anonymise

        if options["action"] == "find":
            contact = options["contact"]
            found = (clients_matching(emails=[contact]) if "@" in contact
                     else clients_matching(phones=[contact]))
            for c in found:
                tickets = c.tickets.count()
                self.stdout.write(f"{c.pk}\t{c.name}\t{tickets} ticket(s)")
            return
        client = Client.objects.filter(pk=options["id"]).first()
        if client is None:
            raise CommandError(f"there is no client {options['id']}")
        client_anonymise(actor=None, client=client, reason=options["reason"])
        self.stdout.write(f"client {client.pk} anonymised; {client.tickets.count()} ticket(s) "
                          "and their history kept")
