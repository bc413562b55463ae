"""Choice sets named for the OpenAPI schema (``SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]``):
several fields share a name ("kind", "status", "outcome") but not their values."""

from __future__ import annotations

from enum import Enum

from estafeta.domain import codes


def _values(enum: type[Enum]) -> list[str]:
    return [str(m.value) for m in enum]


TICKET_STATUS = _values(codes.TicketStatus)
TASK_STATUS = _values(codes.TaskStatus)
TASK_KIND = _values(codes.TaskKind)
TASK_RESULT = [codes.TaskStatus.DONE.value, codes.TaskStatus.MISSED.value]
ACTIVITY_KIND = _values(codes.ActivityKind)
ACTIVITY_OUTCOME = _values(codes.ActivityOutcome)
DOCUMENT_KIND = _values(codes.DocumentKind)
CLIENT_KIND = _values(codes.ClientKind)
