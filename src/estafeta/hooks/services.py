"""The writers of the webhooks app: sources (admins) and what the sources send (the endpoints).

Sources: ``hook_source_create``, ``hook_source_rotate_secret``, ``hook_source_set_active``; each
one transaction with one ``hook_source.*`` event (the secret itself is never in an event).

Arrivals: ``call_receive`` and ``message_receive`` turn a checked payload into intake through
``intake.services.intake_arrival`` and write the call or message row in the same transaction,
so a call is either recorded with its activity (and its call-back task) or not at all. The
provider's call or message id is the idempotency key: the same id again writes nothing and gives
the first answer back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import Client, ClientContact
from estafeta.core import clock
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Channel,
    Direction,
    EventType,
    Role,
    TaskStatus,
    TicketStatus,
)
from estafeta.domain.errors import BadInput, Conflict
from estafeta.domain.policy import require_role
from estafeta.history.services import event_record
from estafeta.intake.models import FollowUpKind, IntakeRecord
from estafeta.intake.selectors import survivor_of
from estafeta.intake.services import ActivitySpec, Arrival, intake_arrival
from estafeta.pipelines.models import Pipeline
from estafeta.tasks.models import Task
from estafeta.tasks.services import tasks_fulfil
from estafeta.tickets.models import Activity, Ticket

from .models import CallOutcome, HookCall, HookKind, HookMessage, HookSender, HookSource
from .schema import CallIn, MessageIn

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
MIN_TOLERANCE, MAX_TOLERANCE = 30, 3600

# The exchange's words → the activity's outcome codes for calls (domain.codes.OUTCOMES_BY_KIND).
CALL_OUTCOMES: dict[str, ActivityOutcome] = {
    CallOutcome.ANSWERED: ActivityOutcome.CONNECTED,
    CallOutcome.MISSED: ActivityOutcome.NO_ANSWER,
    CallOutcome.BUSY: ActivityOutcome.BUSY,
    CallOutcome.FAILED: ActivityOutcome.NO_ANSWER,
}


def _secret() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    """Eight hex digits that tell two secrets apart without revealing either (shown, logged)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


def _admin(actor: User | None, what: str) -> None:
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what=what)


# --- sources -------------------------------------------------------------------------------------


def hook_source_create(*, actor: User | None, name: str, slug: str, kind: str,
                       pipeline: Pipeline, tolerance_seconds: int = 300
                       ) -> tuple[HookSource, str]:
    """A new active source; returns it and its secret (the only time the secret is returned,
    besides rotation)."""
    _admin(actor, "configure webhooks")
    name = " ".join((name or "").split())
    slug = (slug or "").strip()
    if not name or len(name) > 200:
        raise BadInput("the name must be 1-200 characters", code="bad_name")
    if not SLUG.match(slug):
        raise BadInput(f"{slug!r} is not a code: use lower-case Latin letters, digits and -",
                       code="bad_code")
    if kind not in HookKind.values:
        raise BadInput(f"a source is {', '.join(HookKind.values)}", code="bad_kind")
    if not isinstance(tolerance_seconds, int) or not (
            MIN_TOLERANCE <= tolerance_seconds <= MAX_TOLERANCE):
        raise BadInput(f"the tolerance is {MIN_TOLERANCE} to {MAX_TOLERANCE} seconds",
                       code="bad_tolerance", low=MIN_TOLERANCE, high=MAX_TOLERANCE)
    secret = _secret()
    now = clock.now()
    with transaction.atomic():
        if HookSource.objects.filter(slug=slug).exists():
            raise Conflict(f"the webhook source {slug!r} exists", code="hook_source_exists")
        source = HookSource.objects.create(
            slug=slug, name=name, kind=kind, pipeline=pipeline, secret=secret,
            tolerance_seconds=tolerance_seconds, created_at=now, secret_set_at=now)
        event_record(stream=source.stream, type=EventType.HOOK_SOURCE_CREATED, actor=actor,
                     new_stream=True, payload={
                         "slug": slug, "name": name, "kind": kind, "pipeline": pipeline.code,
                         "tolerance": tolerance_seconds, "secret": fingerprint(secret)})
    return source, secret


