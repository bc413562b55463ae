"""The routing every channel goes through (email, web form, telephony, messengers).

``intake_arrival`` turns one arrival into rows: the client found by any spelling of a phone or
email (or created), the ticket it belongs to (the one the channel names, the client's open
ticket in the pipeline, or a new one), the contact logged, a reply or call-back task when
somebody now owes the client an answer, and one ``intake.received`` event. The pair
``(source, external_id)`` is the idempotency key: the same message delivered twice writes
nothing the second time. See docs/intake.md.

Heads resolve possible duplicates here too: ``ticket_merge`` (the merged ticket becomes void,
its number keeps resolving to the survivor) and ``duplicate_dismiss``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.calendars.selectors import calendar_for
from estafeta.clients.models import Client
from estafeta.clients.selectors import clients_matching
from estafeta.clients.services import client_create, client_update
from estafeta.core import clock
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Channel,
    Direction,
    EventType,
    Role,
    TaskKind,
    TaskStatus,
    TicketStatus,
)
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.durations import Duration
from estafeta.domain.errors import BadInput, Conflict, Forbidden, NotFound
from estafeta.domain.policy import is_supervisor, require_active
from estafeta.history.services import ticket_event
from estafeta.pipelines.models import PipelineVersion
from estafeta.pipelines.selectors import version_for_new_ticket
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_brief, task_insert
from estafeta.tickets.models import Activity, StageVisit, Ticket
from estafeta.tickets.selectors import open_visit, ticket_facts, ticket_for_update
from estafeta.tickets.services import activity_log, ticket_create, void_locked

from .models import DuplicateFlag, FlagStatus, FollowUp, FollowUpKind, IntakeRecord
from .selectors import survivor_of

log = logging.getLogger("estafeta.intake")

MAX_SOURCE = 100
MAX_EXTERNAL_ID = 255
MAX_SUBJECT = 200
MAX_TEXT = 10000
MAX_RECORD_TEXT = 200_000
MAX_CONTACTS = 20
DEFAULT_FIRST_RESPONSE = "2h"
DUPLICATES_ATTACH = "attach"
DUPLICATES_FLAG = "flag"
# Channels whose arrivals are messages someone must answer (a call is answered or called back).
MESSAGE_CHANNELS = frozenset({Channel.EMAIL, Channel.WEB_FORM, Channel.MESSENGER})


@dataclass(frozen=True)
class ActivitySpec:
    """The contact to log on the ticket (an inbound email, a call...)."""

    kind: str
    direction: str
    outcome: str
    duration_seconds: int | None = None
    note: str = ""
    source: str = ActivitySource.MANUAL  # EMAIL_INTAKE / TELEPHONY / MESSENGER


@dataclass(frozen=True)
class Arrival:
    """One request as a channel received it (see the module docstring and docs/intake.md)."""

    channel: Channel
    source: str  # "mailbox:<id>", "form:<slug>", "telephony:<name>", "messenger:<name>"
    external_id: str  # Message-ID / submission id / provider's id: idempotency with source
    pipeline: str  # pipeline code for a new ticket
    name: str = ""
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    subject: str = ""
    text: str = ""
    occurred_at: datetime | None = None
    ticket: Ticket | None = None  # the channel already knows the ticket (email threading)
    activity: ActivitySpec | None = None
    # False for automatic mail (an out-of-office answer, a list): recorded, but nobody owes
    # its sender a reply.
    owes_reply: bool = True


@dataclass(frozen=True)
class Outcome:
    record: IntakeRecord
    ticket: Ticket
    created: bool
    repeated: bool
    flagged: bool


# --- input ---------------------------------------------------------------------------------


def _clean(arrival: Arrival) -> tuple[Channel, str, str, datetime]:
    """Everything that can be refused is refused here, before any row is written."""
    try:
        channel = Channel(arrival.channel)
    except ValueError:
        raise BadInput(f"{arrival.channel!r} is not a channel", code="bad_channel") from None
    source = (arrival.source or "").strip()
    external_id = (arrival.external_id or "").strip()
    if "\x00" in source or "\x00" in external_id:
        raise BadInput("the source and external id cannot hold NUL characters",
                       code="bad_external_id")
    if not source or len(source) > MAX_SOURCE:
        raise BadInput(f"the source must be 1-{MAX_SOURCE} characters", code="bad_source")
    if not external_id or len(external_id) > MAX_EXTERNAL_ID:
        raise BadInput(f"the external id must be 1-{MAX_EXTERNAL_ID} characters",
                       code="bad_external_id")
    now = clock.now()
    when = arrival.occurred_at or now
    if timezone.is_naive(when):
        raise BadInput("the time of arrival needs a time zone", code="naive_time")
    # A sender's clock ahead of ours must not make the contact "in the future".
    when = min(when, now)
    if len(arrival.phones) > MAX_CONTACTS or len(arrival.emails) > MAX_CONTACTS:
        raise BadInput(f"at most {MAX_CONTACTS} phones and emails per arrival",
                       code="too_many_contacts")
    if arrival.activity is not None and arrival.activity.source not in {
            s.value for s in ActivitySource}:
        raise BadInput(f"{arrival.activity.source!r} is not an activity source",
                       code="bad_source")
    return channel, source, external_id, when


def _no_nul(value: str) -> str:
    return (value or "").replace("\x00", "")


def _usable(raw: tuple[str, ...], normalise: Any) -> list[str]:
    out: list[str] = []
    for value in raw:
        try:
            out.append(normalise(value))
        except BadInput:
            continue
    return list(dict.fromkeys(out))


def _company(text: str) -> str:
    """Stored text (task titles, placeholder names) in the company's language, as people
    reading the ticket later see it (not in the language of whoever happens to be active)."""
    with translation.override(settings.LANGUAGE_CODE):
        return translation.gettext(text)


def _client_name(arrival: Arrival, emails: list[str], phones: list[str]) -> str:
    name = " ".join((arrival.name or "").split())[:200]
    return name or (emails[0] if emails else phones[0] if phones else _company(
        gettext_noop("Unknown client")))


_CHANNEL_SUBJECTS = {Channel.EMAIL: gettext_noop("Request by email"),
                     Channel.WEB_FORM: gettext_noop("Request from the web form"),
                     Channel.PHONE: gettext_noop("Request by phone"),
                     Channel.MESSENGER: gettext_noop("Request by messenger")}


def _subject(arrival: Arrival, channel: Channel) -> str:
    subject = " ".join((arrival.subject or "").split())
    if not subject:
        first = next((line for line in (arrival.text or "").splitlines() if line.strip()), "")
        subject = " ".join(first.split())
    return (subject or _company(_CHANNEL_SUBJECTS.get(channel, gettext_noop("Request"))))[
        :MAX_SUBJECT]


# --- pipeline settings ---------------------------------------------------------------------


def intake_settings(version: PipelineVersion) -> dict[str, Any]:
    """The pipeline file's ``intake:`` section with defaults (validated when loaded)."""
    data = version.spec.get("intake") if isinstance(version.spec, dict) else None
    data = data if isinstance(data, dict) else {}
    return {"duplicates": data.get("duplicates", DUPLICATES_ATTACH),
            "first_response": data.get("first_response", DEFAULT_FIRST_RESPONSE)}


