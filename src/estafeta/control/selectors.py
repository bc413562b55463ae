"""Reads for the interfaces: a ticket's SLA clock and its escalation history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from estafeta.calendars.selectors import calendar_for

from .models import Escalation

if TYPE_CHECKING:
    from estafeta.tickets.models import StageVisit, Ticket


@dataclass(frozen=True)
class SlaClock:
    """The current stage's SLA in business time: ``state`` is on_time, at_risk, breached or
    paused; ``left`` the business time to the due moment (paused: what is kept), ``late`` the
    business time past it."""

    state: str
    due_at: datetime | None
    left: timedelta
    late: timedelta

    @staticmethod
    def _parts(value: timedelta) -> tuple[int, int]:
        minutes = int(value.total_seconds() // 60)
        return minutes // 60, minutes % 60

    @property
    def left_hm(self) -> tuple[int, int]:
        return self._parts(self.left)

    @property
    def late_hm(self) -> tuple[int, int]:
        return self._parts(self.late)


def sla_clock(ticket: Ticket, visit: StageVisit | None, now: datetime) -> SlaClock | None:
    """``None`` when the ticket is closed or its stage has no SLA target."""
    if visit is None or not ticket.is_open:
        return None
    if visit.paused_at is not None:
        if visit.sla_left is None:
            return None
        return SlaClock("paused", None, visit.sla_left, timedelta())
    if visit.sla_due_at is None:
        return None
    calendar = calendar_for(ticket.version)
    if now >= visit.sla_due_at:
        return SlaClock("breached", visit.sla_due_at, timedelta(),
                        calendar.between(visit.sla_due_at, now))
    state = "at_risk" if visit.sla_risk_at is not None and now >= visit.sla_risk_at \
        else "on_time"
    return SlaClock(state, visit.sla_due_at, calendar.between(now, visit.sla_due_at),
                    timedelta())


def ticket_escalations(ticket: Ticket) -> list[Escalation]:
    """Every escalation of the ticket, newest first (one query)."""
    return list(Escalation.objects.filter(ticket=ticket)
                .select_related("recipient", "acknowledged_by", "task")
                .order_by("-decided_at", "-pk"))
