"""K9 time in stage, in business time (docs/analytics-timing.md has the definitions).

A *stay* is one ``StageVisit`` of an open (non-terminal) stage. Its length is the business time
between entering and leaving it, read through the calendar of the ticket's pipeline version
(``calendar_for(version).between(entered_at, closed_at)``): nights, weekends, holidays and the
lunch break do not count. A paused stay (waiting for the client) counts whole: the pause stops
the SLA clock, not the time the ticket spends in the stage.

- Closed stays: those that ended in the period; the median and the 80th percentile per stage.
- Open stays: those still open at the moment ``at`` (the end of the period, or now if sooner),
  each with its age so far; reported apart, never mixed into the percentiles.
- Stuck: open stays past their SLA due time (the visit's own ``sla_due_at``, which a pause
  moves on) or older than ``stuck_after`` business time.

Cut: ``seller``/``team`` is the stay's executor (who ran the stage) and their team; pipeline,
channel, segment and territory as in ``figures``. Void tickets count nowhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from estafeta.calendars.selectors import calendar_for
from estafeta.core import clock
from estafeta.domain.calendar import BusinessCalendar
from estafeta.domain.codes import StageSemantic, TicketStatus
from estafeta.pipelines.models import PipelineVersion
from estafeta.tickets.models import StageVisit

from .figures import Fact, Table, _person_filter, _ticket_filter
from .period import Cut, Period

KEYS = ("pipeline", "stage", "executor")


def median(values: list[timedelta]) -> timedelta | None:
    """The middle value; with an even count the mean of the two middle ones."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[timedelta], share: float) -> timedelta | None:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it
    (the 80th percentile of 5 stays is the 4th shortest, of 10 stays the 8th)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(round(share * len(ordered), 9)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stuck:
    ticket: int
    pipeline: str
    stage: str
    executor: int | None
    entered_at: datetime
    age: timedelta
    sla_due_at: datetime | None
    why: str  # "sla" (past its SLA due time) or "age" (older than stuck_after)


@dataclass(frozen=True)
class TimeInStage:
    """``closed``: one fact per stay that ended in the period (``stays``, ``seconds`` of
    business time); ``open``: one fact per stay open at ``at`` (``stays``, ``age_seconds``);
    ``stuck``: the open stays past their SLA or older than ``stuck_after``."""

    period: Period
    cut: Cut
    at: datetime
    closed: Table
    open: Table
    stuck: tuple[Stuck, ...]

    def durations(self, **cell: Any) -> list[timedelta]:
        return [timedelta(seconds=float(f.values["seconds"])) for f in self.closed.facts
                if all(f.keys[k] == v for k, v in cell.items())]

    def rows(self) -> list[dict[str, Any]]:
        """A row per pipeline and stage: closed stays with median and p80, open stays with the
        oldest age, and how many are stuck."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.closed.rollup("pipeline", "stage"):
            out[(row["pipeline"], row["stage"])] = {"pipeline": row["pipeline"],
                                                    "stage": row["stage"]}
        for row in self.open.rollup("pipeline", "stage"):
            out.setdefault((row["pipeline"], row["stage"]),
                           {"pipeline": row["pipeline"], "stage": row["stage"]})
        rows = []
        for (pipeline, stage), row in sorted(out.items()):
            spans = self.durations(pipeline=pipeline, stage=stage)
            ages = [timedelta(seconds=float(f.values["age_seconds"])) for f in self.open.facts
                    if f.keys["pipeline"] == pipeline and f.keys["stage"] == stage]
            row.update(closed=len(spans), median=median(spans), p80=percentile(spans, 0.8),
                       open=len(ages), oldest_open=max(ages) if ages else None,
                       stuck=sum(1 for s in self.stuck
                                 if s.pipeline == pipeline and s.stage == stage))
            rows.append(row)
        return rows


def _calendars(version_ids: set[int]) -> dict[int, BusinessCalendar]:
    return {v.pk: calendar_for(v) for v in PipelineVersion.objects.filter(pk__in=version_ids)}


def _visits(cut: Cut) -> Any:
    return (StageVisit.objects
            .filter(stage__semantic=StageSemantic.OPEN)
            .exclude(ticket__status=TicketStatus.VOID)
            .filter(_person_filter(cut, "executor"), _ticket_filter(cut, "ticket__")))


def k9_time_in_stage(period: Period, cut: Cut, *, at: datetime | None = None,
                     stuck_after: timedelta | None = None) -> TimeInStage:
    """Time in stage for the period and cut; open stays and stuck tickets as of ``at``
    (default: the end of the period, or now when the period has not ended)."""
    moment = at or min(clock.now(), period.end)
    fields = ("pk", "ticket_id", "ticket__version_id", "ticket__pipeline__code", "stage__code",
              "executor_id", "entered_at", "closed_at", "sla_due_at", "paused_at", "sla_left")
    closed_rows = list(_visits(cut)
                       .filter(closed_at__gte=period.start, closed_at__lt=period.end)
                       .values_list(*fields))
    open_rows = list(_visits(cut)
                     .filter(Q(closed_at__isnull=True) | Q(closed_at__gt=moment),
                             entered_at__lte=moment)
                     .values_list(*fields))
    calendars = _calendars({r[2] for r in closed_rows} | {r[2] for r in open_rows})

    closed = []
    for _, ticket, version, pipeline, stage, executor, entered, left, *_rest in closed_rows:
        span = calendars[version].between(entered, left)
        closed.append(Fact(ticket, {"pipeline": pipeline, "stage": stage, "executor": executor},
                           {"stays": 1, "seconds": int(span.total_seconds())}))

    still, stuck = [], []
    for (_, ticket, version, pipeline, stage, executor, entered, left, due, paused,
         left_when_paused) in open_rows:
        age = calendars[version].between(entered, moment)
        still.append(Fact(ticket, {"pipeline": pipeline, "stage": stage, "executor": executor},
                          {"stays": 1, "age_seconds": int(age.total_seconds())}))
        # The SLA test reads the visit as it is now: a stay that closed after ``at`` is not
        # paused any more and its due time is final.
        past_due = ((due is not None and due <= moment)
                    or (left is None and paused is not None and left_when_paused is not None
                        and left_when_paused <= timedelta()))
        why = "sla" if past_due else ("age" if stuck_after is not None and age >= stuck_after
                                      else "")
        if why:
            stuck.append(Stuck(ticket, pipeline, stage, executor, entered, age, due, why))
    stuck.sort(key=lambda s: (-s.age, s.ticket))
    return TimeInStage(
        period, cut, moment,
        Table("K9", "business seconds", period, cut, KEYS, ("stays", "seconds"), tuple(closed)),
        Table("K9 open", "business seconds", period, cut, KEYS, ("stays", "age_seconds"),
              tuple(still)),
        tuple(stuck))
