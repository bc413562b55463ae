"""Waiting for the client on the ticket page and in the API: a stage marked ``pausable: true``
stops its SLA clock with a reason and resumes it later (``stage_pause`` / ``stage_resume``)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from estafeta.history.models import Event
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.services import task_plan
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.services import stage_pause

from .dbstate import snapshot
from .factories import PIPELINES, World, draft
from .test_web_ticket import refused_post, signed_in, url

pytestmark = pytest.mark.django_db

NOT_PAUSABLE = "This stage cannot wait for the client in this pipeline."
NOT_EXECUTOR = "executor or a head of sales can do this."


def _pausable_sales() -> None:
    """A second version of "sales" whose first stage, "new", may wait for the client."""
    text = (PIPELINES / "sales.yaml").read_text()
    pipeline_load(actor=None, source="sales.yaml",
                  text=text.replace("    sla: 2h\n", "    sla: 2h\n    pausable: true\n"))


@pytest.fixture
def tickets(world: World) -> dict[str, Ticket]:
    """``plain``: Ann's ticket on version 1 (nothing pausable); ``ann``: Ann's on version 2;
    ``held``: Olga's on version 2 with a task of Ann's on it (Ann sees it, does not run it)."""
    plain = world.ticket(owner=world.ann)
    _pausable_sales()
    held = world.ticket(owner=world.olga)
    task_plan(actor=world.olga, ticket=held, draft=draft("Show the car", assignee=world.ann))
    return {"plain": plain, "ann": world.ticket(owner=world.ann), "held": held}


def _visit(ticket: Ticket) -> StageVisit:
    return StageVisit.objects.get(ticket=ticket, closed_at__isnull=True)


def _last_event(ticket: Ticket) -> Event:
    event = Event.objects.filter(stream=ticket.stream).order_by("-seq").first()
    assert event is not None
    return event


# --- the ticket page --------------------------------------------------------------------------


def test_the_executor_pauses_and_resumes_the_stage_from_the_page(
        world: World, tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    http = signed_in(world.ann)
    page = http.get(url(ticket)).content.decode()
    assert f'action="{url(ticket, "pause")}"' in page
    assert 'name="pause-reason"' in page
    assert url(ticket, "resume") not in page

    response = http.post(url(ticket, "pause"),
                         {"stage": "new", "pause-reason": "The client is on holiday"})
    assert response.status_code == 302 and response["Location"] == url(ticket)
    event = _last_event(ticket)
    assert event.type == "stage.paused"
    assert event.payload["reason"] == "The client is on holiday"
    assert event.payload["stage"] == "new"
    assert _visit(ticket).paused_at is not None

    page = http.get(url(ticket)).content.decode()
    assert "paused, waiting for the client" in page
    assert f'action="{url(ticket, "resume")}"' in page
    assert url(ticket, "pause") not in page
    assert "Waiting for the client (SLA clock stopped)" in page
    assert "The client is on holiday" in page

    response = http.post(url(ticket, "resume"), {"stage": "new"})
    assert response.status_code == 302
    assert _last_event(ticket).type == "stage.resumed"
    visit = _visit(ticket)
    assert visit.paused_at is None and visit.sla_due_at is not None
    page = http.get(url(ticket)).content.decode()
    assert "Resumed (SLA clock running again)" in page
    assert f'action="{url(ticket, "pause")}"' in page


def test_a_head_may_pause_a_stage_of_their_team(world: World,
                                                tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    http = signed_in(world.head)
    assert 'name="pause-reason"' in http.get(url(ticket)).content.decode()
    assert http.post(url(ticket, "pause"), {"stage": "new", "pause-reason": "away"}
                     ).status_code == 302
    assert _last_event(ticket).payload["override"] is True


def test_a_stage_that_is_not_pausable_offers_no_form_and_refuses(
        world: World, tickets: dict[str, Ticket]) -> None:
    ticket = tickets["plain"]
    http = signed_in(world.ann)
    page = http.get(url(ticket)).content.decode()
    assert url(ticket, "pause") not in page and url(ticket, "resume") not in page
    html = refused_post(http, url(ticket, "pause"), {"stage": "new", "pause-reason": "away"},
                        403, NOT_PAUSABLE)
    assert "The client is away" not in html


def test_a_seller_of_another_team_cannot_pause(world: World,
                                               tickets: dict[str, Ticket]) -> None:
    # Olga does not see Ann's ticket at all: the same 404 as a missing one.
    refused_post(signed_in(world.olga), url(tickets["ann"], "pause"),
                 {"stage": "new", "pause-reason": "away"}, 404)
    # Ann sees Olga's ticket (she holds a task on it) but does not run its stage.
    http = signed_in(world.ann)
    held = tickets["held"]
    page = http.get(url(held)).content.decode()
    assert url(held, "pause") not in page
    refused_post(http, url(held, "pause"), {"stage": "new", "pause-reason": "away"}, 403,
                 NOT_EXECUTOR)
    stage_pause(actor=world.olga, ticket=held, reason="away")
    assert url(held, "resume") not in http.get(url(held)).content.decode()
    refused_post(http, url(held, "resume"), {"stage": "new"}, 403, NOT_EXECUTOR)
    # The operator who registered Ann's ticket sees it and may not run its stage.
    stage_pause(actor=world.ann, ticket=tickets["ann"], reason="away")
    operator = signed_in(world.operator)
    assert url(tickets["ann"], "resume") not in operator.get(url(tickets["ann"])).content.decode()
    refused_post(operator, url(tickets["ann"], "resume"), {"stage": "new"}, 403, NOT_EXECUTOR)


def test_a_pause_needs_a_reason_and_a_running_stage(world: World,
                                                   tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    http = signed_in(world.ann)
    refused_post(http, url(ticket, "pause"), {"stage": "new", "pause-reason": "  "}, 400,
                 "This field is required.")
    refused_post(http, url(ticket, "resume"), {"stage": "new"}, 409,
                 "This stage is not waiting for the client.")
    stage_pause(actor=world.ann, ticket=ticket, reason="away")
    refused_post(http, url(ticket, "pause"), {"stage": "new", "pause-reason": "again"}, 409,
                 "This stage is already waiting for the client.")
    refused_post(http, url(ticket, "resume"), {"stage": "offer"}, 409, "has meanwhile moved")


def test_a_pause_without_a_csrf_token_is_refused(world: World,
                                                 tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    http = signed_in(world.ann, csrf=True)
    assert http.get(url(ticket)).status_code == 200  # the browser holds the CSRF cookie
    refused_post(http, url(ticket, "pause"), {"stage": "new", "pause-reason": "away"}, 403,
                 "CSRF")
    stage_pause(actor=world.ann, ticket=ticket, reason="away")
    refused_post(http, url(ticket, "resume"), {"stage": "new"}, 403, "CSRF")
    token = http.cookies["csrftoken"].value
    assert http.post(url(ticket, "resume"), {"stage": "new", "csrfmiddlewaretoken": token}
                     ).status_code == 302


def test_the_pages_pause_and_resume_take_only_post(world: World,
                                                   tickets: dict[str, Ticket]) -> None:
    http = signed_in(world.ann)
    for action in ("pause", "resume"):
        assert http.get(url(tickets["ann"], action)).status_code == 405


def test_markup_in_the_reason_is_shown_as_text(world: World,
                                               tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    http = signed_in(world.ann)
    reason = '<script>alert("x")</script><b>soon</b>'
    assert http.post(url(ticket, "pause"), {"stage": "new", "pause-reason": reason}
                     ).status_code == 302
    page = http.get(url(ticket)).content.decode()
    assert "<script>alert" not in page and "<b>soon</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;soon&lt;/b&gt;" in page


# --- the API ------------------------------------------------------------------------------------


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _api_refused(client: APIClient, path: str, body: dict[str, Any], status: int,
                 code: str | None) -> dict[str, Any]:
    before = snapshot()
    response = client.post(path, body, format="json")
    assert response.status_code == status, response.content
    data = response.json()
    assert set(data) == {"code", "message", "params"}
    if code is not None:
        assert data["code"] == code
    assert snapshot() == before
    return dict(data)


def api_url(ticket: Ticket, action: str) -> str:
    return f"/api/v1/tickets/{ticket.number}/{action}/"


def test_the_api_pauses_and_resumes(world: World, tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    client = _api(world.ann)
    response = client.post(api_url(ticket, "pause"),
                           {"reason": "The client is on holiday", "stage": "new"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["number"] == ticket.number
    event = _last_event(ticket)
    assert event.type == "stage.paused" and event.payload["reason"] == "The client is on holiday"
    assert _visit(ticket).paused_at is not None
    response = client.post(api_url(ticket, "resume"), {}, format="json")
    assert response.status_code == 200, response.content
    assert _last_event(ticket).type == "stage.resumed"
    assert _visit(ticket).paused_at is None


def test_the_api_refuses_what_the_service_refuses(world: World,
                                                  tickets: dict[str, Ticket]) -> None:
    ann = _api(world.ann)
    _api_refused(ann, api_url(tickets["plain"], "pause"), {"reason": "away"}, 403,
                 "not_pausable")
    _api_refused(ann, api_url(tickets["held"], "pause"), {"reason": "away"}, 403,
                 "not_executor")
    _api_refused(_api(world.olga), api_url(tickets["ann"], "pause"), {"reason": "away"}, 404,
                 None)
    _api_refused(ann, api_url(tickets["ann"], "pause"), {}, 400, None)
    _api_refused(ann, api_url(tickets["ann"], "resume"), {}, 409, "not_paused")
    _api_refused(ann, api_url(tickets["ann"], "pause"), {"reason": "away", "stage": "offer"},
                 409, "stale_stage")


def test_the_api_session_needs_a_csrf_token(world: World, tickets: dict[str, Ticket]) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.ann)
    before = snapshot()
    response = client.post(api_url(tickets["ann"], "pause"), {"reason": "away"}, format="json")
    assert response.status_code == 403
    assert snapshot() == before


def test_markup_given_through_the_api_is_text_on_the_page(world: World,
                                                          tickets: dict[str, Ticket]) -> None:
    ticket = tickets["ann"]
    reason = "<img src=x onerror=alert(1)>"
    assert _api(world.ann).post(api_url(ticket, "pause"), {"reason": reason},
                                format="json").status_code == 200
    assert _last_event(ticket).payload["reason"] == reason
    page = signed_in(world.ann).get(url(ticket)).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_schema_lists_pause_and_resume(world: World) -> None:
    response = _api(world.ann).get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    pause = schema["paths"]["/api/v1/tickets/{number}/pause/"]["post"]
    ref = pause["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"] == ["reason"]
    assert {"200", "403", "404", "409"} <= set(pause["responses"])
    assert "post" in schema["paths"]["/api/v1/tickets/{number}/resume/"]
