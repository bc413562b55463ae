"""K7 conversions and K8 stage funnel (docs/analytics-conversions.md has every definition).

Both are cohort figures: a ticket joins the cohort of the period in which its starting event
happened (first outbound email, first connected call, creation, first entry into the first
stage) and is followed from there, whatever happens later. Like ``figures.py`` each returns a
``Table`` of ``Fact``s (one per cohort ticket, or per ticket and stage reached), so a cell and its
drill-down ticket list always agree; the rates are worked out from the counts by ``rates`` and
``Funnel.steps`` as exact fractions (``None`` when nothing is divided).

Void tickets (void now) are never in a cohort. Raw activity ratios (``activity_ratios``) are
ratios of counts in the period, not conversions, and are named ``..._ratio``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    Direction,
    EventType,
    StageSemantic,
    TicketStatus,
)
from estafeta.history.models import Event
from estafeta.pipelines.models import Stage
from estafeta.tickets.models import Activity, StageVisit, Ticket

from .figures import Fact, Table, _in_period, _ticket_filter, k1_contacts, k10_outcomes
from .period import Cut, Period

DEFAULT_WINDOW = timedelta(days=14)

OUTCOME_EVENTS = (EventType.TICKET_WON, EventType.TICKET_LOST, EventType.TICKET_REOPENED)
WON, LOST, OPEN = "won", "lost", "open"


def rate(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


def rates(table: Table, *keys: str) -> list[dict[str, Any]]:
    """Rows of a K7 cohort table grouped by ``keys`` with their shares of the cohort:
    ``conversion`` (email→call, call→meeting) or ``won_share``/``lost_share``/``open_share``
    (lead→sale, summing to 1), and ``immature`` True when a member's window is still open."""
    rows = table.rollup(*keys)
    for row in rows:
        cohort = row["cohort"]
        if "converted" in row:
            row["conversion"] = rate(row["converted"], cohort)
        else:
            for name in (WON, LOST, OPEN):
                row[f"{name}_share"] = rate(row[name], cohort)
        row["is_immature"] = row["immature"] > 0
    return rows


# --- who is in a cohort -----------------------------------------------------------------------


def _lead_owner() -> Subquery:
    """The owner recorded on the ticket's creation event (the owner when the lead came in)."""
    return Subquery(Event.objects.filter(ticket_id=OuterRef("pk"),
                                         type=EventType.TICKET_CREATED)
                    .values("owner_id")[:1])


def _owner_filter(cut: Cut, name: str) -> Q:
    q = Q()
    if cut.seller is not None:
        q &= Q(**{name: cut.seller})
    if cut.team is not None:
        q &= Q(**{f"{name}__in": User.objects.filter(team_id=cut.team).values("pk")})
    return q


def _tickets(cut: Cut) -> QuerySet[Ticket]:
    return Ticket.objects.exclude(status=TicketStatus.VOID).filter(_ticket_filter(cut, ""))


def _outcomes(tickets: Iterable[int]) -> dict[int, list[tuple[datetime, str]]]:
    """Each ticket's won/lost/reopened events in order (one query)."""
    found: dict[int, list[tuple[datetime, str]]] = {}
    for ticket_id, when, type_ in (Event.objects
                                   .filter(ticket_id__in=list(tickets), type__in=OUTCOME_EVENTS)
                                   .order_by("ticket_id", "seq")
                                   .values_list("ticket_id", "occurred_at", "type")):
        found.setdefault(ticket_id, []).append((when, type_))
    return found


def _status_at(events: list[tuple[datetime, str]], moment: datetime) -> str:
    """won, lost or open as of ``moment``: the last outcome event up to it (a reopening: open)."""
    status = OPEN
    for when, type_ in events:
        if when > moment:
            break
        status = WON if type_ == EventType.TICKET_WON else LOST if type_ == EventType.TICKET_LOST \
            else OPEN
    return status


# --- K7 activity conversions ------------------------------------------------------------------

EMAIL_OUT = Q(kind=ActivityKind.EMAIL, direction=Direction.OUT, outcome=ActivityOutcome.SENT)
CALL_CONNECTED = Q(kind=ActivityKind.CALL, direction=Direction.OUT,
                   outcome=ActivityOutcome.CONNECTED)
PRESENTATION_HELD = Q(kind__in=(ActivityKind.VIDEO, ActivityKind.MEETING),
                      outcome=ActivityOutcome.HELD)


