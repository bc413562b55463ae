"""Rollups of the analytics figures (docs/analytics-scale.md).

``Cell``: the sums of one figure's facts for one local day (company time zone) and one
combination of the cut dimensions and the figure's keys. ``TicketRollup``: what each ticket
contributes to the cells (its facts as stored at the last refresh), so a refresh can take the
old contribution out and put the new one in. Both are derived data, rebuilt from the history
with ``estafeta analytics rebuild``; nothing else reads them as a source of truth.
"""

from __future__ import annotations

from datetime import date

from django.db import models

VALUES = 8
NO_SINCE = date(1, 1, 1)  # a monthly cell's ``since`` when it compares nothing


class Sums(models.Model):
    """The ``VALUES`` sums of a cell (what each means depends on its figure)."""

    v0 = models.BigIntegerField(default=0)
    v1 = models.BigIntegerField(default=0)
    v2 = models.BigIntegerField(default=0)
    v3 = models.BigIntegerField(default=0)
    v4 = models.BigIntegerField(default=0)
    v5 = models.BigIntegerField(default=0)
    v6 = models.BigIntegerField(default=0)
    v7 = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class Cell(Sums):
    figure = models.CharField(max_length=16)
    day = models.DateField()
    person = models.BigIntegerField(default=0)  # the cut's seller (0: nobody)
    pipeline = models.CharField(max_length=64, default="")
    channel = models.CharField(max_length=16, default="")
    segment = models.CharField(max_length=64, default="")
    territory = models.CharField(max_length=64, default="")
    keys = models.CharField(max_length=600)  # the figure's keys, JSON

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["figure", "day", "person", "pipeline", "channel", "segment", "territory",
                    "keys"], name="analytics_cell_unique")]

    def __str__(self) -> str:
        return f"{self.figure} {self.day} {self.keys}"


class TicketRollup(models.Model):
    ticket_id = models.BigIntegerField(primary_key=True)
    cells = models.JSONField(default=list)
    # the monthly cells of its summary and stays (``monthly.from_summary``/``from_span``), so
    # that a refresh takes them out without reading the old rows back
    monthly = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"rollup of ticket {self.ticket_id}"


class MonthCell(Sums):
    """A month of one projection of a figure (``analytics/monthly.py``), without the pipeline,
    channel, segment and territory. ``person`` >= 0: for that person (the cut's seller: the
    performer, the owner at the event, the stay's executor; 0: nobody), what the per-seller
    rows and the seller and team cuts read; ``person`` < 0: for the whole company, split into
    stripes (-1 - the person's id modulo ``monthly.STRIPES``) so that concurrent changes of
    the company's month do not all wait for one row lock (a reader adds the stripes up)."""

    figure = models.CharField(max_length=16)  # a projection of a figure: "K4.st", "K9"...
    month = models.DateField()  # its first day (company time zone); 0001-01-01: now
    person = models.BigIntegerField(default=0)
    # a date the reader compares: K3 the month of the ticket's previous document, TASK the
    # task's due day
    since = models.DateField(default=NO_SINCE)
    keys = models.CharField(max_length=600)  # the projection's keys, JSON

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["figure", "month", "person", "since", "keys"],
            name="analytics_monthcell_unique")]

    def __str__(self) -> str:
        return f"{self.figure} {self.month:%Y-%m} {self.person} {self.keys}"


class RollupState(models.Model):
    """One row: ``ready`` once the cells hold every ticket (a rebuild finished, or there was
    nothing to roll up); the figures read the cells only then. ``monthly_ready`` likewise for
    the monthly cells (``analytics/monthly.py``), which a rebuild also fills."""

    ready = models.BooleanField(default=False)
    monthly_ready = models.BooleanField(default=False)
    # every TicketRollup row holds its ticket's monthly cells (a rebuild by a version that
    # keeps them has run): only then may the monthly cells be derived alone
    monthly_kept = models.BooleanField(default=False)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups {'ready' if self.ready else 'not ready'}"


