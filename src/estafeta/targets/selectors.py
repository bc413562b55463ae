"""Reads of targets: the current target per object and period (the latest set), the history."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from .models import Target


def targets_current(kinds: tuple[str, ...], first: date, last: date) -> list[Target]:
    """The targets in force for ``kinds`` whose period lies within ``first`` .. ``last``: of
    several rows for the same object and period, the latest set (the others are superseded)."""
    rows = (Target.objects.filter(kind__in=kinds, period_start__gte=first, period_end__lte=last)
            .order_by("created_at", "pk"))
    latest: dict[tuple[str, str, date, date], Target] = {}
    for row in rows:
        latest[(row.kind, row.ref, row.period_start, row.period_end)] = row
    return sorted(latest.values(), key=lambda t: (t.kind, t.ref, t.period_start, t.period_end))


def target_history(kind: str, ref: str, first: date, last: date) -> QuerySet[Target]:
    """Every target set for one object and period, latest (the one in force) first."""
    return (Target.objects.filter(kind=kind, ref=ref, period_start=first, period_end=last)
            .select_related("created_by").order_by("-created_at", "-pk"))
