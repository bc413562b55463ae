"""What a figure is asked about: a ``Period`` (half-open, company time zone) and a ``Cut``.

``Period.parse`` reads "2026-11" (month), "2026-W48" (ISO week), "2026-Q4" (quarter), "2026"
(year) and "2026-11-01..2026-11-15" (two dates, both days included). ``Cut`` narrows a figure
to a seller, team, pipeline, segment, territory and/or channel. Bad input raises ``BadInput``
with a stable code and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from estafeta.domain.codes import Channel
from estafeta.domain.errors import BadInput

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)
_QUARTER = re.compile(r"^(\d{4})-Q(\d)$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")

MIN_YEAR, MAX_YEAR = 2000, 2999


def company_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _bad(text: str) -> BadInput:
    return BadInput(f"{text!r} is not a period: use 2026-11, 2026-W48, 2026-Q4, 2026 or "
                    "2026-11-01..2026-11-15", code="bad_period", value=text)


def _year(text: str, raw: str) -> int:
    year = int(raw)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _bad(text)
    return year


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Local days ``first`` .. ``last`` inclusive, i.e. the instants [start, end) where start is
    midnight of ``first`` and end midnight after ``last``, in the company time zone."""

    kind: str  # day_range, week, month, quarter, year
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise BadInput(f"the period ends ({self.last}) before it begins ({self.first})",
                           code="bad_period", value=f"{self.first}..{self.last}")

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: Any) -> Period:
        if not isinstance(text, str):
            raise _bad(str(text))
        value = text.strip()
        try:
            if m := _MONTH.match(value):
                month = int(m[2])
                if not 1 <= month <= 12:
                    raise _bad(text)
                return cls.month(_year(text, m[1]), month)
            if m := _WEEK.match(value):
                first = date.fromisocalendar(_year(text, m[1]), int(m[2]), 1)
                return cls("week", first, first + timedelta(days=6))
            if m := _QUARTER.match(value):
                quarter = int(m[2])
                if not 1 <= quarter <= 4:
                    raise _bad(text)
                first = date(_year(text, m[1]), 3 * quarter - 2, 1)
                return cls("quarter", first, _add_months(first, 3) - timedelta(days=1))
            if m := _YEAR.match(value):
                year = _year(text, m[1])
                return cls("year", date(year, 1, 1), date(year, 12, 31))
            if m := _RANGE.match(value):
                first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
                _year(text, str(first.year))
                _year(text, str(last.year))
                return cls.days(first, last)
        except ValueError:  # a week 54, a 31st of February...
            raise _bad(text) from None
        raise _bad(text)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = date(year, month, 1)
        return cls("month", first, _add_months(first, 1) - timedelta(days=1))

    @classmethod
    def days(cls, first: date, last: date) -> Period:
        """Two dates, both included."""
        return cls("day_range", first, last)

    # --- instants ----------------------------------------------------------------------------

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=company_tz())

    @property
    def end(self) -> datetime:
        """The first instant after the period (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=company_tz())

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "quarter":
            return f"{self.first.year}-Q{(self.first.month + 2) // 3}"
        if self.kind == "year":
            return str(self.first.year)
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def __str__(self) -> str:
        return self.label

    def previous(self) -> Period:
        """The period of the same kind just before (a day range: as many days before, or as
        many whole months before when it is whole months, e.g. 2026-01-01..2026-12-31)."""
        if self.kind == "week":
            return Period("week", self.first - timedelta(days=7), self.first - timedelta(days=1))
        months = {"month": 1, "quarter": 3, "year": 12}.get(self.kind)
        if months is not None:
            return Period(self.kind, _add_months(self.first, -months),
                          self.first - timedelta(days=1))
        after = self.last + timedelta(days=1)
        if self.first.day == 1 and after.day == 1:
            count = (after.year - self.first.year) * 12 + after.month - self.first.month
            return Period.days(_add_months(self.first, -count), self.first - timedelta(days=1))
        length = (self.last - self.first).days + 1
        return Period.days(self.first - timedelta(days=length), self.first - timedelta(days=1))


CUT_FIELDS = ("seller", "team", "pipeline", "segment", "territory", "channel")


def _positive_id(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise BadInput(f"{name} must be a positive id, not {value!r}", code="bad_cut",
                       field=name, value=str(value))
    return number


def _code(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise BadInput(f"{name} must be a code, not {value!r}", code="bad_cut", field=name,
                       value=str(value))
    return value.strip()


@dataclass(frozen=True)
class Cut:
    """Filters that narrow a figure; ``None`` means everyone/everything.

    ``seller`` is a user id: for activities the performer, for pipeline results the owner at
    the time of the event. ``team`` is a team id: that person's team. ``pipeline``, ``segment``,
    ``territory`` are codes and ``channel`` a channel code (docs/analytics.md says which moment
    each is read at).
    """

    seller: int | None = None
    team: int | None = None
    pipeline: str | None = None
    segment: str | None = None
    territory: str | None = None
    channel: str | None = None

    @classmethod
    def parse(cls, data: Any = None, **kwargs: Any) -> Cut:
        """From a mapping (query string, CLI options) or keywords; checks every value and that
        the named seller, team, pipeline, segment and territory exist."""
        values = dict(data or {}, **kwargs)
        unknown = sorted(set(values) - set(CUT_FIELDS))
        if unknown:
            raise BadInput(f"unknown filter {unknown[0]!r}; use {', '.join(CUT_FIELDS)}",
                           code="bad_cut", field=unknown[0], value="")
        channel = _code("channel", values.get("channel"))
        if channel is not None and channel not in {c.value for c in Channel}:
            raise BadInput(f"{channel!r} is not a channel", code="bad_cut", field="channel",
                           value=channel)
        cut = cls(seller=_positive_id("seller", values.get("seller")),
                  team=_positive_id("team", values.get("team")),
                  pipeline=_code("pipeline", values.get("pipeline")),
                  segment=_code("segment", values.get("segment")),
                  territory=_code("territory", values.get("territory")), channel=channel)
        cut._check_exists()
        return cut

    def _check_exists(self) -> None:
        from estafeta.accounts.models import Team, User
        from estafeta.clients.models import Segment, Territory
        from estafeta.pipelines.models import Pipeline

        checks: list[tuple[str, Any, Any]] = [
            ("seller", self.seller, User.objects.filter(pk=self.seller or 0)),
            ("team", self.team, Team.objects.filter(pk=self.team or 0)),
            ("pipeline", self.pipeline, Pipeline.objects.filter(code=self.pipeline)),
            ("segment", self.segment, Segment.objects.filter(code=self.segment)),
            ("territory", self.territory, Territory.objects.filter(code=self.territory)),
        ]
        for name, value, query in checks:
            if value is not None and not query.exists():
                raise BadInput(f"there is no {name} {value!r}", code="unknown_cut", field=name,
                               value=str(value))

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CUT_FIELDS
                if getattr(self, name) is not None}


EVERYTHING = Cut()