class TicketSummary(models.Model):
    """One row per ticket for the cohort figures (K7, K8): the moments that put it in a cohort
    and what became of it, worked out from its records by the rules of ``conversions.py``
    (``analytics/summary.py``). Kept in step with the rollup cells."""

    ticket_id = models.BigIntegerField(primary_key=True)
    void = models.BooleanField(default=False)
    pipeline = models.CharField(max_length=64, default="")
    channel = models.CharField(max_length=16, default="")
    segment = models.CharField(max_length=64, default="")
    territory = models.CharField(max_length=64, default="")
    lead_at = models.DateTimeField(null=True)  # the creation event
    lead_owner = models.BigIntegerField(null=True)  # its owner
    email_at = models.DateTimeField(null=True)  # first outbound email sent
    email_by = models.BigIntegerField(null=True)
    email_next = models.DateTimeField(null=True)  # first connected call at or after it
    call_at = models.DateTimeField(null=True)  # first connected outbound call
    call_by = models.BigIntegerField(null=True)
    call_next = models.DateTimeField(null=True)  # first presentation held at or after it
    status_window = models.CharField(max_length=8, default="open")  # at lead_at + 14 days
    status_final = models.CharField(max_length=8, default="open")  # after every outcome
    horizon = models.DateTimeField(null=True)  # the latest outcome or stage entry
    steps = models.CharField(max_length=600, default="")  # the pipeline's steps it was read by
    funnel_at = models.DateTimeField(null=True)  # first entry into the first step
    strict_n = models.IntegerField(default=0)  # steps before the last reached in order
    strict_last = models.BooleanField(default=False)  # the last step entered in order too
    any_mask = models.BigIntegerField(default=0)  # bit i: step i (before the last) reached
    any_last = models.BooleanField(default=False)  # the last step entered
    # the current state, for K12 coverage and overdue tasks (``monthly``: "OPEN" and "TASK")
    open_now = models.BooleanField(default=False)  # the ticket is open
    owner_now = models.BigIntegerField(null=True)
    covered_now = models.BooleanField(default=False)  # an open task of an active person
    open_tasks = models.JSONField(default=list)  # [[assignee, local due day], ...] sorted

    class Meta:
        indexes = [models.Index(fields=["lead_at"], name="summary_lead_at"),
                   models.Index(fields=["email_at"], name="summary_email_at"),
                   models.Index(fields=["call_at"], name="summary_call_at"),
                   models.Index(fields=["funnel_at"], name="summary_funnel_at"),
                   models.Index(fields=["horizon"], name="summary_horizon")]

    def __str__(self) -> str:
        return f"summary of ticket {self.ticket_id}"


class StaySpan(models.Model):
    """One row per stay in an open stage (``StageVisit``) with the ticket's cut dimensions and,
    once it is closed, its length in business time (computed once, when it closes or in a
    rebuild): K9 and K12 SLA compliance read these (``analytics/summary.py``)."""

    visit_id = models.BigIntegerField(primary_key=True)
    ticket_id = models.BigIntegerField()
    version_id = models.BigIntegerField()
    void = models.BooleanField(default=False)
    pipeline = models.CharField(max_length=64, default="")
    channel = models.CharField(max_length=16, default="")
    segment = models.CharField(max_length=64, default="")
    territory = models.CharField(max_length=64, default="")
    stage = models.CharField(max_length=64)
    executor = models.BigIntegerField(null=True)
    sla = models.BooleanField(default=False)  # the stage has an SLA
    entered_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True)
    seconds = models.BigIntegerField(null=True)  # business seconds, closed stays
    bucket = models.IntegerField(null=True)  # of ``seconds`` (``monthly.bucket``)
    sla_due_at = models.DateTimeField(null=True)
    paused_at = models.DateTimeField(null=True)
    sla_left = models.DurationField(null=True)

    class Meta:
        indexes = [models.Index(fields=["closed_at"], name="span_closed_at"),
                   models.Index(fields=["ticket_id"], name="span_ticket"),
                   models.Index(fields=["entered_at"], condition=models.Q(closed_at__isnull=True),
                                name="span_open_entered"),
                   # K9's oldest stuck stays of one pipeline version
                   models.Index(fields=["version_id", "entered_at"],
                                condition=models.Q(closed_at__isnull=True),
                                name="span_open_version"),
                   # K9 percentiles: the stays of one bucket closed in a period
                   models.Index(fields=["pipeline", "stage", "bucket", "closed_at"],
                                include=["seconds"], name="span_bucket",
                                condition=models.Q(closed_at__isnull=False, void=False)),
                   # a seller's or team's stays (K9 for a cut of people)
                   models.Index(fields=["executor", "closed_at"], name="span_executor")]

    def __str__(self) -> str:
        return f"stay {self.visit_id}"
