"""The control panel's count in the navigation bar: unacknowledged escalations on the tickets a
head or director sees, counted only if a page shows it (one COUNT over the partial index)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from estafeta.domain.codes import Role

from .models import Escalation


def unacknowledged_count(user: Any) -> int:
    from estafeta.tickets.access import tickets_visible_to

    qs = Escalation.objects.filter(acknowledged_at__isnull=True)
    if Role(user.role) is not Role.DIRECTOR:
        qs = qs.filter(ticket__in=tickets_visible_to(user).values("pk"))
    return qs.count()


def control(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(user, "role", None) not in (
            Role.HEAD, Role.DIRECTOR):
        return {}
    return {"control": SimpleLazyObject(lambda: {"unacknowledged": unacknowledged_count(user)})}
