"""Synthetic data sets for benchmarks: ``estafeta seed --tickets N``.

Tickets are made through the services people use (``ticket_create``, ``checklist_item_complete``,
``stage_close``, ``task_complete``, ``document_issue``, ``ticket_close_won``/``_lost``), each step
at its moment of the past year (``clock.frozen``). One ticket's whole life is written before the
next begins and nothing is kept per ticket, so memory stays flat whatever ``N`` is. Most tickets
end won or lost; those created in the last days (and a few stalled older ones) stay open at the
stage they reached, with a next task.

The setup (a synthetic sales department with about one seller per thousand tickets, its pipeline
and a pool of clients) is idempotent: seeding again adds tickets and reuses the rest.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import random
import signal
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, connections, transaction
from django.utils import timezone

from estafeta.accounts.models import Team, User
from estafeta.accounts.services import team_create, user_create
from estafeta.clients.models import Client, Segment, Territory
from estafeta.clients.services import classification_ensure, client_create
from estafeta.core import clock
from estafeta.domain.codes import Role, TaskStatus
from estafeta.history.services import checkpoint_create
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, task_complete, task_reschedule
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    document_issue,
    stage_close,
    ticket_close_lost,
    ticket_close_won,
    ticket_create,
)

from .builder import (
    CARS,
    SEGMENTS,
    TERRITORIES,
    add_working_days,
    ddmmyyyy,
    last_working,
    mobile,
    next_working,
    person_email,
    person_name,
    rub,
)

PIPELINE = "seed-sales"
OPERATOR = "seed-operator"
TEAM_NAME, HEAD_NAME, SELLER_NAME = "Seed {:03d}", "seed-head-{:03d}", "seed-seller-{:04d}"
TEAM_SIZE = 10
TICKETS_PER_SELLER = 1000
MIN_SELLERS, MAX_SELLERS = 2, 1000
CLIENTS_PER_TICKET, MIN_CLIENTS, MAX_CLIENTS = 0.2, 50, 20_000
SPAN = timedelta(days=365)
STALLED = 0.02  # old tickets nobody moves any more: open, with an overdue task
NEGLECTED = 0.15  # of the tickets still open at the end: no recent touch, task overdue

PIPELINE_YAML = """\
# Written by `estafeta seed` for benchmarks: a plain sales funnel of four stages.
code: seed-sales
name: Синтетическая воронка (нагрузочные данные)
description: Создаётся командой estafeta seed; её заявки нужны для нагрузочных тестов.
number_prefix: B
stages:
  - code: new
    name: Новая заявка
    sla: 2h
    probability: 10
    executor: {rule: keep_owner}
    next_task: {kind: call, title: Связаться с клиентом, due: 2h}
    checklist:
      - {code: need, title: Потребность клиента, evidence: text}
  - code: qualification
    name: Квалификация
    sla: 1d
    probability: 25
    executor: {rule: keep_owner}
    next_task: {kind: call, title: Уточнить бюджет, due: 1d}
    checklist:
      - {code: budget, title: Бюджет клиента, evidence: money}
  - code: quote
    name: Коммерческое предложение
    sla: 1d
    probability: 50
    executor: {rule: keep_owner}
    next_task: {kind: quote, title: Подготовить и отправить КП, due: 1d}
    checklist:
      - {code: quote_number, title: Номер КП, evidence: document_number}
  - code: contract
    name: Договор
    sla: 2d
    probability: 80
    executor: {rule: keep_owner}
    next_task: {kind: contract, title: Подписать договор, due: 2d}
    checklist:
      - {code: contract_number, title: Номер договора, evidence: document_number}
      - {code: signed_on, title: Дата подписания, evidence: date}
  - code: won
    name: Сделка
    semantic: won
  - code: lost
    name: Отказ
    semantic: lost
lost_reasons:
  - {code: no_contact, title: Не выходит на связь}
  - {code: postponed, title: Отложил покупку}
  - {code: price, title: Не устроила цена}
  - {code: competitor, title: Купил у конкурента}
