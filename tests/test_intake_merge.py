"""Duplicates and merge (issue 6): heads merge or dismiss flagged tickets, merged numbers keep
resolving, nothing is deleted; reply tasks escalate as unanswered_message once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.control.models import Escalation
from estafeta.control.services import monitor_pass
from estafeta.domain.codes import Channel, EventType, TaskStatus, TicketStatus
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.history.models import Event
from estafeta.intake.models import DuplicateFlag
from estafeta.intake.selectors import flags_for, ticket_resolve
from estafeta.intake.services import (
    Arrival,
    duplicate_dismiss,
    flag_merge,
    intake_arrival,
    ticket_merge,
)
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import ticket_search

from .factories import World
from .test_intake_routing import mail, set_intake


def flagged(world: World) -> tuple[Ticket, Ticket, DuplicateFlag]:
    set_intake(world, "{duplicates: flag}")
    old = world.ticket()
    new = intake_arrival(mail(emails=("ivan@example.com",))).ticket
    return old, new, DuplicateFlag.objects.get(ticket=new)


def signed_in(user: User) -> HttpClient:
    User.objects.filter(pk=user.pk).update(language="en")
    http = HttpClient()
    http.force_login(user)
    return http


def test_merge_voids_the_ticket_keeps_everything_and_both_numbers_resolve(world: World) -> None:
    old, new, flag = flagged(world)
    tasks = set(Task.objects.filter(ticket=new).values_list("pk", flat=True))
    survivor = flag_merge(actor=world.head, flag=flag, note="same car")
    assert survivor.pk == old.pk
    new.refresh_from_db()
    assert new.status == TicketStatus.VOID and new.merged_into_id == old.pk
    assert new.duplicate_of_id == old.pk and new.close_note.startswith(f"merged into {old.number}")
    assert set(Task.objects.filter(ticket=new).values_list("pk", flat=True)) == tasks
    assert not Task.objects.filter(ticket=new, status=TaskStatus.OPEN).exists()
    flag.refresh_from_db()
    assert (flag.status, flag.decided_by_id, flag.note) == ("merged", world.head.pk, "same car")
    voided = Event.objects.get(stream=new.stream, type=EventType.TICKET_VOIDED).payload
    assert voided["reason"] == "merged" and voided["merged_into"] == old.number
    merged = Event.objects.get(stream=old.stream, type=EventType.TICKET_MERGED).payload
    assert merged["merged"] == new.number
    assert ticket_resolve(new.number).pk == old.pk and ticket_resolve(old.number).pk == old.pk
    assert set(Ticket.objects.filter(ticket_search(new.number))) == {new, old}
    # A later message threaded into the merged ticket lands on the survivor.
    out = intake_arrival(mail("<later@example.com>", ticket=new))
    assert out.ticket.pk == old.pk and not out.created


@pytest.mark.parametrize("who", ["ann", "olga", "other_head", "operator"])
def test_merge_is_refused_to_sellers_and_other_teams(world: World, who: str) -> None:
    old, new, flag = flagged(world)
    with pytest.raises(Forbidden):
        ticket_merge(actor=getattr(world, who), ticket=new, into=old)
    with pytest.raises(Forbidden):
        duplicate_dismiss(actor=getattr(world, who), flag=flag)
    new.refresh_from_db()
    assert new.status == TicketStatus.OPEN and new.merged_into_id is None


def test_merge_refusals_change_nothing(world: World) -> None:
    old, new, flag = flagged(world)
    with pytest.raises(BadInput):
        ticket_merge(actor=world.director, ticket=old, into=old)
    ticket_merge(actor=world.director, ticket=new, into=old)
    with pytest.raises(Conflict):
        ticket_merge(actor=world.director, ticket=new, into=old)  # already void
    with pytest.raises(Conflict):
        ticket_merge(actor=world.director, ticket=old, into=new)  # into a void ticket
    with pytest.raises(Conflict):
        duplicate_dismiss(actor=world.director, flag=flag)  # decided by the merge


def test_dismiss_keeps_both_tickets(world: World) -> None:
    old, new, flag = flagged(world)
    assert list(flags_for(world.head)) == [flag] and list(flags_for(world.other_head)) == []
    assert list(flags_for(world.director)) == [flag] and list(flags_for(world.ann)) == []
    duplicate_dismiss(actor=world.head, flag=flag, note="another car")
    flag.refresh_from_db()
    assert flag.status == "dismissed" and list(flags_for(world.head)) == []
    assert Ticket.objects.filter(pk__in=(old.pk, new.pk), status="open").count() == 2
    assert Event.objects.filter(stream=new.stream, type=EventType.DUPLICATE_DISMISSED).count() == 1


def test_reply_task_overdue_escalates_as_unanswered_message_exactly_once(world: World) -> None:
    ticket = world.ticket()
    intake_arrival(mail(emails=("ivan@example.com",)))
    intake_arrival(mail("<m2@example.com>", emails=("ivan@example.com",)))
    reply = Task.objects.get(follow_up__kind="reply")
    report = monitor_pass(now=reply.due_at + timedelta(minutes=1))
    assert report.escalated["unanswered_message/head"] == 1
    assert Escalation.objects.filter(task=reply).values_list("reason", flat=True).get() == (
        "unanswered_message")
    assert monitor_pass(now=reply.due_at + timedelta(minutes=5)).escalated[
        "unanswered_message/head"] == 0
    assert Escalation.objects.filter(task=reply, level="head").count() == 1
    # The stage's own task stays a plain overdue task.
    first = Task.objects.filter(ticket=ticket).exclude(pk=reply.pk).get()
    assert Escalation.objects.get(task=first, level="head").reason == "task_overdue"


# --- web ---------------------------------------------------------------------------------


def test_duplicates_page_merge_and_dismiss_through_the_web(world: World) -> None:
    old, new, flag = flagged(world)
    http = signed_in(world.head)
    page = http.get("/duplicates/")
    assert page.status_code == 200 and new.number in page.content.decode()
    assert signed_in(world.ann).get("/duplicates/").status_code == 403
    assert signed_in(world.other_head).post(f"/duplicates/{flag.pk}/merge/").status_code == 404
    csrf = HttpClient(enforce_csrf_checks=True)
    csrf.force_login(world.head)
    assert csrf.post(f"/duplicates/{flag.pk}/merge/").status_code == 403
    response = http.post(f"/duplicates/{flag.pk}/merge/")
    assert response.status_code == 302
    new.refresh_from_db()
    assert new.merged_into_id == old.pk
    # The old number opens the survivor with a notice; ?merged=1 shows it as it was.
    opened = http.get(f"/tickets/{new.number}/", follow=True)
    assert opened.redirect_chain[-1][0] == f"/tickets/{old.number}/"
    assert f"{new.number} was merged into {old.number}" in opened.content.decode()
    as_was = http.get(f"/tickets/{new.number}/?merged=1")
    assert as_was.status_code == 200 and "This ticket was merged into" in as_was.content.decode()
    # Searching the old number lists the survivor too.
    listed = http.get("/tickets/", {"q": new.number}).content.decode()
    assert f"/tickets/{old.number}/" in listed


def test_ticket_page_merge_form(world: World) -> None:
    old = world.ticket()
    other = world.ticket()
    http = signed_in(world.head)
    assert "Merge into ticket" in http.get(f"/tickets/{other.number}/").content.decode()
    assert "Merge into ticket" not in signed_in(world.ann).get(
        f"/tickets/{other.number}/").content.decode()
    bad = http.post(f"/tickets/{other.number}/merge/", {"merge-into": "Z-0000-1"}, follow=True)
    assert "There is no such ticket" in bad.content.decode()
    done = http.post(f"/tickets/{other.number}/merge/",
                     {"merge-into": old.number, "merge-reason": "same request"})
    assert done.status_code == 302 and done["Location"] == f"/tickets/{old.number}/"
    other.refresh_from_db()
    assert other.merged_into_id == old.pk
    assert signed_in(world.ann).post(f"/tickets/{old.number}/merge/",
                                     {"merge-into": other.number}).status_code == 403


def test_dismiss_through_the_web(world: World) -> None:
    flag = flagged(world)[2]
    http = signed_in(world.director)
    assert http.post(f"/duplicates/{flag.pk}/dismiss/", {"note": "x" * 2001}).status_code == 400
    assert http.post(f"/duplicates/{flag.pk}/dismiss/", {"note": "new car"}).status_code == 302
    flag.refresh_from_db()
    assert flag.status == "dismissed" and flag.note == "new car"
    assert http.post(f"/duplicates/{flag.pk}/dismiss/").status_code == 404


def test_channel_enum_accepts_plain_strings(world: World) -> None:
    out = intake_arrival(Arrival(channel="messenger", source="messenger:tg",  # type: ignore[arg-type]
                                 external_id="42", pipeline="sales", phones=("+79123456789",),
                                 text="Hi"))
    assert out.ticket.channel == Channel.MESSENGER


# --- API and the pipeline file -----------------------------------------------------------


def test_api_lists_merges_and_dismisses_flags(world: World) -> None:
    from rest_framework.test import APIClient

    old, new, flag = flagged(world)
    api = APIClient()
    api.force_authenticate(world.head)
    listed = api.get("/api/v1/duplicates/").json()
    assert [(r["ticket"], r["of"], r["status"]) for r in listed["results"]] == [
        (new.number, old.number, "open")]
    api.force_authenticate(world.other_head)
    assert api.get("/api/v1/duplicates/").json()["results"] == []
    assert api.post(f"/api/v1/duplicates/{flag.pk}/merge/", {}, format="json").status_code == 404
    api.force_authenticate(world.ann)
    assert api.post(f"/api/v1/duplicates/{flag.pk}/dismiss/", {},
                    format="json").status_code == 403
    api.force_authenticate(world.head)
    merged = api.post(f"/api/v1/duplicates/{flag.pk}/merge/", {"note": "same"}, format="json")
    assert merged.status_code == 200 and merged.json()["number"] == old.number
    again = api.post(f"/api/v1/duplicates/{flag.pk}/dismiss/", {}, format="json")
    assert again.status_code == 404  # decided flags are no longer open


def test_api_dismiss_answers_the_flag(world: World) -> None:
    from rest_framework.test import APIClient

    _, new, flag = flagged(world)
    api = APIClient()
    api.force_authenticate(world.director)
    answer = api.post(f"/api/v1/duplicates/{flag.pk}/dismiss/", {"note": "n" * 2001},
                      format="json")
    assert answer.status_code == 400
    answer = api.post(f"/api/v1/duplicates/{flag.pk}/dismiss/", {"note": "other"},
                      format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "dismissed"
    assert answer.json()["ticket"] == new.number


@pytest.mark.parametrize(("intake", "problem"), [
    ("{duplicates: merge}", "intake.duplicates"),
    ("{first_response: 0m}", "intake.first_response"),
    ("{first_response: soon}", "intake.first_response"),
    ("{reply: true}", "intake.reply"),
])
def test_pipeline_intake_section_is_validated(world: World, intake: str, problem: str) -> None:
    from estafeta.domain.errors import PipelineInvalid

    with pytest.raises(PipelineInvalid) as caught:
        set_intake(world, intake)
    assert any(p.startswith(problem) for p in caught.value.params["problems"]), (
        caught.value.params)


def test_the_timeline_names_intake_and_merge_events(world: World) -> None:
    old, new, flag = flagged(world)
    flag_merge(actor=world.head, flag=flag)
    html = signed_in(world.head).get(f"/tickets/{old.number}/").content.decode()
    assert "Another ticket merged into this one" in html and new.number in html
    html = signed_in(world.head).get(f"/tickets/{new.number}/?merged=1").content.decode()
    assert "Request received" in html and "intake.received" not in html
