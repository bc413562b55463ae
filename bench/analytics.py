"""Analytics at scale (issue 5): a million tickets with full histories, and the dashboards' TTFB.

    DATABASE_URL=postgres://.../est_bench python bench/analytics.py build [--tickets 1000000]
    DATABASE_URL=postgres://.../est_bench python bench/analytics.py measure [--repeat 5]
    DATABASE_URL=postgres://.../est_bench python bench/analytics.py all

``build`` makes the database in three parts (PostgreSQL only):

1. **The base, through the services**: the demo dealership (``build_demo``) with ``--months``
   (default 14) of history ending now, so every ticket has a real life written by the services:
   stage moves forward and back, checklist entries, calls, emails and meetings, quotes, invoices
   and contracts, reassignments, won, lost, void and reopened tickets, handovers.
2. **The department, through the services**: ``--groups`` copies (default: one per 10,000
   tickets) of the dealership's heads, sellers and operator with their teams (``user_create``,
   ``team_create``, ``user_deactivate`` for the seller who left). The director and the admin are
   not copied: the director sees the whole company.
3. **Replicas by SQL COPY**: round ``k`` copies every base ticket once with all its rows
   (ticket, stage visits, tasks, activities, documents, checklist entries, events), people and
   teams replaced by those of group ``k % groups``, fresh ids (blocks reserved from each table's
   own sequence), fresh ticket numbers from the per-prefix-and-year sequences ``ticket_create``
   draws from, fresh document numbers (``<base number>/<round>``), and every id inside the event
   payloads and checklist snapshots (tasks, activities, documents, people, teams, ticket and
   document numbers) rewritten; a payload key holding an id this script does not know is refused
   rather than copied stale. Events are re-chained per ticket stream with the project's own
   ``EventFacts.digest``; one ``checkpoint_create()`` at the end seals the new heads. Dates are
   the base ticket's (the base covers ``--months`` months, so a 12-month window is populated).
   Clients are shared with the base (the demo's ~600), not copied. Intake records, mail
   messages and duplicate flags are not copied either: a replica's ``intake.received`` event
   names no record (``"record": null``); the analytics do not read them.

``measure`` serves the database with ``estafeta serve --workers 2`` (gunicorn), signs in as the
director and as a head of a copied group, and GETs the dashboard ``--repeat`` times each: the
director for the last 12 whole months, the head with the default period (their teams). It prints
time to first byte p50/max, total time and size, and whether the rollups were ready. ``rebuild``
runs ``estafeta analytics rebuild`` (the rollups, when this checkout has them: a bulk load
bypasses the services that keep them in step) and prints its time and peak memory; ``measure
--rebuild`` runs it before measuring; ``all`` builds, measures, rebuilds and measures again.
``sections`` shows where a dashboard's time goes: in-process, seconds per card and for the
rendering (the director for 12 months and this month, the head this month; a warm second run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
HEAD_PASSWORD = "Bench-pass-2026!"  # noqa: S105 - a synthetic benchmark database
CLONE = "b5g{group:03d}-{username}"
TABLES = (  # key, table, the column that ties a row to its base ticket (through which table)
    ("ticket", "tickets_ticket", "id"),
    ("visit", "tickets_stagevisit", "ticket_id"),
    ("task", "tasks_task", "ticket_id"),
    ("activity", "tickets_activity", "ticket_id"),
    ("document", "tickets_document", "ticket_id"),
    ("entry", "tickets_checklistentry", "visit_id"),
    ("event", "history_event", "ticket_id"),
)
JSON_COLUMNS = {"payload", "checklist_snapshot", "evidence"}
PEOPLE_COLUMNS = {"owner_id", "executor_id", "assignee_id", "actor_id", "done_by_id",
                  "closed_by_id", "entered_by_id", "created_by_id", "performed_by_id",
                  "issued_by_id"}
# Columns copied as they are: shared configuration, the client, facts of the row itself.
KEPT_COLUMNS = {
    "ticket": {"status", "channel", "subject", "description", "amount", "currency", "close_note",
               "created_at", "closed_at", "updated_at", "client_id", "lost_reason_id",
               "pipeline_id", "stage_id", "version_id"},
    "visit": {"seq", "kind", "entered_at", "closed_at", "override", "stage_id", "paused_at",
              "sla_due_at", "sla_left", "sla_risk_at", "sla_risk_left"},
    "task": {"kind", "title", "due_at", "status", "result", "created_at", "done_at"},
    "activity": {"kind", "direction", "outcome", "duration_seconds", "occurred_at", "note",
                 "source", "created_at"},
    "document": {"kind", "amount", "currency", "issued_at"},
    "entry": {"done_at", "override", "item_id"},
    "event": {"seq", "type", "occurred_at", "recorded_at"},
}
# Payload keys: which ids they hold.
PEOPLE_KEYS = {"owner", "executor", "assignee", "by"}
TASK_LIST_KEYS = {"tasks", "cancelled_tasks"}
ID_OBJECT_KEYS = {"task": "task", "successor": "task", "activity": "activity",
                  "follow_up": "task"}
PLAIN_INT_KEYS = {"duration", "version", "client", "evidence"}
# Ids of rows this bench does not copy (intake records): a replica's event names none.
NOT_COPIED_KEYS = {"record"}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()


# --- 1 and 2: the base and the department, through the services ---------------------------------


def ensure_database() -> None:
    """Create the database if it is not there, and bring its schema up to date."""
    import psycopg
    from django.core.management import call_command
    from django.db import connection, utils

    params = connection.settings_dict
    try:
        connection.ensure_connection()
    except utils.OperationalError:  # most likely: it does not exist
        with psycopg.connect(host=params["HOST"] or None, port=params["PORT"] or None,
                             user=params["USER"] or None, password=params["PASSWORD"] or None,
                             dbname="postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{params["NAME"]}"')
        say(f"created database {params['NAME']}")
    call_command("migrate", interactive=False, verbosity=0)


def build_base(months: float, scale: float) -> dict[str, Any]:
    from estafeta.demo.builder import build_demo, demo_exists

    if demo_exists():
        say("the demo dealership is there already: it is the base")
        return {"base_seconds": 0.0}
    say(f"building the base: the demo dealership, {months:g} months, scale {scale:g} "
        "(through the services)...")
    started = time.monotonic()
    result = build_demo(months=months, scale=scale, progress=say)
    say(result.summary())
    return {"base_seconds": round(time.monotonic() - started, 1)}


def demo_people() -> dict[str, Any]:
    """The demo's people to copy (heads, sellers, operator) and its teams."""
    from estafeta.accounts.models import Team, User

    people = list(User.objects.filter(role__in=("head", "seller", "operator"))
                  .exclude(username__startswith="b5g").order_by("pk"))
    teams = list(Team.objects.exclude(name__contains=" · ").order_by("pk"))
    return {"people": people, "teams": teams}