def first_response_due(ticket: Ticket, now: datetime) -> datetime:
    """When a reply (or call back) is due: the pipeline's first-response time in business
    time from ``now``."""
    return calendar_for(ticket.version).add(
        now, Duration.parse(intake_settings(ticket.version)["first_response"]))


# --- the arrival ---------------------------------------------------------------------------


def _advisory_locks(keys: list[str]) -> None:
    """Transaction-level advisory locks on PostgreSQL (in one order, so never a deadlock);
    SQLite serialises writers and needs none."""
    if connection.vendor != "postgresql" or not keys:
        return
    with connection.cursor() as cursor:
        for key in sorted(set(keys)):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", [key])


def _claim_key(source: str, external_id: str, phones: list[str], emails: list[str]) -> None:
    """A concurrent delivery of the same arrival waits here until the first one commits, then
    finds its record (no wasted ticket number); two first messages from one new client wait
    for each other, so the second finds the client (and the ticket) the first made. The unique
    constraint on (source, external_id) decides anyway."""
    _advisory_locks([f"intake|{len(source)}|{source}|{external_id}",
                     *(f"intake-contact|{c}" for c in (*phones, *emails))])


def _repeated(source: str, external_id: str) -> Outcome | None:
    record = (IntakeRecord.objects.select_related("ticket")
              .filter(source=source, external_id=external_id).first())
    if record is None:
        return None
    # Answered with the ticket as it is now: merged since, it is the ticket it became.
    return Outcome(record=record, ticket=survivor_of(record.ticket), created=False,
                   repeated=True, flagged=False)