def _activity_cohort(figure: str, period: Period, cut: Cut, window: timedelta,
                     now: datetime | None, start: Q, target: Q) -> Table:
    """Tickets whose first ``start`` activity (ever) is in the period, by its performer;
    ``converted`` when a ``target`` activity happened within ``window`` after it (inclusive)."""
    now = now or clock.now()
    started_in_period = Activity.objects.filter(start, _in_period(period, "occurred_at"),
                                                ticket_id=OuterRef("pk"))
    tickets = _tickets(cut).filter(Exists(started_in_period))
    rows = (Activity.objects.filter(ticket__in=tickets)
            .filter(Q(start, occurred_at__lt=period.end) | target)
            .annotate(is_start=ExpressionWrapper(Q(start), output_field=BooleanField()))
            .order_by("ticket_id", "occurred_at", "pk")
            .values_list("ticket_id", "occurred_at", "performed_by_id", "is_start"))
    first: dict[int, tuple[datetime, int | None]] = {}
    targets: dict[int, list[datetime]] = {}
    for ticket_id, when, performer, is_start in rows:
        if is_start and ticket_id not in first:
            first[ticket_id] = (when, performer)
        if not is_start:
            targets.setdefault(ticket_id, []).append(when)
    facts: list[Fact] = []
    for ticket_id, (when, starter) in first.items():
        if not period.contains(when):  # the first one was before the period
            continue
        if cut.seller is not None and starter != cut.seller:
            continue
        closes = when + window
        converted = any(when <= t <= closes for t in targets.get(ticket_id, ()))
        facts.append(Fact(ticket_id, {"performer": starter},
                          {"cohort": 1, "converted": int(converted),
                           "immature": int(closes > now)}))
    if cut.team is not None:
        team = set(User.objects.filter(team_id=cut.team).values_list("pk", flat=True))
        facts = [f for f in facts if f.keys["performer"] in team]
    return Table(figure, "tickets", period, cut, ("performer",),
                 ("cohort", "converted", "immature"), tuple(facts))


def k7_email_to_call(period: Period, cut: Cut, *, window: timedelta = DEFAULT_WINDOW,
                     now: datetime | None = None) -> Table:
    """Tickets whose first outbound email is in the period; converted when an outbound call
    connected within ``window`` after that email."""
    return _activity_cohort("K7 email→call", period, cut, window, now, EMAIL_OUT,
                            CALL_CONNECTED)


def k7_call_to_meeting(period: Period, cut: Cut, *, window: timedelta = DEFAULT_WINDOW,
                       now: datetime | None = None) -> Table:
    """Tickets whose first connected outbound call is in the period; converted when a video
    presentation or a meeting was held within ``window`` after that call."""
    return _activity_cohort("K7 call→presentation", period, cut, window, now, CALL_CONNECTED,
                            PRESENTATION_HELD)


# --- K7 lead → sale -------------------------------------------------------------------------


def k7_lead_to_sale(period: Period, cut: Cut, *, window: timedelta = DEFAULT_WINDOW,
                    now: datetime | None = None) -> Table:
    """Tickets created in the period (K2 leads), by channel and owner at creation, each counted
    once as won, lost or open as it stood at the end of its window (creation + ``window``, or
    now if earlier). won + lost + open = cohort."""
    now = now or clock.now()
    created = list(Event.objects
               .filter(_in_period(period, "occurred_at"), type=EventType.TICKET_CREATED,
                       ticket__in=_tickets(cut))
               .filter(_owner_filter(cut, "owner_id"))
               .values_list("ticket_id", "occurred_at", "owner_id", "ticket__channel"))
    outcomes = _outcomes(row[0] for row in created)
    facts: list[Fact] = []
    for ticket_id, when, owner, channel in created:
        closes = when + window
        status = _status_at(outcomes.get(ticket_id, []), min(closes, now))
        facts.append(Fact(ticket_id, {"channel": channel, "owner": owner},
                          {"cohort": 1, status: 1, "immature": int(closes > now)}))
    return Table("K7 lead→sale", "tickets", period, cut, ("channel", "owner"),
                 ("cohort", WON, LOST, OPEN, "immature"), tuple(facts))


# --- K7 win rate and raw activity ratios ---------------------------------------------------


def win_rate(period: Period, cut: Cut, *keys: str, figure: Any = k10_outcomes
             ) -> list[dict[str, Any]]:
    """won / (won + lost) among the deals closed in the period (K10: by closing date, owner at
    the outcome; outcomes undone by a reopening count nowhere), grouped by K10 ``keys``."""
    rows = figure(period, cut).rollup(*keys)
    return [{**{k: row[k] for k in keys}, "won": row["won"], "lost": row["lost"],
             "win_rate": rate(row["won"], row["won"] + row["lost"])} for row in rows]


def activity_ratios(period: Period, cut: Cut, *, figure: Any = k1_contacts
                    ) -> list[dict[str, Any]]:
    """Per performer, counts of K1 activities in the period divided by each other. These are
    ratios, not conversions: the calls need not follow the emails or be on the same tickets."""
    rows = []
    for row in figure(period, cut).rows:
        held = row["videos_held"] + row["meetings_held"]
        rows.append({"performer": row["performer"],
                     "calls_per_email_ratio": rate(row["calls_connected"], row["emails_out"]),
                     "presentations_per_call_ratio": rate(held, row["calls_connected"])})
    return rows


# --- K8 stage funnel ------------------------------------------------------------------------

STRICT, ANY_ORDER = "strict", "any"


