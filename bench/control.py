"""The monitor over a million open tasks. Prints figures; asserts nothing.

    python bench/control.py                          # 1,000,000 open tasks, 1% overdue
    python bench/control.py --tasks 100000 --tickets 1000

PostgreSQL only (the issue's target), on its own database ``estafeta_bench_control`` on
BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432), dropped and made again on each run
(escalations are never deleted, so a first pass can only be measured on fresh rows).

How the data is made: --tickets real tickets through ``ticket_create`` (a pipeline without stage
SLAs, so that only tasks are late), then the open tasks by COPY, spread evenly over those
tickets and their sellers: 1% due in the last two business hours before the pass (overdue: the
head's level, not yet the director's), the rest due in the coming weeks. Then ANALYZE, as
autovacuum would after such a load.

Measured:
  - the first pass: find the overdue tasks and escalate each (escalation row, ticket event,
    outbox row, one transaction each);
  - an idle pass right after it (the same tasks still overdue, all already escalated): median
    of 5;
  - an idle pass with nothing due (as if an hour before the first due time): median of 5;
  - the query plan of the overdue-task query, to show it is an index scan.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DB = "estafeta_bench_control"
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - the benchmark's throwaway people
# Wednesday 2 December 2026, 10:00 Moscow: when the tickets are made.
T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
# Thursday 3 December, 15:00 Moscow: the pass; overdue tasks were due 13:00-15:00 (lunch 13-14).
PASS_AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PIPELINE = """
code: bench
name: Bench
stages:
  - {code: deal, name: Deal, executor: {rule: keep_owner},
     next_task: {kind: call, title: Call the client, due: 30d}}
  - {code: won, name: Won, semantic: won}
"""


def prepare(server: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = f"{server}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    os.environ.setdefault("ESTAFETA_DATA_DIR", str(ROOT / "bench" / "results" / "control"))
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)


def build(tasks: int, tickets: int, say: Any) -> dict[str, float]:
    from django.db import connection

    from estafeta.accounts.services import team_create, user_create
    from estafeta.clients.services import client_create
    from estafeta.core import clock
    from estafeta.pipelines.services import pipeline_load
    from estafeta.tickets.models import Ticket
    from estafeta.tickets.services import ticket_create

    started = time.perf_counter()
    with clock.frozen(T0):
        head = user_create(actor=None, username="head", role="head", password=PASSWORD)
        team = team_create(actor=None, name="Sales", head=head)
        sellers = [user_create(actor=None, username=f"seller{i}", role="seller",
                               password=PASSWORD, team=team) for i in range(20)]
        user_create(actor=None, username="director", role="director", password=PASSWORD)
        pipeline_load(actor=None, text=PIPELINE, source="bench.yaml")
        client = client_create(actor=None, name="Client", phones=["+7 912 000-00-00"])
        for i in range(tickets):
            ticket_create(actor=None, pipeline="bench", client=client, channel="phone",
                          subject=f"request {i}", owner=sellers[i % len(sellers)])
            if i % 500 == 499:
                say(f"  {i + 1} tickets")
    made_tickets = time.perf_counter() - started
    rows = list(Ticket.objects.order_by("pk").values_list("pk", "owner_id"))
    visits = dict(Ticket.objects.values_list("pk", "visits__pk"))
    overdue = tasks // 100
    started = time.perf_counter()
    columns = ("ticket_id", "visit_id", "kind", "title", "assignee_id", "due_at", "status",
               "result", "created_by_id", "created_at")
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY tasks_task ({', '.join(columns)}) FROM STDIN") as copy:
        late_from = PASS_AT - timedelta(hours=2)
        for n in range(tasks - tickets):  # each ticket has its first task already
            ticket_id, owner_id = rows[n % len(rows)]
            if n < overdue:  # due between 13:00 and 15:00 Moscow on Thursday
                due = late_from + timedelta(seconds=(n * 7200) // overdue)
            else:
                due = PASS_AT + timedelta(hours=1, minutes=n % 40000)
            copy.write_row((ticket_id, visits[ticket_id], "call", f"Call #{n}", owner_id, due,
                            "open", "", owner_id, T0))
            if n % 200_000 == 199_999:
                say(f"  {n + 1} tasks")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
        cursor.execute("ANALYZE tickets_ticket")
        cursor.execute("ANALYZE tickets_stagevisit")
    return {"tickets_seconds": round(made_tickets, 1),
            "tasks_copy_seconds": round(time.perf_counter() - started, 1)}


def measure(say: Any) -> dict[str, Any]:
    from estafeta.control.models import Escalation
    from estafeta.control.services import monitor_pass
    from estafeta.tasks.models import Task

    out: dict[str, Any] = {
        "open_tasks": Task.objects.filter(status="open").count(),
        "overdue": Task.objects.filter(status="open", due_at__lte=PASS_AT).count(),
    }
    out["plan"] = Task.objects.filter(status="open", due_at__lte=PASS_AT).order_by().values(
        "pk").explain().splitlines()[:4]
    say("first pass ...")
    report = monitor_pass(now=PASS_AT)
    out["first_pass_seconds"] = round(report.seconds, 2)
    out["first_pass_escalated"] = dict(report.escalated)
    out["escalations"] = Escalation.objects.count()
    idle = [monitor_pass(now=PASS_AT + timedelta(seconds=i + 1)).seconds for i in range(5)]
    out["idle_after_pass_ms"] = round(statistics.median(idle) * 1000, 1)
    quiet = [monitor_pass(now=PASS_AT - timedelta(hours=3)).seconds for _ in range(5)]
    out["idle_nothing_due_ms"] = round(statistics.median(quiet) * 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=2_000)
    args = parser.parse_args()
    server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    prepare(server)
    say(f"building {args.tickets} tickets and {args.tasks} open tasks ...")
    result: dict[str, Any] = {"tasks": args.tasks, "tickets": args.tickets}
    result |= build(args.tasks, args.tickets, say)
    result |= measure(say)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
