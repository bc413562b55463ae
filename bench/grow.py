"""Grow a benchmark database to N tickets by replicating a base of real ones in bulk.

    DATABASE_URL=... python bench/grow.py --tickets 1000000 [--base 10000] [--chunk 2000]

Why: ``estafeta seed --light`` writes every ticket through ``ticket_create``, which is the
faithful way but takes one to two hours for a million tickets on a 2-core machine. So:

1. the base (the first ``--base`` tickets, made beforehand by ``estafeta seed --light``) is real:
   every row of it was written by the services;
2. the synthetic department is set up for the target size through the services
   (``seed_setup``: about one seller per thousand tickets and its pool of clients);
3. every replica copies one base ticket's rows (ticket, stage visits, tasks, events) with fresh
   ids and a fresh number taken from the same per-prefix-and-year sequence (PostgreSQL) or counter
   (SQLite) that ``ticket_create`` uses; the base ticket's owner is replaced everywhere by a seller
   of the grown department who owns no base ticket (round robin), and its client by one of the
   pool (with the client's classification in the event, as ``ticket_create`` records it);
4. the events are re-chained per ticket stream: each replica event's ``prev_hash`` is the new hash
   of the event before it in its stream and its ``hash`` is ``EventFacts.digest()``, the project's
   own hashing code, so ``estafeta audit verify`` walks them like any other event;
5. one ``checkpoint_create()`` at the end seals the new stream heads, as ``estafeta seed`` does.

Rows go in one transaction per chunk of base tickets (PostgreSQL: COPY; SQLite: executemany);
memory stays flat: only one chunk of the base and its replicas is held at a time.

The base must hold light tickets only (their creation: ``ticket.created`` events, no checklist
entries, activities, documents or files): their payloads are understood field by field. Anything
else is refused rather than copied with stale references.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

OWNER_FIELDS = ("owner_id", "executor_id", "assignee_id", "actor_id", "done_by_id",
                "closed_by_id", "entered_by_id", "created_by_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, required=True, help="the size to grow to")
    parser.add_argument("--base", type=int, default=10_000,
                        help="the first BASE tickets (by id) are the ones replicated")
    parser.add_argument("--chunk", type=int, default=2000, help="base tickets per transaction")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()
    result = grow(args.tickets, base=args.base, chunk=args.chunk,
                  say=(lambda _text: None) if args.quiet else
                  (lambda text: print(text, file=sys.stderr, flush=True)))
    print(json.dumps(result))


def grow(target: int, *, base: int, chunk: int, say: Any) -> dict[str, Any]:
    from django.db import connection, transaction

    from estafeta.demo.seed import seed_setup
    from estafeta.history.services import checkpoint_create
    from estafeta.tickets.models import Ticket

    started = time.monotonic()
    have = Ticket.objects.count()
    if have >= target:
        return {"tickets": have, "added": 0, "seconds": 0.0}
    base_ids = Ticket.objects.order_by("id").values_list("id", flat=True)
    if have < base:
        raise SystemExit(f"the database has {have:,} tickets: seed a base of {base:,} first "
                         "(estafeta seed --light --tickets ...)")
    base_max = base_ids[base - 1]
    _refuse_unknown_rows(base_max)
    say(f"setting up the department for {target:,} tickets (through the services)...")
    setup = seed_setup(tickets=target)
    base_owners = set(Ticket.objects.filter(id__lte=base_max).values_list("owner_id", flat=True))
    sellers = [s for s in setup.seller_ids if s not in base_owners] or list(setup.seller_ids)
    replicator = Replicator(sellers, setup.client_ids, base_max)
    made = have - base  # replicas already there (a resumed run)
    need = target - have
    say(f"replicating {need:,} tickets from the base of {base:,} "
        f"({connection.vendor}, {len(sellers)} sellers, {len(setup.client_ids)} clients)")
    last_report = time.monotonic()
    while need > 0:
        low = 0
        while need > 0:
            ids = list(base_ids.filter(id__gt=low, id__lte=base_max)[:min(chunk, need)])
            if not ids:
                break
            low = ids[-1]
            with transaction.atomic():
                replicator.replicate(ids[0], ids[-1], made)
            made += len(ids)
            need -= len(ids)
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                rate = (made - (have - base)) / (last_report - started)
                say(f"  {base + made:,} tickets ({rate:,.0f}/s)")
    seconds = time.monotonic() - started
    say("sealing a checkpoint...")
    checkpoint_create()
    if connection.vendor == "postgresql":  # what autovacuum would do soon after such a load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE tickets_ticket, tickets_stagevisit, tasks_task, "
                           "history_event")
    total = Ticket.objects.count()
    return {"tickets": total, "added": total - have, "seconds": round(seconds, 1),
            "rate": round((total - have) / seconds, 1),
            "checkpoint_seconds": round(time.monotonic() - started - seconds, 1)}


def _refuse_unknown_rows(base_max: int) -> None:
    from estafeta.history.models import Event
    from estafeta.tickets.models import Activity, ChecklistEntry, Document, Ticket

    problems = []
    if ChecklistEntry.objects.filter(visit__ticket_id__lte=base_max).exists():
        problems.append("checklist entries")
    if Activity.objects.filter(ticket_id__lte=base_max).exists():
        problems.append("activities")
    if Document.objects.filter(ticket_id__lte=base_max).exists():
        problems.append("documents")
    if Ticket.objects.filter(id__lte=base_max, duplicate_of__isnull=False).exists():
        problems.append("duplicates")
    if Event.objects.filter(ticket_id__lte=base_max).exclude(type="ticket.created").exists():
        problems.append("events other than ticket.created")
    if problems:
        raise SystemExit("the base holds " + ", ".join(problems) + ": grow.py replicates light "
                         "tickets only (estafeta seed --light)")


class Replicator:
    """Copies the rows of base tickets (lo..hi) into replicas, one per base ticket."""

    def __init__(self, sellers: Sequence[int], client_ids: Sequence[int], base_max: int) -> None:
        from django.db import connection

        from estafeta.accounts.models import User
        from estafeta.history.models import Event
        from estafeta.tasks.models import Task
        from estafeta.tickets.models import StageVisit, Ticket

        self.conn = connection
        self.pg = connection.vendor == "postgresql"
        self.sellers = list(sellers)
        self.teams = dict(User.objects.filter(pk__in=self.sellers).values_list("pk", "team_id"))
        self.clients = _client_facts(client_ids)
        self.client_ids = list(client_ids)
        self.models = {"ticket": Ticket, "visit": StageVisit, "task": Task, "event": Event}
        self.fields = {k: list(m._meta.concrete_fields) for k, m in self.models.items()}
        self.next_id: dict[str, int] = {}
        self._convert: dict[str, list[Any]] = {}
        if not self.pg:  # SQLite: the only writer while growing; ids follow the largest
            with connection.cursor() as cursor:
                for key, model in self.models.items():
                    cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{model._meta.db_table}"')
                    self.next_id[key] = int(cursor.fetchone()[0]) + 1

    # --- reading one chunk of the base ----------------------------------------------------------

    def _rows(self, key: str, lo: int, hi: int, by: str) -> list[dict[str, Any]]:
        model = self.models[key]
        names = [f.attname for f in self.fields[key]]
        qs = model.objects.filter(**{f"{by}__gte": lo, f"{by}__lte": hi})
        if key == "event":
            qs = qs.filter(stream__startswith="ticket:").order_by("ticket_id", "seq")
        else:
            qs = qs.order_by("id")
        return [dict(zip(names, row, strict=True)) for row in qs.values_list(*names)]

    def replicate(self, lo: int, hi: int, made: int) -> None:
        from estafeta.domain.hashchain import GENESIS, EventFacts, jsonable
        from estafeta.domain.numbering import parse_number

        tickets = self._rows("ticket", lo, hi, "id")
        visits = self._rows("visit", lo, hi, "ticket_id")
        tasks = self._rows("task", lo, hi, "ticket_id")
        events = self._rows("event", lo, hi, "ticket_id")
        ids = {key: self._ids(key, n) for key, n in
               (("ticket", len(tickets)), ("visit", len(visits)), ("task", len(tasks)),
                ("event", len(events)))}
        # Numbers from the sequence (or counter) of each base ticket's prefix and year.
        wanted: dict[tuple[str, int], int] = defaultdict(int)
        keys = []
        for t in tickets:
            parsed = parse_number(t["number"])
            assert parsed is not None, t["number"]
            keys.append(parsed[:2])
            wanted[parsed[:2]] += 1
        serials = {k: iter(self._serials(*k, n)) for k, n in wanted.items()}

        ticket_map: dict[int, int] = {}
        owner_map: dict[int, tuple[int, int]] = {}  # base ticket -> (old owner, new owner)
        new_tickets = []
        for i, (t, key) in enumerate(zip(tickets, keys, strict=True)):
            new = dict(t)
            new["id"] = ids["ticket"][i]
            new["number"] = f"{key[0]}-{key[1]:04d}-{next(serials[key]):06d}"
            seller = self.sellers[(made + i) % len(self.sellers)]
            new["owner_id"], new["team_id"] = seller, self.teams[seller]
            new["client_id"] = self.client_ids[(made + i) * 7919 % len(self.client_ids)]
            ticket_map[t["id"]] = new["id"]
            owner_map[t["id"]] = (t["owner_id"], seller)
            new_tickets.append(new)
        by_ticket = {t["id"]: n for t, n in zip(tickets, new_tickets, strict=True)}

        def people(row: dict[str, Any], ticket_id: int) -> dict[str, Any]:
            old, new = owner_map[ticket_id]
            for name in OWNER_FIELDS:
                if name in row and row[name] is not None and row[name] == old:
                    row[name] = new
            return row

        visit_map: dict[int, int] = {}
        new_visits = []
        for i, v in enumerate(visits):
            new = people(dict(v), v["ticket_id"])
            new["id"], new["ticket_id"] = ids["visit"][i], ticket_map[v["ticket_id"]]
            visit_map[v["id"]] = new["id"]
            new_visits.append(new)
        task_map: dict[int, int] = {}
        new_tasks = []
        for i, k in enumerate(tasks):
            new = people(dict(k), k["ticket_id"])
            new["id"], new["ticket_id"] = ids["task"][i], ticket_map[k["ticket_id"]]
            if new["visit_id"] is not None:
                new["visit_id"] = visit_map[k["visit_id"]]
            task_map[k["id"]] = new["id"]
            new_tasks.append(new)

        new_events = []
        head: dict[int, str] = {}
        for i, e in enumerate(events):
            base_ticket = e["ticket_id"]
            new = people(dict(e), base_ticket)
            ticket = by_ticket[base_ticket]
            new["id"], new["ticket_id"] = ids["event"][i], ticket["id"]
            new["stream"] = f"ticket:{ticket['id']}"
            new["payload"] = jsonable(self._payload(e["payload"], ticket, owner_map[base_ticket],
                                                    task_map))
            new["prev_hash"] = head.get(base_ticket, GENESIS) if e["seq"] > 1 else GENESIS
            new["hash"] = EventFacts(new["stream"], new["seq"], new["prev_hash"], new["type"],
                                     new["occurred_at"], new["actor_id"], new["owner_id"],
                                     new["payload"]).digest()
            head[base_ticket] = new["hash"]
            new_events.append(new)

        self._write("ticket", new_tickets)
        self._write("visit", new_visits)
        self._write("task", new_tasks)
        self._write("event", new_events)

    def _payload(self, payload: dict[str, Any], ticket: dict[str, Any],
                 owners: tuple[int, int], task_map: dict[int, int]) -> dict[str, Any]:
        """A ``ticket.created`` payload as ticket_create would have written it for the replica."""
        old, new = owners
        out = dict(payload)
        out["number"] = ticket["number"]
        for name in ("owner", "executor"):
            if out.get(name) == old:
                out[name] = new
        if "team" in out:
            out["team"] = ticket["team_id"]
        task = out.get("task")
        if isinstance(task, dict):
            task = dict(task)
            if task.get("id") in task_map:
                task["id"] = task_map[task["id"]]
            if task.get("assignee") == old:
                task["assignee"] = new
            out["task"] = task
        if "client" in out:
            out.update(self.clients[ticket["client_id"]].payload())
        return out

    # --- ids, numbers, writing -----------------------------------------------------------------

    def _ids(self, key: str, n: int) -> list[int]:
        if n == 0:
            return []
        if not self.pg:
            first = self.next_id[key]
            self.next_id[key] = first + n
            return list(range(first, first + n))
        table = self.models[key]._meta.db_table
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                           "FROM generate_series(1, %s)", [table, n])
            return [int(r[0]) for r in cursor.fetchall()]

    def _serials(self, prefix: str, year: int, n: int) -> list[int]:
        """``n`` serials from what ``tickets.numbering.next_number`` draws from."""
        from estafeta.core.db import sequence_next

        with self.conn.cursor() as cursor:
            if self.pg:
                name = f"estafeta_ticket_{prefix.lower()}_{year}"
                first = sequence_next(name)  # creates the sequence if this year had none
                if n == 1:
                    return [first]
                cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [name, n - 1])
                return [first] + [int(r[0]) for r in cursor.fetchall()]
            cursor.execute("UPDATE tickets_ticketcounter SET last = last + %s "
                           "WHERE prefix = %s AND year = %s RETURNING last", [n, prefix, year])
            row = cursor.fetchone()
            if row is None:
                cursor.execute("INSERT INTO tickets_ticketcounter (prefix, year, last) "
                               "VALUES (%s, %s, %s)", [prefix, year, n])
                return list(range(1, n + 1))
            return list(range(int(row[0]) - n + 1, int(row[0]) + 1))

    def _converters(self, key: str) -> list[Any]:
        """What Django's ``get_db_prep_save`` does to each value, kept to the fields that need
        it (calling it on every value costs more than the COPY itself)."""
        from django.db import models

        if key in self._convert:
            return self._convert[key]
        out: list[Any] = []
        for f in self.fields[key]:
            if isinstance(f, models.JSONField):
                out.append(lambda v: None if v is None else json.dumps(v))
            elif isinstance(f, models.DateTimeField | models.DecimalField) and not self.pg:
                out.append(lambda v, f=f: f.get_db_prep_save(v, self.conn))
            else:
                out.append(None)  # ints, text, booleans, (PostgreSQL) datetimes: as they are
        self._convert[key] = out
        return out

    def _write(self, key: str, rows: Iterable[dict[str, Any]]) -> None:
        fields = self.fields[key]
        table = self.models[key]._meta.db_table
        quote = self.conn.ops.quote_name
        columns = ", ".join(quote(str(f.column)) for f in fields)
        convert = self._converters(key)
        prepared = ([c(row[f.attname]) if c else row[f.attname]
                     for f, c in zip(fields, convert, strict=True)] for row in rows)
        with self.conn.cursor() as cursor:
            if self.pg:
                with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
                    for values in prepared:
                        copy.write_row(values)
            else:
                placeholders = ", ".join(["%s"] * len(fields))
                cursor.executemany(f"INSERT INTO {quote(table)} ({columns}) "
                                   f"VALUES ({placeholders})", list(prepared))


def _client_facts(client_ids: Sequence[int]) -> dict[int, Any]:
    """ClientFacts of the pool (at most 20,000 clients), read in one query."""
    from django.db import connection

    from estafeta.clients.selectors import ClientFacts

    out: dict[int, Any] = {}
    wanted = set(client_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.anonymised_at IS NOT NULL, s.code, t.code, c.key_account "
            "FROM clients_client c "
            "LEFT JOIN clients_segment s ON s.id = c.segment_id "
            "LEFT JOIN clients_territory t ON t.id = c.territory_id")
        for pk, anonymised, segment, territory, key_account in cursor.fetchall():
            if pk in wanted:
                out[int(pk)] = ClientFacts(int(pk), bool(anonymised), segment, territory,
                                           bool(key_account))
    return out


if __name__ == "__main__":
    main()
