"""``/notifications/``: the person's in-app notifications (the bell's list); marking them read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from estafeta.accounts.models import User
from estafeta.notifications.selectors import inapp_for
from estafeta.notifications.services import notifications_mark_read

from .common import paginate, query_without


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    unread = request.GET.get("unread") == "1"
    page = paginate(request, inapp_for(user, unread=unread))
    return render(request, "web/notifications/list.html", {
        "section": "notifications", "page": page, "unread": unread,
        "query": query_without(request, "page"),
    })


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one (``id``) or all of the person's notifications read; others' ids match nothing."""
    user: User = request.user  # type: ignore[assignment]
    raw = request.POST.get("id", "")
    ids = [int(raw)] if raw.isdigit() and len(raw) < 19 else None
    if raw and ids is None:
        ids = []
    notifications_mark_read(actor=user, ids=ids)
    return redirect("web:notifications")


urlpatterns = [
    path("notifications/", notifications, name="notifications"),
    path("notifications/read/", notifications_read, name="notifications_read"),
]
