"""REST API: tickets, their actions, tasks, idempotency, error shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.accounts.services import team_create
from estafeta.clients.services import client_create
from estafeta.history.models import Event
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket

from . import factories
from .factories import World

pytestmark = pytest.mark.django_db


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def later(hours: float = 24) -> str:
    return factories.later(hours=hours).isoformat()


def error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "params"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


def new_ticket_body(world: World, **extra: Any) -> dict[str, Any]:
    return {"pipeline": "sales", "channel": "phone", "subject": "A car",
            "client": world.client.pk, **extra}


# --- create --------------------------------------------------------------------------------


def test_create_with_existing_client(world: World) -> None:
    r = api(world.operator).post("/api/v1/tickets/", new_ticket_body(world), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["number"].startswith("Z-2026-")
    assert body["stage"]["code"] == "new" and body["status"] == "open"
    assert body["client"] == {"id": world.client.pk, "name": "Ivan Petrov"}
    assert [t["kind"] for t in body["open_tasks"]] == ["call"]
    assert {i["code"] for i in body["checklist"]} == {"contacted", "need", "budget"}


@pytest.mark.parametrize("who", ["operator", "ann"])
def test_the_creation_answer_is_the_ticket_as_read_back(world: World, who: str) -> None:
    person = getattr(world, who)
    body = new_ticket_body(world) if who == "operator" else {
        "pipeline": "sales", "channel": "walk_in", "subject": "A van",
        "client_name": "Vera", "client_phone": "+7 912 000-11-22"}
    with CaptureQueriesContext(connection) as queries:
        made = api(person).post("/api/v1/tickets/", body, format="json")
    assert made.status_code == 201, made.content
    read = api(person).get(f"/api/v1/tickets/{made.json()['number']}/")
    assert made.json() == read.json()
    assert sum(q["sql"].startswith("SELECT") for q in queries.captured_queries) <= 8


def test_create_with_new_client_and_first_task(world: World) -> None:
    r = api(world.ann).post("/api/v1/tickets/", {
        "pipeline": "sales", "channel": "web_form", "subject": "Trucks",
        "client_name": "Acme", "client_email": "buyer@acme.example",
        "first_task": {"kind": "email", "title": "Send the price list", "due_at": later(2)},
    }, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["owner"]["username"] == "ann"  # a seller registering a request keeps it
    assert body["client"]["name"] == "Acme"
    assert body["open_tasks"][0]["title"] == "Send the price list"


def test_create_refusals(world: World) -> None:
    seller = api(world.ann)
    # Neither client nor client_name.
    body = error(seller.post("/api/v1/tickets/", {"pipeline": "sales", "channel": "phone",
                                                   "subject": "x"}, format="json"), 400,
                 "invalid")
    assert "client" in body["params"]["fields"]
    # Wrong types and an unknown channel.
    body = error(seller.post("/api/v1/tickets/", new_ticket_body(
        world, channel="pigeon", amount="lots", client="7"), format="json"), 400, "invalid")
    assert {"channel", "amount"} <= set(body["params"]["fields"])
    # Unknown pipeline: the service's code.
    error(seller.post("/api/v1/tickets/", new_ticket_body(world, pipeline="nope"),
                      format="json"), 404)
    # A client the seller may not open (Olga's) is "not found", like a missing one.
    olga_client = client_create(actor=world.olga, name="Hidden", phones=["+79990001122"])
    error(seller.post("/api/v1/tickets/", new_ticket_body(world, client=olga_client.pk),
                      format="json"), 404, "unknown_client")
    error(seller.post("/api/v1/tickets/", new_ticket_body(world, client=999999),
                      format="json"), 404, "unknown_client")
    # ...unless the request names its phone, as the duplicate search would.
    r = seller.post("/api/v1/tickets/", new_ticket_body(
        world, client=olga_client.pk, client_phone="8 999 000-11-22"), format="json")
    assert r.status_code == 201, r.content
    # Admins do not register requests.
    error(api(world.admin).post("/api/v1/tickets/", new_ticket_body(world), format="json"),
          403, "role_required")
    assert Ticket.objects.count() == 1


def test_idempotent_create(world: World) -> None:
    client = api(world.operator)
    body = new_ticket_body(world)
    first = client.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    other = client.post("/api/v1/tickets/", {**body, "subject": "Another"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k-1")
    error(other, 422, "idempotency_key_reused")
    assert Ticket.objects.count() == 1
    # Keys are per person: another operator's "k-1" is a new request.
    otto2 = factories.make_user("otto2", "operator")
    r = api(otto2).post("/api/v1/tickets/", {**body, "client_phone": "89123456789"},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 201 and Ticket.objects.count() == 2
    error(client.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="a b"),
          400, "invalid")


def test_refused_create_does_not_keep_the_key(world: World) -> None:
    client = api(world.operator)
    bad = new_ticket_body(world, pipeline="nope")
    error(client.post("/api/v1/tickets/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-2"), 404)
    r = client.post("/api/v1/tickets/", new_ticket_body(world), format="json",
                    HTTP_IDEMPOTENCY_KEY="k-2")
    assert r.status_code == 201


# --- read, update, delete ------------------------------------------------------------------


def test_retrieve_missing_and_forbidden_look_alike(world: World) -> None:
    t = world.ticket(owner=world.olga)
    hidden = error(api(world.ann).get(f"/api/v1/tickets/{t.number}/"), 404, "unknown_ticket")
    number = t.number[:-1] + ("9" if t.number[-1] != "9" else "8")
    missing = error(api(world.ann).get(f"/api/v1/tickets/{number}/"), 404, "unknown_ticket")
    assert hidden["message"].replace(t.number, "N") == missing["message"].replace(number, "N")
    error(api(world.ann).get("/api/v1/tickets/garbage/"), 404, "unknown_ticket")
    assert api(world.olga).get(f"/api/v1/tickets/{t.number.lower()}/").status_code == 200


def test_patch_edits_only_editable_fields(world: World) -> None:
    t = world.ticket(owner=world.ann)
    original = Ticket.objects.get(pk=t.pk)
    r = api(world.ann).patch(f"/api/v1/tickets/{t.number}/", {
        "subject": "Two cars", "amount": "1500000.50",
        "number": "Z-2000-000001", "created_at": "2000-01-01T00:00:00Z", "owner": world.bob.pk,
        "status": "won", "stage": "contract", "team": world.other.pk, "closed_at": None,
    }, format="json")
    assert r.status_code == 200, r.content
    now = Ticket.objects.get(pk=t.pk)
    assert (now.subject, str(now.amount)) == ("Two cars", "1500000.50")
    for field in ("number", "created_at", "owner_id", "status", "stage_id", "team_id"):
        assert getattr(now, field) == getattr(original, field), field
    # A body of read-only fields only changes nothing and writes no event.
    events = Event.objects.count()
    r = api(world.ann).patch(f"/api/v1/tickets/{t.number}/",
                             {"status": "lost", "owner": world.bob.pk}, format="json")
    assert r.status_code == 200 and Event.objects.count() == events
    assert Ticket.objects.get(pk=t.pk).status == "open"


def test_patch_refusals(world: World) -> None:
    t = world.ticket(owner=world.ann)
    error(api(world.ann).patch(f"/api/v1/tickets/{t.number}/", {"subject": "x" * 201},
                               format="json"), 400, "invalid")
    error(api(world.ann).patch(f"/api/v1/tickets/{t.number}/", {"amount": -1},
                               format="json"), 400, "invalid")
    error(api(world.bob).patch(f"/api/v1/tickets/{t.number}/", {"subject": "Mine"},
                               format="json"), 404)
    error(api(world.ann).patch(f"/api/v1/tickets/{t.number}/", "{",
                               content_type="application/json"), 400, "bad_json")
    assert Ticket.objects.get(pk=t.pk).subject == "A car for the family"


def test_delete_is_405_everywhere(world: World) -> None:
    t = world.ticket(owner=world.ann)
    for path in ("/api/v1/tickets/", f"/api/v1/tickets/{t.number}/",
                 f"/api/v1/tickets/{t.number}/events/", "/api/v1/clients/"):
        body = error(api(world.ann).delete(path), 405, "deletion_refused")
        assert body["params"] == {"method": "DELETE"}
    r = api(world.ann).delete(f"/api/v1/tickets/{t.number}/")
    assert "DELETE" not in r["Allow"] and "GET" in r["Allow"]
    assert Ticket.objects.filter(pk=t.pk).exists()
    error(api(world.ann).put(f"/api/v1/tickets/{t.number}/", {}, format="json"), 405,
          "method_not_allowed")


def test_markup_is_stored_and_returned_as_text(world: World) -> None:
    evil = '<script>alert("x")</script><b onmouseover=alert(1)>&amp;'
    r = api(world.operator).post("/api/v1/tickets/", new_ticket_body(
        world, subject=evil, description=evil), format="json")
    assert r.status_code == 201
    assert r.json()["subject"] == evil and r.json()["description"] == evil
    assert r["Content-Type"].startswith("application/json")
    t = Ticket.objects.get()
    assert t.subject == evil
    # A note with markup comes back the same through the activity endpoint.
    r = api(t.owner).post(f"/api/v1/tickets/{t.number}/activities/", {
        "kind": "call", "direction": "out", "outcome": "connected", "note": evil},
        format="json")
    assert r.status_code == 201 and r.json()["note"] == evil


def test_list_filters_and_search(world: World) -> None:
    a = world.ticket(owner=world.ann)
    b = world.ticket(owner=world.bob, subject="Other")
    head = api(world.head)
    numbers = {t["number"] for t in head.get("/api/v1/tickets/").json()["results"]}
    assert numbers == {a.number, b.number}
    r = head.get("/api/v1/tickets/", {"owner": world.ann.pk})
    assert [t["number"] for t in r.json()["results"]] == [a.number]
    r = head.get("/api/v1/tickets/", {"q": a.number})
    assert [t["number"] for t in r.json()["results"]] == [a.number]
    r = head.get("/api/v1/tickets/", {"q": "912 345"})
    assert r.json()["count"] == 2
    r = head.get("/api/v1/tickets/", {"status": "won"})
    assert r.json()["count"] == 0
    r = head.get("/api/v1/tickets/", {"pipeline": "sales", "stage": "new", "team": world.sales.pk})
    assert r.json()["count"] == 2
    # The seller sees only their own.
    r = api(world.ann).get("/api/v1/tickets/")
    assert [t["number"] for t in r.json()["results"]] == [a.number]
    error(head.get("/api/v1/tickets/", {"owner": "x"}), 400, "invalid")
    error(head.get("/api/v1/tickets/", {"status": "nope"}), 400, "invalid")
    error(head.get("/api/v1/tickets/", {"limit": 1000}), 400, "invalid")


def _queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_list_endpoints_keep_a_fixed_query_count(world: World) -> None:
    director = api(world.director)
    paths = ["/api/v1/tickets/", "/api/v1/tasks/", "/api/v1/users/", "/api/v1/teams/",
             "/api/v1/clients/", "/api/v1/pipelines/"]
    world.ticket(owner=world.ann)
    t = world.ticket(owner=world.director)
    few = {p: _queries(director, p) for p in paths}
    few_events = _queries(director, f"/api/v1/tickets/{t.number}/events/")
    for i in range(6):
        world.ticket(owner=world.director if i % 2 else world.olga,
                     client=client_create(actor=world.operator, name=f"C{i}"))
        factories.make_user(f"extra{i}", "seller", world.sales)
    team_create(actor=None, name="Third", head=factories.make_user("third", "head"))
    from estafeta.tickets.services import activity_log

    for _ in range(5):
        activity_log(actor=world.director, ticket=t, kind="call", direction="out",
                     outcome="connected")
    many = {p: _queries(director, p) for p in paths}
    assert many == few
    assert _queries(director, f"/api/v1/tickets/{t.number}/events/") == few_events


# --- actions -------------------------------------------------------------------------------


def test_checklist_and_stage_close(world: World) -> None:
    t = world.ticket(owner=world.ann)
    ann = api(world.ann)
    url = f"/api/v1/tickets/{t.number}/"
    body = error(ann.post(url + "close-stage/", {"stage": "new"}, format="json"), 400,
                 "checklist_incomplete")
    assert body["message"]
    r = ann.post(url + "checklist/", {"stage": "new", "item": "contacted"}, format="json")
    assert r.status_code == 200, r.content
    assert next(i for i in r.json()["checklist"] if i["code"] == "contacted")["done"]
    error(ann.post(url + "checklist/", {"stage": "new", "item": "need", "evidence": ""},
                   format="json"), 400, "evidence_invalid")
    error(ann.post(url + "checklist/", {"stage": "new", "item": "nope"}, format="json"), 400,
          "unknown_item")
    ann.post(url + "checklist/", {"stage": "new", "item": "need", "evidence": "a van"},
             format="json")
    r = ann.post(url + "close-stage/", {"stage": "new"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["stage"]["code"] == "offer"
    # The same request again is stale: the ticket has moved on.
    body = error(ann.post(url + "close-stage/", {"stage": "new"}, format="json"), 409,
                 "stale_stage")
    assert body["params"]
    error(ann.post(url + "checklist/", {"stage": "new", "item": "need", "evidence": "x"},
                   format="json"), 409, "stale_stage")
    # Bob (same team, no part in it) cannot see it at all.
    error(api(world.bob).post(url + "close-stage/", {"stage": "offer"}, format="json"), 404)


def test_file_evidence_by_multipart(world: World) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    t = world.ticket(owner=world.ann)
    world.fill_new(t)
    ann = api(world.ann)
    url = f"/api/v1/tickets/{t.number}/"
    assert ann.post(url + "close-stage/", {"stage": "new", "to": "contract"},
                    format="json").status_code == 200
    r = ann.post(url + "checklist/", {"stage": "contract", "item": "scan",
                                      "file": SimpleUploadedFile("scan.pdf", b"%PDF-1.4 x")},
                 format="multipart")
    assert r.status_code == 200, r.content
    item = next(i for i in r.json()["checklist"] if i["code"] == "scan")
    assert item["done"] and item["evidence"]["size"] == 10


def test_concurrent_close_conflict_shape(world: World) -> None:
    """Two people saw stage "new"; the head closes it first, the seller's close is a 409."""
    t = world.ticket(owner=world.ann)
    world.fill_new(t)
    url = f"/api/v1/tickets/{t.number}/close-stage/"
    assert api(world.head).post(url, {"stage": "new"}, format="json").status_code == 200
    body = error(api(world.ann).post(url, {"stage": "new"}, format="json"), 409, "stale_stage")
    assert body["params"] == {"current": "offer"} and "reload" in body["message"]
    assert Ticket.objects.get(pk=t.pk).stage.code == "offer"