@dataclass(frozen=True)
class Funnel:
    """K8: ``table`` holds one fact per cohort ticket and step it reached (keys pipeline, stage,
    owner at creation; value ``reached``); ``stages`` the steps of each pipeline in order (its
    open stages, then the won stage)."""

    table: Table
    stages: dict[str, tuple[str, ...]]
    mode: str

    def steps(self, pipeline: str, **cell: Any) -> list[dict[str, Any]]:
        """The pipeline's steps in order: ``reached`` (tickets), ``next_step`` (share of them
        that also reached the next step; None on the last) and ``cumulative`` (share of the
        cohort, i.e. of those that reached the first step)."""
        order = self.stages.get(pipeline, ())
        reached = [self.table.ticket_ids("reached", pipeline=pipeline, stage=s, **cell)
                   for s in order]
        cohort = len(reached[0]) if reached else 0
        rows = []
        for i, stage in enumerate(order):
            after = reached[i + 1] if i + 1 < len(order) else None
            rows.append({
                "stage": stage, "reached": len(reached[i]),
                "next_step": None if after is None else rate(len(reached[i] & after),
                                                            len(reached[i])),
                "cumulative": rate(len(reached[i]), cohort)})
        return rows


def _pipeline_steps(cut: Cut) -> dict[str, tuple[str, ...]]:
    stages = Stage.objects.filter(version__pipeline__current_version_id=F("version_id"))
    if cut.pipeline is not None:
        stages = stages.filter(version__pipeline__code=cut.pipeline)
    open_: dict[str, list[str]] = {}
    won: dict[str, str] = {}
    for pipeline, code, semantic in (stages.order_by("position")
                                     .values_list("version__pipeline__code", "code",
                                                  "semantic")):
        if semantic == StageSemantic.OPEN:
            open_.setdefault(pipeline, []).append(code)
        elif semantic == StageSemantic.WON:
            won[pipeline] = code
    return {p: (*codes, *([won[p]] if p in won else [])) for p, codes in open_.items()}


def k8_funnel(period: Period, cut: Cut, *, mode: str = STRICT,
              now: datetime | None = None) -> Funnel:
    """Tickets whose first entry into their pipeline's first stage is in the period, and the
    steps each reached by ``now``. A stage counts once, at its first entry (back-moves and
    re-entries change nothing); the won step counts when the ticket is won as of ``now``.
    ``strict``: a step counts only if every earlier step was reached, first entries in order;
    ``any``: a step counts if it was ever reached. Lost tickets stay in the cohort."""
    if mode not in (STRICT, ANY_ORDER):
        raise ValueError(f"unknown funnel mode {mode!r}")
    now = now or clock.now()
    steps = _pipeline_steps(cut)
    first_codes = [order[0] for order in steps.values() if order]
    entered = StageVisit.objects.filter(ticket_id=OuterRef("pk"), stage__code__in=first_codes,
                                        stage__semantic=StageSemantic.OPEN,
                                        entered_at__gte=period.start, entered_at__lt=period.end)
    tickets = (_tickets(cut).annotate(lead_owner=_lead_owner())
               .filter(Exists(entered), _owner_filter(cut, "lead_owner")))
    visits = (StageVisit.objects.filter(ticket__in=tickets, entered_at__lte=now)
              .order_by("ticket_id", "seq")
              .values_list("ticket_id", "ticket__pipeline__code", "stage__code", "entered_at",
                           "seq"))
    first: dict[int, dict[str, tuple[int, datetime]]] = {}
    pipeline_of: dict[int, str] = {}
    for ticket_id, pipeline, stage, when, seq in visits:
        pipeline_of[ticket_id] = pipeline
        first.setdefault(ticket_id, {}).setdefault(stage, (seq, when))
    owners = dict(tickets.values_list("pk", "lead_owner"))
    outcomes = _outcomes(first)
    facts: list[Fact] = []
    for ticket_id, entries in first.items():
        order = steps.get(pipeline_of[ticket_id], ())
        if not order or order[0] not in entries or not period.contains(entries[order[0]][1]):
            continue  # its first entry into the first stage was before the period
        won_now = _status_at(outcomes.get(ticket_id, []), now) == WON
        reached = [s for s in order[:-1] if s in entries]
        if won_now and order[-1] in entries:
            reached.append(order[-1])
        if mode == STRICT:
            strict: list[str] = []
            last_seq = 0
            for stage in order:
                if stage not in reached or entries[stage][0] < last_seq:
                    break
                strict.append(stage)
                last_seq = entries[stage][0]
            reached = strict
        keys = {"pipeline": pipeline_of[ticket_id], "owner": owners.get(ticket_id)}
        facts.extend(Fact(ticket_id, {**keys, "stage": s}, {"reached": 1}) for s in reached)
    table = Table(f"K8 funnel ({mode})", "tickets", period, cut, ("pipeline", "stage", "owner"),
                  ("reached",), tuple(facts))
    return Funnel(table, steps, mode)
