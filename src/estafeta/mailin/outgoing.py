"""Replies to the client from the ticket page: ``mail_reply`` (the one writer) and the email the
outbox builds from it (``reply_email``).

A reply is written in one transaction: the outbound ``MailMessage`` (with its own Message-ID on
our domain, In-Reply-To and References pointing at the client's last message), its attachments,
an outbound email activity through ``tickets.services.activity_log`` (which writes the ticket's
one history event and checks that the person may work on the ticket), and a row in the outbox
(``notifications.Notification``, channel ``email``, kind ``mail_reply``). The worker's
``deliver_pending`` sends it after commit, with retries; the Message-ID is fixed when the reply
is written, so a retry after the "sent but not yet marked" window carries the same id and the
client's mail program shows one message.

The outbox row's recipient is the person who wrote the reply: the outbox is addressed to users,
and the delivery step re-checks that they are active and may still see the ticket. The email
itself goes to the client's address stored on the message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Direction,
    TaskStatus,
    TicketStatus,
)
from estafeta.domain.errors import BadInput, Conflict
from estafeta.intake.models import FollowUpKind
from estafeta.notifications.models import Notification
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, tasks_fulfil
from estafeta.tickets.files import store_file
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import ticket_for_update
from estafeta.tickets.services import activity_log

from .models import MailAttachment, Mailbox, MailDirection, MailMessage

KIND = "mail_reply"  # the outbox kind; notifications.mail hands these to reply_email
MAX_RECIPIENTS = 10
MAX_SUBJECT = 255
MAX_TEXT = 100_000
MAX_ATTACHMENTS = 10
MAX_REFERENCES = 20  # the client's mail program needs the root and the last few, not all
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|ответ|отв)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]{1,250}>")


def subject_tag(ticket: Ticket) -> str:
    """What keeps the ticket's number in the subject: ``[#S-2025-000001]``."""
    return f"[#{ticket.number}]"


def reply_subject(ticket: Ticket, base: str) -> str:
    """``Re: <base without its Re:/Fwd: prefixes>`` with the ticket's number tag kept."""
    base = _PREFIX.sub("", " ".join((base or "").split())) or ticket.subject
    subject = f"Re: {base}"
    if ticket.number not in subject:
        subject = f"{subject} {subject_tag(ticket)}"
    return subject


def _message_ids(value: str) -> list[str]:
    return _MSGID.findall(value or "")


def thread_parent(ticket: Ticket) -> MailMessage | None:
    """The message a reply answers: the client's last message, else our own last one."""
    messages = MailMessage.objects.filter(ticket=ticket).order_by("-created_at", "-pk")
    return (messages.filter(direction=MailDirection.IN).first()
            or messages.filter(direction=MailDirection.OUT).first())


def reply_mailbox(ticket: Ticket, parent: MailMessage | None) -> Mailbox | None:
    """The mailbox the client wrote to, else an active one of the ticket's pipeline."""
    if parent is not None and parent.mailbox_id is not None:
        return parent.mailbox
    return (Mailbox.objects.filter(pipeline_id=ticket.pipeline_id, active=True)
            .order_by("pk").first())


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip("<> ")
    return re.sub(r"[^A-Za-z0-9.-]", "", domain) or "localhost"


def _no_control(value: str, what: str) -> str:
    if _CONTROL.search(value or ""):
        raise BadInput(f"the {what} must be one line (line breaks and control characters are "
                       f"not allowed in mail headers)", code="header_injection")
    return (value or "").strip()


def _recipients(to: str | Sequence[str]) -> list[str]:
    raw = [to] if isinstance(to, str) else list(to)
    addresses: list[str] = []
    for part in raw:
        for address in _no_control(part, "recipient").split(","):
            address = address.strip()
            if not address:
                continue
            try:
                validate_email(address)
            except ValidationError:
                raise BadInput(f"{address!r} is not an email address",
                               code="bad_email") from None
            if address.lower() not in (a.lower() for a in addresses):
                addresses.append(address)
    if not addresses:
        raise BadInput("the reply needs a recipient", code="recipient_required")
    if len(addresses) > MAX_RECIPIENTS:
        raise BadInput(f"a reply goes to at most {MAX_RECIPIENTS} addresses",
                       code="too_many_recipients")
    return addresses


@dataclass(frozen=True)
class ReplyDraft:
    """What the form proposes: the address to answer and the subject."""

    to: str
    subject: str


def reply_draft(ticket: Ticket) -> ReplyDraft:
    """The client's last sender address (else their first email contact) and ``Re:`` subject."""
    parent = thread_parent(ticket)
    to = ""
    if parent is not None and parent.direction == MailDirection.IN:
        to = parent.from_address
    elif parent is not None:
        to = parent.to_addresses.split(",")[0].strip()
    if not to:
        from estafeta.clients.models import ClientContact

        to = (ClientContact.objects.filter(client_id=ticket.client_id, kind="email")
              .order_by("pk").values_list("value", flat=True).first() or "")
    return ReplyDraft(to=to, subject=reply_subject(ticket, parent.subject if parent else ""))


