"""Acknowledgements: "we received your email, your request is Z-2026-000123".

Sent only for a message that opened a new ticket, by a mailbox with ``acknowledge`` on, and never
to automatic mail (bounces, auto-replies, lists: see ``parse._auto``) nor to Estafeta's own
addresses (those never reach here). The acknowledgement is an outbound ``MailMessage``
(``auto_reply=True``) written in the intake transaction, plus an outbox row
(``notifications.Notification``, kind ``mail_ack``, addressed to the ticket's owner because the
outbox is addressed to users); the worker's ``deliver_pending`` sends it with retries. The email
carries ``Auto-Submitted: auto-replied`` (RFC 3834) and threads under the client's message.
"""

from __future__ import annotations

import re
import uuid
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from estafeta.core import clock
from estafeta.notifications.models import Notification

from .models import MailDirection, MailMessage
from .parse import one_line

KIND = "mail_ack"
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|ответ|отв)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def _language() -> str:
    return "en" if str(settings.LANGUAGE_CODE).lower().startswith("en") else "ru"


def _domain(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", address.rpartition("@")[2]) or "localhost"


def ack_prepare(message: MailMessage) -> MailMessage:
    """Write the acknowledgement of ``message`` (inside the intake transaction)."""
    ticket = message.ticket
    mailbox = message.mailbox
    assert mailbox is not None  # acknowledgements are a mailbox setting
    base = _PREFIX.sub("", message.subject) or ticket.subject
    subject = one_line(f"Re: {base} [#{ticket.number}]", 255)
    text = render_to_string(f"mailin/ack.{_language()}.txt",
                            {"name": message.from_name, "number": ticket.number})
    now = clock.now()
    references = " ".join([*message.references.split(), message.message_id][-20:])
    ack = MailMessage.objects.create(
        mailbox=mailbox, ticket=ticket, direction=MailDirection.OUT,
        # Random, not the row's number: a guessed id in In-Reply-To would thread a stranger's
        # mail into this ticket (and make the reply form answer the stranger).
        message_id=f"<ack-{uuid.uuid4().hex}@{_domain(mailbox.address)}>",
        in_reply_to=message.message_id, references=references,
        from_address=mailbox.address, from_name=mailbox.name[:200],
        to_addresses=message.from_address, subject=subject, text=text.strip() + "\n",
        auto_reply=True, sent_at=now, created_at=now)
    Notification.objects.create(
        recipient_id=ticket.owner_id, channel="email", kind=KIND, ticket=ticket,
        payload={"message": ack.pk, "ticket": ticket.number},
        idempotency_key=f"{KIND}:{ack.pk}:email", created_at=now, next_attempt_at=now)
    MailMessage.objects.filter(pk=message.pk).update(acknowledged_at=now)
    return ack


def ack_email(n: Notification) -> EmailMessage:
    """The email for an outbox row of kind ``mail_ack`` (called by ``notifications.mail``)."""
    ack = MailMessage.objects.get(pk=int(n.payload["message"]), direction=MailDirection.OUT,
                                  auto_reply=True)
    headers = {
        "Message-ID": one_line(ack.message_id), "In-Reply-To": one_line(ack.in_reply_to),
        "References": one_line(ack.references, 6000), "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All", "Precedence": "auto_reply",
    }
    return EmailMessage(
        subject=one_line(ack.subject), body=ack.text,
        from_email=formataddr((one_line(ack.from_name, 200), one_line(ack.from_address, 254))),
        to=[one_line(a, 254) for a in ack.to_addresses.split(",") if a.strip()],
        headers=headers)
