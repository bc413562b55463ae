"""Monthly cells: the second, coarser level of the analytics rollups (docs/analytics-scale.md).

The daily cells (``rollup.py``), the per-ticket summaries and the per-stay spans
(``summary.py``) grow with the tickets: a year of a company read from them is millions of
rows. The dashboard shows much less: a row per seller (or per team) and a few company-wide
tables. So each of those rows is also summed per **month** and **projection** — the keys one
table of the dashboard groups by — in two tables:

- per person (the performer, the owner at the event, the stay's executor, the person who sent
  the first email...), for the per-seller rows and the seller and team cuts;
- for the whole company, split into ``STRIPES`` rows by the person's id so that concurrent
  changes do not all wait for one row lock (a reader adds the stripes up): ``MonthCell`` rows
  with a negative ``person`` (-1 - the stripe).

Neither keeps the pipeline, channel, segment or territory of the daily rows: a cut by those
reads the daily rows. A year of a director's dashboard then reads about twelve rows per seller
and table.

What each ticket contributes is a function of its daily cells, its summary and its stays
(``from_cells``, ``from_summary``, ``from_span``); ``rollup.refresh`` applies the difference
between the old contribution (its stored daily cells, and the monthly cells of its summary and
stays stored on ``TicketRollup.monthly``) and the new one in the transaction of every ticket
event, after the daily cells, so both levels change in the same commit as the history.
``derive`` computes the whole level again from the daily rows (``rebuild --monthly``).

Reading (``cell_table``, ``k7_activity``, ``k7_lead_to_sale``, ``k8_counts``, ``k9_closed``,
``sla``) answers a period that starts on the first day of a month: its whole months from the
monthly cells and the days after the last whole month from the daily rows. Every answer equals
the exact figure; ``None`` means "ask the daily rows" (another period, a cut by pipeline,
channel, segment or territory, monthly cells not ready, a window other than 14 days...).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, Value, When

from estafeta.core.db import settle_tables

from .models import NO_SINCE, VALUES, MonthCell, RollupState, StaySpan, TicketSummary
from .period import Cut, Period, company_tz

STRIPES = 8
BUCKET_BITS = 6  # K9 buckets: 64 per doubling of the length (about 1.1% wide), exact below 128 s
_SUB = 1 << BUCKET_BITS

# Who a figure's daily cells hold in ``person`` (the key the per-seller rows are by).
PERSON_KEY = {"K1": "performer", "K2": "owner", "K3": "owner", "K4": "owner", "K10": "owner",
              "ESC": "owner", "LOST": "owner"}
# figure -> projection code -> the figure keys it keeps besides the person. K3 is apart: its
# projections also carry what counting distinct tickets needs (``_k3``).
PROJECTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "K1": {"K1": ()},
    "K2": {"K2": (), "K2.ch": ("channel",)},
    "K3": {"K3": ("currency",)},
    "K4": {"K4": (), "K4.st": ("pipeline", "from_stage", "kind")},
    "K10": {"K10": ("currency",), "K10.seg": ("segment", "currency")},
    "ESC": {"ESC": ("reason", "level")},
    "LOST": {"LOST": ("pipeline", "stage", "currency")},
}
K3_TOTAL = "K3.t"

# figure, month, person (< 0: the company's stripe), since, keys (JSON)
MonthKey = tuple[str, date, int, date, str]
Contribution = dict[MonthKey, list[int]]


def bucket(seconds: int) -> int:
    """The K9 histogram bucket of a stay's business length: the value itself below 128 s, then
    64 buckets per doubling. Buckets keep the order of the values (a longer stay is never in an
    earlier bucket), so the k-th shortest stay is the right one of its bucket."""
    if seconds < 0:
        return -1 - bucket(-seconds)
    if seconds < 2 * _SUB:
        return seconds
    shift = seconds.bit_length() - BUCKET_BITS - 1
    return shift * _SUB + (seconds >> shift)


def month_of(moment: datetime) -> date:
    """The first day of the moment's month in the company time zone."""
    return moment.astimezone(company_tz()).date().replace(day=1)


def _month_of_day(day: str | date) -> date:
    value = date.fromisoformat(day) if isinstance(day, str) else day
    return value.replace(day=1)


def _keys(values: Iterable[Any]) -> str:
    return json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)


def _add(out: Contribution, key: MonthKey, values: Iterable[int]) -> None:
    values = list(values)
    row = out.get(key)
    if row is None:
        out[key] = values
    else:
        for i, v in enumerate(values):
            row[i] += v


def stripe(person: int | None) -> int:
    """The company cells' ``person``: -1 - the person's stripe."""
    return -1 - (person or 0) % STRIPES


def _both(out: Contribution, figure: str, month: date, person: int | None, keys: str,
          values: Iterable[int], since: date = NO_SINCE, company: bool = True) -> None:
    """Add to the person's cell and (``company``) to the company's stripe of that person."""
    values = list(values)
    _add(out, (figure, month, person or 0, since, keys), values)
    if company:
        _add(out, (figure, month, stripe(person), since, keys), values)