def hook_source_rotate_secret(*, actor: User | None, source: HookSource
                              ) -> tuple[HookSource, str]:
    """A new secret; the old one stops working at once. Returns the source and the secret."""
    _admin(actor, "configure webhooks")
    secret = _secret()
    with transaction.atomic():
        source = HookSource.objects.select_for_update().get(pk=source.pk)
        source.secret = secret
        source.secret_set_at = clock.now()
        source.save(update_fields=["secret", "secret_set_at"])
        event_record(stream=source.stream, type=EventType.HOOK_SOURCE_UPDATED, actor=actor,
                     payload={"secret": fingerprint(secret)})
    return source, secret


def hook_source_set_active(*, actor: User | None, source: HookSource,
                           active: bool) -> HookSource:
    """Switch a source off (its endpoint answers 404 like an unknown one) or on again."""
    _admin(actor, "configure webhooks")
    with transaction.atomic():
        source = HookSource.objects.select_for_update().get(pk=source.pk)
        if source.is_active == active:
            return source
        source.is_active = active
        source.save(update_fields=["is_active"])
        event_record(stream=source.stream, type=EventType.HOOK_SOURCE_UPDATED, actor=actor,
                     payload={"active": active})
    return source


# --- arrivals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """The endpoint's answer: the same for the first delivery and every repeat of it."""

    ticket: str
    created: bool
    repeated: bool

    def body(self) -> dict[str, Any]:
        return {"ok": True, "ticket": self.ticket, "created": self.created}


def _received(record: IntakeRecord, repeated: bool) -> Received:
    """The first answer again, naming the ticket as it is now (merged since: the survivor)."""
    ticket = survivor_of(Ticket.objects.get(pk=record.ticket_id))
    return Received(ticket=ticket.number, created=record.created_ticket, repeated=repeated)


def _default_language(text: str, **params: Any) -> str:
    """Stored words (a new ticket's subject) in the company's language, not the sender's."""
    with translation.override(settings.LANGUAGE_CODE):
        return _(text) % {k: str(v) for k, v in params.items()}  # lazy labels in that language


def _repeat(source: HookSource, external_id: str) -> Received | None:
    record = IntakeRecord.objects.filter(source=source.intake_source,
                                         external_id=external_id).first()
    return _received(record, True) if record is not None else None


def call_receive(*, source: HookSource, call: CallIn) -> Received:
    """Log the call on the client's open ticket (or a new ticket for an unknown number); an
    inbound call nobody answered (missed, busy, failed) makes intake plan a "call back" task
    due within the pipeline's first-response time."""
    if source.kind != HookKind.TELEPHONY:  # pragma: no cover - the URL picks the kind
        raise BadInput("this source is not a telephony source", code="bad_kind")
    known = _repeat(source, call.call_id)
    if known is not None:
        return known
    inbound = call.direction == Direction.IN
    client_phone = call.caller if inbound else call.callee
    activity = ActivitySpec(
        kind=ActivityKind.CALL, direction=call.direction, outcome=CALL_OUTCOMES[call.outcome],
        duration_seconds=call.duration, source=ActivitySource.TELEPHONY,
        note=_default_language("Call %(caller)s → %(callee)s: %(outcome)s",
                               caller=call.caller, callee=call.callee,
                               outcome=CallOutcome(call.outcome).label))
    subject = (_default_language("Incoming call from %(phone)s", phone=client_phone) if inbound
               else _default_language("Call to %(phone)s", phone=client_phone))
    with transaction.atomic():
        outcome = intake_arrival(Arrival(
            channel=Channel.PHONE, source=source.intake_source, external_id=call.call_id,
            pipeline=source.pipeline.code, phones=(client_phone,), subject=subject[:200],
            occurred_at=call.started_at, activity=activity))
        if outcome.repeated:
            return _received(outcome.record, True)
        HookCall.objects.create(
            source=source, record=outcome.record, ticket=outcome.ticket,
            activity_id=outcome.record.activity_id, call_id=call.call_id,
            direction=call.direction, caller=call.caller, callee=call.callee,
            started_at=call.started_at, duration_seconds=call.duration, outcome=call.outcome,
            recording_url=call.recording_url, received_at=clock.now())
        if not inbound and call.outcome == CallOutcome.ANSWERED:
            _call_back_done(outcome.ticket, outcome.record)
    return Received(ticket=outcome.ticket.number, created=outcome.created, repeated=False)


