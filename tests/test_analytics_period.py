"""Periods and cuts of the analytics figures: parsing, edges in the company time zone, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from estafeta.analytics.period import Cut, Period
from estafeta.domain.errors import BadInput


def test_month_is_half_open_in_company_time() -> None:
    period = Period.parse("2026-11")
    # Moscow is UTC+3: November begins at 21:00 UTC on 31 October.
    assert period.start == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    assert period.contains(datetime(2026, 11, 30, 20, 30, tzinfo=UTC))  # 23:30 Moscow, 30 Nov
    assert not period.contains(datetime(2026, 11, 30, 21, 0, tzinfo=UTC))  # 00:00, 1 Dec
    assert period.contains(datetime(2026, 10, 31, 21, 0, tzinfo=UTC))
    assert not period.contains(datetime(2026, 10, 31, 20, 59, 59, tzinfo=UTC))
    assert (period.kind, period.label) == ("month", "2026-11")


@pytest.mark.parametrize(("text", "first", "last", "label"), [
    ("2026-W48", date(2026, 11, 23), date(2026, 11, 29), "2026-W48"),
    ("2026-w01", date(2025, 12, 29), date(2026, 1, 4), "2026-W01"),
    ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), "2026-Q4"),
    ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31), "2026-Q1"),
    ("2026", date(2026, 1, 1), date(2026, 12, 31), "2026"),
    ("2028-02", date(2028, 2, 1), date(2028, 2, 29), "2028-02"),
    (" 2026-12 ", date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
    ("2026-11-01..2026-11-15", date(2026, 11, 1), date(2026, 11, 15), "2026-11-01..2026-11-15"),
    ("2026-11-05..2026-11-05", date(2026, 11, 5), date(2026, 11, 5), "2026-11-05..2026-11-05"),
])
def test_parse(text: str, first: date, last: date, label: str) -> None:
    period = Period.parse(text)
    assert (period.first, period.last, period.label) == (first, last, label)
    assert Period.parse(period.label) == period


@pytest.mark.parametrize("text", [
    "", "2026-13", "2026-00", "2026-W54", "2026-W00", "2026-Q5", "2026-Q0", "26-11", "1999",
    "2026-02-30..2026-03-01", "2026-11-15..2026-11-01", "november", "2026-11-01", None, 202611,
])
def test_bad_periods_are_refused(text: object) -> None:
    with pytest.raises(BadInput) as refused:
        Period.parse(text)
    assert refused.value.code == "bad_period"


def test_previous() -> None:
    assert Period.parse("2026-01").previous() == Period.parse("2025-12")
    assert Period.parse("2026-Q1").previous() == Period.parse("2025-Q4")
    assert Period.parse("2026-W01").previous() == Period.parse("2025-W52")
    assert Period.parse("2026").previous() == Period.parse("2025")
    assert (Period.parse("2026-11-11..2026-11-20").previous()
            == Period.parse("2026-11-01..2026-11-10"))
    # whole months: as many months before, whatever their lengths (a leap day included)
    assert (Period.parse("2024-03-01..2025-02-28").previous()
            == Period.parse("2023-03-01..2024-02-29"))
    assert (Period.parse("2026-12-01..2027-01-31").previous()
            == Period.parse("2026-10-01..2026-11-30"))
    assert (Period.parse("2026-02-01..2026-02-28").previous()
            == Period.parse("2026-01-01..2026-01-31"))


def test_cut_parses_and_checks(world) -> None:  # type: ignore[no-untyped-def]
    cut = Cut.parse({"seller": str(world.ann.pk), "team": world.sales.pk, "pipeline": "sales",
                     "channel": "phone", "segment": ""})
    assert cut == Cut(seller=world.ann.pk, team=world.sales.pk, pipeline="sales",
                      channel="phone")
    assert cut.as_dict() == {"seller": world.ann.pk, "team": world.sales.pk,
                             "pipeline": "sales", "channel": "phone"}
    assert Cut.parse() == Cut()


@pytest.mark.parametrize(("data", "code", "field"), [
    ({"seller": "x"}, "bad_cut", "seller"),
    ({"seller": -1}, "bad_cut", "seller"),
    ({"team": True}, "bad_cut", "team"),
    ({"channel": "pigeon"}, "bad_cut", "channel"),
    ({"colour": "red"}, "bad_cut", "colour"),
    ({"seller": 999999}, "unknown_cut", "seller"),
    ({"team": 999999}, "unknown_cut", "team"),
    ({"pipeline": "nope"}, "unknown_cut", "pipeline"),
    ({"segment": "nope"}, "unknown_cut", "segment"),
    ({"territory": "nope"}, "unknown_cut", "territory"),
])
def test_bad_cuts_are_refused(world, data: dict, code: str, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput) as refused:
        Cut.parse(data)
    assert (refused.value.code, refused.value.params["field"]) == (code, field)
