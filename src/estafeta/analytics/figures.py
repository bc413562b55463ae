"""K1, K2, K3, K4 and K10 from the history (docs/analytics.md has every definition).

Each figure reads the records of what happened in the period (activities, ticket events with
the owner they recorded, documents) and turns each into a ``Fact``: the ticket it is about, the
keys it is counted under and the amounts it adds. A ``Table`` sums the facts by its keys; the
same facts answer the drill-down (``Table.tickets``), so a cell and its ticket list always agree.

Attribution: activities count for whoever performed them; pipeline results (leads, documents,
stage moves, outcomes) for the owner the ticket had at the time of the event (``Event.owner``).
Reassigning a ticket later changes no past figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    Direction,
    EventType,
    TicketStatus,
)
from estafeta.history.models import Event
from estafeta.tickets.models import Activity, Ticket

from .period import Cut, Period

Number = int | Decimal


@dataclass(frozen=True)
class Fact:
    ticket: int
    keys: Mapping[str, Any]
    values: Mapping[str, Number]


@dataclass(frozen=True)
class Table:
    """Rows of one figure for one period and cut.

    ``keys`` name what a row is about (user ids, codes); ``columns`` the numbers. ``distinct``
    columns count distinct tickets among the facts that add to their source column (so they are
    recomputed, never summed, when rows are rolled up).
    """

    figure: str
    unit: str
    period: Period
    cut: Cut
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    facts: tuple[Fact, ...]
    distinct: Mapping[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.rollup(*self.keys)

    def rollup(self, *keys: str) -> list[dict[str, Any]]:
        """Rows grouped by some of the keys (none: one total row), sorted by their keys."""
        for key in keys:
            if key not in self.keys:
                raise ValueError(f"{self.figure} has no key {key!r}")
        groups: dict[tuple[Any, ...], list[Fact]] = {}
        for fact in self.facts:
            groups.setdefault(tuple(fact.keys[k] for k in keys), []).append(fact)
        rows = [self._row(dict(zip(keys, group, strict=True)), facts)
                for group, facts in groups.items()]
        # Within one key every value has one type (ids or codes); None (nobody) sorts last.
        rows.sort(key=lambda row: tuple((row[k] is None, row[k] if row[k] is not None else "")
                                        for k in keys))
        return rows

    def _row(self, head: dict[str, Any], facts: list[Fact]) -> dict[str, Any]:
        row = dict(head)
        for column in self.columns:
            if column in self.distinct:
                source = self.distinct[column]
                row[column] = len({f.ticket for f in facts if f.values.get(source)})
            else:
                row[column] = sum((f.values.get(column, 0) for f in facts), start=0)
        return row

    def total(self, column: str) -> Number:
        rows = self.rollup()
        return rows[0][column] if rows else 0

    def ticket_ids(self, column: str | None = None, **cell: Any) -> set[int]:
        for key in cell:
            if key not in self.keys:
                raise ValueError(f"{self.figure} has no key {key!r}")
        source = self.distinct.get(column, column) if column else None
        return {f.ticket for f in self.facts
                if all(f.keys[k] == v for k, v in cell.items())
                and (source is None or f.values.get(source))}

    def tickets(self, column: str | None = None, **cell: Any) -> QuerySet[Ticket]:
        """The tickets behind a cell: the facts with these keys that add to ``column``."""
        return Ticket.objects.filter(pk__in=sorted(self.ticket_ids(column, **cell)))


# --- the cut --------------------------------------------------------------------------------


def _ticket_filter(cut: Cut, prefix: str, *, classified_by_creation: bool = True) -> Q:
    """Pipeline and channel never change on a ticket; segment and territory are read from the
    ticket's creation event (the classification when the lead came in)."""
    q = Q()
    if cut.pipeline is not None:
        q &= Q(**{f"{prefix}pipeline__code": cut.pipeline})
    if cut.channel is not None:
        q &= Q(**{f"{prefix}channel": cut.channel})
    if classified_by_creation:
        for name in ("segment", "territory"):
            value = getattr(cut, name)
            if value is not None:
                created = Event.objects.filter(ticket_id=OuterRef(f"{prefix}pk"),
                                               type=EventType.TICKET_CREATED,
                                               **{f"payload__{name}": value})
                q &= Q(Exists(created))
    return q


