"""One benchmark process. Prints one JSON line. Run by bench/core.py with DATABASE_URL set.

    worker.py setup                    team, sellers, the bench pipeline, a pool of clients
    worker.py create COUNT START_AT    COUNT tickets through ticket_create, one transaction each
    worker.py raw COUNT START_AT       the same rows by plain INSERTs, one transaction each
    worker.py prepare COUNT            tickets whose first stage is ready to close
    worker.py close SHARD SHARDS START_AT   close the prepared stages of one shard
    worker.py tasklist REPEAT          p50/p95 of one seller's open-task page
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()
    action, args = sys.argv[1], sys.argv[2:]
    result = ACTIONS[action](*args)
    print(json.dumps(result))


def setup() -> dict[str, object]:
    from estafeta.accounts.services import team_create, user_create
    from estafeta.clients.services import client_create
    from estafeta.pipelines.services import pipeline_load

    password = "Bench-pass-2026!"  # noqa: S105 - a throwaway database
    head = user_create(actor=None, username="bench_head", role="head", password=password)
    team = team_create(actor=None, name="Bench", head=head)
    for i in range(8):
        user_create(actor=None, username=f"bench_seller{i}", role="seller", password=password,
                    team=team)
    user_create(actor=None, username="bench_operator", role="operator", password=password)
    pipeline_load(actor=None, text=(HERE / "bench.yaml").read_text(), source="bench.yaml")
    for i in range(200):
        client_create(actor=None, name=f"Client {i}", phones=[f"+7900{i:07d}"])
    return {"ok": True}


def _wait(start_at: str) -> None:
    time.sleep(max(0.0, float(start_at) - time.time()))


def create(count: str, start_at: str) -> dict[str, object]:
    from estafeta.accounts.models import User
    from estafeta.clients.models import Client
    from estafeta.tickets.services import ticket_create

    operator = User.objects.get(username="bench_operator")
    clients = list(Client.objects.all()[:200])
    rng = random.Random(os.getpid())
    _wait(start_at)
    started = time.time()
    for i in range(int(count)):
        ticket_create(actor=operator, pipeline="bench", client=rng.choice(clients),
                      channel="phone", subject=f"Request {i}")
    return {"count": int(count), "start": started, "end": time.time()}


def raw(count: str, start_at: str) -> dict[str, object]:
    """The four rows a creation writes (ticket, visit, task, event), by hand-written INSERTs in
    one transaction per ticket: the floor of what the database itself costs."""
    from django.db import connection, transaction

    from estafeta.accounts.models import User
    from estafeta.clients.models import Client
    from estafeta.pipelines.models import Pipeline

    pipeline = Pipeline.objects.select_related("current_version").get(code="bench")
    version = pipeline.current_version
    assert version is not None
    stage = version.stage_list[0]
    owner = User.objects.get(username="bench_seller0")
    client = Client.objects.order_by("pk").first()
    assert client is not None
    pg = connection.vendor == "postgresql"
    now_sql = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    _wait(start_at)
    started = time.time()
    tag = f"{os.getpid()}"
    for i in range(int(count)):
        with transaction.atomic(), connection.cursor() as c:
            number = f"R{tag}-{i}"
            c.execute(
                "INSERT INTO tickets_ticket (number, pipeline_id, version_id, stage_id, status, "
                "client_id, owner_id, team_id, channel, subject, description, currency, "
                f"close_note, created_at, updated_at) VALUES (%s,%s,%s,%s,'open',%s,%s,%s,'phone',"
                f"'Request','', 'RUB', '', {now_sql}, {now_sql}) RETURNING id",
                [number, pipeline.pk, version.pk, stage.pk, client.pk, owner.pk, owner.team_id])
            ticket_id = c.fetchone()[0]
            c.execute(
                "INSERT INTO tickets_stagevisit (ticket_id, stage_id, seq, kind, entered_at, "
                f"executor_id, override) VALUES (%s,%s,1,'enter',{now_sql},%s,%s) RETURNING id",
                [ticket_id, stage.pk, owner.pk, False])
            visit_id = c.fetchone()[0]
            c.execute(
                "INSERT INTO tasks_task (ticket_id, visit_id, kind, title, assignee_id, due_at, "
                f"status, result, created_at) VALUES (%s,%s,'call','Call',%s,{now_sql},'open','',"
                f"{now_sql})", [ticket_id, visit_id, owner.pk])
            c.execute(
                "INSERT INTO history_event (stream, seq, ticket_id, type, occurred_at, "
                "recorded_at, payload, prev_hash, hash) VALUES "
                f"(%s,1,%s,'ticket.created',{now_sql},{now_sql},%s,%s,%s)",
                [f"ticket:{ticket_id}", ticket_id, '{"number": "' + number + '"}', "0" * 64,
                 "f" * 64])
    return {"count": int(count), "start": started, "end": time.time()}


def prepare(count: str) -> dict[str, object]:
    from django.db import transaction

    from estafeta.accounts.models import User
    from estafeta.clients.models import Client
    from estafeta.tickets.services import checklist_item_complete, ticket_create

    operator = User.objects.get(username="bench_operator")
    client = Client.objects.order_by("pk").first()
    assert client is not None
    for i in range(int(count)):
        with transaction.atomic():
            t = ticket_create(actor=operator, pipeline="bench", client=client, channel="phone",
                              subject=f"To close {i}")
            checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="contacted")
            checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="budget",
                                    evidence="1 000 000")
    return {"count": int(count)}


def close(shard: str, shards: str, start_at: str) -> dict[str, object]:
    from estafeta.tickets.models import Ticket
    from estafeta.tickets.services import stage_close

    ids = list(Ticket.objects.filter(status="open", stage__code="new", subject__startswith="To "
                                     ).order_by("pk").values_list("pk", flat=True))
    mine = ids[int(shard)::int(shards)]
    tickets = Ticket.objects.select_related("owner").in_bulk(mine)
    _wait(start_at)
    started = time.time()
    for pk in mine:
        t = tickets[pk]
        stage_close(actor=t.owner, ticket=t, stage="new")
    return {"count": len(mine), "start": started, "end": time.time()}


def tasklist(repeat: str) -> dict[str, object]:
    from django.db.models import Count

    from estafeta.accounts.models import User
    from estafeta.tasks.models import Task
    from estafeta.tasks.selectors import open_tasks_for_user

    busiest = (Task.objects.filter(status="open").values("assignee")
               .annotate(n=Count("id")).order_by("-n").first())
    assert busiest is not None
    user = User.objects.get(pk=busiest["assignee"])
    timings = []
    for _ in range(int(repeat)):
        started = time.perf_counter()
        rows = [(t.title, t.due_at, t.ticket.number, t.ticket.client.name, t.ticket.stage.name)
                for t in open_tasks_for_user(user)[:50]]
        timings.append((time.perf_counter() - started) * 1000)
    assert rows
    timings.sort()
    return {"user": user.username, "open_tasks": busiest["n"],
            "p50_ms": statistics.median(timings),
            "p95_ms": timings[int(len(timings) * 0.95) - 1]}


ACTIONS = {"setup": setup, "create": create, "raw": raw, "prepare": prepare, "close": close,
           "tasklist": tasklist}

if __name__ == "__main__":
    main()
