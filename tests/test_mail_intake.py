"""Email intake (issue 6): every bad input named in the issue with its outcome (ticket,
quarantine or refusal) and nothing lost; threading, subject numbers, duplicates, loops,
acknowledgements; the maildir transport and the console command."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from estafeta.intake.models import DuplicateFlag, IntakeRecord
from estafeta.mailin.models import (
    MailAttachment,
    Mailbox,
    MailMessage,
    Quarantine,
)
from estafeta.mailin.services import mail_ingest, mailbox_save, quarantine_resolve
from estafeta.mailin.transports import PollReport, poll_mailbox
from estafeta.notifications.models import Notification
from estafeta.tickets.models import Activity, Ticket

from .factories import World


def make(subject: str = "I need a car", sender: str = "Maria <maria@example.com>",
         body: str = "Hello, I need a car.", msgid: str | None = "<m1@example.com>",
         **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "sales@dealer.ru"
    msg["Subject"] = subject
    msg["Date"] = "Wed, 02 Dec 2026 09:30:00 +0300"
    if msgid:
        msg["Message-ID"] = msgid
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def box(world: World, tmp_path: Path) -> Mailbox:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return mailbox_save(actor=world.admin, mailbox=Mailbox(
        name="Sales", address="sales@dealer.ru", kind="maildir", path=str(root),
        pipeline=world.pipeline, acknowledge=True))


def quarantined(reason: str) -> Quarantine:
    item = Quarantine.objects.get()
    assert item.reason == reason
    assert default_storage.exists(item.raw.path)  # the raw message is kept: nothing lost
    return item


def test_new_message_makes_ticket_activity_and_acknowledgement(box: Mailbox) -> None:
    result = mail_ingest(make(), mailbox=box)
    assert result.status == "created" and result.ticket is not None
    ticket = result.ticket
    assert ticket.channel == "email" and ticket.subject == "I need a car"
    assert ticket.pipeline_id == box.pipeline_id
    assert ticket.client.contacts.get().value == "maria@example.com"
    message = MailMessage.objects.get(direction="in")
    assert message.ticket == ticket and message.text == "Hello, I need a car."
    assert message.intake_record is not None and message.activity is not None
    activity = Activity.objects.get(ticket=ticket, direction="in")
    assert (activity.kind, activity.outcome, activity.source) == ("email", "received",
                                                                  "email_intake")
    ack = MailMessage.objects.get(direction="out")
    assert ack.auto_reply and ack.in_reply_to == "<m1@example.com>"
    assert ticket.number in ack.subject and ticket.number in ack.text
    assert ack.to_addresses == "maria@example.com" and ack.from_address == "sales@dealer.ru"
    n = Notification.objects.get(kind="mail_ack")
    from estafeta.mailin.ack import ack_email

    email = ack_email(n)
    assert email.extra_headers["Auto-Submitted"] == "auto-replied"
    assert email.extra_headers["In-Reply-To"] == "<m1@example.com>"
    assert email.to == ["maria@example.com"]


def test_same_message_id_twice_makes_one_ticket(box: Mailbox, world: World) -> None:
    first = mail_ingest(make(), mailbox=box)
    again = mail_ingest(make(), mailbox=box)
    assert again.status == "repeated" and again.ticket == first.ticket
    other = mailbox_save(actor=None, mailbox=Mailbox(
        name="Info", address="info@dealer.ru", kind="maildir", path="/nonexistent",
        pipeline=world.pipeline))
    third = mail_ingest(make(), mailbox=other)  # the same message sent to two of our boxes
    assert third.status == "repeated" and third.ticket == first.ticket
    assert Ticket.objects.count() == 1
    assert MailMessage.objects.filter(direction="in").count() == 1
    assert IntakeRecord.objects.count() == 1


def test_message_without_id_is_keyed_by_its_content(box: Mailbox) -> None:
    raw = make(msgid=None)
    assert mail_ingest(raw, mailbox=box).status == "created"
    assert mail_ingest(raw, mailbox=box).status == "repeated"
    assert MailMessage.objects.get(direction="in").message_id.endswith("@estafeta.invalid>")


def test_reply_threads_by_in_reply_to_and_references(box: Mailbox) -> None:
    first = mail_ingest(make(), mailbox=box).ticket
    ack = MailMessage.objects.get(direction="out")
    # the client answers our acknowledgement from another address: threading still wins
    reply = make(subject="Re: something", sender="m.work@corp.ru", msgid="<m2@corp.ru>",
                 In_Reply_To=ack.message_id)
    result = mail_ingest(reply, mailbox=box)
    assert result.status == "attached" and result.ticket == first
    refs = make(subject="later", sender="x@corp.ru", msgid="<m3@corp.ru>",
                References="<unknown@x> <m1@example.com>")
    assert mail_ingest(refs, mailbox=box).ticket == first


def test_subject_number_only_from_an_address_on_the_ticket(box: Mailbox, world: World) -> None:
    first = mail_ingest(make(), mailbox=box).ticket
    assert first is not None
    own = make(subject=f"About {first.number}", msgid="<m2@example.com>")
    assert mail_ingest(own, mailbox=box).ticket == first
    stranger = make(subject=f"Re: [#{first.number}] price", sender="rival@other.ru",
                    msgid="<s1@other.ru>")
    result = mail_ingest(stranger, mailbox=box)
    assert result.status == "flagged" and result.ticket != first
    assert DuplicateFlag.objects.filter(ticket=result.ticket, of=first).exists()


@pytest.mark.parametrize(("headers", "why"), [
    ({"Auto_Submitted": "auto-replied"}, "auto"),
    ({"Precedence": "bulk"}, "precedence"),
    ({"X_Auto_Response_Suppress": "All"}, "suppress"),
])
def test_automatic_mail_is_recorded_but_never_acknowledged(box: Mailbox, headers: dict[str, str],
                                                           why: str) -> None:
    result = mail_ingest(make(**headers), mailbox=box)
    assert result.status == "created", why
    assert MailMessage.objects.get(direction="in").auto_reply
    assert not MailMessage.objects.filter(direction="out").exists()
    assert not Notification.objects.filter(kind="mail_ack").exists()


def test_bounce_is_quarantined_without_reply(box: Mailbox) -> None:
    raw = (b"From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail\r\n"
           b"Message-ID: <bounce1@mx>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report;"
           b" report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\n"
           b"Content-Type: text/plain\r\n\r\ngone\r\n--B\r\n"
           b"Content-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--B--\r\n")
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "quarantined"
    quarantined("bounce")
    assert not Ticket.objects.exists() and not Notification.objects.exists()


def test_mail_from_our_own_address_is_a_loop(box: Mailbox, settings: object) -> None:
    assert mail_ingest(make(sender="sales@dealer.ru"), mailbox=box).status == "quarantined"
    quarantined("own_mail")
    assert not Ticket.objects.exists()


def test_spoofed_internal_headers_are_ignored(box: Mailbox) -> None:
    first = mail_ingest(make(), mailbox=box).ticket
    assert first is not None
    spoof = make(sender="rival@other.ru", msgid="<sp@other.ru>",
                 X_Estafeta_Ticket=first.number, X_Estafeta_Notification="1",
                 X_Estafeta_Mailbox=str(box.pk))
    result = mail_ingest(spoof, mailbox=box)
    assert result.status == "created" and result.ticket != first


def test_header_injection_in_an_encoded_subject_stays_one_line(box: Mailbox) -> None:
    raw = make().replace(b"Subject: I need a car",
                         b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_victim=40x=2Eru?=")
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "created" and result.ticket is not None
    assert result.ticket.subject == "Hi Bcc: victim@x.ru"
    from estafeta.mailin.ack import ack_email

    email = ack_email(Notification.objects.get(kind="mail_ack"))
    assert "\n" not in email.subject and "Bcc" not in email.extra_headers
    assert email.bcc == [] and "victim@x.ru" not in email.to


@pytest.mark.parametrize(("sender", "reason"), [
    ("a@example.com, b@example.com", "ambiguous_from"),
    ("not an address", "no_sender"),
])
def test_ambiguous_or_missing_sender_is_quarantined(box: Mailbox, sender: str,
                                                    reason: str) -> None:
    raw = make().replace(b"From: Maria <maria@example.com>", f"From: {sender}".encode())
    assert mail_ingest(raw, mailbox=box).status == "quarantined"
    quarantined(reason)
    assert not Ticket.objects.exists()


def test_two_from_headers_are_quarantined(box: Mailbox) -> None:
    raw = b"From: boss@dealer-partner.ru\r\n" + make()
    assert mail_ingest(raw, mailbox=box).status == "quarantined"
    quarantined("ambiguous_from")


def test_display_name_that_looks_like_an_address_is_dropped(box: Mailbox) -> None:
    raw = make(sender='"director@dealer.ru" <evil@example.com>')
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "created" and result.ticket is not None
    assert result.ticket.client.contacts.get().value == "evil@example.com"
    assert "director" not in result.ticket.client.name
    assert MailMessage.objects.get(direction="in").from_name == ""


def test_unknown_charset_and_broken_base64_still_make_a_ticket(box: Mailbox) -> None:
    raw = (b"From: maria@example.com\r\nSubject: charset\r\nMessage-ID: <c1@x>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode("Привет, нужна машина".encode())[:-3] + b"!!\r\n")
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "created"
    text = MailMessage.objects.get(direction="in").text
    assert text.startswith("Привет")


def test_malformed_mime_is_read_as_far_as_possible(box: Mailbox) -> None:
    raw = (b"From: maria@example.com\r\nSubject: broken\r\nMessage-ID: <b1@x>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
           b"--XX\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--XX\r\nContent-Type: "
           b"application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"%%%not base64%%%\r\n")  # no closing boundary
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "created"
    assert "the text" in MailMessage.objects.get(direction="in").text


def test_garbage_is_quarantined(box: Mailbox) -> None:
    assert mail_ingest(b"\x00\x01\x02 not mail at all", mailbox=box).status == "quarantined"
    quarantined("unparseable")
    assert mail_ingest(b"   \r\n", mailbox=box).status == "quarantined"


def test_huge_body_is_cut_and_says_so(box: Mailbox, settings: object) -> None:
    settings.ESTAFETA_MAIL_MAX_TEXT = 1000  # type: ignore[attr-defined]
    result = mail_ingest(make(body="word " * 5000), mailbox=box)
    assert result.status == "created"
    message = MailMessage.objects.get(direction="in")
    assert message.truncated and "cut at 1000 characters" in message.text
    assert len(message.text) < 1100


def test_huge_message_is_quarantined(box: Mailbox, settings: object) -> None:
    settings.ESTAFETA_MAIL_MAX_MESSAGE = 2000  # type: ignore[attr-defined]
    assert mail_ingest(make(body="x" * 5000), mailbox=box).status == "quarantined"
    quarantined("too_large")


def test_attachments_stored_safely_and_huge_ones_refused(box: Mailbox,
                                                         settings: object) -> None:
    settings.ESTAFETA_MAIL_MAX_ATTACHMENT = 1000  # type: ignore[attr-defined]
    msg = EmailMessage()
    msg["From"] = "maria@example.com"
    msg["Subject"] = "documents"
    msg["Message-ID"] = "<a1@x>"
    msg.set_content("see attached")
    msg.add_attachment(b"%PDF-1.4 small", maintype="application", subtype="pdf",
                       filename="../../etc/passport.pdf")
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html",
                       filename="page.html")
    msg.add_attachment(b"x" * 5000, maintype="application", subtype="pdf", filename="big.pdf")
    result = mail_ingest(msg.as_bytes(), mailbox=box)
    assert result.status == "created"
    files = {a.name: a for a in MailAttachment.objects.all()}
    assert set(files) == {"passport.pdf", "page.html"}
    assert files["passport.pdf"].content_type == "application/pdf"
    assert files["page.html"].content_type == "application/octet-stream"  # never shown inline
    with default_storage.open(files["passport.pdf"].file.path, "rb") as handle:
        assert handle.read() == b"%PDF-1.4 small"
    assert "big.pdf (5000 bytes, more than 1000) not stored" in (
        MailMessage.objects.get(direction="in").text)


def test_quarantine_resolve_is_admin_only(box: Mailbox, world: World) -> None:
    mail_ingest(b"junk", mailbox=box)
    item = Quarantine.objects.get()
    from estafeta.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        quarantine_resolve(actor=world.ann, item=item)
    assert quarantine_resolve(actor=world.admin, item=item).resolved_by == world.admin


def test_maildir_pass_moves_to_cur_only_after_commit(box: Mailbox) -> None:
    new = Path(box.path) / "new"
    (new / "1.host").write_bytes(make())
    (new / "2.host").write_bytes(b"junk")

    def crash(raw: bytes, **kw: object) -> object:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        poll_mailbox(box, PollReport(), crash)
    assert sorted(p.name for p in new.iterdir()) == ["1.host", "2.host"]  # nothing lost
    report = PollReport()
    poll_mailbox(box, report)
    assert [r.status for r in report.results] == ["created", "quarantined"]
    assert not list(new.iterdir())
    assert sorted(p.name for p in (Path(box.path) / "cur").iterdir()) == ["1.host:2,S",
                                                                          "2.host:2,S"]
    (new / "3.host").write_bytes(make())  # delivered again
    again = PollReport()
    poll_mailbox(box, again)
    assert [r.status for r in again.results] == ["repeated"]
    assert Ticket.objects.count() == 1


def test_console_command_prints_the_outcome(box: Mailbox, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(make())
    call_command("intake", "email", "--file", str(path), "--mailbox", "Sales")
    first = capsys.readouterr().out
    number = Ticket.objects.get().number
    assert f"created: {number}" in first
    call_command("intake", "email", "--file", str(path), "--mailbox", "Sales")
    assert f"repeated: {number}" in capsys.readouterr().out
    path.write_bytes(b"junk")
    call_command("intake", "email", "--file", str(path), "--mailbox", "Sales")
    assert "quarantined (unparseable)" in capsys.readouterr().out


def test_mailbox_save_checks_input_and_role(world: World) -> None:
    from estafeta.domain.errors import BadInput, Forbidden

    with pytest.raises(BadInput):
        mailbox_save(actor=world.admin, mailbox=Mailbox(name="X", address="nope", kind="imap",
                                                        host="h", username="u",
                                                        pipeline=world.pipeline))
    with pytest.raises(Forbidden):
        mailbox_save(actor=world.head, mailbox=Mailbox(name="X", address="x@y.ru", kind="imap",
                                                       host="h", username="u",
                                                       pipeline=world.pipeline))
    assert not Mailbox.objects.exists()
    box = mailbox_save(actor=world.admin, mailbox=Mailbox(
        name="X", address="X@Y.ru", kind="imap", host="h", username="u",
        pipeline=world.pipeline), password="secret")
    assert box.address == "x@y.ru" and box.password == "secret"
    box.host = "h2"
    mailbox_save(actor=world.admin, mailbox=box)  # no password given: the stored one stays
    box.refresh_from_db()
    assert box.password == "secret" and box.host == "h2"
