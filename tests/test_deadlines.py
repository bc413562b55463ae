"""Deadlines in business time: a stage visit's SLA due and at-risk moments on entry, next-task
due times from templates, a pipeline's own time zone, and the pause while waiting for the
client (T0 is Wednesday 2 December 2026, 10:00 in Moscow)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from estafeta.core import clock
from estafeta.domain.errors import Conflict, Forbidden, PipelineInvalid
from estafeta.domain.pipeline import parse_pipeline
from estafeta.history.models import Event
from estafeta.pipelines.models import Pipeline
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tickets import services as ts
from estafeta.tickets.models import StageVisit, Ticket

from .dbstate import refused
from .factories import PIPELINES, World

MSK = ZoneInfo("Europe/Moscow")


def msk(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


def _variant(world: World, *, zone: str | None = None) -> Pipeline:
    """The sales pipeline with a pausable offer stage (and a time zone when given)."""
    text = (PIPELINES / "sales.yaml").read_text()
    text = text.replace("    skippable: true\n", "    skippable: true\n    pausable: true\n")
    text = text.replace("code: sales\nname: Sales\n", "code: waits\nname: Waits\n"
                        + (f"time_zone: {zone}\n" if zone else ""))
    return pipeline_load(actor=None, text=text, source="waits.yaml").pipeline


def _ticket(world: World, pipeline: Pipeline) -> Ticket:
    return ts.ticket_create(actor=world.operator, pipeline=pipeline, client=world.client,
                            channel="phone", subject="A car for the family")


def _visit(ticket: Ticket) -> StageVisit:
    return StageVisit.objects.get(ticket=ticket, closed_at__isnull=True)


def _task(ticket: Ticket) -> Task:
    return Task.objects.get(ticket=ticket, status="open")


def test_a_new_ticket_gets_its_stage_sla_and_task_due_in_business_time(world: World) -> None:
    ticket = world.ticket()
    visit = _visit(ticket)
    assert visit.sla_due_at == msk(12, 2, 12)  # sla 2h
    assert visit.sla_risk_at == msk(12, 2, 11, 36)  # 80% of two hours
    assert _task(ticket).due_at == msk(12, 2, 11)  # due 1h


def test_a_ticket_arriving_on_friday_evening_is_due_on_monday(world: World) -> None:
    with clock.frozen(msk(12, 4, 17, 30)):
        ticket = world.ticket()
    visit = _visit(ticket)
    assert visit.sla_due_at == msk(12, 7, 10, 30)
    assert _task(ticket).due_at == msk(12, 7, 9, 30)


def test_terminal_visits_and_stages_without_sla_have_no_deadline(world: World) -> None:
    ticket = world.ticket()
    ts.ticket_close_lost(actor=ticket.owner, ticket=ticket, reason="price")
    last = StageVisit.objects.filter(ticket=ticket).order_by("-seq").first()
    assert last is not None and last.sla_due_at is None and last.sla_risk_at is None


def test_a_pipeline_counts_its_deadlines_in_its_own_time_zone(world: World) -> None:
    pipeline = _variant(world, zone="Asia/Vladivostok")  # 17:00 there at T0
    ticket = _ticket(world, pipeline)
    vladivostok = ZoneInfo("Asia/Vladivostok")
    # One working hour left on Wednesday, the second on Thursday morning.
    assert _visit(ticket).sla_due_at == datetime(2026, 12, 3, 10, tzinfo=vladivostok)
    assert _task(ticket).due_at == datetime(2026, 12, 2, 18, tzinfo=vladivostok)


def _at_offer(world: World) -> Ticket:
    ticket = _ticket(world, _variant(world))
    world.fill_new(ticket)
    return ts.stage_close(actor=ticket.owner, ticket=ticket, stage="new")


def test_waiting_for_the_client_stops_the_sla_clock_and_resuming_restarts_it(
        world: World) -> None:
    ticket = _at_offer(world)
    visit = _visit(ticket)
    assert visit.sla_due_at == msk(12, 3, 10)  # sla 1d
    assert visit.sla_risk_at == msk(12, 2, 17, 24)  # 80% of 8 working hours
    with clock.frozen(msk(12, 2, 11)):
        ts.stage_pause(actor=ticket.owner, ticket=ticket, reason="The client is on holiday")
    visit = _visit(ticket)
    assert visit.paused_at == msk(12, 2, 11)
    assert visit.sla_due_at is None and visit.sla_risk_at is None
    assert visit.sla_left == timedelta(hours=7)
    with clock.frozen(msk(12, 7, 9)):
        ts.stage_resume(actor=ticket.owner, ticket=ticket)
    visit = _visit(ticket)
    assert visit.paused_at is None and visit.sla_left is None
    assert visit.sla_due_at == msk(12, 7, 17)  # the 7 hours that were left
    assert visit.sla_risk_at == msk(12, 7, 15, 24)
    events = list(Event.objects.filter(stream=ticket.stream).order_by("seq"))
    paused, resumed = events[-2], events[-1]
    assert paused.type == "stage.paused"
    assert paused.payload["reason"] == "The client is on holiday"
    assert paused.payload["sla_left"] == 7 * 3600
    assert resumed.type == "stage.resumed"
    assert resumed.payload["paused_for"] == 3 * 8 * 3600 - 2 * 3600  # Wed 11:00 to Mon 09:00


def test_a_stage_that_does_not_allow_it_cannot_be_paused(world: World) -> None:
    ticket = _ticket(world, _variant(world))
    refused(lambda: ts.stage_pause(actor=ticket.owner, ticket=ticket, reason="waiting"),
            "not_pausable", Forbidden)


def test_pausing_twice_and_resuming_a_running_stage_are_conflicts(world: World) -> None:
    ticket = _at_offer(world)
    refused(lambda: ts.stage_resume(actor=ticket.owner, ticket=ticket), "not_paused", Conflict)
    ts.stage_pause(actor=ticket.owner, ticket=ticket, reason="waiting")
    refused(lambda: ts.stage_pause(actor=ticket.owner, ticket=ticket, reason="again"),
            "already_paused", Conflict)


def test_a_pause_needs_a_reason_and_the_stage_executor_or_a_head(world: World) -> None:
    ticket = _at_offer(world)
    refused(lambda: ts.stage_pause(actor=ticket.owner, ticket=ticket, reason=" "),
            "reason_required")
    refused(lambda: ts.stage_pause(actor=world.olga, ticket=ticket, reason="waiting"))
    ts.stage_pause(actor=world.head, ticket=ticket, reason="waiting")
    assert _visit(ticket).paused_at is not None


@pytest.mark.parametrize("stage", ["new"])
def test_a_pause_on_a_stage_the_ticket_has_left_is_stale(world: World, stage: str) -> None:
    ticket = _at_offer(world)
    refused(lambda: ts.stage_pause(actor=ticket.owner, ticket=ticket, reason="w", stage=stage))


def test_a_pipeline_file_names_a_bad_time_zone_and_a_pausable_terminal_stage() -> None:
    data = yaml.safe_load((PIPELINES / "sales.yaml").read_text())
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline({**data, "time_zone": "Mars/Olympus"})
    assert caught.value.problems == [
        "time_zone: 'Mars/Olympus' is not a time zone (like Europe/Moscow)"]
    data["stages"][3]["pausable"] = True
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(data)
    assert caught.value.problems == ["stages[3].pausable: a won stage is terminal"]


def test_a_pipeline_without_the_new_keys_keeps_its_stored_form() -> None:
    data = yaml.safe_load((PIPELINES / "sales.yaml").read_text())
    stored = parse_pipeline(data).to_data()
    assert "time_zone" not in stored
    assert all("pausable" not in stage for stage in stored["stages"])