def _find_client(arrival: Arrival, phones: list[str], emails: list[str]) -> Client:
    client = clients_matching(phones=phones, emails=emails).first()
    if client is None:
        return client_create(actor=None, name=_client_name(arrival, emails, phones),
                             phones=phones, emails=emails)
    known = set(client.contacts.values_list("value", flat=True))
    new_phones = [p for p in phones if p not in known]
    new_emails = [e for e in emails if e not in known]
    if new_phones or new_emails:  # the next arrival from these contacts finds the same client
        client_update(actor=None, client=client, add_phones=new_phones, add_emails=new_emails)
    return client


def _survivor(ticket: Ticket) -> Ticket:
    """The ticket as it is now, following merges (a message threaded into a merged ticket goes
    to the one it became)."""
    current = Ticket.objects.select_related("client").get(pk=ticket.pk)
    seen = {current.pk}
    while current.merged_into_id is not None and current.merged_into_id not in seen:
        seen.add(current.merged_into_id)
        current = Ticket.objects.select_related("client").get(pk=current.merged_into_id)
    return current


def _flags_duplicates(pipeline: str) -> bool:
    try:
        version = version_for_new_ticket(pipeline)
    except (BadInput, NotFound):
        return False  # no new ticket can be opened there: attaching loses nothing
    return bool(intake_settings(version)["duplicates"] == DUPLICATES_FLAG)


def _open_ticket_of(client: Client, pipeline: str) -> Ticket | None:
    return (Ticket.objects.filter(client=client, pipeline__code=pipeline,
                                  status=TicketStatus.OPEN)
            .order_by("-created_at", "-pk").first())


def intake_arrival(arrival: Arrival) -> Outcome:
    """Record one arrival (one transaction; may run inside the caller's, see the module
    docstring). Bad input raises ``BadInput`` and writes nothing."""
    channel, source, external_id, when = _clean(arrival)
    # NUL characters cannot be stored (PostgreSQL text); nothing else is lost with them.
    arrival = replace(arrival, name=_no_nul(arrival.name), subject=_no_nul(arrival.subject),
                      text=_no_nul(arrival.text),
                      phones=tuple(_no_nul(p) for p in arrival.phones),
                      emails=tuple(_no_nul(e) for e in arrival.emails))
    phones = _usable(arrival.phones, normalise_phone)
    emails = _usable(arrival.emails, normalise_email)
    subject = _subject(arrival, channel)
    text = (arrival.text or "").strip()
    with transaction.atomic():
        _claim_key(source, external_id, phones, emails)
        seen = _repeated(source, external_id)
        if seen is not None:
            return seen
        try:
            with transaction.atomic():  # a savepoint: a lost race undoes all of this
                return _route(arrival, channel, source, external_id, when, phones, emails,
                              subject, text)
        except IntegrityError:
            seen = _repeated(source, external_id)
            if seen is None:
                raise
            return seen