def _call_back_done(ticket: Ticket, record: IntakeRecord) -> None:
    """A connected outgoing call is the call back the ticket owed: its open "call the client
    back" tasks are completed by the call's activity (no second contact is logged). The
    ticket's last open task stays open with the call linked to it (promise 2: a person plans
    the next task when completing it)."""
    if record.activity_id is None:  # pragma: no cover - a call arrival always logs one
        return
    activity = Activity.objects.get(pk=record.activity_id)
    tasks = list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN,
                                     follow_up__kind=FollowUpKind.CALLBACK))
    if tasks:
        tasks_fulfil(actor=None, ticket=ticket, tasks=tasks, activity=activity)


def _known_sender(source: HookSource, message: MessageIn) -> Client | None:
    row = (HookSender.objects.select_related("client")
           .filter(source=source, channel=message.channel, sender_id=message.sender_id).first())
    if row is None or row.client.anonymised_at is not None:
        return None
    return row.client


def _ticket_of(client: Client, pipeline: Pipeline) -> Ticket | None:
    """The ticket that leads intake to ``client``: their open ticket in ``pipeline`` (the
    message is attached there), else their latest closed one (intake then opens a new ticket
    for the same client, even one without a phone or email to be found by)."""
    tickets = Ticket.objects.filter(client=client).order_by("-created_at", "-pk")
    return (tickets.filter(pipeline=pipeline, status=TicketStatus.OPEN).first()
            or tickets.exclude(status=TicketStatus.OPEN).first())


def message_receive(*, source: HookSource, message: MessageIn) -> Received:
    """A message into intake: a sender seen before goes to their client (their open ticket in
    the source's pipeline, else a new one for that client); a new sender is matched by phone,
    else becomes a new client. The text is kept and shown on the ticket page."""
    if source.kind != HookKind.MESSENGER:  # pragma: no cover - the URL picks the kind
        raise BadInput("this source is not a messenger source", code="bad_kind")
    known = _repeat(source, message.message_id)
    if known is not None:
        return known
    first_line = message.text.strip().splitlines()[0] if message.text.strip() else ""
    subject = first_line[:120] or _default_language("Message via %(channel)s",
                                                    channel=message.channel)
    with transaction.atomic():
        client = _known_sender(source, message)
        ticket = _ticket_of(client, source.pipeline) if client is not None else None
        phones: tuple[str, ...] = (message.sender_phone,) if message.sender_phone else ()
        emails: tuple[str, ...] = ()
        if client is not None:
            # The client's own contacts make intake find that client (not a new one).
            contacts = list(ClientContact.objects.filter(client=client)
                            .values_list("kind", "value"))
            phones = tuple(v for k, v in contacts if k == "phone") or phones
            emails = tuple(v for k, v in contacts if k == "email")
        outcome = intake_arrival(Arrival(
            channel=Channel.MESSENGER, source=source.intake_source,
            external_id=message.message_id, pipeline=source.pipeline.code,
            name=message.sender_name, phones=phones, emails=emails, subject=subject,
            text=message.text, occurred_at=message.sent_at, ticket=ticket))
        if outcome.repeated:
            return _received(outcome.record, True)
        HookMessage.objects.create(
            source=source, record=outcome.record, ticket=outcome.ticket,
            message_id=message.message_id, channel=message.channel,
            sender_id=message.sender_id, sender_phone=message.sender_phone,
            sender_name=message.sender_name, text=message.text, sent_at=message.sent_at,
            received_at=clock.now())
        if client is None:
            # A sender whose client was anonymised is the new client's from now on (else every
            # message of theirs would make yet another client).
            HookSender.objects.update_or_create(
                source=source, channel=message.channel, sender_id=message.sender_id,
                defaults={"client_id": outcome.ticket.client_id},
                create_defaults={"client_id": outcome.ticket.client_id,
                                 "created_at": clock.now()})
    return Received(ticket=outcome.ticket.number, created=outcome.created, repeated=False)