# --- what a ticket contributes -----------------------------------------------------------------


def from_cells(cells: dict[tuple[Any, ...], list[int]]) -> Contribution:
    """The monthly cells of some daily cells (``rollup.CellKey`` -> values); a sum over cells
    gives the sum of their monthly cells, so this serves one ticket's cells and whole days of
    the daily table alike."""
    from .rollup import SPECS

    out: Contribution = {}
    for key, values in cells.items():
        figure, day, person, _pipeline, _channel, _segment, _territory, keys = key
        if figure not in PROJECTIONS:
            continue
        month = _month_of_day(day)
        decoded = json.loads(keys)
        named = dict(zip(SPECS[figure][0], decoded, strict=False))
        if figure == "K3":
            _k3(out, month, person, named["currency"], decoded[4], decoded[5], values)
            continue
        for code, kept in PROJECTIONS[figure].items():
            _both(out, code, month, person, _keys(named[k] for k in kept), values)
    return out


def _k3(out: Contribution, month: date, person: int, currency: str, previous: str | None,
        before: list[list[Any]], values: list[int]) -> None:
    """K3: "K3" by currency with ``since`` the month of the ticket's previous document of the
    same owner and currency (the owner's row counts the ticket unless that month is in the
    period), and "K3.t" for the total's distinct tickets: per person the month of the latest
    previous document of each owner (a cut of people counts the ticket unless one of its own
    falls in the period), for the company the latest of them (none may fall in the period)."""
    since = _month_of_day(previous) if previous else NO_SINCE
    _add(out, ("K3", month, person or 0, since, _keys([currency])), values)
    _add(out, ("K3", month, stripe(person), NO_SINCE, _keys([currency])), values)
    months = [[o, _month_of_day(d).isoformat()] for o, d in before]
    latest = max((_month_of_day(d) for _o, d in before), default=NO_SINCE)
    _add(out, (K3_TOTAL, month, person or 0, NO_SINCE, _keys([months])), values)
    _add(out, (K3_TOTAL, month, stripe(person), latest, _keys([])), values)


SUMMARY_COLUMNS = ("ticket_id", "void", "pipeline", "channel", "lead_at", "lead_owner",
                   "email_at", "email_by", "email_next", "call_at", "call_by", "call_next",
                   "status_window", "status_final", "steps", "funnel_at", "strict_n",
                   "strict_last", "any_mask", "any_last", "open_now", "owner_now",
                   "covered_now", "open_tasks")
NOW = NO_SINCE  # the "month" of the current-state cells (OPEN, TASK)
SPAN_COLUMNS = ("visit_id", "void", "pipeline", "stage", "executor", "sla", "closed_at",
                "seconds", "bucket", "sla_due_at", "sla_left")
STATUSES = ("won", "lost", "open")


def _converted(at: datetime, nxt: datetime | None) -> int:
    from .summary import DEFAULT_WINDOW

    return int(nxt is not None and nxt <= at + DEFAULT_WINDOW)


