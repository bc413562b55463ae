"""Issue 6, second review: erasure reaches messenger messages, calls and mail attachments; lone
surrogates are refused (API and forms); a repeated delivery answers with the surviving ticket;
a number in a stranger's subject is flagged only within the pipeline (each test failed before
its fix)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client as HttpClient

from estafeta.clients.services import client_anonymise
from estafeta.domain.codes import Channel
from estafeta.hooks.models import HookCall, HookMessage, HookSender
from estafeta.hooks.services import hook_source_create
from estafeta.intake.models import DuplicateFlag
from estafeta.intake.services import Arrival, intake_arrival, ticket_merge
from estafeta.mailin.models import MailAttachment, Mailbox
from estafeta.mailin.services import mail_ingest, mailbox_save
from estafeta.pipelines.services import pipeline_load
from estafeta.tickets.models import StoredFile, Ticket
from estafeta.tickets.services import ticket_create

from .factories import PIPELINES, World, webform_sent
from .test_hooks import call, message, post
from .test_mail_intake import make

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4 passport scan of Maria Secret"


@pytest.fixture
def box(world: World, tmp_path: Path) -> Mailbox:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return mailbox_save(actor=world.admin, mailbox=Mailbox(
        name="Sales", address="sales@dealer.ru", kind="maildir", path=str(root),
        pipeline=world.pipeline, acknowledge=False))


def with_attachment(sender: str, msgid: str, data: bytes = PDF,
                    name: str = "passport-maria.pdf") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "sales@dealer.ru"
    msg["Subject"] = "Documents"
    msg["Message-ID"] = msgid
    msg.set_content("My documents attached")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes()


# --- 1. erasure -----------------------------------------------------------------------------


def test_anonymising_empties_messenger_messages_and_calls_but_keeps_their_ids(
        world: World) -> None:
    _bot, bot_secret = hook_source_create(actor=world.admin, name="Bot", slug="tg",
                                          kind="messenger", pipeline=world.pipeline)
    _pbx, pbx_secret = hook_source_create(actor=world.admin, name="PBX", slug="pbx",
                                          kind="telephony", pipeline=world.pipeline)
    first = post("/hooks/messenger/tg/", bot_secret, message(
        sender_id="79123456789", sender_phone="+7 912 345-67-89", sender_name="Pavel Secret",
        text="My passport is 4509 123456"))
    assert first.status_code == 200, first.content
    answered = post("/hooks/telephony/pbx/", pbx_secret, call())
    assert answered.json()["ticket"] == first.json()["ticket"]  # the same client, by phone
    ticket = Ticket.objects.get(number=first.json()["ticket"])

    client_anonymise(actor=world.admin, client=ticket.client, reason="erasure request 20")

    m = HookMessage.objects.get()
    assert (m.message_id, m.sender_id, m.sender_phone, m.sender_name, m.text) == (
        "msg-1", "", "", "", "")
    c = HookCall.objects.get()
    assert (c.call_id, c.caller, c.callee, c.recording_url) == ("call-1", "", "", "")
    sender = HookSender.objects.get()
    assert "79123456789" not in sender.sender_id and sender.client_id == ticket.client_id
    with connection.cursor() as cursor:  # nothing of it is left in any column of these rows
        for table in ("hooks_hookmessage", "hooks_hookcall", "hooks_hooksender"):
            cursor.execute(f'SELECT * FROM "{table}"')
            text = repr(cursor.fetchall())
            assert "Secret" not in text and "4509" not in text and "912" not in text, table
    # Redeliveries are still recognised: nothing new, the same answer.
    again = post("/hooks/messenger/tg/", bot_secret, message(sender_id="79123456789"))
    assert again["X-Estafeta-Repeated"] == "true" and again.json()["ticket"] == ticket.number
    again = post("/hooks/telephony/pbx/", pbx_secret, call())
    assert again["X-Estafeta-Repeated"] == "true" and again.json()["ticket"] == ticket.number
    assert HookMessage.objects.count() == 1 and HookCall.objects.count() == 1
    # The same person writing again is one new client (not the erased one).
    later = post("/hooks/messenger/tg/", bot_secret, message(message_id="msg-2",
                                                             sender_id="79123456789"))
    assert Ticket.objects.get(number=later.json()["ticket"]).client_id != ticket.client_id


def test_anonymising_erases_the_mail_attachments_files(
        box: Mailbox, world: World, django_capture_on_commit_callbacks: Any) -> None:
    hers = mail_ingest(with_attachment("Maria <maria@example.com>", "<a1@example.com>"),
                       mailbox=box)
    # Somebody else sent the very same file: it is stored once, under its digest.
    other = mail_ingest(with_attachment("Oleg <oleg@example.com>", "<o1@example.com>"),
                        mailbox=box)
    alone = mail_ingest(with_attachment("Maria <maria@example.com>", "<a2@example.com>",
                                        data=b"%PDF-1.4 only hers", name="contract.pdf"),
                        mailbox=box)
    assert hers.ticket is not None and other.ticket is not None
    assert alone.ticket == hers.ticket and other.ticket.client_id != hers.ticket.client_id
    mine = list(MailAttachment.objects.filter(message__ticket=hers.ticket)
                .select_related("file").order_by("pk"))
    theirs = MailAttachment.objects.select_related("file").get(message__ticket=other.ticket)
    shared_path, own_path = mine[0].file.path, mine[1].file.path
    assert shared_path == theirs.file.path and default_storage.exists(own_path)

    with django_capture_on_commit_callbacks(execute=True):
        client_anonymise(actor=world.admin, client=hers.ticket.client, reason="erasure 21")

    for a in MailAttachment.objects.filter(message__ticket=hers.ticket).select_related("file"):
        assert a.name == "erased" and a.file.name == "erased"
        assert a.file.path == "" and a.file.sha256 == ""  # the row stays, the content goes
    assert StoredFile.objects.filter(pk=mine[1].file_id).exists()
    assert not default_storage.exists(own_path)
    assert default_storage.exists(shared_path)  # still Oleg's attachment
    theirs.refresh_from_db()
    assert theirs.name == "passport-maria.pdf" and theirs.file.path == shared_path
    http = HttpClient()
    http.force_login(hers.ticket.owner)
    gone = http.get(f"/tickets/{hers.ticket.number}/mail/attachments/{mine[1].pk}/")
    assert gone.status_code == 410
    page = http.get(f"/tickets/{hers.ticket.number}/").content.decode()
    assert "passport-maria" not in page and "contract.pdf" not in page
    assert mail_ingest(with_attachment("Maria <maria@example.com>", "<a1@example.com>"),
                       mailbox=box).status == "repeated"


def test_erased_file_stays_when_the_transaction_is_rolled_back(box: Mailbox, world: World,
                                                               django_capture_on_commit_callbacks:
                                                               Any) -> None:
    hers = mail_ingest(with_attachment("Maria <maria@example.com>", "<a1@example.com>"),
                       mailbox=box)
    assert hers.ticket is not None
    path = MailAttachment.objects.select_related("file").get().file.path
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_anonymise(actor=world.admin, client=hers.ticket.client, reason="erasure 22")
    assert len(callbacks) == 1 and default_storage.exists(path)  # removed only after commit


# --- 3. a repeated delivery names the surviving ticket ----------------------------------------


def test_a_repeated_delivery_after_a_merge_answers_with_the_surviving_ticket(
        box: Mailbox, world: World) -> None:
    _pbx, secret = hook_source_create(actor=world.admin, name="PBX", slug="pbx",
                                      kind="telephony", pipeline=world.pipeline)
    survivor = world.ticket(owner=world.ann)
    by_phone = post("/hooks/telephony/pbx/", secret, call(caller="+7 999 000-11-22"))
    by_mail = mail_ingest(make(sender="Oleg <oleg@example.com>"), mailbox=box)
    sent = webform_sent(world)
    arrival = Arrival(channel=Channel.EMAIL, source="mailbox:x", external_id="<x1@example.com>",
                      pipeline=world.pipeline.code, emails=("olga@example.com",), text="Hi")
    direct = intake_arrival(arrival)
    merged = [Ticket.objects.get(number=by_phone.json()["ticket"]), by_mail.ticket,
              sent.ticket, direct.ticket]
    assert len({t.pk for t in merged if t is not None} | {survivor.pk}) == 5
    for ticket in merged:
        assert ticket is not None
        ticket_merge(actor=world.director, ticket=ticket, into=survivor)

    again = post("/hooks/telephony/pbx/", secret, call(caller="+7 999 000-11-22"))
    assert again["X-Estafeta-Repeated"] == "true"
    assert again.json() == {"ok": True, "ticket": survivor.number, "created": True}
    result = mail_ingest(make(sender="Oleg <oleg@example.com>"), mailbox=box)
    assert result.status == "repeated" and result.ticket == survivor
    repeated = intake_arrival(arrival)
    assert repeated.repeated and repeated.ticket == survivor
    thanks = HttpClient().get(f"/f/{sent.form.slug}/thanks/{sent.token}/")
    assert thanks.status_code == 200, thanks.status_code
    page = thanks.content.decode()
    assert survivor.number in page and sent.ticket.number not in page


# --- 4. a number in a stranger's subject is flagged only within the pipeline -----------------


def test_a_strangers_subject_number_of_another_pipeline_opens_a_ticket_without_a_flag(
        box: Mailbox, world: World) -> None:
    text = (PIPELINES / "sales.yaml").read_text().replace("code: sales\nname: Sales\n",
                                                          "code: service\nname: Service\n")
    service = pipeline_load(actor=None, text=text, source="service.yaml").pipeline
    theirs = ticket_create(actor=world.operator, pipeline=service, client=world.client,
                           channel="phone", subject="Oil change")
    ours = world.ticket(owner=world.ann)
    other = mail_ingest(make(subject=f"About [#{theirs.number}]",
                             sender="eve@stranger.example", msgid="<s1@stranger.example>"),
                        mailbox=box)
    assert other.status == "created" and other.ticket is not None
    assert other.ticket.pipeline_id == world.pipeline.pk
    assert not DuplicateFlag.objects.exists()
    # Within the pipeline a stranger's number is still flagged (the merge can be done).
    same = mail_ingest(make(subject=f"About [#{ours.number}]", sender="mallory@stranger.example",
                            msgid="<s2@stranger.example>"), mailbox=box)
    assert same.status == "flagged"
    flag = DuplicateFlag.objects.get()
    assert (flag.ticket, flag.of) == (same.ticket, ours)
    assert ticket_merge(actor=world.director, ticket=flag.ticket, into=flag.of) == ours


def test_a_strangers_subject_number_of_a_merged_ticket_flags_the_survivor(
        box: Mailbox, world: World) -> None:
    survivor = world.ticket(owner=world.ann)
    merged = world.ticket(owner=world.ann, subject="The same car")
    ticket_merge(actor=world.director, ticket=merged, into=survivor)
    result = mail_ingest(make(subject=f"Re: [#{merged.number}]", sender="eve@stranger.example",
                              msgid="<s3@stranger.example>"), mailbox=box)
    assert result.status == "flagged"
    flag = DuplicateFlag.objects.get(ticket=result.ticket)
    assert flag.of == survivor  # a merge into the void ticket would be refused
    assert ticket_merge(actor=world.director, ticket=flag.ticket, into=flag.of) == survivor


# --- 2. lone surrogates: refused with 400, never a 500 --------------------------------------

SURROGATE_JSON = '"Tomorrow \\ud800 at ten"'  # valid JSON, no storable text


def test_the_api_refuses_a_lone_surrogate_in_json_with_bad_json(world: World) -> None:
    from rest_framework.test import APIClient

    from .dbstate import snapshot

    ticket = world.ticket(owner=world.ann)
    api = APIClient()
    api.force_authenticate(world.ann)
    before = snapshot()
    for path, raw in (
            (f"/api/v1/tickets/{ticket.number}/reply/",
             '{"to": "ivan@example.com", "text": ' + SURROGATE_JSON + "}"),
            (f"/api/v1/tickets/{ticket.number}/activities/",
             '{"kind": "call", "direction": "out", "outcome": "connected", "note": '
             + SURROGATE_JSON + "}"),
            ("/api/v1/tickets/", '{"pipeline": "sales", "subject": ' + SURROGATE_JSON + "}"),
            (f"/api/v1/tickets/{ticket.number}/reply/", '{"to": "ivan@example.com", "text": '),
            ("/api/v1/tickets/", '{"subject": {"\\udc80": 1}}')):
        answer = api.post(path, raw, content_type="application/json")
        assert answer.status_code == 400, (path, answer.content)
        body = answer.json()
        assert body["code"] == "bad_json" and set(body) == {"code", "message", "params"}
        assert body["message"].startswith("the body is not")
    answer = api.patch(f"/api/v1/tickets/{ticket.number}/", '{"subject": ' + SURROGATE_JSON
                       + "}", content_type="application/json")
    assert answer.status_code == 400 and answer.json()["code"] == "bad_json"
    assert snapshot() == before


UTF7 = "text/plain; charset=utf-7"  # Django decodes the query string with it: +2AA- is \ud800


def test_a_query_string_decoded_into_a_lone_surrogate_is_refused(world: World) -> None:
    from rest_framework.test import APIClient

    http = HttpClient(raise_request_exception=False)
    http.force_login(world.ann)
    page = http.generic("GET", "/tickets/", "", QUERY_STRING="q=Car%2B2AA-", CONTENT_TYPE=UTF7)
    assert page.status_code == 400
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(world.ann)
    answer = api.generic("GET", "/api/v1/tickets/", "", content_type=UTF7,
                         QUERY_STRING="search=%2B2AA-")
    assert answer.status_code == 400 and answer.json()["code"] == "bad_text"
    # The same search as text is answered as always.
    assert http.get("/tickets/", {"q": "Car"}).status_code == 200


def _storable_everywhere() -> None:
    """No text column of a ticket, client or intake record holds a lone surrogate."""
    from estafeta.clients.models import Client
    from estafeta.intake.models import IntakeRecord

    for model, fields in ((Ticket, ("subject", "description")), (Client, ("name",)),
                          (IntakeRecord, ("name", "subject", "text"))):
        for row in model.objects.values_list(*fields):
            for text in row:
                text.encode("utf-8")  # raises on a lone surrogate


def _multipart(fields: dict[str, str], charset: str) -> tuple[bytes, str]:
    parts = [f'--XB\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in fields.items()]
    return ("".join(parts) + "--XB--\r\n").encode(), (
        f"multipart/form-data; boundary=XB; charset={charset}")


def test_web_forms_never_store_a_lone_surrogate(world: World) -> None:
    from urllib.parse import urlencode

    from estafeta.webforms.services import webform_create

    from .test_webforms import Visitor

    http = HttpClient(raise_request_exception=False)
    http.force_login(world.operator)
    fields = {"pipeline": "sales", "channel": "phone", "client_name": "Ivan",
              "client_kind": "person", "phone": "+79120001122", "confirm_new": "on"}
    # Raw UTF-8 bytes of a surrogate: Django decodes them as replacement characters.
    raw = urlencode({**fields, "subject": "Car"}) + "%ED%A0%80"
    answers = [http.post("/tickets/new/", raw,
                         content_type="application/x-www-form-urlencoded").status_code]
    # Another charset for a form: refused by Django (urlencoded) or not applied (multipart).
    for charset in ("utf-7", "unicode_escape"):
        answers.append(http.post("/tickets/new/", urlencode({**fields, "subject": "Car+2AA-"}),
                                 content_type="application/x-www-form-urlencoded; charset="
                                 + charset).status_code)
        body, content_type = _multipart({**fields, "subject": "Car+2AA-",
                                         "client_name": "Ivan\\ud800"}, charset)
        answers.append(http.post("/tickets/new/", body, content_type=content_type).status_code)
    assert 500 not in answers and answers[0] == 302, answers
    webform_create(actor=world.admin, slug="site", pipeline=world.pipeline, title="Test drive")
    visitor = Visitor(HttpClient(raise_request_exception=False))
    visitor.headers = {"content_type": "multipart/form-data; boundary=BoUnDaRyStRiNg; "
                                       "charset=utf-7"}
    sent = visitor.send(name="Maria +2AA-", phone="8 (903) 111-22-33", message="Hi +2ADcAA-")
    assert sent.status_code in (302, 400), sent.status_code
    _storable_everywhere()