def mail_reply(*, actor: User, ticket: Ticket, to: str | Sequence[str], subject: str,
               text: str, attachments: Sequence[File] = (),
               successor: TaskDraft | None = None) -> MailMessage:
    """Write and queue a reply to the client; returns the outbound message.

    The reply answers the client: the ticket's open "reply to the client" tasks (planned by
    intake when the client wrote) are completed in the same transaction, linked to the reply's
    activity rather than logging a second contact (``tasks.services.tasks_fulfil``). If that
    task is the ticket's last open one it stays open (the contact linked to it, see
    ``reply_task``) unless ``successor`` is given, which is then planned as the next task.

    Refused with ``BadInput`` (nothing written) for line breaks in the subject or recipients
    (header injection), bad or too many addresses, an empty or oversized text, too many or
    unacceptable attachments; ``Forbidden`` for someone not working on the ticket (nor their
    head); ``Conflict`` for a void ticket. An empty subject becomes ``Re: <the client's
    subject>``; the ticket's number tag is added if missing."""
    addresses = _recipients(to)
    subject = _no_control(subject, "subject")
    text = (text or "").strip()
    if not text:
        raise BadInput("the reply has no text", code="text_required")
    if len(text) > MAX_TEXT:
        raise BadInput(f"the reply is longer than {MAX_TEXT} characters", code="too_long")
    if len(attachments) > MAX_ATTACHMENTS:
        raise BadInput(f"at most {MAX_ATTACHMENTS} attachments", code="too_many_files")
    now = clock.now()
    with transaction.atomic():
        ticket = ticket_for_update(ticket)
        if ticket.status == TicketStatus.VOID:
            raise Conflict(f"{ticket.number} is void", code="ticket_void")
        parent = thread_parent(ticket)
        subject = (subject if subject else reply_subject(ticket, parent.subject if parent
                                                         else ""))
        if ticket.number not in subject:
            subject = f"{subject} {subject_tag(ticket)}"
        if len(subject) > MAX_SUBJECT:
            raise BadInput(f"the subject is longer than {MAX_SUBJECT} characters",
                           code="too_long")
        # The activity first: it checks that the actor may work on the ticket (Forbidden rolls
        # everything back) and writes the ticket's history event.
        activity = activity_log(actor=actor, ticket=ticket, kind=ActivityKind.EMAIL,
                                direction=Direction.OUT, outcome=ActivityOutcome.SENT,
                                occurred_at=now, note=subject, source=ActivitySource.MANUAL)
        mailbox = reply_mailbox(ticket, parent)
        address = mailbox.address if mailbox is not None else _default_from()
        in_reply_to, references = "", ""
        if parent is not None:
            in_reply_to = parent.message_id
            chain = [*_message_ids(parent.references), parent.message_id]
            # the root stays first (RFC 5322 3.6.4), then the most recent ones
            if len(chain) > MAX_REFERENCES:
                chain = [chain[0], *chain[-(MAX_REFERENCES - 1):]]
            references = " ".join(chain)
        message = MailMessage.objects.create(
            mailbox=mailbox, ticket=ticket, direction=MailDirection.OUT,
            message_id=f"<reply-{uuid.uuid4().hex}@{_domain(address)}>",
            in_reply_to=in_reply_to, references=references, from_address=address,
            from_name=(actor.get_full_name() or actor.username)[:200],
            to_addresses=", ".join(addresses), subject=subject, text=text, sent_at=now,
            activity=activity, created_at=now)
        for upload in attachments:
            stored = store_file(upload, actor=actor)
            MailAttachment.objects.create(message=message, file=stored, name=stored.name,
                                          content_type=stored.content_type, size=stored.size)
        tasks_fulfil(actor=actor, ticket=ticket, activity=activity, successor=successor,
                     tasks=list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN,
                                                    follow_up__kind=FollowUpKind.REPLY)))
        Notification.objects.create(
            recipient=actor, channel="email", kind=KIND, ticket=ticket,
            payload={"message": message.pk, "ticket": ticket.number},
            idempotency_key=f"{KIND}:{message.pk}:email", created_at=now, next_attempt_at=now)
    return message


def reply_task(message: MailMessage) -> Task | None:
    """The reply task this reply answered: done, or still open when it was the ticket's last
    open task (then it waits for its next task; completing it reuses the reply's contact)."""
    if message.activity_id is None:
        return None
    return (Task.objects.filter(activities__pk=message.activity_id,
                                follow_up__kind=FollowUpKind.REPLY).order_by("pk").first())


def _default_from() -> str:
    """The bare address of ``ESTAFETA_MAIL_FROM`` (the name is the replying person's)."""
    from estafeta.notifications.mail import sender

    return parseaddr(sender())[1] or "estafeta@localhost"


def _header(value: str, limit: int) -> str:
    """One line, no control characters: stored values are checked when written; this is the
    second lock on the door."""
    return " ".join(_CONTROL.sub(" ", value or "").split())[:limit]


def reply_email(n: Notification) -> EmailMessage:
    """The email for an outbox row of kind ``mail_reply`` (called by ``notifications.mail``)."""
    message = (MailMessage.objects.select_related("ticket")
               .get(pk=int(n.payload["message"]), direction=MailDirection.OUT))
    headers = {"Message-ID": _header(message.message_id, 255)}
    if message.in_reply_to:
        headers["In-Reply-To"] = _header(message.in_reply_to, 255)
    if message.references:
        headers["References"] = _header(message.references, 6000)
    email = EmailMessage(
        subject=_header(message.subject, MAX_SUBJECT), body=message.text + "\n",
        from_email=formataddr((_header(message.from_name, 200),
                               _header(message.from_address, 254))),
        to=[_header(a, 254) for a in message.to_addresses.split(",") if a.strip()],
        headers=headers)
    for attachment in message.attachments.select_related("file").order_by("pk"):
        if not attachment.file.path:  # erased with the client's personal data
            continue
        with default_storage.open(attachment.file.path, "rb") as handle:
            email.attach(attachment.name, handle.read(), attachment.content_type)
    return email


__all__ = ["KIND", "mail_reply", "reply_draft", "reply_email", "reply_subject", "reply_task",
           "thread_parent"]