def setup_groups(groups: int) -> list[dict[str, dict[int, int]]]:
    """``groups`` copies of the dealership's staff and teams; per group: base id -> copy id."""
    from django.db import transaction

    from estafeta.accounts.models import Team, User
    from estafeta.accounts.services import team_create, user_create, user_deactivate

    demo = demo_people()
    people, teams = demo["people"], demo["teams"]
    heads = [p for p in people if p.role == "head"]
    existing = dict(User.objects.filter(username__startswith="b5g").values_list("username", "pk"))
    existing_teams = dict(Team.objects.filter(name__contains=" · ").values_list("name", "pk"))
    out = []
    started = time.monotonic()
    made = 0
    for g in range(groups):
        users: dict[int, int] = {}
        team_map: dict[int, int] = {}
        with transaction.atomic():
            def copy(person: Any, team: Any = None, g: int = g) -> int:
                nonlocal made
                name = CLONE.format(group=g, username=person.username)
                if name not in existing:
                    user = user_create(actor=None, username=name, role=person.role,
                                       password=None, team=team, first_name=person.first_name,
                                       last_name=f"{person.last_name} ({g + 1})")
                    existing[name] = user.pk
                    made += 1
                return existing[name]

            for head in heads:
                users[head.pk] = copy(head)
            # A head joins the first team made with them: make the one they belong to first.
            for team in sorted(teams, key=lambda t: 0 if any(
                    h.team_id == t.pk and h.pk == t.head_id for h in heads) else 1):
                name = f"{team.name} · {g + 1:03d}"
                if name not in existing_teams:
                    head = User.objects.get(pk=users[team.head_id])
                    existing_teams[name] = team_create(actor=None, name=name, head=head).pk
                team_map[team.pk] = existing_teams[name]
            for person in people:
                if person.role == "head":
                    continue
                team = (Team.objects.get(pk=team_map[person.team_id])
                        if person.team_id else None)
                users[person.pk] = copy(person, team)
                if not person.is_active:
                    clone = User.objects.get(pk=users[person.pk])
                    if clone.is_active:
                        user_deactivate(actor=None, user=clone, reason="as in the base")
        out.append({"users": users, "teams": team_map})
        if (g + 1) % 20 == 0:
            say(f"  {g + 1} groups of staff ({made} users made, "
                f"{time.monotonic() - started:.0f}s)")
    return out


# --- 3: replicas ----------------------------------------------------------------------------------


class Unknown(SystemExit):
    pass


