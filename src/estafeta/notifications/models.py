"""The outbox (``Notification``) and the outgoing webhook targets (``WebhookEndpoint``).

A notification row is written in the transaction that decides it (an escalation, a digest) and
delivered afterwards by ``services.deliver_pending``: at least once, with retries and backoff.
Rows are never deleted: a permanent failure stays visible to admins with its reason.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel

CHANNELS = ("inapp", "email", "webhook")
STATUSES = ("pending", "sent", "failed")


class WebhookEndpoint(UndeletableModel):
    """A URL that receives every notification as a signed JSON POST. Switched off, not deleted."""

    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("secret"), max_length=200,
                              help_text=_("Shared secret of the HMAC-SHA256 signature."))
    is_active = models.BooleanField(_("active"), default=True)
    allow_private = models.BooleanField(
        _("allow private addresses"), default=False,
        help_text=_("Deliver even if the host resolves to a private, loopback or link-local "
                    "address (an internal service). Off by default."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url


class Notification(UndeletableModel):
    recipient = models.ForeignKey("accounts.User", on_delete=models.PROTECT,
                                  related_name="notifications", verbose_name=_("recipient"))
    channel = models.CharField(_("channel"), max_length=8, choices=[(c, c) for c in CHANNELS])
    kind = models.CharField(_("kind"), max_length=32)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+", verbose_name=_("ticket"))
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="+", verbose_name=_("endpoint"))
    payload = models.JSONField(_("payload"), default=dict)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    created_at = models.DateTimeField(_("created"))
    status = models.CharField(_("status"), max_length=8, default="pending",
                              choices=[(s, s) for s in STATUSES])
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The caller's key names the event; the recipient is part of it so that one event
            # may notify several people under one key.
            models.UniqueConstraint(fields=["recipient", "idempotency_key"],
                                    name="notification_key_unique"),
        ]
        indexes = [
            # deliver_pending polls only the due pending rows.
            models.Index(fields=["next_attempt_at"], name="notification_due",
                         condition=Q(status="pending")),
            # the bell and the in-app list
            models.Index(fields=["recipient", "-created_at"], name="notification_inapp",
                         condition=Q(channel="inapp", status="sent")),
            models.Index(fields=["-created_at"], name="notification_failed",
                         condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id} ({self.channel}, {self.status})"
