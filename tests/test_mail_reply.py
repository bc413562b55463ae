"""Replying to the client from the ticket page (mailin.outgoing), through a real SMTP server
(aiosmtpd on a loopback port): one message, one outbound email activity, one event and one outbox
row per reply; the email threads under the client's message and the client's answer threads
back into the same ticket. Header injection, strangers and bad files are refused with nothing
written."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.domain.errors import BadInput, Conflict, EstafetaError, Forbidden
from estafeta.history.models import Event
from estafeta.mailin.models import MailAttachment, Mailbox, MailMessage
from estafeta.mailin.outgoing import mail_reply, reply_draft, reply_subject
from estafeta.notifications.models import Notification
from estafeta.notifications.services import deliver_pending
from estafeta.tickets.models import Activity, Ticket
from estafeta.tickets.services import ticket_void

from .factories import World

pytestmark = pytest.mark.django_db

CLIENT = "ivan@example.com"


class SmtpBox:
    """aiosmtpd handler: answers DATA with ``self.answer`` and keeps what it accepted."""

    def __init__(self) -> None:
        self.answer = "250 OK"
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.answer.startswith("250"):
                self.messages.append(email.message_from_bytes(envelope.original_content))
                self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return self.answer


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpBox]:
    box = SmtpBox()
    with socket.socket() as probe:  # a free loopback port
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


@pytest.fixture
def mailbox(world: World) -> Mailbox:
    return Mailbox.objects.create(name="Sales", address="sales@dealer.example", kind="maildir",
                                  path="/nonexistent", pipeline=world.pipeline)


def inbound(ticket: Ticket, mailbox: Mailbox | None, *, message_id: str = "<c1@client.example>",
            references: str = "", subject: str = "A car for the family",
            html: str = "", text: str = "Hello, I would like a car.") -> MailMessage:
    from estafeta.core import clock

    return MailMessage.objects.create(
        mailbox=mailbox, ticket=ticket, direction="in", message_id=message_id,
        references=references, from_address=CLIENT, from_name="Ivan Petrov",
        to_addresses=mailbox.address if mailbox else "sales@dealer.example", subject=subject,
        text=text, html=html, received_at=clock.now(), created_at=clock.now())


def _subject(m: Message) -> str:
    return str(make_header(decode_header(m["Subject"]))).replace("\r\n", "").replace("\n", "")


def counts() -> tuple[int, ...]:
    return (MailMessage.objects.count(), MailAttachment.objects.count(),
            Activity.objects.count(), Event.objects.count(), Notification.objects.count())


# --- the service --------------------------------------------------------------------------------


def test_a_reply_writes_the_message_an_outbound_email_activity_one_event_and_one_outbox_row(
        world: World, mailbox: Mailbox, now: datetime) -> None:
    ticket = world.ticket(owner=world.ann)
    first = inbound(ticket, mailbox, references="<root@client.example>")
    before = counts()
    events = Event.objects.count()
    reply = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="",
                       text="Dear Ivan,\nthe car is ready for a test drive.")
    assert counts()[:3] == (before[0] + 1, before[1], before[2] + 1)
    assert Event.objects.count() == events + 1
    assert reply.direction == "out" and reply.ticket_id == ticket.pk
    assert reply.in_reply_to == first.message_id
    assert reply.references == "<root@client.example> <c1@client.example>"
    assert reply.message_id.startswith("<reply-") and reply.message_id.endswith(
        "@dealer.example>")
    assert reply.subject == f"Re: A car for the family [#{ticket.number}]"
    assert reply.from_address == "sales@dealer.example" and reply.mailbox_id == mailbox.pk
    activity = reply.activity
    assert activity is not None
    assert (activity.kind, activity.direction, activity.outcome, activity.performed_by_id) == (
        "email", "out", "sent", world.ann.pk)
    event = Event.objects.order_by("-pk").first()
    assert event is not None and event.type == "activity.logged"
    (row,) = Notification.objects.filter(kind="mail_reply")
    assert (row.channel, row.status, row.recipient_id, row.ticket_id) == (
        "email", "pending", world.ann.pk, ticket.pk)
    assert row.payload["message"] == reply.pk


def test_the_reply_arrives_through_smtp_threaded_under_the_clients_message(
        world: World, mailbox: Mailbox, now: datetime, smtp: SmtpBox) -> None:
    ticket = world.ticket(owner=world.ann)
    inbound(ticket, mailbox, references="<root@client.example>",
            subject="RE: Fwd: A car for the family")
    reply = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="",
                       text="Привет, Иван!\nМашина готова.")
    report = deliver_pending(now=now)
    assert report.sent == 1, report.errors
    (m,) = smtp.messages
    assert m["Message-ID"] == reply.message_id
    assert m["In-Reply-To"] == "<c1@client.example>"
    assert m["References"].split() == ["<root@client.example>", "<c1@client.example>"]
    assert _subject(m) == f"Re: A car for the family [#{ticket.number}]"
    assert "sales@dealer.example" in m["From"] and m["To"] == CLIENT
    assert m["Auto-Submitted"] is None  # a person wrote it: the client's autoresponder may answer
    body = m.get_payload(decode=True)
    assert isinstance(body, bytes) and "Машина готова." in body.decode(m.get_content_charset()
                                                                        or "utf-8")
    assert smtp.envelopes[0][1] == [CLIENT]
    # A retry would carry the same Message-ID: it is stored, not made at sending time.
    assert MailMessage.objects.get(pk=reply.pk).message_id == m["Message-ID"]


def test_the_clients_answer_to_a_reply_threads_into_the_same_ticket(
        world: World, mailbox: Mailbox, now: datetime, smtp: SmtpBox) -> None:
    from estafeta.mailin.services import mail_ingest

    ticket = world.ticket(owner=world.ann)
    reply = mail_reply(actor=world.ann, ticket=ticket, to="someone.else@client.example",
                       subject="Your test drive", text="Come on Friday.")
    deliver_pending(now=now)
    (sent,) = smtp.messages
    # No number in the subject, from an address not on the client: only the threading headers
    # can bring it home.
    raw = (f"From: Someone <someone.else@client.example>\r\nTo: sales@dealer.example\r\n"
           f"Subject: Friday is fine\r\nMessage-ID: <answer-1@client.example>\r\n"
           f"In-Reply-To: {sent['Message-ID']}\r\nReferences: {sent['Message-ID']}\r\n"
           f"Date: Wed, 02 Dec 2026 10:00:00 +0300\r\n\r\nSee you on Friday.\r\n").encode()
    result = mail_ingest(raw, mailbox=mailbox)
    assert result.ticket is not None and result.ticket.pk == ticket.pk
    answer = MailMessage.objects.get(direction="in", message_id="<answer-1@client.example>")
    assert answer.ticket_id == ticket.pk and answer.in_reply_to == reply.message_id
    # and the next reply answers that message
    second = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Great.")
    assert second.in_reply_to == "<answer-1@client.example>"
    assert second.references.split() == [reply.message_id, "<answer-1@client.example>"]
    assert second.subject == f"Re: Friday is fine [#{ticket.number}]"


def test_without_an_email_from_the_client_the_reply_starts_a_thread_from_the_default_sender(
        world: World, now: datetime, smtp: SmtpBox) -> None:
    ticket = world.ticket(owner=world.ann)
    draft = reply_draft(ticket)
    assert draft.to == CLIENT  # the client's email contact
    assert draft.subject == f"Re: {ticket.subject} [#{ticket.number}]"
    reply = mail_reply(actor=world.ann, ticket=ticket, to=draft.to, subject=draft.subject,
                       text="Hello")
    assert (reply.in_reply_to, reply.references, reply.mailbox_id) == ("", "", None)
    assert reply.from_address == "estafeta@dealer.example"
    assert reply.message_id.endswith("@dealer.example>")
    deliver_pending(now=now)
    (m,) = smtp.messages
    assert m["In-Reply-To"] is None and m["References"] is None
    assert "estafeta@dealer.example" in m["From"]


def test_a_subject_of_ones_own_keeps_the_ticket_number(world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    reply = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="Your invoice",
                       text="Attached.")
    assert reply.subject == f"Your invoice [#{ticket.number}]"
    assert reply_subject(ticket, "Re: re: AW: Ответ: Price") == f"Re: Price [#{ticket.number}]"


@pytest.mark.parametrize(("to", "subject", "code"), [
    (CLIENT, "Hello\r\nBcc: victim@example.org", "header_injection"),
    (CLIENT, "Hello\nBcc: victim@example.org", "header_injection"),
    (CLIENT, "Hello\rX-Injected: 1", "header_injection"),
    (CLIENT, "Hello\x00", "header_injection"),
    (CLIENT, "Hello\u2028Bcc: victim@example.org", "header_injection"),
    (f"{CLIENT}\r\nBcc: victim@example.org", "Hello", "header_injection"),
    (f"{CLIENT}\nCc: victim@example.org", "Hello", "header_injection"),
    ("not an address", "Hello", "bad_email"),
    ("", "Hello", "recipient_required"),
    (",".join(f"c{i}@example.com" for i in range(11)), "Hello", "too_many_recipients"),
])
def test_header_injection_and_bad_recipients_are_refused_with_nothing_written(
        world: World, mailbox: Mailbox, to: str, subject: str, code: str) -> None:
    ticket = world.ticket(owner=world.ann)
    inbound(ticket, mailbox)
    before = counts()
    with pytest.raises(BadInput) as caught:
        mail_reply(actor=world.ann, ticket=ticket, to=to, subject=subject, text="Hello")
    assert caught.value.code == code
    assert counts() == before


def test_an_empty_or_huge_text_is_refused(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    before = counts()
    for text, code in (("  \n ", "text_required"), ("x" * 100_001, "too_long")):
        with pytest.raises(BadInput) as caught:
            mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text=text)
        assert caught.value.code == code
    assert counts() == before


@pytest.mark.parametrize("who", ["operator", "bob", "olga"])
def test_people_not_working_on_the_ticket_may_not_reply(world: World, who: str) -> None:
    ticket = world.ticket(owner=world.ann)
    before = counts()
    with pytest.raises(Forbidden):
        mail_reply(actor=getattr(world, who), ticket=ticket, to=CLIENT, subject="", text="Hi")
    assert counts() == before


def test_the_head_may_reply_and_a_void_ticket_takes_no_reply(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    assert mail_reply(actor=world.head, ticket=ticket, to=CLIENT, subject="", text="Hi").pk
    ticket_void(actor=world.ann, ticket=Ticket.objects.get(pk=ticket.pk), reason="spam")
    before = counts()
    with pytest.raises(Conflict):
        mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Hi")
    assert counts() == before


def test_attachments_go_with_the_reply_and_unaccepted_files_refuse_all_of_it(
        world: World, mailbox: Mailbox, now: datetime, smtp: SmtpBox) -> None:
    ticket = world.ticket(owner=world.ann)
    pdf = SimpleUploadedFile("Счёт №1.pdf", b"%PDF-1.4 invoice", content_type="application/pdf")
    reply = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="Invoice",
                       text="The invoice.", attachments=[pdf])
    (attachment,) = reply.attachments.all()
    assert (attachment.name, attachment.content_type) == ("Счёт №1.pdf", "application/pdf")
    deliver_pending(now=now)
    (m,) = smtp.messages
    parts = [p for p in m.walk() if p.get_filename()]
    assert len(parts) == 1 and parts[0].get_payload(decode=True) == b"%PDF-1.4 invoice"
    before = counts()
    exe = SimpleUploadedFile("setup.exe", b"MZ...", content_type="application/octet-stream")
    good = SimpleUploadedFile("a.pdf", b"%PDF-1.4 a", content_type="application/pdf")
    with pytest.raises(BadInput) as caught:
        mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="x",
                   attachments=[good, exe])
    assert caught.value.code == "file_type"
    assert counts() == before


# --- the web form ---------------------------------------------------------------------------------


def _http(user: User) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def test_the_ticket_page_shows_the_thread_and_the_reply_form_to_those_who_may_reply(
        world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    inbound(ticket, mailbox, text="I would like the red one.")
    page = _http(world.ann).get(f"/tickets/{ticket.number}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="mail"' in html and "I would like the red one." in html
    assert f'action="/tickets/{ticket.number}/mail/reply/"' in html
    assert f'value="{CLIENT}"' in html
    # the operator who registered it sees the thread but is not offered the form
    page = _http(world.operator).get(f"/tickets/{ticket.number}/")
    assert "I would like the red one." in page.content.decode()
    assert "/mail/reply/" not in page.content.decode()


def test_replying_through_the_form_sends_and_returns_to_the_ticket(
        world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    inbound(ticket, mailbox)
    answer = _http(world.ann).post(f"/tickets/{ticket.number}/mail/reply/", {
        "reply-to": CLIENT, "reply-subject": "", "reply-text": "See you tomorrow.",
        "reply-attachments": [SimpleUploadedFile("plan.pdf", b"%PDF-1.4 plan")]})
    assert answer.status_code == 302
    assert answer["Location"] == f"/tickets/{ticket.number}/#mail"
    reply = MailMessage.objects.get(direction="out")
    assert reply.text == "See you tomorrow." and reply.attachments.count() == 1


def test_a_refused_form_shows_why_and_writes_nothing(world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    inbound(ticket, mailbox)
    before = counts()
    User.objects.filter(pk=world.ann.pk).update(language="en")
    answer = _http(world.ann).post(f"/tickets/{ticket.number}/mail/reply/", {
        "reply-to": CLIENT, "reply-subject": "Hi\r\nBcc: x@example.org", "reply-text": "x"})
    assert answer.status_code == 400
    assert "must be one line" in answer.content.decode()
    assert counts() == before
    # someone who sees the ticket but does not work on it: 403, nothing written
    answer = _http(world.operator).post(f"/tickets/{ticket.number}/mail/reply/", {
        "reply-to": CLIENT, "reply-subject": "", "reply-text": "x"})
    assert answer.status_code == 403
    assert counts() == before


def test_a_ticket_one_may_not_see_answers_404_for_every_mail_url(
        world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    message = inbound(ticket, mailbox)
    bob = _http(world.bob)
    for url in (f"/tickets/{ticket.number}/mail/", f"/tickets/{ticket.number}/mail/{message.pk}/"):
        assert bob.get(url).status_code == 404
    before = counts()
    answer = bob.post(f"/tickets/{ticket.number}/mail/reply/",
                      {"reply-to": CLIENT, "reply-text": "x"})
    assert answer.status_code == 404
    assert counts() == before


def test_errors_are_domain_errors(world: World) -> None:
    # the web layer maps every refusal through EstafetaError codes
    ticket = world.ticket(owner=world.ann)
    with pytest.raises(EstafetaError):
        mail_reply(actor=world.ann, ticket=ticket, to="", subject="", text="x")