class Round:
    """The maps of one replica round: base id -> new id, per kind, and the names."""

    def __init__(self, ids: dict[str, dict[int, int]], people: dict[int, int],
                 teams: dict[int, int], numbers: dict[str, str]) -> None:
        self.ids = ids
        self.people = people
        self.teams = teams
        self.numbers = numbers  # ticket and document numbers, base -> new

    def person(self, pk: int | None) -> int | None:
        return None if pk is None else self.people.get(pk, pk)

    def value(self, key: str, v: Any) -> Any:
        """A payload (or snapshot, or evidence) value under ``key``, its ids rewritten."""
        if v is None or isinstance(v, bool | float):
            return v
        if isinstance(v, int):
            if key in NOT_COPIED_KEYS:
                return None
            if key in PEOPLE_KEYS or key in ("to", "from"):
                return self.people.get(v, v)
            if key in ("task", "activity", "document", "escalation"):
                kind = key
                if kind not in self.ids or v not in self.ids[kind]:
                    raise Unknown(f"a payload names {key} {v}, which is not a row of its ticket")
                return self.ids[kind][v]
            if key == "team":
                return self.teams.get(v, v)
            if key in PLAIN_INT_KEYS:
                return v
            raise Unknown(f"payload key {key!r} holds a number this bench does not know how to "
                          "copy: teach bench/analytics.py what it refers to")
        if isinstance(v, str):
            return self.numbers.get(v, v) if key in ("number", "duplicate_of", "evidence") else v
        if isinstance(v, list):
            if key in TASK_LIST_KEYS:
                return [self.ids["task"][x] for x in v]
            return [self.value(key, x) for x in v]
        if isinstance(v, dict):
            id_kind = ID_OBJECT_KEYS.get(key)
            out = {}
            for k, x in v.items():
                if k == "id" and id_kind:
                    out[k] = self.ids[id_kind][x]
                elif k == "sha256":
                    out[k] = x
                else:
                    out[k] = self.value(k, x)
            return out
        raise Unknown(f"payload key {key!r} holds a {type(v).__name__}")


