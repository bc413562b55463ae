"""The monitor under concurrency and crashes, and the ``estafeta worker`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from estafeta.control.models import Escalation
from estafeta.control.services import monitor_pass
from estafeta.core import clock
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.notifications.models import Notification
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, task_plan
from estafeta.tickets.services import ticket_create

from .conftest import T0
from .factories import build_world
from .test_concurrency import in_threads
from .test_control import STORY_PIPELINE

ROOT = Path(__file__).resolve().parent.parent
# Friday noon in Moscow: every task due on Wednesday is past its head and director levels.
PASS_AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def overdue_world(count: int) -> int:
    """The test world and ``count`` open tasks due on Wednesday 11:00, ten per ticket (in a
    pipeline without stage SLAs, so that only the tasks are late)."""
    with clock.frozen(T0):
        world = build_world()
        pipeline_load(actor=None, source="story.yaml", text=STORY_PIPELINE)  # no stage SLAs
        made = 0
        while made < count:
            ticket = ticket_create(actor=world.operator, pipeline="story", client=world.client,
                                   channel="phone", subject="A car",
                                   owner=(world.ann, world.bob)[made % 2])
            made += 1
            for i in range(min(9, count - made)):
                task_plan(actor=ticket.owner, ticket=ticket, draft=TaskDraft(
                    kind="call", title=f"Call #{i}", due_at=T0 + timedelta(hours=1)))
                made += 1
    return Task.objects.filter(status="open").count()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_four_workers_over_a_thousand_breached_tasks_escalate_each_level_once() -> None:
    assert overdue_world(1000) == 1000
    reports = in_threads(4, lambda i: monitor_pass(now=PASS_AT))
    assert all(not isinstance(r, Exception) for r in reports), reports
    # Each task: once to the head, once to the director; nothing twice.
    assert sum(r.total for r in reports) == 2000
    assert Counter(Escalation.objects.values_list("level", flat=True)) == {
        "head": 1000, "director": 1000}
    assert Event.objects.filter(type="escalation.raised").count() == 2000
    # One in-app notification per escalation and recipient (nobody here has an email).
    keys = Counter(Notification.objects.values_list("recipient__username", "payload__level"))
    assert keys == {("helen", "head"): 1000, ("dora", "director"): 1000}
    assert Notification.objects.count() == 2000
    assert monitor_pass(now=PASS_AT + timedelta(hours=1)).total == 0
    assert audit_verify().ok


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def report(env: dict[str, str]) -> dict[str, Any]:
    out = run(env, "tests.control_worker", "report").stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def shared_db(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """An environment whose processes share one database: the PostgreSQL test database (the
    test is transactional, so its rows are committed), or a migrated SQLite file."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ESTAFETA_DATA_DIR"] = str(tmp_path)
    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        s = connection.settings_dict
        env["DATABASE_URL"] = (f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:"
                               f"{s['PORT'] or 5432}/{s['NAME']}")
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
        run(env, "estafeta", "migrate", "-v0")
    return env


@pytest.mark.slow
def test_a_worker_killed_between_deciding_and_delivering_loses_nothing(
        shared_db: dict[str, str]) -> None:
    assert json.loads(run(shared_db, "tests.control_worker", "setup", "20").stdout
                      .strip().splitlines()[-1])["tasks"] == 20
    died = run(shared_db, "tests.control_worker", "decide-and-die", PASS_AT.isoformat(),
               check=False)
    assert died.returncode == -signal.SIGKILL
    # The decisions survived the crash; nothing was delivered yet.
    assert report(shared_db) == {"escalations": 40, "pending": 40, "sent": 0}
    # The next worker decides nothing new and delivers every notification, once.
    out = run(shared_db, "estafeta", "worker", "--once", "--now",
              (PASS_AT + timedelta(minutes=1)).isoformat()).stdout
    assert "nothing new" in out
    assert report(shared_db) == {"escalations": 40, "pending": 0, "sent": 40}
    out = run(shared_db, "estafeta", "worker", "--once", "--now",
              (PASS_AT + timedelta(minutes=2)).isoformat()).stdout
    assert "nothing new" in out and " 0 sent" in out
    assert report(shared_db) == {"escalations": 40, "pending": 0, "sent": 40}


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_the_worker_loops_until_sigterm_then_finishes_its_pass_and_exits_0(
        shared_db: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "estafeta", "worker", "--interval", "0.2"],
                            cwd=ROOT, env=shared_db, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.count("monitor ") >= 2 and out.rstrip().endswith("worker: stopped")
    assert "SIGTERM" in err


def test_worker_once_at_a_given_moment_runs_one_pass_as_if_then(
        world: Any, capsys: pytest.CaptureFixture[str]) -> None:
    task = Task.objects.get(ticket=world.ticket(owner=world.ann))
    call_command("worker", once=True, now=task.due_at - timedelta(minutes=1))
    assert "nothing new" in capsys.readouterr().out
    call_command("worker", "--once", "--now", (task.due_at + timedelta(minutes=1)).isoformat())
    out = capsys.readouterr().out
    assert "task_overdue/head 1" in out
    assert Escalation.objects.get().decided_at == task.due_at + timedelta(minutes=1)


def test_worker_refuses_a_moment_without_its_offset() -> None:
    done = subprocess.run([sys.executable, "-m", "estafeta", "worker", "--once", "--now",
                           "2026-12-07T19:00"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2 and "UTC offset" in done.stderr


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_three_worker_processes_on_one_sqlite_file_escalate_each_level_once(
        shared_db: dict[str, str]) -> None:
    run(shared_db, "tests.control_worker", "setup", "60")
    procs = [subprocess.Popen([sys.executable, "-m", "estafeta", "worker", "--once", "--now",
                               PASS_AT.isoformat()], cwd=ROOT, env=shared_db,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert report(shared_db) == {"escalations": 120, "pending": 0, "sent": 120}
