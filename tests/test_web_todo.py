"""My tasks: grouping, search, the complete and reschedule dialogs, access and query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.accounts.services import user_set_own_language
from estafeta.domain.codes import TaskStatus
from estafeta.history.models import Event
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_plan
from estafeta.tickets.models import Ticket

from .dbstate import snapshot
from .factories import World, draft, later


def signed_in(user: User, *, csrf: bool = False) -> HttpClient:
    """A browser of ``user``, who reads the interface in English (the texts the tests find)."""
    if user.language != "en":
        user_set_own_language(actor=user, language="en")
        user.refresh_from_db()
    http = HttpClient(enforce_csrf_checks=csrf)
    http.force_login(user)
    return http


def open_task(ticket: Ticket) -> Task:
    return Task.objects.get(ticket=ticket, status=TaskStatus.OPEN)


def test_my_tasks_groups_overdue_today_and_upcoming(world: World) -> None:
    ticket = world.ticket(owner=world.ann)  # its first task is due in an hour: today
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Send the brochure", days=3))
    Task.objects.filter(ticket=ticket, title="Call the client").update(due_at=later(hours=-2))
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Call back at noon", hours=2))
    html = signed_in(world.ann).get("/tasks/").content.decode()
    overdue, today, upcoming = (html.index("Overdue"), html.index("Today"),
                                html.index("Upcoming"))
    assert overdue < html.index("Call the client") < today
    assert today < html.index("Call back at noon") < upcoming < html.index("Send the brochure")
    assert ticket.number in html and "Ivan Petrov" in html and "New request" in html


def test_my_tasks_shows_only_the_persons_own_tasks(world: World) -> None:
    world.ticket(owner=world.ann, subject="Ann's")
    theirs = world.ticket(owner=world.bob)
    html = signed_in(world.ann).get("/tasks/").content.decode()
    assert theirs.number not in html


def test_my_tasks_search_by_number_and_phone(world: World) -> None:
    from estafeta.clients.services import client_create

    other = client_create(actor=world.operator, name="Maria Sidorova", phones=["+7 900 111-22-33"])
    first = world.ticket(owner=world.ann)
    second = world.ticket(owner=world.ann, client=other)
    http = signed_in(world.ann)
    by_number = http.get("/tasks/", {"q": second.number}).content.decode()
    assert second.number in by_number and first.number not in by_number
    by_phone = http.get("/tasks/", {"q": "8 900 111 22 33"}).content.decode()
    assert second.number in by_phone and first.number not in by_phone


def test_my_tasks_is_for_ticket_workers_only(world: World) -> None:
    assert signed_in(world.admin).get("/tasks/").status_code == 403
    assert HttpClient().get("/tasks/").status_code == 302
    for who in (world.ann, world.head, world.director, world.operator):
        assert signed_in(who).get("/tasks/").status_code == 200


def test_my_tasks_query_count_does_not_grow_with_tasks(world: World) -> None:
    http = signed_in(world.ann)
    world.ticket(owner=world.ann)
    http.get("/tasks/")
    with CaptureQueriesContext(connection) as few:
        assert http.get("/tasks/").status_code == 200
    for _ in range(8):
        t = world.ticket(owner=world.ann)
        task_plan(actor=world.ann, ticket=t, draft=draft("Extra", days=2))
    with CaptureQueriesContext(connection) as many:
        html = http.get("/tasks/").content.decode()
    assert html.count("Extra") == 8
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_completing_a_task_that_is_not_the_last_needs_no_successor(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Second"))
    first = Task.objects.get(ticket=ticket, title="Call the client")
    http = signed_in(world.ann)
    page = http.get(f"/tasks/{first.pk}/complete/").content.decode()
    assert "last open task" not in page
    response = http.post(f"/tasks/{first.pk}/complete/", {
        "outcome": "done", "contact_outcome": "connected", "duration_minutes": "5",
        "result": "Talked", "next_kind": "call"})
    assert response.status_code == 302 and response["Location"] == "/tasks/"
    first.refresh_from_db()
    assert first.status == TaskStatus.DONE
    assert first.activities.get().duration_seconds == 300


def test_completing_the_last_task_plans_the_successor_in_the_same_dialog(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = open_task(ticket)
    http = signed_in(world.ann)
    assert "last open task" in http.get(f"/tasks/{task.pk}/complete/").content.decode()
    due = (later(days=2)).astimezone().strftime("%Y-%m-%dT%H:%M")
    response = http.post(f"/tasks/{task.pk}/complete/", {
        "outcome": "done", "contact_outcome": "connected", "next_kind": "meeting",
        "next_title": "Test drive", "next_due": due})
    assert response.status_code == 302
    successor = open_task(ticket)
    assert successor.title == "Test drive" and successor.assignee == world.ann


def test_completing_the_last_task_without_successor_is_refused_and_changes_nothing(
        world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = open_task(ticket)
    http = signed_in(world.ann)
    before = snapshot()
    response = http.post(f"/tasks/{task.pk}/complete/", {
        "outcome": "done", "contact_outcome": "connected", "next_kind": "call"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert snapshot() == before


def test_completing_someone_elses_task_is_refused(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Second"))
    task = Task.objects.get(ticket=ticket, title="Call the client")
    # Bob sees the ticket through a task of his own, but this task is Ann's.
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Bob's", assignee=world.bob))
    http = signed_in(world.bob)
    before = snapshot()
    response = http.post(f"/tasks/{task.pk}/complete/",
                                         {"outcome": "done", "next_kind": "call"})
    assert response.status_code == 403
    assert "assignee" in response.content.decode()
    assert snapshot() == before


def test_reschedule_records_the_reason(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = open_task(ticket)
    http = signed_in(world.ann)
    new_due = (later(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M")
    response = http.post(f"/tasks/{task.pk}/reschedule/?next=/tickets/{ticket.number}/",
                         {"due_at": new_due, "reason": "Client <b>asked</b>"})
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.number}/"
    task.refresh_from_db()
    assert task.due_at > later(days=2)
    event = Event.objects.filter(type="task.rescheduled").get()
    assert event.payload["reason"] == "Client <b>asked</b>"


def test_reschedule_without_a_reason_changes_nothing(world: World) -> None:
    task = open_task(world.ticket(owner=world.ann))
    http = signed_in(world.ann)
    before = snapshot()
    response = http.post(f"/tasks/{task.pk}/reschedule/", {
        "due_at": (later(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M"), "reason": ""})
    assert response.status_code == 400
    assert snapshot() == before


def test_reschedule_into_the_past_is_refused(world: World) -> None:
    task = open_task(world.ticket(owner=world.ann))
    http = signed_in(world.ann)
    before = snapshot()
    response = http.post(f"/tasks/{task.pk}/reschedule/", {
        "due_at": (later(days=-3)).astimezone().strftime("%Y-%m-%dT%H:%M"), "reason": "late"})
    assert response.status_code == 400
    assert "past" in response.content.decode()
    assert snapshot() == before


def test_next_must_stay_on_this_site(world: World) -> None:
    task = open_task(world.ticket(owner=world.ann))
    response = signed_in(world.ann).post(f"/tasks/{task.pk}/reschedule/", {
        "due_at": (later(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M"), "reason": "moved",
        "next": "https://evil.example/"})
    assert response["Location"] == "/tasks/"


@pytest.mark.parametrize("path", ["complete", "reschedule"])
def test_another_teams_task_is_not_found(world: World, path: str) -> None:
    task = open_task(world.ticket(owner=world.olga))
    http = signed_in(world.ann)
    assert http.get(f"/tasks/{task.pk}/{path}/").status_code == 404
    assert http.post(f"/tasks/{task.pk}/{path}/", {"reason": "x"}).status_code == 404
    assert http.get(f"/tasks/{task.pk + 1000}/{path}/").status_code == 404


def test_task_dialogs_refuse_a_post_without_csrf(world: World) -> None:
    task = open_task(world.ticket(owner=world.ann))
    http = signed_in(world.ann, csrf=True)
    before = snapshot()
    response = http.post(f"/tasks/{task.pk}/reschedule/", {
        "due_at": (later(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M"), "reason": "moved"})
    assert response.status_code == 403
    assert snapshot() == before


def test_the_dialog_is_a_fragment_for_htmx(world: World) -> None:
    task = open_task(world.ticket(owner=world.ann))
    html = signed_in(world.ann).get(f"/tasks/{task.pk}/reschedule/",
                                    headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith("<dialog") and "<html" not in html


def test_task_title_is_shown_escaped(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task_plan(actor=world.ann, ticket=ticket,
              draft=draft("<script>alert(1)</script>", days=1))
    html = signed_in(world.ann).get("/tasks/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_closed_task_dialog_goes_back(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Second"))
    task = Task.objects.get(ticket=ticket, title="Call the client")
    http = signed_in(world.ann)
    http.post(f"/tasks/{task.pk}/complete/", {"outcome": "missed", "next_kind": "call"})
    assert http.get(f"/tasks/{task.pk}/complete/").status_code == 302


def test_my_tasks_paginates(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    for i in range(26):
        task_plan(actor=world.ann, ticket=ticket, draft=draft(f"Later task {i:02d}", days=5))
    http = signed_in(world.ann)
    first = http.get("/tasks/").content.decode()
    assert "Page 1 of 2" in first and "Later task 23" in first and "Later task 24" not in first
    second = http.get("/tasks/", {"page": "2"}).content.decode()
    assert "Later task 24" in second and "Later task 25" in second
    assert http.get("/tasks/", {"page": "999"}).status_code == 200
