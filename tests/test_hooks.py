"""Telephony and messenger webhooks through HTTP with raw signed bodies (docs/webhooks-in.md):
calls and messages become intake; forged, stale, replayed, malformed and oversized requests are
refused with the documented status and write nothing (or nothing twice)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient

from estafeta.clients.models import Client
from estafeta.core import clock
from estafeta.domain.codes import ActivityOutcome, ActivitySource, TaskKind, TaskStatus
from estafeta.history.models import Event
from estafeta.hooks.models import HookCall, HookMessage, HookSender, HookSource
from estafeta.hooks.services import hook_source_create, hook_source_set_active
from estafeta.hooks.signing import Unauthorised, sign, verify
from estafeta.intake.models import IntakeRecord
from estafeta.tasks.models import Task
from estafeta.tickets.models import Activity, Ticket

from .dbstate import snapshot
from .factories import World

pytestmark = pytest.mark.django_db

IVAN = "+79123456789"  # the world's client, written "8 912 345-67-89"
OFFICE = "+74950000000"


@pytest.fixture
def pbx(world: World) -> tuple[HookSource, str]:
    return hook_source_create(actor=world.admin, name="Office PBX", slug="pbx",
                              kind="telephony", pipeline=world.pipeline)


@pytest.fixture
def bot(world: World) -> tuple[HookSource, str]:
    return hook_source_create(actor=world.admin, name="Telegram bot", slug="tg",
                              kind="messenger", pipeline=world.pipeline)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def call(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "call_id": "call-1", "direction": "in", "caller": "8 (912) 345-67-89",
        "callee": OFFICE, "started_at": _iso(clock.now() - timedelta(minutes=3)),
        "duration": 95, "outcome": "answered",
        "recording_url": "https://pbx.example.com/rec/call-1.mp3"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not ...}


def message(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": "msg-1", "channel": "telegram", "sender_id": "777",
        "sender_name": "Pavel", "text": "Hello! Is the red one still <b>available</b>?",
        "sent_at": _iso(clock.now() - timedelta(minutes=1))}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not ...}


def post(path: str, secret: str, body: bytes | dict[str, Any], *, timestamp: int | None = None,
         signature: str | None = None, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(clock.now().timestamp()) if timestamp is None else timestamp
    sent = {"X-Estafeta-Timestamp": str(ts),
            "X-Estafeta-Signature": signature or sign(secret, ts, raw)}
    if headers is not None:
        sent = headers
    # enforce_csrf_checks: the endpoints must work without a CSRF token, as a PBX calls them.
    return HttpClient(enforce_csrf_checks=True).post(path, raw, content_type="application/json",
                                                     headers=sent)


def _unchanged(action: Any) -> Any:
    before = snapshot()
    counts = (IntakeRecord.objects.count(), HookCall.objects.count(), HookMessage.objects.count(),
              HookSender.objects.count())
    response = action()
    assert snapshot() == before
    assert counts == (IntakeRecord.objects.count(), HookCall.objects.count(),
                      HookMessage.objects.count(), HookSender.objects.count())
    return response


# --- telephony -------------------------------------------------------------------------------


def test_a_signed_call_from_a_known_client_is_logged_on_the_open_ticket(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _source, secret = pbx
    ticket = world.ticket(actor=world.operator, owner=world.ann)
    tickets_before = Ticket.objects.count()
    response = post("/hooks/telephony/pbx/", secret, call())
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "ticket": ticket.number, "created": False}
    assert Ticket.objects.count() == tickets_before
    activity = Activity.objects.get(ticket=ticket)
    assert (activity.kind, activity.direction, activity.outcome, activity.duration_seconds,
            activity.source) == ("call", "in", ActivityOutcome.CONNECTED, 95,
                                 ActivitySource.TELEPHONY)
    assert activity.performed_by is None
    row = HookCall.objects.get()
    assert (row.ticket_id, row.activity_id, row.call_id, row.outcome) == (
        ticket.pk, activity.pk, "call-1", "answered")
    assert row.recording_url == "https://pbx.example.com/rec/call-1.mp3"
    record = IntakeRecord.objects.get()
    assert (record.source, record.external_id, record.channel) == (
        "telephony:pbx", "call-1", "phone")
    assert Event.objects.filter(ticket=ticket, type="intake.received").count() == 1
    # An answered call owes nobody a call back.
    assert not Task.objects.filter(ticket=ticket, follow_up__isnull=False).exists()


def test_a_call_from_an_unknown_number_opens_a_new_ticket_for_a_new_client(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    response = post("/hooks/telephony/pbx/", secret,
                    call(caller="+7 (916) 000-11-22", recording_url=...))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True
    ticket = Ticket.objects.get(number=body["ticket"])
    assert (ticket.channel, ticket.pipeline_id) == ("phone", world.pipeline.pk)
    assert ticket.client_id != world.client.pk
    assert ticket.client.contacts.filter(value="+79160001122").exists()
    assert Activity.objects.get(ticket=ticket).source == ActivitySource.TELEPHONY
    assert HookCall.objects.get().recording_url == ""


def test_an_outgoing_call_is_matched_by_the_number_called(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    response = post("/hooks/telephony/pbx/", secret,
                    call(direction="out", caller="101", callee="89123456789", outcome="busy"))
    assert response.json()["ticket"] == ticket.number
    activity = Activity.objects.get(ticket=ticket)
    assert (activity.direction, activity.outcome) == ("out", ActivityOutcome.BUSY)
    # We called and the client was busy: nobody owes the client a call back.
    assert not Task.objects.filter(ticket=ticket, follow_up__isnull=False).exists()


def test_a_missed_call_plans_one_call_back_task_within_the_first_response_time(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    first = post("/hooks/telephony/pbx/", secret, call(outcome="missed", duration=0))
    assert first.status_code == 200
    callbacks = Task.objects.filter(ticket=ticket, follow_up__kind="callback")
    assert callbacks.count() == 1
    task = callbacks.get()
    assert (task.kind, task.status, task.assignee_id) == (TaskKind.CALL, TaskStatus.OPEN,
                                                          world.ann.pk)
    # Two business hours from Wednesday 10:00 Moscow time (the pipeline's default).
    assert task.due_at == clock.now() + timedelta(hours=2)
    assert Activity.objects.get(ticket=ticket).outcome == ActivityOutcome.NO_ANSWER
    # The same call delivered again, and a second missed call: still one open call-back task.
    assert post("/hooks/telephony/pbx/", secret, call(outcome="missed", duration=0)).json() \
        == first.json()
    post("/hooks/telephony/pbx/", secret, call(call_id="call-2", outcome="missed", duration=0))
    assert callbacks.count() == 1
    assert Activity.objects.filter(ticket=ticket).count() == 2


def test_a_missed_call_from_an_unknown_number_gets_a_call_back_on_its_new_ticket(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    body = post("/hooks/telephony/pbx/", secret,
                call(caller="+79160001122", outcome="missed", duration=0)).json()
    ticket = Ticket.objects.get(number=body["ticket"])
    assert Task.objects.filter(ticket=ticket, follow_up__kind="callback",
                               status=TaskStatus.OPEN).count() == 1


def test_a_replayed_call_answers_the_same_and_writes_nothing(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    first = post("/hooks/telephony/pbx/", secret, call(caller="+79160001122"))
    assert first.status_code == 200
    again = _unchanged(lambda: post("/hooks/telephony/pbx/", secret,
                                    call(caller="+79160001122")))
    assert again.status_code == 200
    assert again.json() == first.json() and again.json()["created"] is True
    assert again["X-Estafeta-Repeated"] == "true"
    assert "X-Estafeta-Repeated" not in first
    # Same id, different content, a later timestamp: still the same call, nothing written.
    later = _unchanged(lambda: post("/hooks/telephony/pbx/", secret,
                                    call(caller="+79990000000", outcome="missed"),
                                    timestamp=int(clock.now().timestamp()) + 60))
    assert later.json() == first.json()


# --- refusals --------------------------------------------------------------------------------


def test_a_forged_signature_is_refused_with_401(world: World,
                                               pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    response = _unchanged(lambda: post("/hooks/telephony/pbx/", "not-the-secret", call()))
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
    # A signature of another body (the body changed in transit) is refused too.
    raw = json.dumps(call()).encode()
    ts = int(clock.now().timestamp())
    tampered = _unchanged(lambda: post("/hooks/telephony/pbx/", secret,
                                       raw.replace(b"answered", b"missed"),
                                       signature=sign(secret, ts, raw), timestamp=ts))
    assert tampered.status_code == 401


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "signature_missing"),
    ({"X-Estafeta-Timestamp": "1796194800"}, "signature_missing"),
    ({"X-Estafeta-Signature": "sha256=" + "0" * 64}, "signature_missing"),
    ({"X-Estafeta-Timestamp": "yesterday", "X-Estafeta-Signature": "sha256=" + "0" * 64},
     "bad_timestamp"),
    ({"X-Estafeta-Timestamp": "1796194800", "X-Estafeta-Signature": "md5=abc"},
     "bad_signature"),
])
def test_missing_or_malformed_headers_are_refused_with_401(
        world: World, pbx: tuple[HookSource, str], headers: dict[str, str], code: str) -> None:
    _, secret = pbx
    response = _unchanged(lambda: post("/hooks/telephony/pbx/", secret, call(),
                                       headers=headers))
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message"}


@pytest.mark.parametrize("shift", [-301, 301, -86400])
def test_a_timestamp_outside_the_tolerance_is_refused(
        world: World, pbx: tuple[HookSource, str], shift: int) -> None:
    _, secret = pbx
    ts = int(clock.now().timestamp()) + shift
    response = _unchanged(lambda: post("/hooks/telephony/pbx/", secret, call(), timestamp=ts))
    assert response.status_code == 401
    assert response.json()["code"] == "stale_timestamp"


def test_a_timestamp_inside_the_tolerance_is_accepted(world: World,
                                                      pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ts = int(clock.now().timestamp()) - 299
    assert post("/hooks/telephony/pbx/", secret, call(), timestamp=ts).status_code == 200


@pytest.mark.parametrize(("body", "code", "field"), [
    (b"{not json", "bad_json", None),
    (b"[1, 2]", "bad_json", None),
    (b"\xff\xfe", "bad_json", None),
    (b'{"call_id": "a", "call_id": "b"}', "bad_json", None),
    (json.dumps(call(duration=...)).encode(), "missing_field", "duration"),
    (json.dumps(call(extra="x")).encode(), "unknown_field", "extra"),
    (json.dumps(call(duration="95")).encode(), "bad_field", "duration"),
    (json.dumps(call(duration=True)).encode(), "bad_field", "duration"),
    (json.dumps(call(duration=-1)).encode(), "bad_field", "duration"),
    (json.dumps(call(duration=1.5)).encode(), "bad_field", "duration"),
    (json.dumps(call(call_id=17)).encode(), "bad_field", "call_id"),
    (json.dumps(call(call_id="")).encode(), "bad_field", "call_id"),
    (json.dumps(call(call_id="x" * 256)).encode(), "bad_field", "call_id"),
    (json.dumps(call(direction="sideways")).encode(), "bad_field", "direction"),
    (json.dumps(call(outcome="ANSWERED")).encode(), "bad_field", "outcome"),
    (json.dumps(call(started_at="2026-12-02T10:00:00")).encode(), "bad_field", "started_at"),
    (json.dumps(call(started_at="2026-12-02")).encode(), "bad_field", "started_at"),
    (json.dumps(call(started_at=1796194800)).encode(), "bad_field", "started_at"),
    (json.dumps(call(recording_url="javascript:alert(1)")).encode(), "bad_field",
     "recording_url"),
    (json.dumps(call(recording_url="ftp://pbx.example.com/a.mp3")).encode(), "bad_field",
     "recording_url"),
    (json.dumps(call(caller=None)).encode(), "bad_field", "caller"),
])
def test_malformed_calls_are_refused_with_400_naming_the_problem(
        world: World, pbx: tuple[HookSource, str], body: bytes, code: str,
        field: str | None) -> None:
    _, secret = pbx
    response = _unchanged(lambda: post("/hooks/telephony/pbx/", secret, body))
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == code
    assert answer["message"]
    assert answer.get("field") == field


def test_an_oversized_body_is_refused_with_413_before_anything_else(
        world: World, pbx: tuple[HookSource, str], settings: Any) -> None:
    settings.ESTAFETA_HOOKS_MAX_BODY = 1024
    _, secret = pbx
    big = json.dumps(call(call_id="x" * 2000)).encode()
    response = _unchanged(lambda: post("/hooks/telephony/pbx/", secret, big))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    # The default cap (64 KiB) refuses a megabyte even when correctly signed.
    settings.ESTAFETA_HOOKS_MAX_BODY = 64 * 1024
    huge = json.dumps(call(note="y" * (1 << 20))).encode()
    assert _unchanged(lambda: post("/hooks/telephony/pbx/", secret, huge)).status_code == 413


def test_unknown_inactive_and_wrong_kind_sources_answer_the_same_404(
        world: World, pbx: tuple[HookSource, str], bot: tuple[HookSource, str]) -> None:
    source, secret = pbx
    unknown = _unchanged(lambda: post("/hooks/telephony/nope/", secret, call()))
    wrong_kind = _unchanged(lambda: post("/hooks/messenger/pbx/", secret, message()))
    hook_source_set_active(actor=world.admin, source=source, active=False)
    inactive = _unchanged(lambda: post("/hooks/telephony/pbx/", secret, call()))
    assert unknown.status_code == wrong_kind.status_code == inactive.status_code == 404
    assert unknown.content == wrong_kind.content == inactive.content
    hook_source_set_active(actor=world.admin, source=source, active=True)
    assert post("/hooks/telephony/pbx/", secret, call()).status_code == 200


def test_only_post_is_accepted(world: World, pbx: tuple[HookSource, str]) -> None:
    response = _unchanged(lambda: HttpClient().get("/hooks/telephony/pbx/"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_a_call_on_a_void_open_ticket_of_the_client_is_not_lost(
        world: World, pbx: tuple[HookSource, str]) -> None:
    """Every call is recorded somewhere: a client whose only ticket was voided gets a new one."""
    from estafeta.tickets.services import ticket_void

    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    ticket_void(actor=world.head, ticket=ticket, reason="spam")
    body = post("/hooks/telephony/pbx/", secret, call()).json()
    assert body["created"] is True and body["ticket"] != ticket.number


# --- messengers ------------------------------------------------------------------------------


def test_a_message_from_a_new_sender_opens_a_ticket_and_is_kept_with_its_text(
        world: World, bot: tuple[HookSource, str]) -> None:
    _, secret = bot
    response = post("/hooks/messenger/tg/", secret, message())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True
    ticket = Ticket.objects.get(number=body["ticket"])
    assert ticket.channel == "messenger"
    assert ticket.client.name == "Pavel"
    row = HookMessage.objects.get()
    assert (row.ticket_id, row.channel, row.sender_id, row.text) == (
        ticket.pk, "telegram", "777", "Hello! Is the red one still <b>available</b>?")
    assert row.record.external_id == "msg-1"
    sender = HookSender.objects.get()
    assert (sender.channel, sender.sender_id, sender.client_id) == ("telegram", "777",
                                                                    ticket.client_id)


def test_messages_from_a_sender_seen_before_thread_into_their_ticket(
        world: World, bot: tuple[HookSource, str]) -> None:
    _, secret = bot
    first = post("/hooks/messenger/tg/", secret, message()).json()
    clients = Client.objects.count()
    second = post("/hooks/messenger/tg/", secret,
                  message(message_id="msg-2", text="And the price?", sender_name=...)).json()
    assert second == {"ok": True, "ticket": first["ticket"], "created": False}
    assert Client.objects.count() == clients
    ticket = Ticket.objects.get(number=first["ticket"])
    assert list(HookMessage.objects.filter(ticket=ticket).order_by("sent_at")
                .values_list("text", flat=True))[1] == "And the price?"
    # A message on an existing ticket waits for a reply: one reply task (intake's rule).
    assert Task.objects.filter(ticket=ticket, follow_up__kind="reply").count() == 1
    # The same sender id on another channel is somebody else.
    other = post("/hooks/messenger/tg/", secret,
                 message(message_id="msg-3", channel="whatsapp")).json()
    assert other["created"] is True and other["ticket"] != first["ticket"]


def test_a_known_sender_whose_ticket_closed_stays_the_same_client(
        world: World, bot: tuple[HookSource, str]) -> None:
    from estafeta.tickets.services import ticket_close_lost

    _, secret = bot
    first = post("/hooks/messenger/tg/", secret, message()).json()
    ticket = Ticket.objects.get(number=first["ticket"])
    ticket_close_lost(actor=world.head, ticket=ticket, reason="price")
    again = post("/hooks/messenger/tg/", secret, message(message_id="msg-2")).json()
    assert again["created"] is True
    assert Ticket.objects.get(number=again["ticket"]).client_id == ticket.client_id


def test_a_message_with_a_known_phone_goes_to_that_clients_open_ticket(
        world: World, bot: tuple[HookSource, str]) -> None:
    _, secret = bot
    ticket = world.ticket(owner=world.bob)
    body = post("/hooks/messenger/tg/", secret,
                message(sender_phone="+7 912 345 67 89")).json()
    assert body == {"ok": True, "ticket": ticket.number, "created": False}
    assert HookSender.objects.get().client_id == world.client.pk
    # Later messages from that sender need no phone to find the client.
    body = post("/hooks/messenger/tg/", secret, message(message_id="msg-2")).json()
    assert body["ticket"] == ticket.number


def test_a_replayed_message_answers_the_same_and_writes_nothing(
        world: World, bot: tuple[HookSource, str]) -> None:
    _, secret = bot
    first = post("/hooks/messenger/tg/", secret, message())
    again = _unchanged(lambda: post("/hooks/messenger/tg/", secret, message(text="changed")))
    assert again.status_code == 200 and again.json() == first.json()
    assert HookMessage.objects.get().text.startswith("Hello")


@pytest.mark.parametrize(("fields", "field"), [
    ({"channel": "Telegram"}, "channel"),
    ({"channel": ""}, "channel"),
    ({"sender_id": 777}, "sender_id"),
    ({"text": None}, "text"),
    ({"text": "x" * 20_001}, "text"),
    ({"sent_at": "tomorrow"}, "sent_at"),
    ({"sender_phone": 79123456789}, "sender_phone"),
    ({"sender_name": ["Pavel"]}, "sender_name"),
])
def test_malformed_messages_are_refused(world: World, bot: tuple[HookSource, str],
                                        fields: dict[str, Any], field: str) -> None:
    _, secret = bot
    response = _unchanged(lambda: post("/hooks/messenger/tg/", secret, message(**fields)))
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("bad_field", field)


def test_the_message_text_is_shown_escaped_on_the_ticket_page(
        world: World, bot: tuple[HookSource, str]) -> None:
    _, secret = bot
    body = post("/hooks/messenger/tg/", secret,
                message(text="<script>alert(1)</script>\nsecond line")).json()
    ticket = Ticket.objects.get(number=body["ticket"])
    http = HttpClient()
    http.force_login(ticket.owner)
    page = http.get(f"/tickets/{ticket.number}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>second line" in page
    assert "<script>alert(1)" not in page


def test_a_recording_link_is_shown_on_the_ticket_page_never_fetched(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    post("/hooks/telephony/pbx/", secret,
         call(recording_url='https://pbx.example.com/rec?id=1&x="><b>'))
    http = HttpClient()
    http.force_login(world.ann)
    page = http.get(f"/tickets/{ticket.number}/").content.decode()
    assert 'href="https://pbx.example.com/rec?id=1&amp;x=&quot;&gt;&lt;b&gt;"' in page
    assert 'rel="noopener noreferrer nofollow"' in page


# --- signing, as documented ------------------------------------------------------------------


def test_the_documented_python_snippet_signs_what_the_endpoint_verifies() -> None:
    import hashlib
    import hmac

    secret, ts, body = "s3cr3t", 1796194800, b'{"a": 1}'
    documented = "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body,
                                      hashlib.sha256).hexdigest()
    assert sign(secret, ts, body) == documented
    assert verify(secret=secret, timestamp=str(ts), signature=documented, body=body,
                  now=ts + 10, tolerance=300) == ts
    with pytest.raises(Unauthorised):
        verify(secret=secret, timestamp=str(ts), signature=documented.upper(), body=body,
               now=ts, tolerance=300)
