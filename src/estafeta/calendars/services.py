"""Writes about the business calendar: an admin marks a date as a day off, a working day (with
its hours) or back to normal. One row per date, kept; every change is an event."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from django.db import transaction

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.core import clock
from estafeta.domain.codes import EventType, Role
from estafeta.domain.errors import BadInput
from estafeta.domain.policy import require_role
from estafeta.history.services import event_record

from .models import CalendarDay, DayKind
from .selectors import clear_calendar_cache

MAX_NOTE = 200


def calendar_day_set(*, actor: User | None, day: date, kind: str, starts: time | None = None,
                     ends: time | None = None, note: str = "") -> CalendarDay:
    """Mark ``day``: ``off``, ``working`` (``starts``/``ends`` cut the usual hours; without them
    the usual day) or ``normal`` (the weekly rule and public holidays apply again)."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change the calendar")
    try:
        kind_ = DayKind(kind)
    except ValueError:
        raise BadInput(f"{kind!r} is not a kind of day; use off, working or normal",
                       code="bad_day_kind") from None
    if not isinstance(day, date):
        raise BadInput("give a date", code="bad_date")
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        raise BadInput(f"the note is longer than {MAX_NOTE} characters", code="too_long")
    if kind_ != DayKind.WORKING:
        starts = ends = None
    elif (starts is None) != (ends is None) or (starts and ends and ends <= starts):
        raise BadInput("a working day's hours need a start before their end",
                       code="bad_interval")
    with transaction.atomic():
        row = CalendarDay.objects.select_for_update().filter(day=day).first()
        before: dict[str, Any] | None = None
        if row is None:
            row = CalendarDay(day=day)
        else:
            before = _facts(row)
        row.kind, row.starts, row.ends, row.note = kind_, starts, ends, note
        row.updated_at, row.updated_by = clock.now(), actor
        if before == _facts(row):
            return row
        row.save()
        event_record(stream=row.stream, type=EventType.CALENDAR_DAY_SET, actor=actor,
                     new_stream=before is None,
                     payload={"day": day.isoformat(), "before": before, "after": _facts(row)})
        clear_calendar_cache()
        transaction.on_commit(clear_calendar_cache)
    return row


def _facts(row: CalendarDay) -> dict[str, Any]:
    return {"kind": str(row.kind),
            "starts": row.starts.strftime("%H:%M") if row.starts else None,
            "ends": row.ends.strftime("%H:%M") if row.ends else None, "note": row.note}
