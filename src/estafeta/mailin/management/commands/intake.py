"""``estafeta intake``: take requests in by hand.

    estafeta intake email --file MESSAGE.eml [--mailbox NAME] [--pipeline CODE]
    estafeta intake email --file -            (the message on standard input)

Prints what happened: ``created: Z-2026-000123``, ``attached: ...``, ``flagged: ...`` (a new
ticket marked as a possible duplicate), ``repeated: ...`` (this Message-ID was taken in before,
nothing written) or ``quarantined (reason): ...``. Without ``--mailbox`` the message needs
``--pipeline`` (or the only active mailbox is used).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandParser

from estafeta.core.management.base import EstafetaCommand
from estafeta.domain.errors import BadInput, NotFound
from estafeta.mailin.models import Mailbox
from estafeta.mailin.parse import max_message
from estafeta.mailin.services import mail_ingest


class Command(EstafetaCommand):
    help = "Take a request in by hand (an email message file)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser)
        email = sub.add_parser("email", help="ingest one RFC 5322 message (.eml)")
        email.add_argument("--file", required=True, help="the message file, or - for stdin")
        email.add_argument("--mailbox", help="the mailbox it arrived at (name)")
        email.add_argument("--pipeline", help="pipeline code for a new ticket (no mailbox)")

    def handle(self, *args: Any, **options: Any) -> None:
        mailbox = None
        if options["mailbox"]:
            mailbox = Mailbox.objects.select_related("pipeline").filter(
                name=options["mailbox"]).first()
            if mailbox is None:
                raise NotFound(f"there is no mailbox {options['mailbox']!r}",
                               code="unknown_mailbox")
        elif not options["pipeline"]:
            active = list(Mailbox.objects.filter(active=True).select_related("pipeline")[:2])
            if len(active) != 1:
                raise BadInput("name the --mailbox (or the --pipeline for a new ticket)",
                               code="no_mailbox")
            mailbox = active[0]
        path = options["file"]
        limit = max_message() + 1
        try:
            if path == "-":
                raw = sys.stdin.buffer.read(limit)
            else:
                with open(path, "rb") as handle:
                    raw = handle.read(limit)
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}", code="unreadable") from None
        self.stdout.write(f"reading {len(raw)} bytes from {path}")
        result = mail_ingest(raw, mailbox=mailbox, pipeline=options["pipeline"])
        self.stdout.write(result.line())
