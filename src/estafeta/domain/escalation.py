"""Escalation ladders: who hears about late work, and when (pure; no Django).

A ladder is a list of steps. Each step has a ``level`` (a stable code recorded once per task or
stage visit), ``when`` it starts counting (``risk``: the stage visit's risk moment; ``breach``:
the task's due time or the stage visit's SLA due time), an optional delay ``after`` in business
time, and whom it ``notify``-s. Pipelines may write their own under ``escalation:``; without
one they get ``DEFAULT_LADDER``.

Tasks have a single due time, so only ``breach`` steps apply to them; ``risk`` steps apply to
stage visits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .durations import Duration


class Trigger(StrEnum):
    RISK = "risk"
    BREACH = "breach"


class Notify(StrEnum):
    EXECUTOR = "executor"  # the task's assignee or the stage's executor
    HEAD = "head"  # the head of the executor's team (directors when there is none)
    DIRECTOR = "director"  # every active director
    ADMINS = "admins"  # every active admin


class Reason(StrEnum):
    """Why an escalation was raised (stored; never rename)."""

    TASK_OVERDUE = "task_overdue"
    STAGE_AT_RISK = "stage_at_risk"
    STAGE_BREACHED = "stage_breached"
    OWNER_UNAVAILABLE = "owner_unavailable"
    NO_NEXT_TASK = "no_next_task"
    UNANSWERED_MESSAGE = "unanswered_message"  # reserved for client intake


_LEVEL = re.compile(r"^[a-z][a-z0-9_-]{0,29}$")


class EscalationStepSpec(BaseModel):
    """One step as written in a pipeline file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    level: str = Field(min_length=1, max_length=30)
    when: Literal["risk", "breach"]
    after: str | None = None
    notify: Literal["executor", "head", "director", "admins"]

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if not _LEVEL.match(value):
            raise ValueError(f"{value!r} is not a level code: use 1-30 lower-case Latin "
                             "letters, digits, - or _, starting with a letter")
        return value

    @field_validator("after", mode="before")
    @classmethod
    def _check_after(cls, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return str(Duration.parse(value))
        except Exception as exc:
            raise ValueError(str(exc)) from None


def ladder_problems(steps: Sequence[EscalationStepSpec]) -> list[str]:
    """What a valid ladder must also respect: distinct levels."""
    seen: set[str] = set()
    problems = []
    for i, step in enumerate(steps):
        if step.level in seen:
            problems.append(f"escalation[{i}].level: {step.level!r} is used twice")
        seen.add(step.level)
    return problems


_NO_DELAY = Duration()


@dataclass(frozen=True, slots=True)
class Step:
    level: str
    when: Trigger
    notify: Notify
    after: Duration = _NO_DELAY


DEFAULT_LADDER: tuple[Step, ...] = (
    Step("remind", Trigger.RISK, Notify.EXECUTOR),
    Step("head", Trigger.BREACH, Notify.HEAD),
    Step("director", Trigger.BREACH, Notify.DIRECTOR, Duration(hours=4)),
)


def ladder_from_data(data: Iterable[Any] | None) -> tuple[Step, ...]:
    """The ladder of a stored pipeline definition (its ``escalation`` value, if any)."""
    if not data:
        return DEFAULT_LADDER
    out = []
    for item in data:
        spec = item if isinstance(item, EscalationStepSpec) else (
            EscalationStepSpec.model_validate(item))
        out.append(Step(spec.level, Trigger(spec.when), Notify(spec.notify),
                        Duration.parse(spec.after) if spec.after else Duration()))
    return tuple(out)


def latest_start(add: Callable[[datetime], datetime], now: datetime, *,
                 horizon: timedelta = timedelta(days=120)) -> datetime:
    """The latest start moment ``t`` (to the second) with ``add(t) <= now``.

    ``add`` is a step's delay from a start moment (monotonic, as business-time addition is).
    The monitor asks the database for work whose start is at or before this moment, so the
    delay is computed a few dozen times per pass instead of once per row. Returns a moment
    before ``now - horizon`` when nothing in the horizon qualifies.
    """
    low, high = now - horizon, now
    if add(low) > now:
        return low - timedelta(seconds=1)
    if add(high) <= now:
        return high
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        mid = mid.replace(microsecond=0)
        if mid <= low:
            break
        if add(mid) <= now:
            low = mid
        else:
            high = mid
    return low
