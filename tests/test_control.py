"""The monitor: late work escalates up the ladder, each level once, with its event and outbox
rows in the same transaction (the dealership story of the design, and its variations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from estafeta.accounts.services import absence_add
from estafeta.control.models import Escalation
from estafeta.control.services import escalation_acknowledge, monitor_pass
from estafeta.core import clock
from estafeta.domain.errors import Conflict, Forbidden, PipelineInvalid
from estafeta.domain.escalation import DEFAULT_LADDER, Notify, Trigger, ladder_from_data
from estafeta.domain.pipeline import parse_pipeline
from estafeta.history.models import Event
from estafeta.notifications.models import Notification
from estafeta.notifications.services import deliver_pending
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, task_complete, task_reschedule
from estafeta.tickets.services import activity_log, stage_pause, ticket_create

from .factories import World

MSK = ZoneInfo("Europe/Moscow")
STORY_PIPELINE = """
code: story
name: Cars
stages:
  - {code: deal, name: Deal, executor: {rule: keep_owner},
     next_task: {kind: call, title: Call the client, due: 1h}}
  - {code: won, name: Won, semantic: won}
"""


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK).astimezone(UTC)  # type: ignore[misc]


def dealership_story(world: World) -> Task:
    """Wednesday: a request; the seller promises the contract by Monday 18:00."""
    world.ann.email = "ann@example.com"
    world.ann.save(update_fields=["email"])
    world.head.email = "helen@example.com"
    world.head.save(update_fields=["email"])
    world.director.email = "dora@example.com"
    world.director.save(update_fields=["email"])
    # A pipeline whose stages carry no SLA: the story is about the promise alone.
    pipeline_load(actor=None, source="story.yaml", text=STORY_PIPELINE)
    ticket = ticket_create(actor=world.operator, pipeline="story", client=world.client,
                           channel="walk_in", subject="A car", owner=world.ann)
    # The first task (call the client) is done; the promise is the next task.
    first = Task.objects.get(ticket=ticket, status="open")
    task_complete(actor=world.ann, task=first, successor=TaskDraft(
        kind="contract", title="Prepare the contract (client travels from Tuesday)",
        due_at=msk(2026, 12, 7, 18, 0), assignee=world.ann), result="chose the car")
    return Task.objects.get(ticket=ticket, status="open")


def sent_to(console: str) -> list[str]:
    """Recipients of the mails the console backend printed."""
    return [line.removeprefix("To: ") for line in console.splitlines() if line.startswith("To: ")]


def escalations(**filters: object) -> list[tuple[str, str, str]]:
    return sorted(Escalation.objects.filter(**filters).values_list(
        "subject", "level", "recipient__username"))


def test_default_ladder_reminds_at_risk_then_head_then_director_four_business_hours_later(
) -> None:
    assert [(s.level, s.when, s.notify, str(s.after)) for s in DEFAULT_LADDER] == [
        ("remind", Trigger.RISK, Notify.EXECUTOR, "0m"),
        ("head", Trigger.BREACH, Notify.HEAD, "0m"),
        ("director", Trigger.BREACH, Notify.DIRECTOR, "4h"),
    ]


def test_a_pipeline_may_write_its_own_ladder_and_a_wrong_one_is_refused_with_reasons() -> None:
    base = {"code": "p", "name": "P", "stages": [
        {"code": "a", "name": "A", "executor": {"rule": "keep_owner"},
         "next_task": {"kind": "call", "title": "Call"}},
        {"code": "won", "name": "Won", "semantic": "won"}]}
    spec = parse_pipeline({**base, "escalation": [
        {"level": "head", "when": "breach", "notify": "head"},
        {"level": "director", "when": "breach", "after": "1d", "notify": "director"}]})
    ladder = ladder_from_data(spec.to_data()["escalation"])
    assert [(s.level, str(s.after)) for s in ladder] == [("head", "0m"), ("director", "1d")]
    assert ladder_from_data(parse_pipeline(base).to_data().get("escalation")) == DEFAULT_LADDER
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline({**base, "escalation": [
            {"level": "head", "when": "later", "notify": "head"},
            {"level": "x", "when": "breach", "after": "soon", "notify": "boss"}]})
    text = " ".join(caught.value.params["problems"])
    assert "escalation[0].when" in text and "escalation[1].after" in text
    assert "escalation[1].notify" in text
    with pytest.raises(PipelineInvalid, match="used twice"):
        parse_pipeline({**base, "escalation": [
            {"level": "head", "when": "breach", "notify": "head"},
            {"level": "head", "when": "breach", "notify": "director"}]})


def test_the_dealership_story_escalates_to_the_head_once_and_to_the_director_next_afternoon(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    promise = dealership_story(world)
    ticket = promise.ticket
    # Monday 17:00: not late yet; nothing happens.
    assert monitor_pass(now=msk(2026, 12, 7, 17, 0)).total == 0
    # Monday 19:00: the promise is an hour late: the head of sales hears of it, once.
    report = monitor_pass(now=msk(2026, 12, 7, 19, 0))
    assert report.escalated == {"task_overdue/head": 1}
    assert escalations() == [(f"task:{promise.pk}", "head", "helen")]
    event = Event.objects.get(ticket=ticket, type="escalation.raised")
    assert event.payload["level"] == "head" and event.payload["reason"] == "task_overdue"
    rows = Notification.objects.filter(recipient=world.head, kind="escalation")
    assert sorted(rows.values_list("channel", flat=True)) == ["email", "inapp"]
    assert {n.payload["promise"] for n in rows} == {promise.title}
    # Delivery (no SMTP configured: the console backend prints the mail): the email names the
    # ticket's number, the client and the promise.
    capsys.readouterr()
    deliver_pending(now=msk(2026, 12, 7, 19, 0))
    printed = capsys.readouterr().out
    assert sent_to(printed) == ["helen@example.com"]
    assert ticket.number in printed and "Ivan Petrov" in printed and promise.title in printed
    # ...and when it was promised, in the company's time, and who is told, in words.
    assert "07.12.2026 18:00 MSK" in printed
    assert "руководитель отдела продаж" in printed or "the head of sales" in printed
    # A second pass changes nothing: no row, no event, no notification, no mail.
    counts = (Escalation.objects.count(), Event.objects.count(), Notification.objects.count())
    assert monitor_pass(now=msk(2026, 12, 7, 19, 5)).total == 0
    deliver_pending(now=msk(2026, 12, 7, 19, 5))
    assert (Escalation.objects.count(), Event.objects.count(),
            Notification.objects.count()) == counts
    assert sent_to(capsys.readouterr().out) == []
    # Tuesday morning, 12:00: 3 business hours since the breach (9-12): not yet the director.
    assert monitor_pass(now=msk(2026, 12, 8, 12, 0)).total == 0
    # Tuesday afternoon: 4 business hours have passed (9-13): the director hears of it.
    report = monitor_pass(now=msk(2026, 12, 8, 15, 0))
    assert report.escalated == {"task_overdue/director": 1}
    assert escalations() == [(f"task:{promise.pk}", "director", "dora"),
                             (f"task:{promise.pk}", "head", "helen")]
    assert monitor_pass(now=msk(2026, 12, 8, 16, 0)).total == 0
    deliver_pending(now=msk(2026, 12, 8, 16, 0))
    assert sent_to(capsys.readouterr().out) == ["dora@example.com"]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_done_work_is_not_escalated_even_when_read_as_late_before(world: World) -> None:
    promise = dealership_story(world)
    with clock.frozen(msk(2026, 12, 7, 17, 30)):
        task_complete(actor=world.ann, task=promise, result="sent",
                      successor=TaskDraft(kind="call", title="Call about the contract",
                                          due_at=msk(2026, 12, 9, 12, 0)))
    assert monitor_pass(now=msk(2026, 12, 7, 19, 0)).total == 0
    assert not Escalation.objects.exists()


def test_a_rescheduled_task_escalates_on_its_new_due_time(world: World) -> None:
    promise = dealership_story(world)
    with clock.frozen(msk(2026, 12, 7, 12, 0)):
        task_reschedule(actor=world.ann, task=promise, due_at=msk(2026, 12, 9, 18, 0),
                        reason="the client asked for Wednesday")
    assert monitor_pass(now=msk(2026, 12, 7, 19, 0)).total == 0
    assert monitor_pass(now=msk(2026, 12, 9, 18, 30)).escalated == {"task_overdue/head": 1}


def test_a_head_with_an_overdue_task_of_their_own_goes_to_the_director(world: World) -> None:
    ticket = world.ticket(owner=world.head)
    task = Task.objects.get(ticket=ticket, status="open")
    monitor_pass(now=task.due_at + timedelta(minutes=1))
    assert escalations() == [(f"task:{task.pk}", "head", "dora")]


def test_an_absent_owner_escalates_their_open_tickets_to_the_head_once_per_absence(
        world: World, now: datetime) -> None:
    pipeline_load(actor=None, source="story.yaml", text=STORY_PIPELINE)
    ticket = ticket_create(actor=world.operator, pipeline="story", client=world.client,
                           channel="walk_in", subject="A car", owner=world.bob)
    task_reschedule(actor=world.bob, task=Task.objects.get(ticket=ticket),
                    due_at=now + timedelta(days=30), reason="the client calls back")
    absence_add(actor=world.head, user=world.bob, starts_at=now + timedelta(hours=1),
                ends_at=now + timedelta(days=3), reason="sick")
    assert monitor_pass(now=now).total == 0
    report = monitor_pass(now=now + timedelta(hours=2))
    assert report.escalated == {"owner_unavailable/head": 1}
    assert monitor_pass(now=now + timedelta(hours=3)).total == 0
    assert Escalation.objects.get().recipient == world.head


def test_acknowledging_is_for_the_teams_head_or_a_director_and_is_recorded_once(
        world: World) -> None:
    promise = dealership_story(world)
    monitor_pass(now=msk(2026, 12, 7, 19, 0))
    escalation = Escalation.objects.get()
    with pytest.raises(Forbidden):
        escalation_acknowledge(actor=world.ann, escalation=escalation)
    with pytest.raises(Forbidden):
        escalation_acknowledge(actor=world.other_head, escalation=escalation)
    assert Escalation.objects.get().acknowledged_at is None
    with clock.frozen(msk(2026, 12, 7, 20, 0)):
        done = escalation_acknowledge(actor=world.head, escalation=escalation)
    assert done.acknowledged_by == world.head and done.acknowledged_at == msk(2026, 12, 7, 20)
    assert Event.objects.filter(ticket=promise.ticket, type="escalation.acknowledged").count() == 1
    with pytest.raises(Conflict):
        escalation_acknowledge(actor=world.director, escalation=escalation)
    # Acknowledged or not, the level is never raised again.
    assert monitor_pass(now=msk(2026, 12, 7, 21, 0)).total == 0


def test_a_stage_sla_reminds_the_executor_at_risk_then_goes_to_the_head_and_the_director(
        world: World) -> None:
    # Wednesday 10:00: a new request, stage "new" has 2 business hours: at risk at 11:36 (80%),
    # breached at 12:00; its first task (call the client) is due at 11:00.
    ticket = world.ticket(owner=world.ann)
    visit = ticket.visits.get()
    assert (visit.sla_risk_at, visit.sla_due_at) == (msk(2026, 12, 2, 11, 36),
                                                   msk(2026, 12, 2, 12, 0))
    assert monitor_pass(now=msk(2026, 12, 2, 10, 59)).total == 0
    assert monitor_pass(now=msk(2026, 12, 2, 11, 40)).escalated == {
        "task_overdue/head": 1, "stage_at_risk/remind": 1}
    assert Escalation.objects.get(level="remind").recipient == world.ann
    assert monitor_pass(now=msk(2026, 12, 2, 12, 5)).escalated == {"stage_breached/head": 1}
    # Four business hours after 11:00 is 16:00 (lunch 13-14); after 12:00 it is 17:00.
    assert monitor_pass(now=msk(2026, 12, 2, 16, 10)).escalated == {"task_overdue/director": 1}
    assert monitor_pass(now=msk(2026, 12, 2, 17, 5)).escalated == {
        "stage_breached/director": 1}
    assert escalations(visit=visit) == [(f"visit:{visit.pk}", "director", "dora"),
                                        (f"visit:{visit.pk}", "head", "helen"),
                                        (f"visit:{visit.pk}", "remind", "ann")]
    assert monitor_pass(now=msk(2026, 12, 3, 17, 5)).total == 0


def test_a_paused_stage_is_not_escalated(world: World) -> None:
    pausable = (Path(__file__).parent / "pipelines" / "sales.yaml").read_text().replace(
        "    sla: 2h\n", "    sla: 2h\n    pausable: true\n", 1)
    pipeline_load(actor=None, source="sales.yaml", text=pausable)
    ticket = world.ticket(owner=world.ann)
    stage_pause(actor=world.ann, ticket=ticket, reason="the client is away until Monday")
    report = monitor_pass(now=msk(2026, 12, 2, 12, 30))
    assert report.escalated == {"task_overdue/head": 1}


def test_a_ticket_left_without_a_next_task_is_reported_loudly_to_the_admins(
        world: World, now: datetime, caplog: pytest.LogCaptureFixture) -> None:
    ticket = world.ticket(owner=world.ann)
    assert monitor_pass(now=now).total == 0  # the cursor starts here
    # Promise 2 broken behind the services' back (as a bad import or a bug would): the open
    # task disappears; the next change on the ticket brings it to the monitor's attention.
    Task.objects.filter(ticket=ticket).update(status="cancelled", done_at=now)
    activity_log(actor=world.ann, ticket=ticket, kind="call", direction="out",
                 outcome="no_answer")
    with caplog.at_level("ERROR", logger="estafeta.control"):
        report = monitor_pass(now=now + timedelta(minutes=1))
    assert report.escalated == {"no_next_task/admins": 1}
    assert f"ticket {ticket.number} is open without a valid next task" in caplog.text
    assert Notification.objects.filter(recipient=world.admin, kind="escalation").exists()
    assert monitor_pass(now=now + timedelta(minutes=2)).total == 0
