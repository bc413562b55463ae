"""Rollups of the event figures, kept in step with the history (docs/analytics-scale.md).

Each ticket's facts for K1, K2, K3, K4, K10, K12 escalations and the lost value by stage are
worked out from its records by the same rules as ``figures.py`` and ``control.py``, and summed
into ``Cell`` rows by local day, cut dimensions and figure keys. ``refresh`` recomputes the
facts of some tickets, takes out what they contributed before (``TicketRollup``) and adds
what they contribute now; ``history.services.ticket_event`` calls it in the transaction of
every ticket event, so the cells change in the same commit as the history they come from.
Everything that can change a past figure (a void, a reopening undoing an outcome, a back-dated
activity) is written with a ticket event, and the refresh recomputes the whole ticket.

``table(code, period, cut)`` answers a figure from the cells with one GROUP BY (or from the
history when the rollups are not ready). Its rows equal the exact figure's; its cells do not
know their tickets (drill-downs read the exact figure, one cell at a time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Q, Sum

from estafeta.accounts.models import User
from estafeta.core.db import settle_tables
from estafeta.domain.codes import EventType, TicketStatus
from estafeta.history.models import Event
from estafeta.tickets.models import Activity, Ticket

from . import monthly, summary
from .control import STAGE_KEYS
from .figures import (
    FIGURES,
    K1_COLUMNS,
    TRANSITION_EVENTS,
    Fact,
    Table,
    _k1_values,
    _money,
)
from .models import (
    VALUES,
    Cell,
    RollupState,
    StaySpan,
    TicketRollup,
    TicketSummary,
)
from .period import Cut, Period, company_tz
from .sales import K5_KEYS

# figure -> (keys, columns, money columns, distinct columns {column: source})
SPECS: dict[str, tuple[tuple[str, ...], tuple[str, ...], frozenset[str], dict[str, str]]] = {
    "K1": (("performer",), K1_COLUMNS, frozenset(), {}),
    "K2": (("channel", "creator", "owner"), ("leads", "void"), frozenset(), {}),
    "K3": (("kind", "currency", "issuer", "owner"), ("documents", "tickets", "amount"),
           frozenset({"amount"}), {"tickets": "documents"}),
    "K4": (("pipeline", "kind", "from_stage", "to_stage", "actor", "owner"), ("moves",),
           frozenset(), {}),
    "K10": (("owner", "segment", "territory", "currency", "reason"),
            ("won", "revenue", "lost", "lost_value"), frozenset({"revenue", "lost_value"}), {}),
    "ESC": (("reason", "level", "owner"), ("raised", "acknowledged"), frozenset(), {}),
    "LOST": (("pipeline", "stage", "currency"), ("lost", "lost_value"),
             frozenset({"lost_value"}), {}),
}
# a money column is summed only over the facts that count it (so a row without any is 0)
MONEY_SOURCE = {"amount": "documents", "revenue": "won", "lost_value": "lost"}
# K3 "tickets" (distinct) is answered for these groupings: the dashboard's and the total
K3_LEVELS = (("owner", "currency"), ())
TITLES = {"K1": "K1", "K2": "K2", "K3": "K3", "K4": "K4", "K10": "K10",
          "ESC": "K12 escalations", "LOST": "Lost value by stage"}
UNITS = {"K1": "activities", "K2": "tickets", "K3": "documents, money", "K4": "stage moves",
         "K10": "deals, money", "ESC": "escalations", "LOST": "tickets, money"}

RELEVANT = (EventType.TICKET_CREATED, EventType.DOCUMENT_ISSUED, *TRANSITION_EVENTS,
            EventType.ESCALATION_RAISED, EventType.ESCALATION_ACKNOWLEDGED)

CellKey = tuple[str, str, int, str, str, str, str, str]  # figure, day, person, dims, keys


def _columns(figure: str) -> tuple[str, ...]:
    """The stored columns of a figure (distinct ones are not stored)."""
    columns, distinct = SPECS[figure][1], SPECS[figure][3]
    return tuple(c for c in columns if c not in distinct)


def _cents(value: Decimal) -> int:
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"an amount with more than two decimals: {value}")
    return int(cents)


def _day(moment: datetime) -> str:
    return moment.astimezone(company_tz()).date().isoformat()


def _keys(values: Iterable[Any]) -> str:
    return json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Ticket:
    pk: int
    pipeline: str
    channel: str
    status: str
    currency: str
    version: int = 0
    version_digest: str = ""
    current: tuple[int | None, str | None] = (None, None)  # the pipeline's version, digest
    segment: str = ""
    territory: str = ""
    owner: int | None = None  # now


class _Facts:
    """Cells of one ticket: key -> values in the order of ``_columns(figure)``."""

    def __init__(self) -> None:
        self.cells: dict[CellKey, list[int]] = {}

    def add(self, figure: str, moment: datetime, person: int | None, dims: tuple[str, ...],
            keys: Iterable[Any], values: dict[str, Any]) -> None:
        columns = _columns(figure)
        key: CellKey = (figure, _day(moment), person or 0, *dims, _keys(keys))  # type: ignore[assignment]
        row = self.cells.setdefault(key, [0] * len(columns))
        for name, value in values.items():
            index = columns.index(name)
            row[index] += _cents(value) if name in SPECS[figure][2] else int(value)


def _code(value: Any) -> str:
    return "" if value is None else str(value)


def compute(ticket_ids: list[int], loaded: dict[str, Any] | None = None
            ) -> dict[int, dict[CellKey, list[int]]]:
    """Each ticket's cells, from its records (a few queries for the whole batch). ``loaded``
    receives the records read (for the summaries, ``summary.refresh``)."""
    tickets = {pk: _Ticket(pk, pipeline, channel, status, currency, version, own,
                           (current, digest), owner=owner)
               for pk, pipeline, channel, status, currency, version, own, current, digest, owner
               in Ticket.objects.filter(pk__in=ticket_ids)
               .values_list("pk", "pipeline__code", "channel", "status", "currency",
                            "version_id", "version__digest", "pipeline__current_version_id",
                            "pipeline__current_version__digest", "owner_id")}
    events: dict[int, list[tuple[Any, ...]]] = {}
    for row in (Event.objects.filter(ticket_id__in=ticket_ids, type__in=RELEVANT)
                .order_by("ticket_id", "seq")
                .values_list("ticket_id", "seq", "type", "occurred_at", "actor_id", "owner_id",
                             "payload")):
        events.setdefault(row[0], []).append(row)
    escalation_ids = {int(r[6]["escalation"]) for rows in events.values() for r in rows
                      if r[2] in (EventType.ESCALATION_RAISED,
                                  EventType.ESCALATION_ACKNOWLEDGED)}
    reasons: dict[int, str] = {}
    if escalation_ids:
        from estafeta.control.models import Escalation

        reasons = dict(Escalation.objects.filter(pk__in=sorted(escalation_ids))
                       .values_list("pk", "reason"))
    for rows in events.values():
        for row in rows:
            if row[2] == EventType.TICKET_CREATED and row[0] in tickets:
                tickets[row[0]].segment = _code(row[6].get("segment"))
                tickets[row[0]].territory = _code(row[6].get("territory"))
                break
    out: dict[int, _Facts] = {pk: _Facts() for pk in tickets}
    activities: dict[int, list[tuple[Any, ...]]] = {}
    for ticket_id, performer, kind, direction, outcome, when, pk in (
            Activity.objects.filter(ticket_id__in=ticket_ids)
            .values_list("ticket_id", "performed_by_id", "kind", "direction", "outcome",
                         "occurred_at", "pk")):
        activities.setdefault(ticket_id, []).append((when, pk, performer, kind, direction,
                                                     outcome))
        t = tickets[ticket_id]
        values = _k1_values(kind, direction, outcome)
        if values:
            out[ticket_id].add("K1", when, performer,
                               (t.pipeline, t.channel, t.segment, t.territory),
                               (performer,), values)
    for ticket_id, rows in events.items():
        _ticket_events(tickets[ticket_id], rows, reasons, out[ticket_id])
    if loaded is not None:
        loaded.update(tickets=tickets, events=events, activities=activities)
    return {pk: facts.cells for pk, facts in out.items()}


def _ticket_events(t: _Ticket, rows: list[tuple[Any, ...]], reasons: dict[int, str],
                   facts: _Facts) -> None:
    void = t.status == TicketStatus.VOID
    dims = (t.pipeline, t.channel, t.segment, t.territory)
    reopened = max((r[1] for r in rows if r[2] == EventType.TICKET_REOPENED), default=0)
    documents: list[tuple[datetime, int | None, int | None, dict[str, Any]]] = []
    for _tid, seq, type_, when, actor, owner, payload in rows:
        if type_ == EventType.TICKET_CREATED:
            facts.add("K2", when, owner, dims, (t.channel, actor, owner),
                      {"void": 1} if void else {"leads": 1})
        if void:
            continue
        if type_ == EventType.DOCUMENT_ISSUED:
            documents.append((when, actor, owner, payload))
        if type_ in TRANSITION_EVENTS and payload.get("transition"):
            move = payload["transition"]
            facts.add("K4", when, owner, dims,
                      (t.pipeline, move["kind"], move["from"], move["to"], actor, owner),
                      {"moves": 1})
        if type_ in (EventType.TICKET_WON, EventType.TICKET_LOST) and seq > reopened:
            won = type_ == EventType.TICKET_WON
            amount = _money(payload.get("amount"))
            currency = payload.get("currency") or t.currency
            at = (t.pipeline, t.channel, _code(payload.get("segment")),
                  _code(payload.get("territory")))
            facts.add("K10", when, owner, at,
                      (owner, payload.get("segment"), payload.get("territory"), currency,
                       None if won else payload.get("reason")),
                      {"won": 1, "revenue": amount} if won
                      else {"lost": 1, "lost_value": amount})
            if not won:
                facts.add("LOST", when, owner, at, (t.pipeline, payload.get("at_stage"),
                                                    currency),
                          {"lost": 1, "lost_value": amount})
        if type_ in (EventType.ESCALATION_RAISED, EventType.ESCALATION_ACKNOWLEDGED):
            raised = type_ == EventType.ESCALATION_RAISED
            facts.add("ESC", when, owner, dims,
                      (reasons.get(int(payload["escalation"])), payload.get("level"), owner),
                      {"raised": 1} if raised else {"acknowledged": 1})
    # K3: each document also records the day of the ticket's previous document in the same
    # (owner, currency), and the day of the latest previous document of each owner, so that
    # distinct tickets can be counted for any period and any cut (docs/analytics-scale.md).
    last_oc: dict[tuple[Any, ...], str] = {}
    last_owner: dict[int | None, str] = {}
    for when, actor, owner, payload in documents:
        currency = payload.get("currency", "RUB")
        day = _day(when)
        before = sorted(([o, d] for o, d in last_owner.items()),
                        key=lambda pair: (pair[0] is None, pair[0] or 0))
        facts.add("K3", when, owner, dims,
                  (payload["kind"], currency, actor, owner, last_oc.get((owner, currency)),
                   before),
                  {"documents": 1, "amount": _money(payload.get("amount"))})
        last_oc[(owner, currency)] = day
        last_owner[owner] = day


# --- applying to the cells ---------------------------------------------------------------------

_COLS = ", ".join(f"v{i}" for i in range(VALUES))
_DIMS = "figure, day, person, pipeline, channel, segment, territory, keys"


def _upsert(deltas: list[tuple[CellKey, list[int]]]) -> None:
    """Add ``deltas`` to the cells (creating the missing ones), in key order so that two
    transactions lock shared cells in the same order."""
    if not deltas:
        return
    deltas.sort(key=lambda d: d[0])
    table = Cell._meta.db_table
    row = "(" + ", ".join(["%s"] * (8 + VALUES)) + ")"
    update = ", ".join(f"v{i} = {table}.v{i} + excluded.v{i}" for i in range(VALUES))
    with connection.cursor() as cursor:
        for start in range(0, len(deltas), 500):
            chunk = deltas[start:start + 500]
            params: list[Any] = []
            for key, values in chunk:
                figure, day, person, pipeline, channel, segment, territory, keys = key
                params += [figure, date.fromisoformat(day), person, pipeline, channel, segment,
                           territory, keys, *values, *[0] * (VALUES - len(values))]
            cursor.execute(
                f"INSERT INTO {table} ({_DIMS}, {_COLS}) VALUES "
                + ", ".join([row] * len(chunk))
                + f" ON CONFLICT ({_DIMS}) DO UPDATE SET {update}", params)


def _stored(cells: list[Any]) -> dict[CellKey, list[int]]:
    return {tuple(c[:8]): list(c[8]) for c in cells}


def refresh(ticket_ids: Iterable[int], *, by_month: bool = True) -> None:
    """Recompute these tickets' cells and apply the difference (inside the caller's
    transaction, which holds the tickets' locks); ``by_month`` False: not to the monthly cells
    (a rebuild works them out at its end)."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return
    loaded: dict[str, Any] = {}
    new = compute(ids, loaded)
    new_monthly = summary.refresh(loaded["tickets"], loaded["events"], loaded["activities"])
    old = {r.ticket_id: (_stored(r.cells), monthly.loaded(r.monthly))
           for r in TicketRollup.objects.filter(ticket_id__in=ids)}
    deltas: dict[CellKey, list[int]] = {}
    months: monthly.Contribution = {}
    changed = []
    for pk in ids:
        before, after = old.get(pk, ({}, {})), (new.get(pk, {}), new_monthly.get(pk, {}))
        if before == after and pk in old:
            continue
        changed.append(pk)
        if by_month:
            monthly.merge(months, monthly.difference(after[1], before[1]))
        if before[0] == after[0]:
            continue
        if by_month:
            monthly.merge(months, monthly.difference(monthly.from_cells(after[0]),
                                                     monthly.from_cells(before[0])))
        for key in before[0].keys() | after[0].keys():
            a, b = after[0].get(key), before[0].get(key)
            width = len(a if a is not None else b or [])
            delta = [(a[i] if a else 0) - (b[i] if b else 0) for i in range(width)]
            if key in deltas:  # several tickets of a batch share a cell
                delta = [x + y for x, y in zip(deltas[key], delta, strict=True)]
            deltas[key] = delta
    if changed:
        TicketRollup.objects.bulk_create(
            [TicketRollup(ticket_id=pk, cells=[[*key, values] for key, values in
                                               sorted(new.get(pk, {}).items())],
                          monthly=monthly.stored(new_monthly.get(pk, {})))
             for pk in changed], update_conflicts=True, unique_fields=["ticket_id"],
            update_fields=["cells", "monthly"])
    # last: the shared cells stay locked until the commit, so lock them as late as possible
    # (the daily cells, then the monthly ones: every transaction in the same order)
    _upsert([(key, delta) for key, delta in deltas.items() if any(delta)])
    monthly.apply(months)


