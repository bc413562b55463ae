"""The business calendar: pure arithmetic (table-driven, no database), then the company calendar
built from settings, Russian public holidays and the admins' calendar days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from estafeta.calendars.models import CalendarDay
from estafeta.calendars.selectors import calendar_days, company_calendar
from estafeta.calendars.services import calendar_day_set
from estafeta.domain.calendar import BusinessCalendar, parse_intervals, parse_week
from estafeta.domain.durations import Duration
from estafeta.domain.errors import BadInput, Forbidden
from estafeta.history.models import Event

from . import factories

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
WEEK = parse_week("mon-fri 09:00-13:00 14:00-18:00")

# Moscow, December 2026 to January 2027: Thu 31 Dec and 1-8 Jan are days off (as in the
# Russian calendar), Sat 9 Jan 2027 is made a short working day for the test.
MOSCOW = BusinessCalendar(
    zone=MSK, week=WEEK,
    days_off=frozenset({date(2026, 12, 31), *(date(2027, 1, d) for d in range(1, 9))}),
    working_days={date(2027, 1, 9): ((time(10), time(15)),)},
)
BERLIN_CAL = BusinessCalendar(zone=BERLIN, week=WEEK)


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


def ber(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# Wed 2 Dec 2026 is a normal working day; Sat 5 and Sun 6 Dec are the weekend.
ADD = [
    ("inside the morning", MOSCOW, msk(2026, 12, 2, 10), "2h", msk(2026, 12, 2, 12)),
    ("over lunch", MOSCOW, msk(2026, 12, 2, 12), "2h", msk(2026, 12, 2, 15)),
    ("ending exactly at lunch", MOSCOW, msk(2026, 12, 2, 10), "3h", msk(2026, 12, 2, 13)),
    ("started at lunch", MOSCOW, msk(2026, 12, 2, 13, 30), "30m", msk(2026, 12, 2, 14, 30)),
    ("to the end of the day", MOSCOW, msk(2026, 12, 2, 10), "7h", msk(2026, 12, 2, 18)),
    ("into the next day", MOSCOW, msk(2026, 12, 2, 17), "2h", msk(2026, 12, 3, 10)),
    ("started at night", MOSCOW, msk(2026, 12, 2, 23), "1h", msk(2026, 12, 3, 10)),
    ("started before work", MOSCOW, msk(2026, 12, 2, 6), "30m", msk(2026, 12, 2, 9, 30)),
    ("over the weekend", MOSCOW, msk(2026, 12, 4, 17), "2h", msk(2026, 12, 7, 10)),
    ("started on Saturday", MOSCOW, msk(2026, 12, 5, 12), "1h", msk(2026, 12, 7, 10)),
    ("one working day", MOSCOW, msk(2026, 12, 2, 10), "1d", msk(2026, 12, 3, 10)),
    ("a day from Friday", MOSCOW, msk(2026, 12, 4, 17), "1d", msk(2026, 12, 7, 17)),
    ("a day from Friday night", MOSCOW, msk(2026, 12, 4, 20), "1d", msk(2026, 12, 8, 9)),
    ("a day landing at lunch", MOSCOW, msk(2026, 12, 2, 13, 20), "1d", msk(2026, 12, 3, 14)),
    ("a day and hours", MOSCOW, msk(2026, 12, 2, 16), "1d 3h", msk(2026, 12, 4, 10)),
    ("five days = a week", MOSCOW, msk(2026, 12, 2, 10), "5d", msk(2026, 12, 9, 10)),
    ("zero", MOSCOW, msk(2026, 12, 5, 12), "0m", msk(2026, 12, 5, 12)),
    # Year end: 31 Dec and the New Year holidays are off, Sat 9 Jan works 10:00-15:00.
    ("over the year end", MOSCOW, msk(2026, 12, 30, 17), "2h", msk(2027, 1, 9, 11)),
    ("a day over the year end", MOSCOW, msk(2026, 12, 30, 11), "1d", msk(2027, 1, 9, 11)),
    ("moved day then Monday", MOSCOW, msk(2027, 1, 9, 14), "2h", msk(2027, 1, 11, 10)),
    ("a day after the moved day", MOSCOW, msk(2027, 1, 9, 14), "1d", msk(2027, 1, 11, 14)),
    ("a day to a short day's evening", MOSCOW, msk(2026, 12, 30, 17), "1d",
     msk(2027, 1, 11, 9)),
    # Berlin moves clocks on Sun 29 Mar and Sun 25 Oct 2026: business hours do not change.
    ("over spring DST", BERLIN_CAL, ber(2026, 3, 27, 17), "2h", ber(2026, 3, 30, 10)),
    ("over autumn DST", BERLIN_CAL, ber(2026, 10, 23, 17), "2h", ber(2026, 10, 26, 10)),
    ("a day over spring DST", BERLIN_CAL, ber(2026, 3, 27, 11), "1d", ber(2026, 3, 30, 11)),
    ("a day over autumn DST", BERLIN_CAL, ber(2026, 10, 23, 11), "1d", ber(2026, 10, 26, 11)),
]


@pytest.mark.parametrize(("case", "cal", "start", "duration", "expected"), ADD,
                         ids=[row[0] for row in ADD])
def test_adding_business_time(case: str, cal: BusinessCalendar, start: datetime,
                              duration: str, expected: datetime) -> None:
    result = cal.add(start, Duration.parse(duration))
    assert result == expected
    assert result.tzinfo is UTC


BETWEEN = [
    ("a morning", MOSCOW, msk(2026, 12, 2, 9), msk(2026, 12, 2, 13), timedelta(hours=4)),
    ("a whole day", MOSCOW, msk(2026, 12, 2, 0), msk(2026, 12, 3, 0), timedelta(hours=8)),
    ("lunch only", MOSCOW, msk(2026, 12, 2, 13), msk(2026, 12, 2, 14), timedelta()),
    ("a week", MOSCOW, msk(2026, 12, 7, 0), msk(2026, 12, 14, 0), timedelta(hours=40)),
    ("backwards", MOSCOW, msk(2026, 12, 3, 0), msk(2026, 12, 2, 0), timedelta()),
    ("the weekend", MOSCOW, msk(2026, 12, 4, 18), msk(2026, 12, 7, 9), timedelta()),
    ("the New Year holidays", MOSCOW, msk(2026, 12, 30, 18), msk(2027, 1, 11, 9),
     timedelta(hours=5)),
    ("Berlin's short night", BERLIN_CAL, ber(2026, 3, 27, 17), ber(2026, 3, 30, 10),
     timedelta(hours=2)),
    ("Berlin's long night", BERLIN_CAL, ber(2026, 10, 23, 17), ber(2026, 10, 26, 10),
     timedelta(hours=2)),
]


@pytest.mark.parametrize(("case", "cal", "start", "end", "expected"), BETWEEN,
                         ids=[row[0] for row in BETWEEN])
def test_business_time_between(case: str, cal: BusinessCalendar, start: datetime,
                               end: datetime, expected: timedelta) -> None:
    assert cal.between(start, end) == expected


NEXT = [
    ("working now", msk(2026, 12, 2, 10, 15), msk(2026, 12, 2, 10, 15), True),
    ("at opening", msk(2026, 12, 2, 9), msk(2026, 12, 2, 9), True),
    ("at closing", msk(2026, 12, 2, 18), msk(2026, 12, 3, 9), False),
    ("at lunch", msk(2026, 12, 2, 13, 5), msk(2026, 12, 2, 14), False),
    ("on Sunday", msk(2026, 12, 6, 12), msk(2026, 12, 7, 9), False),
    ("on a holiday", msk(2027, 1, 5, 12), msk(2027, 1, 9, 10), False),
    ("on the moved working Saturday", msk(2027, 1, 9, 12), msk(2027, 1, 9, 12), True),
]


@pytest.mark.parametrize(("case", "moment", "expected", "working"), NEXT,
                         ids=[row[0] for row in NEXT])
def test_next_working_moment(case: str, moment: datetime, expected: datetime,
                             working: bool) -> None:
    assert MOSCOW.next_working_moment(moment) == expected
    assert MOSCOW.is_working(moment) is working


def test_adding_then_measuring_gives_the_same_business_time() -> None:
    start = msk(2026, 12, 30, 11, 17)
    for minutes in (1, 59, 60, 239, 480, 481, 2000, 10000):
        end = MOSCOW.add_minutes(start, minutes)
        assert MOSCOW.between(start, end) == timedelta(minutes=minutes)


def test_naive_times_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        MOSCOW.add_minutes(datetime(2026, 12, 2, 10), 5)
    with pytest.raises(ValueError, match="negative"):
        MOSCOW.add_minutes(msk(2026, 12, 2, 10), -5)


def test_a_calendar_without_working_days_fails_instead_of_looping() -> None:
    with pytest.raises(ValueError, match="no working time"):
        BusinessCalendar(zone=MSK, week={}).add_minutes(msk(2026, 12, 2, 10), 5)


WEEKS = [
    ("mon-fri 09:00-18:00", {d: ((time(9), time(18)),) for d in range(5)}),
    ("mon-thu 09:00-13:00,14:00-18:00; fri 09:00-16:45",
     {**{d: ((time(9), time(13)), (time(14), time(18))) for d in range(4)},
      4: ((time(9), time(16, 45)),)}),
    ("sat,sun 10:00-14:00", {5: ((time(10), time(14)),), 6: ((time(10), time(14)),)}),
]


@pytest.mark.parametrize(("text", "expected"), WEEKS)
def test_working_hours_are_read_from_text(text: str, expected: dict[int, object]) -> None:
    assert parse_week(text) == expected


@pytest.mark.parametrize("text", ["", "mon", "fri-mon 09:00-18:00", "mon 18:00-09:00",
                                  "mon 09:00-13:00 12:00-18:00", "xyz 09:00-18:00",
                                  "mon 25:00-26:00", "mon 9-18"])
def test_bad_working_hours_are_refused(text: str) -> None:
    with pytest.raises(BadInput):
        parse_week(text)


def test_intervals_keep_their_order() -> None:
    assert parse_intervals("09:00-13:00, 14:00-18:00") == ((time(9), time(13)),
                                                           (time(14), time(18)))


# --- the company calendar --------------------------------------------------------------------

def test_the_company_calendar_knows_russian_holidays_and_moved_working_days(
        db: None, now: datetime) -> None:
    cal = company_calendar()
    assert cal.zone == MSK
    assert not cal.is_working_day(date(2026, 1, 9))  # moved from Sat 3 Jan
    assert not cal.is_working_day(date(2026, 12, 31))
    assert cal.is_working_day(date(2025, 11, 1))  # a Saturday that works, with usual hours
    assert cal.intervals_on(date(2025, 11, 1)) == ((time(9), time(13)), (time(14), time(18)))
    # Fri 8 May 2026 evening + 1h: 9 May is Saturday, 11 May its day off: Tuesday 12 May.
    assert cal.add(msk(2026, 5, 8, 17, 30), Duration.parse("1h")) == msk(2026, 5, 12, 9, 30)


def test_an_admin_sets_a_day_off_a_short_working_day_and_back(world: factories.World) -> None:
    assert company_calendar().is_working_day(date(2026, 12, 4))
    calendar_day_set(actor=world.admin, day=date(2026, 12, 4), kind="off", note="Stocktaking")
    assert not company_calendar().is_working_day(date(2026, 12, 4))
    row = calendar_day_set(actor=world.admin, day=date(2026, 12, 5), kind="working",
                           starts=time(10), ends=time(16))
    assert company_calendar().intervals_on(date(2026, 12, 5)) == ((time(10), time(13)),
                                                                  (time(14), time(16)))
    calendar_day_set(actor=world.admin, day=date(2026, 12, 4), kind="normal")
    assert company_calendar().is_working_day(date(2026, 12, 4))
    assert CalendarDay.objects.count() == 2  # kept, not deleted
    events = list(Event.objects.filter(stream__startswith="calendar_day:").order_by("pk"))
    assert [e.type for e in events] == ["calendar_day.set"] * 3
    assert events[1].stream == row.stream
    assert events[1].payload["after"] == {"kind": "working", "starts": "10:00",
                                          "ends": "16:00", "note": ""}
    assert [d.day for d in calendar_days(year=2026)] == [date(2026, 12, 4), date(2026, 12, 5)]


def test_setting_the_same_day_twice_writes_one_event(world: factories.World) -> None:
    for _ in range(2):
        calendar_day_set(actor=world.admin, day=date(2026, 12, 4), kind="off")
    assert Event.objects.filter(stream__startswith="calendar_day:").count() == 1


@pytest.mark.parametrize("who", ["head", "director", "ann", "operator"])
def test_only_admins_change_the_calendar(world: factories.World, who: str) -> None:
    with pytest.raises(Forbidden):
        calendar_day_set(actor=getattr(world, who), day=date(2026, 12, 4), kind="off")
    assert not CalendarDay.objects.exists()


@pytest.mark.parametrize(("kind", "starts", "ends"), [
    ("holiday", None, None), ("working", time(10), None), ("working", time(16), time(10))])
def test_bad_calendar_days_are_refused(world: factories.World, kind: str, starts: time | None,
                                       ends: time | None) -> None:
    with pytest.raises(BadInput):
        calendar_day_set(actor=world.admin, day=date(2026, 12, 4), kind=kind, starts=starts,
                         ends=ends)
    assert not CalendarDay.objects.exists()


SLA = [
    ("a morning's 4h", msk(2026, 12, 2, 10), "4h", msk(2026, 12, 2, 15),
     msk(2026, 12, 2, 14, 12)),
    ("two working days", msk(2026, 12, 4, 10), "2d", msk(2026, 12, 8, 10),
     msk(2026, 12, 7, 15, 48)),
    ("entered on Saturday", msk(2026, 12, 5, 10), "1h", msk(2026, 12, 7, 10),
     msk(2026, 12, 7, 9, 48)),
]


@pytest.mark.parametrize(("case", "start", "target", "due", "risk"), SLA,
                         ids=[row[0] for row in SLA])
def test_an_sla_is_due_after_its_business_time_and_at_risk_at_80_percent(
        case: str, start: datetime, target: str, due: datetime, risk: datetime) -> None:
    assert MOSCOW.sla(start, Duration.parse(target), 0.8) == (due, risk)


# --- the settings page -------------------------------------------------------------------------


def test_an_admin_marks_a_day_off_on_the_settings_page(world: factories.World, client: Any
                                                        ) -> None:
    client.force_login(world.admin)
    page = client.get("/settings/calendar/?year=2026")
    assert page.status_code == 200
    assert "31.12.2026" in page.content.decode()  # the public days off of the year
    done = client.post("/settings/calendar/day/", {"day": "2026-12-04", "kind": "off",
                                                   "note": "<b>Stocktaking</b>"})
    assert done.status_code == 302 and done["Location"] == "/settings/calendar/?year=2026"
    assert not company_calendar().is_working_day(date(2026, 12, 4))
    body = client.get("/settings/calendar/?year=2026").content.decode()
    assert "&lt;b&gt;Stocktaking&lt;/b&gt;" in body and "<b>Stocktaking" not in body


def test_a_refused_day_changes_nothing_and_says_why(world: factories.World, client: Any
                                                    ) -> None:
    client.force_login(world.admin)
    answer = client.post("/settings/calendar/day/", {"day": "2026-12-05", "kind": "working",
                                                     "starts": "16:00", "ends": "10:00"})
    assert answer.status_code == 400
    assert not CalendarDay.objects.exists()
    answer = client.post("/settings/calendar/day/", {"day": "not a date", "kind": "off"})
    assert answer.status_code == 400


def test_the_calendar_page_reads_a_fixed_number_of_queries(world: factories.World,
                                                           client: Any) -> None:
    client.force_login(world.admin)
    calendar_day_set(actor=world.admin, day=date(2026, 12, 4), kind="off")
    with CaptureQueriesContext(connection) as few:
        client.get("/settings/calendar/?year=2026")
    for day in range(5, 25):
        calendar_day_set(actor=world.admin, day=date(2026, 12, day), kind="off")
    with CaptureQueriesContext(connection) as many:
        client.get("/settings/calendar/?year=2026")
    assert len(many) == len(few)
