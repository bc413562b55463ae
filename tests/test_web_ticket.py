"""The ticket page: what each role sees, every action's happy path and refusal, escaping,
CSRF, access (404 alike for missing and forbidden) and a fixed number of queries."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.accounts.services import user_set_own_language
from estafeta.domain.codes import TaskStatus, TicketStatus
from estafeta.history.models import Event
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_plan
from estafeta.tickets.models import Activity, Document, StageVisit, Ticket
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    stage_close,
    ticket_close_lost,
)

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


def url(ticket: Ticket, action: str = "") -> str:
    return f"/tickets/{ticket.number}/{action + '/' if action else ''}"


def refused_post(http: HttpClient, path: str, data: dict[str, Any], status: int,
                 text: str | None = None, **extra: Any) -> str:
    """POST and assert the page answered ``status`` (with ``text``) and nothing changed."""
    before = snapshot()
    response = http.post(path, data, **extra)
    assert response.status_code == status, response.content.decode()[-3000:]
    html = response.content.decode()
    if text is not None:
        assert text in html
    assert snapshot() == before
    return html


@pytest.fixture
def ticket(world: World) -> Ticket:
    return world.ticket(owner=world.ann)


# --- seeing the page ---------------------------------------------------------------------------


def test_the_page_shows_the_ticket_to_its_owner(world: World, ticket: Ticket) -> None:
    html = signed_in(world.ann).get(url(ticket)).content.decode()
    for text in (ticket.number, "A car for the family", "Ivan Petrov", "+79123456789",
                 "ivan@example.com", "Sales", "New request", "Offer", "Contract",
                 "Client contacted", "What the client needs", "Close stage", "Call the client",
                 "Ticket registered", "Log a contact", "Record a quote"):
        assert text in html, text
    assert 'aria-current="step">New request' in html
    assert "Reassign" not in html  # heads only
    assert "Delete" not in html and "delete" not in html


@pytest.mark.parametrize(("who", "status", "can_reassign"), [
    ("ann", 200, False), ("head", 200, True), ("director", 200, True), ("operator", 200, False),
    ("bob", 404, False), ("olga", 404, False), ("other_head", 404, False), ("admin", 403, False),
])
def test_each_role_sees_the_ticket_or_not(world: World, ticket: Ticket, who: str, status: int,
                                          can_reassign: bool) -> None:
    response = signed_in(getattr(world, who)).get(url(ticket))
    assert response.status_code == status
    if status == 200:
        assert ("New owner" in response.content.decode()) is can_reassign


def test_an_operator_sees_only_the_tickets_they_created(world: World) -> None:
    mine = world.ticket(owner=world.ann)
    theirs = world.ticket(owner=world.ann, actor=world.head)
    http = signed_in(world.operator)
    assert http.get(url(mine)).status_code == 200
    assert http.get(url(theirs)).status_code == 404
    assert "Close stage" not in http.get(url(mine)).content.decode()


def test_missing_and_guessed_numbers_are_not_found_alike(world: World) -> None:
    theirs = world.ticket(owner=world.olga)
    http = signed_in(world.ann)
    prefix, serial = theirs.number.rsplit("-", 1)
    for number in (theirs.number, f"{prefix}-{int(serial) + 1:06d}",
                   f"{prefix}-{int(serial) + 2:06d}", "nonsense", "Z-2026-999999"):
        response = http.get(f"/tickets/{number}/")
        assert response.status_code == 404, number
        assert "There is no such ticket." in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(world: World, ticket: Ticket) -> None:
    response = HttpClient().get(url(ticket))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert HttpClient().post(url(ticket, "close"), {"stage": "new"}).status_code == 302


def test_actions_on_another_teams_ticket_are_not_found_and_change_nothing(world: World) -> None:
    theirs = world.ticket(owner=world.olga)
    http = signed_in(world.ann)
    for action, data in [("close", {"stage": "new"}), ("lost", {"lost-reason": "price"}),
                         ("void", {"void-reason": "spam"}), ("reassign", {}), ("reopen", {}),
                         ("tasks", {}), ("contacts", {}), ("documents", {}), ("won", {}),
                         ("items/contacted", {"stage": "new"})]:
        refused_post(http, url(theirs, action), data, 404)


def test_actions_need_a_post(world: World, ticket: Ticket) -> None:
    assert signed_in(world.ann).get(url(ticket, "close")).status_code == 405


def test_a_post_without_csrf_token_is_refused(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann, csrf=True)
    refused_post(http, url(ticket, "items/contacted"), {"stage": "new"}, 403)
    refused_post(http, url(ticket, "close"), {"stage": "new"}, 403)


# --- the checklist and the stage ---------------------------------------------------------------


def test_checklist_items_take_their_evidence(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    assert http.post(url(ticket, "items/contacted"), {"stage": "new"}).status_code == 302
    assert http.post(url(ticket, "items/need"),
                     {"stage": "new", "item-need-evidence": "A <b>family</b> car"}
                     ).status_code == 302
    assert http.post(url(ticket, "items/budget"),
                     {"stage": "new", "item-budget-evidence": "1 250 000,50"}).status_code == 302
    html = http.get(url(ticket)).content.decode()
    assert "A &lt;b&gt;family&lt;/b&gt; car" in html and "<b>family</b>" not in html
    assert "1250000.50" in html


def test_evidence_that_does_not_fit_is_refused(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    refused_post(http, url(ticket, "items/budget"),
                 {"stage": "new", "item-budget-evidence": "a lot"}, 400, "Enter an amount")
    refused_post(http, url(ticket, "items/need"), {"stage": "new", "item-need-evidence": ""},
                 400, "This field is required")
    refused_post(http, url(ticket, "items/nosuch"), {"stage": "new"}, 400,
                 "There is no such checklist item")


def test_a_stale_stage_is_refused_as_a_conflict(world: World, ticket: Ticket) -> None:
    refused_post(signed_in(world.ann), url(ticket, "items/contacted"), {"stage": "offer"}, 409,
                 "has meanwhile moved")


def test_closing_a_stage_explains_what_is_missing(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    checklist_item_complete(actor=world.ann, ticket=ticket, stage="new", item="contacted")
    page = http.get(url(ticket)).content.decode()
    assert "Still to do before the stage closes: What the client needs" in page
    assert "close-amount" not in page  # only when the move can win
    html = refused_post(http, url(ticket, "close"), {"stage": "new"}, 400,
                        "Required items not done: What the client needs.")
    assert "Client contacted;" not in html


def test_closing_a_stage_moves_the_ticket_on(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    http = signed_in(world.ann)
    response = http.post(url(ticket, "close"), {"stage": "new", "close-to": "offer"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.stage.code == "offer"
    html = http.get(url(ticket)).content.decode()
    assert "Quote number" in html and 'aria-current="step">Offer' in html


def test_closing_a_stage_can_skip_a_skippable_stage(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    signed_in(world.ann).post(url(ticket, "close"), {"stage": "new", "close-to": "contract"})
    ticket.refresh_from_db()
    assert ticket.stage.code == "contract"


def test_only_the_executor_or_a_head_closes_a_stage(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Bob helps", assignee=world.bob))
    refused_post(signed_in(world.bob), url(ticket, "close"), {"stage": "new"}, 403,
                 "Only the current stage")


def test_a_head_overrides_a_stage_close_and_it_is_recorded(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    http = signed_in(world.head)
    assert http.post(url(ticket, "close"), {"stage": "new"}).status_code == 302
    event = Event.objects.filter(type="stage.closed").get()
    assert event.payload["override"] is True
    assert "override by a head" in http.get(url(ticket)).content.decode()


def test_a_file_is_uploaded_as_evidence_and_downloaded(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    stage_close(actor=world.ann, ticket=ticket, stage="new", to="contract")
    http = signed_in(world.ann)
    upload = SimpleUploadedFile("scan <1>.pdf", b"%PDF-1.4 signed", content_type="application/pdf")
    response = http.post(url(ticket, "items/scan"), {"stage": "contract", "item-scan-evidence":
                                                     upload})
    assert response.status_code == 302, response.content.decode()[-2000:]
    html = http.get(url(ticket)).content.decode()
    visit = StageVisit.objects.get(ticket=ticket, closed_at__isnull=True)
    evidence = visit.entries.get().evidence
    assert isinstance(evidence, dict)
    file_id = evidence["file_id"]
    assert f"/files/{file_id}/" in html
    download = http.get(url(ticket, f"files/{file_id}"))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content) == b"%PDF-1.4 signed"  # type: ignore[attr-defined]
    assert signed_in(world.olga).get(url(ticket, f"files/{file_id}")).status_code == 404
    assert http.get(url(ticket, f"files/{file_id + 1}")).status_code == 404


def test_a_date_item_and_then_the_won_close(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    stage_close(actor=world.ann, ticket=ticket, stage="new", to="contract")
    http = signed_in(world.ann)
    assert http.post(url(ticket, "items/signed_on"),
                     {"stage": "contract", "item-signed_on-evidence": "2026-12-01"}
                     ).status_code == 302
    assert http.post(url(ticket, "won"), {"stage": "contract", "won-amount": "2 000 000"}
                     ).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.WON and ticket.amount == 2000000
    assert not ticket.tasks.filter(status=TaskStatus.OPEN).exists()
    html = http.get(url(ticket)).content.decode()
    assert "Close stage" not in html and str(date(2026, 12, 1)) in html


# --- tasks, contacts, documents ---------------------------------------------------------------


def test_planning_a_task(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    due = later(days=2).astimezone().strftime("%Y-%m-%dT%H:%M")
    response = http.post(url(ticket, "tasks"), {"plan-kind": "meeting",
                                                "plan-title": "<img src=x onerror=alert(1)>",
                                                "plan-due_at": due})
    assert response.status_code == 302
    html = http.get(url(ticket)).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    refused_post(http, url(ticket, "tasks"), {"plan-kind": "call", "plan-title": "Late",
                                              "plan-due_at": later(days=-2).astimezone()
                                              .strftime("%Y-%m-%dT%H:%M")}, 400,
                 "The due time is in the past.")


def test_task_buttons_lead_to_the_dialogs_and_back(world: World, ticket: Ticket) -> None:
    task = ticket.tasks.get()
    html = signed_in(world.ann).get(url(ticket)).content.decode()
    assert f"/tasks/{task.pk}/complete/?next=/tickets/{ticket.number}/" in html
    assert f"/tasks/{task.pk}/reschedule/?next=/tickets/{ticket.number}/" in html


def test_logging_a_contact(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    response = http.post(url(ticket, "contacts"), {
        "contact-kind": "call", "contact-direction": "out", "contact-outcome": "connected",
        "contact-duration_minutes": "3", "contact-note": "<script>alert('x')</script>"})
    assert response.status_code == 302
    activity = Activity.objects.get(ticket=ticket)
    assert activity.duration_seconds == 180 and activity.performed_by == world.ann
    html = http.get(url(ticket)).content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert(" not in html
    assert "Contact logged" in html


def test_a_contact_with_an_outcome_that_does_not_fit_is_refused(world: World,
                                                                 ticket: Ticket) -> None:
    refused_post(signed_in(world.ann), url(ticket, "contacts"), {
        "contact-kind": "email", "contact-direction": "out", "contact-outcome": "connected"},
        400, "For this kind of contact choose")


def test_a_contact_in_the_future_is_refused(world: World, ticket: Ticket) -> None:
    refused_post(signed_in(world.ann), url(ticket, "contacts"), {
        "contact-kind": "call", "contact-direction": "out", "contact-outcome": "connected",
        "contact-occurred_at": later(days=1).astimezone().strftime("%Y-%m-%dT%H:%M")},
        400, "cannot be logged in the future")


def test_issuing_documents_and_refusing_a_duplicate_number(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    data = {"document-kind": "quote", "document-number": "КП-17", "document-amount": "990 000",
            "document-currency": "rub"}
    assert http.post(url(ticket, "documents"), data).status_code == 302
    doc = Document.objects.get()
    assert doc.number == "КП-17" and doc.currency == "RUB"
    assert "КП-17" in http.get(url(ticket)).content.decode()
    refused_post(http, url(ticket, "documents"), data, 409, "has already been issued")
    refused_post(http, url(ticket, "documents"), {**data, "document-number": "<b>"}, 400)


def test_someone_not_on_the_ticket_cannot_log_contacts(world: World) -> None:
    ticket = world.ticket(owner=world.ann, actor=world.operator)
    refused_post(signed_in(world.operator), url(ticket, "contacts"), {
        "contact-kind": "call", "contact-direction": "out", "contact-outcome": "connected"},
        403, "Only the people working on this ticket")


# --- outcomes, reassign, reopen ------------------------------------------------------------


def test_closing_as_lost_needs_a_reason_from_the_list(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    refused_post(http, url(ticket, "lost"), {"lost-reason": "weather"}, 400)
    assert http.post(url(ticket, "lost"), {"lost-reason": "price", "lost-note": "too dear"}
                     ).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.LOST
    assert ticket.lost_reason is not None and ticket.lost_reason.code == "price"
    html = http.get(url(ticket)).content.decode()
    assert "Close as lost" not in html and "Reopen the ticket" not in html  # a seller


def test_void_with_reason_escaped_in_the_timeline(world: World, ticket: Ticket) -> None:
    http = signed_in(world.ann)
    refused_post(http, url(ticket, "void"), {"void-reason": ""}, 400)
    refused_post(http, url(ticket, "void"), {"void-reason": "dup",
                                             "void-duplicate_of": ticket.number},
                 400, "cannot be a duplicate of itself")
    assert http.post(url(ticket, "void"), {"void-reason": "<i>spam</i>"}).status_code == 302
    html = http.get(url(ticket)).content.decode()
    assert "&lt;i&gt;spam&lt;/i&gt;" in html and "<i>spam</i>" not in html
    refused_post(http, url(ticket, "void"), {"void-reason": "again"}, 409, "This ticket is")


def test_a_head_reassigns_and_a_seller_cannot(world: World, ticket: Ticket) -> None:
    refused_post(signed_in(world.ann), url(ticket, "reassign"),
                 {"reassign-owner": world.bob.pk, "reassign-move_tasks": "on"}, 403,
                 "Only a head of sales")
    http = signed_in(world.head)
    response = http.post(url(ticket, "reassign"), {"reassign-owner": world.bob.pk,
                                                   "reassign-reason": "holiday",
                                                   "reassign-move_tasks": "on"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.owner == world.bob
    assert ticket.tasks.get(status=TaskStatus.OPEN).assignee == world.bob
    html = http.get(url(ticket)).content.decode()
    assert "Ticket reassigned" in html and "ann → bob" in html


def test_reassigning_to_an_unknown_person_is_refused(world: World, ticket: Ticket) -> None:
    refused_post(signed_in(world.head), url(ticket, "reassign"),
                 {"reassign-owner": 987654}, 400, "Select a valid choice")


def test_a_head_reopens_a_lost_ticket(world: World, ticket: Ticket) -> None:
    ticket_close_lost(actor=world.ann, ticket=ticket, reason="price")
    refused_post(signed_in(world.ann), url(ticket, "reopen"), {"reopen-reason": "back"}, 403)
    http = signed_in(world.head)
    refused_post(http, url(ticket, "reopen"), {"reopen-reason": ""}, 400)
    html = http.get(url(ticket)).content.decode()
    assert "Reopen the ticket" in html
    assert http.post(url(ticket, "reopen"), {"reopen-reason": "client came back"}
                     ).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and ticket.stage.code == "new"
    refused_post(http, url(ticket, "reopen"), {"reopen-reason": "again"}, 409)


def test_subject_is_shown_escaped(world: World) -> None:
    ticket = world.ticket(owner=world.ann, subject="<script>alert(1)</script>")
    html = signed_in(world.ann).get(url(ticket)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- queries ---------------------------------------------------------------------------------


def _queries(http: HttpClient, ticket: Ticket) -> int:
    http.get(url(ticket))  # warm the per-process caches (pipeline versions)
    with CaptureQueriesContext(connection) as ctx:
        assert http.get(url(ticket)).status_code == 200
    return len(ctx)


def test_the_page_makes_the_same_queries_for_few_or_many_events(world: World) -> None:
    http = signed_in(world.head)
    quiet = world.ticket(owner=world.ann)
    busy = world.ticket(owner=world.ann)
    for i in range(6):
        task_plan(actor=world.ann, ticket=busy, draft=draft(f"Task {i}", assignee=world.bob))
        activity_log(actor=world.ann, ticket=busy, kind="call", direction="out",
                     outcome="connected", note=f"note {i}")
    world.fill_new(busy)
    from estafeta.tickets.services import document_issue

    document_issue(actor=world.ann, ticket=busy, kind="quote", number="Q-1", amount="10")
    assert Event.objects.filter(stream=busy.stream).count() > 12
    assert _queries(http, busy) == _queries(http, quiet)


def test_the_page_of_a_closed_ticket_renders(world: World, ticket: Ticket) -> None:
    ticket_close_lost(actor=world.ann, ticket=ticket, reason="competitor")
    html = signed_in(world.director).get(url(ticket)).content.decode()
    assert "Lost reason: <strong>Competitor</strong>" in html
    assert "Reason</dt><dd>Competitor" in html
    assert "Lost" in html and "Reopen the ticket" in html


def test_a_task_of_a_seller_makes_the_ticket_visible_to_them(world: World,
                                                              ticket: Ticket) -> None:
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Bob helps", assignee=world.bob))
    assert signed_in(world.bob).get(url(ticket)).status_code == 200
    assert Task.objects.filter(ticket=ticket).count() == 2


def test_checklist_items_of_a_closed_ticket_are_refused(world: World, ticket: Ticket) -> None:
    ticket_close_lost(actor=world.ann, ticket=ticket, reason="price")
    refused_post(signed_in(world.head), url(ticket, "items/contacted"), {"stage": "new"}, 409,
                 "This ticket is closed.")


def test_a_head_completes_a_sellers_task_from_the_ticket_page(world: World,
                                                               ticket: Ticket) -> None:
    task_plan(actor=world.ann, ticket=ticket, draft=draft("Second"))
    task = ticket.tasks.get(title="Call the client")
    http = signed_in(world.head)
    response = http.post(f"/tasks/{task.pk}/complete/?next={url(ticket)}",
                         {"outcome": "done", "contact_outcome": "no_answer",
                          "next_kind": "call"})
    assert response.status_code == 302 and response["Location"] == url(ticket)
    event = Event.objects.filter(type="task.completed").get()
    assert event.payload["override"] is True


def test_a_file_of_a_refused_type_changes_nothing(world: World, ticket: Ticket) -> None:
    world.fill_new(ticket)
    stage_close(actor=world.ann, ticket=ticket, stage="new", to="contract")
    upload = SimpleUploadedFile("run.exe", b"MZ\x90\x00", content_type="application/x-msdownload")
    refused_post(signed_in(world.ann), url(ticket, "items/scan"),
                 {"stage": "contract", "item-scan-evidence": upload}, 400,
                 "Files of this type are not accepted")
