"""What people read for the stable codes stored in the database (translated here, never stored).

``label(value)`` finds the label of any code of ``domain.codes``; the template filter ``label``
uses it. A code without a label is shown as it is rather than failing.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    Channel,
    ClientKind,
    Direction,
    DocumentKind,
    EvidenceKind,
    MoveKind,
    Role,
    TaskKind,
    TaskStatus,
    TicketStatus,
)

ROLE = {
    Role.SELLER: _("seller"),
    Role.HEAD: _("head of sales"),
    Role.DIRECTOR: _("director"),
    Role.OPERATOR: _("operator"),
    Role.ADMIN: _("administrator"),
}
TICKET_STATUS = {
    TicketStatus.OPEN: pgettext_lazy("ticket", "open"),
    TicketStatus.WON: pgettext_lazy("ticket", "won"),
    TicketStatus.LOST: pgettext_lazy("ticket", "lost"),
    TicketStatus.VOID: pgettext_lazy("ticket", "void"),
}
CHANNEL = {
    Channel.PHONE: _("phone call"),
    Channel.EMAIL: _("email"),
    Channel.WEB_FORM: _("web form"),
    Channel.WALK_IN: _("walk-in"),
    Channel.MESSENGER: _("messenger"),
    Channel.API: _("integration (API)"),
}
TASK_KIND = {
    TaskKind.CALL: pgettext_lazy("task", "call"),
    TaskKind.EMAIL: pgettext_lazy("task", "email"),
    TaskKind.MEETING: pgettext_lazy("task", "meeting"),
    TaskKind.VIDEO: pgettext_lazy("task", "video presentation"),
    TaskKind.QUOTE: pgettext_lazy("task", "quote"),
    TaskKind.INVOICE: pgettext_lazy("task", "invoice"),
    TaskKind.CONTRACT: pgettext_lazy("task", "contract"),
    TaskKind.OTHER: pgettext_lazy("task", "other"),
}
TASK_STATUS = {
    TaskStatus.OPEN: pgettext_lazy("task", "open"),
    TaskStatus.DONE: pgettext_lazy("task", "done"),
    TaskStatus.MISSED: pgettext_lazy("task", "missed"),
    TaskStatus.CANCELLED: pgettext_lazy("task", "cancelled"),
}
ACTIVITY_KIND = {
    ActivityKind.CALL: pgettext_lazy("contact", "call"),
    ActivityKind.EMAIL: pgettext_lazy("contact", "email"),
    ActivityKind.MEETING: pgettext_lazy("contact", "meeting"),
    ActivityKind.VIDEO: pgettext_lazy("contact", "video presentation"),
}
DIRECTION = {
    Direction.IN: _("incoming"),
    Direction.OUT: _("outgoing"),
}
OUTCOME = {
    ActivityOutcome.SENT: _("sent"),
    ActivityOutcome.RECEIVED: _("received"),
    ActivityOutcome.CONNECTED: _("connected"),
    ActivityOutcome.NO_ANSWER: _("no answer"),
    ActivityOutcome.BUSY: _("busy"),
    ActivityOutcome.HELD: _("held"),
    ActivityOutcome.MISSED: pgettext_lazy("contact", "did not take place"),
}
DOCUMENT_KIND = {
    DocumentKind.QUOTE: pgettext_lazy("document", "quote"),
    DocumentKind.INVOICE: pgettext_lazy("document", "invoice"),
    DocumentKind.CONTRACT: pgettext_lazy("document", "contract"),
}
EVIDENCE_KIND = {
    EvidenceKind.NONE: _("no evidence"),
    EvidenceKind.TEXT: _("text"),
    EvidenceKind.NUMBER: _("number"),
    EvidenceKind.MONEY: _("amount of money"),
    EvidenceKind.DATE: _("date"),
    EvidenceKind.DOCUMENT_NUMBER: _("document number"),
    EvidenceKind.FILE: _("file"),
}
CLIENT_KIND = {
    ClientKind.PERSON: _("person"),
    ClientKind.COMPANY: _("company"),
}
MOVE_KIND = {
    MoveKind.ENTER: _("entered"),
    MoveKind.FORWARD: _("forward"),
    MoveKind.SKIP: _("skipped ahead"),
    MoveKind.BACKWARD: _("returned"),
    MoveKind.REOPEN: _("reopened"),
    MoveKind.CLOSE: _("closed"),
}
EXECUTOR_RULE = {
    "keep_owner": _("the ticket's owner"),
    "user": _("a named person"),
    "team_role": _("a person of a team by role"),
}
STRATEGY = {
    "round_robin": _("in turn (round robin)"),
    "least_loaded": _("the least loaded"),
}

# Enum class -> its labels; ``label()`` looks a value up by its enum, or in all of them.
BY_ENUM: dict[type, Any] = {
    Role: ROLE, TicketStatus: TICKET_STATUS, Channel: CHANNEL, TaskKind: TASK_KIND,
    TaskStatus: TASK_STATUS, ActivityKind: ACTIVITY_KIND, Direction: DIRECTION,
    ActivityOutcome: OUTCOME, DocumentKind: DOCUMENT_KIND, EvidenceKind: EVIDENCE_KIND,
    ClientKind: CLIENT_KIND, MoveKind: MOVE_KIND,
}
BY_NAME: dict[str, Any] = {
    "role": ROLE, "ticket_status": TICKET_STATUS, "channel": CHANNEL, "task_kind": TASK_KIND,
    "task_status": TASK_STATUS, "activity_kind": ACTIVITY_KIND, "direction": DIRECTION,
    "outcome": OUTCOME, "document_kind": DOCUMENT_KIND, "evidence": EVIDENCE_KIND,
    "client_kind": CLIENT_KIND, "move": MOVE_KIND, "executor_rule": EXECUTOR_RULE,
    "strategy": STRATEGY,
}


def label(value: Any, kind: str) -> str:
    """The label of ``value`` in the table ``kind`` (``"channel"``, ``"task_kind"``...)."""
    table = BY_NAME.get(kind, {})
    found = table.get(str(value)) if value is not None else None
    return str(found) if found is not None else ("" if value is None else str(value))


def choices(kind: str, *, exclude: tuple[str, ...] = (),
            blank: Promise | str | None = None) -> list[tuple[str, Any]]:
    """Form choices for a table, in the order the codes are declared; the labels stay lazy so
    that a form built at import time still speaks the language of each request."""
    out: list[tuple[str, Any]] = [("", blank)] if blank is not None else []
    return out + [(str(code), text) for code, text in BY_NAME[kind].items()
                  if str(code) not in exclude]
