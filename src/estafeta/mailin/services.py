"""Email intake: one raw message in, one ticket (created, attached or repeated) or one
quarantine row out. Every write of this app goes through here.

``mail_ingest`` is the only entry for incoming mail (the IMAP and maildir transports, the
``estafeta intake email`` command and the benchmark call it). It writes the mail message, its
attachments and an acknowledgement waiting to be sent in the same transaction as
``intake.services.intake_arrival``; the transports mark a message read only after it returned,
so a crash in between re-reads the message and the idempotency key (the Message-ID) makes the
second reading a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import ClientContact
from estafeta.core import clock
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Channel,
    ContactKind,
    Direction,
    EventType,
    Role,
)
from estafeta.domain.contacts import normalise_email
from estafeta.domain.errors import BadInput, EstafetaError
from estafeta.domain.numbering import NUMBER
from estafeta.domain.policy import require_role
from estafeta.history.services import event_record
from estafeta.tickets.files import ALLOWED_TYPES, safe_name
from estafeta.tickets.models import StoredFile, Ticket

from .models import (
    MailAttachment,
    Mailbox,
    MailboxKind,
    MailDirection,
    MailMessage,
    Quarantine,
    QuarantineReason,
)
from .parse import Parsed, Refused, digest_of, one_line, parse

log = logging.getLogger(__name__)

# A ticket number anywhere in the subject, e.g. "Re: [Z-2026-000123] Price".
SUBJECT_NUMBER = re.compile(r"(?<![A-Z0-9])([A-Z][A-Z0-9]{0,9}-\d{4}-\d{6,})(?![0-9])")
# Attachment types stored with their own type; anything else is kept as octet-stream (served as
# a download either way, never shown inline).
KEEP_TYPES = ALLOWED_TYPES | {"image/gif", "application/zip", "text/csv", "application/rtf"}
TICKET_TEXT = 9000  # the ticket keeps the beginning; the mail message keeps the whole text


@dataclass(frozen=True)
class Result:
    """What happened to one message: ``created`` / ``attached`` / ``flagged`` (a new ticket,
    marked as a possible duplicate) / ``repeated`` / ``quarantined``."""

    status: str
    ticket: Ticket | None = None
    message: MailMessage | None = None
    quarantine: Quarantine | None = None
    detail: str = ""

    def line(self) -> str:
        if self.status == "quarantined" and self.quarantine is not None:
            return (f"quarantined ({self.quarantine.reason}): {self.detail} "
                    f"[quarantine #{self.quarantine.pk}]")
        number = self.ticket.number if self.ticket else "-"
        return f"{self.status}: {number}" + (f" ({self.detail})" if self.detail else "")


def own_addresses() -> set[str]:
    """Estafeta's own addresses: every mailbox's and the notification sender's."""
    raw = list(Mailbox.objects.values_list("address", flat=True))
    raw += [getattr(settings, "ESTAFETA_MAIL_FROM", ""), getattr(settings, "DEFAULT_FROM_EMAIL",
                                                                 "")]
    out = set()
    for value in raw:
        address = (value or "").rpartition("<")[2].strip(" >")
        try:
            out.add(normalise_email(address))
        except BadInput:
            continue
    return out


# --- stored files ----------------------------------------------------------------------------


def _store(data: bytes, *, name: str, content_type: str, folder: str) -> StoredFile:
    digest = hashlib.sha256(data).hexdigest()
    path = f"{folder}/{digest[:2]}/{digest}"
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(data))
    return StoredFile.objects.create(sha256=digest, size=len(data), name=safe_name(name),
                                     content_type=content_type, path=path, uploaded_by=None,
                                     uploaded_at=clock.now())