def _route(arrival: Arrival, channel: Channel, source: str, external_id: str, when: datetime,
           phones: list[str], emails: list[str], subject: str, text: str) -> Outcome:
    now = clock.now()
    given = _survivor(arrival.ticket) if arrival.ticket is not None else None
    if given is not None and given.client.anonymised_at is not None:
        # The client's data was erased on request: a reply to their old thread (or with their
        # old number) is a stranger's request now, never added back to the erased client.
        given = None
    closed_ref: Ticket | None = None
    ticket: Ticket | None = None
    if given is not None and given.status == TicketStatus.OPEN:
        ticket, client = given, given.client
    else:
        if given is not None and given.status in (TicketStatus.WON, TicketStatus.LOST):
            # A message on a finished deal: a new request of the same client (new ticket
            # flagged against the closed one) unless the client has an open one.
            closed_ref = given
        client = given.client if given is not None else _find_client(arrival, phones, emails)
        ticket = _open_ticket_of(client, arrival.pipeline)
    created = flagged = False
    flag_of: Ticket | None = closed_ref
    if ticket is not None and ticket is not given and _flags_duplicates(arrival.pipeline):
        flag_of, ticket = ticket, None
    if ticket is None:
        ticket = ticket_create(actor=None, pipeline=arrival.pipeline, client=client,
                               channel=channel, subject=subject, description=text[:MAX_TEXT])
        created = True
    activity = _log_activity(arrival, ticket, when, text)
    record = IntakeRecord.objects.create(
        source=source, external_id=external_id, channel=channel, ticket=ticket,
        client_id=ticket.client_id, activity=activity, created_ticket=created,
        flagged=flag_of is not None and created, name=(arrival.name or "")[:200],
        phones=[p[:100] for p in arrival.phones], emails=[e[:300] for e in arrival.emails],
        subject=subject, text=text[:MAX_RECORD_TEXT], occurred_at=when, recorded_at=now)
    if created and flag_of is not None:
        DuplicateFlag.objects.create(ticket=ticket, of=flag_of, record=record, created_at=now)
        flagged = True
    follow_up = None
    if not created and arrival.owes_reply and _owes_reply(channel, arrival.activity):
        follow_up = _follow_up(ticket, FollowUpKind.REPLY, record, now)
    if _missed_call(arrival.activity):
        follow_up = _follow_up(ticket, FollowUpKind.CALLBACK, record, now)
    ticket = ticket_for_update(ticket)
    ticket_event(ticket, EventType.INTAKE_RECEIVED, None, {
        "record": record.pk, "channel": channel, "source": source,
        "external_id": external_id[:255], "created": created, "attached": not created,
        "flagged": flagged, "duplicate_of": flag_of.number if flagged and flag_of else None,
        "client": ticket.client_id, "activity": activity.pk if activity else None,
        "follow_up": task_brief(follow_up) if follow_up else None})
    return Outcome(record=record, ticket=ticket, created=created, repeated=False,
                   flagged=flagged)


def _log_activity(arrival: Arrival, ticket: Ticket, when: datetime,
                  text: str) -> Activity | None:
    spec = arrival.activity
    if spec is None:
        return None
    note = _no_nul(spec.note).strip() or text
    return activity_log(actor=None, ticket=ticket, kind=spec.kind, direction=spec.direction,
                        outcome=spec.outcome, duration_seconds=spec.duration_seconds,
                        occurred_at=when, note=note[:MAX_TEXT], source=spec.source)


def _owes_reply(channel: Channel, spec: ActivitySpec | None) -> bool:
    """A client's message (not a call: calls are answered or called back) now waits for an
    answer."""
    if spec is not None:
        if spec.kind == ActivityKind.CALL or spec.direction != Direction.IN:
            return False
        return channel in MESSAGE_CHANNELS or spec.kind == ActivityKind.EMAIL
    return channel in MESSAGE_CHANNELS


def _missed_call(spec: ActivitySpec | None) -> bool:
    return (spec is not None and spec.kind == ActivityKind.CALL
            and spec.direction == Direction.IN
            and spec.outcome in (ActivityOutcome.NO_ANSWER, ActivityOutcome.BUSY))


# --- reply and call-back tasks -------------------------------------------------------------

