"""What arrived through the channels (email, web form, telephony, messengers), possible
duplicates for heads to merge or dismiss, and the reply/call-back tasks intake planned.

None of these rows is ever deleted: an arrival is evidence that a client asked for something.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import Channel


class FlagStatus(models.TextChoices):
    OPEN = "open", _("open")
    MERGED = "merged", _("merged")
    DISMISSED = "dismissed", _("dismissed")


class FollowUpKind(models.TextChoices):
    REPLY = "reply", _("reply to the client")
    CALLBACK = "callback", _("call back")


class IntakeRecord(UndeletableModel):
    """One arrival, unique by (source, external_id): the idempotency key of every channel."""

    source = models.CharField(_("source"), max_length=100)
    external_id = models.CharField(_("external id"), max_length=255)
    channel = models.CharField(_("channel"), max_length=16,
                               choices=[(c.value, c.value) for c in Channel])
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="intake_records", verbose_name=_("ticket"))
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("client"))
    activity = models.ForeignKey("tickets.Activity", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="+")
    created_ticket = models.BooleanField(_("new ticket"), default=False)
    flagged = models.BooleanField(_("flagged as duplicate"), default=False)
    # As given by the sender (any spelling, possibly unparseable): kept, never matched on.
    name = models.CharField(_("name"), max_length=200, blank=True)
    phones = models.JSONField(default=list, blank=True)
    emails = models.JSONField(default=list, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    text = models.TextField(_("text"), blank=True)
    occurred_at = models.DateTimeField(_("arrived"))
    recorded_at = models.DateTimeField(_("recorded"))

    class Meta:
        verbose_name = _("intake record")
        verbose_name_plural = _("intake records")
        ordering = ["-recorded_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"],
                                    name="intake_record_unique"),
        ]
        indexes = [models.Index(fields=["ticket", "recorded_at"], name="intake_record_ticket")]

    def __str__(self) -> str:
        return f"{self.source}/{self.external_id}"


class DuplicateFlag(UndeletableModel):
    """``ticket`` (opened by intake) may be the same request as ``of`` (the client's open
    ticket); a head merges it into ``of`` or dismisses the flag."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT,
                               related_name="duplicate_flags", verbose_name=_("ticket"))
    of = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="+",
                           verbose_name=_("possible duplicate of"))
    record = models.ForeignKey(IntakeRecord, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="flags")
    status = models.CharField(_("status"), max_length=10, choices=FlagStatus.choices,
                              default=FlagStatus.OPEN)
    created_at = models.DateTimeField(_("flagged"))
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("decided by"))
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "of"], name="duplicate_flag_unique"),
            models.CheckConstraint(condition=~Q(ticket=models.F("of")),
                                   name="duplicate_flag_not_self"),
        ]
        indexes = [models.Index(fields=["created_at"], name="duplicate_flag_open",
                                condition=Q(status="open"))]

    def __str__(self) -> str:
        return f"{self.ticket_id} ~ {self.of_id}"


class FollowUp(UndeletableModel):
    """A task intake planned because a client wrote or called and nobody has answered yet; its
    overdue escalates with reason ``unanswered_message`` instead of ``task_overdue``."""

    task = models.OneToOneField("tasks.Task", on_delete=models.PROTECT, related_name="follow_up")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=FollowUpKind.choices)
    record = models.ForeignKey(IntakeRecord, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="follow_ups")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("intake follow-up")
        verbose_name_plural = _("intake follow-ups")
        indexes = [models.Index(fields=["ticket", "kind"], name="follow_up_ticket")]

    def __str__(self) -> str:
        return f"{self.kind} {self.task_id}"
