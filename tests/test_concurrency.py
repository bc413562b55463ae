"""Concurrent creation and closing: threads on PostgreSQL, separate processes on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from estafeta.accounts.services import user_deactivate
from estafeta.domain.errors import EstafetaError
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.services import stage_close, ticket_create

from .factories import build_world

ROOT = Path(__file__).resolve().parent.parent


def in_threads(n: int, job: Callable[[int], Any]) -> list[Any]:
    """Run ``job`` in n threads released together; exceptions are returned, not raised."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        try:
            barrier.wait()
            return job(i)
        except Exception as exc:  # the test inspects what each thread got
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_creations_on_postgres_all_succeed_with_distinct_numbers() -> None:
    world = build_world()
    results = in_threads(50, lambda i: ticket_create(
        actor=world.operator, pipeline="sales", client=world.client, channel="phone",
        subject=f"request {i}").number)
    assert all(isinstance(r, str) for r in results), [r for r in results if not isinstance(r, str)]
    assert len(set(results)) == 50
    assert Ticket.objects.count() == 50
    assert Event.objects.filter(type="ticket.created").count() == 50
    assert Task.objects.count() == 50
    # Round robin stays fair under concurrency: the rotation row serialises the choice.
    assert Counter(Ticket.objects.values_list("owner__username", flat=True)) == {
        "ann": 25, "bob": 25}
    assert list(violations()) == []
    assert audit_verify().ok


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_closings_of_one_stage_give_one_move_on_postgres() -> None:
    """Several rounds: the losing thread must get a clear conflict whichever way the race goes
    (this once found a locking query that returned no ticket at all)."""
    world = build_world()
    for _ in range(8):
        ticket = world.ticket(owner=world.ann)
        world.fill_new(ticket)
        results = in_threads(2, lambda i, t=ticket: stage_close(  # type: ignore[misc]
            actor=(world.ann, world.head)[i], ticket=t, stage="new"))
        closed = [r for r in results if isinstance(r, Ticket)]
        refused = [r for r in results if isinstance(r, EstafetaError)]
        assert len(closed) == 1 and len(refused) == 1, results
        assert refused[0].code == "stale_stage" and "reload" in refused[0].message
        assert StageVisit.objects.filter(ticket=ticket).count() == 2
        assert Task.objects.filter(ticket=ticket, visit__stage__code="offer").count() == 1
        assert Event.objects.filter(stream=ticket.stream, type="stage.closed").count() == 1
    assert list(violations()) == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_deactivating_someone_while_work_is_assigned_to_them_loses_nothing() -> None:
    world = build_world()

    def job(i: int) -> Any:
        if i == 0:
            time.sleep(0.05)
            return user_deactivate(actor=None, user=world.ann, successor=world.bob)
        return ticket_create(actor=world.operator, pipeline="sales", client=world.client,
                             channel="phone", subject=f"#{i}", owner=world.ann)

    results = in_threads(20, job)
    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, EstafetaError) and e.code == "user_inactive" for e in errors), errors
    assert not Task.objects.filter(assignee=world.ann, status="open").exists()
    assert list(violations()) == []


def worker(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.concurrency_worker", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def sqlite_file(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
            "ESTAFETA_DATA_DIR": str(tmp_path)}
    migrated = subprocess.run([sys.executable, "-m", "estafeta", "migrate", "-v0"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    assert migrated.returncode == 0, migrated.stderr
    return env


@pytest.mark.sqlite_only
@pytest.mark.slow
def test_concurrent_creation_and_closing_from_several_processes_on_sqlite(
        sqlite_file: dict[str, str]) -> None:
    ticket = worker(sqlite_file, "setup")["ticket"]
    start = str(time.time() + 4)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.concurrency_worker", "create", "10",
                               start], cwd=ROOT, env=sqlite_file, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(5)]
    closers = [subprocess.Popen([sys.executable, "-m", "tests.concurrency_worker", "close",
                                 ticket, who, start], cwd=ROOT, env=sqlite_file,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for who in ("ann", "helen")]
    created, closes = [], []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        created.append(json.loads(out.strip().splitlines()[-1]))
    for p in closers:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        closes.append(json.loads(out.strip().splitlines()[-1])["result"])
    numbers = [n for c in created for n in c["numbers"]]
    assert [e for c in created for e in c["errors"]] == []
    assert len(numbers) == 50 and len(set(numbers)) == 50
    assert sorted(closes) == ["closed", "stale_stage"]
    report = worker(sqlite_file, "report")
    assert report["tickets"] == 51 and len(set(report["numbers"])) == 51
    assert report["created_events"] == 51 and report["closed_events"] == 1
    assert report["tasks"] == 52 and report["visits"] == 52
    assert report["violations"] == [] and report["audit"] is True
