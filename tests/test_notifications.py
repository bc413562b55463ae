"""The outbox: notify writes rows in the caller's transaction, once per key; deliver_pending
sends them through a real SMTP server (aiosmtpd on a free loopback port) and a real HTTP server,
retries temporary failures with backoff, fails permanent ones visibly, and re-checks that the
recipient may still see the ticket."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction

from estafeta.accounts.models import User
from estafeta.notifications import mail
from estafeta.notifications.models import Notification, WebhookEndpoint
from estafeta.notifications.services import deliver_pending, notify
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import ticket_reassign

from .factories import World

pytestmark = pytest.mark.django_db


def _payload(ticket: Ticket, **over: Any) -> dict[str, Any]:
    p = {"level": "head", "reason": "task_overdue", "ticket": ticket.number,
         "client": "Ivan Petrov", "stage": "Contract", "task": "Sign the contract",
         "due_at": "2026-12-07T15:00:00+00:00", "assignee": "Ann",
         "promise": "Contract ready by Monday 18:00"}
    p.update(over)
    return p


def _with_email(user: User, address: str, language: str = "ru") -> User:
    User.objects.filter(pk=user.pk).update(email=address, language=language)
    user.refresh_from_db()
    return user


def _subject(m: Message) -> str:
    return str(make_header(decode_header(m["Subject"]))).replace("\r\n", "").replace("\n", "")


# --- a real SMTP server --------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: answers DATA with ``self.answer`` and keeps what it accepted."""

    def __init__(self) -> None:
        self.answer = "250 OK"
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.answer.startswith("250"):
                self.messages.append(email.message_from_bytes(envelope.original_content))
            return self.answer


@pytest.fixture
def smtp(settings: Any) -> Iterator[Mailbox]:
    box = Mailbox()
    with socket.socket() as probe:  # a free loopback port (the controller needs a real one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.ESTAFETA_SMTP_HOST = "127.0.0.1"
        settings.ESTAFETA_SMTP_PORT = port
        settings.ESTAFETA_SMTP_TLS = "none"
        settings.ESTAFETA_MAIL_FROM = "Estafeta <estafeta@dealer.example>"
        yield box
    finally:
        controller.stop()


# --- notify ------------------------------------------------------------------------------------


def test_notify_writes_one_row_per_channel_once_per_key(world: World, now: datetime) -> None:
    head = _with_email(world.head, "helen@dealer.example")
    ticket = world.ticket(owner=world.ann)
    WebhookEndpoint.objects.create(url="https://hooks.example/estafeta", secret="s")
    with transaction.atomic():
        rows = notify(recipient=head, kind="escalation", payload=_payload(ticket),
                      key="escalation:1", ticket=ticket)
    assert sorted(r.channel for r in rows) == ["email", "inapp", "webhook"]
    assert all(r.status == "pending" and r.next_attempt_at == now for r in rows)
    again = notify(recipient=head, kind="escalation", payload=_payload(ticket),
                   key="escalation:1", ticket=ticket)
    assert sorted(r.pk for r in again) == sorted(r.pk for r in rows)
    assert Notification.objects.count() == 3


def test_notify_without_an_email_address_writes_no_email_row(world: World) -> None:
    rows = notify(recipient=world.ann, kind="escalation", payload={}, key="k",
                  channels=("inapp", "email"))
    assert [r.channel for r in rows] == ["inapp"]


def test_notify_rolls_back_with_the_callers_transaction(world: World) -> None:
    def escalate() -> None:
        with transaction.atomic():
            notify(recipient=world.ann, kind="escalation", payload={}, key="k")
            raise RuntimeError("the escalation failed")

    with pytest.raises(RuntimeError):
        escalate()
    assert not Notification.objects.exists()


# --- email --------------------------------------------------------------------------------------


def test_email_names_ticket_client_and_promise_with_a_stable_message_id(
        world: World, now: datetime, smtp: Mailbox) -> None:
    head = _with_email(world.head, "helen@dealer.example", "ru")
    ann = _with_email(world.ann, "ann@dealer.example", "en")
    ticket = world.ticket(owner=world.ann)
    notify(recipient=head, kind="escalation", payload=_payload(ticket), key="e:1", ticket=ticket,
           channels=("email",))
    notify(recipient=ann, kind="escalation", payload=_payload(ticket, level="remind"),
           key="e:2", ticket=ticket, channels=("email",))
    report = deliver_pending(now=now)
    assert (report.sent, report.failed, report.retried) == (2, 0, 0)
    by_to = {m["To"]: m for m in smtp.messages}
    ru, en = by_to["helen@dealer.example"], by_to["ann@dealer.example"]
    for m in (ru, en):
        text = m.get_payload(decode=True).decode()
        assert ticket.number in text and "Ivan Petrov" in text
        assert "Contract ready by Monday 18:00" in text
    assert _subject(ru).startswith(f"Эскалация: {ticket.number} · Ivan Petrov")
    assert _subject(en).startswith("Reminder: ")
    n = Notification.objects.get(recipient=head)
    assert ru["Message-ID"] == f"<notification-{n.pk}@dealer.example>" == mail.message_id(n)
    assert n.status == "sent" and n.sent_at == now and n.attempts == 1


