"""Promise 3: nothing is deleted, through the ORM or plain SQL; history is never rewritten."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, models, transaction

from estafeta.accounts.services import absence_add
from estafeta.calendars.services import calendar_day_set
from estafeta.clients.models import Segment, Territory
from estafeta.control.services import monitor_pass
from estafeta.core import clock
from estafeta.core.db import guarded_models, install_guards, missing_guards
from estafeta.domain.errors import DeletionRefused
from estafeta.history.models import Event
from estafeta.history.services import checkpoint_create
from estafeta.notifications.models import WebhookEndpoint
from estafeta.notifications.services import webhook_endpoint_save
from estafeta.ratings.services import energy_rate
from estafeta.targets.services import target_set
from estafeta.tickets import services as ts
from estafeta.tickets.models import Ticket

from .conftest import IS_POSTGRES
from .factories import World, intake_rows, webform_sent
from .hook_rows import hooks_rows


@pytest.fixture
def full(world: World, now: datetime) -> World:
    """At least one row in every guarded table."""
    Segment.objects.create(code="retail", name="Retail")
    Territory.objects.create(code="north", name="North")
    absence_add(actor=None, user=world.bob, starts_at=now + timedelta(days=5),
                ends_at=now + timedelta(days=6))
    t = world.ticket(owner=world.ann)
    world.fill_new(t)
    t = ts.stage_close(actor=world.ann, ticket=t, stage="new", to="contract")
    ts.checklist_item_complete(actor=world.ann, ticket=t, stage="contract", item="scan",
                               file=SimpleUploadedFile("a.pdf", b"%PDF", "application/pdf"))
    ts.activity_log(actor=world.ann, ticket=t, kind="call", direction="out", outcome="connected")
    ts.document_issue(actor=world.ann, ticket=t, kind="invoice", number="1", amount="10")
    calendar_day_set(actor=world.admin, day=date(2026, 12, 31), kind="off")
    energy_rate(world.head, world.ann, now.date(), 4, "steady")
    target_set(world.director, kind="territory", ref="north", start="2026-11-01",
               end="2026-11-30", amount="100")
    webhook_endpoint_save(actor=world.admin, endpoint=WebhookEndpoint(
        url="https://crm.example/hook", secret="s" * 32))
    webform_sent(world)
    intake_rows(world)
    _mail_rows(world)
    hooks_rows(world)
    month_later = now + timedelta(days=30)
    with clock.frozen(month_later):  # the task is long overdue: an escalation and its notices
        monitor_pass(now=month_later)
    checkpoint_create()
    return world


def _mail_rows(world: World) -> None:
    """A mailbox, a message taken in with an attachment, and one in quarantine."""
    from email.message import EmailMessage

    from estafeta.mailin.models import Mailbox
    from estafeta.mailin.services import mail_ingest, mailbox_save

    box = mailbox_save(actor=None, mailbox=Mailbox(
        name="Guards", address="guards@dealer.example", kind="maildir", path="/nonexistent",
        pipeline=world.pipeline))
    msg = EmailMessage()
    msg["From"] = "mail.client@example.com"
    msg["Subject"] = "A car"
    msg["Message-ID"] = "<guards@example.com>"
    msg.set_content("Hello")
    msg.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    mail_ingest(msg.as_bytes(), mailbox=box)
    mail_ingest(b"not mail", mailbox=box)


GUARDED = sorted(guarded_models(), key=lambda m: m[0]._meta.db_table)


def test_every_guarded_table_is_covered_below(full: World) -> None:
    tables = {m._meta.db_table for m, _ in GUARDED}
    assert {"tickets_ticket", "tasks_task", "history_event", "accounts_user",
            "clients_client", "tickets_stagevisit", "tickets_activity", "tickets_document"} <= (
        tables)
    for model, _ in GUARDED:
        assert model._base_manager.exists(), f"no row in {model._meta.db_table}"


@pytest.mark.parametrize(("model", "append_only"), GUARDED,
                         ids=[m._meta.db_table for m, _ in GUARDED])
def test_deleting_is_refused_through_the_orm(full: World, model: type[models.Model],
                                             append_only: bool) -> None:
    row = model._base_manager.order_by("pk").first()
    assert row is not None
    with pytest.raises(DeletionRefused):
        row.delete()
    with pytest.raises(DeletionRefused):
        model.objects.filter(pk=row.pk).delete()  # type: ignore[attr-defined]
    assert model._base_manager.filter(pk=row.pk).exists()


@pytest.mark.parametrize(("model", "append_only"), GUARDED,
                         ids=[m._meta.db_table for m, _ in GUARDED])
def test_deleting_is_refused_in_plain_sql(full: World, model: type[models.Model],
                                          append_only: bool) -> None:
    table = model._meta.db_table
    count = model._base_manager.count()
    with pytest.raises(DatabaseError, match="estafeta"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{table}"')
    assert model._base_manager.count() == count


@pytest.mark.parametrize(("model", "append_only"), [g for g in GUARDED if g[1]],
                         ids=[m._meta.db_table for m, a in GUARDED if a])
def test_append_only_rows_are_never_updated(full: World, model: type[models.Model],
                                            append_only: bool) -> None:
    table = model._meta.db_table
    with pytest.raises(DatabaseError, match="estafeta"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{table}" SET id = id')
    with pytest.raises(DeletionRefused):
        model.objects.all().update(pk=models.F("pk"))  # type: ignore[attr-defined]


def test_an_event_cannot_be_saved_twice(full: World) -> None:
    event = Event.objects.order_by("pk").first()
    assert event is not None
    event.payload = {"forged": True}
    with pytest.raises(DeletionRefused):
        event.save()


@pytest.mark.postgres_only
def test_truncate_is_refused_on_postgres(full: World) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL estafeta.allow_truncate = 'off'")  # as outside the tests
        with pytest.raises(DatabaseError, match="TRUNCATE"), transaction.atomic():
            cursor.execute('TRUNCATE "tickets_ticket" CASCADE')
    assert Ticket.objects.exists()


def test_missing_guards_are_reported_and_reinstalled(full: World) -> None:
    assert missing_guards() == []
    with connection.cursor() as cursor:
        on = ' ON "tasks_task"' if IS_POSTGRES else ""
        cursor.execute(f'DROP TRIGGER "estafeta_nodelete_tasks_task"{on}')
    assert missing_guards() == ["tasks_task: estafeta_nodelete_tasks_task"]
    with pytest.raises(CommandError, match="1 violation"):
        call_command("check", quiet=True)
    install_guards()
    assert missing_guards() == []
