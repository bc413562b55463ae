"""A reply closes the promise: a reply sent from the ticket completes the intake "reply to the
client" task, a connected outgoing call the "call the client back" task, both linked to the
contact already logged (K1 counts it once), and the ticket's last open task stays open until a
person plans the next one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.analytics.figures import k1_contacts
from estafeta.analytics.period import Cut, Period
from estafeta.core import clock
from estafeta.domain.codes import ActivitySource, Channel, EventType, TaskStatus
from estafeta.domain.errors import BadInput, Conflict, SuccessorRequired
from estafeta.history.models import Event
from estafeta.hooks.models import HookSource
from estafeta.hooks.services import hook_source_create
from estafeta.intake.services import ActivitySpec, Arrival, intake_arrival
from estafeta.mailin.outgoing import mail_reply, reply_task
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_cancel, task_complete, tasks_fulfil
from estafeta.tickets.models import Activity, Ticket
from estafeta.tickets.services import activity_log

from .factories import PASSWORD, World, draft
from .test_hooks import call, post

pytestmark = pytest.mark.django_db

CLIENT = "ivan@example.com"
TODAY = Period.parse("2026-12")
ALL = Cut()


def client_writes(ticket: Ticket, n: int = 1) -> Task:
    """The client's email threaded into ``ticket``: intake plans the reply task."""
    intake_arrival(Arrival(
        channel=Channel.EMAIL, source="mailbox:1", external_id=f"<c{n}@client.example>",
        pipeline="sales", emails=(CLIENT,), subject="Any news?", text="Any news?",
        ticket=ticket, activity=ActivitySpec(kind="email", direction="in", outcome="received",
                                             source=ActivitySource.EMAIL_INTAKE)))
    return Task.objects.get(ticket=ticket, follow_up__kind="reply", status=TaskStatus.OPEN)


def emails_out() -> int:
    return int(k1_contacts(TODAY, ALL).total("emails_out"))


def only_open_task(ticket: Ticket, keep: Task) -> None:
    """Cancel every other open task so ``keep`` is the ticket's last one."""
    for task in Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).exclude(pk=keep.pk):
        task_cancel(actor=task.assignee, task=task, reason="not needed")


# --- replies ---------------------------------------------------------------------------------


def test_one_reply_completes_the_reply_task_and_counts_one_email(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    assert task.assignee_id == world.ann.pk
    message = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Tomorrow.")
    task.refresh_from_db()
    assert (task.status, task.done_by_id) == (TaskStatus.DONE, world.ann.pk)
    # one contact: the reply's activity, linked to the task; no second one from the task
    activity = Activity.objects.get(ticket=ticket, direction="out")
    assert activity.pk == message.activity_id and activity.task_id == task.pk
    assert emails_out() == 1
    assert reply_task(message) == task
    event = Event.objects.get(stream=ticket.stream, type=EventType.TASK_COMPLETED)
    assert event.payload["task"] == task.pk and event.payload["by_contact"] is True
    assert event.payload["activity"]["id"] == activity.pk and event.actor_id == world.ann.pk
    # the ticket keeps its stage task: promise 2 holds
    assert Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).exists()


def test_completing_after_a_reply_never_counts_twice(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Tomorrow.")
    before = Event.objects.count()
    # The seller opens the task to complete it by hand: it is already done.
    with pytest.raises(Conflict) as refused:
        task_complete(actor=world.ann, task=task)
    assert refused.value.code == "task_closed"
    assert Event.objects.count() == before
    # A second reply (nothing owed any more) is one more email, not a task completion.
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="And the price.")
    assert emails_out() == 2
    assert Event.objects.filter(stream=ticket.stream, type=EventType.TASK_COMPLETED).count() == 1