def test_won_lost_void_reopen_reassign(world: World) -> None:
    t = world.ticket(owner=world.ann)
    url = f"/api/v1/tickets/{t.number}/"
    ann, head = api(world.ann), api(world.head)
    error(ann.post(url + "reassign/", {"owner": world.bob.pk}, format="json"), 403,
          "supervisor_only")
    error(head.post(url + "reassign/", {"owner": 987654}, format="json"), 400, "unknown_user")
    r = head.post(url + "reassign/", {"owner": world.bob.pk, "reason": "holiday"},
                  format="json")
    assert r.status_code == 200 and r.json()["owner"]["username"] == "bob"
    # A head may give a ticket to another team: the answer still shows the result.
    other = world.ticket(owner=world.ann)
    r = head.post(f"/api/v1/tickets/{other.number}/reassign/", {"owner": world.olga.pk},
                  format="json")
    assert r.status_code == 200 and r.json()["owner"]["username"] == "olga"
    error(head.get(f"/api/v1/tickets/{other.number}/"), 404)
    bob = api(world.bob)
    error(bob.post(url + "lost/", {"reason": "weather"}, format="json"), 400)
    r = bob.post(url + "lost/", {"reason": "price", "note": "too dear"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "lost"
    assert r.json()["lost_reason"] == "price" and r.json()["open_tasks"] == []
    error(bob.post(url + "lost/", {"reason": "price"}, format="json"), 409, "ticket_closed")
    error(bob.post(url + "reopen/", {"reason": "came back"}, format="json"), 403)
    error(head.post(url + "reopen/", {}, format="json"), 400, "invalid")
    r = head.post(url + "reopen/", {"reason": "came back"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "open"
    r = bob.post(url + "void/", {"reason": "test ticket"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "void"

    won = world.ticket(owner=world.ann)
    world.fill_new(won)
    url = f"/api/v1/tickets/{won.number}/"
    error(ann.post(url + "won/", {"stage": "new"}, format="json"), 403, "skip_not_allowed")
    assert ann.post(url + "close-stage/", {"stage": "new", "to": "contract"},
                    format="json").status_code == 200
    error(ann.post(url + "won/", {"stage": "contract"}, format="json"), 400,
          "checklist_incomplete")
    ann.post(url + "checklist/", {"stage": "contract", "item": "signed_on",
                                  "evidence": "2026-12-01"}, format="json")
    r = ann.post(url + "won/", {"stage": "contract", "amount": "2500000"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["status"], r.json()["amount"]) == ("won", "2500000.00")


def test_plan_task_activity_document(world: World) -> None:
    t = world.ticket(owner=world.ann)
    url = f"/api/v1/tickets/{t.number}/"
    ann = api(world.ann)
    r = ann.post(url + "tasks/", {"kind": "meeting", "title": "Test drive",
                                  "due_at": later(48)}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["assignee"] == world.ann.pk and r.json()["ticket"] == t.number
    error(ann.post(url + "tasks/", {"kind": "meeting", "title": "Naive",
                                    "due_at": "2026-12-10T10:00:00"}, format="json"), 400)
    r = ann.get(url + "tasks/")
    assert r.json()["count"] == 2
    r = ann.post(url + "activities/", {"kind": "call", "direction": "in",
                                       "outcome": "connected", "duration_seconds": 60},
                 format="json")
    assert r.status_code == 201, r.content
    error(ann.post(url + "activities/", {"kind": "call", "direction": "in", "outcome": "held"},
                   format="json"), 400, "bad_outcome")
    r = ann.post(url + "documents/", {"kind": "quote", "number": "Q-1", "amount": "100.00"},
                 format="json")
    assert r.status_code == 201, r.content
    error(ann.post(url + "documents/", {"kind": "quote", "number": "Q-1", "amount": "5"},
                   format="json"), 409, "document_exists")
    r = ann.get(url + "events/")
    types = [e["type"] for e in r.json()["results"]]
    assert types[0] == "document.issued" and types[-1] == "ticket.created"


def test_tasks_mine_complete_reschedule(world: World) -> None:
    t = world.ticket(owner=world.ann)
    ann = api(world.ann)
    mine = ann.get("/api/v1/tasks/").json()["results"]
    assert [m["ticket"] for m in mine] == [t.number]
    task_id = mine[0]["id"]
    assert api(world.bob).get("/api/v1/tasks/").json()["results"] == []
    error(api(world.bob).get(f"/api/v1/tasks/{task_id}/"), 404, "unknown_task")
    error(ann.get("/api/v1/tasks/99999999999999999999/"), 404)
    # The last open task needs a successor.
    error(ann.post(f"/api/v1/tasks/{task_id}/complete/", {}, format="json"), 400,
          "successor_required")
    assert Task.objects.get(pk=task_id).status == "open"
    r = ann.post(f"/api/v1/tasks/{task_id}/reschedule/", {"due_at": later(5)}, format="json")
    error(r, 400, "invalid")
    r = ann.post(f"/api/v1/tasks/{task_id}/reschedule/",
                 {"due_at": later(5), "reason": "client asked"}, format="json")
    assert r.status_code == 200, r.content
    r = ann.post(f"/api/v1/tasks/{task_id}/complete/", {
        "result": "talked", "contact_outcome": "connected",
        "successor": {"kind": "email", "title": "Send the offer", "due_at": later(30)}},
        format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "done"
    error(ann.post(f"/api/v1/tasks/{task_id}/complete/", {}, format="json"), 409,
          "task_closed")
    mine = ann.get("/api/v1/tasks/").json()["results"]
    assert [m["title"] for m in mine] == ["Send the offer"]


def test_old_idempotency_keys_are_pruned(world: World) -> None:
    from django.core.management import call_command

    from estafeta.api.models import IdempotencyKey
    from estafeta.core import clock

    api(world.operator).post("/api/v1/tickets/", new_ticket_body(world), format="json",
                             HTTP_IDEMPOTENCY_KEY="old")
    assert IdempotencyKey.objects.count() == 1
    call_command("idempotency_prune")
    assert IdempotencyKey.objects.count() == 1  # younger than a day
    with clock.frozen(factories.later(hours=25)):
        call_command("idempotency_prune")
    assert IdempotencyKey.objects.count() == 0
