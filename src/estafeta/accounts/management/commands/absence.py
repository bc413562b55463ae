"""``estafeta absence add USERNAME --from DATE --until DATE | cancel ID | list``."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from estafeta.core.management.base import EstafetaCommand


def _moment(text: str, *, end: bool) -> datetime:
    """``2026-12-01`` (a whole day: start of day, or the end of the ``--until`` day) or an ISO
    moment, in the company's time zone unless it carries its own."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            moment = datetime.combine(day, time.min)
            if end:
                moment = moment + timedelta(days=1)
            return timezone.make_aware(moment)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (2026-12-01) or a moment "
                           "(2026-12-01T09:00)") from None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


class Command(EstafetaCommand):
    help = "Record when people are away: executor rules skip them meanwhile."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.subcommands(parser)
        add = actions.add_parser("add", help="record an absence")
        add.add_argument("username")
        add.add_argument("--from", dest="start", required=True, help="first day (or moment)")
        add.add_argument("--until", dest="end", required=True, help="last day (or moment)")
        add.add_argument("--reason", default="")
        cancel = actions.add_parser("cancel", help="cancel an absence")
        cancel.add_argument("id", type=int)
        actions.add_parser("list", help="list current and future absences")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.accounts.models import Absence
        from estafeta.accounts.selectors import user_by_username
        from estafeta.accounts.services import absence_add, absence_cancel

        if options["action"] == "add":
            absence = absence_add(actor=None, user=user_by_username(options["username"]),
                                  starts_at=_moment(options["start"], end=False),
                                  ends_at=_moment(options["end"], end=True),
                                  reason=options["reason"])
            self.stdout.write(f"absence {absence.pk} recorded")
        elif options["action"] == "cancel":
            found = Absence.objects.filter(pk=options["id"]).first()
            if found is None:
                raise CommandError(f"there is no absence {options['id']}")
            absence_cancel(actor=None, absence=found)
            self.stdout.write(f"absence {found.pk} cancelled")
        else:
            rows = (Absence.objects.select_related("user")
                    .filter(ends_at__gt=timezone.now(), cancelled_at__isnull=True)
                    .order_by("starts_at"))
            for a in rows:
                start = timezone.localtime(a.starts_at)
                end = timezone.localtime(a.ends_at)
                self.stdout.write(f"{a.pk}\t{a.user.username}\t{start:%Y-%m-%d %H:%M} – "
                                  f"{end:%Y-%m-%d %H:%M}\t{a.reason}")