class Replicator:
    def __init__(self, base_ids: list[int]) -> None:
        from django.db import connection

        self.conn = connection
        self.base: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, list[str]] = {}
        self.order: dict[str, list[int]] = {}  # base ids of each kind, in id order
        self.tables = {key: table for key, table, _ in TABLES}
        low, high = min(base_ids), max(base_ids)
        with connection.cursor() as cursor:
            for key, table, by in TABLES:
                if key == "entry":
                    where = ("visit_id IN (SELECT id FROM tickets_stagevisit "
                             "WHERE ticket_id BETWEEN %s AND %s)")
                elif key == "event":
                    where = "ticket_id BETWEEN %s AND %s AND stream LIKE 'ticket:%%'"
                else:
                    where = f"{by} BETWEEN %s AND %s"
                order = "ticket_id, seq" if key == "event" else "id"
                cursor.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY {order}",
                               [low, high])
                self.columns[key] = [d.name for d in cursor.description]
                # Django's PostgreSQL backend reads jsonb as its text: decode it here.
                jsons = [i for i, d in enumerate(cursor.description) if d.name in JSON_COLUMNS]
                self.base[key] = [tuple(json.loads(v) if i in jsons and v is not None else v
                                        for i, v in enumerate(r)) for r in cursor.fetchall()]
                self.order[key] = sorted(r[0] for r in self.base[key])
        wanted = set(base_ids)
        self._check_columns()
        col = {key: {c: i for i, c in enumerate(cols)} for key, cols in self.columns.items()}
        self.col = col
        # Rows of other tickets cannot be in the range: the base is the first tickets made.
        stray = [r[0] for r in self.base["ticket"] if r[0] not in wanted]
        if stray:
            raise SystemExit(f"tickets {stray[:5]} lie among the base ids but are not base")
        self.numbers = {r[col["ticket"]["number"]]: r[0] for r in self.base["ticket"]}
        self.doc_numbers = [r[col["document"]["number"]] for r in self.base["document"]]
        self._refuse_other_rows(low, high)

    def _check_columns(self) -> None:
        for key, cols in self.columns.items():
            known = KEPT_COLUMNS[key] | PEOPLE_COLUMNS | {
                "id", "ticket_id", "visit_id", "task_id", "team_id", "duplicate_of_id",
                "merged_into_id",
                "number", "checklist_snapshot", "evidence", "stream", "payload", "prev_hash",
                "hash"}
            unknown = [c for c in cols if c not in known]
            if unknown:
                raise SystemExit(f"{self.tables[key]} has columns {unknown} that this bench does "
                                 "not know how to copy")

    def _refuse_other_rows(self, low: int, high: int) -> None:
        with self.conn.cursor() as cursor:
            for table in ("control_escalation", "notifications_notification"):
                cursor.execute(f"SELECT count(*) FROM {table} "
                               "WHERE ticket_id BETWEEN %s AND %s", [low, high])
                n = cursor.fetchone()[0]
                if n and table == "control_escalation":
                    raise SystemExit(f"the base has {n} escalations: not copied by this bench")

    @property
    def size(self) -> int:
        return len(self.base["ticket"])

    def _reserve(self, table: str, n: int) -> int:
        """The first of ``n`` consecutive ids from the table's own sequence (the bench is the
        only writer while it builds)."""
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            seq = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [seq])
            first = int(cursor.fetchone()[0])
            if n > 1:
                cursor.execute("SELECT setval(%s, %s)", [seq, first + n - 1])
            return first

    def _serials(self, prefix: str, year: int, n: int) -> int:
        from estafeta.core.db import sequence_next

        name = f"estafeta_ticket_{prefix.lower()}_{year}"
        first = sequence_next(name)  # creates the sequence if this year had none
        if n > 1:
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT setval(%s, %s)", [name, first + n - 1])
        return first

    def replicate(self, round_no: int, group: dict[str, dict[int, int]], limit: int) -> int:
        """One round: every base ticket (the first ``limit``) copied once. Returns tickets made."""
        from estafeta.domain.hashchain import GENESIS, EventFacts
        from estafeta.domain.numbering import parse_number

        col = self.col
        tickets = self.base["ticket"][:limit]
        kept = {r[0] for r in tickets}
        rows: dict[str, list[tuple[Any, ...]]] = {"ticket": tickets}
        visits = [r for r in self.base["visit"] if r[col["visit"]["ticket_id"]] in kept]
        rows["visit"] = visits
        kept_visits = {r[0] for r in visits}
        for key in ("task", "activity", "document", "event"):
            rows[key] = [r for r in self.base[key] if r[col[key]["ticket_id"]] in kept]
        rows["entry"] = [r for r in self.base["entry"]
                         if r[col["entry"]["visit_id"]] in kept_visits]

        ids: dict[str, dict[int, int]] = {}
        for key, table, _ in TABLES:
            base = sorted(r[0] for r in rows[key])
            first = self._reserve(table, len(base)) if base else 0
            ids[key] = {old: first + i for i, old in enumerate(base)}
        # Ticket numbers from the sequence of each base ticket's prefix and year.
        wanted: dict[tuple[str, int], list[str]] = defaultdict(list)
        for r in tickets:
            number = r[col["ticket"]["number"]]
            parsed = parse_number(number)
            assert parsed is not None, number
            wanted[parsed[:2]].append(number)
        numbers: dict[str, str] = {}
        for (prefix, year), olds in wanted.items():
            first = self._serials(prefix, year, len(olds))
            for i, old in enumerate(olds):
                numbers[old] = f"{prefix}-{year:04d}-{first + i:06d}"
        for old in self.doc_numbers:
            numbers[old] = f"{old}/{round_no}"
        maps = Round(ids, group["users"], group["teams"], numbers)
        tmap, vmap, kmap = ids["ticket"], ids["visit"], ids["task"]

        def people_and(key: str, extra: dict[str, Callable[[Any], Any]]
                       ) -> Callable[[tuple[Any, ...]], list[Any]]:
            names = self.columns[key]
            funcs: list[Callable[[Any], Any] | None] = []
            for name in names:
                if name == "id":
                    funcs.append(ids[key].__getitem__)
                elif name in extra:
                    funcs.append(extra[name])
                elif name in PEOPLE_COLUMNS:
                    funcs.append(maps.person)
                else:
                    funcs.append(None)

            def convert(row: tuple[Any, ...]) -> list[Any]:
                return [f(v) if f and v is not None else v
                        for f, v in zip(funcs, row, strict=True)]
            return convert

        def snapshot(v: Any) -> str:
            return json.dumps(maps.value("checklist", v))

        def evidence(v: Any) -> str:
            return json.dumps(maps.value("evidence", v))

        convert = {
            "ticket": people_and("ticket", {
                "number": numbers.__getitem__,
                "team_id": lambda v: maps.teams.get(v, v),
                "duplicate_of_id": lambda v: tmap.get(v, v),
                "merged_into_id": lambda v: tmap.get(v, v)}),
            "visit": people_and("visit", {"ticket_id": tmap.__getitem__,
                                          "checklist_snapshot": snapshot}),
            "task": people_and("task", {"ticket_id": tmap.__getitem__,
                                        "visit_id": vmap.__getitem__}),
            "activity": people_and("activity", {"ticket_id": tmap.__getitem__,
                                                "task_id": kmap.__getitem__}),
            "document": people_and("document", {"ticket_id": tmap.__getitem__,
                                                "number": numbers.__getitem__}),
            "entry": people_and("entry", {"visit_id": vmap.__getitem__,
                                          "evidence": evidence}),
        }
        for key in ("ticket", "visit", "task", "activity", "document", "entry"):
            self._write(key, (convert[key](r) for r in rows[key]))
        self._write("event", self._events(rows["event"], maps, GENESIS, EventFacts))
        return len(tickets)

    def _events(self, events: list[tuple[Any, ...]], maps: Round, genesis: str,
                facts: Any) -> Iterable[list[Any]]:
        c = self.col["event"]
        i_id, i_stream, i_seq, i_type = c["id"], c["stream"], c["seq"], c["type"]
        i_at, i_actor, i_owner, i_ticket = c["occurred_at"], c["actor_id"], c["owner_id"], \
            c["ticket_id"]
        i_payload, i_prev, i_hash = c["payload"], c["prev_hash"], c["hash"]
        tmap, emap = maps.ids["ticket"], maps.ids["event"]
        head = genesis
        stream = ""
        for r in events:
            new = list(r)
            ticket = tmap[r[i_ticket]]
            s = f"ticket:{ticket}"
            if s != stream:
                stream, head = s, genesis
            payload = maps.value("payload", r[i_payload])
            actor, owner = maps.person(r[i_actor]), maps.person(r[i_owner])
            new[i_id], new[i_ticket], new[i_stream] = emap[r[i_id]], ticket, s
            new[i_actor], new[i_owner] = actor, owner
            new[i_payload] = json.dumps(payload)
            new[i_prev] = head
            head = new[i_hash] = facts(s, r[i_seq], head, r[i_type], r[i_at], actor, owner,
                                       payload).digest()
            yield new

    def _write(self, key: str, rows: Iterable[list[Any]]) -> None:
        table = self.tables[key]
        columns = ", ".join(f'"{c}"' for c in self.columns[key])
        with self.conn.cursor() as cursor, \
                cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for values in rows:  # JSON columns come as text (json.dumps) from the converters
                copy.write_row(values)