def on_ticket_event(ticket_id: int) -> None:
    """Called by ``ticket_event`` after writing an event of the ticket."""
    refresh([ticket_id])


# --- rebuild and state ---------------------------------------------------------------------------


def is_ready() -> bool:
    return state()[0]


def state() -> tuple[bool, bool]:
    """(daily rollups ready, monthly cells ready), read once per ``memo`` block."""
    cache = _MEMO.get()
    if cache is not None and ("state",) in cache:
        return cache[("state",)]
    found = RollupState.objects.filter(pk=1).values_list("ready", "monthly_ready").first()
    ready = (bool(found and found[0]), bool(found and found[0] and found[1]))
    if cache is not None:
        cache[("state",)] = ready
    return ready


def _set_ready(ready: bool) -> None:
    from estafeta.core import clock

    RollupState.objects.update_or_create(
        pk=1, defaults={"ready": ready, "monthly_ready": ready, "monthly_kept": ready,
                        "rebuilt_at": clock.now() if ready else None})


def rebuild(batch: int = 2000, progress: Callable[[int, int], None] | None = None,
            say: Callable[[str], None] | None = None) -> int:
    """Empty the rollups and recompute them from the history, ``batch`` tickets per
    transaction (each holding its tickets' locks, as the services do), so memory stays flat and
    work on the tickets may go on meanwhile; then the monthly cells from the daily rows in one
    transaction (``monthly.derive``: ticket events wait for it, a few minutes at a million
    tickets). Returns the number of tickets."""
    with transaction.atomic():
        _set_ready(False)
        monthly.clear()
        table, per_ticket = Cell._meta.db_table, TicketRollup._meta.db_table
        summaries, spans = TicketSummary._meta.db_table, StaySpan._meta.db_table
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"TRUNCATE {table}, {per_ticket}, {summaries}, {spans}")
            else:
                for name in (table, per_ticket, summaries, spans):
                    cursor.execute(f"DELETE FROM {name}")
    total = Ticket.objects.count()
    highest = Ticket.objects.aggregate(m=Max("pk"))["m"] or 0
    done, last = 0, 0
    while last < highest:
        with transaction.atomic():
            ids = list(Ticket.objects.select_for_update().filter(pk__gt=last)
                       .order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            refresh(ids, by_month=False)
        last = ids[-1]
        done += len(ids)
        if progress is not None:
            progress(done, total)
    monthly.derive(say)
    with transaction.atomic():
        _set_ready(True)
    settle_tables([Cell, TicketRollup, TicketSummary])  # derive settled the rest
    return done


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolledTable(Table):
    """A figure's rows from the cells: one fact per distinct key (no ticket). Distinct
    columns come precomputed per grouping in ``values['tickets@owner,currency']``, or for the
    total in ``overall`` (the monthly cells)."""

    overall: Mapping[str, Any] | None = None

    def _row(self, head: dict[str, Any], facts: list[Fact]) -> dict[str, Any]:
        row = dict(head)
        for column in self.columns:
            if column in self.distinct and not head and self.overall is not None:
                row[column] = self.overall[column]
                continue
            name = f"{column}@{','.join(head)}" if column in self.distinct else column
            if column in self.distinct and not all(name in f.values for f in facts):
                raise ValueError(f"{self.figure} rolled up counts distinct tickets only by "
                                 f"{' or '.join(','.join(k) or '()' for k in K3_LEVELS)}")
            row[column] = sum((f.values.get(name, 0) for f in facts), start=0)
        return row

    def ticket_ids(self, column: str | None = None, **cell: Any) -> set[int]:
        raise ValueError("rolled-up figures do not list tickets: ask the exact figure")


def _filtered(figure: str, period: Period, cut: Cut) -> Any:
    q = Q(figure=figure, day__gte=period.first, day__lte=period.last)
    if cut.seller is not None:
        q &= Q(person=cut.seller)
    if cut.team is not None:
        q &= Q(person__in=User.objects.filter(team_id=cut.team).values("pk"))
    for name in ("pipeline", "channel", "segment", "territory"):
        value = getattr(cut, name)
        if value is not None:
            q &= Q(**{name: value})
    return Cell.objects.filter(q)


def _people(cut: Cut) -> set[int] | None:
    """The people a cut keeps (None: everybody)."""
    if cut.seller is None and cut.team is None:
        return None
    users = User.objects.all()
    if cut.seller is not None:
        users = users.filter(pk=cut.seller)
    if cut.team is not None:
        users = users.filter(team_id=cut.team)
    return set(users.values_list("pk", flat=True))


def _daily_groups(figure: str, period: Period, cut: Cut, by: tuple[str, ...],
                  since: date) -> dict[tuple[Any, ...], dict[str, int]]:
    """The period's daily cells summed by ``by`` (money in hundredths). K3 adds the distinct
    tickets as of a period starting on ``since``: ``tickets@owner,currency`` and
    ``tickets@``."""
    keys = SPECS[figure][0]
    stored = _columns(figure)
    people = _people(cut) if figure == "K3" else None
    start = since.isoformat()
    rows = (_filtered(figure, period, cut).values("keys").order_by()
            .annotate(**{f"s{i}": Sum(f"v{i}") for i in range(len(stored))}))
    groups: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in rows:
        values = {column: int(row[f"s{i}"] or 0) for i, column in enumerate(stored)}
        decoded = json.loads(row["keys"])
        if figure == "K3":
            same_oc, earlier = decoded[len(keys)], decoded[len(keys) + 1]
            values["tickets@owner,currency"] = (values["documents"]
                                                if same_oc is None or same_oc < start else 0)
            # the ticket counts in the total at its first document in the period among those
            # the cut keeps (the cut's people: ``people``; None: everybody)
            counted = not any(d >= start and (people is None or o in people)
                              for o, d in earlier)
            values["tickets@"] = values["documents"] if counted else 0
        named = dict(zip(keys, decoded, strict=False))
        slot = groups.setdefault(tuple(named[k] for k in by), {})
        for name, value in values.items():
            slot[name] = slot.get(name, 0) + value
    return groups


def _finish(figure: str, period: Period, cut: Cut, by: tuple[str, ...],
            groups: dict[tuple[Any, ...], dict[str, int]],
            overall: dict[str, int] | None = None) -> RolledTable:
    """The rolled table of summed groups (money in hundredths)."""
    _all, columns, money, distinct = SPECS[figure]
    stored = _columns(figure)
    facts = []
    for head, values in groups.items():
        if not any(values.get(c) for c in stored if c not in money):
            continue  # cells emptied by later changes (a void, a reopening) are no rows
        for column in money:  # as the exact figure: money summed only where it is counted
            if not values.get(MONEY_SOURCE[column]):
                values.pop(column, None)
            elif column in values:
                values[column] = Decimal(values[column]).scaleb(-2)  # type: ignore[assignment]
        facts.append(Fact(0, dict(zip(by, head, strict=True)), values))
    return RolledTable(TITLES[figure], UNITS[figure], period, cut, by, columns, tuple(facts),
                       distinct=distinct, overall=overall)


def rolled(figure: str, period: Period, cut: Cut, by: Iterable[str] | None = None
           ) -> RolledTable:
    """``figure`` ("K1", "K2", "K3", "K4", "K10", "ESC", "LOST") from the daily cells, with
    its rows by all its keys or (``by``) by some of them."""
    group = SPECS[figure][0] if by is None else tuple(by)
    return _finish(figure, period, cut, group,
                   _daily_groups(figure, period, cut, group, period.first))


EXACT: dict[str, Callable[[Period, Cut], Table]] = dict(FIGURES)


def _exact_extra() -> None:
    from .control import escalations, lost_value_by_stage

    EXACT.setdefault("ESC", escalations)
    EXACT.setdefault("LOST", lost_value_by_stage)


_MEMO: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("rollup_memo",
                                                                    default=None)


@contextmanager
def memo() -> Iterator[None]:
    """Within the block, ``table`` answers each (figure, period, cut) once (a dashboard asks
    for K10 of one period for several cards)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def table(figure: str, period: Period, cut: Cut, by: Iterable[str] | None = None) -> Table:
    """The figure's rows: from the cells when the rollups are ready, else from the history.
    ``by``: the keys the caller groups the rows by (the table then has only those): a period
    of whole months then reads the monthly cells (``monthly.cell_table``)."""
    group = None if by is None else tuple(by)
    cache = _MEMO.get()
    key = (figure, period, cut, group)
    if cache is not None and key in cache:
        return cache[key]
    if is_ready():
        found: Table | None = None
        if group is not None:
            found = monthly.cell_table(figure, period, cut, group)
        if found is None:
            found = rolled(figure, period, cut, group)
    else:
        _exact_extra()
        found = EXACT[figure](period, cut)
    if cache is not None:
        cache[key] = found
    return found


def source(figure: str, by: Iterable[str] | None = None) -> Callable[[Period, Cut], Table]:
    """``table`` for one figure (grouped ``by``), for the functions that take the figure as a
    parameter."""
    return lambda period, cut: table(figure, period, cut, by)


# --- verify --------------------------------------------------------------------------------------


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (Decimal(v) if isinstance(v, Decimal) else v) for k, v in r.items()}
            for r in rows]


# figure -> the groupings the dashboard, the API, the exports and the report read it by
GROUPINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "K1": (("performer",), ()),
    "K2": (("owner",), ("channel",), ()),
    "K3": (("owner", "currency"), ()),
    "K4": (("owner",), STAGE_KEYS, ()),
    "K10": (("owner", "currency"), ("owner",), ("currency",), K5_KEYS, ()),
    "ESC": (("reason", "level"), ()),
    "LOST": (("pipeline", "stage", "currency"), ()),
}


def differences(period: Period, cut: Cut | None = None) -> Iterator[str]:
    """Where the cells and a recomputation from the history disagree for ``period``: every
    figure by all its keys and in total from the daily cells, and by each grouping the
    dashboard reads (``GROUPINGS``) from the daily cells and from the monthly cells (when they
    can answer the period and cut)."""
    _exact_extra()
    cut = cut or Cut()
    for figure, spec in SPECS.items():
        keys = spec[0]
        exact = EXACT[figure](period, cut)
        full = rolled(figure, period, cut)
        checks: list[tuple[str, tuple[str, ...], Table]] = [
            ("daily", group, full) for group in
            ([(), ("owner", "currency")] if figure == "K3" else [keys, ()])]
        for group in GROUPINGS[figure]:
            checks.append(("daily", group, rolled(figure, period, cut, group)))
            by_month = monthly.cell_table(figure, period, cut, group)
            if by_month is not None:
                checks.append(("monthly", group, by_month))
        for level, group, found in checks:
            a, b = _plain(exact.rollup(*group)), _plain(found.rollup(*group))
            if a != b:
                yield (f"{figure} by {','.join(group) or 'total'} ({level}): history {len(a)} "
                       f"rows, rollup {len(b)} rows; first difference "
                       f"{next(((x, y) for x, y in zip(a, b, strict=False) if x != y), None)}")
            if group and level == "monthly":  # the total of a grouped table too
                a, b = _plain(exact.rollup()), _plain(found.rollup())
                if a != b:
                    yield f"{figure} total of {','.join(group)} (monthly): {a} != {b}"
    stored = {r[0]: r[1] for r in Cell.objects.filter(
        day__gte=period.first, day__lte=period.last).values_list("figure").annotate(
            n=Sum("v0")).order_by()}
    for figure in stored:
        if figure not in SPECS:  # pragma: no cover - only a foreign row could do this
            yield f"unknown figure {figure!r} in the cells"
