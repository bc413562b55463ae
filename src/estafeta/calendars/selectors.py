"""The company's business calendar: weekly hours from settings, public holidays and moved
working days from the ``holidays`` package, and the admins' calendar days on top.

Built once per process and zone, then kept for ``CACHE_SECONDS`` (other processes, such as the
worker, see an admin's change within that time; the process that made it at once).
"""

from __future__ import annotations

import threading
import time as _time
from datetime import date, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import QuerySet

from estafeta.core import clock
from estafeta.domain.calendar import BusinessCalendar, Intervals, parse_week

from .models import CalendarDay, DayKind

if TYPE_CHECKING:
    from estafeta.pipelines.models import PipelineVersion

CACHE_SECONDS = 300
FIRST_YEAR = 2000
YEARS_AHEAD = 10

_lock = threading.Lock()
_cache: dict[str, tuple[float, BusinessCalendar]] = {}


def clear_calendar_cache() -> None:
    with _lock:
        _cache.clear()


def company_calendar() -> BusinessCalendar:
    """The calendar in the company's zone (``TIME_ZONE``)."""
    return _calendar(str(settings.TIME_ZONE))


def calendar_for(version: PipelineVersion) -> BusinessCalendar:
    """The calendar a pipeline version's deadlines use: its own ``time_zone`` or the company's."""
    zone = version.spec.get("time_zone") if isinstance(version.spec, dict) else None
    return _calendar(str(zone or settings.TIME_ZONE))


def _calendar(zone: str) -> BusinessCalendar:
    now = _time.monotonic()
    with _lock:
        hit = _cache.get(zone)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    calendar = _build(zone)
    with _lock:
        _cache[zone] = (now, calendar)
    return calendar


def standard_day(week: dict[int, Intervals]) -> Intervals:
    """The hours of a usual working day (the first working weekday's): what a moved or extra
    working day gets."""
    for weekday in range(7):
        if week.get(weekday):
            return week[weekday]
    return ()


def clip(intervals: Intervals, starts: time | None, ends: time | None) -> Intervals:
    """A standard day cut to ``[starts, ends)``: a short day keeps its lunch break."""
    if starts is None and ends is None:
        return intervals
    lo, hi = starts or time.min, ends or time.max
    out = [(max(a, lo), min(b, hi)) for a, b in intervals]
    kept = tuple((a, b) for a, b in out if a < b)
    if not kept and starts is not None and ends is not None and starts < ends:
        return ((starts, ends),)  # hours outside the usual day: take them as given
    return kept


def _public_days(years: range) -> tuple[set[date], set[date]]:
    """(public days off, weekend working days) of the configured country."""
    country = str(getattr(settings, "ESTAFETA_HOLIDAYS", "RU") or "")
    if not country:
        return set(), set()
    import holidays

    table = holidays.country_holidays(country, years=years)
    return set(table.keys()), set(getattr(table, "weekend_workdays", ()) or ())


def _build(zone_name: str) -> BusinessCalendar:
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone_name!r}") from None
    week = parse_week(str(getattr(settings, "ESTAFETA_WORK_HOURS", "")
                          or "mon-fri 09:00-13:00 14:00-18:00"))
    usual = standard_day(week)
    off, moved = _public_days(range(FIRST_YEAR, clock.now().year + YEARS_AHEAD + 1))
    working: dict[date, Intervals] = dict.fromkeys(moved, usual)
    for row in CalendarDay.objects.exclude(kind=DayKind.NORMAL).order_by("day"):
        if row.kind == DayKind.OFF:
            off.add(row.day)
            working.pop(row.day, None)
        else:
            working[row.day] = clip(usual, row.starts, row.ends)
    return BusinessCalendar(zone=zone, week=week, days_off=frozenset(off),
                            working_days=working)


def calendar_days(*, year: int | None = None) -> QuerySet[CalendarDay]:
    """The admins' calendar days (``normal`` ones too: they say who reverted what), by date."""
    rows = CalendarDay.objects.select_related("updated_by").order_by("day")
    if year is not None:
        rows = rows.filter(day__year=year)
    return rows


def public_days(year: int) -> list[tuple[date, str, bool]]:
    """The year's public days off and moved working days: (date, name, working), by date."""
    off, moved = _public_days(range(year, year + 1))
    country = str(getattr(settings, "ESTAFETA_HOLIDAYS", "RU") or "")
    names: dict[date, str] = {}
    if country:
        import holidays

        names = dict(holidays.country_holidays(country, years=year).items())
    rows = [(day, names.get(day, ""), False) for day in off]
    rows += [(day, "", True) for day in moved]
    return sorted(rows)
