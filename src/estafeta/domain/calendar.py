"""Business time: working hours, days off and moved working days, and deadline arithmetic.

Every input and output is an aware datetime; results are in UTC. Local time exists only inside
this module: a day's working intervals are laid on the calendar's zone and turned into UTC
instants, so a working interval on a DST day lasts exactly as long as it really does and the
arithmetic itself is plain subtraction of instants.

``Duration`` units mean: ``d`` = working days (the same local time N working days later,
moved to the next working moment if that time is not working there), ``h``/``m`` = business
minutes (counted only inside working intervals; lunch is a gap between intervals).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .durations import Duration
from .errors import BadInput

Interval = tuple[time, time]
Intervals = tuple[Interval, ...]

# A calendar without a single working day in this many days is a configuration error, not a
# reason to loop forever.
HORIZON_DAYS = 3660
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEK_TEXT = "mon-fri 09:00-13:00 14:00-18:00"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("business time needs aware datetimes")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    week: Mapping[int, Intervals]
    days_off: frozenset[date] = frozenset()
    working_days: Mapping[date, Intervals] = field(default_factory=dict)

    # --- days ----------------------------------------------------------------------------

    def intervals_on(self, day: date) -> Intervals:
        """Working intervals of a local date: an explicit working day wins over a day off,
        which wins over the weekly rule."""
        if day in self.working_days:
            return self.working_days[day]
        if day in self.days_off:
            return ()
        return self.week.get(day.weekday(), ())

    def is_working_day(self, day: date) -> bool:
        return bool(self.intervals_on(day))

    def _windows_of(self, day: date) -> list[tuple[datetime, datetime]]:
        out = []
        for start, end in self.intervals_on(day):
            a = datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC)
            b = datetime.combine(day, end, tzinfo=self.zone).astimezone(UTC)
            if b > a:
                out.append((a, b))
        return out

    def _windows(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """UTC working windows from the local day of ``moment`` on (including ones already
        over: callers skip them)."""
        day = moment.astimezone(self.zone).date()
        for offset in range(HORIZON_DAYS):
            yield from self._windows_of(day + timedelta(days=offset))
        raise ValueError(f"no working time within {HORIZON_DAYS} days of {moment.isoformat()}")

    # --- moments -------------------------------------------------------------------------

    def is_working(self, moment: datetime) -> bool:
        moment = _aware(moment)
        day = moment.astimezone(self.zone).date()
        return any(a <= moment < b for a, b in self._windows_of(day))

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself when it is working time, else the start of the next interval."""
        moment = _aware(moment)
        for a, b in self._windows(moment):
            if b > moment:
                return max(a, moment)
        raise AssertionError("unreachable")  # pragma: no cover - _windows raises first

    def add_minutes(self, moment: datetime, minutes: int) -> datetime:
        """The moment when ``minutes`` of business time have passed since ``moment``.

        A deadline that uses up an interval exactly ends at its end (18:00, not 09:00 the next
        morning)."""
        return self.add_time(moment, timedelta(minutes=minutes))

    def add_time(self, moment: datetime, business: timedelta) -> datetime:
        """``add_minutes`` for any amount of business time (seconds count too)."""
        moment = _aware(moment)
        if business < timedelta():
            raise ValueError("business time cannot be negative")
        if not business:
            return moment
        left = business
        for a, b in self._windows(moment):
            if b <= moment:
                continue
            start = max(a, moment)
            if left <= b - start:
                return start + left
            left -= b - start
        raise AssertionError("unreachable")  # pragma: no cover

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """The same local time ``days`` working days later, counted from the next working
        moment; moved on to the next working moment if that time is not working there."""
        moment = self.next_working_moment(moment)
        if days <= 0:
            return moment
        local = moment.astimezone(self.zone)
        day = local.date()
        for _ in range(HORIZON_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                days -= 1
                if days == 0:
                    target = datetime.combine(day, local.time().replace(tzinfo=None),
                                              tzinfo=self.zone)
                    return self.next_working_moment(target)
        raise ValueError(f"no working day within {HORIZON_DAYS} days")

    def add(self, moment: datetime, duration: Duration) -> datetime:
        """``moment`` plus a written duration: working days first, then business minutes."""
        result = _aware(moment)
        if duration.days:
            result = self.add_working_days(result, duration.days)
        minutes = duration.hours * 60 + duration.minutes
        if minutes:
            result = self.add_minutes(result, minutes)
        return result

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time inside ``[start, end)``; zero when ``end`` is not after ``start``."""
        start, end = _aware(start), _aware(end)
        total = timedelta()
        if end <= start:
            return total
        for a, b in self._windows(start):
            if a >= end:
                break
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += hi - lo
        return total

    def sla(self, start: datetime, target: Duration, risk_share: float
            ) -> tuple[datetime, datetime]:
        """(due, at risk) of a target entered at ``start``: due after the target in business
        time; at risk once ``risk_share`` of the business time up to due has passed."""
        due = self.add(start, target)
        total = self.between(start, due)
        share = min(max(risk_share, 0.0), 1.0)
        risk = self.add_time(start, timedelta(seconds=int(total.total_seconds() * share)))
        return due, risk

    def with_zone(self, zone: ZoneInfo) -> BusinessCalendar:
        """The same rules read in another zone (a pipeline's own time zone)."""
        return BusinessCalendar(zone=zone, week=self.week, days_off=self.days_off,
                                working_days=self.working_days)


# --- configuration text --------------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_time(text: str) -> time:
    match = _TIME.match(text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise BadInput(f"{text!r} is not a time like 09:00", code="bad_time")
    return time(int(match[1]), int(match[2]))


def parse_intervals(text: str) -> Intervals:
    """``"09:00-13:00 14:00-18:00"`` (spaces or commas between intervals), in order, not
    overlapping."""
    out: list[Interval] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        if part.count("-") != 1:
            raise BadInput(f"{part!r} is not an interval like 09:00-13:00", code="bad_interval")
        start, end = (parse_time(x) for x in part.split("-"))
        if end <= start:
            raise BadInput(f"{part!r} ends before it starts", code="bad_interval")
        if out and start < out[-1][1]:
            raise BadInput(f"{part!r} overlaps the interval before it", code="bad_interval")
        out.append((start, end))
    if not out:
        raise BadInput("give at least one interval like 09:00-18:00", code="bad_interval")
    return tuple(out)


def _days(text: str) -> list[int]:
    text = text.strip().lower()
    if "-" in text:
        first, last = (_days(x)[0] for x in text.split("-", 1))
        if last < first:
            raise BadInput(f"{text!r}: a day range goes forward, like mon-fri", code="bad_week")
        return list(range(first, last + 1))
    if text not in _DAY_NAMES:
        raise BadInput(f"{text!r} is not a weekday (mon, tue, ..., sun)", code="bad_week")
    return [_DAY_NAMES.index(text)]


def parse_week(text: str) -> dict[int, Intervals]:
    """Working hours by weekday: ``"mon-thu 09:00-13:00 14:00-18:00; fri 09:00-16:45"``.

    Days not named are days off; a day named twice takes the later line."""
    week: dict[int, Intervals] = {}
    for line in text.split(";"):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        intervals = parse_intervals(rest)
        for part in head.split(","):
            for day in _days(part):
                week[day] = intervals
    if not week:
        raise BadInput("working hours name no day", code="bad_week")
    return week