"""


def sellers_for(tickets: int) -> int:
    """About one seller per thousand tickets: a seller's open work then looks like real life."""
    return min(MAX_SELLERS, max(MIN_SELLERS, math.ceil(tickets / TICKETS_PER_SELLER)))


def clients_for(tickets: int) -> int:
    return min(MAX_CLIENTS, max(MIN_CLIENTS, int(tickets * CLIENTS_PER_TICKET)))


# --- setup -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSetup:
    operator_id: int
    seller_ids: list[int]
    client_ids: list[int]
    created: dict[str, int]


def seed_setup(*, tickets: int, seed: int = 1, end: datetime | None = None) -> SeedSetup:
    """Make sure the synthetic department, its pipeline and enough clients exist."""
    end = end or timezone.now()
    rng = random.Random(f"seed-setup:{seed}")  # noqa: S311 - synthetic data, not secrets
    created = {"users": 0, "teams": 0, "clients": 0, "pipeline versions": 0}
    wanted = sellers_for(tickets)
    with clock.frozen(end - SPAN - timedelta(days=7)), transaction.atomic():
        operator = User.objects.filter(username=OPERATOR).first()
        if operator is None:
            operator = user_create(actor=None, username=OPERATOR, role=Role.OPERATOR,
                                   password=None, first_name="Оператор", last_name="(seed)")
            created["users"] += 1
        teams: list[Team] = []
        for k in range(1, math.ceil(wanted / TEAM_SIZE) + 1):
            team = Team.objects.filter(name=TEAM_NAME.format(k)).first()
            if team is None:
                head = User.objects.filter(username=HEAD_NAME.format(k)).first()
                if head is None:
                    head = user_create(actor=None, username=HEAD_NAME.format(k), role=Role.HEAD,
                                       password=None, first_name="Руководитель",
                                       last_name=f"(seed {k})")
                    created["users"] += 1
                team = team_create(actor=None, name=TEAM_NAME.format(k), head=head)
                created["teams"] += 1
            teams.append(team)
        existing = dict(User.objects.filter(username__startswith="seed-seller-")
                        .values_list("username", "pk"))
        seller_ids = []
        for j in range(1, wanted + 1):
            username = SELLER_NAME.format(j)
            if username not in existing:
                user = user_create(actor=None, username=username, role=Role.SELLER,
                                   password=None, team=teams[(j - 1) // TEAM_SIZE],
                                   first_name="Продавец", last_name=f"(seed {j})")
                existing[username] = user.pk
                created["users"] += 1
            seller_ids.append(existing[username])
        if pipeline_load(actor=None, text=PIPELINE_YAML, source="seed").created:
            created["pipeline versions"] += 1
        segments = [classification_ensure(actor=None, model=Segment, code=code, name=name)
                    for code, name in SEGMENTS]
        territories = [classification_ensure(actor=None, model=Territory, code=code, name=name)
                       for code, name, _ in TERRITORIES]
        client_ids = list(Client.objects.filter(created_by=operator).order_by("pk")
                          .values_list("pk", flat=True)[:clients_for(tickets)])
        for _ in range(clients_for(tickets) - len(client_ids)):
            name = person_name(rng)
            client = client_create(actor=operator, name=name.full, phones=[mobile(rng)],
                                   emails=[person_email(rng, name)], segment=segments[0]
                                   if rng.random() < 0.85 else rng.choice(segments[1:]),
                                   territory=rng.choice(territories))
            client_ids.append(client.pk)
            created["clients"] += 1
    return SeedSetup(operator.pk, seller_ids, client_ids, created)


# --- one ticket's life -------------------------------------------------------------------------


@dataclass
class _Life:
    ticket: Ticket | None = None
    stalled: bool = False


class Seeder:
    """Writes tickets ``index = first, first + step, ...`` below ``total`` (one worker's share)."""

    def __init__(self, setup: SeedSetup, *, total: int, seed: int, end: datetime,
                 light: bool = False) -> None:
        self.setup = setup
        self.light = light
        self.total = total
        self.seed = seed
        self.end = end
        self.operator = User.objects.get(pk=setup.operator_id)
        self.sellers = {u.pk: u for u in User.objects.filter(pk__in=setup.seller_ids)}
        self.rng = random.Random()  # noqa: S311 - synthetic data, not secrets

    def run(self, first: int, step: int, report: Callable[[int], object], batch: int) -> int:
        done = 0
        indices = range(first, self.total, step)
        for start in range(0, len(indices), batch):
            chunk = indices[start:start + batch]
            with transaction.atomic():  # fewer commits; services nest as savepoints
                for index in chunk:
                    if self.light:
                        self.light_ticket(index)
                    else:
                        self.ticket(index)
            done += len(chunk)
            report(len(chunk))
        return done

    def ticket(self, index: int) -> None:
        rng = self.rng
        rng.seed(self.seed * 1_000_003 + index)
        span = SPAN.total_seconds()
        created = self.end - SPAN + timedelta(seconds=span * (index + rng.random()) / self.total)
        created = next_working(created, rng)
        if created > self.end - timedelta(minutes=10):
            created = last_working(self.end - timedelta(minutes=10), rng)
        life = _Life()
        steps = self._story(index, created, life)
        moment: datetime | None = next(steps)
        last = created
        while moment is not None and moment <= self.end:
            last = moment
            with clock.frozen(moment):
                moment = next(steps, None)
        if moment is None or life.ticket is None:
            return  # the story ended: won or lost
        steps.close()  # "now" came first: the ticket stays open where it is
        ticket = Ticket.objects.get(pk=life.ticket.pk)
        if not ticket.is_open or life.stalled or rng.random() < NEGLECTED:
            return
        touch = max(last_working(self.end - timedelta(minutes=rng.randint(0, 240)), rng),
                    last + timedelta(minutes=10))
        if touch < self.end:
            with clock.frozen(touch):
                self._touch(ticket)

    def light_ticket(self, index: int) -> None:
        """Only the creation (number, first stage, owner, first task, event): what a
        million-ticket benchmark needs, about ten times faster than a whole life."""
        rng = self.rng
        rng.seed(self.seed * 1_000_003 + index)
        span = SPAN.total_seconds()
        created = self.end - SPAN + timedelta(seconds=span * (index + rng.random()) / self.total)
        seller = self.sellers[self.setup.seller_ids[index % len(self.setup.seller_ids)]]
        client = Client(pk=self.setup.client_ids[rng.randrange(len(self.setup.client_ids))])
        model, _, _ = rng.choice(CARS)
        with clock.frozen(next_working(created, rng)):
            ticket_create(actor=self.operator, pipeline=PIPELINE, client=client,
                          channel=rng.choice(("phone", "email", "web_form", "walk_in")),
                          subject=f"Покупка {model}", owner=seller)

    def later(self, *, minutes: int = 0, hours: float = 0, days: int = 0) -> datetime:
        moment = clock.now() + timedelta(minutes=minutes, hours=hours)
        if days:
            moment = add_working_days(moment, days)
        return next_working(moment, self.rng)

    def _story(self, index: int, created: datetime, life: _Life
               ) -> Generator[datetime, None, None]:
        rng = self.rng
        yield created
        seller = self.sellers[self.setup.seller_ids[index % len(self.setup.seller_ids)]]
        client = Client.objects.select_related("segment", "territory").get(
            pk=self.setup.client_ids[rng.randrange(len(self.setup.client_ids))])
        model, low, high = rng.choice(CARS)
        price = round(rng.uniform(low, high) / 10_000) * 10_000
        walk_in = rng.random() < 0.6
        ticket = ticket_create(
            actor=seller if walk_in else self.operator, pipeline=PIPELINE, client=client,
            channel=rng.choice(("walk_in", "phone")) if walk_in else rng.choice(
                ("phone", "email", "web_form", "messenger")),
            subject=f"Покупка {model}", owner=None if walk_in else seller)
        life.ticket = ticket
        stall = rng.randrange(4) if rng.random() < STALLED else -1
        life.stalled = stall >= 0
        never = self.end + timedelta(days=1)

        yield self.later(minutes=rng.randint(10, 120))
        if rng.random() < 0.25:
            self._call(ticket, seller, "no_answer", self.later(hours=3))
            yield self.later(hours=3, minutes=rng.randint(0, 60))
        if rng.random() < 0.12:
            ticket_close_lost(actor=seller, ticket=ticket, reason="no_contact",
                              note="Не дозвонились")
            return
        if stall == 0:
            yield never
        self._close(ticket, seller, "new", {"need": f"{model}, бюджет до {rub(price)} ₽"})

        yield self.later(days=rng.randint(1, 3))
        if rng.random() < 0.2:
            ticket_close_lost(actor=seller, ticket=ticket,
                              reason=rng.choice(("postponed", "price")))
            return
        if stall == 1:
            yield never
        self._close(ticket, seller, "qualification", {"budget": rub(price)}, amount=price)

        yield self.later(hours=rng.randint(2, 24))
        quote = f"КП-{ticket.number}"
        document_issue(actor=seller, ticket=ticket, kind="quote", number=quote, amount=price)
        activity_log(actor=seller, ticket=ticket, kind="email", direction="out",
                     outcome="sent")
        yield self.later(days=rng.randint(1, 5))
        if rng.random() < 0.25:
            ticket_close_lost(actor=seller, ticket=ticket,
                              reason=rng.choice(("price", "competitor")))
            return
        if stall == 2:
            yield never
        self._close(ticket, seller, "quote", {"quote_number": quote})

        yield self.later(days=rng.randint(1, 4))
        if rng.random() < 0.1:
            ticket_close_lost(actor=seller, ticket=ticket, reason="competitor")
            return
        if stall == 3:
            yield never
        contract = f"Д-{ticket.number}"
        document_issue(actor=seller, ticket=ticket, kind="contract", number=contract,
                       amount=price)
        for item, evidence in (("contract_number", contract),
                               ("signed_on", ddmmyyyy(clock.now()))):
            checklist_item_complete(actor=seller, ticket=ticket, stage="contract", item=item,
                                    evidence=evidence)
        ticket_close_won(actor=seller, ticket=ticket, stage="contract", amount=price)

    def _open_tasks(self, ticket: Ticket) -> list[Task]:
        return list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("pk"))

    def _call(self, ticket: Ticket, seller: User, outcome: str, due: datetime) -> None:
        task = self._open_tasks(ticket)[-1]
        task_complete(actor=seller, task=task, contact_outcome=outcome, duration_seconds=0,
                      successor=TaskDraft(kind="call", title="Перезвонить клиенту", due_at=due))

    def _close(self, ticket: Ticket, seller: User, stage: str, items: dict[str, Any],
               amount: int | None = None) -> None:
        """Checklist, stage close, then the work that led here marked done (see the demo)."""
        for item, evidence in items.items():
            checklist_item_complete(actor=seller, ticket=ticket, stage=stage, item=item,
                                    evidence=evidence)
        before = self._open_tasks(ticket)
        stage_close(actor=seller, ticket=ticket, stage=stage, amount=amount)
        for task in before:
            task_complete(actor=seller, task=task, contact_outcome="connected"
                          if task.kind == "call" else None,
                          duration_seconds=self.rng.randint(60, 600)
                          if task.kind == "call" else None)

    def _touch(self, ticket: Ticket) -> None:
        """The owner's last touch before "now": overdue calls done with a follow-up planned,
        overdue paperwork moved to the coming days."""
        now = clock.now()
        for task in self._open_tasks(ticket):
            if task.due_at >= now:
                continue
            actor = self.sellers.get(task.assignee_id) or User.objects.get(pk=task.assignee_id)
            due = next_working(add_working_days(now, self.rng.randint(0, 3))
                               + timedelta(minutes=self.rng.randint(60, 240)), self.rng)
            if task.kind == "call":
                task_complete(actor=actor, task=task, contact_outcome="connected",
                              duration_seconds=self.rng.randint(60, 600),
                              successor=TaskDraft(kind="call", title="Уточнить решение клиента",
                                                  due_at=due))
            else:
                task_reschedule(actor=actor, task=task, due_at=due,
                                reason="Клиент попросил перенести")


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedResult:
    tickets: int
    seconds: float
    jobs: int
    setup: dict[str, int]

    @property
    def rate(self) -> float:
        return self.tickets / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        made = ", ".join(f"{what} {n}" for what, n in self.setup.items() if n) or "nothing new"
        return (f"seeded {self.tickets:,} tickets in {self.seconds:.1f}s "
                f"({self.rate:.1f} tickets/s, {self.jobs} job(s)); setup: {made}")