_TITLES = {FollowUpKind.REPLY: gettext_noop("Reply to the client"),
           FollowUpKind.CALLBACK: gettext_noop("Call the client back")}
_KINDS = {FollowUpKind.REPLY: TaskKind.EMAIL, FollowUpKind.CALLBACK: TaskKind.CALL}


def _assignee(ticket: Ticket) -> User | None:
    """The current stage's executor, else the owner; active people only."""
    visit = (StageVisit.objects.select_related("executor")
             .filter(ticket=ticket, closed_at__isnull=True).first())
    for person in (visit.executor if visit else None, ticket.owner):
        if person is not None and person.is_active:
            return person
    return None


def _follow_up(ticket: Ticket, kind: FollowUpKind, record: IntakeRecord | None,
               now: datetime) -> Task | None:
    """The open reply/call-back task of this kind on the ticket, or a new one (the row only;
    the caller writes the event). ``None`` when the ticket is closed or nobody can take it."""
    ticket = ticket_for_update(ticket)
    if not ticket.is_open:
        return None
    existing = (Task.objects.filter(follow_up__kind=kind, ticket=ticket,
                                    status=TaskStatus.OPEN).first())
    if existing is not None:
        return existing
    assignee = _assignee(ticket)
    if assignee is None:
        log.warning("%s: nobody active to answer the client", ticket.number)
        return None
    visit = StageVisit.objects.filter(ticket=ticket, closed_at__isnull=True).first()
    task = task_insert(ticket=ticket, visit=visit, kind=_KINDS[kind], title=_company(_TITLES[kind]),
                       assignee=assignee, due_at=first_response_due(ticket, now), actor=None,
                       now=now)
    FollowUp.objects.create(task=task, ticket=ticket, kind=kind, record=record, created_at=now)
    return task


def callback_task_ensure(ticket: Ticket, *, record: IntakeRecord | None = None) -> Task | None:
    """A "call the client back" task on ``ticket`` due within the first-response time, unless
    one is open (for a missed call the telephony webhook learnt about outside an arrival).
    ``intake_arrival`` does this itself for an inbound call that was not answered."""
    return _ensure(ticket, FollowUpKind.CALLBACK, record)


def reply_task_ensure(ticket: Ticket, *, record: IntakeRecord | None = None) -> Task | None:
    """A "reply to the client" task on ``ticket`` unless one is open."""
    return _ensure(ticket, FollowUpKind.REPLY, record)


def _ensure(ticket: Ticket, kind: FollowUpKind, record: IntakeRecord | None) -> Task | None:
    now = clock.now()
    with transaction.atomic():
        before = set(Task.objects.filter(ticket=ticket, follow_up__kind=kind,
                                         status=TaskStatus.OPEN).values_list("pk", flat=True))
        task = _follow_up(ticket, kind, record, now)
        if task is not None and task.pk not in before:
            locked = ticket_for_update(ticket)
            ticket_event(locked, EventType.TASK_PLANNED, None,
                         {"task": task_brief(task), "override": False, "follow_up": kind})
    return task


# --- duplicates and merge ------------------------------------------------------------------


def _supervises(actor: User, ticket: Ticket) -> bool:
    visit = StageVisit.objects.select_related("executor").filter(
        ticket=ticket, closed_at__isnull=True).first()
    return is_supervisor(actor_facts(actor), ticket_facts(ticket, visit, assignees=False))


def _require_head(actor: User, *tickets: Ticket, what: str) -> None:
    facts = actor_facts(actor)
    require_active(facts)
    if facts.role not in (Role.HEAD, Role.DIRECTOR) or not all(
            _supervises(actor, t) for t in tickets):
        raise Forbidden(f"only a head of these tickets' team or a director can {what}",
                        code="supervisor_only")


def _note(value: str) -> str:
    text = (value or "").strip()
    if len(text) > 2000:
        raise BadInput("the note is longer than 2000 characters", code="too_long")
    return text


