"""Email delivery: SMTP from the environment (``ESTAFETA_SMTP_*``), else the console.

Each notification's ``Message-ID`` is derived from its id, so a retry after the "sent but not
yet marked" window carries the same id and receivers can drop the copy. Every header value is
stripped of line breaks and control characters before Django's ``EmailMessage`` (which refuses
any left) sees it: no header can be injected through a client name or a subject.
"""

from __future__ import annotations

import importlib
import re
import smtplib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import select_template
from django.utils import timezone

from .models import Notification
from .services import SENT, Outcome

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
TIMEOUT = 20


def header_safe(value: str, limit: int = 200) -> str:
    """One line: control characters (CR, LF, NUL ...) become a space."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def sender() -> str:
    return header_safe(getattr(settings, "ESTAFETA_MAIL_FROM", "") or "estafeta@localhost")


def message_id(n: Notification) -> str:
    domain = sender().rpartition("@")[2].strip("<> ") or "localhost"
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "localhost"
    return f"<notification-{n.pk}@{domain}>"


def backend() -> BaseEmailBackend:
    """SMTP if ``ESTAFETA_SMTP_HOST`` is set, else the console (``estafeta demo`` prints mail)."""
    host = getattr(settings, "ESTAFETA_SMTP_HOST", "")
    if not host:
        return get_connection("django.core.mail.backends.console.EmailBackend")
    tls = getattr(settings, "ESTAFETA_SMTP_TLS", "none")
    return get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=host,
        port=int(getattr(settings, "ESTAFETA_SMTP_PORT", 25)),
        username=getattr(settings, "ESTAFETA_SMTP_USER", "") or None,
        password=getattr(settings, "ESTAFETA_SMTP_PASSWORD", "") or None,
        use_tls=tls == "starttls", use_ssl=tls == "ssl", timeout=TIMEOUT, fail_silently=False)


# Who a ladder step reaches, as the recipient reads it.
LEVELS = {
    "ru": {"remind": "напоминание исполнителю", "head": "руководитель отдела продаж",
           "director": "директор", "admin": "администратор"},
    "en": {"remind": "a reminder to the executor", "head": "the head of sales",
           "director": "the director", "admin": "the administrators"},
}


def _local(value: Any) -> str:
    """An ISO moment from a payload as people read it: company time, with the zone's name."""
    if not value or not isinstance(value, str):
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return header_safe(value)
    if moment.tzinfo is None:
        return header_safe(value)
    return timezone.localtime(moment).strftime("%d.%m.%Y %H:%M %Z")


def render(n: Notification) -> tuple[str, str]:
    """(subject, body) in the recipient's language; the template's first line is the subject."""
    lang = n.recipient.language if n.recipient.language in ("ru", "en") else "ru"
    template = select_template([f"notifications/email/{n.kind}.{lang}.txt",
                                f"notifications/email/other.{lang}.txt"])
    base = getattr(settings, "ESTAFETA_BASE_URL", "").rstrip("/")
    context: dict[str, Any] = {
        # Every value on one line: the template's first line is the subject.
        "n": n, "p": {k: header_safe(v, 2000) if isinstance(v, str) else v
                      for k, v in n.payload.items()},
        "recipient": n.recipient,
        "name": n.recipient.get_full_name() or n.recipient.username,
        "ticket": n.ticket.number if n.ticket is not None else n.payload.get("ticket", ""),
        "link": f"{base}/tickets/{n.ticket.number}/" if base and n.ticket is not None else "",
    }
    context["due"] = _local(n.payload.get("due_at"))
    context["level"] = LEVELS.get(lang, {}).get(str(n.payload.get("level")),
                                              str(n.payload.get("level", "")))
    text = template.render(context).strip()
    subject, _, body = text.partition("\n")
    return header_safe(subject), body.strip() + "\n"


# Emails to clients, written by estafeta.mailin: the outbox row is addressed to a user (who must
# still see the ticket), the email to the client's address stored on the mail message.
CLIENT_MAIL = {"mail_reply": ("estafeta.mailin.outgoing", "reply_email"),
               "mail_ack": ("estafeta.mailin.ack", "ack_email")}


def build(n: Notification) -> EmailMessage:
    if n.kind in CLIENT_MAIL:
        module, function = CLIENT_MAIL[n.kind]
        built: EmailMessage = getattr(importlib.import_module(module), function)(n)
        return built
    subject, body = render(n)
    return EmailMessage(
        subject=subject, body=body, from_email=sender(),
        to=[header_safe(n.recipient.email, 254)],
        headers={"Message-ID": message_id(n), "X-Estafeta-Notification": str(n.pk),
                 "Auto-Submitted": "auto-generated"})


def _codes(exc: smtplib.SMTPException) -> list[int]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return [int(code) for code, _msg in exc.recipients.values()]
    if isinstance(exc, smtplib.SMTPResponseException):
        return [int(exc.smtp_code)]
    return []


def send(n: Notification) -> Outcome:
    """One email; a 5xx answer is permanent (except a refused login: the configuration is
    fixed and the mail goes out), anything else (4xx, a lost connection) is tried again."""
    message = build(n)
    try:
        with backend() as connection:
            connection.send_messages([message])
    except smtplib.SMTPAuthenticationError as exc:
        return Outcome(False, f"SMTP login refused: {exc.smtp_code}")
    except smtplib.SMTPException as exc:
        codes = _codes(exc)
        text = f"SMTP {type(exc).__name__}: {exc}"
        return Outcome(False, text, permanent=bool(codes) and all(500 <= c < 600 for c in codes))
    except OSError as exc:
        return Outcome(False, f"SMTP connection: {exc}")
    return SENT


__all__ = ["build", "header_safe", "message_id", "send"]
