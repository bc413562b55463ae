"""Issue 6 review: hostile input and erased clients across the intake channels (each test
failed before its fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estafeta.clients.models import Client
from estafeta.clients.services import client_anonymise
from estafeta.hooks.models import HookMessage
from estafeta.hooks.services import hook_source_create
from estafeta.intake.models import IntakeRecord
from estafeta.mailin.models import Mailbox, MailMessage, Quarantine
from estafeta.mailin.services import mail_ingest, mailbox_save
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket

from .factories import World
from .test_hooks import message, post
from .test_mail_intake import make

pytestmark = pytest.mark.django_db


@pytest.fixture
def box(world: World, tmp_path: Path) -> Mailbox:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return mailbox_save(actor=world.admin, mailbox=Mailbox(
        name="Sales", address="sales@dealer.ru", kind="maildir", path=str(root),
        pipeline=world.pipeline, acknowledge=True))


def _with_header(raw: bytes, header: bytes) -> bytes:
    return raw.replace(b"Subject:", header + b"\nSubject:", 1)


def test_nul_in_message_id_is_not_an_id_and_the_message_is_taken_in(box: Mailbox) -> None:
    # On PostgreSQL a NUL reached the database and stopped the mailbox at this message on
    # every pass (a DataError leaves it unread); it is simply not a Message-ID.
    raw = _with_header(make(msgid=None), b"Message-ID: <a\x00b@example.com>")
    result = mail_ingest(raw, mailbox=box)
    assert result.status == "created" and not Quarantine.objects.exists()
    stored = MailMessage.objects.get(direction="in")
    assert "\x00" not in stored.message_id and stored.message_id.endswith("@estafeta.invalid>")
    assert mail_ingest(raw, mailbox=box).status == "repeated"  # still keyed (by content)


def test_nul_in_references_is_ignored(box: Mailbox) -> None:
    first = mail_ingest(make(), mailbox=box)
    raw = _with_header(make(msgid="<m2@example.com>"),
                       b"References: <x\x00y@example.com> <m1@example.com>\n"
                       b"In-Reply-To: <q\x01r@example.com>")
    again = mail_ingest(raw, mailbox=box)
    assert again.status == "attached" and again.ticket == first.ticket
    stored = MailMessage.objects.get(message_id="<m2@example.com>")
    assert stored.references == "<m1@example.com>" and stored.in_reply_to == ""


def test_lone_surrogate_in_a_messenger_text_is_refused_not_a_server_error(
        world: World) -> None:
    _source, secret = hook_source_create(actor=world.admin, name="Bot", slug="tg",
                                         kind="messenger", pipeline=world.pipeline)
    for field in ("text", "sender_name", "message_id"):
        body = json.dumps(message(**{field: "hi \ud800 there"})).encode()
        answer = post("/hooks/messenger/tg/", secret, body)
        assert answer.status_code == 400, field
        assert answer.json()["code"] == "bad_field" and answer.json()["field"] == field
    assert not HookMessage.objects.exists() and not IntakeRecord.objects.exists()


def test_reply_from_an_anonymised_client_makes_a_new_client(box: Mailbox, world: World) -> None:
    first = mail_ingest(make(), mailbox=box)
    assert first.ticket is not None
    erased = first.ticket.client
    client_anonymise(actor=world.admin, client=erased, reason="erasure request 17")
    again = mail_ingest(make(msgid="<m2@example.com>", In_Reply_To="<m1@example.com>",
                             subject=f"Re: I need a car [#{first.ticket.number}]"),
                        mailbox=box)
    assert again.ticket is not None and again.ticket != first.ticket
    assert again.ticket.client_id != erased.pk and again.status in ("created", "flagged")
    erased.refresh_from_db()
    assert erased.contacts.count() == 0 and erased.name != "Maria"
    assert Client.objects.get(pk=again.ticket.client_id).contacts.get().value == \
        "maria@example.com"
    assert not MailMessage.objects.filter(ticket=first.ticket, direction="in",
                                          message_id="<m2@example.com>").exists()


def test_out_of_office_answer_is_recorded_but_owes_no_reply(box: Mailbox) -> None:
    first = mail_ingest(make(), mailbox=box)
    ticket: Ticket = first.ticket  # type: ignore[assignment]
    before = set(Task.objects.filter(ticket=ticket).values_list("pk", flat=True))
    auto = mail_ingest(make(msgid="<m2@example.com>", In_Reply_To="<m1@example.com>",
                            subject="Automatic reply: I need a car",
                            Auto_Submitted="auto-replied"), mailbox=box)
    assert auto.status == "attached" and auto.ticket == ticket
    assert set(Task.objects.filter(ticket=ticket).values_list("pk", flat=True)) == before
    person = mail_ingest(make(msgid="<m3@example.com>", In_Reply_To="<m1@example.com>",
                              subject="Re: I need a car"), mailbox=box)
    assert person.status == "attached"
    assert Task.objects.filter(ticket=ticket, follow_up__kind="reply").count() == 1


# --- possible duplicates across teams ---------------------------------------------------------


def test_cross_team_flag_shows_the_other_teams_ticket_by_number_only(world: World) -> None:
    from estafeta.core import clock
    from estafeta.intake.models import DuplicateFlag
    from estafeta.intake.selectors import flags_for

    from .test_intake_merge import signed_in

    ours = world.ticket(owner=world.ann, subject="Family car, quick")
    theirs = world.ticket(owner=world.olga, subject="SECRET fleet deal",
                          client=Client.objects.create(name="Other Team Client",
                                                       created_at=clock.now()))
    assert (ours.team_id, theirs.team_id) == (world.sales.pk, world.other.pk)
    flag = DuplicateFlag.objects.create(ticket=ours, of=theirs, created_at=clock.now())
    back = DuplicateFlag.objects.create(ticket=theirs, of=ours, created_at=clock.now())
    # Each head lists the flag on their own team's new ticket (the one they may dismiss).
    assert list(flags_for(world.head)) == [flag]
    assert list(flags_for(world.other_head)) == [back]
    assert set(flags_for(world.director)) == {flag, back}
    page = signed_in(world.head).get("/duplicates/").content.decode()
    assert ours.number in page and "Family car, quick" in page and theirs.number in page
    assert "SECRET fleet deal" not in page and "Other Team Client" not in page
    assert f'href="/tickets/{theirs.number}/"' not in page
    both = signed_in(world.director).get("/duplicates/").content.decode()
    assert "SECRET fleet deal" in both and "Other Team Client" in both


# --- erasure ------------------------------------------------------------------------------------


def test_anonymising_a_client_erases_their_emails(box: Mailbox, world: World) -> None:
    from estafeta.mailin.outgoing import mail_reply

    first = mail_ingest(make(sender="Maria Secret <maria@example.com>",
                             body="My passport is 1234 567890"), mailbox=box)
    ticket: Ticket = first.ticket  # type: ignore[assignment]
    mail_reply(actor=ticket.owner, ticket=ticket, to="maria@example.com", subject="",
               text="Dear Maria Secret, thank you")
    assert MailMessage.objects.count() == 3  # hers, the acknowledgement, the reply
    client_anonymise(actor=world.admin, client=ticket.client, reason="erasure request 18")
    for m in MailMessage.objects.all():
        kept = " ".join([m.from_address, m.from_name, m.to_addresses, m.subject, m.text, m.html])
        assert "maria" not in kept.lower() and "1234" not in kept and "Secret" not in kept
    assert MailMessage.objects.filter(message_id="<m1@example.com>").exists()  # still keyed


def test_messenger_sender_of_an_anonymised_client_becomes_one_new_client(world: World) -> None:
    _tg, secret = hook_source_create(actor=world.admin, name="Bot", slug="tg",
                                     kind="messenger", pipeline=world.pipeline)
    first = post("/hooks/messenger/tg/", secret, message(message_id="m1", sender_phone=""))
    erased = Ticket.objects.get(number=first.json()["ticket"]).client
    client_anonymise(actor=world.admin, client=erased, reason="erasure request 19")
    second = post("/hooks/messenger/tg/", secret, message(message_id="m2", sender_phone=""))
    third = post("/hooks/messenger/tg/", secret, message(message_id="m3", sender_phone=""))
    two = Ticket.objects.get(number=second.json()["ticket"])
    three = Ticket.objects.get(number=third.json()["ticket"])
    assert two.client_id != erased.pk
    assert three.client_id == two.client_id and three.pk == two.pk  # the same new client


def test_acknowledgement_message_id_cannot_be_guessed(box: Mailbox) -> None:
    victim = mail_ingest(make(), mailbox=box)
    ack = MailMessage.objects.get(direction="out", ticket=victim.ticket)
    guessed = [f"<ack-{n}@dealer.ru>" for n in range(1, 10)]
    assert ack.message_id not in guessed and len(ack.message_id) > 30
    stranger = mail_ingest(make(sender="eve@evil.example", msgid="<e1@evil.example>",
                                References=" ".join(guessed)), mailbox=box)
    assert stranger.ticket != victim.ticket
