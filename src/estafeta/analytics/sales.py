"""K5 sales dynamics by segment and K6 realisation of potential (docs/analytics-sales.md).

K5 builds on K10 (``k10_outcomes``): a win counts in the bucket of its event, under the segment
recorded on it (the segment as of the win) and in its currency; currencies are never added.
K6 compares won revenue in a target's period with the target (the potential) of a client or
territory, and the open weighted pipeline (amount × the current stage's probability) with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import QuerySet

from estafeta.clients.models import Client
from estafeta.domain.codes import TicketStatus
from estafeta.domain.errors import BadInput
from estafeta.targets.models import TargetKind
from estafeta.targets.selectors import targets_current
from estafeta.tickets.models import Ticket

from .figures import Table, _person_filter, k10_outcomes
from .period import Cut, Period, _add_months

BUCKETS = ("week", "month", "quarter")
CENT = Decimal("0.01")


def _bucket_of(day: date, kind: str) -> Period:
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period("week", monday, monday + timedelta(days=6))
    if kind == "month":
        return Period.month(day.year, day.month)
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return Period("quarter", first, _add_months(first, 3) - timedelta(days=1))


def buckets(period: Period, kind: str) -> list[Period]:
    """The whole weeks, months or quarters that cover ``period`` (the first and last may reach
    outside it: a bucket is always counted whole)."""
    if kind not in BUCKETS:
        raise BadInput(f"{kind!r} is not a bucket: use week, month or quarter",
                       code="bad_bucket", value=str(kind))
    out = [_bucket_of(period.first, kind)]
    while out[-1].last < period.last:
        out.append(_bucket_of(out[-1].last + timedelta(days=1), kind))
    return out


def year_ago(bucket: Period) -> Period | None:
    """The same bucket a year earlier: the same ISO week number (None when that year had no
    week 53), month or quarter."""
    if bucket.kind == "week":
        year, week, _ = bucket.first.isocalendar()
        try:
            first = date.fromisocalendar(year - 1, week, 1)
        except ValueError:
            return None
        return Period("week", first, first + timedelta(days=6))
    return Period(bucket.kind, _add_months(bucket.first, -12),
                  _add_months(bucket.last + timedelta(days=1), -12) - timedelta(days=1))


@dataclass(frozen=True)
class Sales:
    won: int = 0
    revenue: Decimal = Decimal(0)

    @property
    def average(self) -> Decimal | None:
        """Average deal (revenue per won deal), None when nothing was won."""
        if not self.won:
            return None
        return (self.revenue / self.won).quantize(CENT, ROUND_HALF_UP)


def change(now: Decimal | int | None, before: Decimal | int | None) -> Decimal | None:
    """Percent change from ``before`` to ``now``, one decimal; None when there is no base
    (nothing before, or a missing average)."""
    if now is None or before is None or before == 0:
        return None
    return ((Decimal(now) - Decimal(before)) * 100 / Decimal(before)).quantize(
        Decimal("0.1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class DynamicsRow:
    bucket: Period
    segment: str | None
    currency: str
    current: Sales
    previous: Sales
    year_ago: Sales | None  # None: no such bucket a year earlier (ISO week 53)

    def as_dict(self) -> dict[str, Any]:
        ago = self.year_ago
        c, p = self.current, self.previous
        return {
            "bucket": self.bucket.label, "segment": self.segment, "currency": self.currency,
            "won": c.won, "revenue": c.revenue, "average": c.average,
            "previous_won": p.won, "previous_revenue": p.revenue,
            "previous_average": p.average,
            "won_vs_previous": change(c.won, p.won),
            "revenue_vs_previous": change(c.revenue, p.revenue),
            "average_vs_previous": change(c.average, p.average),
            "year_ago_won": ago.won if ago else None,
            "year_ago_revenue": ago.revenue if ago else None,
            "year_ago_average": ago.average if ago else None,
            "won_vs_year_ago": change(c.won, ago.won) if ago else None,
            "revenue_vs_year_ago": change(c.revenue, ago.revenue) if ago else None,
            "average_vs_year_ago": change(c.average, ago.average) if ago else None,
        }


@dataclass(frozen=True)
class Dynamics:
    period: Period
    cut: Cut
    bucket: str
    rows: tuple[DynamicsRow, ...]
    tables: dict[str, Table]  # bucket label -> its K10 table (also the year-ago buckets)

    def tickets(self, bucket: str, segment: str | None, currency: str) -> QuerySet[Ticket]:
        """The won tickets behind a row."""
        return self.tables[bucket].tickets("won", segment=segment, currency=currency)


K5_KEYS = ("segment", "currency")  # the K10 keys K5 reads


def _sales_by_key(table: Table) -> dict[tuple[str | None, str], Sales]:
    return {(row["segment"], row["currency"]): Sales(row["won"], Decimal(row["revenue"]))
            for row in table.rollup(*K5_KEYS) if row["won"]}


def k5_dynamics(period: Period, cut: Cut, bucket: str = "month", *,
                figure: Any = k10_outcomes) -> Dynamics:
    """Won count, revenue and average deal per bucket, segment (as of the win) and currency,
    with the previous bucket and the same bucket a year earlier. Reads two queries per bucket
    compared, whatever the number of tickets. ``figure``: K10 or its rollup."""
    current = buckets(period, bucket)
    wanted: dict[str, Period] = {b.label: b for b in current}
    wanted[current[0].previous().label] = current[0].previous()
    for b in current:
        ago = year_ago(b)
        if ago is not None:
            wanted[ago.label] = ago
    tables = {label: figure(p, cut) for label, p in wanted.items()}
    sales = {label: _sales_by_key(t) for label, t in tables.items()}
    keys = sorted({k for label in sales for k in sales[label]},
                  key=lambda k: (k[0] is None, k[0] or "", k[1]))
    rows = []
    for index, b in enumerate(current):
        before = current[index - 1] if index else current[0].previous()
        ago = year_ago(b)
        for key in keys:
            rows.append(DynamicsRow(
                b, key[0], key[1], sales[b.label].get(key, Sales()),
                sales[before.label].get(key, Sales()),
                sales[ago.label].get(key, Sales()) if ago else None))
    return Dynamics(period, cut, bucket, tuple(rows), tables)


# --- K6 -------------------------------------------------------------------------------------

K6_KINDS = (TargetKind.CLIENT.value, TargetKind.TERRITORY.value)


@dataclass(frozen=True)
class Realisation:
    kind: str
    ref: str
    first: date
    last: date
    currency: str
    potential: Decimal
    won_revenue: Decimal  # in the target's currency only
    weighted_pipeline: Decimal  # open tickets now, in the target's currency only
    key_account: bool | None  # clients only
    target_id: int

    @property
    def realisation(self) -> Decimal | None:
        """Won revenue / potential, percent; None when the potential is 0."""
        if not self.potential:
            return None
        return (self.won_revenue * 100 / self.potential).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def coverage(self) -> Decimal | None:
        """Open weighted pipeline / potential, percent; None when the potential is 0."""
        if not self.potential:
            return None
        return (self.weighted_pipeline * 100 / self.potential).quantize(Decimal("0.1"),
                                                                        ROUND_HALF_UP)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "object": self.ref, "start": self.first.isoformat(),
                "end": self.last.isoformat(), "currency": self.currency,
                "potential": self.potential, "won_revenue": self.won_revenue,
                "realisation": self.realisation, "weighted_pipeline": self.weighted_pipeline,
                "coverage": self.coverage, "key_account": self.key_account}


def people_of(cut: Cut) -> Cut:
    """The part of ``cut`` that K6 honours: the seller and the team (a slice of people)."""
    return Cut(seller=cut.seller, team=cut.team)


def k6_realisation(period: Period, cut: Cut | None = None) -> list[Realisation]:
    """One row per client or territory target in force whose period lies within ``period``.
    Won revenue is K10's revenue in the target's own period, for the ticket's client (a client
    target) or the territory recorded on the win (a territory target), in the target's currency.
    The weighted pipeline is today's open tickets of the client, or of clients now in the
    territory: amount × the current stage's probability.

    A slice of people (``cut.seller``/``cut.team``, e.g. a head's team; the other parts of the cut
    do not apply) counts only its own part against the whole potential: wins whose owner at the
    time of the win is in the slice (K10's rule) and open tickets the slice owns now. A client
    target is then listed only for a client the slice works (a win in the target's period or an
    open ticket of theirs); every territory target is listed, with the slice's share."""
    people = people_of(cut or Cut())
    sliced = people != Cut()
    targets = targets_current(K6_KINDS, period.first, period.last)
    if not targets:
        return []
    spans = {(t.period_start, t.period_end) for t in targets}
    won: dict[tuple[date, date], list[tuple[int, str | None, str, Decimal]]] = {}
    ticket_ids: set[int] = set()
    for first, last in spans:
        table = k10_outcomes(Period.days(first, last), people)
        facts = [(f.ticket, f.keys["territory"], f.keys["currency"],
                  Decimal(f.values["revenue"])) for f in table.facts if f.values.get("won")]
        won[(first, last)] = facts
        ticket_ids.update(f[0] for f in facts)
    client_of = dict(Ticket.objects.filter(pk__in=sorted(ticket_ids))
                     .values_list("pk", "client_id"))
    client_ids = [int(t.ref) for t in targets if t.kind == TargetKind.CLIENT]
    territories = [t.ref for t in targets if t.kind == TargetKind.TERRITORY]
    key = dict(Client.objects.filter(pk__in=client_ids).values_list("pk", "key_account"))
    pipeline: dict[tuple[str, str, str], Decimal] = {}
    open_rows = (Ticket.objects.filter(status=TicketStatus.OPEN, amount__isnull=False)
                 .filter(client_id__in=client_ids) | Ticket.objects.filter(
                     status=TicketStatus.OPEN, amount__isnull=False,
                     client__territory__code__in=territories))
    open_clients: set[str] = set()
    if sliced:
        owned = _person_filter(people, "owner")
        open_rows = open_rows.filter(owned)
        open_clients = {str(c) for c in Ticket.objects.filter(
            owned, status=TicketStatus.OPEN, client_id__in=client_ids).values_list(
                "client_id", flat=True)}
    for client_id, territory, currency, amount, probability in open_rows.values_list(
            "client_id", "client__territory__code", "currency", "amount", "stage__probability"):
        weighted = Decimal(amount or 0) * Decimal(probability or 0) / 100
        for k in (("client", str(client_id), currency), ("territory", territory or "", currency)):
            pipeline[k] = pipeline.get(k, Decimal(0)) + weighted
    out = []
    for t in targets:
        facts = won[(t.period_start, t.period_end)]
        if t.kind == TargetKind.CLIENT:
            mine = [(cur, amount) for ticket, _, cur, amount in facts
                    if str(client_of.get(ticket)) == t.ref]
            if sliced and not mine and t.ref not in open_clients:
                continue  # a client the slice does not work
            revenue = sum((amount for cur, amount in mine if cur == t.currency),
                          start=Decimal(0))
        else:
            revenue = sum((amount for _, territory, cur, amount in facts
                           if cur == t.currency and territory == t.ref), start=Decimal(0))
        out.append(Realisation(
            t.kind, t.ref, t.period_start, t.period_end, t.currency, t.amount, revenue,
            pipeline.get((t.kind, t.ref, t.currency), Decimal(0)).quantize(CENT, ROUND_HALF_UP),
            key.get(int(t.ref)) if t.kind == TargetKind.CLIENT else None, t.pk))
    return out
