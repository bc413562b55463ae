"""Pure domain rules: pipeline files, stage moves, executor choice, policy, hash chain."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from estafeta.domain.codes import EvidenceKind, MoveKind, Role, StageSemantic
from estafeta.domain.errors import ChecklistIncomplete, Conflict, Forbidden, PipelineInvalid
from estafeta.domain.executors import Candidate, choose, least_loaded, round_robin
from estafeta.domain.hashchain import GENESIS, ChainWalker, EventFacts, jsonable
from estafeta.domain.pipeline import (
    ItemFacts,
    StageFacts,
    parse_pipeline,
    plan_forward,
    plan_return,
    require_checklist,
)
from estafeta.domain.policy import (
    ActorFacts,
    TicketFacts,
    outcome_authority,
    stage_authority,
    supervisor_only,
    work_authority,
)

SALES = yaml.safe_load((Path(__file__).parent / "pipelines" / "sales.yaml").read_text())


def broken(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SALES)
    for path, value in changes.items():
        target = data
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is KeyError:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return data


def test_the_test_pipeline_is_valid() -> None:
    spec = parse_pipeline(SALES)
    assert [s.code for s in spec.stages] == ["new", "offer", "contract", "won", "lost"]
    assert spec.stage("offer").skippable


@pytest.mark.parametrize(("data", "problem"), [
    (broken(stages__0__executor__strategy="random"), "stages[0].executor.strategy"),
    (broken(stages__0__checklist__1__evidence="photo"), "stages[0].checklist[1].evidence"),
    (broken(stages__0__colour="red"), "stages[0].colour: unknown key"),
    (broken(stages__0__sla="two hours"), "stages[0].sla"),
    (broken(stages__0__next_task=KeyError), "stages[0].next_task: an open stage needs"),
    (broken(stages__0__executor=KeyError), "stages[0].executor: an open stage needs"),
    (broken(stages__1__code="new"), "stages[1].code: 'new' is used by another stage"),
    (broken(stages__3__semantic="open"), "exactly one stage must have semantic: won"),
    (broken(stages__0__semantic="won"), "the first stage must be open"),
    (broken(stages__3__checklist=[{"code": "x", "title": "X"}]), "stages[3].checklist"),
    (broken(code="Sales Pipeline"), "code: 'Sales Pipeline' is not a code"),
    (broken(stages__0__executor={"rule": "user"}), "rule 'user' needs the username"),
    (broken(stages__0__executor={"rule": "team_role"}), "rule 'team_role' needs a role"),
    (broken(stages__1__executor={"rule": "keep_owner", "role": "seller"}), "takes no other"),
    (broken(number_prefix="z-"), "number_prefix"),
    (broken(lost_reasons=[{"code": "a", "title": "A"}, {"code": "a", "title": "B"}]),
     "lost_reasons[1].code"),
    (broken(stages=[]), "stages"),
    (broken(stages__0__executor={"rule": "team_role", "role": "seller"}),
     "stages[0].executor.team: the first stage needs a team"),
    (["not", "a", "mapping"], "must be a mapping"),
])
def test_invalid_pipelines_are_refused_naming_the_problem(data: Any, problem: str) -> None:
    with pytest.raises(PipelineInvalid) as err:
        parse_pipeline(data)
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_every_problem_of_a_pipeline_is_listed_at_once() -> None:
    data = broken(stages__0__executor__strategy="random", stages__1__sla="soon")
    with pytest.raises(PipelineInvalid) as err:
        parse_pipeline(data)
    assert len(err.value.problems) == 2


def test_open_stages_after_a_terminal_stage_are_refused() -> None:
    data = copy.deepcopy(SALES)
    data["stages"].append(copy.deepcopy(data["stages"][0]) | {"code": "late"})
    with pytest.raises(PipelineInvalid) as err:
        parse_pipeline(data)
    assert any("must all come before" in p for p in err.value.problems)


STAGES = [
    StageFacts("new", StageSemantic.OPEN),
    StageFacts("offer", StageSemantic.OPEN, skippable=True),
    StageFacts("test", StageSemantic.OPEN, skippable=True),
    StageFacts("contract", StageSemantic.OPEN),
    StageFacts("won", StageSemantic.WON),
    StageFacts("lost", StageSemantic.LOST),
]


@pytest.mark.parametrize(("current", "target", "to", "kind"), [
    ("new", None, "offer", MoveKind.FORWARD),
    ("new", "offer", "offer", MoveKind.FORWARD),
    ("new", "test", "test", MoveKind.SKIP),
    ("new", "contract", "contract", MoveKind.SKIP),
    ("contract", None, "won", MoveKind.FORWARD),
    ("offer", "contract", "contract", MoveKind.SKIP),
])
def test_forward_moves(current: str, target: str | None, to: str, kind: MoveKind) -> None:
    move = plan_forward(STAGES, current, target)
    assert (move.target.code, move.kind) == (to, kind)
    assert move.wins == (to == "won")


@pytest.mark.parametrize(("current", "target", "code"), [
    ("offer", "new", "not_forward"),
    ("offer", "offer", "not_forward"),
    ("new", "lost", "not_forward"),
    ("new", "won", "skip_not_allowed"),  # contract cannot be skipped
    ("offer", "nowhere", "unknown_stage"),
])
def test_forbidden_forward_moves(current: str, target: str, code: str) -> None:
    with pytest.raises((Forbidden, Conflict)) as err:
        plan_forward(STAGES, current, target)
    assert err.value.code == code


def test_moves_out_of_a_terminal_stage_are_refused() -> None:
    with pytest.raises(Conflict):
        plan_forward(STAGES, "won", None)
    with pytest.raises(Conflict):
        plan_return(STAGES, "lost", "new")


def test_backward_moves_go_only_to_earlier_open_stages() -> None:
    assert plan_return(STAGES, "contract", "new").kind is MoveKind.BACKWARD
    for target in ("contract", "won", "lost"):
        with pytest.raises(Forbidden):
            plan_return(STAGES, "contract", target)


def test_the_checklist_gate_names_every_missing_required_item() -> None:
    items = [ItemFacts("a", "Alpha", True, EvidenceKind.NONE),
             ItemFacts("b", "Beta", False, EvidenceKind.TEXT),
             ItemFacts("c", "Gamma", True, EvidenceKind.MONEY)]
    require_checklist(items, {"a": None, "c": "1.00"})
    with pytest.raises(ChecklistIncomplete) as err:
        require_checklist(items, {"b": "x"})
    assert err.value.params["missing"] == ["a", "c"]
    assert "Alpha (a)" in err.value.message and "Gamma (c)" in err.value.message


@pytest.mark.parametrize(("ids", "last", "chosen"), [
    ([3, 1, 2], None, 1),
    ([1, 2, 3], 1, 2),
    ([1, 2, 3], 3, 1),
    ([1, 5, 9], 6, 9),
    ([], 1, None),
])
def test_round_robin_takes_the_next_in_id_order(ids: list[int], last: int | None,
                                                chosen: int | None) -> None:
    assert round_robin(ids, last) == chosen


def test_least_loaded_breaks_ties_round_robin() -> None:
    assert least_loaded({1: 5, 2: 3, 3: 3}, None) == 2
    assert least_loaded({1: 5, 2: 3, 3: 3}, 2) == 3
    assert least_loaded({}, None) is None


def test_absent_and_deactivated_candidates_are_skipped() -> None:
    candidates = [Candidate(1, absent=True), Candidate(2, active=False), Candidate(3)]
    assert choose(candidates, "round_robin", None) == 3
    assert choose(candidates[:2], "least_loaded", None) is None


def test_round_robin_is_fair_over_many_rounds() -> None:
    last, counts = None, {1: 0, 2: 0, 3: 0}
    for _ in range(300):
        last = choose([Candidate(i) for i in counts], "round_robin", last)
        assert last is not None
        counts[last] += 1
    assert set(counts.values()) == {100}


SELLER = ActorFacts(1, Role.SELLER)
OTHER_SELLER = ActorFacts(2, Role.SELLER)
HEAD = ActorFacts(3, Role.HEAD, headed_team_ids=frozenset({10}))
OTHER_HEAD = ActorFacts(4, Role.HEAD, headed_team_ids=frozenset({20}))
DIRECTOR = ActorFacts(5, Role.DIRECTOR)
TICKET = TicketFacts(owner_id=1, team_ids=frozenset({10}), executor_id=1,
                     task_assignee_ids=frozenset({6}))


@pytest.mark.parametrize(("actor", "allowed", "override"), [
    (SELLER, True, False),
    (OTHER_SELLER, False, None),
    (HEAD, True, True),
    (OTHER_HEAD, False, None),
    (DIRECTOR, True, True),
    (ActorFacts(1, Role.SELLER, active=False), False, None),
])
def test_who_may_close_a_stage(actor: ActorFacts, allowed: bool, override: bool | None) -> None:
    if allowed:
        assert stage_authority(actor, TICKET) is override
    else:
        with pytest.raises(Forbidden):
            stage_authority(actor, TICKET)


def test_task_assignees_may_work_the_ticket_but_not_close_its_stage() -> None:
    helper = ActorFacts(6, Role.SELLER)
    assert work_authority(helper, TICKET) is False
    with pytest.raises(Forbidden):
        stage_authority(helper, TICKET)
    with pytest.raises(Forbidden):
        outcome_authority(helper, TICKET)


def test_only_supervisors_reassign() -> None:
    supervisor_only(HEAD, TICKET, "reassign")
    for actor in (SELLER, OTHER_HEAD):
        with pytest.raises(Forbidden):
            supervisor_only(actor, TICKET, "reassign")


AT = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def chain(n: int, stream: str = "ticket:1") -> list[tuple[int, EventFacts, str]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        facts = EventFacts(stream, seq, prev, "x.y", AT, 1, 2, {"n": seq, "name": "Пётр"})
        digest = facts.digest()
        out.append((seq, facts, digest))
        prev = digest
    return out


def test_an_intact_chain_verifies() -> None:
    walker = ChainWalker()
    for eid, facts, digest in chain(5) + chain(3, "ticket:2"):
        assert walker.feed(eid, facts, digest) is None
    assert (walker.events, walker.streams) == (8, 2)


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda f: EventFacts(f.stream, f.seq, f.prev_hash, f.type, f.occurred_at, f.actor_id,
                          f.owner_id, {"n": 99, "name": "Пётр"}), "content does not match"),
    (lambda f: EventFacts(f.stream, f.seq, f.prev_hash, f.type, f.occurred_at, 7, f.owner_id,
                          f.payload), "content does not match"),
    (lambda f: EventFacts(f.stream, f.seq + 1, f.prev_hash, f.type, f.occurred_at, f.actor_id,
                          f.owner_id, f.payload), "a gap"),
    (lambda f: EventFacts(f.stream, f.seq, "f" * 64, f.type, f.occurred_at, f.actor_id,
                          f.owner_id, f.payload), "does not link"),
])
def test_the_first_broken_link_is_reported(tamper: Any, reason: str) -> None:
    events = chain(5)
    eid, facts, digest = events[2]
    events[2] = (eid, tamper(facts), digest)
    walker = ChainWalker()
    breaks = [b for e in events if (b := walker.feed(*e))]
    assert breaks[0].seq in (3, 4) and reason in breaks[0].reason


def test_payloads_must_be_plain_json() -> None:
    assert jsonable({"a": (1, 2)}) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="floats"):
        jsonable({"a": 1.5})
    with pytest.raises(ValueError, match="aware"):
        jsonable({"a": datetime(2026, 1, 1)})


def test_turns_from_a_counter_visit_every_candidate_in_order() -> None:
    from estafeta.domain.executors import in_turn

    assert [in_turn([30, 10, 20], turn) for turn in range(1, 7)] == [10, 20, 30, 10, 20, 30]
    assert in_turn([], 5) is None
