"""A separate process for the SQLite concurrency tests (SQLite's concurrency is between
processes sharing one file). Usage, with DATABASE_URL set:

    python -m tests.concurrency_worker setup
    python -m tests.concurrency_worker create COUNT START_AT
    python -m tests.concurrency_worker close NUMBER USERNAME START_AT
    python -m tests.concurrency_worker report

Each prints one JSON line. START_AT (epoch seconds) lines the processes up.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from estafeta.domain.errors import EstafetaError

    action, args = sys.argv[1], sys.argv[2:]
    if action == "setup":
        from tests.factories import build_world

        world = build_world()
        ticket = world.ticket(owner=world.ann)
        world.fill_new(ticket)
        print(json.dumps({"ticket": ticket.number}))
    elif action == "create":
        from estafeta.accounts.models import User
        from estafeta.clients.models import Client
        from estafeta.tickets.services import ticket_create

        operator = User.objects.get(username="otto")
        client = Client.objects.get()
        _wait(float(args[1]))
        numbers, errors = [], []
        for i in range(int(args[0])):
            try:
                numbers.append(ticket_create(actor=operator, pipeline="sales", client=client,
                                             channel="phone", subject=f"#{os.getpid()}-{i}"
                                             ).number)
            except EstafetaError as exc:
                errors.append(exc.code)
        print(json.dumps({"numbers": numbers, "errors": errors}))
    elif action == "close":
        from estafeta.accounts.models import User
        from estafeta.tickets.selectors import ticket_by_number
        from estafeta.tickets.services import stage_close

        actor = User.objects.get(username=args[1])
        ticket = ticket_by_number(args[0])
        _wait(float(args[2]))
        try:
            stage_close(actor=actor, ticket=ticket, stage="new")
            print(json.dumps({"result": "closed"}))
        except EstafetaError as exc:
            print(json.dumps({"result": exc.code}))
    elif action == "report":
        from estafeta.history.models import Event
        from estafeta.history.services import audit_verify
        from estafeta.tasks.models import Task
        from estafeta.tickets.invariants import violations
        from estafeta.tickets.models import StageVisit, Ticket

        print(json.dumps({
            "tickets": Ticket.objects.count(),
            "numbers": sorted(Ticket.objects.values_list("number", flat=True)),
            "created_events": Event.objects.filter(type="ticket.created").count(),
            "closed_events": Event.objects.filter(type="stage.closed").count(),
            "tasks": Task.objects.count(),
            "visits": StageVisit.objects.count(),
            "violations": [str(v) for v in violations()],
            "audit": audit_verify().ok,
        }))


def _wait(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


if __name__ == "__main__":
    main()