def _skip_fk_triggers() -> bool:
    """Skip the per-row foreign-key triggers in this session (a bulk-load setting: nothing is
    dropped; ``verify_references`` checks every key set-wise afterwards)."""
    from django.db import connection, utils

    try:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
    except utils.DatabaseError:
        say("cannot skip the foreign-key triggers (not a superuser): loading with them")
        return False
    return True


def verify_references() -> dict[str, int]:
    """Every foreign key of the copied tables, checked with one anti-join each: the rows whose
    reference points at nothing (none, when the load is right)."""
    from django.db import connection

    tables = [table for _, table, _ in TABLES]
    out = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, "
            "f.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1] "
            "WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s) "
            "AND array_length(c.conkey, 1) = 1 ORDER BY 1, 2", [tables])
        for child, column, parent, key in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{child}" c WHERE c."{column}" IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{parent}" p WHERE p."{key}" = c."{column}")')
            n = int(cursor.fetchone()[0])
            if n:
                out[f"{child}.{column}"] = n
    return out


def grow(target: int, groups: int, rounds_per_commit: int, fk_checks: bool) -> dict[str, Any]:
    from django.db import connection, transaction

    from estafeta.accounts.models import User
    from estafeta.history.services import checkpoint_create
    from estafeta.tickets.models import Ticket

    demo = demo_people()
    base_people = [p.pk for p in demo["people"]] + list(
        User.objects.filter(role__in=("director", "admin")).values_list("pk", flat=True))
    base_ids = sorted(Ticket.objects.filter(owner_id__in=base_people)
                      .values_list("pk", flat=True))
    have = Ticket.objects.count()
    out: dict[str, Any] = {"base_tickets": len(base_ids)}
    if have >= target:
        say(f"{have:,} tickets already: nothing to grow")
        return out
    started = time.monotonic()
    say(f"setting up {groups} groups of staff (through the services)...")
    group_maps = setup_groups(groups)
    out["setup_seconds"] = round(time.monotonic() - started, 1)
    replicator = Replicator(base_ids)
    size = replicator.size
    done_rounds = -(-(have - size) // size)  # a partial last round counts: numbers stay unique
    say(f"replicating: base {size:,} tickets ({len(replicator.base['event']):,} events), "
        f"{have:,} tickets now, {target:,} wanted")
    fk_skipped = not fk_checks and _skip_fk_triggers()
    began = time.monotonic()
    last = began
    made = 0
    round_no = done_rounds
    while have + made < target:
        with transaction.atomic():
            for _ in range(rounds_per_commit):
                need = target - have - made
                if need <= 0:
                    break
                round_no += 1
                made += replicator.replicate(round_no, group_maps[(round_no - 1) % groups],
                                             min(size, need))
        if time.monotonic() - last > 15:
            last = time.monotonic()
            rate = made / (last - began)
            left = (target - have - made) / rate
            say(f"  {have + made:,} tickets ({rate:,.0f}/s, about {left / 60:.1f} min left)")
    out["replicate_seconds"] = round(time.monotonic() - began, 1)
    out["tickets_per_second"] = round(made / max(out["replicate_seconds"], 0.1))
    if fk_skipped:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
        say("verifying every foreign key of the copied tables (the load skipped the per-row "
            "checks)...")
        t = time.monotonic()
        out["dangling_references"] = verify_references()
        out["verify_references_seconds"] = round(time.monotonic() - t, 1)
        if out["dangling_references"]:
            raise SystemExit(f"dangling references: {out['dangling_references']}")
    say("sealing a checkpoint...")
    t = time.monotonic()
    checkpoint_create()
    out["checkpoint_seconds"] = round(time.monotonic() - t, 1)
    say("ANALYZE...")
    t = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    out["analyze_seconds"] = round(time.monotonic() - t, 1)
    return out


def counts() -> dict[str, Any]:
    from django.db import connection

    out: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for key, table, _ in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            out[key] = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM accounts_user")
        out["users"] = int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        out["database_size"] = cursor.fetchone()[0]
    return out


def verify_sample(tickets: int) -> dict[str, Any]:
    """Walk the hash chains of ``tickets`` random tickets with the project's ``ChainWalker``
    (what ``estafeta audit verify`` does for every stream, without the checkpoints)."""
    from django.db import connection

    from estafeta.domain.hashchain import ChainWalker, EventFacts
    from estafeta.history.models import Event

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tickets_ticket ORDER BY random() LIMIT %s", [tickets])
        ids = [int(r[0]) for r in cursor.fetchall()]
    walker = ChainWalker()
    breaks = []
    for i in range(0, len(ids), 500):
        rows = (Event.objects.filter(stream__in=[f"ticket:{t}" for t in ids[i:i + 500]])
                .order_by("stream", "seq")
                .values_list("id", "stream", "seq", "prev_hash", "type", "occurred_at",
                             "actor_id", "owner_id", "payload", "hash"))
        for pk, stream, seq, prev, type_, at, actor, owner, payload, digest in rows:
            found = walker.feed(pk, EventFacts(stream, seq, prev, type_, at, actor, owner,
                                               payload), digest)
            if found is not None:
                breaks.append(str(found))
                walker = ChainWalker()  # go on with the next stream
    return {"tickets": len(ids), "streams": walker.streams, "events": walker.events,
            "breaks": breaks[:10], "seconds": round(time.monotonic() - started, 1)}


# --- the rollups, when this checkout has them -------------------------------------------------


def rebuild_command() -> list[str] | None:
    """``estafeta analytics rebuild`` if this checkout has it."""
    help_text = subprocess.run([str(BIN / "estafeta"), "help"], capture_output=True, text=True,
                               env=os.environ.copy()).stdout
    if re.search(r"^\s+analytics\s*$", help_text, re.MULTILINE):
        probe = subprocess.run([str(BIN / "estafeta"), "analytics", "--help"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and "rebuild" in probe.stdout:
            return [str(BIN / "estafeta"), "analytics", "rebuild"]
    return None


def timed(command: list[str]) -> dict[str, Any]:
    """Run a command; its wall time and peak resident memory (``wait4``)."""
    started = time.monotonic()
    process = subprocess.Popen(command)
    _pid, status, usage = os.wait4(process.pid, 0)
    return {"command": " ".join(Path(command[0]).name if i == 0 else c
                                for i, c in enumerate(command)),
            "seconds": round(time.monotonic() - started, 1),
            "peak_mib": round(usage.ru_maxrss / 1024, 1),
            "exit": os.waitstatus_to_exitcode(status)}


def run_rebuild() -> dict[str, Any] | None:
    command = rebuild_command()
    if command is None:
        say("no `estafeta analytics rebuild` in this checkout: no rollups to build")
        return None
    say("running " + " ".join(command[1:]) + "...")
    result = timed(command)
    say(f"  {result}")
    return result


# --- measuring ------------------------------------------------------------------------------------


PREPARE = r"""
import json, sys
import django
django.setup()
from estafeta.accounts.models import User
from estafeta.accounts.services import user_set_password
head = User.objects.get(username="b5g000-sokolova")
if not head.check_password(sys.argv[1]):  # once: setting it writes an event
    user_set_password(actor=None, user=head, password=sys.argv[1])
teams = list(head.headed_teams.values_list("pk", flat=True))
try:
    from estafeta.analytics.rollup import is_ready
    ready = is_ready()
except ImportError:
    ready = None
sellers = User.objects.filter(team_id__in=teams, role="seller").count()
print(json.dumps({"rollups_ready": ready, "head": head.username, "teams": teams,
                  "sellers": sellers, "director": "morozov"}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise SystemExit(f"the server did not start on port {port}")


def session_cookie(port: int, username: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    page = response.read().decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not csrf_cookie or not token:
        raise SystemExit("the login page gave no CSRF token")
    body = f"username={username}&password={password}&csrfmiddlewaretoken={token.group(1)}"
    conn.request("POST", "/login/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf_cookie.group(1)}",
        "Referer": f"http://127.0.0.1:{port}/login/"})
    response = conn.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 302 or not session:
        raise SystemExit(f"signing in as {username} failed ({response.status})")
    return f"sessionid={session.group(1)}"


def ttfb(port: int, path: str, cookie: str, repeat: int) -> dict[str, Any]:
    """GET ``path`` ``repeat`` times, one at a time: time to first byte (status line and headers
    read), total time and size."""
    firsts, totals, sizes, statuses = [], [], [], []
    server = []
    for _ in range(repeat):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie, "Accept-Language": "ru"})
        try:
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            return {"path": path, "failed": f"no answer: the connection closed after "
                    f"{time.perf_counter() - started:.1f} s (gunicorn kills a worker after 60 s)"}
        first = time.perf_counter() - started
        body = response.read()
        total = time.perf_counter() - started
        conn.close()
        timing = re.search(r"app;dur=([\d.]+)", response.getheader("Server-Timing") or "")
        if timing:
            server.append(float(timing.group(1)) / 1000)
        firsts.append(first)
        totals.append(total)
        sizes.append(len(body))
        statuses.append(response.status)
    return {"path": path, "status": sorted(set(statuses)), "runs": repeat,
            "ttfb_first_s": round(firsts[0], 3),
            "ttfb_p50_s": round(statistics.median(firsts), 3),
            "ttfb_max_s": round(max(firsts), 3),
            "ttfb_each_s": [round(x, 3) for x in firsts],  # in order: which runs were cold
            "total_p50_s": round(statistics.median(totals), 3),
            "server_p50_s": round(statistics.median(server), 3) if server else None,
            "bytes": sizes[-1]}


IN_PROCESS = r"""
import json, sys, time
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from estafeta.accounts.models import User
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(User.objects.get(username=sys.argv[1]))
with CaptureQueriesContext(connection) as queries:
    started = time.perf_counter()
    response = client.get(sys.argv[2])
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": round(seconds, 2), "status": response.status_code,
                  "bytes": len(response.content), "queries": len(queries)}))
