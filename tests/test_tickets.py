"""The ticket lifecycle through the services, on a real database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from estafeta.core import clock
from estafeta.domain.errors import (
    BadInput,
    ChecklistIncomplete,
    Conflict,
    EvidenceInvalid,
    Forbidden,
    NoExecutorAvailable,
)
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.tasks.models import Task
from estafeta.tickets import services as ts
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import ChecklistEntry, StageVisit, Ticket

from .dbstate import refused
from .factories import World, draft, later


def events(ticket: Ticket) -> list[Event]:
    return list(Event.objects.filter(stream=ticket.stream).order_by("seq"))


def last_event(ticket: Ticket) -> Event:
    return events(ticket)[-1]


def to_offer(world: World) -> Ticket:
    t = world.ticket()
    world.fill_new(t)
    return ts.stage_close(actor=t.owner, ticket=t, stage="new")


def to_contract(world: World) -> Ticket:
    t = to_offer(world)
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="offer", item="quote_number",
                               evidence="КП-1/2026")
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="offer", item="units",
                               evidence="2")
    return ts.stage_close(actor=t.owner, ticket=t, stage="offer")


# --- creation ------------------------------------------------------------------------------


def test_creating_a_ticket_gives_number_first_stage_owner_task_and_event(
        world: World, now: datetime) -> None:
    t = world.ticket(amount="2 950 000", description="wants a Sportage")
    assert t.number == "Z-2026-000001"
    assert (t.status, t.stage.code, t.created_by) == ("open", "new", world.operator)
    assert t.amount == Decimal("2950000.00")
    visit = t.visits.get()
    assert (visit.kind, visit.executor, visit.closed_at) == ("enter", t.owner, None)
    task = t.tasks.get()
    assert (task.kind, task.title, task.assignee, task.status) == (
        "call", "Call the client", t.owner, "open")
    assert task.due_at == now + timedelta(hours=1)
    [event] = events(t)
    assert (event.type, event.seq, event.actor, event.owner) == (
        "ticket.created", 1, world.operator, t.owner)
    assert event.payload["number"] == t.number
    assert event.payload["task"]["id"] == task.pk
    assert "Ivan" not in str(event.payload) and "wants" not in str(event.payload)


def test_numbers_are_sequential_and_never_reused(world: World) -> None:
    numbers = [world.ticket().number for _ in range(3)]
    assert numbers == ["Z-2026-000001", "Z-2026-000002", "Z-2026-000003"]


def test_a_pipeline_prefix_and_the_year_shape_the_number(world: World) -> None:
    from estafeta.pipelines.services import pipeline_load

    from .factories import PIPELINES

    yaml_text = (PIPELINES / "sales.yaml").read_text().replace(
        "name: Sales\n", "name: Sales\nnumber_prefix: S\n", 1)
    pipeline_load(actor=None, text=yaml_text)
    with clock.frozen(datetime.fromisoformat("2027-01-01T00:30:00+03:00")):
        t = world.ticket()
    assert t.number == "S-2027-000001"


def test_round_robin_alternates_owners(world: World) -> None:
    owners = [world.ticket().owner for _ in range(4)]
    assert owners[0] != owners[1] and owners[0] == owners[2] and owners[1] == owners[3]


def test_an_absent_seller_gets_no_new_tickets(world: World, now: datetime) -> None:
    from estafeta.accounts.services import absence_add

    absence_add(actor=None, user=world.ann, starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=1))
    assert {world.ticket().owner for _ in range(3)} == {world.bob}


def test_when_the_whole_team_is_away_the_head_takes_the_ticket(world: World,
                                                               now: datetime) -> None:
    from estafeta.accounts.services import absence_add, user_deactivate

    absence_add(actor=None, user=world.ann, starts_at=now, ends_at=now + timedelta(days=3))
    user_deactivate(actor=None, user=world.bob, successor=world.ann)
    assert world.ticket().owner == world.head
    absence_add(actor=None, user=world.head, starts_at=now, ends_at=now + timedelta(days=3))
    refused(world.ticket, "no_executor", NoExecutorAvailable)


def test_an_explicit_owner_and_first_task_are_kept(world: World, now: datetime) -> None:
    t = world.ticket(owner=world.bob, first_task=draft("Meet at the showroom", "meeting",
                                                       days=2))
    task = t.tasks.get()
    assert (t.owner, task.title, task.kind, task.assignee) == (
        world.bob, "Meet at the showroom", "meeting", world.bob)
    assert task.due_at == now + timedelta(days=2)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"subject": "   "}, "bad_subject"),
    ({"subject": "x" * 201}, "too_long"),
    ({"channel": "pigeon"}, "bad_channel"),
    ({"amount": "-1"}, "bad_amount"),
    ({"amount": "lots"}, "bad_amount"),
    # drafts are made in the test, under its frozen clock: made at collection they were dated
    # by the real clock, and "two hours ago" stopped being in the past of the test's clock
    ({"first_task": lambda: draft("Late", hours=-2)}, "due_in_past"),
    ({"first_task": lambda: draft("", hours=2)}, "bad_title"),
])
def test_bad_input_at_creation_changes_nothing(world: World, kwargs: dict[str, object],
                                               code: str) -> None:
    made = {k: v() if callable(v) else v for k, v in kwargs.items()}
    refused(lambda: world.ticket(**made), code, BadInput)


def test_a_deactivated_owner_is_refused(world: World) -> None:
    from estafeta.accounts.services import user_deactivate

    user_deactivate(actor=None, user=world.bob, successor=world.ann)
    refused(lambda: world.ticket(owner=world.bob), "user_inactive", Conflict)


# --- checklist ------------------------------------------------------------------------------


def test_checklist_evidence_is_validated_normalised_and_recorded(world: World) -> None:
    t = world.ticket()
    entry = ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="budget",
                                       evidence="3 000 000,50")
    assert entry.evidence == "3000000.50"
    event = last_event(t)
    assert (event.type, event.payload["item"], event.payload["evidence"]) == (
        "checklist.item_completed", "budget", "3000000.50")
    again = ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="budget",
                                       evidence="2 000 000")
    assert again.pk == entry.pk and again.evidence == "2000000.00"
    assert last_event(t).payload["redone"] is True


def test_text_evidence_stays_out_of_the_history(world: World) -> None:
    t = world.ticket()
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="need",
                               evidence="call Ivan on +7 912 000 00 00")
    assert "+7 912" not in str(last_event(t).payload)
    assert "sha256" in last_event(t).payload["evidence"]


@pytest.mark.parametrize(("item", "evidence", "code"), [
    ("budget", "a lot", "evidence_invalid"),
    ("need", "", "evidence_invalid"),
    ("contacted", "yes", "evidence_invalid"),
    ("signature", None, "unknown_item"),
])
def test_wrong_evidence_is_refused_and_changes_nothing(world: World, item: str,
                                                       evidence: str | None, code: str) -> None:
    t = world.ticket()
    refused(lambda: ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new", item=item,
                                               evidence=evidence), code)


def test_only_the_executor_or_a_head_works_the_checklist(world: World) -> None:
    t = world.ticket()
    other = world.bob if t.owner == world.ann else world.ann
    for outsider in (other, world.olga, world.other_head, world.operator):
        refused(lambda u=outsider: ts.checklist_item_complete(  # type: ignore[misc]
            actor=u, ticket=t, stage="new", item="contacted"), error=Forbidden)
    ts.checklist_item_complete(actor=world.head, ticket=t, stage="new", item="contacted")
    assert last_event(t).payload["override"] is True
    assert ChecklistEntry.objects.get().override is True


def test_a_file_is_stored_as_evidence(world: World) -> None:
    t = to_contract(world)
    scan = SimpleUploadedFile("../../etc/договор.pdf", b"%PDF-1.4 signed", "application/pdf")
    entry = ts.checklist_item_complete(actor=t.owner, ticket=t, stage="contract", item="scan",
                                       file=scan)
    assert entry.evidence["size"] == len(b"%PDF-1.4 signed")
    from estafeta.tickets.models import StoredFile

    stored = StoredFile.objects.get()
    assert stored.name == "договор.pdf" and stored.path.startswith("evidence/")
    refused(lambda: ts.checklist_item_complete(
        actor=t.owner, ticket=t, stage="contract", item="scan",
        file=SimpleUploadedFile("run.exe", b"MZ", "application/octet-stream")), "file_type")
    refused(lambda: ts.checklist_item_complete(
        actor=t.owner, ticket=t, stage="contract", item="scan"), "evidence_invalid",
        EvidenceInvalid)


def test_an_oversized_file_is_refused(world: World, settings: object) -> None:
    settings.ESTAFETA_MAX_EVIDENCE_BYTES = 10  # type: ignore[attr-defined]
    t = to_contract(world)
    refused(lambda: ts.checklist_item_complete(
        actor=t.owner, ticket=t, stage="contract", item="scan",
        file=SimpleUploadedFile("big.pdf", b"x" * 11, "application/pdf")), "file_size")


# --- closing stages -----------------------------------------------------------------------


def test_closing_a_stage_without_required_items_is_refused_naming_them(world: World) -> None:
    t = world.ticket()
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new", item="contacted")
    err = refused(lambda: ts.stage_close(actor=t.owner, ticket=t, stage="new"),
                  "checklist_incomplete", ChecklistIncomplete)
    assert err.params["missing"] == ["need"]
    assert "What the client needs (need)" in err.message


def test_closing_a_stage_moves_on_in_one_step(world: World, now: datetime) -> None:
    t = world.ticket()
    owner = t.owner
    world.fill_new(t)
    t = ts.stage_close(actor=owner, ticket=t, stage="new")
    assert t.stage.code == "offer"
    first, second = t.visits.order_by("seq")
    assert (first.closed_by, first.closed_at, first.override) == (owner, now, False)
    assert [i["code"] for i in first.checklist_snapshot if i["done"]] == ["contacted", "need"]
    assert first.checklist_snapshot[1]["evidence"] == "a family car"
    assert (second.kind, second.executor, second.closed_at) == ("forward", owner, None)
    task = Task.objects.get(visit=second)
    # Due 4h in business time: Wednesday 10:00 + 4 working hours over the 13-14 lunch = 15:00.
    assert (task.title, task.kind, task.due_at) == ("Send the quote", "quote",
                                                    now + timedelta(hours=5))
    event = last_event(t)
    assert event.type == "stage.closed"
    assert event.payload["transition"] == {"from": "new", "to": "offer", "kind": "forward"}
    assert event.payload["task"]["id"] == task.pk
    assert list(violations()) == []


def test_a_skippable_stage_can_be_skipped_but_others_cannot(world: World) -> None:
    t = world.ticket()
    world.fill_new(t)
    refused(lambda: ts.stage_close(actor=t.owner, ticket=t, stage="new", to="won"),
            "skip_not_allowed")
    t = ts.stage_close(actor=t.owner, ticket=t, stage="new", to="contract")
    assert t.stage.code == "contract"
    assert t.visits.order_by("seq").last().kind == "skip"  # type: ignore[union-attr]


def test_a_stale_stage_is_a_conflict(world: World) -> None:
    t = to_offer(world)
    refused(lambda: ts.stage_close(actor=t.owner, ticket=t, stage="new"), "stale_stage",
            Conflict)
    refused(lambda: ts.checklist_item_complete(actor=t.owner, ticket=t, stage="new",
                                               item="contacted"), "stale_stage", Conflict)


def test_someone_elses_stage_cannot_be_closed(world: World) -> None:
    t = world.ticket()
    world.fill_new(t)
    other = world.bob if t.owner == world.ann else world.ann
    for outsider in (other, world.olga, world.other_head, world.operator, world.admin):
        refused(lambda u=outsider: ts.stage_close(actor=u, ticket=t, stage="new"),  # type: ignore[misc]
                error=Forbidden)


def test_a_head_closes_a_stage_as_a_recorded_override(world: World) -> None:
    t = world.ticket()
    world.fill_new(t)
    t = ts.stage_close(actor=world.head, ticket=t, stage="new")
    assert t.visits.order_by("seq").first().override is True  # type: ignore[union-attr]
    assert last_event(t).payload["override"] is True
    assert last_event(t).actor == world.head


def test_closing_the_last_stage_wins_the_ticket(world: World, now: datetime) -> None:
    t = to_contract(world)
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="contract", item="signed_on",
                               evidence="02.12.2026")
    t = ts.stage_close(actor=t.owner, ticket=t, stage="contract", amount="3 100 000")
    assert (t.status, t.stage.code, t.closed_at, t.amount) == (
        "won", "won", now, Decimal("3100000.00"))
    assert not t.tasks.filter(status="open").exists()
    assert not t.visits.filter(closed_at__isnull=True).exists()
    event = last_event(t)
    assert event.type == "ticket.won"
    assert event.payload["amount"] == "3100000.00"
    assert len(event.payload["cancelled_tasks"]) == 3
    assert list(violations()) == []


def test_ticket_close_won_goes_through_the_checklist_gate(world: World) -> None:
    t = to_contract(world)
    refused(lambda: ts.ticket_close_won(actor=t.owner, ticket=t, stage="contract"),
            "checklist_incomplete")
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="contract", item="signed_on",
                               evidence="2026-12-02")
    assert ts.ticket_close_won(actor=t.owner, ticket=t, stage="contract").status == "won"


def test_a_head_returns_a_ticket_to_an_earlier_stage(world: World) -> None:
    t = to_contract(world)
    refused(lambda: ts.stage_return(actor=t.owner, ticket=t, stage="contract", to="new",
                                    reason="wrong"), "supervisor_only", Forbidden)
    refused(lambda: ts.stage_return(actor=world.head, ticket=t, stage="contract", to="new",
                                    reason=" "), "reason_required")
    t = ts.stage_return(actor=world.head, ticket=t, stage="contract", to="new",
                        reason="the client changed the model")
    assert t.stage.code == "new"
    visit = t.visits.order_by("seq").last()
    assert visit is not None and visit.kind == "backward" and visit.executor is not None
    assert Task.objects.filter(visit=visit, status="open").count() == 1
    assert last_event(t).payload["transition"]["kind"] == "backward"
    assert list(violations()) == []


# --- outcomes ---------------------------------------------------------------------------------


def test_losing_needs_a_known_reason_and_ends_open_work(world: World, now: datetime) -> None:
    t = to_offer(world)
    err = refused(lambda: ts.ticket_close_lost(actor=t.owner, ticket=t, reason="weather"),
                  "unknown_lost_reason")
    assert "price" in err.message and "competitor" in err.message
    t = ts.ticket_close_lost(actor=t.owner, ticket=t, reason="competitor", note="bought a Kia")
    assert (t.status, t.stage.code, t.lost_reason.code, t.closed_at) == (  # type: ignore[union-attr]
        "lost", "lost", "competitor", now)
    assert not t.tasks.filter(status="open").exists()
    payload = last_event(t).payload
    assert (payload["reason"], payload["at_stage"]) == ("competitor", "offer")
    refused(lambda: ts.ticket_close_lost(actor=t.owner, ticket=t, reason="price"),
            "ticket_closed", Conflict)
    assert list(violations()) == []


def test_a_retired_reason_cannot_be_used(world: World) -> None:
    from estafeta.pipelines.models import LostReason
    from estafeta.pipelines.services import lost_reason_set_active

    lost_reason_set_active(actor=None, reason=LostReason.objects.get(code="price"), active=False)
    t = world.ticket()
    refused(lambda: ts.ticket_close_lost(actor=t.owner, ticket=t, reason="price"),
            "unknown_lost_reason")


def test_voiding_needs_a_reason_and_may_name_the_original(world: World) -> None:
    original, dup = world.ticket(), world.ticket()
    refused(lambda: ts.ticket_void(actor=dup.owner, ticket=dup, reason=""), "reason_required")
    refused(lambda: ts.ticket_void(actor=dup.owner, ticket=dup, reason="dup",
                                   duplicate_of=dup.number), "bad_duplicate")
    refused(lambda: ts.ticket_void(actor=dup.owner, ticket=dup, reason="dup",
                                   duplicate_of="Z-2026-999999"), "unknown_ticket")
    dup = ts.ticket_void(actor=dup.owner, ticket=dup, reason="same client called twice",
                         duplicate_of=original.number.lower())
    assert (dup.status, dup.duplicate_of) == ("void", original)
    assert last_event(dup).payload["duplicate_of"] == original.number
    assert list(violations()) == []


def test_outsiders_cannot_close_a_ticket(world: World) -> None:
    t = world.ticket()
    other = world.bob if t.owner == world.ann else world.ann
    refused(lambda: ts.ticket_close_lost(actor=other, ticket=t, reason="price"),
            error=Forbidden)
    refused(lambda: ts.ticket_void(actor=world.olga, ticket=t, reason="spam"), error=Forbidden)


def test_a_head_reopens_a_closed_ticket_into_its_last_open_stage(world: World) -> None:
    t = to_offer(world)
    t = ts.ticket_close_lost(actor=t.owner, ticket=t, reason="price")
    refused(lambda: ts.ticket_reopen(actor=t.owner, ticket=t, reason="back"),
            "supervisor_only", Forbidden)
    t = ts.ticket_reopen(actor=world.head, ticket=t, reason="the client came back")
    assert (t.status, t.stage.code, t.closed_at, t.lost_reason) == ("open", "offer", None, None)
    visit = t.visits.order_by("seq").last()
    assert visit is not None and visit.kind == "reopen"
    assert t.tasks.filter(status="open", visit=visit).exists()
    assert last_event(t).payload["previous_status"] == "lost"
    refused(lambda: ts.ticket_reopen(actor=world.head, ticket=t, reason="again"), "ticket_open",
            Conflict)
    assert list(violations()) == []


def test_a_reopened_ticket_whose_owner_left_goes_to_the_executor(world: World) -> None:
    from estafeta.accounts.services import user_deactivate

    t = world.ticket(owner=world.bob)
    t = ts.ticket_void(actor=world.bob, ticket=t, reason="test")
    user_deactivate(actor=None, user=world.bob, successor=world.ann)
    t = ts.ticket_reopen(actor=world.head, ticket=t, reason="real after all", to="new")
    assert t.owner.is_active and t.owner != world.bob
    assert list(violations()) == []


def test_reassigning_moves_the_old_owners_work_and_keeps_past_attribution(
        world: World) -> None:
    t = world.ticket(owner=world.ann)
    from estafeta.tasks.services import task_plan

    task_plan(actor=world.ann, ticket=t, draft=draft("Send photos", "email", hours=3))
    created = events(t)[0]
    refused(lambda: ts.ticket_reassign(actor=world.ann, ticket=t, owner=world.bob),
            "supervisor_only", Forbidden)
    refused(lambda: ts.ticket_reassign(actor=world.head, ticket=t, owner=world.ann),
            "no_change")
    t = ts.ticket_reassign(actor=world.head, ticket=t, owner=world.bob, reason="vacation")
    assert (t.owner, t.team) == (world.bob, world.sales)
    assert set(t.tasks.filter(status="open").values_list("assignee__username", flat=True)) == {
        "bob"}
    assert StageVisit.objects.get(ticket=t, closed_at__isnull=True).executor == world.bob
    event = last_event(t)
    assert (event.type, event.owner, event.payload["from"], event.payload["to"]) == (
        "ticket.reassigned", world.bob, world.ann.pk, world.bob.pk)
    assert len(event.payload["tasks"]) == 2
    # The history of who owned the ticket when is untouched (analytics attribute by it).
    assert Event.objects.get(pk=created.pk).owner == world.ann


# --- contacts, documents, details ---------------------------------------------------------


def test_contacts_are_logged_with_kind_direction_and_outcome(world: World, now: datetime) -> None:
    t = world.ticket()
    a = ts.activity_log(actor=t.owner, ticket=t, kind="call", direction="out",
                        outcome="no_answer", duration_seconds=0)
    assert (a.kind, a.outcome, a.performed_by, a.occurred_at) == ("call", "no_answer", t.owner,
                                                                  now)
    earlier = now - timedelta(hours=3)
    b = ts.activity_log(actor=world.head, ticket=t, kind="meeting", direction="in",
                        outcome="held", occurred_at=earlier, note="came to the showroom")
    assert b.occurred_at == earlier
    payload = last_event(t).payload
    assert payload["kind"] == "meeting" and payload["override"] is True
    assert "showroom" not in str(payload)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"kind": "fax", "direction": "out", "outcome": "sent"}, "bad_contact_kind"),
    ({"kind": "call", "direction": "out", "outcome": "held"}, "bad_outcome"),
    ({"kind": "email", "direction": "in", "outcome": "sent"}, "bad_outcome"),
    ({"kind": "call", "direction": "sideways", "outcome": "connected"}, "bad_direction"),
    ({"kind": "call", "direction": "out", "outcome": "connected",
      "duration_seconds": -1}, "bad_duration"),
    ({"kind": "call", "direction": "out", "outcome": "connected",
      "occurred_at": "in two hours"}, "in_future"),
])
def test_bad_contacts_are_refused(world: World, kwargs: dict[str, object], code: str) -> None:
    if kwargs.get("occurred_at") == "in two hours":
        kwargs = kwargs | {"occurred_at": later(hours=2)}
    t = world.ticket()
    refused(lambda: ts.activity_log(actor=t.owner, ticket=t, **kwargs), code)  # type: ignore[arg-type]


def test_other_teams_cannot_log_contacts(world: World) -> None:
    t = world.ticket()
    refused(lambda: ts.activity_log(actor=world.olga, ticket=t, kind="call", direction="out",
                                    outcome="connected"), error=Forbidden)


def test_documents_are_issued_once_per_number(world: World) -> None:
    t = world.ticket()
    d = ts.document_issue(actor=t.owner, ticket=t, kind="quote", number="КП-2026/0142",
                          amount="2 950 000")
    assert (d.kind, d.number, d.amount, d.currency) == ("quote", "КП-2026/0142",
                                                        Decimal("2950000.00"), "RUB")
    assert last_event(t).payload["number"] == "КП-2026/0142"
    refused(lambda: ts.document_issue(actor=t.owner, ticket=t, kind="quote",
                                      number="КП-2026/0142", amount="1"), "document_exists")
    refused(lambda: ts.document_issue(actor=t.owner, ticket=t, kind="quote", number="КП-2",
                                      amount="0"), "bad_amount")
    refused(lambda: ts.document_issue(actor=t.owner, ticket=t, kind="receipt", number="1",
                                      amount="1"), "bad_document_kind")
    refused(lambda: ts.document_issue(actor=t.owner, ticket=t, kind="invoice", number="1",
                                      amount="1", currency="рубли"), "bad_currency")
    ts.document_issue(actor=t.owner, ticket=t, kind="invoice", number="КП-2026/0142",
                      amount="100")  # the same number is fine for another kind


def test_updating_the_amount_is_recorded(world: World) -> None:
    t = world.ticket(amount="100")
    t = ts.ticket_update(actor=t.owner, ticket=t, amount="250,50", subject="Two cars")
    assert (t.amount, t.subject) == (Decimal("250.50"), "Two cars")
    assert last_event(t).payload["changes"] == {"subject": "*", "amount": ["100.00", "250.50"]}
    before = len(events(t))
    ts.ticket_update(actor=t.owner, ticket=t, amount="250.50")
    assert len(events(t)) == before  # nothing changed, nothing written


def test_the_history_of_a_busy_ticket_verifies(world: World) -> None:
    t = to_contract(world)
    ts.activity_log(actor=t.owner, ticket=t, kind="email", direction="out", outcome="sent")
    ts.ticket_reassign(actor=world.head, ticket=t, owner=world.olga)
    report = audit_verify()
    assert report.ok and report.events >= 10
    assert [e.seq for e in events(t)] == list(range(1, len(events(t)) + 1))


def test_a_rolled_back_first_ticket_of_a_year_leaves_numbering_working(world: World) -> None:
    from django.db import transaction

    def create_then_fail() -> None:
        with transaction.atomic():
            world.ticket()
            raise RuntimeError("the surrounding work failed")

    with clock.frozen(datetime.fromisoformat("2028-01-10T10:00:00+03:00")):
        with pytest.raises(RuntimeError):
            create_then_fail()
        assert world.ticket().number == "Z-2028-000001"
        assert world.ticket().number == "Z-2028-000002"


def test_least_loaded_counts_open_tasks_only(world: World) -> None:
    """Bob finished many tasks and has one open; Ann has two open: Bob gets the next ticket."""
    from estafeta.pipelines.services import pipeline_load
    from estafeta.tasks.services import task_complete

    from .factories import PIPELINES

    pipeline_load(actor=None, text=(PIPELINES / "sales.yaml").read_text().replace(
        "strategy: round_robin", "strategy: least_loaded"))
    world.ticket(owner=world.ann)
    world.ticket(owner=world.ann)
    busy = world.ticket(owner=world.bob)
    for _ in range(3):
        task = busy.tasks.get(status="open")
        task_complete(actor=world.bob, task=task, successor=draft(hours=2))
    assert world.ticket().owner == world.bob
    assert world.ticket().owner in (world.ann, world.bob)
