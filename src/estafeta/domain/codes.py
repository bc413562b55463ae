"""Stable codes stored in the database. Never rename a value: rows and event payloads keep them.

Labels shown to people live in the interfaces (translated); these are only identifiers.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SELLER = "seller"
    HEAD = "head"
    DIRECTOR = "director"
    OPERATOR = "operator"
    ADMIN = "admin"


class TicketStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"
    VOID = "void"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WEB_FORM = "web_form"
    WALK_IN = "walk_in"
    MESSENGER = "messenger"
    API = "api"


class StageSemantic(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class MoveKind(StrEnum):
    ENTER = "enter"  # the first stage, at creation
    FORWARD = "forward"  # to the next open stage (or into the won stage)
    SKIP = "skip"  # forward over skippable stages
    BACKWARD = "backward"  # back to an earlier stage, heads only
    REOPEN = "reopen"  # a closed ticket opened again, heads only
    CLOSE = "close"  # into a terminal stage by a lost outcome


class EvidenceKind(StrEnum):
    NONE = "none"
    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    DOCUMENT_NUMBER = "document_number"
    FILE = "file"


class TaskKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    VIDEO = "video"
    QUOTE = "quote"
    INVOICE = "invoice"
    CONTRACT = "contract"
    OTHER = "other"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


class ActivityKind(StrEnum):
    EMAIL = "email"
    CALL = "call"
    VIDEO = "video"
    MEETING = "meeting"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class ActivityOutcome(StrEnum):
    SENT = "sent"  # email out
    RECEIVED = "received"  # email in
    CONNECTED = "connected"  # call that reached the client
    NO_ANSWER = "no_answer"  # call attempt
    BUSY = "busy"  # call attempt
    HELD = "held"  # meeting or video presentation that took place
    MISSED = "missed"  # meeting or video presentation that did not take place


OUTCOMES_BY_KIND: dict[ActivityKind, frozenset[ActivityOutcome]] = {
    ActivityKind.EMAIL: frozenset({ActivityOutcome.SENT, ActivityOutcome.RECEIVED}),
    ActivityKind.CALL: frozenset(
        {ActivityOutcome.CONNECTED, ActivityOutcome.NO_ANSWER, ActivityOutcome.BUSY}
    ),
    ActivityKind.VIDEO: frozenset({ActivityOutcome.HELD, ActivityOutcome.MISSED}),
    ActivityKind.MEETING: frozenset({ActivityOutcome.HELD, ActivityOutcome.MISSED}),
}

# The activity a completed contact task produces, when the person says nothing more.
DEFAULT_OUTCOME: dict[ActivityKind, ActivityOutcome] = {
    ActivityKind.EMAIL: ActivityOutcome.SENT,
    ActivityKind.CALL: ActivityOutcome.CONNECTED,
    ActivityKind.VIDEO: ActivityOutcome.HELD,
    ActivityKind.MEETING: ActivityOutcome.HELD,
}

CONTACT_TASK_KINDS: dict[TaskKind, ActivityKind] = {
    TaskKind.CALL: ActivityKind.CALL,
    TaskKind.EMAIL: ActivityKind.EMAIL,
    TaskKind.MEETING: ActivityKind.MEETING,
    TaskKind.VIDEO: ActivityKind.VIDEO,
}


class ActivitySource(StrEnum):
    MANUAL = "manual"
    TASK = "task"
    EMAIL_INTAKE = "email_intake"
    TELEPHONY = "telephony"
    MESSENGER = "messenger"


class DocumentKind(StrEnum):
    QUOTE = "quote"
    INVOICE = "invoice"
    CONTRACT = "contract"


class ClientKind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


class EventType(StrEnum):
    """Every event type ever written. Codes are ``<subject>.<verb>`` and never change meaning."""

    # tickets
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    TICKET_REASSIGNED = "ticket.reassigned"
    TICKET_HANDED_OVER = "ticket.handed_over"  # owner/executor/tasks moved by a deactivation
    TICKET_WON = "ticket.won"
    TICKET_LOST = "ticket.lost"
    TICKET_VOIDED = "ticket.voided"
    TICKET_REOPENED = "ticket.reopened"
    CHECKLIST_ITEM_COMPLETED = "checklist.item_completed"
    STAGE_CLOSED = "stage.closed"
    STAGE_RETURNED = "stage.returned"
    STAGE_PAUSED = "stage.paused"  # waiting for the client: the stage's SLA clock stops
    STAGE_RESUMED = "stage.resumed"
    TASK_PLANNED = "task.planned"
    TASK_COMPLETED = "task.completed"
    TASK_REASSIGNED = "task.reassigned"
    TASK_RESCHEDULED = "task.rescheduled"
    TASK_CANCELLED = "task.cancelled"
    ACTIVITY_LOGGED = "activity.logged"
    DOCUMENT_ISSUED = "document.issued"
    # clients
    CLIENT_CREATED = "client.created"
    CLIENT_UPDATED = "client.updated"
    CLIENT_ANONYMISED = "client.anonymised"
    # people
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    TOKEN_ISSUED = "token.issued"  # noqa: S105 - an event type (docs/api.md), not a key
    TOKEN_REVOKED = "token.revoked"  # noqa: S105
    ABSENCE_ADDED = "absence.added"
    ABSENCE_CANCELLED = "absence.cancelled"
    TEAM_CREATED = "team.created"
    TEAM_UPDATED = "team.updated"
    SEGMENT_SAVED = "segment.saved"
    TERRITORY_SAVED = "territory.saved"
    # configuration
    PIPELINE_VERSION_LOADED = "pipeline.version_loaded"
    PIPELINE_UPDATED = "pipeline.updated"
    LOST_REASON_ADDED = "lost_reason.added"
    LOST_REASON_UPDATED = "lost_reason.updated"
    CALENDAR_DAY_SET = "calendar_day.set"
    HOOK_SOURCE_CREATED = "hook_source.created"  # a webhook source (docs/webhooks-in.md)
    HOOK_SOURCE_UPDATED = "hook_source.updated"  # secret rotated, (de)activated
    # internal control
    ESCALATION_RAISED = "escalation.raised"
    ESCALATION_ACKNOWLEDGED = "escalation.acknowledged"
    # K11 energy level
    ENERGY_RATED = "energy.rated"
    # K6 potentials
    TARGET_SET = "target.set"
    # email intake (docs/email.md)
    MAILBOX_SAVED = "mailbox.saved"
    MAIL_QUARANTINED = "mail.quarantined"
    QUARANTINE_RESOLVED = "quarantine.resolved"
    # web forms (docs/webforms.md)
    WEBFORM_CREATED = "webform.created"
    WEBFORM_UPDATED = "webform.updated"
    # intake (docs/intake.md)
    INTAKE_RECEIVED = "intake.received"
    TICKET_MERGED = "ticket.merged"  # on the surviving ticket; the merged one is voided
    DUPLICATE_DISMISSED = "duplicate.dismissed"
