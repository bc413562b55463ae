"""Pipelines: the file format people write (validated with every problem named) and the rules
of moving a ticket between stages (promise 4).

A pipeline is an ordered list of stages. Open stages come first; then exactly one ``won`` stage
and at most one ``lost`` stage, which are terminal (no checklist, executor or task). Closing the
last open stage enters the won stage, which wins the ticket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .codes import EvidenceKind, MoveKind, Role, StageSemantic, TaskKind
from .durations import Duration
from .errors import ChecklistIncomplete, Conflict, Forbidden, PipelineInvalid
from .escalation import EscalationStepSpec, ladder_problems

CODE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
Code = Annotated[str, Field(min_length=1, max_length=40)]
Title = Annotated[str, Field(min_length=1, max_length=200)]


def _code(value: str) -> str:
    if not CODE.match(value):
        raise ValueError(
            f"{value!r} is not a code: use 1-40 lower-case Latin letters, digits, - or _,"
            " starting with a letter"
        )
    return value


def _duration(value: Any) -> str:
    try:
        return str(Duration.parse(value))
    except Exception as exc:  # the domain error carries the human message
        raise ValueError(str(exc)) from None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ChecklistItemSpec(_Spec):
    code: Code
    title: Title
    required: bool = True
    evidence: EvidenceKind = EvidenceKind.NONE

    _check_code = field_validator("code")(_code)


class ExecutorSpec(_Spec):
    """Who does a stage's work.

    ``keep_owner``: the ticket's owner. ``user``: one named person. ``team_role``: a person with
    ``role`` in ``team`` (the owner's team when omitted), chosen by ``strategy``. Absent and
    deactivated people are skipped; when nobody is left the team's head takes the work.
    """

    rule: Literal["keep_owner", "user", "team_role"]
    user: str | None = None
    team: str | None = None
    role: Role | None = None
    strategy: Literal["round_robin", "least_loaded"] | None = None


class TaskTemplateSpec(_Spec):
    kind: TaskKind
    title: Title
    due: str = "1d"

    _check_due = field_validator("due", mode="before")(_duration)


class StageSpec(_Spec):
    code: Code
    name: Title
    semantic: StageSemantic = StageSemantic.OPEN
    sla: str | None = None
    probability: int | None = Field(default=None, ge=0, le=100)
    skippable: bool = False
    # The SLA clock may stop while the ticket waits for the client (stage_pause / stage_resume).
    pausable: bool = False
    executor: ExecutorSpec | None = None
    next_task: TaskTemplateSpec | None = None
    checklist: list[ChecklistItemSpec] = Field(default_factory=list)

    _check_code = field_validator("code")(_code)

    @field_validator("sla", mode="before")
    @classmethod
    def _check_sla(cls, value: Any) -> str | None:
        return None if value is None else _duration(value)


class LostReasonSpec(_Spec):
    code: Code
    title: Title

    _check_code = field_validator("code")(_code)


class IntakeSpec(_Spec):
    """How requests arriving by email, form, telephony or messenger are routed (docs/intake.md).

    ``duplicates``: a new request from a client with an open ticket in this pipeline is
    ``attach``-ed to it (default) or opens a new ticket ``flag``-ged for a head to merge or
    dismiss. ``first_response``: business time within which a client's message on an existing
    ticket must be answered (or a missed call returned); its overdue escalates as
    ``unanswered_message``.
    """

    duplicates: Literal["attach", "flag"] = "attach"
    first_response: str = "2h"

    @field_validator("first_response", mode="before")
    @classmethod
    def _check_first_response(cls, value: Any) -> str:
        text = _duration(value)
        if Duration.parse(text).is_zero():
            raise ValueError("the first-response time must be longer than zero")
        return text


class PipelineSpec(_Spec):
    code: Code
    name: Title
    description: str = ""
    number_prefix: str | None = None
    stages: list[StageSpec] = Field(min_length=2)
    lost_reasons: list[LostReasonSpec] = Field(default_factory=list)
    # Deadlines of this pipeline are counted in this zone (default: the company's TIME_ZONE).
    time_zone: str | None = None
    # Optional escalation ladder (domain.escalation); without it the default ladder applies.
    escalation: list[EscalationStepSpec] | None = None
    # Routing of requests from the channels (intake); defaults when absent.
    intake: IntakeSpec | None = None

    _check_code = field_validator("code")(_code)

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (like Europe/Moscow)") from None
        return value

    @field_validator("number_prefix")
    @classmethod
    def _check_prefix(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Z][A-Z0-9]{0,9}$", value):
            raise ValueError("use 1-10 capital Latin letters or digits, starting with a letter")
        return value

    def stage(self, code: str) -> StageSpec:
        for stage in self.stages:
            if stage.code == code:
                return stage
        raise KeyError(code)

    def to_data(self) -> dict[str, Any]:
        """The canonical plain form (what is stored, hashed and dumped back to YAML)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def _where(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def parse_pipeline(data: Any, *, source: str = "pipeline") -> PipelineSpec:
    """Validate a pipeline definition; raise ``PipelineInvalid`` listing every problem."""
    if not isinstance(data, Mapping):
        raise PipelineInvalid(["the file must be a mapping with code, name and stages"],
                              source=source)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check its spelling)"
            problems.append(f"{_where(err['loc'])}: {message}")
        raise PipelineInvalid(problems, source=source) from None
    problems = semantic_problems(spec)
    if problems:
        raise PipelineInvalid(problems, source=source)
    return spec


def semantic_problems(spec: PipelineSpec) -> list[str]:
    """The rules pydantic cannot see: order of stages, uniqueness, what each rule needs."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, stage in enumerate(spec.stages):
        where = f"stages[{i}]"
        if stage.code in seen:
            problems.append(f"{where}.code: {stage.code!r} is used by another stage")
        seen.add(stage.code)
        if stage.semantic is StageSemantic.OPEN:
            if stage.executor is None:
                problems.append(f"{where}.executor: an open stage needs an executor rule")
            else:
                problems.extend(_executor_problems(stage.executor, f"{where}.executor"))
            if stage.next_task is None:
                problems.append(
                    f"{where}.next_task: an open stage needs a next-task template "
                    "(every open ticket must always have a next task)"
                )
            items: set[str] = set()
            for j, item in enumerate(stage.checklist):
                if item.code in items:
                    problems.append(
                        f"{where}.checklist[{j}].code: {item.code!r} is used twice in this stage"
                    )
                items.add(item.code)
        else:
            for key in ("executor", "next_task", "sla"):
                if getattr(stage, key) is not None:
                    problems.append(f"{where}.{key}: a {stage.semantic} stage is terminal")
            if stage.checklist:
                problems.append(f"{where}.checklist: a {stage.semantic} stage is terminal")
            if stage.skippable:
                problems.append(f"{where}.skippable: a {stage.semantic} stage is terminal")
            if stage.pausable:
                problems.append(f"{where}.pausable: a {stage.semantic} stage is terminal")
    first = spec.stages[0].executor
    if first is not None and first.rule == "team_role" and not first.team:
        problems.append("stages[0].executor.team: the first stage needs a team: a new ticket "
                        "has no owner yet whose team could be meant")
    semantics = [s.semantic for s in spec.stages]
    if semantics[0] is not StageSemantic.OPEN:
        problems.append("stages[0].semantic: the first stage must be open")
    if semantics.count(StageSemantic.WON) != 1:
        problems.append("stages: exactly one stage must have semantic: won")
    if semantics.count(StageSemantic.LOST) > 1:
        problems.append("stages: at most one stage may have semantic: lost")
    first_terminal = next(
        (i for i, s in enumerate(semantics) if s is not StageSemantic.OPEN), len(semantics)
    )
    if any(s is StageSemantic.OPEN for s in semantics[first_terminal:]):
        problems.append("stages: open stages must all come before the won and lost stages")
    reasons: set[str] = set()
    for k, reason in enumerate(spec.lost_reasons):
        if reason.code in reasons:
            problems.append(f"lost_reasons[{k}].code: {reason.code!r} is used twice")
        reasons.add(reason.code)
    if spec.escalation:
        problems.extend(ladder_problems(spec.escalation))
    return problems


def _executor_problems(rule: ExecutorSpec, where: str) -> list[str]:
    problems = []
    if rule.rule == "user":
        if not rule.user:
            problems.append(f"{where}.user: rule 'user' needs the username")
        if rule.team or rule.role or rule.strategy:
            problems.append(f"{where}: rule 'user' takes only a user")
    elif rule.rule == "team_role":
        if rule.role is None:
            problems.append(f"{where}.role: rule 'team_role' needs a role")
        if rule.user:
            problems.append(f"{where}.user: rule 'team_role' picks a person itself")
    elif rule.user or rule.team or rule.role or rule.strategy:
        problems.append(f"{where}: rule 'keep_owner' takes no other keys")
    return problems


# --- moving between stages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageFacts:
    code: str
    semantic: StageSemantic
    skippable: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    target: StageFacts
    kind: MoveKind

    @property
    def wins(self) -> bool:
        return self.target.semantic is StageSemantic.WON


def _index(stages: Sequence[StageFacts], code: str) -> int:
    for i, stage in enumerate(stages):
        if stage.code == code:
            return i
    raise Conflict(f"stage {code!r} is not in this pipeline", code="unknown_stage")


def plan_forward(stages: Sequence[StageFacts], current: str, target: str | None) -> Move:
    """Where closing ``current`` leads: the next stage, or ``target`` over skippable stages.

    Forward moves never enter the lost stage (losing is its own action with a reason).
    """
    i = _index(stages, current)
    if stages[i].semantic is not StageSemantic.OPEN:
        raise Conflict("the ticket is not in an open stage", code="ticket_closed")
    ahead = [s for s in stages[i + 1 :] if s.semantic is not StageSemantic.LOST]
    if not ahead:  # pragma: no cover - a valid pipeline always has a won stage ahead
        raise Conflict("there is no stage after this one", code="no_next_stage")
    if target is None or target == ahead[0].code:
        return Move(ahead[0], MoveKind.FORWARD)
    j = _index(stages, target)
    if j <= i:
        raise Forbidden(
            f"closing a stage moves forward; {target!r} is not ahead (a head can return a"
            " ticket to an earlier stage)",
            code="not_forward",
        )
    if stages[j].semantic is StageSemantic.LOST:
        raise Forbidden("a ticket is lost with a reason, not by closing a stage",
                        code="not_forward")
    skipped = list(stages[i + 1 : j])
    locked = [s.code for s in skipped if not s.skippable]
    if locked:
        raise Forbidden(
            f"stage {locked[0]!r} cannot be skipped in this pipeline", code="skip_not_allowed"
        )
    return Move(stages[j], MoveKind.SKIP)


def plan_return(stages: Sequence[StageFacts], current: str, target: str) -> Move:
    """A backward move to an earlier open stage (heads only; checked by the caller)."""
    i, j = _index(stages, current), _index(stages, target)
    if stages[i].semantic is not StageSemantic.OPEN:
        raise Conflict("the ticket is not in an open stage", code="ticket_closed")
    if j >= i or stages[j].semantic is not StageSemantic.OPEN:
        raise Forbidden(f"{target!r} is not an earlier stage of this ticket", code="not_backward")
    return Move(stages[j], MoveKind.BACKWARD)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    code: str
    title: str
    required: bool
    evidence: EvidenceKind


def missing_items(
    checklist: Sequence[ItemFacts], done: Mapping[str, Any]
) -> list[ItemFacts]:
    """Required items not yet done (``done`` maps item code → stored evidence)."""
    return [item for item in checklist if item.required and item.code not in done]


def require_checklist(checklist: Sequence[ItemFacts], done: Mapping[str, Any]) -> None:
    missing = missing_items(checklist, done)
    if missing:
        names = "; ".join(f"{m.title} ({m.code})" for m in missing)
        raise ChecklistIncomplete(
            f"the stage cannot close: required items not done: {names}",
            missing=[m.code for m in missing],
        )
