"""Tickets and what happens on them: stage visits with their checklists, contacts with the
client (activities), documents issued. None of these rows is ever deleted.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    ActivitySource,
    Channel,
    Direction,
    DocumentKind,
    MoveKind,
    TicketStatus,
)


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(m.value, m.value) for m in enum]  # type: ignore[attr-defined]  # any StrEnum


class Ticket(UndeletableModel):
    number = models.CharField(_("number"), max_length=32, unique=True)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.PROTECT,
                                 related_name="tickets", verbose_name=_("pipeline"))
    version = models.ForeignKey("pipelines.PipelineVersion", on_delete=models.PROTECT,
                                related_name="tickets")
    stage = models.ForeignKey("pipelines.Stage", on_delete=models.PROTECT,
                              related_name="tickets", verbose_name=_("stage"))
    status = models.CharField(_("status"), max_length=8, choices=_choices(TicketStatus),
                              default=TicketStatus.OPEN)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT,
                               related_name="tickets", verbose_name=_("client"))
    owner = models.ForeignKey("accounts.User", on_delete=models.PROTECT,
                              related_name="owned_tickets", verbose_name=_("owner"))
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="tickets", verbose_name=_("team"))
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=16, choices=_choices(Channel))
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True,
                                 blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    lost_reason = models.ForeignKey("pipelines.LostReason", on_delete=models.PROTECT, null=True,
                                    blank=True, verbose_name=_("lost reason"))
    close_note = models.TextField(_("closing note"), blank=True)
    duplicate_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="duplicates")
    # Set when a head merged this ticket into another (intake.services.ticket_merge): this one
    # is void, its number still resolves to the survivor.
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="merged", verbose_name=_("merged into"))
    created_at = models.DateTimeField(_("created"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "status"], name="ticket_owner_status"),
            models.Index(fields=["team", "status"], name="ticket_team_status"),
            models.Index(fields=["pipeline", "stage"], name="ticket_open_board",
                         condition=Q(status="open")),
            models.Index(fields=["created_at"], name="ticket_created"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def stream(self) -> str:
        return f"ticket:{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status == TicketStatus.OPEN


class StageVisit(UndeletableModel):
    """One stay of a ticket in a stage; closing it stores the checklist as it was."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="visits")
    stage = models.ForeignKey("pipelines.Stage", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=_choices(MoveKind))
    entered_at = models.DateTimeField()
    entered_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   related_name="+")
    executor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                 related_name="executed_visits")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                  related_name="+")
    override = models.BooleanField(default=False)
    checklist_snapshot = models.JSONField(null=True, blank=True)
    # The stage's SLA in business time (docs/calendar.md): due, and at risk once
    # ESTAFETA_SLA_RISK_SHARE of it has passed. NULL for stages without SLA and while paused;
    # a paused visit keeps the business time that was left in sla_left / sla_risk_left.
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    sla_risk_at = models.DateTimeField(_("SLA at risk"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused"), null=True, blank=True)
    sla_left = models.DurationField(null=True, blank=True)
    sla_risk_left = models.DurationField(null=True, blank=True)

    class Meta:
        verbose_name = _("stage visit")
        verbose_name_plural = _("stage visits")
        ordering = ["ticket", "seq"]
        # The monitor polls these: only open visits are indexed.
        indexes = [
            models.Index(fields=["sla_due_at"], name="visit_sla_due",
                         condition=Q(closed_at__isnull=True)),
            models.Index(fields=["sla_risk_at"], name="visit_sla_risk",
                         condition=Q(closed_at__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "seq"], name="visit_seq_unique"),
            # Backstop for concurrent stage closes: a ticket is in at most one stage at a time.
            models.UniqueConstraint(fields=["ticket"], condition=Q(closed_at__isnull=True),
                                    name="visit_one_open"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} #{self.seq}"


class ChecklistEntry(UndeletableModel):
    """A checklist item done during a visit, with its evidence (re-done items are updated)."""

    visit = models.ForeignKey(StageVisit, on_delete=models.PROTECT, related_name="entries")
    item = models.ForeignKey("pipelines.ChecklistItem", on_delete=models.PROTECT,
                             related_name="+")
    evidence = models.JSONField(null=True, blank=True)
    done_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    done_at = models.DateTimeField()
    override = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("checklist entry")
        verbose_name_plural = _("checklist entries")
        constraints = [
            models.UniqueConstraint(fields=["visit", "item"], name="checklist_entry_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.visit_id}/{self.item_id}"


class Activity(UndeletableModel):
    """A contact with the client: email, call, video presentation or meeting."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="activities")
    kind = models.CharField(_("kind"), max_length=8, choices=_choices(ActivityKind))
    direction = models.CharField(_("direction"), max_length=3, choices=_choices(Direction))
    outcome = models.CharField(_("outcome"), max_length=10, choices=_choices(ActivityOutcome))
    duration_seconds = models.PositiveIntegerField(_("duration, s"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("when"))
    performed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                     related_name="activities")
    note = models.TextField(_("note"), blank=True)
    source = models.CharField(max_length=16, choices=_choices(ActivitySource),
                              default=ActivitySource.MANUAL)
    task = models.ForeignKey("tasks.Task", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="activities")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["ticket", "occurred_at"], name="activity_ticket"),
            models.Index(fields=["performed_by", "occurred_at"], name="activity_performer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.direction} {self.outcome}"


class Document(UndeletableModel):
    """A quote, invoice or contract issued to the client."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(_("kind"), max_length=8, choices=_choices(DocumentKind))
    number = models.CharField(_("number"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    issued_at = models.DateTimeField(_("issued"))
    issued_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "number"], name="document_number_unique"),
        ]
        indexes = [models.Index(fields=["issued_at"], name="document_issued")]

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"


class StoredFile(UndeletableModel):
    """A file kept as evidence; stored under its digest, served only as a download."""

    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    path = models.CharField(max_length=300)
    uploaded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                    related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("stored file")
        verbose_name_plural = _("stored files")

    def __str__(self) -> str:
        return self.name


class TicketCounter(models.Model):
    """Ticket serials on SQLite (PostgreSQL uses one sequence per prefix and year)."""

    prefix = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="ticket_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"
