"""The demo dealership: built through the services, consistent, and built only once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from estafeta.accounts.models import Team, User
from estafeta.demo.builder import (
    CORPORATE,
    CREDIT,
    DIRECTOR,
    LEAVER,
    PASSWORD,
    PEOPLE,
    RETAIL,
    DemoResult,
    build_demo,
    company_tz,
    is_working_day,
)
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.pipelines.models import Pipeline
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import Document, Ticket

from .dbstate import refused
from .factories import make_user

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A Thursday afternoon, Moscow time: where the demo's history ends in these tests.
END = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)


@pytest.fixture(scope="class")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoResult]:
    """One demo for the tests of a class, built once and rolled back after them (a rollback
    is the only way to take data away again: Estafeta refuses deletion)."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHER), \
            transaction.atomic():
        result = build_demo(months=1, scale=0.5, end=END)
        assert result.created
        yield result
        transaction.set_rollback(True)


@pytest.mark.usefixtures("demo")
class TestTheDemoDealership:
    def test_it_has_its_people_teams_and_pipelines(self, db: None) -> None:
        assert set(User.objects.values_list("username", flat=True)) == {p.username
                                                                        for p in PEOPLE}
        heads = dict(Team.objects.values_list("name", "head__username"))
        assert heads == {RETAIL: "sokolova", CREDIT: "sokolova", CORPORATE: "volkov"}
        sellers = User.objects.filter(role="seller", is_active=True)
        assert sellers.filter(team__name__in=[RETAIL, CORPORATE]).count() == 8
        assert sellers.filter(team__name=CREDIT).count() == 1
        assert User.objects.get(username=DIRECTOR).role == "director"
        assert User.objects.get(username="admin").role == "admin"
        assert User.objects.get(username="orlova").role == "operator"
        assert not User.objects.get(username=LEAVER).is_active  # left during the history
        assert authenticate(username="sokolova", password=PASSWORD) is not None
        assert set(Pipeline.objects.filter(current_version__isnull=False)
                   .values_list("code", flat=True)) == {"car-purchase", "fleet",
                                                        "service-booking", "complaint"}

    def test_its_history_has_every_outcome_and_some_overdue_work(self, db: None) -> None:
        statuses = set(Ticket.objects.values_list("status", flat=True))
        assert {"won", "lost", "open"} <= statuses
        assert Ticket.objects.filter(status="won", amount__gt=0).exists()
        assert Ticket.objects.filter(status="lost", lost_reason__isnull=False).exists()
        assert Document.objects.filter(kind="quote", number__startswith="КП-").exists()
        open_tasks = Task.objects.filter(status="open")
        overdue = open_tasks.filter(due_at__lt=END).count()
        assert overdue >= 1
        assert overdue < open_tasks.filter(due_at__gte=END).count()  # some, not most
        # Requests arrived in working hours on working days, in the company's time zone.
        for created in Ticket.objects.values_list("created_at", flat=True):
            local = timezone.localtime(created, company_tz())
            assert is_working_day(local.date()) and 9 <= local.hour < 19, local
        assert not Event.objects.filter(occurred_at__gt=END).exists()

    def test_it_keeps_every_invariant_and_its_history_verifies(self, db: None) -> None:
        assert list(violations()) == []
        report = audit_verify()
        assert report.ok, report.broken
        assert report.checkpoints >= 1

    def test_building_it_again_builds_nothing(self, db: None) -> None:
        tickets, events = Ticket.objects.count(), Event.objects.count()
        again = build_demo(months=1, scale=0.5, end=END)
        assert not again.created
        assert (Ticket.objects.count(), Event.objects.count()) == (tickets, events)


def _shape() -> list[tuple[object, ...]]:
    return sorted(Ticket.objects.values_list("pipeline__code", "status", "stage__code", "amount",
                                             "subject", "owner__username", "created_at"))


def test_the_same_seed_builds_the_same_dealership(db: None) -> None:
    with transaction.atomic():
        build_demo(months=0.3, scale=0.2, end=END, seed=7)
        first = _shape()
        transaction.set_rollback(True)
    assert first and not Ticket.objects.exists()
    build_demo(months=0.3, scale=0.2, end=END, seed=7)
    assert _shape() == first


def test_the_demo_refuses_a_database_that_has_its_names_but_not_the_demo(db: None) -> None:
    make_user("sokolova", "head")
    refused(lambda: build_demo(months=0.5, scale=0.3, end=END), code="demo_collision")


def test_the_demo_command_prints_the_logins_and_builds_once(db: None) -> None:
    out = StringIO()
    call_command("demo", "--no-serve", "--months", "0.3", "--scale", "0.2", stdout=out)
    text = out.getvalue()
    assert PASSWORD in text and "sokolova" in text and "orlova" in text
    assert "built in" in text
    assert User.objects.filter(username=DIRECTOR).exists()
    tickets = Ticket.objects.count()
    out = StringIO()
    call_command("demo", "--no-serve", "--months", "0.3", "--scale", "0.2", stdout=out)
    assert "already" in out.getvalue()
    assert Ticket.objects.count() == tickets