"""


IN_PROCESS_SECONDS, IN_PROCESS_MEMORY = 600, 4 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (IN_PROCESS_MEMORY, IN_PROCESS_MEMORY))


def in_process(username: str, path: str, env: dict[str, str]) -> dict[str, Any]:
    """One GET through Django's test client (no server timeout, but at most 10 minutes and
    4 GiB of address space: the exact figures over millions of events can take far more)."""
    try:
        run = subprocess.run([str(BIN / "python"), "-c", IN_PROCESS, username, path], env=env,
                             capture_output=True, text=True, timeout=IN_PROCESS_SECONDS,
                             preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {IN_PROCESS_SECONDS} s"}
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed ({last[:200]}); limit {IN_PROCESS_MEMORY >> 30} GiB"}
    return dict(json.loads(run.stdout))


def twelve_months(today: date) -> str:
    """The last 12 whole months up to and including this one, as a date range."""
    first = date(today.year - 1, today.month, 1) + timedelta(days=31)
    first = first.replace(day=1)
    nxt = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return f"{first.isoformat()}..{(nxt - timedelta(days=1)).isoformat()}"


def measure(repeat: int, workers: int) -> dict[str, Any]:
    from estafeta.demo.builder import PASSWORD

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "estafeta.settings",
           "ESTAFETA_CONN_MAX_AGE": "600"}
    facts = json.loads(subprocess.run([str(BIN / "python"), "-c", PREPARE, HEAD_PASSWORD],
                                      env=env, check=True, capture_output=True,
                                      text=True).stdout)
    from django.utils import timezone

    period = twelve_months(timezone.localdate())
    say(f"head {facts['head']} (teams {facts['teams']}, {facts['sellers']} sellers); director "
        f"{facts['director']}, period {period}; rollups ready: {facts['rollups_ready']}")
    port = free_port()
    server = subprocess.Popen([str(BIN / "estafeta"), "serve", "--port", str(port),
                               "--workers", str(workers), "--no-migrate"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: dict[str, Any] = {"period": period, **facts}
    try:
        wait_for(port)
        director = session_cookie(port, facts["director"], PASSWORD)
        head = session_cookie(port, facts["head"], HEAD_PASSWORD)
        for name, username, path, cookie in (
                ("director, 12 months", facts["director"], f"/analytics/?period={period}",
                 director),
                ("head, default period (team)", facts["head"], "/analytics/", head),
                ("director, default period", facts["director"], "/analytics/", director)):
            figures = ttfb(port, path, cookie, repeat)
            figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
            results[name] = figures
            if "failed" in figures:
                say(f"{name}: {figures['failed']}; once more in-process (Django's test "
                    "client, no timeout)...")
                figures["in_process"] = in_process(username, path, env)
                say(f"  {figures['in_process']}")
                continue
            say(f"{name}: TTFB first {figures['ttfb_first_s']:.2f}s, p50 "
                f"{figures['ttfb_p50_s']:.2f}s, max {figures['ttfb_max_s']:.2f}s; total p50 "
                f"{figures['total_p50_s']:.2f}s; {figures['bytes']:,} bytes; "
                f"status {figures['status']}; load average {figures['load_average']}; "
                f"each {figures['ttfb_each_s']}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    return results


SECTIONS = r"""
import json, sys, time
import django
django.setup()
from django.db import connection, reset_queries
from django.test import RequestFactory
from django.template.loader import render_to_string
from estafeta.accounts.models import User
from estafeta.analytics import fast, rollup
from estafeta.analytics.access import read_cut, read_period
from estafeta.web.pages import analytics as page
user = User.objects.get(username=sys.argv[1])
query = dict(x.split("=", 1) for x in sys.argv[2].split("&") if x)
period, cut = read_period(query), read_cut(user, query)
out = {}
def timed(name, fn):
    started = time.perf_counter()
    value = fn()
    out[name] = round(time.perf_counter() - started, 3)
    return value
