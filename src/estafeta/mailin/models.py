"""Email intake: mailboxes polled by the worker, the messages they brought (and the replies sent
from tickets), their attachments, and the quarantine for mail that could not be taken in.

Nothing here is ever deleted: a mailbox is deactivated, a quarantined message is resolved.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel


class MailboxKind(models.TextChoices):
    IMAP = "imap", "IMAP"
    MAILDIR = "maildir", "Maildir"


class MailDirection(models.TextChoices):
    IN = "in", _("incoming")
    OUT = "out", _("outgoing")


class Mailbox(UndeletableModel):
    name = models.CharField(_("name"), max_length=100, unique=True)
    address = models.EmailField(_("address"), max_length=254,
                                help_text=_("The mailbox's own address: From of replies and "
                                            "acknowledgements."))
    kind = models.CharField(_("kind"), max_length=8, choices=MailboxKind.choices,
                            default=MailboxKind.IMAP)
    host = models.CharField(_("host"), max_length=255, blank=True)
    port = models.PositiveIntegerField(_("port"), default=993)
    starttls = models.BooleanField(_("STARTTLS"), default=False,
                                   help_text=_("Plain IMAP upgraded with STARTTLS instead of "
                                               "IMAP over TLS."))
    ssl_verify = models.BooleanField(_("verify the certificate"), default=True)
    username = models.CharField(_("user name"), max_length=255, blank=True)
    password = models.CharField(_("password"), max_length=255, blank=True)
    folder = models.CharField(_("folder"), max_length=255, default="INBOX")
    path = models.CharField(_("maildir path"), max_length=500, blank=True)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.PROTECT,
                                 related_name="mailboxes", verbose_name=_("pipeline"))
    acknowledge = models.BooleanField(_("send an acknowledgement"), default=False)
    active = models.BooleanField(_("active"), default=True)
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        return f"mailbox:{self.pk}"


class MailMessage(UndeletableModel):
    """One email in a ticket's thread: received by a mailbox or sent from the ticket page."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="messages", verbose_name=_("mailbox"))
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="mail_messages", verbose_name=_("ticket"))
    direction = models.CharField(_("direction"), max_length=3, choices=MailDirection.choices)
    message_id = models.CharField(_("Message-ID"), max_length=255)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=255, blank=True)
    references = models.TextField(_("References"), blank=True)
    from_address = models.CharField(_("from"), max_length=254, blank=True)
    from_name = models.CharField(_("sender name"), max_length=200, blank=True)
    to_addresses = models.TextField(_("to"), blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    text = models.TextField(_("text"), blank=True)
    html = models.TextField(_("HTML"), blank=True)
    truncated = models.BooleanField(_("truncated"), default=False)
    auto_reply = models.BooleanField(_("automatic message"), default=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    activity = models.ForeignKey("tickets.Activity", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="+")
    intake_record = models.ForeignKey("intake.IntakeRecord", on_delete=models.PROTECT,
                                      null=True, blank=True, related_name="+")
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["direction", "message_id"],
                                    name="mailmessage_direction_message_id"),
        ]
        indexes = [models.Index(fields=["ticket", "created_at"], name="mailmessage_ticket")]

    def __str__(self) -> str:
        return self.message_id


class MailAttachment(UndeletableModel):
    message = models.ForeignKey(MailMessage, on_delete=models.PROTECT,
                                related_name="attachments")
    file = models.ForeignKey("tickets.StoredFile", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["message", "pk"]

    def __str__(self) -> str:
        return self.name


class QuarantineReason(models.TextChoices):
    UNPARSEABLE = "unparseable", _("the message cannot be parsed")
    NO_SENDER = "no_sender", _("no usable sender address")
    AMBIGUOUS_FROM = "ambiguous_from", _("several or suspicious sender addresses")
    TOO_LARGE = "too_large", _("the message is too large")
    BOUNCE = "bounce", _("a delivery report (bounce)")
    OWN_MAIL = "own_mail", _("mail from Estafeta's own address (a loop)")
    FAILED = "failed", _("intake refused the message")


class Quarantine(UndeletableModel):
    """A message that could not be taken in; the raw bytes are kept for an admin to look at."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="quarantined", verbose_name=_("mailbox"))
    raw = models.ForeignKey("tickets.StoredFile", on_delete=models.PROTECT, related_name="+")
    digest = models.CharField(max_length=64)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    from_address = models.CharField(_("from"), max_length=998, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=QuarantineReason.choices)
    detail = models.TextField(_("detail"), blank=True)
    received_at = models.DateTimeField(_("received"))
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="+")

    class Meta:
        verbose_name = _("quarantined message")
        verbose_name_plural = _("quarantine")
        ordering = ["-received_at", "-pk"]
        constraints = [
            # the same raw message from the same mailbox is quarantined once
            models.UniqueConstraint(fields=["mailbox", "digest"], name="quarantine_once"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.message_id}"
