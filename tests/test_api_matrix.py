"""The permission matrix of the REST API: every endpoint x role x own / same-team / other-team
ticket. Each call runs in a savepoint that is rolled back, so every endpoint meets the same
ticket in the same state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    checklist_item_complete,
    stage_close,
    stage_pause,
    ticket_close_lost,
)

from .factories import PIPELINES, World, later

pytestmark = pytest.mark.django_db

ROLES = ["seller", "head", "director", "operator", "admin"]
RELATIONS = ["own", "same_team", "other_team"]


def actor_of(world: World, role: str) -> User:
    return {"seller": world.ann, "head": world.head, "director": world.director,
            "operator": world.operator, "admin": world.admin}[role]


def ticket_for(world: World, role: str, relation: str) -> Ticket:
    """own: the actor's (for an operator: one they registered; an admin owns nothing, so it is
    one registered for them by the system); same_team: Bob's (team Sales); other_team: Olga's
    (team Other). Tickets not "own" are registered by the system."""
    if relation == "same_team":
        return _system(world, world.bob)
    if relation == "other_team":
        return _system(world, world.olga)
    actor = actor_of(world, role)
    if role == "operator":
        return world.ticket(actor=world.operator, owner=world.ann)
    if role == "admin":
        return _system(world, world.ann)
    fresh = User.objects.get(pk=actor.pk)  # the head joined their team after the fixture
    return world.ticket(actor=fresh, owner=fresh)


def _system(world: World, owner: User) -> Ticket:
    from estafeta.tickets.services import ticket_create

    return ticket_create(actor=None, pipeline=world.pipeline, client=world.client,
                         channel="phone", subject="A car", owner=owner)


def sees(role: str, relation: str) -> bool:
    return {"seller": relation == "own", "head": relation != "other_team",
            "director": True, "operator": relation == "own", "admin": False}[role]


def works(role: str, relation: str) -> bool:
    """A participant or a supervisor of the ticket (services' authority)."""
    return {"seller": relation == "own", "head": relation != "other_team",
            "director": True, "operator": False, "admin": False}[role]


def supervises(role: str, relation: str) -> bool:
    return {"head": relation != "other_team", "director": True}.get(role, False)


@dataclass
class Case:
    method: str
    path: str  # {n}: ticket number, {t}: its open task id
    body: Callable[[World, Ticket], dict[str, Any]] | None
    ok: int
    gate: Callable[[str, str], bool]
    setup: Callable[[World, Ticket], None] | None = None
    visible: Callable[[str, str], bool] = sees

    def expected(self, role: str, relation: str) -> int:
        if self.method == "delete":
            return 405  # nothing is deleted, whoever asks and whatever exists
        if not self.visible(role, relation):
            return 404  # the same answer as for a ticket that does not exist
        return self.ok if self.gate(role, relation) else 403


def _fill_new(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket, actor=world.director)


def _to_contract(world: World, ticket: Ticket) -> None:
    _fill_new(world, ticket)
    stage_close(actor=world.director, ticket=ticket, stage="new", to="contract")
    checklist_item_complete(actor=world.director, ticket=Ticket.objects.get(pk=ticket.pk),
                            stage="contract", item="signed_on", evidence="2026-12-01")


def _paused(world: World, ticket: Ticket) -> None:
    stage_pause(actor=world.director, ticket=ticket, reason="The client is away")


def _pausable_sales() -> None:
    """A second version of "sales" whose stage "new" may wait for the client."""
    text = (PIPELINES / "sales.yaml").read_text()
    pipeline_load(actor=None, source="sales.yaml",
                  text=text.replace("    sla: 2h\n", "    sla: 2h\n    pausable: true\n"))


def _lost(world: World, ticket: Ticket) -> None:
    ticket_close_lost(actor=world.director, ticket=ticket, reason="price")


def _other_owner(world: World, ticket: Ticket) -> dict[str, Any]:
    return {"owner": (world.bob if ticket.owner_id == world.ann.pk else world.ann).pk}


def _twin(world: World, ticket: Ticket) -> dict[str, Any]:
    """Another open ticket like this one (same owner and registrar): the one to merge into."""
    from estafeta.tickets.services import ticket_create

    twin = ticket_create(actor=ticket.created_by, pipeline=world.pipeline, client=world.client,
                         channel="email", subject="The same car", owner=ticket.owner)
    return {"into": twin.number, "reason": "same request"}


def _draft() -> dict[str, Any]:
    return {"kind": "call", "title": "Next call", "due_at": later(days=2).isoformat()}


CASES: dict[str, Case] = {
    "get ticket": Case("get", "/api/v1/tickets/{n}/", None, 200, sees),
    "get events": Case("get", "/api/v1/tickets/{n}/events/", None, 200, sees),
    "get tasks": Case("get", "/api/v1/tickets/{n}/tasks/", None, 200, sees),
    "delete ticket": Case("delete", "/api/v1/tickets/{n}/", None, 405, lambda r, o: True),
    "patch ticket": Case("patch", "/api/v1/tickets/{n}/", lambda w, t: {"subject": "New"},
                         200, works),
    "checklist": Case("post", "/api/v1/tickets/{n}/checklist/",
                      lambda w, t: {"stage": "new", "item": "contacted"}, 200, works),
    "close stage": Case("post", "/api/v1/tickets/{n}/close-stage/",
                        lambda w, t: {"stage": "new"}, 200, works, _fill_new),
    "plan task": Case("post", "/api/v1/tickets/{n}/tasks/", lambda w, t: _draft(), 201, works),
    "log activity": Case("post", "/api/v1/tickets/{n}/activities/",
                         lambda w, t: {"kind": "call", "direction": "out",
                                       "outcome": "no_answer"}, 201, works),
    "issue document": Case("post", "/api/v1/tickets/{n}/documents/",
                           lambda w, t: {"kind": "invoice", "number": "INV-1", "amount": "10"},
                           201, works),
    "won": Case("post", "/api/v1/tickets/{n}/won/", lambda w, t: {"stage": "contract"}, 200,
                works, _to_contract),
    "lost": Case("post", "/api/v1/tickets/{n}/lost/", lambda w, t: {"reason": "price"}, 200,
                 works),
    "void": Case("post", "/api/v1/tickets/{n}/void/", lambda w, t: {"reason": "spam"}, 200,
                 works),
    "reassign": Case("post", "/api/v1/tickets/{n}/reassign/", _other_owner, 200, supervises),
    "reopen": Case("post", "/api/v1/tickets/{n}/reopen/", lambda w, t: {"reason": "back"},
                   200, supervises, _lost),
    "pause": Case("post", "/api/v1/tickets/{n}/pause/",
                  lambda w, t: {"reason": "The client is away", "stage": "new"}, 200, works),
    "resume": Case("post", "/api/v1/tickets/{n}/resume/", lambda w, t: {"stage": "new"}, 200,
                   works, _paused),
    "merge": Case("post", "/api/v1/tickets/{n}/merge/", _twin, 200, supervises),
    "reply by email": Case("post", "/api/v1/tickets/{n}/reply/",
                           lambda w, t: {"to": "ivan@example.com", "text": "Hello"}, 201, works),
    "get task": Case("get", "/api/v1/tasks/{t}/", None, 200, sees),
    "complete task": Case("post", "/api/v1/tasks/{t}/complete/",
                          lambda w, t: {"successor": _draft()}, 200, works),
    "reschedule task": Case("post", "/api/v1/tasks/{t}/reschedule/",
                            lambda w, t: {"due_at": later(days=3).isoformat(),
                                          "reason": "asked"}, 200, works),
    # The operator registered the client; directors and admins open every client card.
    "get client": Case("get", "/api/v1/clients/{c}/", None, 200, lambda r, o: True,
                       visible=lambda r, o: r in ("director", "admin", "operator") or sees(r, o)),
}


def _call(client: APIClient, world: World, ticket: Ticket, case: Case) -> int:
    with transaction.atomic():
        if case.setup is not None:
            case.setup(world, Ticket.objects.get(pk=ticket.pk))
        task = Task.objects.filter(ticket=ticket, status="open").first()
        path = case.path.format(n=ticket.number, t=task.pk if task else 0,
                                c=ticket.client_id)
        body = case.body(world, ticket) if case.body else None
        response = getattr(client, case.method)(path, body, format="json")
        status = int(response.status_code)
        if status >= 400:
            assert set(response.json()) == {"code", "message", "params"}
        transaction.set_rollback(True)
    return status


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_ticket_endpoints_matrix(world: World, role: str, relation: str) -> None:
    _pausable_sales()
    ticket = ticket_for(world, role, relation)
    client = APIClient()
    client.force_authenticate(actor_of(world, role))
    got = {name: _call(client, world, ticket, case) for name, case in CASES.items()}
    assert got == {name: case.expected(role, relation) for name, case in CASES.items()}


@pytest.mark.parametrize("role", ROLES)
def test_collection_endpoints_matrix(world: World, role: str) -> None:
    client = APIClient()
    client.force_authenticate(actor_of(world, role))
    creator = role != "admin"
    pipeline_yaml = client.get("/api/v1/pipelines/sales/yaml/")
    assert pipeline_yaml.status_code == 200
    calls: dict[str, tuple[str, str, Any, int]] = {
        "list tickets": ("get", "/api/v1/tickets/", None, 200),
        "create ticket": ("post", "/api/v1/tickets/",
                          {"pipeline": "sales", "channel": "phone", "subject": "x",
                           "client_name": "New", "client_phone": "+79001112233"},
                          201 if creator else 403),
        "my tasks": ("get", "/api/v1/tasks/", None, 200),
        "list clients": ("get", "/api/v1/clients/", None, 200),
        "find clients": ("get", "/api/v1/clients/?phone=89123456789", None,
                         200 if creator else 403),
        "create client": ("post", "/api/v1/clients/", {"name": "Acme"},
                          201 if creator else 403),
        "anonymise client": ("post", f"/api/v1/clients/{world.client.pk}/anonymise/",
                             {"reason": "GDPR-1"},
                             {"admin": 200, "director": 403, "operator": 403}.get(role, 404)),
        "list pipelines": ("get", "/api/v1/pipelines/", None, 200),
        "get pipeline": ("get", "/api/v1/pipelines/sales/", None, 200),
        "load pipeline": ("post", "/api/v1/pipelines/",
                          {"yaml": pipeline_yaml.content.decode()},
                          200 if role == "admin" else 403),
        "list users": ("get", "/api/v1/users/", None, 200),
        "me": ("get", "/api/v1/users/me/", None, 200),
        "get user": ("get", f"/api/v1/users/{world.bob.pk}/", None, 200),
        "list teams": ("get", "/api/v1/teams/", None, 200),
        "my notifications": ("get", "/api/v1/notifications/", None, 200),
        "mark notifications read": ("post", "/api/v1/notifications/read/", {}, 200),
        "delete notifications": ("delete", "/api/v1/notifications/", None, 405),
        "analytics figure": ("get", "/api/v1/analytics/K2/?period=2026-11", None,
                             200 if role in ("seller", "head", "director") else 403),
        "analytics of another team": ("get", f"/api/v1/analytics/K2/?team={world.other.pk}",
                                      None, 200 if role == "director" else 403),
        "revoke token": ("post", "/api/v1/auth/token/revoke/", None, 204),
        "delete tickets": ("delete", "/api/v1/tickets/", None, 405),
        "list duplicates": ("get", "/api/v1/duplicates/", None,
                            200 if role in ("head", "director") else 403),
    }
    got, want = {}, {}
    for name, (method, path, body, status) in calls.items():
        with transaction.atomic():
            got[name] = getattr(client, method)(path, body, format="json").status_code
            transaction.set_rollback(True)
        want[name] = status
    assert got == want


@pytest.mark.parametrize("path", ["/api/v1/tickets/", "/api/v1/tasks/", "/api/v1/clients/",
                                  "/api/v1/pipelines/", "/api/v1/users/", "/api/v1/teams/",
                                  "/api/v1/tickets/Z-2026-000001/", "/api/v1/tasks/1/",
                                  "/api/v1/auth/token/revoke/", "/api/v1/notifications/",
                                  "/api/v1/analytics/K1/"])
def test_anonymous_gets_401(db: None, path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code in (401, 405)
    if response.status_code == 401:
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"