def _person_filter(cut: Cut, field_name: str) -> Q:
    q = Q()
    if cut.seller is not None:
        q &= Q(**{f"{field_name}_id": cut.seller})
    if cut.team is not None:
        q &= Q(**{f"{field_name}__team_id": cut.team})
    return q


def _in_period(period: Period, field_name: str) -> Q:
    return Q(**{f"{field_name}__gte": period.start, f"{field_name}__lt": period.end})


def _not_void() -> Q:
    return ~Q(ticket__status=TicketStatus.VOID)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


# --- K1 contacts made -----------------------------------------------------------------------

K1_COLUMNS = ("contacts", "emails_out", "calls_attempted", "calls_connected", "videos_held",
              "meetings_held", "videos_missed", "meetings_missed")


def _k1_values(kind: str, direction: str, outcome: str) -> dict[str, int]:
    if kind == ActivityKind.EMAIL:
        if direction == Direction.OUT and outcome == ActivityOutcome.SENT:
            return {"contacts": 1, "emails_out": 1}
        return {}
    if kind == ActivityKind.CALL:
        if direction != Direction.OUT:
            return {}
        if outcome == ActivityOutcome.CONNECTED:
            return {"contacts": 1, "calls_attempted": 1, "calls_connected": 1}
        return {"calls_attempted": 1}
    name = "videos" if kind == ActivityKind.VIDEO else "meetings"
    if outcome == ActivityOutcome.HELD:
        return {"contacts": 1, f"{name}_held": 1}
    if outcome == ActivityOutcome.MISSED:
        return {f"{name}_missed": 1}
    return {}  # pragma: no cover - the services allow no other outcome


def k1_contacts(period: Period, cut: Cut) -> Table:
    """Contacts made with clients in the period, by performer (count of activities)."""
    rows = (Activity.objects
            .filter(_in_period(period, "occurred_at"), _person_filter(cut, "performed_by"),
                    _ticket_filter(cut, "ticket__"))
            .values_list("ticket_id", "performed_by_id", "kind", "direction", "outcome"))
    facts = []
    for ticket_id, performer, kind, direction, outcome in rows:
        values = _k1_values(kind, direction, outcome)
        if values:
            facts.append(Fact(ticket_id, {"performer": performer}, values))
    return Table("K1", "activities", period, cut, ("performer",), K1_COLUMNS, tuple(facts))


# --- K2 leads -------------------------------------------------------------------------------


def k2_leads(period: Period, cut: Cut) -> Table:
    """Tickets created in the period, by channel, creator and owner at creation; void tickets
    (void now) in their own column, never in ``leads``."""
    rows = (Event.objects
            .filter(_in_period(period, "occurred_at"), type=EventType.TICKET_CREATED)
            .filter(_person_filter(cut, "owner"), _ticket_filter(cut, "ticket__"))
            .values_list("ticket_id", "ticket__channel", "actor_id", "owner_id",
                         "ticket__status"))
    facts = tuple(
        Fact(ticket_id, {"channel": channel, "creator": creator, "owner": owner},
             {"void": 1} if status == TicketStatus.VOID else {"leads": 1})
        for ticket_id, channel, creator, owner, status in rows)
    return Table("K2", "tickets", period, cut, ("channel", "creator", "owner"),
                 ("leads", "void"), facts)


# --- K3 documents issued --------------------------------------------------------------------


def k3_documents(period: Period, cut: Cut) -> Table:
    """Quotes, invoices and contracts issued in the period: count, distinct tickets and sum, by
    kind, currency, issuer and the ticket's owner at the time of issue."""
    rows = (Event.objects
            .filter(_in_period(period, "occurred_at"), _not_void(),
                    type=EventType.DOCUMENT_ISSUED)
            .filter(_person_filter(cut, "owner"), _ticket_filter(cut, "ticket__"))
            .values_list("ticket_id", "actor_id", "owner_id", "payload"))
    facts = tuple(
        Fact(ticket_id, {"kind": payload["kind"], "currency": payload.get("currency", "RUB"),
                         "issuer": actor, "owner": owner},
             {"documents": 1, "amount": _money(payload.get("amount"))})
        for ticket_id, actor, owner, payload in rows)
    return Table("K3", "documents, money", period, cut, ("kind", "currency", "issuer", "owner"),
                 ("documents", "tickets", "amount"), facts, distinct={"tickets": "documents"})