def test_a_new_message_after_the_reply_plans_a_new_reply_task(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    first = client_writes(ticket, 1)
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Tomorrow.")
    second = client_writes(ticket, 2)
    assert second.pk != first.pk
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Today then.")
    second.refresh_from_db()
    assert second.status == TaskStatus.DONE
    assert emails_out() == 2 and Activity.objects.filter(source=ActivitySource.TASK).count() == 0


def test_a_colleague_or_head_replying_completes_the_task_of_the_assignee(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    mail_reply(actor=world.head, ticket=ticket, to=CLIENT, subject="", text="I'll answer.")
    task.refresh_from_db()
    assert (task.status, task.done_by_id, task.assignee_id) == (
        TaskStatus.DONE, world.head.pk, world.ann.pk)


def test_the_last_open_task_stays_open_with_the_reply_linked(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    only_open_task(ticket, task)
    message = mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Soon.")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN  # promise 2: the ticket keeps a next task
    assert message.activity is not None
    assert Activity.objects.get(pk=message.activity.pk).task_id == task.pk
    assert reply_task(message) == task and emails_out() == 1
    # Completing it by hand still needs a successor ...
    with pytest.raises(SuccessorRequired):
        task_complete(actor=world.ann, task=task)
    # ... and reuses the reply instead of logging a second email.
    task_complete(actor=world.ann, task=task, successor=draft("Call about the offer"))
    assert emails_out() == 1
    assert Activity.objects.filter(ticket=ticket, direction="out").count() == 1
    event = Event.objects.filter(stream=ticket.stream, type=EventType.TASK_COMPLETED).last()
    assert event is not None and event.payload["activity"]["id"] == message.activity_id
    # A contact already made is not "missed".
    other = client_writes(ticket, 2)
    only_open_task(ticket, other)
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Again.")
    with pytest.raises(BadInput) as refused:
        task_complete(actor=world.ann, task=other, outcome="missed",
                      successor=draft("Call again"))
    assert refused.value.code == "contact_made"
    from django.utils import translation

    from estafeta.web.errors import describe

    with translation.override("en"):
        assert describe(refused.value).startswith("The contact this task asked for was already")


def test_a_reply_with_a_successor_completes_the_last_task(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    only_open_task(ticket, task)
    mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Soon.",
               successor=draft("Call about the offer"))
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    (nxt,) = Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN)
    assert (nxt.title, nxt.assignee_id) == ("Call about the offer", world.ann.pk)
    event = Event.objects.filter(stream=ticket.stream, type=EventType.TASK_COMPLETED).last()
    assert event is not None and event.payload["successor"]["id"] == nxt.pk


def test_a_bad_successor_writes_nothing(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    only_open_task(ticket, task)
    before = (Activity.objects.count(), Event.objects.count(), Task.objects.count())
    bad = draft("Call", hours=-1)
    with pytest.raises(BadInput):
        mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Soon.",
                   successor=bad)
    assert (Activity.objects.count(), Event.objects.count(), Task.objects.count()) == before
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_an_email_does_not_complete_a_call_back_and_a_stranger_contact_is_refused(
        world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    back = Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).get()
    assert back.kind == "call"  # the stage's "Call the client"
    email = activity_log(actor=world.ann, ticket=ticket, kind="email", direction="out",
                         outcome="sent")
    assert tasks_fulfil(actor=world.ann, ticket=ticket, tasks=[back], activity=email).done == ()
    back.refresh_from_db()
    assert back.status == TaskStatus.OPEN and email.task_id is None
    other = world.ticket(owner=world.ann, subject="Another car")
    with pytest.raises(BadInput):
        tasks_fulfil(actor=world.ann, ticket=other,
                     tasks=list(Task.objects.filter(ticket=other)), activity=email)
    incoming = activity_log(actor=world.ann, ticket=ticket, kind="email", direction="in",
                            outcome="received")
    assert tasks_fulfil(actor=world.ann, ticket=ticket, tasks=[back], activity=incoming).done == ()


def test_the_reply_page_says_what_happened_to_the_task(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    User.objects.filter(pk=world.ann.pk).update(language="en")  # her own choice beats the header
    browser = HttpClient()
    assert browser.login(username="ann", password=PASSWORD)
    url = f"/tickets/{ticket.number}/mail/reply/"
    page = browser.post(url, {"reply-to": CLIENT, "reply-text": "Tomorrow."}, follow=True,
                        headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert f"The task “{task.title}” is done." in page.content.decode()
    second = client_writes(ticket, 2)
    only_open_task(ticket, second)
    page = browser.post(url, {"reply-to": CLIENT, "reply-text": "Again."}, follow=True,
                        headers={"Accept-Language": "en"})
    assert "stays open: it is the ticket&#x27;s only task" in page.content.decode()
    second.refresh_from_db()
    assert second.status == TaskStatus.OPEN


# --- calls -----------------------------------------------------------------------------------


@pytest.fixture
def pbx(world: World) -> tuple[HookSource, str]:
    return hook_source_create(actor=world.admin, name="Office PBX", slug="pbx",
                              kind="telephony", pipeline=world.pipeline)


def missed_call(secret: str, n: int = 1) -> None:
    post("/hooks/telephony/pbx/", secret, call(call_id=f"in-{n}", outcome="missed", duration=0))


def our_call(secret: str, n: int = 1, **fields: Any) -> Any:
    values: dict[str, Any] = {"call_id": f"out-{n}", "direction": "out", "caller": "101",
                              "callee": "89123456789", "outcome": "answered"}
    values.update(fields)
    return post("/hooks/telephony/pbx/", secret, call(**values))


def calls_connected() -> int:
    return int(k1_contacts(TODAY, ALL).total("calls_connected"))


def test_a_connected_outgoing_call_completes_the_call_back(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    missed_call(secret)
    back = Task.objects.get(ticket=ticket, follow_up__kind="callback")
    assert our_call(secret).status_code == 200
    back.refresh_from_db()
    assert back.status == TaskStatus.DONE and back.done_by_id is None
    activity = Activity.objects.get(ticket=ticket, direction="out")
    assert activity.task_id == back.pk and activity.source == ActivitySource.TELEPHONY
    assert Activity.objects.filter(ticket=ticket, direction="out").count() == 1
    assert calls_connected() == 1
    event = Event.objects.get(stream=ticket.stream, type=EventType.TASK_COMPLETED)
    assert event.actor_id is None and event.payload["by_contact"] is True


def test_an_unanswered_outgoing_call_leaves_the_call_back_open(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    missed_call(secret)
    our_call(secret, outcome="busy")
    back = Task.objects.get(ticket=ticket, follow_up__kind="callback")
    assert back.status == TaskStatus.OPEN
    assert not Activity.objects.filter(task=back).exists()
    # the exchange repeats the connected call: one completion, one contact
    our_call(secret, 2)
    our_call(secret, 2)
    back.refresh_from_db()
    assert back.status == TaskStatus.DONE and calls_connected() == 1


def test_a_call_back_that_is_the_last_task_stays_open_and_is_completed_once(
        world: World, pbx: tuple[HookSource, str]) -> None:
    _, secret = pbx
    ticket = world.ticket(owner=world.ann)
    missed_call(secret)
    back = Task.objects.get(ticket=ticket, follow_up__kind="callback")
    only_open_task(ticket, back)
    our_call(secret)
    back.refresh_from_db()
    assert back.status == TaskStatus.OPEN
    linked = Activity.objects.get(task=back)
    task_complete(actor=world.ann, task=back, successor=draft("Send the offer", kind="email"))
    assert calls_connected() == 1 and Activity.objects.filter(ticket=ticket,
                                                               direction="out").count() == 1
    assert Activity.objects.get(task=back).pk == linked.pk


def test_the_reply_time_is_the_completion_time(world: World, now: datetime) -> None:
    ticket = world.ticket(owner=world.ann)
    task = client_writes(ticket)
    with clock.frozen(now + timedelta(minutes=40)):
        mail_reply(actor=world.ann, ticket=ticket, to=CLIENT, subject="", text="Here.")
    task.refresh_from_db()
    assert task.done_at == now + timedelta(minutes=40)