def default_jobs() -> int:
    """SQLite has one writer at a time: more processes would only queue on its lock."""
    if connection.vendor == "postgresql":
        return max(1, min(4, os.cpu_count() or 1))
    return 1


def default_batch() -> int:
    return 50 if connection.vendor == "sqlite" else 20


def seed_run(*, tickets: int, jobs: int = 1, seed: int = 1, batch: int | None = None,
             end: datetime | None = None, progress: Callable[[int], object] | None = None,
             on_setup: Callable[[SeedSetup], None] | None = None,
             light: bool = False) -> SeedResult:
    """Set up (idempotent), then write ``tickets`` tickets over the year ending at ``end``
    (default: now) with ``jobs`` processes; ``light`` writes only their creation.

    ``progress`` is called with the number of tickets finished since its last call.
    """
    if tickets < 1:
        raise ValueError("tickets must be at least 1")
    jobs = max(1, min(jobs, tickets))
    if jobs > 1 and connection.in_atomic_block:
        raise RuntimeError("seeding with several processes commits as it goes; call it outside "
                           "a transaction")
    batch = batch or default_batch()
    report = progress or (lambda n: None)
    end = end or timezone.now()
    setup = seed_setup(tickets=tickets, seed=seed, end=end)
    if on_setup:
        on_setup(setup)
    started = time.monotonic()
    if jobs == 1:
        Seeder(setup, total=tickets, seed=seed, end=end, light=light).run(0, 1, report, batch)
    else:
        _run_processes(setup, tickets=tickets, jobs=jobs, seed=seed, end=end, batch=batch,
                       report=report, light=light)
    seconds = time.monotonic() - started
    checkpoint_create()
    return SeedResult(tickets, seconds, jobs, setup.created)