def ticket_merge(*, actor: User, ticket: Ticket, into: Ticket, reason: str = "") -> Ticket:
    """Merge ``ticket`` into ``into`` (a head of both tickets' team, or a director).

    ``ticket`` becomes void with reason "merged" and ``merged_into`` set; its open tasks are
    cancelled; nothing is deleted and its number resolves to ``into`` from now on. Open
    duplicate flags between the two are closed as merged. Returns the survivor.
    """
    note = _note(reason)
    if ticket.pk == into.pk:
        raise BadInput("a ticket cannot be merged into itself", code="bad_merge")
    now = clock.now()
    with transaction.atomic():
        # Both rows locked in id order, so two merges of the same pair cannot deadlock.
        first, second = sorted((ticket.pk, into.pk))
        locked = {first: ticket_for_update(first), second: ticket_for_update(second)}
        ticket, into = locked[ticket.pk], locked[into.pk]
        _require_head(actor, ticket, into, what="merge tickets")
        if not ticket.is_open:
            raise Conflict(f"{ticket.number} is {ticket.status}; only an open ticket is merged",
                           code="ticket_closed", status=ticket.status)
        if into.status == TicketStatus.VOID:
            raise Conflict(f"{into.number} is void; merge into the ticket it became",
                           code="merge_into_void")
        if into.pipeline_id != ticket.pipeline_id:
            raise BadInput("tickets of different pipelines are not merged",
                           code="merge_other_pipeline")
        flags = list(DuplicateFlag.objects.filter(
            status=FlagStatus.OPEN, ticket__in=(ticket, into), of__in=(ticket, into))
            .values_list("pk", flat=True))
        DuplicateFlag.objects.filter(pk__in=flags).update(
            status=FlagStatus.MERGED, decided_at=now, decided_by=actor, note=note)
        void_locked(ticket, open_visit(ticket), actor=actor, now=now, reason="merged",
                    close_note=f"merged into {into.number}" + (f": {note}" if note else ""),
                    duplicate_of=into, merged_into=into, override=False,
                    task_reason="ticket merged",
                    payload={"merged_into": into.number, "note": note, "flags": flags})
        into.updated_at = now
        into.save(update_fields=["updated_at"])
        ticket_event(into, EventType.TICKET_MERGED, actor, {
            "merged": ticket.number, "merged_id": ticket.pk, "note": note, "flags": flags})
    return into


def duplicate_dismiss(*, actor: User, flag: DuplicateFlag, note: str = "") -> DuplicateFlag:
    """A head says the flagged ticket is a request of its own: the flag closes, both tickets
    stay as they are."""
    text = _note(note)
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(flag.ticket_id)
        row = DuplicateFlag.objects.select_for_update().get(pk=flag.pk)
        _require_head(actor, ticket, what="dismiss a possible duplicate")
        if row.status != FlagStatus.OPEN:
            raise Conflict(f"this flag is already {row.status}", code="flag_decided",
                           status=row.status)
        row.status, row.decided_at, row.decided_by, row.note = (
            FlagStatus.DISMISSED, now, actor, text)
        row.save(update_fields=["status", "decided_at", "decided_by", "note"])
        of_number = Ticket.objects.filter(pk=row.of_id).values_list("number", flat=True).first()
        ticket_event(ticket, EventType.DUPLICATE_DISMISSED, actor,
                     {"flag": row.pk, "of": of_number, "note": text})
    return row


def flag_merge(*, actor: User, flag: DuplicateFlag, note: str = "") -> Ticket:
    """Merge a flagged ticket into the ticket it may duplicate (the survivor is returned)."""
    try:
        row = DuplicateFlag.objects.select_related("ticket", "of").get(pk=flag.pk)
    except DuplicateFlag.DoesNotExist:
        raise NotFound("there is no such flag", code="unknown_flag") from None
    if row.status != FlagStatus.OPEN:
        raise Conflict(f"this flag is already {row.status}", code="flag_decided",
                       status=row.status)
    return ticket_merge(actor=actor, ticket=row.ticket, into=row.of, reason=note)