def _attachment_type(name: str, declared: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or ""
    if guessed and guessed in KEEP_TYPES and (declared == guessed
                                               or declared == "application/octet-stream"):
        return guessed
    if declared in KEEP_TYPES and not guessed:
        return declared
    return "application/octet-stream"


# --- quarantine ------------------------------------------------------------------------------


def quarantine_add(raw: bytes, *, mailbox: Mailbox | None, reason: str, detail: str,
                   parsed: Parsed | None = None) -> Quarantine:
    """Keep a message that could not be taken in (once per mailbox and raw content)."""
    digest = digest_of(raw)
    existing = Quarantine.objects.filter(mailbox=mailbox, digest=digest).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            stored = _store(raw, name=f"message-{digest[:12]}.eml", content_type="message/rfc822",
                            folder="mail-quarantine")
            item = Quarantine.objects.create(
                mailbox=mailbox, raw=stored, digest=digest, reason=reason,
                detail=one_line(detail, 2000),
                message_id=parsed.message_id if parsed and parsed.has_message_id else "",
                from_address=parsed.from_address if parsed else "",
                subject=parsed.subject if parsed else "", received_at=clock.now())
            event_record(stream=f"quarantine:{item.pk}", type=EventType.MAIL_QUARANTINED,
                         actor=None, new_stream=True,
                         payload={"mailbox": mailbox.pk if mailbox else None, "reason": reason,
                                  "digest": digest})
    except IntegrityError:  # the same message quarantined concurrently
        return Quarantine.objects.get(mailbox=mailbox, digest=digest)
    return item


def quarantine_resolve(*, actor: User | None, item: Quarantine) -> Quarantine:
    """An admin has looked at the message (and dealt with it by hand)."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="resolve quarantine")
    with transaction.atomic():
        item = Quarantine.objects.select_for_update().get(pk=item.pk)
        if item.resolved_at is not None:
            return item
        item.resolved_at = clock.now()
        item.resolved_by = actor
        item.save(update_fields=["resolved_at", "resolved_by"])
        event_record(stream=f"quarantine:{item.pk}", type=EventType.QUARANTINE_RESOLVED,
                     actor=actor, payload={})
    return item


# --- routing ---------------------------------------------------------------------------------


def _threaded(parsed: Parsed) -> Ticket | None:
    ids = parsed.thread_ids
    if not ids:
        return None
    # both directions named: the unique (direction, message_id) index answers it
    known = (MailMessage.objects.filter(direction__in=[MailDirection.IN, MailDirection.OUT],
                                        message_id__in=ids).select_related("ticket")
             .order_by("-created_at", "-pk"))
    by_id = {m.message_id: m.ticket for m in known}
    for message_id in ids:  # In-Reply-To first, then References
        if message_id in by_id:
            return by_id[message_id]
    return None


def _numbered(parsed: Parsed, pipeline: str) -> tuple[Ticket | None, Ticket | None]:
    """(ticket to attach to, ticket the new one may duplicate) from a number in the subject.

    From the ticket's client: that ticket. From anyone else: the new ticket may duplicate it
    (as it is now: a merged ticket's survivor), but only within the mailbox's pipeline, where
    the new ticket opens; tickets of two pipelines are never merged, so a flag across them
    could only be dismissed."""
    from estafeta.intake.selectors import survivor_of

    match = SUBJECT_NUMBER.search(parsed.subject.upper())
    if not match or not NUMBER.match(match.group(1)):
        return None, None
    ticket = Ticket.objects.filter(number=match.group(1)).first()
    if ticket is None:
        return None, None
    on_client = ClientContact.objects.filter(client_id=ticket.client_id, kind=ContactKind.EMAIL,
                                             value=parsed.from_address).exists()
    if on_client:
        return ticket, None
    of = survivor_of(ticket)
    if of.pipeline.code != pipeline:
        return None, None
    return None, of


def _arrival(parsed: Parsed, mailbox: Mailbox | None, pipeline: str, ticket: Ticket | None,
             received_at: datetime) -> Any:
    from estafeta.intake.services import ActivitySpec, Arrival

    text = parsed.text
    if len(text) > TICKET_TEXT:
        text = text[:TICKET_TEXT] + "\n[…]"
    return Arrival(
        channel=Channel.EMAIL, source=mailbox.source if mailbox else "mailbox:file",
        external_id=parsed.message_id[:255], pipeline=pipeline, name=parsed.from_name,
        emails=(parsed.from_address,), subject=parsed.subject[:200] or "(no subject)",
        text=text, occurred_at=min(parsed.date or received_at, received_at), ticket=ticket,
        activity=ActivitySpec(kind=ActivityKind.EMAIL, direction=Direction.IN,
                              outcome=ActivityOutcome.RECEIVED,
                              source=ActivitySource.EMAIL_INTAKE),
        owes_reply=not parsed.auto,
    )


def _flag(ticket: Ticket, of: Ticket, record: Any) -> None:
    """The new ticket of a stranger who wrote with another ticket's number in the subject may
    be the same request: a flag for heads (intake's merge/dismiss decide it)."""
    from estafeta.intake.models import DuplicateFlag

    DuplicateFlag.objects.get_or_create(ticket=ticket, of=of,
                                        defaults={"record": record, "created_at": clock.now()})


def mail_ingest(raw: bytes, *, mailbox: Mailbox | None, pipeline: str | None = None,
                received_at: datetime | None = None) -> Result:
    """Take one raw message in. Never raises for bad mail: that is quarantined. Database
    errors propagate (the transport then leaves the message unread for the next pass)."""
    received_at = received_at or clock.now()
    pipeline_code = pipeline or (mailbox.pipeline.code if mailbox else "")
    if not pipeline_code:
        raise BadInput("a message without a mailbox needs a pipeline", code="no_pipeline")
    try:
        parsed = parse(raw)
    except Refused as refusal:
        item = quarantine_add(raw, mailbox=mailbox, reason=refusal.reason,
                              detail=refusal.detail)
        return Result("quarantined", quarantine=item, detail=refusal.detail)
    if parsed.auto == "bounce":
        item = quarantine_add(raw, mailbox=mailbox, reason=QuarantineReason.BOUNCE,
                              detail="a delivery report", parsed=parsed)
        return Result("quarantined", quarantine=item, detail="a delivery report")
    if parsed.from_address in own_addresses():
        item = quarantine_add(raw, mailbox=mailbox, reason=QuarantineReason.OWN_MAIL,
                              detail=f"sent from our own address {parsed.from_address}",
                              parsed=parsed)
        return Result("quarantined", quarantine=item, detail="our own mail")
    try:
        return _ingest(raw, parsed, mailbox, pipeline_code, received_at)
    except (EstafetaError, Refused) as exc:  # intake refused it: keep it, go on
        reason = exc.reason if isinstance(exc, Refused) else QuarantineReason.FAILED
        item = quarantine_add(raw, mailbox=mailbox, reason=reason, detail=str(exc),
                              parsed=parsed)
        return Result("quarantined", quarantine=item, detail=str(exc))
    except DatabaseError:
        raise  # the database is away: the transport leaves the message for the next pass
    except Exception as exc:  # a message that trips a bug must not stop the mailbox
        log.exception("mail intake failed for %s", parsed.message_id)
        detail = f"{type(exc).__name__}: {exc}"
        item = quarantine_add(raw, mailbox=mailbox, reason=QuarantineReason.FAILED,
                              detail=detail, parsed=parsed)
        return Result("quarantined", quarantine=item, detail=detail)


def _ingest(raw: bytes, parsed: Parsed, mailbox: Mailbox | None, pipeline: str,
            received_at: datetime) -> Result:
    from estafeta.intake.services import intake_arrival

    with transaction.atomic():
        seen = (MailMessage.objects.filter(direction=MailDirection.IN,
                                           message_id=parsed.message_id)
                .select_related("ticket").first())
        if seen is not None:  # the same message through another mailbox or the console
            from estafeta.intake.selectors import survivor_of

            return Result("repeated", ticket=survivor_of(seen.ticket), message=seen)
        ticket = _threaded(parsed)
        duplicate_of = None
        if ticket is None:
            ticket, duplicate_of = _numbered(parsed, pipeline)
        outcome = intake_arrival(_arrival(parsed, mailbox, pipeline, ticket, received_at))
        if outcome.repeated:
            message = MailMessage.objects.filter(direction=MailDirection.IN,
                                                 message_id=parsed.message_id).first()
            return Result("repeated", ticket=outcome.ticket, message=message)
        if duplicate_of is not None and outcome.created and duplicate_of.pk != outcome.ticket.pk:
            _flag(outcome.ticket, duplicate_of, outcome.record)
        message = MailMessage.objects.create(
            mailbox=mailbox, ticket=outcome.ticket, direction=MailDirection.IN,
            message_id=parsed.message_id[:255], in_reply_to=parsed.in_reply_to[:255],
            references=" ".join(parsed.references), from_address=parsed.from_address,
            from_name=parsed.from_name, to_addresses=", ".join(parsed.to_addresses),
            subject=parsed.subject, text=parsed.text, html=parsed.html,
            truncated=parsed.truncated, auto_reply=bool(parsed.auto), sent_at=parsed.date,
            received_at=received_at, activity=outcome.record.activity,
            intake_record=outcome.record, created_at=clock.now())
        for part in parsed.attachments:
            name = safe_name(part.name)
            content_type = _attachment_type(name, part.content_type)
            stored = _store(part.data, name=name, content_type=content_type, folder="mail")
            MailAttachment.objects.create(message=message, file=stored, name=stored.name,
                                          content_type=content_type, size=stored.size)
        if mailbox is not None and mailbox.acknowledge and not parsed.auto and outcome.created:
            from .ack import ack_prepare

            ack_prepare(message)
    if outcome.flagged or (duplicate_of is not None and outcome.created):
        status = "flagged"
    else:
        status = "created" if outcome.created else "attached"
    return Result(status, ticket=outcome.ticket, message=message)


# --- mailboxes -------------------------------------------------------------------------------

MAILBOX_FIELDS = ["name", "address", "kind", "host", "port", "starttls", "ssl_verify",
                  "username", "folder", "path", "pipeline", "acknowledge", "active"]


def _check_mailbox(mailbox: Mailbox) -> None:
    try:
        mailbox.address = normalise_email(mailbox.address)
    except BadInput:
        raise BadInput("the mailbox address is not an email address", code="bad_email") from None
    if not mailbox.name.strip():
        raise BadInput("the mailbox needs a name", code="bad_name")
    if mailbox.kind == MailboxKind.IMAP:
        if not mailbox.host.strip() or not mailbox.username.strip():
            raise BadInput("an IMAP mailbox needs a host and a user name", code="bad_mailbox")
        if not 0 < mailbox.port < 65536:
            raise BadInput("the port must be between 1 and 65535", code="bad_port")
    elif mailbox.kind == MailboxKind.MAILDIR:
        if not mailbox.path.strip():
            raise BadInput("a maildir mailbox needs a path", code="bad_mailbox")
    else:
        raise BadInput("a mailbox is imap or maildir", code="bad_kind")
    clash = Mailbox.objects.filter(name=mailbox.name).exclude(pk=mailbox.pk).exists()
    if clash:
        raise BadInput("there is already a mailbox with this name", code="name_taken")


def mailbox_save(*, actor: User | None, mailbox: Mailbox, password: str | None = None) -> Mailbox:
    """Create or change a mailbox. ``password=None`` keeps the stored one (it is never shown)."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="configure mailboxes")
    _check_mailbox(mailbox)
    created = mailbox.pk is None
    with transaction.atomic():
        if password is not None:
            mailbox.password = password
        mailbox.last_error = "" if created else mailbox.last_error
        mailbox.save()
        event_record(stream=f"mailbox:{mailbox.pk}", type=EventType.MAILBOX_SAVED, actor=actor,
                     new_stream=created,
                     payload={**{f: str(getattr(mailbox, f if f != "pipeline" else "pipeline_id"))
                                 for f in MAILBOX_FIELDS},
                              "password_changed": password is not None})
    return mailbox


def mailbox_polled(mailbox: Mailbox, *, error: str = "") -> None:
    """The worker's note of a pass over a mailbox (time, and the error if it failed)."""
    Mailbox.objects.filter(pk=mailbox.pk).update(last_polled_at=clock.now(),
                                                 last_error=one_line(error, 2000))


def mailboxes_active() -> list[Mailbox]:
    return list(Mailbox.objects.filter(active=True).select_related("pipeline").order_by("pk"))


def quarantine_open() -> Any:
    return Quarantine.objects.filter(Q(resolved_at__isnull=True)).select_related("mailbox")
