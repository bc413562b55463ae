"""The API under concurrent requests (PostgreSQL: threads, each with its own connection)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.tickets.models import Ticket

from .factories import build_world
from .test_concurrency import in_threads


def _as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_stage_closes_one_wins_the_other_gets_409() -> None:
    world = build_world()
    clients = (_as(world.ann), _as(world.head))
    for _ in range(4):
        ticket = world.ticket(owner=world.ann)
        world.fill_new(ticket)
        url = f"/api/v1/tickets/{ticket.number}/close-stage/"
        results: list[Any] = in_threads(2, lambda i, u=url: clients[i].post(  # type: ignore[misc]
            u, {"stage": "new"}, format="json"))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409], [r.content for r in results]
        refused = next(r for r in results if r.status_code == 409).json()
        assert set(refused) == {"code", "message", "params"}
        assert refused["code"] == "stale_stage"
        assert Ticket.objects.get(pk=ticket.pk).stage.code == "offer"


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_idempotency_key_make_one_ticket() -> None:
    world = build_world()
    body = {"pipeline": "sales", "channel": "phone", "subject": "Retried",
            "client": world.client.pk}
    results: list[Any] = in_threads(4, lambda i: _as(world.operator).post(
        "/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="same-key"))
    assert [r.status_code for r in results] == [201] * 4, [r.content for r in results]
    assert len({r.json()["number"] for r in results}) == 1
    assert Ticket.objects.count() == 1