def funnel_steps(s: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """K8 per step of the summary's funnel: (reached, reached with the next step) in the
    strict mode, then in any order — the rules of ``fast.k8_funnel``."""
    order = s["steps"].split("\x1f") if s["steps"] else []
    n = len(order)
    won = s["status_final"] == "won"
    strict_last = bool(s["strict_last"]) and won
    any_last = bool(s["any_last"]) and won

    def bit(i: int) -> bool:
        return bool(s["any_mask"] & (1 << i))

    out = []
    for i in range(n):
        if i < n - 1:
            sr = int(s["strict_n"] > i)
            sb = int(s["strict_n"] > i + 1) if i + 2 < n else int(strict_last)
            ar = int(bit(i))
            ab = int(bit(i) and (bit(i + 1) if i + 2 < n else any_last))
        else:
            sr, sb, ar, ab = int(strict_last), 0, int(any_last), 0
        out.append((sr, sb, ar, ab))
    return out


def from_summary(s: dict[str, Any]) -> Contribution:
    """The monthly cells of one ticket summary (``SUMMARY_COLUMNS``): the K7 cohorts by the
    month of their start, the K8 steps by the month of the first entry into the first step;
    and the current state (month ``NOW``): the open ticket for its owner now, covered by an
    open task of an active person or not ("OPEN"), and each open task for its assignee by its
    due day in ``since`` ("TASK"), for K12 coverage and overdue tasks."""
    out: Contribution = {}
    if s["void"]:
        return out
    pipeline = _keys([s["pipeline"]])
    # per person only: the dashboard shows these per owner / assignee (or their team)
    if s["open_now"]:
        _both(out, "OPEN", NOW, s["owner_now"], pipeline, (1, int(s["covered_now"])),
              company=False)
    for assignee, day in s["open_tasks"]:
        _both(out, "TASK", NOW, assignee, pipeline, (1,), since=date.fromisoformat(day),
              company=False)
    if s["email_at"] is not None:
        _both(out, "K7.em", month_of(s["email_at"]), s["email_by"], "[]",
              (1, _converted(s["email_at"], s["email_next"])))
    if s["call_at"] is not None:
        _both(out, "K7.ca", month_of(s["call_at"]), s["call_by"], "[]",
              (1, _converted(s["call_at"], s["call_next"])))
    if s["lead_at"] is not None:
        values = [1] + [int(s["status_window"] == x) for x in STATUSES] \
            + [int(s["status_final"] == x) for x in STATUSES]
        _both(out, "K7.ld", month_of(s["lead_at"]), s["lead_owner"], _keys([s["channel"]]),
              values)
    if s["funnel_at"] is not None and s["steps"]:
        month = month_of(s["funnel_at"])
        for i, step in enumerate(funnel_steps(s)):
            if any(step):
                _both(out, "K8", month, s["lead_owner"], _keys([s["pipeline"], s["steps"], i]),
                      step)
    return out


def from_span(s: dict[str, Any]) -> Contribution:
    """The monthly cells of one closed stay (``SPAN_COLUMNS``): its bucket in the company's K9
    histogram (not per person: a cut of people reads the stays) and its SLA result."""
    out: Contribution = {}
    closed = s["closed_at"]
    if s["void"] or closed is None:
        return out
    month = month_of(closed)
    _add(out, ("K9", month, -1, NO_SINCE, _keys([s["pipeline"], s["stage"], s["bucket"]])),
         [1])
    if s["sla"] and (s["sla_due_at"] is not None or s["sla_left"] is not None):
        due, left = s["sla_due_at"], s["sla_left"]
        within = (closed <= due) if due is not None else left > timedelta()
        _both(out, "SLA", month, s["executor"], _keys([s["pipeline"], s["stage"]]),
              (1, int(within)))
    return out


def difference(new: Contribution, old: Contribution) -> Contribution:
    """``new - old`` (the cells whose sums change)."""
    out: Contribution = {}
    for key in new.keys() | old.keys():
        a, b = new.get(key), old.get(key)
        width = max(len(a or ()), len(b or ()))
        delta = [(a[i] if a and i < len(a) else 0) - (b[i] if b and i < len(b) else 0)
                 for i in range(width)]
        if any(delta):
            out[key] = delta
    return out


def merge(into: Contribution, more: Contribution) -> None:
    for key, values in more.items():
        _add(into, key, values)


# --- writing -------------------------------------------------------------------------------------

_COLS = ", ".join(f"v{i}" for i in range(VALUES))


def apply(deltas: Contribution) -> None:
    """Add ``deltas`` to the monthly cells (creating the missing ones), in key order, so two
    transactions lock shared cells in the same order."""
    rows = sorted((k, v) for k, v in deltas.items() if any(v))
    if not rows:
        return
    table = MonthCell._meta.db_table
    dims = "figure, month, person, since, keys"
    row = "(" + ", ".join(["%s"] * (5 + VALUES)) + ")"
    update = ", ".join(f"v{i} = {table}.v{i} + excluded.v{i}" for i in range(VALUES))
    day = connection.ops.adapt_datefield_value
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            params: list[Any] = []
            for (figure, month, person, since, keys), values in chunk:
                params += [figure, day(month), person, day(since), keys, *values,
                           *[0] * (VALUES - len(values))]
            cursor.execute(
                f"INSERT INTO {table} ({dims}, {_COLS}) VALUES "
                + ", ".join([row] * len(chunk))
                + f" ON CONFLICT ({dims}) DO UPDATE SET {update}", params)


def stored(contribution: Contribution) -> list[list[Any]]:
    """A contribution as JSON (``TicketRollup.monthly``), in key order."""
    return [[f, m.isoformat(), p, s.isoformat(), k, v]
            for (f, m, p, s, k), v in sorted(contribution.items())]


def loaded(rows: list[list[Any]]) -> Contribution:
    """``stored`` read back."""
    return {(f, date.fromisoformat(m), p, date.fromisoformat(s), k): list(v)
            for f, m, p, s, k, v in rows}


def is_ready() -> bool:
    """Whether the monthly cells hold every ticket (the daily rollups too)."""
    from .rollup import state

    return state()[1]


def is_kept() -> bool:
    """Whether every ticket's rollup row holds its monthly cells (see ``RollupState``)."""
    return RollupState.objects.filter(pk=1, monthly_kept=True).exists()


def _set_ready(ready: bool) -> None:
    RollupState.objects.filter(pk=1).update(monthly_ready=ready)


def clear() -> None:
    """Empty the monthly cells and mark them not ready (in the caller's transaction)."""
    _set_ready(False)
    with connection.cursor() as cursor:
        table = MonthCell._meta.db_table
        cursor.execute(f"TRUNCATE {table}" if connection.vendor == "postgresql"
                       else f"DELETE FROM {table}")


def _stream(qs: QuerySet[Any], fields: tuple[str, ...], chunk: int = 5000) -> Iterator[Any]:
    """Rows of ``qs`` as dicts, read through a server-side cursor (flat memory)."""
    for row in qs.values_list(*fields).iterator(chunk_size=chunk):
        yield dict(zip(fields, row, strict=True))


def _flush_by_month(rows: Iterator[tuple[date, Contribution]], progress: Callable[[str], None],
                    what: str) -> int:
    """Apply contributions that arrive in month order, one month at a time (each monthly cell
    is written once)."""
    pending: Contribution = {}
    current: date | None = None
    count = 0
    for month, part in rows:
        if current is not None and month != current:
            apply(pending)
            progress(f"{what}: {current:%Y-%m} ({count} rows so far)")
            pending = {}
        current = month
        merge(pending, part)
        count += 1
    apply(pending)
    return count


def fill_buckets(batch: int = 20000) -> int:
    """Set the K9 bucket of the closed stays that have none (stays rolled up before buckets
    existed). Returns how many were set."""
    done = 0
    while True:
        with transaction.atomic():
            rows = list(StaySpan.objects.filter(closed_at__isnull=False, bucket__isnull=True,
                                                seconds__isnull=False)
                        .values_list("visit_id", "seconds")[:batch])
            if not rows:
                return done
            updates = [(bucket(int(seconds or 0)), visit) for visit, seconds in rows]
            with connection.cursor() as cursor:
                cursor.executemany(f"UPDATE {StaySpan._meta.db_table} SET bucket = %s "
                                   "WHERE visit_id = %s", updates)
            done += len(rows)


def derive(progress: Callable[[str], None] | None = None) -> None:
    """Compute the monthly cells again from the daily cells, the summaries and the spans, and
    mark them ready. Each source is read once in month order through a server-side cursor and
    each monthly cell written once, so memory holds one month of one source.

    One transaction: the rows it reads cannot change under it, so ticket events wait until it
    ends (``rollup.rebuild`` rebuilds the daily rows a batch of tickets at a time, beside the
    work, and then calls this)."""
    from .models import Cell

    say = progress or (lambda text: None)
    with transaction.atomic():
        clear()
        filled = fill_buckets()
        if filled:
            say(f"K9 buckets of {filled} closed stays set")
        cell_fields = ("figure", "day", "person", "pipeline", "channel", "segment",
                       "territory", "keys", *(f"v{i}" for i in range(VALUES)))

        def cells() -> Iterator[tuple[date, Contribution]]:
            for row in Cell.objects.filter(figure__in=sorted(PROJECTIONS)).order_by(
                    "day").values_list(*cell_fields).iterator(chunk_size=5000):
                yield _month_of_day(row[1]), from_cells({tuple(row[:8]): list(row[8:])})

        n = _flush_by_month(cells(), say, "daily cells")
        say(f"daily cells: {n} read")
        for at in ("email_at", "call_at", "lead_at", "funnel_at"):
            part = {"email_at": "email", "call_at": "call", "lead_at": "lead",
                    "funnel_at": "funnel"}[at]

            def summaries(at: str = at, part: str = part
                          ) -> Iterator[tuple[date, Contribution]]:
                qs = TicketSummary.objects.filter(**{f"{at}__isnull": False}).order_by(at)
                for s in _stream(qs, SUMMARY_COLUMNS):
                    yield month_of(s[at]), _only(from_summary(s), part)

            n = _flush_by_month(summaries(), say, f"summaries by {at}")
            say(f"summaries by {at}: {n} read")

        def now() -> Iterator[tuple[date, Contribution]]:
            qs = TicketSummary.objects.filter(Q(open_now=True) | ~Q(open_tasks=[]))
            for s in _stream(qs.order_by("ticket_id"), SUMMARY_COLUMNS):
                yield NOW, _only(from_summary(s), "now")

        n = _flush_by_month(now(), say, "the current state")
        say(f"the current state: {n} summaries read")

        def spans() -> Iterator[tuple[date, Contribution]]:
            qs = StaySpan.objects.filter(closed_at__isnull=False).order_by("closed_at")
            for s in _stream(qs, SPAN_COLUMNS):
                yield month_of(s["closed_at"]), from_span(s)

        n = _flush_by_month(spans(), say, "closed stays")
        say(f"closed stays: {n} read")
        _set_ready(True)
    # the K9 look-ups are index-only scans: right after a rebuild, with the visibility map
    # not yet set, they read the table for every row (ten times slower at a million tickets)
    settle_tables([MonthCell, StaySpan])



_PARTS = {"email": ("K7.em",), "call": ("K7.ca",), "lead": ("K7.ld",), "funnel": ("K8",),
          "now": ("OPEN", "TASK")}


def _only(contribution: Contribution, part: str) -> Contribution:
    """The cells of one part of a summary's contribution (``derive`` reads each part in the
    order of its own moment)."""
    codes = _PARTS[part]
    return {k: v for k, v in contribution.items() if k[0] in codes}


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A period read from the monthly cells: its whole ``months`` and the days after them
    (``tail``, None when the period ends with a month), which the daily rows answer."""

    months: Period
    tail: Period | None


DIMENSIONS = ("pipeline", "channel", "segment", "territory")
_OFF: ContextVar[bool] = ContextVar("monthly_off", default=False)


@contextmanager
def off() -> Iterator[None]:
    """Within the block the monthly cells answer nothing (``verify`` checks the daily rows
    alone too)."""
    token = _OFF.set(True)
    try:
        yield
    finally:
        _OFF.reset(token)


def _answers(cut: Cut) -> bool:
    """Whether the monthly cells may answer for ``cut`` (of people only) at all."""
    return (not _OFF.get() and all(getattr(cut, name) is None for name in DIMENSIONS)
            and is_ready())


def split(period: Period, cut: Cut) -> Split | None:
    """The whole months of ``period`` when the monthly cells can answer it: it starts on the
    first day of a month and holds at least one whole month, the cut is of people only, and
    the monthly cells are ready. None otherwise."""
    if period.first.day != 1:
        return None
    if (period.last + timedelta(days=1)).day == 1:
        months, tail = Period.days(period.first, period.last), None
    else:
        last_month = period.last.replace(day=1)
        if last_month == period.first:
            return None
        months = Period.days(period.first, last_month - timedelta(days=1))
        tail = Period.days(last_month, period.last)
    return Split(months, tail) if _answers(cut) else None


def people_of(cut: Cut) -> set[int] | None:
    """The people a cut keeps (None: everybody): the seller, the team's people now."""
    from .rollup import _people

    return _people(cut)


def _months(months: Period) -> list[date]:
    out, month = [], months.first
    while month <= months.last:
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def _sums(code: str, months: Period, people: set[int] | None, by_person: bool, width: int,
          since_before: date | None = None, keyed: bool = True
          ) -> list[tuple[int | None, Any, list[int], int]]:
    """(person or None, keys, sums of v0..v<width-1>, sum of v0 over the cells whose ``since``
    is before ``since_before``) per person (``by_person``) and keys (``keyed``; else all
    keys together, ``[]``), over the whole months:
    from the person cells when people are asked for or kept, else from the company's (each
    month an index range: the months are listed, the persons bounded). One plain statement:
    the dashboard reads thousands of these rows, and the ORM's per-value converters cost more
    than the query."""
    if people is not None and not people:
        return []  # a team without people
    day = connection.ops.adapt_datefield_value
    months_in = _months(months)
    where = [f"figure = %s AND month IN ({', '.join(['%s'] * len(months_in))})"]
    params: list[Any] = [code, *(day(m) for m in months_in)]
    if people is not None:
        chosen = sorted(people)
        where.append(f"person IN ({', '.join(['%s'] * len(chosen))})")
        params += chosen
    else:
        where.append("person >= 0" if by_person else "person < 0")
    group = ", ".join(["person"] * by_person + ["keys"] * keyed) or "figure"
    columns = [f"SUM(v{i})" for i in range(width)]
    columns.append("SUM(CASE WHEN since < %s THEN v0 ELSE 0 END)" if since_before is not None
                   else "0")
    select_params = [day(since_before)] if since_before is not None else []
    keys = "keys" if keyed else "'[]'"
    sql = (f"SELECT {'person' if by_person else '0'}, {keys}, {', '.join(columns)} "
           f"FROM {MonthCell._meta.db_table} WHERE {' AND '.join(where)} GROUP BY {group}")
    out = []
    with connection.cursor() as cursor:
        cursor.execute(sql, select_params + params)
        for row in cursor.fetchall():
            out.append((row[0] or None, json.loads(row[1]),
                        [int(v or 0) for v in row[2:2 + width]], int(row[2 + width] or 0)))
    return out


def cell_table(figure: str, period: Period, cut: Cut, by: tuple[str, ...]) -> Any:
    """A daily-cell figure (K1, K2, K3, K4, K10, ESC, LOST) grouped by ``by`` from the monthly
    cells and, for the days after the last whole month, the daily cells: a ``RolledTable``
    whose rows equal the exact figure's ``rollup(*by)``. None when the monthly cells cannot
    answer (see ``split``) or no projection holds the keys."""
    from . import rollup

    parts = split(period, cut)
    if parts is None or figure not in PROJECTIONS:
        return None
    keys = rollup.SPECS[figure][0]
    if any(k not in keys for k in by):
        return None
    person_key = PERSON_KEY[figure]
    rest = tuple(k for k in by if k != person_key)
    by_person = person_key in by
    people = people_of(cut)
    stored = rollup._columns(figure)
    groups: dict[tuple[Any, ...], dict[str, int]] = {}
    overall: dict[str, int] | None = None

    def add(head: tuple[Any, ...], values: dict[str, int]) -> None:
        slot = groups.setdefault(head, {})
        for name, value in values.items():
            slot[name] = slot.get(name, 0) + value

    def head_of(person: int | None, named: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(person if k == person_key else named[k] for k in by)

    if figure == "K3":
        if not set(rest) <= {"currency"}:
            return None
        for person, decoded, sums, counted in _sums(
                "K3", parts.months, people, by_person, len(stored),
                since_before=period.first if by_person else None):
            values = dict(zip(stored, sums, strict=True))
            if by_person:
                values["tickets@owner,currency"] = counted
            add(head_of(person, {"currency": decoded[0]}), values)
        overall = {"tickets": _k3_total(parts.months, people, period.first)}
    else:
        code = next((c for c, kept in sorted(PROJECTIONS[figure].items(),
                                              key=lambda item: len(item[1]))
                     if set(rest) <= set(kept)), None)
        if code is None:
            return None
        kept = PROJECTIONS[figure][code]
        for person, decoded, sums, _counted in _sums(code, parts.months, people, by_person,
                                                     len(stored)):
            add(head_of(person, dict(zip(kept, decoded, strict=True))),
                dict(zip(stored, sums, strict=True)))
    if parts.tail is not None:
        for head, values in rollup._daily_groups(figure, parts.tail, cut, by,
                                                 since=period.first).items():
            if overall is not None:
                overall["tickets"] += values.pop("tickets@", 0)
            add(head, values)
    return rollup._finish(figure, period, cut, by, groups, overall=overall)


def _k3_total(months: Period, people: set[int] | None, start: date) -> int:
    """K3's distinct tickets of the whole months (a ticket counts at its first document in the
    period among those of the cut's people): ``K3.t``."""
    if people is None:
        return sum(counted for _p, _k, _s, counted in
                   _sums(K3_TOTAL, months, None, False, 1, since_before=start))
    first = start.isoformat()
    total = 0
    for _person, decoded, sums, _counted in _sums(K3_TOTAL, months, people, False, 1):
        if not any(m >= first and o in people for o, m in decoded[0]):
            total += sums[0]
    return total


# K7: the activity cohorts and lead→sale -----------------------------------------------------------

K7_CODES = {"email_call": ("K7.em", "email"), "call_meeting": ("K7.ca", "call")}


def _young(at: str, months: Period, now: datetime) -> Q:
    """The members of the whole months whose 14-day window has not passed at ``now``."""
    from .summary import DEFAULT_WINDOW

    return Q(void=False, **{f"{at}__gt": now - DEFAULT_WINDOW, f"{at}__gte": months.start,
                            f"{at}__lt": months.end})


def k7_activity(part: str, period: Period, cut: Cut, now: datetime,
                daily: Callable[[Period], Iterable[Any]]) -> list[tuple[Any, list[int]]] | None:
    """A K7 activity cohort (14-day window) per performer: (performer, [cohort, converted,
    immature]). The whole months from the monthly cells (converted within 14 days is a fact of
    the ticket), their members younger than 14 days counted immature from the summaries, and
    the days after them from ``daily(tail)`` (the summaries' facts)."""
    parts = split(period, cut)
    if parts is None:
        return None
    code, prefix = K7_CODES[part]
    people = people_of(cut)
    counts: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for person, _decoded, sums, _c in _sums(code, parts.months, people, True, 2):
        row = counts[person]
        row[0] += sums[0]
        row[1] += sums[1]
    by = f"{prefix}_by"
    young = TicketSummary.objects.filter(_young(f"{prefix}_at", parts.months, now))
    if people is not None:
        young = young.filter(**{f"{by}__in": sorted(people)})
    for r in young.values(by).order_by(by).annotate(n=Count("pk")):
        counts[r[by]][2] += r["n"]
    if parts.tail is not None:
        for fact in daily(parts.tail):
            row = counts[fact.keys["performer"]]
            for i, name in enumerate(("cohort", "converted", "immature")):
                row[i] += int(fact.values[name])
    return [(person, row) for person, row in counts.items() if row[0]]


def k7_lead_to_sale(period: Period, cut: Cut, now: datetime,
                    daily: Callable[[Period], Iterable[Any]], channels: bool = True
                    ) -> list[tuple[tuple[str | None, int | None], list[int]]] | None:
    """K7 lead→sale (14-day window) per channel and owner at creation: ((channel, owner),
    [cohort, won, lost, open, immature]), or per owner across channels (``channels`` False:
    channel None). A member of the whole months counts as it stood 14 days after creation
    (stored per month), or, when that is still ahead of ``now``, as it stands now (corrected
    from the summaries); the days after the months from ``daily``."""
    parts = split(period, cut)
    if parts is None:
        return None
    people = people_of(cut)
    counts: dict[tuple[str | None, int | None], list[int]] = defaultdict(
        lambda: [0, 0, 0, 0, 0])
    for person, decoded, sums, _c in _sums("K7.ld", parts.months, people, True, 7,
                                           keyed=channels):
        row = counts[(decoded[0] if channels else None, person)]
        for i in range(4):
            row[i] += sums[i]
    young = TicketSummary.objects.filter(_young("lead_at", parts.months, now))
    if people is not None:
        young = young.filter(lead_owner__in=sorted(people))
    fields = ("channel", "lead_owner", "status_window", "status_final")[1 - channels:]
    for r in young.values(*fields).order_by(*fields).annotate(n=Count("pk")):
        row = counts[(r.get("channel"), r["lead_owner"])]
        row[1 + STATUSES.index(r["status_window"])] -= r["n"]
        row[1 + STATUSES.index(r["status_final"])] += r["n"]
        row[4] += r["n"]
    if parts.tail is not None:
        for fact in daily(parts.tail):
            row = counts[(fact.keys["channel"] if channels else None, fact.keys["owner"])]
            for i, name in enumerate(("cohort", *STATUSES, "immature")):
                row[i] += int(fact.values[name])
    return [(key, row) for key, row in counts.items() if row[0]]


# K8: the stage funnel -----------------------------------------------------------------------------

def k8_counts(period: Period, cut: Cut, steps: dict[str, tuple[str, ...]], strict: bool,
              daily: Callable[[Period], dict[str, list[tuple[int, int]]] | None]
              ) -> dict[str, list[tuple[int, int]]] | None:
    """K8 per pipeline and step: (reached, reached with the next step), the whole months from
    the monthly cells and the days after them from ``daily(tail)`` (None from it: the
    summaries cannot answer). None when a member was read against other steps than the
    pipeline's current ones (a newer version: the history answers until a rebuild)."""
    from .summary import steps_key

    parts = split(period, cut)
    if parts is None:
        return None
    people = people_of(cut)
    current = {p: steps_key(order) for p, order in steps.items()}
    counts: dict[str, list[list[int]]] = {}
    for _person, decoded, sums, _c in _sums("K8", parts.months, people, False, 4):
        if not any(sums):
            continue
        pipeline, key, i = decoded
        if current.get(pipeline) != key:
            return None
        row = counts.setdefault(pipeline, [[0, 0] for _ in steps[pipeline]])
        pair = sums[:2] if strict else sums[2:]
        row[i][0] += pair[0]
        row[i][1] += pair[1]
    if parts.tail is not None:
        tail = daily(parts.tail)
        if tail is None:
            return None
        for pipeline, pairs in tail.items():
            row = counts.setdefault(pipeline, [[0, 0] for _ in steps[pipeline]])
            for i, (reached, both) in enumerate(pairs):
                row[i][0] += reached
                row[i][1] += both
    return {p: [(a, b) for a, b in row] for p, row in counts.items()}


# K9: closed stays ---------------------------------------------------------------------------------

def _rank(n: int, share: float) -> int:
    """``timing.percentile``'s nearest rank."""
    import math

    return max(1, math.ceil(round(share * n, 9)))


def k9_closed(period: Period, cut: Cut) -> dict[tuple[str, str], dict[str, Any]] | None:
    """K9 for the stays closed in the period, per pipeline and stage: count, shortest, median
    (the mean of the two middle ones for an even count), 80th percentile (nearest rank) and
    longest, equal to ``timing``'s. The company's histogram of the whole months (and the stays
    of the days after them) says which bucket holds each rank; the stays of that bucket closed
    in the period, read through an index, give the value. Company-wide only: a cut of people
    reads the stays (None)."""
    parts = split(period, cut)
    if parts is None or people_of(cut) is not None:
        return None
    hist: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for _person, decoded, sums, _c in _sums("K9", parts.months, None, False, 1):
        if sums[0]:
            hist[(decoded[0], decoded[1])][decoded[2]] += sums[0]
    if parts.tail is not None:
        for row in (StaySpan.objects.filter(void=False, closed_at__gte=parts.tail.start,
                                            closed_at__lt=parts.tail.end)
                    .values("pipeline", "stage", "bucket").order_by()
                    .annotate(n=Count("pk"))):
            hist[(row["pipeline"], row["stage"])][int(row["bucket"] or 0)] += row["n"]
    wanted: dict[tuple[str, str, int, int], int] = {}  # (pipeline, stage, bucket, offset)
    ranks: dict[tuple[str, str], dict[int, tuple[str, str, int, int]]] = {}
    for (pipeline, stage), buckets in hist.items():
        n = sum(buckets.values())
        needed = {1, n, (n + 1) // 2, n // 2 + 1, _rank(n, 0.8)}
        if n % 2 == 0:
            needed.add(n // 2)
        found: dict[int, tuple[str, str, int, int]] = {}
        seen = 0
        for b in sorted(buckets):
            count = buckets[b]
            for r in needed:
                if seen < r <= seen + count:
                    found[r] = (pipeline, stage, b, r - seen - 1)
            seen += count
        ranks[(pipeline, stage)] = found
        for key in found.values():
            if not 0 <= key[2] < 2 * _SUB:  # below 128 s a bucket holds one value: itself
                wanted.setdefault(key, len(wanted))
    values = _kth(wanted, period)
    out = {}
    for (pipeline, stage), found in ranks.items():
        n = sum(hist[(pipeline, stage)].values())

        def at(rank: int, found: dict[int, tuple[str, str, int, int]] = found) -> int:
            key = found[rank]
            return key[2] if 0 <= key[2] < 2 * _SUB else values[wanted[key]]

        median = (timedelta(seconds=at((n + 1) // 2)) if n % 2 else
                  timedelta(seconds=(at(n // 2) + at(n // 2 + 1)) / 2))
        out[(pipeline, stage)] = {
            "closed": n, "median": median, "p80": timedelta(seconds=at(_rank(n, 0.8))),
            "shortest": timedelta(seconds=at(1)), "longest": timedelta(seconds=at(n))}
    return out


def _kth(wanted: dict[tuple[str, str, int, int], int], period: Period) -> dict[int, int]:
    """For each (pipeline, stage, bucket, offset): the seconds of the stay at that offset
    among the bucket's stays closed in the period, shortest first (one statement)."""
    if not wanted:
        return {}
    table = StaySpan._meta.db_table
    one = (f"SELECT %s, (SELECT seconds FROM {table} WHERE pipeline = %s AND stage = %s "
           "AND bucket = %s AND closed_at >= %s AND closed_at < %s AND closed_at IS NOT NULL "
           "AND NOT void ORDER BY seconds LIMIT 1 OFFSET %s)")
    params: list[Any] = []
    # raw SQL: the backend's own form of a moment (SQLite compares UTC text)
    start, end = (connection.ops.adapt_datetimefield_value(m) for m in (period.start,
                                                                         period.end))
    for (pipeline, stage, b, offset), index in wanted.items():
        params += [index, pipeline, stage, b, start, end, offset]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([one] * len(wanted)), params)
        return {int(i): int(v) for i, v in cursor.fetchall()}


# K12: SLA compliance ------------------------------------------------------------------------------

def sla(period: Period, cut: Cut, daily: Callable[[Period], Iterable[dict[str, Any]]]
        ) -> list[dict[str, Any]] | None:
    """Stays closed in the period under an SLA per pipeline and stage: closed, within, late.
    The whole months from the monthly cells, the days after them from ``daily(tail)``."""
    parts = split(period, cut)
    if parts is None:
        return None
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _person, decoded, sums, _c in _sums("SLA", parts.months, people_of(cut), False, 2):
        row = counts[(decoded[0], decoded[1])]
        row[0] += sums[0]
        row[1] += sums[1]
    if parts.tail is not None:
        for r in daily(parts.tail):
            row = counts[(r["pipeline"], r["stage"])]
            row[0] += r["closed"]
            row[1] += int(r["within"] or 0)
    return [{"pipeline": p, "stage": s, "closed": c, "within": w, "late": c - w}
            for (p, s), (c, w) in sorted(counts.items()) if c]


# K12: next-task coverage and overdue tasks, from the current-state cells --------------------------

def coverage(cut: Cut) -> list[dict[str, Any]] | None:
    """Open tickets now per pipeline and owner, and how many have an open task of an active
    person ("OPEN"). None when the cells cannot answer (see ``split``)."""
    if not _answers(cut):
        return None
    rows = []
    for person, decoded, sums, _c in _sums("OPEN", Period.days(NOW, NOW), people_of(cut), True,
                                           2):
        if sums[0]:
            rows.append({"pipeline": decoded[0], "owner": person, "open_tickets": sums[0],
                         "covered": sums[1], "uncovered": sums[0] - sums[1]})
    return rows


def overdue(at: datetime, cut: Cut, due_today: Callable[[datetime, datetime], QuerySet[Any]]
            ) -> list[dict[str, Any]] | None:
    """Open tasks at ``at`` per pipeline and assignee and how many were overdue then: from the
    current-state cells ("TASK": open tasks by due day), which hold the state at ``at`` when
    nothing changed the open tasks since — no open task created after it, none done after it,
    none rescheduled after it (else None: the tasks answer). Due before the day of ``at``:
    overdue; due that day: ``due_today(midnight, at)`` (the open tasks due then, from the
    tasks' due index) counts those due before ``at``."""
    from estafeta.domain.codes import EventType, TaskStatus
    from estafeta.history.models import Event
    from estafeta.tasks.models import Task

    if not _answers(cut):
        return None
    if (Task.objects.filter(status=TaskStatus.OPEN, created_at__gt=at).exists()
            or Task.objects.filter(done_at__gt=at).exists()
            or Event.objects.filter(type=EventType.TASK_RESCHEDULED, occurred_at__gt=at).exists()):
        return None
    day = at.astimezone(company_tz()).date()
    people = people_of(cut)
    qs = MonthCell.objects.filter(figure="TASK", month=NOW)
    qs = qs.filter(person__in=sorted(people)) if people is not None else qs.filter(person__gte=0)
    counts: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0])
    for r in qs.values("person", "keys").order_by().annotate(
            n=Sum("v0"), late=Sum(Case(When(since__lt=day, then=F("v0")), default=Value(0),
                                       output_field=IntegerField()))):
        row = counts[(json.loads(r["keys"])[0], r["person"] or None)]
        row[0] += int(r["n"] or 0)
        row[1] += int(r["late"] or 0)
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=company_tz())
    today = due_today(midnight, at)
    if people is not None:
        today = today.filter(assignee_id__in=sorted(people))
    for pipeline, assignee, n in today.values_list("ticket__pipeline__code", "assignee_id"
                                                   ).order_by().annotate(n=Count("pk")):
        counts[(pipeline, assignee)][1] += n
    return [{"pipeline": p, "assignee": a, "open_tasks": n, "overdue": late}
            for (p, a), (n, late) in counts.items() if n]