with rollup.memo():
    fast.no_jit()
    teams = page.Teams("") if page.by_teams(user, cut) else None
    context = {"cards": timed("cards K1-K4 K10", lambda: page.build_cards(
        period, cut, page.energy_visible(user), teams))}
    context["funnel"] = page.funnel_of(context["cards"])
    context["trend"] = timed("trend", lambda: page.trend_of(period, cut))
    context["stage_funnel"] = timed("K8", lambda: page.funnel_card(period, cut, "strict"))
    context["conversions"] = timed("K7", lambda: page.k7_card(period, cut, teams))
    context["timing"] = timed("K9", lambda: page.k9_card(user, period, cut))
    context["control"] = timed("K12", lambda: page.k12_card(period, cut, teams))
    context["growth"] = timed("growth", lambda: page.growth_card(period, cut))
    context["simple_cards"] = [timed("K5", lambda: page.k5_card(period, cut, "month")),
                               timed("K6", lambda: page.k6_card(period, cut))]
    request = RequestFactory().get("/analytics/")
    request.user = user
    html = timed("render", lambda: render_to_string("web/analytics/dashboard.html", {
        **context, "section": "analytics", "period": period, "cut": cut, "part_query": "",
        "bucket_query": "", "mode_query": "", "query": "", "filters": {}}, request=request))
