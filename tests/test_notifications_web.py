"""The bell, /notifications/, /api/v1/notifications/, the admin's view of failures and the heads'
daily digest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.notifications.models import Notification, WebhookEndpoint
from estafeta.notifications.services import deliver_pending, digest_for, notify, send_digests
from estafeta.tasks.models import Task

from .factories import PASSWORD, World

pytestmark = pytest.mark.django_db


def _inapp(world: World, who: User, count: int, now: datetime, start: int = 0) -> None:
    ticket = world.ticket(owner=world.ann)
    for i in range(start, start + count):
        notify(recipient=who, kind="escalation", ticket=ticket, key=f"e:{i}",
               payload={"level": "head", "reason": "task_overdue", "ticket": ticket.number,
                        "client": "<b>Ivan</b>", "task": "Sign", "promise": "Monday"},
               channels=("inapp",))
    deliver_pending(now=now)


def _signed_in(user: User) -> HttpClient:
    client = HttpClient()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_bell_counts_unread_and_the_page_lists_and_marks_read(world: World,
                                                              now: datetime) -> None:
    _inapp(world, world.head, 3, now)
    client = _signed_in(world.head)
    page = client.get("/notifications/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="count">3</span>' in html
    assert "&lt;b&gt;Ivan&lt;/b&gt;" in html and "<b>Ivan</b>" not in html
    first = Notification.objects.filter(recipient=world.head).order_by("pk").first()
    assert first is not None
    assert client.post("/notifications/read/", {"id": first.pk}).status_code == 302
    assert 'class="count">2</span>' in client.get("/notifications/").content.decode()
    # Someone else's id marks nothing.
    other = _signed_in(world.ann)
    assert other.post("/notifications/read/", {"id": first.pk + 1}).status_code == 302
    assert Notification.objects.filter(recipient=world.head, read_at__isnull=True).count() == 2
    client.post("/notifications/read/")
    assert 'class="count">' not in client.get("/notifications/").content.decode()


def test_pending_and_other_peoples_notifications_are_not_listed(world: World,
                                                                now: datetime) -> None:
    _inapp(world, world.head, 1, now)
    _inapp(world, world.director, 1, now, start=10)
    notify(recipient=world.head, kind="escalation", payload={}, key="later",
           channels=("inapp",))  # not delivered yet
    rows = APIClient()
    rows.force_authenticate(world.head)
    data = rows.get("/api/v1/notifications/").json()
    assert data["count"] == 1 and data["results"][0]["kind"] == "escalation"
    assert data["results"][0]["read"] is False


def test_notifications_page_costs_the_same_queries_for_few_and_many(world: World,
                                                                    now: datetime) -> None:
    client = _signed_in(world.head)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/notifications/").status_code == 200
        return len(ctx.captured_queries)

    _inapp(world, world.head, 2, now)
    few = count()
    _inapp(world, world.head, 20, now, start=100)
    assert count() == few


def test_api_marks_read(world: World, now: datetime) -> None:
    _inapp(world, world.head, 2, now)
    api = APIClient()
    api.force_authenticate(world.head)
    n = Notification.objects.filter(recipient=world.head).order_by("pk").first()
    assert n is not None
    answer = api.post("/api/v1/notifications/read/", {"ids": [n.pk]}, format="json").json()
    assert answer == {"marked": 1, "unread": 1}
    assert api.get("/api/v1/notifications/?unread=1").json()["count"] == 1
    assert api.post("/api/v1/notifications/read/", {"ids": ["x"]},
                    format="json").status_code == 400
    assert api.post("/api/v1/notifications/read/", {}, format="json").json() == {
        "marked": 1, "unread": 0}


def _admin(world: World) -> HttpClient:
    User.objects.filter(pk=world.admin.pk).update(is_staff=True)
    return _signed_in(world.admin)


def test_failed_notifications_are_visible_to_admins_and_never_deleted(
        world: World, now: datetime) -> None:
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", secret="s" * 16)
    notify(recipient=world.head, kind="escalation", payload={}, key="e", channels=("webhook",))
    assert deliver_pending(now=now).failed == 1
    n = Notification.objects.get()
    client = _admin(world)
    listing = client.get("/admin/notifications/notification/?status=failed")
    assert listing.status_code == 200 and "private" in listing.content.decode()
    assert client.get(f"/admin/notifications/notification/{n.pk}/change/").status_code == 200
    assert client.post(f"/admin/notifications/notification/{n.pk}/delete/",
                       {"post": "yes"}).status_code == 403
    assert client.post("/admin/notifications/notification/",
                       {"action": "delete_selected", "_selected_action": [n.pk]}
                       ).status_code in (200, 302)
    assert Notification.objects.filter(pk=n.pk).exists()
    # A seller never sees the admin.
    assert _signed_in(world.ann).get("/admin/notifications/notification/").status_code == 302


def test_admin_adds_a_webhook_endpoint_through_the_service(world: World) -> None:
    client = _admin(world)
    weak = client.post("/admin/notifications/webhookendpoint/add/",
                       {"url": "https://hooks.example/x", "secret": "short", "is_active": "on"})
    assert weak.status_code == 200 and not WebhookEndpoint.objects.exists()
    ok = client.post("/admin/notifications/webhookendpoint/add/",
                     {"url": "https://hooks.example/x", "secret": "s" * 20, "is_active": "on"})
    assert ok.status_code == 302
    assert WebhookEndpoint.objects.get().url == "https://hooks.example/x"


# --- digest ---------------------------------------------------------------------------------------


def test_heads_get_one_digest_a_day_of_their_teams_overdue_work(world: World, now: datetime,
                                                               settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Moscow"
    settings.ESTAFETA_DIGEST_HOUR = 9
    world.ticket(owner=world.ann)
    world.ticket(actor=world.operator, owner=world.olga)
    later = now + timedelta(days=3)
    assert Task.objects.filter(status="open", due_at__lt=later).exists()
    digest = digest_for(world.head, later)
    assert digest["overdue_count"] == 1
    assert digest["overdue"][0]["client"] == "Ivan Petrov"
    early = later.replace(hour=5)  # 08:00 in Moscow: before the digest hour
    assert send_digests(early) == 0
    at_nine = later.replace(hour=7)
    assert send_digests(at_nine) == 2  # Helen (Sales) and Oscar (Other)
    assert send_digests(at_nine + timedelta(hours=3)) == 0
    rows = Notification.objects.filter(kind="digest", recipient=world.head)
    assert [r.channel for r in rows] == ["inapp"]  # Helen has no email address
    assert rows[0].idempotency_key == f"digest:{world.head.pk}:{at_nine.date()}:inapp"
    assert send_digests(at_nine + timedelta(days=1)) == 2