def _worker(setup: SeedSetup, first: int, step: int, total: int, seed: int, end: datetime,
            batch: int, out: Any, light: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's: it stops us
    try:
        seeder = Seeder(setup, total=total, seed=seed, end=end, light=light)
        seeder.run(first, step, lambda n: out.put(("done", n)), batch)
        out.put(("exit", first))
    except BaseException as exc:
        traceback.print_exc()  # the whole story on the worker's stderr
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        connections.close_all()


class SeedWorkerFailed(RuntimeError):
    pass


def _run_processes(setup: SeedSetup, *, tickets: int, jobs: int, seed: int, end: datetime,
                   batch: int, report: Callable[[int], object], light: bool) -> None:
    context = multiprocessing.get_context("fork")  # children inherit the configured Django
    out = context.Queue()
    connections.close_all()  # never share a database connection across a fork
    workers = [context.Process(target=_worker, args=(setup, j, jobs, tickets, seed, end, batch,
                                                     out, light), daemon=True)
               for j in range(jobs)]
    for worker in workers:
        worker.start()
    running = jobs
    try:
        while running:
            try:
                kind, value = out.get(timeout=1.0)
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise SeedWorkerFailed(f"a seed worker died (exit code {dead[0].exitcode})"
                                           ) from None
                continue
            if kind == "done":
                report(int(value))
            elif kind == "exit":
                running -= 1
            else:
                raise SeedWorkerFailed(f"a seed worker failed: {value}")
    finally:
        for worker in workers:
            if worker.is_alive() and running:
                worker.terminate()
        for worker in workers:
            worker.join()