out["total"] = round(sum(out.values()), 3)
out["bytes"] = len(html.encode())
print(json.dumps(out))
"""


def sections(username: str, query: str) -> dict[str, Any]:
    """Where a dashboard's time goes, in-process: seconds per card and for the rendering."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "estafeta.settings"}
    run = subprocess.run([str(BIN / "python"), "-c", SECTIONS, username, query], env=env,
                         capture_output=True, text=True, check=False)
    if run.returncode:
        raise SystemExit(run.stderr.strip().splitlines()[-1])
    return dict(json.loads(run.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("build", "rebuild", "measure", "all", "verify-sample",
                                         "sections"))
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--months", type=float, default=14, help="history of the base")
    parser.add_argument("--scale", type=float, default=1.0, help="the base's demo scale")
    parser.add_argument("--groups", type=int, default=0,
                        help="copies of the staff (default: one per 10,000 tickets)")
    parser.add_argument("--rounds-per-commit", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5000,
                        help="verify-sample: tickets whose chains are walked")
    parser.add_argument("--fk-checks", action="store_true",
                        help="keep the per-row foreign-key triggers while loading (slower)")
    parser.add_argument("--repeat", type=int, default=5, help="GETs per dashboard")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true",
                        help="measure: run `estafeta analytics rebuild` first")
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("this bench runs on PostgreSQL (set DATABASE_URL)")
    result: dict[str, Any] = {"database": connection.settings_dict["NAME"]}
    if args.what in ("build", "all"):
        started = time.monotonic()
        ensure_database()
        result.update(build_base(args.months, args.scale))
        groups = args.groups or max(1, args.tickets // 10_000)
        result.update(grow(args.tickets, groups, args.rounds_per_commit, args.fk_checks))
        result["build_seconds"] = round(time.monotonic() - started, 1)
        result["build_peak_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["counts"] = counts()
        say(json.dumps(result["counts"]))
    if args.what == "verify-sample":
        result["chains"] = verify_sample(args.sample)
    if args.what == "sections":  # where the time goes, in-process (a warm second run)
        from django.utils import timezone

        period = twelve_months(timezone.localdate())
        for name, who, query in (("director, 12 months", "morozov", f"period={period}"),
                                 ("director, this month", "morozov", ""),
                                 ("head, this month", "b5g000-sokolova", "")):
            sections(who, query)
            result[name] = sections(who, query)
            say(f"{name}: {result[name]}")
    connection.close()
    if args.what == "all":  # the figures before the rollups, then after
        result["measure_before"] = measure(args.repeat, args.workers)
    if args.what in ("rebuild", "all") or args.rebuild:
        result["rebuild"] = run_rebuild()
    if args.what in ("measure", "all"):
        result["measure"] = measure(args.repeat, args.workers)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
