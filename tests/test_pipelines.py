"""Pipelines from YAML: validation with clear errors, versions, round trips."""

from __future__ import annotations

import pytest

from estafeta.domain.errors import PipelineInvalid
from estafeta.pipelines.models import LostReason, Pipeline, PipelineVersion
from estafeta.pipelines.services import lost_reason_add, pipeline_dump, pipeline_load
from estafeta.tickets.services import stage_close

from .dbstate import refused
from .factories import PIPELINES, World

SALES = (PIPELINES / "sales.yaml").read_text()


def test_loading_the_same_definition_again_writes_nothing(world: World) -> None:
    result = pipeline_load(actor=None, text=SALES)
    assert not result.created and result.version.number == 1
    assert PipelineVersion.objects.count() == 1


def test_dump_and_load_round_trip(world: World) -> None:
    text = pipeline_dump("sales")
    assert "Client contacted" in text and "executor" in text
    assert not pipeline_load(actor=None, text=text).created


def test_a_changed_definition_is_a_new_version_and_running_tickets_keep_theirs(
        world: World) -> None:
    old_ticket = world.ticket()
    changed = SALES.replace("      - {code: contacted, title: Client contacted}\n", "")
    result = pipeline_load(actor=None, text=changed)
    assert result.created and result.version.number == 2
    new_ticket = world.ticket()
    assert (old_ticket.version.number, new_ticket.version.number) == (1, 2)
    # The new version dropped "contacted"; the old ticket still needs it.
    from estafeta.tickets.services import checklist_item_complete

    checklist_item_complete(actor=old_ticket.owner, ticket=old_ticket, stage="new", item="need",
                            evidence="x")
    refused(lambda: stage_close(actor=old_ticket.owner, ticket=old_ticket, stage="new"),
            "checklist_incomplete")
    checklist_item_complete(actor=new_ticket.owner, ticket=new_ticket, stage="new", item="need",
                            evidence="x")
    assert stage_close(actor=new_ticket.owner, ticket=new_ticket, stage="new").stage.code == (
        "offer")


@pytest.mark.parametrize(("text", "problem"), [
    ("code: x\nname: X\ncode: y\n", "line 3: the key 'code' is given twice"),
    ("stages: [\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    (SALES.replace("team: Sales", "team: Nobody"), "there is no team 'Nobody'"),
    (SALES.replace("{rule: keep_owner}", "{rule: user, user: ghost}", 1),
     "there is no active user 'ghost'"),
    (SALES.replace("strategy: round_robin", "strategy: lottery"), "strategy"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    (b"\xff\xfe".decode("latin-1"), "must be a mapping"),
])
def test_invalid_files_are_refused_with_the_problem_and_write_nothing(
        world: World, text: str, problem: str) -> None:
    err = refused(lambda: pipeline_load(actor=None, text=text, source="bad.yaml"),
                  "pipeline_invalid", PipelineInvalid)
    assert isinstance(err, PipelineInvalid)
    assert any(problem in p for p in err.problems), err.problems
    assert err.message.startswith("bad.yaml: ")


def test_non_utf8_and_huge_files_are_refused(world: World) -> None:
    with pytest.raises(PipelineInvalid, match="not UTF-8"):
        pipeline_load(actor=None, text=b"code: \xff\n")
    with pytest.raises(PipelineInvalid, match="larger than"):
        pipeline_load(actor=None, text="#" * (2 << 20))


def test_lost_reasons_come_from_the_file_and_the_global_list(world: World) -> None:
    assert set(LostReason.objects.filter(pipeline__code="sales")
               .values_list("code", flat=True)) == {"price", "competitor"}
    lost_reason_add(actor=None, code="no_money", title="No money")
    refused(lambda: lost_reason_add(actor=None, code="no_money", title="Again"),
            "lost_reason_exists")
    refused(lambda: lost_reason_add(actor=None, code="No Money", title="x"), "bad_code")
    t = world.ticket()
    from estafeta.tickets.services import ticket_close_lost

    assert ticket_close_lost(actor=t.owner, ticket=t, reason="no_money").lost_reason.code == (  # type: ignore[union-attr]
        "no_money")


def test_only_admins_load_pipelines(world: World) -> None:
    refused(lambda: pipeline_load(actor=world.head, text=SALES), "role_required")
    assert Pipeline.objects.count() == 1


def test_a_pipeline_can_stop_accepting_new_tickets(world: World) -> None:
    from estafeta.history.models import Event
    from estafeta.pipelines.services import pipeline_set_active

    running = world.ticket()
    pipeline_set_active(actor=None, pipeline=world.pipeline, active=False)
    refused(world.ticket, "pipeline_inactive")
    world.fill_new(running)
    assert stage_close(actor=running.owner, ticket=running, stage="new").stage.code == "offer"
    pipeline_set_active(actor=None, pipeline=world.pipeline, active=True)
    assert world.ticket().is_open
    assert Event.objects.filter(stream=world.pipeline.stream, type="pipeline.updated").count() == 2


def test_an_earlier_version_can_be_dumped(world: World) -> None:
    pipeline_load(actor=None, text=SALES.replace("name: Sales\n", "name: Sales 2\n", 1))
    assert "name: Sales\n" in pipeline_dump("sales", 1)
    assert "name: Sales 2\n" in pipeline_dump("sales")
    refused(lambda: pipeline_dump("sales", 7), "unknown_version")
