"""``POST /api/v1/tickets/<number>/reply/``: the same reply as the ticket page's form (one
message, one email activity, one outbox row), completing the waiting reply task; Idempotency-Key
replays the first answer; bad input and strangers change nothing; the endpoint is in the
OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.api.models import IdempotencyKey
from estafeta.domain.codes import TaskStatus
from estafeta.mailin.models import MailMessage
from estafeta.notifications.models import Notification
from estafeta.tasks.models import Task
from estafeta.tickets.models import Activity, Ticket

from .dbstate import snapshot
from .factories import World, later
from .test_followup import client_writes, emails_out, only_open_task

pytestmark = pytest.mark.django_db

CLIENT = "ivan@example.com"


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def reply(user: User, ticket: Ticket, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else None
    return api(user).post(f"/api/v1/tickets/{ticket.number}/reply/", body, format="json",
                          headers=headers)


def test_a_reply_through_the_api_completes_the_reply_task(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    response = reply(world.ann, ticket, {"to": CLIENT, "text": "Tomorrow at ten."})
    assert response.status_code == 201, response.content
    body = response.json()
    message = MailMessage.objects.get(direction="out")
    assert body["id"] == message.pk and body["ticket"] == ticket.number
    assert body["to"] == CLIENT and body["message_id"] == message.message_id
    assert body["subject"].startswith("Re: ") and ticket.number in body["subject"]
    assert body["reply_task"]["id"] == task.pk and body["reply_task"]["status"] == "done"
    assert body["activity"] == message.activity_id
    assert Notification.objects.filter(kind="mail_reply", ticket=ticket).count() == 1
    assert emails_out() == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE


def test_without_a_waiting_task_the_answer_says_so(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    response = reply(world.ann, ticket, {"to": CLIENT, "subject": "Offer", "text": "Here."})
    assert response.status_code == 201
    assert response.json()["reply_task"] is None
    assert response.json()["subject"] == f"Offer [#{ticket.number}]"


def test_the_last_open_task_stays_open_unless_a_next_task_is_given(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    only_open_task(ticket, task)
    first = reply(world.ann, ticket, {"to": CLIENT, "text": "Soon."})
    assert first.status_code == 201 and first.json()["reply_task"]["status"] == "open"
    second_task = task  # still waiting: reply again, this time with the next task
    nxt = {"kind": "call", "title": "Call about the offer", "due_at": later(days=1).isoformat()}
    second = reply(world.ann, ticket, {"to": CLIENT, "text": "Here it is.", "next_task": nxt})
    assert second.status_code == 201
    second_task.refresh_from_db()
    # The first reply stays linked to the task; the second reply completed it with its successor.
    assert second_task.status == TaskStatus.DONE
    (open_task,) = Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN)
    assert open_task.title == "Call about the offer"
    assert emails_out() == 2


def test_the_same_idempotency_key_sends_one_reply(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    client_writes(ticket)
    body = {"to": CLIENT, "text": "Tomorrow."}
    first = reply(world.ann, ticket, body, key="reply-1")
    again = reply(world.ann, ticket, body, key="reply-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert MailMessage.objects.filter(direction="out").count() == 1
    assert Notification.objects.filter(kind="mail_reply").count() == 1 and emails_out() == 1
    other = reply(world.ann, ticket, {"to": CLIENT, "text": "Other."},
                  key="reply-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.parametrize(("body", "code"), [
    ({"to": CLIENT}, "invalid"),
    ({"to": CLIENT, "text": "   "}, "text_required"),
    ({"to": "not an address", "text": "x"}, "bad_email"),
    ({"to": CLIENT, "subject": "Hi\r\nBcc: all@example.com", "text": "x"}, "header_injection"),
    ({"to": ",".join(f"c{i}@example.com" for i in range(11)), "text": "x"},
     "too_many_recipients"),
    ({"to": CLIENT, "text": "x", "next_task": {"kind": "call", "title": "x",
                                               "due_at": "2020-01-01T10:00:00+03:00"}},
     "due_in_past"),
])
def test_bad_input_is_refused_and_changes_nothing(world: World, body: dict[str, Any],
                                                  code: str) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    only_open_task(ticket, task)
    before = snapshot()
    response = reply(world.ann, ticket, body, key=f"bad-{code}")
    assert response.status_code == 400, response.content
    got = response.json()
    assert set(got) == {"code", "message", "params"}
    if code != "invalid":
        assert got["code"] == code, got
    assert snapshot() == before
    assert not IdempotencyKey.objects.exists()
    assert not MailMessage.objects.exists()
    assert not Notification.objects.filter(kind="mail_reply").exists()


def test_strangers_and_void_tickets(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    client_writes(ticket)
    before = snapshot()
    assert reply(world.olga, ticket, {"to": CLIENT, "text": "x"}).status_code == 404
    assert reply(world.operator, ticket, {"to": CLIENT, "text": "x"}).status_code == 403
    assert snapshot() == before
    from estafeta.tickets.services import ticket_void

    ticket_void(actor=world.ann, ticket=ticket, reason="spam")
    response = reply(world.ann, ticket, {"to": CLIENT, "text": "x"})
    assert response.status_code == 409 and response.json()["code"] == "ticket_void"
    assert not Activity.objects.filter(direction="out").exists()


def test_the_reply_endpoint_is_in_the_schema(world: World) -> None:
    response = api(world.ann).get("/api/v1/schema/")
    schema = yaml.safe_load(response.content)
    operation = schema["paths"]["/api/v1/tickets/{number}/reply/"]["post"]
    assert "201" in operation["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    props = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert {"to", "subject", "text", "next_task"} <= set(props)