def test_smtp_451_is_retried_with_backoff_and_every_mail_arrives_once(
        world: World, now: datetime, smtp: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    people = [_with_email(u, f"{u.username}@dealer.example")
              for u in (world.head, world.ann, world.director)]
    for i, person in enumerate(people):
        notify(recipient=person, kind="escalation", payload=_payload(ticket), key=f"e:{i}",
               ticket=ticket, channels=("email",))
    smtp.answer = "451 4.3.0 Try again later"
    first = deliver_pending(now=now)
    assert (first.claimed, first.retried, first.sent) == (3, 3, 0)
    rows = list(Notification.objects.all())
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {
        ("pending", 1, now + timedelta(minutes=1))}
    assert "451" in rows[0].last_error
    # Not due yet: nothing is tried.
    assert deliver_pending(now=now + timedelta(seconds=30)).claimed == 0
    second = deliver_pending(now=now + timedelta(minutes=1))
    assert second.retried == 3
    assert set(Notification.objects.values_list("next_attempt_at", flat=True)) == {
        now + timedelta(minutes=3)}
    smtp.answer = "250 OK"
    third = deliver_pending(now=now + timedelta(minutes=3))
    assert third.sent == 3
    assert deliver_pending(now=now + timedelta(hours=5)).claimed == 0
    assert sorted(m["To"] for m in smtp.messages) == sorted(p.email for p in people)
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 3)}


def test_smtp_550_marks_the_notification_failed_for_good(
        world: World, now: datetime, smtp: Mailbox) -> None:
    head = _with_email(world.head, "helen@dealer.example")
    ticket = world.ticket(owner=world.ann)
    notify(recipient=head, kind="escalation", payload=_payload(ticket), key="e", ticket=ticket,
           channels=("email",))
    smtp.answer = "550 5.1.1 No such mailbox"
    report = deliver_pending(now=now)
    assert (report.failed, report.sent) == (1, 0)
    n = Notification.objects.get()
    assert n.status == "failed" and "550" in n.last_error and n.next_attempt_at is None
    smtp.answer = "250 OK"
    assert deliver_pending(now=now + timedelta(days=1)).claimed == 0
    assert smtp.messages == []


def test_too_many_temporary_failures_end_failed(world: World, now: datetime, smtp: Mailbox,
                                                settings: Any) -> None:
    settings.ESTAFETA_NOTIFY_MAX_ATTEMPTS = 2
    head = _with_email(world.head, "helen@dealer.example")
    notify(recipient=head, kind="escalation", payload={}, key="e", channels=("email",))
    smtp.answer = "421 4.7.0 Busy"
    deliver_pending(now=now)
    deliver_pending(now=now + timedelta(hours=1))
    n = Notification.objects.get()
    assert n.status == "failed" and n.last_error.startswith("gave up after 2 attempts")


def test_an_unreachable_smtp_server_is_retried(world: World, now: datetime,
                                               settings: Any) -> None:
    settings.ESTAFETA_SMTP_HOST = "127.0.0.1"
    settings.ESTAFETA_SMTP_PORT = 9  # discard: nothing listens
    head = _with_email(world.head, "helen@dealer.example")
    notify(recipient=head, kind="escalation", payload={}, key="e", channels=("email",))
    assert deliver_pending(now=now).retried == 1
    assert Notification.objects.get().status == "pending"


def test_header_injection_through_a_client_name_is_impossible(
        world: World, now: datetime, smtp: Mailbox) -> None:
    head = _with_email(world.head, "helen@dealer.example", "en")
    ticket = world.ticket(owner=world.ann)
    evil = "Ivan\r\nBcc: victim@example.com\r\nX-Evil: 1"
    notify(recipient=head, kind="escalation", payload=_payload(ticket, client=evil), key="e",
           ticket=ticket, channels=("email",))
    assert deliver_pending(now=now).sent == 1
    (m,) = smtp.messages
    assert m["Bcc"] is None and m["X-Evil"] is None
    assert "Ivan Bcc: victim@example.com X-Evil: 1 · task overdue" in _subject(m)


