"""Errors every interface can show: each has a stable ``code``, an English ``message`` and the
``params`` that a translated message needs. Interfaces map the class to a status:
``BadInput`` → 400, ``Forbidden`` → 403, ``NotFound`` → 404, ``Conflict`` → 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EstafetaError(Exception):
    """Base of every refusal. Raising one inside a service rolls its transaction back."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.params: Mapping[str, Any] = params

    def __str__(self) -> str:
        return self.message


class BadInput(EstafetaError):
    """The request itself is wrong: a missing field, a value of the wrong kind."""

    code = "bad_input"


class Forbidden(EstafetaError):
    """The actor may not do this (a seller closing someone else's stage)."""

    code = "forbidden"


class NotFound(EstafetaError):
    """The object does not exist or the actor may not see it; both look the same."""

    code = "not_found"


class Conflict(EstafetaError):
    """The object changed under the request (stale stage, concurrent close)."""

    code = "conflict"


class DeletionRefused(EstafetaError):
    """Promise 3: nothing in Estafeta is deleted; a ticket ends by an outcome."""

    code = "deletion_refused"


class ChecklistIncomplete(BadInput):
    """A stage cannot close because required items are not done."""

    code = "checklist_incomplete"


class EvidenceInvalid(BadInput):
    """The evidence given for a checklist item is not of the kind the item asks for."""

    code = "evidence_invalid"


class SuccessorRequired(BadInput):
    """Promise 2: completing the last open task of an open ticket needs a successor task."""

    code = "successor_required"


class NoExecutorAvailable(Conflict):
    """Nobody active and present can take the work under the stage's executor rule."""

    code = "no_executor"


class PipelineInvalid(BadInput):
    """A pipeline definition (YAML) does not validate; ``problems`` lists every problem."""

    code = "pipeline_invalid"

    def __init__(self, problems: list[str], *, source: str = "pipeline") -> None:
        self.problems = problems
        head = problems[0] if problems else "invalid"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {head}{more}", problems=problems)
