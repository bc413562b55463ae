"""Reads of the outbox: a person's in-app notifications and the failures admins look at."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from estafeta.accounts.models import User

from .models import Notification


def _inapp(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user, channel="inapp", status="sent")


def unread_count(user: User) -> int:
    return _inapp(user).filter(read_at__isnull=True).count()


def inapp_for(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    """The person's delivered in-app notifications, newest first, with their tickets; those
    about a ticket they may no longer see are left out (one query, whatever the rows)."""
    from estafeta.tickets.access import tickets_visible_to

    rows = _inapp(user).filter(Q(ticket__isnull=True)
                               | Q(ticket__in=tickets_visible_to(user).values("pk")))
    if unread:
        rows = rows.filter(read_at__isnull=True)
    return rows.select_related("ticket").order_by("-created_at", "-pk")


def failed() -> QuerySet[Notification]:
    return Notification.objects.filter(status="failed").order_by("-created_at", "-pk")
