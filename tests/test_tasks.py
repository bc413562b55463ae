"""Tasks and promise 2: an open ticket always has a next task."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from estafeta.domain.errors import BadInput, Conflict, Forbidden, SuccessorRequired
from estafeta.history.models import Event
from estafeta.tasks import services as tk
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import Activity, Ticket
from estafeta.tickets.services import ticket_close_lost

from .dbstate import refused
from .factories import World, draft


def only_task(t: Ticket) -> Task:
    return t.tasks.get(status="open")


def test_completing_the_last_task_without_a_successor_is_refused(world: World) -> None:
    t = world.ticket()
    err = refused(lambda: tk.task_complete(actor=t.owner, task=only_task(t)),
                  "successor_required", SuccessorRequired)
    assert t.number in err.message


def test_completing_the_last_task_with_a_successor_plans_it_in_the_same_step(
        world: World, now: datetime) -> None:
    t = world.ticket()
    first = only_task(t)
    tk.task_complete(actor=t.owner, task=first, result="client asked for a test drive",
                     successor=draft("Test drive", "meeting", days=2))
    first.refresh_from_db()
    assert (first.status, first.done_by, first.done_at) == ("done", t.owner, now)
    nxt = only_task(t)
    assert (nxt.title, nxt.kind, nxt.assignee, nxt.due_at) == (
        "Test drive", "meeting", t.owner, now + timedelta(days=2))
    event = Event.objects.filter(stream=t.stream).order_by("-seq").first()
    assert event is not None and event.type == "task.completed"
    assert event.payload["successor"]["id"] == nxt.pk
    assert "test drive" not in str(event.payload).lower()
    assert list(violations()) == []


def test_a_task_that_is_not_the_last_completes_alone(world: World) -> None:
    t = world.ticket()
    tk.task_plan(actor=t.owner, ticket=t, draft=draft("Send the brochure", "email", hours=2))
    tk.task_complete(actor=t.owner, task=t.tasks.order_by("pk").first())  # type: ignore[arg-type]
    assert t.tasks.filter(status="open").count() == 1


@pytest.mark.parametrize(("kind", "outcome", "contact", "activity"), [
    ("call", "done", None, ("call", "connected")),
    ("call", "done", "no_answer", ("call", "no_answer")),
    ("email", "done", None, ("email", "sent")),
    ("meeting", "done", None, ("meeting", "held")),
    ("video", "missed", None, ("video", "missed")),
    ("meeting", "missed", None, ("meeting", "missed")),
    ("call", "missed", None, None),
    ("quote", "done", None, None),
])
def test_completing_a_contact_task_records_the_contact(
        world: World, kind: str, outcome: str, contact: str | None,
        activity: tuple[str, str] | None) -> None:
    t = world.ticket(first_task=draft("Contact", kind, hours=1))
    tk.task_complete(actor=t.owner, task=only_task(t), outcome=outcome, contact_outcome=contact,
                     duration_seconds=120, successor=draft("Next", hours=5))
    found = list(Activity.objects.filter(ticket=t).values_list("kind", "outcome"))
    assert found == ([activity] if activity else [])
    if activity:
        a = Activity.objects.get(ticket=t)
        assert (a.source, a.direction, a.performed_by) == ("task", "out", t.owner)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"outcome": "half-done"}, "bad_outcome"),
    ({"contact_outcome": "held"}, "bad_outcome"),
    ({"contact_outcome": "received"}, "bad_outcome"),
    ({"duration_seconds": 90000}, "bad_duration"),
    ({"result": "x" * 5001}, "too_long"),
])
def test_bad_completions_are_refused(world: World, kwargs: dict[str, object], code: str) -> None:
    t = world.ticket()
    task = only_task(t)
    refused(lambda: tk.task_complete(actor=t.owner, task=task, successor=draft(), **kwargs),
            code)  # type: ignore[arg-type]


def test_only_the_assignee_or_a_head_completes_a_task(world: World) -> None:
    t = world.ticket(owner=world.ann)
    task = only_task(t)
    for outsider in (world.bob, world.olga, world.other_head, world.operator):
        refused(lambda u=outsider: tk.task_complete(  # type: ignore[misc]
            actor=u, task=task, successor=draft()), "not_assignee", Forbidden)
    tk.task_complete(actor=world.head, task=task, successor=draft(assignee=world.ann))
    event = Event.objects.filter(stream=t.stream).order_by("-seq").first()
    assert event is not None and event.payload["override"] is True


def test_a_completed_task_cannot_be_completed_again(world: World) -> None:
    t = world.ticket()
    task = only_task(t)
    tk.task_complete(actor=t.owner, task=task, successor=draft())
    refused(lambda: tk.task_complete(actor=t.owner, task=task, successor=draft()),
            "task_closed", Conflict)


def test_rescheduling_needs_a_reason_and_a_future_time(world: World, now: datetime) -> None:
    t = world.ticket()
    task = only_task(t)
    refused(lambda: tk.task_reschedule(actor=t.owner, task=task, due_at=now + timedelta(days=3),
                                       reason=""), "reason_required", BadInput)
    refused(lambda: tk.task_reschedule(actor=t.owner, task=task, due_at=now - timedelta(days=3),
                                       reason="oops"), "due_in_past", BadInput)
    refused(lambda: tk.task_reschedule(actor=t.owner, task=task,
                                       due_at=datetime(2026, 12, 9, 10, 0),
                                       reason="naive"), "bad_due", BadInput)
    tk.task_reschedule(actor=t.owner, task=task, due_at=now + timedelta(days=3),
                       reason="the client travels until Friday")
    task.refresh_from_db()
    assert task.due_at == now + timedelta(days=3)
    event = Event.objects.filter(stream=t.stream).order_by("-seq").first()
    assert event is not None and event.payload["reason"] == "the client travels until Friday"


def test_the_last_task_cannot_be_cancelled(world: World) -> None:
    t = world.ticket()
    refused(lambda: tk.task_cancel(actor=t.owner, task=only_task(t), reason="not needed"),
            "successor_required", SuccessorRequired)
    extra = tk.task_plan(actor=t.owner, ticket=t, draft=draft("Maybe", hours=2))
    tk.task_cancel(actor=t.owner, task=extra, reason="not needed")
    extra.refresh_from_db()
    assert (extra.status, extra.result) == ("cancelled", "not needed")


def test_tasks_go_only_to_active_people(world: World) -> None:
    from estafeta.accounts.services import user_deactivate

    t = world.ticket(owner=world.ann)
    user_deactivate(actor=None, user=world.bob, successor=world.ann)
    refused(lambda: tk.task_reassign(actor=world.ann, task=only_task(t), assignee=world.bob),
            "user_inactive", Conflict)
    refused(lambda: tk.task_plan(actor=world.ann, ticket=t,
                                 draft=draft(assignee=world.bob)), "user_inactive", Conflict)
    tk.task_reassign(actor=world.ann, task=only_task(t), assignee=world.head, reason="help")
    assert only_task(t).assignee == world.head


def test_no_tasks_are_planned_on_a_closed_ticket(world: World) -> None:
    t = world.ticket()
    t = ticket_close_lost(actor=t.owner, ticket=t, reason="price")
    refused(lambda: tk.task_plan(actor=t.owner, ticket=t, draft=draft()), "ticket_closed",
            Conflict)


def test_outsiders_cannot_plan_tasks(world: World) -> None:
    t = world.ticket()
    refused(lambda: tk.task_plan(actor=world.olga, ticket=t, draft=draft()),
            "not_participant", Forbidden)


def test_a_persons_open_tasks_come_soonest_first_in_one_query(
        world: World, django_assert_num_queries: Any) -> None:
    from estafeta.tasks.selectors import open_tasks_for_user

    for hours in (30, 5, 50):
        world.ticket(owner=world.ann, first_task=draft(f"in {hours}h", hours=hours))
    world.ticket(owner=world.bob)
    with django_assert_num_queries(1):
        rows = [(t.title, t.ticket.number, t.ticket.client.name, t.ticket.stage.name)
                for t in open_tasks_for_user(world.ann)[:50]]
    assert [r[0] for r in rows] == ["in 5h", "in 30h", "in 50h"]
    assert rows[0][2:] == ("Ivan Petrov", "New request")