def test_without_smtp_host_mail_goes_to_the_console(world: World, now: datetime, settings: Any,
                                                    capsys: Any) -> None:
    settings.ESTAFETA_SMTP_HOST = ""
    head = _with_email(world.head, "helen@dealer.example", "en")
    ticket = world.ticket(owner=world.ann)
    notify(recipient=head, kind="escalation", payload=_payload(ticket), key="e", ticket=ticket,
           channels=("email",))
    assert deliver_pending(now=now).sent == 1
    out = capsys.readouterr().out
    assert ticket.number in out and "helen@dealer.example" in out


# --- re-check at send time ------------------------------------------------------------------------


def test_a_recipient_who_may_no_longer_see_the_ticket_gets_nothing(
        world: World, now: datetime, smtp: Mailbox) -> None:
    ann = _with_email(world.ann, "ann@dealer.example")
    ticket = world.ticket(owner=world.ann)
    notify(recipient=ann, kind="escalation", payload=_payload(ticket), key="e", ticket=ticket,
           channels=("inapp", "email"))
    # Ann's tickets went to Bob before the worker ran.
    ticket_reassign(actor=world.head, ticket=ticket, owner=world.bob, reason="holiday")
    from estafeta.tasks.models import Task
    from estafeta.tickets.access import can_see
    if can_see(ann, ticket):  # she still holds a task on it: take it away too
        Task.objects.filter(ticket=ticket, assignee=ann).update(assignee=world.bob)
    assert not can_see(ann, ticket)
    report = deliver_pending(now=now)
    assert (report.failed, report.sent) == (2, 0)
    assert set(Notification.objects.values_list("status", flat=True)) == {"failed"}
    assert all(e.startswith("not visible") for e in
               Notification.objects.values_list("last_error", flat=True))
    assert smtp.messages == []


# --- webhooks -----------------------------------------------------------------------------------


class Hook:
    def __init__(self) -> None:
        self.status = 204
        self.received: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/hook?x=1"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_is_signed_and_verified_by_the_receiver(world: World, now: datetime,
                                                        hook: tuple[Hook, str]) -> None:
    state, url = hook
    WebhookEndpoint.objects.create(url=url, secret="s3cret", allow_private=True)
    ticket = world.ticket(owner=world.ann)
    (n,) = notify(recipient=world.head, kind="escalation", payload=_payload(ticket), key="e",
                  ticket=ticket, channels=("webhook",))
    assert deliver_pending(now=now).sent == 1
    ((headers, body),) = state.received
    expected = hmac.new(b"s3cret", headers["x-estafeta-timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-estafeta-signature"], f"sha256={expected}")
    assert headers["x-estafeta-delivery"] == str(n.pk)
    data = json.loads(body)
    assert data["ticket"] == ticket.number and data["payload"]["client"] == "Ivan Petrov"


@pytest.mark.parametrize(("status", "outcome"), [(500, "pending"), (429, "pending"),
                                                 (408, "pending"), (404, "failed"),
                                                 (410, "failed")])
def test_webhook_answers_decide_retry_or_failure(world: World, now: datetime,
                                                 hook: tuple[Hook, str], status: int,
                                                 outcome: str) -> None:
    state, url = hook
    state.status = status
    WebhookEndpoint.objects.create(url=url, secret="s", allow_private=True)
    notify(recipient=world.head, kind="escalation", payload={}, key="e", channels=("webhook",))
    deliver_pending(now=now)
    n = Notification.objects.get()
    assert n.status == outcome and f"HTTP {status}" in n.last_error


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/",
                                 "http://10.1.2.3/", "http://169.254.169.254/latest/",
                                 "http://[::1]:{port}/", "http://192.168.0.10/"])
def test_private_loopback_and_link_local_targets_are_refused(
        world: World, now: datetime, hook: tuple[Hook, str], url: str) -> None:
    state, hook_url = hook
    port = hook_url.split(":")[2].split("/")[0]
    WebhookEndpoint.objects.create(url=url.format(port=port), secret="s")
    notify(recipient=world.head, kind="escalation", payload={}, key="e", channels=("webhook",))
    assert deliver_pending(now=now).failed == 1
    n = Notification.objects.get()
    assert n.status == "failed" and "private" in n.last_error
    assert state.received == []
