"""Intake routing (issue 6): idempotency, find-or-create client, attach or flag, activity,
reply/call-back tasks, one event; nothing written on bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from estafeta.clients.models import Client
from estafeta.core import clock
from estafeta.domain.codes import ActivitySource, Channel, EventType, TaskStatus, TicketStatus
from estafeta.domain.errors import BadInput, NotFound
from estafeta.history.models import Event
from estafeta.intake.models import DuplicateFlag, FollowUp, IntakeRecord
from estafeta.intake.services import ActivitySpec, Arrival, callback_task_ensure, intake_arrival
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tickets.models import Activity, Ticket

from .factories import PIPELINES, World

EMAIL_IN = ActivitySpec(kind="email", direction="in", outcome="received",
                        source=ActivitySource.EMAIL_INTAKE)


def mail(external_id: str = "<m1@example.com>", **kw: Any) -> Arrival:
    values: dict[str, object] = {
        "channel": Channel.EMAIL, "source": "mailbox:1", "external_id": external_id,
        "pipeline": "sales", "name": "Maria Ivanova", "emails": ("maria@example.com",),
        "subject": "A new car", "text": "Hello, I need a car.", "activity": EMAIL_IN}
    values.update(kw)
    return Arrival(**values)  # type: ignore[arg-type]


def set_intake(world: World, intake: str) -> None:
    text = (PIPELINES / "sales.yaml").read_text() + f"intake: {intake}\n"
    pipeline_load(actor=None, text=text, source="sales.yaml")


def counts() -> tuple[int, ...]:
    return (Ticket.objects.count(), Client.objects.count(), IntakeRecord.objects.count(),
            Activity.objects.count(), Task.objects.count(), Event.objects.count())


def test_new_request_makes_client_ticket_activity_and_event(world: World) -> None:
    out = intake_arrival(mail())
    assert out.created and not out.repeated and not out.flagged
    ticket = out.ticket
    assert ticket.channel == "email" and ticket.subject == "A new car"
    assert ticket.client.name == "Maria Ivanova"
    assert list(ticket.client.contacts.values_list("value", flat=True)) == ["maria@example.com"]
    activity = Activity.objects.get(ticket=ticket)
    assert (activity.kind, activity.direction, activity.source) == ("email", "in", "email_intake")
    assert activity.note == "Hello, I need a car." and activity.performed_by is None
    event = Event.objects.get(stream=ticket.stream, type=EventType.INTAKE_RECEIVED)
    assert event.payload["created"] is True and event.payload["external_id"] == "<m1@example.com>"
    assert event.payload["record"] == out.record.pk and event.actor is None
    # A new ticket has its first task from the stage; no reply task is added on top.
    assert not FollowUp.objects.exists()


def test_same_external_id_twice_makes_one_ticket(world: World) -> None:
    first = intake_arrival(mail())
    before = counts()
    again = intake_arrival(mail(text="the same message delivered again"))
    assert again.repeated and not again.created
    assert again.record.pk == first.record.pk and again.ticket.pk == first.ticket.pk
    assert counts() == before
    # The same id from another source is another arrival.
    other = intake_arrival(mail(source="mailbox:2"))
    assert not other.repeated and other.record.pk != first.record.pk


@pytest.mark.parametrize("spelling", ["8 (912) 345-67-89", "+7 912 345 67 89", "89123456789",
                                      "+7(912)3456789", "9123456789"])
def test_russian_phone_spellings_find_the_same_client(world: World, spelling: str) -> None:
    out = intake_arrival(Arrival(channel=Channel.PHONE, source="telephony:t", external_id="c1",
                                 pipeline="sales", phones=(spelling,)))
    assert out.ticket.client_id == world.client.pk
    assert Client.objects.count() == 1


def test_attach_to_the_clients_open_ticket_plans_one_reply_task(world: World) -> None:
    ticket = world.ticket()
    out = intake_arrival(mail(emails=("IVAN@Example.com",)))
    assert out.ticket.pk == ticket.pk and not out.created and not out.flagged
    reply = Task.objects.get(follow_up__kind="reply")
    assert reply.ticket_id == ticket.pk and reply.status == TaskStatus.OPEN
    assert reply.kind == "email" and reply.assignee_id == ticket.owner_id
    # Due within the first-response time (2h by default) in business time.
    assert reply.due_at == clock.now() + timedelta(hours=2)
    # A second message while the reply is open adds no second task.
    intake_arrival(mail("<m2@example.com>", emails=("ivan@example.com",)))
    assert Task.objects.filter(follow_up__kind="reply").count() == 1
    assert Activity.objects.filter(ticket=ticket).count() == 2


def test_flag_mode_opens_a_new_ticket_flagged_against_the_open_one(world: World) -> None:
    set_intake(world, "{duplicates: flag, first_response: 4h}")
    ticket = world.ticket()
    out = intake_arrival(mail(emails=("ivan@example.com",)))
    assert out.created and out.flagged and out.ticket.pk != ticket.pk
    flag = DuplicateFlag.objects.get()
    assert (flag.ticket_id, flag.of_id, flag.status) == (out.ticket.pk, ticket.pk, "open")
    assert out.record.flagged
    payload = Event.objects.get(stream=out.ticket.stream, type=EventType.INTAKE_RECEIVED).payload
    assert payload["flagged"] is True and payload["duplicate_of"] == ticket.number


def test_threaded_ticket_wins_and_closed_ticket_gets_a_flagged_new_one(world: World) -> None:
    ticket = world.ticket()
    other = world.ticket(client=Client.objects.create(name="Someone", created_at=clock.now()))
    out = intake_arrival(mail(ticket=other))
    assert out.ticket.pk == other.pk and not out.created
    from estafeta.tickets.services import ticket_close_lost
    ticket_close_lost(actor=world.head, ticket=other, reason="price")
    again = intake_arrival(mail("<m3@example.com>", ticket=other, emails=()))
    assert again.created and again.flagged and again.ticket.client_id == other.client_id
    assert DuplicateFlag.objects.get(ticket=again.ticket).of_id == other.pk
    assert ticket.pk != again.ticket.pk


def test_missed_call_plans_a_call_back_once(world: World, settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"  # stored titles are in the company's language
    missed = ActivitySpec(kind="call", direction="in", outcome="no_answer",
                          source=ActivitySource.TELEPHONY)
    call = Arrival(channel=Channel.PHONE, source="telephony:t", external_id="call-1",
                   pipeline="sales", phones=("+79123456789",), activity=missed)
    ticket = world.ticket()
    out = intake_arrival(call)
    assert out.ticket.pk == ticket.pk
    back = Task.objects.get(follow_up__kind="callback")
    assert back.kind == "call" and back.title == "Call the client back"
    intake_arrival(replace(call, external_id="call-2"))
    assert callback_task_ensure(ticket).pk == back.pk  # type: ignore[union-attr]
    assert Task.objects.filter(follow_up__kind="callback").count() == 1
    # An answered call owes nothing.
    answered = replace(call, external_id="call-3", activity=replace(missed, outcome="connected"))
    intake_arrival(answered)
    assert FollowUp.objects.count() == 1


def test_no_usable_contact_still_makes_a_ticket(world: World, settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"
    out = intake_arrival(Arrival(channel=Channel.WEB_FORM, source="form:main", external_id="s1",
                                 pipeline="sales", phones=("not a phone",), emails=("@@",),
                                 text="Call me maybe"))
    assert out.created and out.ticket.client.name == "Unknown client"
    assert out.ticket.subject == "Call me maybe"
    assert out.record.phones == ["not a phone"] and out.record.emails == ["@@"]
    assert out.record.text == "Call me maybe"


@pytest.mark.parametrize("bad", [
    {"source": ""}, {"external_id": ""}, {"external_id": "x" * 256}, {"channel": "fax"},
    {"occurred_at": datetime(2026, 1, 1)}, {"pipeline": "nope"},
    {"activity": ActivitySpec(kind="email", direction="in", outcome="sent")},
    {"activity": ActivitySpec(kind="email", direction="in", outcome="received", source="x")},
])
def test_bad_input_writes_nothing(world: World, bad: dict[str, Any]) -> None:
    before = counts()
    with pytest.raises((BadInput, NotFound)):
        intake_arrival(mail(**bad))
    assert counts() == before


def test_future_time_is_clamped_and_ticket_status(world: World) -> None:
    out = intake_arrival(mail(occurred_at=clock.now() + timedelta(days=2)))
    assert out.record.occurred_at == clock.now()
    assert out.ticket.status == TicketStatus.OPEN


def test_stored_titles_follow_the_company_language(world: World, settings: Any) -> None:
    from django.utils import translation

    settings.LANGUAGE_CODE = "ru"
    with translation.override("en"):  # whoever is active, the company's language is stored
        out = intake_arrival(Arrival(channel=Channel.PHONE, source="telephony:t",
                                     external_id="x", pipeline="sales"))
    with translation.override("ru"):
        assert out.ticket.client.name == translation.gettext("Unknown client")
        assert out.ticket.subject == translation.gettext("Request by phone")


def test_anonymising_the_client_erases_what_intake_kept(world: World) -> None:
    from estafeta.clients.services import client_anonymise

    out = intake_arrival(mail(phones=("8 912 000-00-01",), text="My address is ..."))
    client_anonymise(actor=world.admin, client=out.ticket.client, reason="erasure request 7")
    out.record.refresh_from_db()
    assert (out.record.name, out.record.phones, out.record.emails, out.record.subject,
            out.record.text) == ("", [], [], "", "")
    assert out.record.external_id == "<m1@example.com>"  # the idempotency key stays
