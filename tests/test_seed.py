"""Synthetic data for benchmarks: made through the services, consistent, setup made once."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from estafeta.accounts.models import Team, User
from estafeta.clients.models import Client
from estafeta.demo.seed import PIPELINE, seed_run, sellers_for
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.pipelines.models import PipelineVersion
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import Ticket

END = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)


def _setup_rows() -> tuple[int, int, int, int]:
    return (User.objects.count(), Team.objects.count(), Client.objects.count(),
            PipelineVersion.objects.count())


def _statuses() -> dict[str, int]:
    return dict(Ticket.objects.filter(pipeline__code=PIPELINE).values_list("status")
                .annotate(n=Count("id")))


def test_seeding_makes_consistent_tickets_through_the_services(db: None) -> None:
    result = seed_run(tickets=100, seed=5, end=END)
    assert result.tickets == 100
    statuses = _statuses()
    assert sum(statuses.values()) == 100
    assert statuses["won"] and statuses["lost"] and statuses["open"]
    assert statuses["won"] + statuses["lost"] > 0.8 * 100  # most tickets ended
    # Every ticket has its whole history: created, then one event per step.
    assert Event.objects.filter(type="ticket.created").count() == 100
    assert Event.objects.filter(type="ticket.won").count() == statuses["won"]
    open_tasks = Task.objects.filter(status="open", ticket__status="open")
    assert open_tasks.filter(due_at__gte=END).exists()  # the pipeline is alive today
    assert list(violations()) == []
    report = audit_verify()
    assert report.ok, report.broken


def test_seeding_again_adds_tickets_and_reuses_the_setup(db: None) -> None:
    first = seed_run(tickets=50, seed=1, end=END)
    assert first.setup["users"] == 1 + 1 + sellers_for(50)  # operator, a head, the sellers
    rows = _setup_rows()
    again = seed_run(tickets=30, seed=2, end=END)
    assert not any(again.setup.values())
    assert _setup_rows() == rows
    assert Ticket.objects.filter(pipeline__code=PIPELINE).count() == 80
    assert list(violations()) == []
    assert audit_verify().ok


def test_the_seed_command_reports_what_it_made(db: None) -> None:
    out, err = StringIO(), StringIO()
    call_command("seed", "--tickets", "12", "--jobs", "1", stdout=out, stderr=err)
    assert "seeded 12 tickets" in out.getvalue()
    assert "tickets/s" in out.getvalue()
    assert Ticket.objects.filter(pipeline__code=PIPELINE).count() == 12


@pytest.mark.postgres_only
@pytest.mark.slow
def test_seeding_with_several_processes_writes_every_ticket_once(transactional_db: None) -> None:
    result = seed_run(tickets=40, jobs=2, seed=3, end=END)
    assert result.jobs == 2
    assert Ticket.objects.filter(pipeline__code=PIPELINE).count() == 40
    assert Event.objects.filter(type="ticket.created").count() == 40
    assert list(violations()) == []
    assert audit_verify().ok


def test_light_seeding_only_creates_tickets(db: None) -> None:
    result = seed_run(tickets=60, seed=3, end=END, light=True)
    assert result.tickets == 60
    assert _statuses() == {"open": 60}
    assert Event.objects.filter(type="ticket.created").count() == 60
    assert Task.objects.filter(status="open").count() == 60
    assert list(violations()) == []
    assert audit_verify().ok
