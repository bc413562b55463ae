"""Webhook sources (a telephony exchange, a messenger gateway) and what they sent.

A source is configured by an admin and holds the shared secret the sender signs with. Calls and
messages are kept as they arrived, each linked to its intake record and ticket. Nothing here is
ever deleted: a source is deactivated, calls and messages are evidence of a client's request.
Calls and messages are never changed either, except by erasure (``client_anonymise`` empties
their numbers, names and texts; their ids stay so that a redelivery is still recognised).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import Direction

DEFAULT_TOLERANCE = 300  # seconds a signed request may be old (or early) before it is refused


class HookKind(models.TextChoices):
    TELEPHONY = "telephony", _("telephony")
    MESSENGER = "messenger", _("messenger")


class CallOutcome(models.TextChoices):
    """What the exchange reports (its words, not the activity's outcome codes)."""

    ANSWERED = "answered", _("answered")
    MISSED = "missed", _("missed")
    BUSY = "busy", _("busy")
    FAILED = "failed", _("failed")


class HookSource(UndeletableModel):
    slug = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=HookKind.choices)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.PROTECT,
                                 related_name="+", verbose_name=_("pipeline"))
    # Kept as given: HMAC needs the key itself. Shown once (on creation and rotation), never in
    # an event, a log or a page after that.
    secret = models.CharField(max_length=128)
    is_active = models.BooleanField(_("active"), default=True)
    tolerance_seconds = models.PositiveIntegerField(_("clock tolerance, seconds"),
                                                    default=DEFAULT_TOLERANCE)
    created_at = models.DateTimeField(_("created"))
    secret_set_at = models.DateTimeField(_("secret set"))

    class Meta:
        verbose_name = _("webhook source")
        verbose_name_plural = _("webhook sources")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.slug

    @property
    def stream(self) -> str:
        return f"hook_source:{self.pk}"

    @property
    def intake_source(self) -> str:
        """The ``source`` of this source's intake records (stable: the slug never changes)."""
        return f"{self.kind}:{self.slug}"


class HookSender(UndeletableModel):
    """A messenger sender seen before, and the client they turned out to be."""

    source = models.ForeignKey(HookSource, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=40)
    sender_id = models.CharField(_("sender id"), max_length=255)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("client"))
    created_at = models.DateTimeField(_("first seen"))

    class Meta:
        verbose_name = _("messenger sender")
        verbose_name_plural = _("messenger senders")
        constraints = [
            models.UniqueConstraint(fields=["source", "channel", "sender_id"],
                                    name="hook_sender_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.sender_id}"


class HookCall(UndeletableModel):
    """A call the exchange reported, as it reported it (numbers and recording link emptied when
    the client is anonymised)."""

    source = models.ForeignKey(HookSource, on_delete=models.PROTECT, related_name="+")
    record = models.OneToOneField("intake.IntakeRecord", on_delete=models.PROTECT,
                                  related_name="hook_call")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="hook_calls")
    activity = models.ForeignKey("tickets.Activity", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="+")
    call_id = models.CharField(_("call id"), max_length=255)
    direction = models.CharField(_("direction"), max_length=3,
                                 choices=[(d.value, d.value) for d in Direction])
    caller = models.CharField(_("caller"), max_length=40)
    callee = models.CharField(_("callee"), max_length=40)
    started_at = models.DateTimeField(_("started"))
    duration_seconds = models.PositiveIntegerField(_("duration, seconds"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=CallOutcome.choices)
    # A link only: Estafeta never fetches it (the exchange may need its own login to play it).
    recording_url = models.URLField(_("recording"), max_length=2000, blank=True)
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("call from telephony")
        verbose_name_plural = _("calls from telephony")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "call_id"], name="hook_call_unique"),
        ]
        indexes = [models.Index(fields=["ticket", "started_at"], name="hook_call_ticket")]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.call_id}"


class HookMessage(UndeletableModel):
    """A messenger message as it arrived; its text is shown on the ticket page (escaped). Its
    sender and text are emptied when the client is anonymised."""

    source = models.ForeignKey(HookSource, on_delete=models.PROTECT, related_name="+")
    record = models.OneToOneField("intake.IntakeRecord", on_delete=models.PROTECT,
                                  related_name="hook_message")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="hook_messages")
    message_id = models.CharField(_("message id"), max_length=255)
    channel = models.CharField(_("channel"), max_length=40)
    sender_id = models.CharField(_("sender id"), max_length=255)
    sender_phone = models.CharField(_("sender phone"), max_length=40, blank=True)
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    text = models.TextField(_("text"))
    sent_at = models.DateTimeField(_("sent"))
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("messenger message")
        verbose_name_plural = _("messenger messages")
        ordering = ["-sent_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="hook_message_unique"),
        ]
        indexes = [models.Index(fields=["ticket", "sent_at"], name="hook_message_ticket")]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.message_id}"
