"""Email intake over IMAP against a real server (a private dovecot, tests/mailserver.py):
messages APPENDed over IMAP are read by the worker's pass; a crash between fetch and commit
leaves the message unread and the next pass takes it in once."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from estafeta.control.management.commands.worker import run_pass
from estafeta.mailin.models import Mailbox, MailMessage, Quarantine
from estafeta.mailin.services import mail_ingest, mailbox_save
from estafeta.mailin.transports import PollReport, poll_all, poll_mailbox
from estafeta.tickets.models import Ticket

from .factories import World
from .mailserver import MailServer, mailserver  # noqa: F401  # the fixture

pytestmark = pytest.mark.django_db(transaction=False)


def message(n: int, sender: str = "client@example.com") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "sales@dealer.ru"
    msg["Subject"] = f"Request {n}"
    msg["Message-ID"] = f"<imap-{n}@example.com>"
    msg.set_content(f"Please call me back, request {n}.")
    return msg.as_bytes()


@pytest.fixture
def box(world: World, mailserver: MailServer, settings: object) -> Mailbox:  # noqa: F811
    settings.ESTAFETA_MAIL_CA_FILE = mailserver.ca_file  # type: ignore[attr-defined]
    return mailbox_save(actor=world.admin, password=mailserver.password, mailbox=Mailbox(
        name="IMAP sales", address="sales@dealer.ru", kind="imap", host="localhost",
        port=mailserver.port, username=mailserver.user, pipeline=world.pipeline))


def drain(server: MailServer, box: Mailbox) -> None:
    """Earlier tests in the module share the server: start from an empty unread list."""
    poll_mailbox(box, PollReport(), lambda raw, **kw: None)  # type: ignore[arg-type,return-value]


def test_worker_pass_reads_imap_into_tickets(box: Mailbox, mailserver: MailServer) -> None:  # noqa: F811
    drain(mailserver, box)
    mailserver.append(message(1))
    mailserver.append(b"this is not an email")
    mailserver.append(message(2, sender="other@example.com"))
    summary = run_pass()
    assert "mail: 1 mailboxes, 2 created, 1 quarantined" in summary
    assert mailserver.unseen() == 0
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Request 1",
                                                                        "Request 2"]
    assert Quarantine.objects.get().reason == "unparseable"
    box.refresh_from_db()
    assert box.last_polled_at is not None and box.last_error == ""
    # delivered again (a client's double send, a server replay): no second ticket
    mailserver.append(message(1))
    assert "1 repeated" in run_pass()
    assert Ticket.objects.count() == 2


def test_crash_between_fetch_and_commit_rereads_once(box: Mailbox,
                                                     mailserver: MailServer) -> None:  # noqa: F811
    drain(mailserver, box)
    mailserver.append(message(10))

    def crash(raw: bytes, **kw: object) -> object:
        raise RuntimeError("killed after the fetch, before the commit")

    with pytest.raises(RuntimeError):
        poll_mailbox(box, PollReport(), crash)
    assert mailserver.unseen() == 1 and not Ticket.objects.exists()

    def commit_then_crash(raw: bytes, **kw: object) -> object:
        mail_ingest(raw, **kw)  # type: ignore[arg-type]
        raise RuntimeError("killed after the commit, before \\Seen")

    with pytest.raises(RuntimeError):
        poll_mailbox(box, PollReport(), commit_then_crash)
    assert mailserver.unseen() == 1 and Ticket.objects.count() == 1
    report = poll_all()
    assert [r.status for r in report.results] == ["repeated"]
    assert mailserver.unseen() == 0
    assert Ticket.objects.count() == 1 and MailMessage.objects.filter(direction="in").count() == 1


def test_wrong_password_or_certificate_is_noted_not_fatal(box: Mailbox,
                                                          mailserver: MailServer,  # noqa: F811
                                                          settings: object) -> None:
    box.password = "wrong"
    report = PollReport()
    poll_mailbox(box, report)
    assert report.errors and "IMAP" in report.errors[0]
    box.refresh_from_db()
    assert "IMAP" in box.last_error
    settings.ESTAFETA_MAIL_CA_FILE = ""  # type: ignore[attr-defined]  # self-signed: refused
    box.password = mailserver.password
    report = PollReport()
    poll_mailbox(box, report)
    assert report.errors and "CERTIFICATE" in report.errors[0].upper()
    box.ssl_verify = False  # the admin's explicit choice per mailbox
    report = PollReport()
    poll_mailbox(box, report)
    assert not report.errors