# --- K4 stage transitions -------------------------------------------------------------------

TRANSITION_EVENTS = (EventType.STAGE_CLOSED, EventType.STAGE_RETURNED, EventType.TICKET_WON,
                     EventType.TICKET_LOST, EventType.TICKET_REOPENED)


def k4_transitions(period: Period, cut: Cut) -> Table:
    """Stage moves in the period (forward, skip, backward, reopen, close into the lost stage),
    by pipeline, kind, from and to stage, actor and owner at the time. ``rollup("pipeline",
    "from_stage", "to_stage")`` is the from×to matrix."""
    rows = (Event.objects
            .filter(_in_period(period, "occurred_at"), _not_void(),
                    type__in=TRANSITION_EVENTS)
            .filter(_person_filter(cut, "owner"), _ticket_filter(cut, "ticket__"))
            .values_list("ticket_id", "ticket__pipeline__code", "actor_id", "owner_id",
                         "payload"))
    facts = []
    for ticket_id, pipeline, actor, owner, payload in rows:
        move = payload.get("transition")
        if not move:  # a loss in a pipeline without a lost stage moves nowhere
            continue
        facts.append(Fact(ticket_id, {"pipeline": pipeline, "kind": move["kind"],
                                      "from_stage": move["from"], "to_stage": move["to"],
                                      "actor": actor, "owner": owner}, {"moves": 1}))
    return Table("K4", "stage moves", period, cut,
                 ("pipeline", "kind", "from_stage", "to_stage", "actor", "owner"), ("moves",),
                 tuple(facts))


# --- K10 deals won and lost -----------------------------------------------------------------


def _standing(events: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of (ticket, seq) outcome events, those not undone by a later reopening."""
    events = list(events)
    reopened: dict[int, int] = {}
    tickets = {ticket for ticket, _ in events}
    for ticket, seq in (Event.objects.filter(type=EventType.TICKET_REOPENED,
                                             ticket_id__in=tickets)
                        .values_list("ticket_id", "seq")):
        reopened[ticket] = max(seq, reopened.get(ticket, 0))
    return {(t, s) for t, s in events if s > reopened.get(t, 0)}


def k10_outcomes(period: Period, cut: Cut) -> Table:
    """Deals won (count, revenue) and lost (count, value by reason) in the period, by owner at
    the time of the outcome, segment and territory as of the outcome, currency and loss reason
    (None on wins). An outcome undone by a later reopening counts nowhere; void tickets never."""
    q = Q()
    for name in ("segment", "territory"):
        value = getattr(cut, name)
        if value is not None:
            q &= Q(**{f"payload__{name}": value})
    rows = list(Event.objects
                .filter(_in_period(period, "occurred_at"), _not_void(),
                        type__in=(EventType.TICKET_WON, EventType.TICKET_LOST))
                .filter(q, _person_filter(cut, "owner"),
                        _ticket_filter(cut, "ticket__", classified_by_creation=False))
                .values_list("ticket_id", "seq", "type", "owner_id", "payload",
                             "ticket__currency"))
    standing = _standing((row[0], row[1]) for row in rows)
    facts = []
    for ticket_id, seq, type_, owner, payload, currency in rows:
        if (ticket_id, seq) not in standing:
            continue
        won = type_ == EventType.TICKET_WON
        amount = _money(payload.get("amount"))
        keys = {"owner": owner, "segment": payload.get("segment"),
                "territory": payload.get("territory"),
                "currency": payload.get("currency") or currency,
                "reason": None if won else payload.get("reason")}
        values: dict[str, Number] = ({"won": 1, "revenue": amount} if won
                                     else {"lost": 1, "lost_value": amount})
        facts.append(Fact(ticket_id, keys, values))
    return Table("K10", "deals, money", period, cut,
                 ("owner", "segment", "territory", "currency", "reason"),
                 ("won", "revenue", "lost", "lost_value"), tuple(facts))


FIGURES = {"K1": k1_contacts, "K2": k2_leads, "K3": k3_documents, "K4": k4_transitions,
           "K10": k10_outcomes}
