"""What the API reads and writes. Output serializers are read-only views of rows; input
serializers check shapes and types only: the services decide everything else.

Mass assignment cannot happen: an input serializer names exactly the fields an action takes,
and unknown fields (``number``, ``status``, ``owner``...) are ignored, never written.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from estafeta.domain.codes import (
    ActivityKind,
    ActivityOutcome,
    Channel,
    ClientKind,
    Direction,
    DocumentKind,
    TaskKind,
    TaskStatus,
    TicketStatus,
)

from .fields import (
    AwareDateTimeField,
    EvidenceField,
    IdField,
    MoneyField,
    code_field,
    text_field,
)


def _choices(enum: Any) -> list[str]:
    return [m.value for m in enum]


# --- output --------------------------------------------------------------------------------


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user: Any) -> str:
        return str(user.get_full_name() or user.username)


class UserSerializer(PersonSerializer):
    role = serializers.CharField(read_only=True)
    team = serializers.IntegerField(source="team_id", read_only=True, allow_null=True)
    is_active = serializers.BooleanField(read_only=True)


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    head = serializers.IntegerField(source="head_id", read_only=True, allow_null=True)


class StageRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class ClientRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class TicketListSerializer(serializers.Serializer):
    """A list row: only what ``tickets_list`` loads (one query a page)."""

    number = serializers.CharField(read_only=True)
    subject = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=_choices(TicketStatus), read_only=True)
    pipeline = serializers.CharField(source="pipeline.code", read_only=True)
    stage = StageRefSerializer(read_only=True)
    client = ClientRefSerializer(read_only=True)
    owner = PersonSerializer(read_only=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True,
                                      allow_null=True)
    currency = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class ChecklistItemStateSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    evidence_kind = serializers.CharField()
    done = serializers.BooleanField()
    evidence = serializers.JSONField(allow_null=True)


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    ticket = serializers.CharField(source="ticket.number", read_only=True)
    kind = serializers.ChoiceField(choices=_choices(TaskKind), read_only=True)
    title = serializers.CharField(read_only=True)
    assignee = serializers.IntegerField(source="assignee_id", read_only=True)
    due_at = serializers.DateTimeField(read_only=True)
    status = serializers.ChoiceField(choices=_choices(TaskStatus), read_only=True)
    result = serializers.CharField(read_only=True)
    done_at = serializers.DateTimeField(read_only=True, allow_null=True)


class MyTaskSerializer(serializers.Serializer):
    """A row of "my tasks": only what ``open_tasks_for_user`` loads."""

    id = serializers.IntegerField(read_only=True)
    ticket = serializers.CharField(source="ticket.number", read_only=True)
    subject = serializers.CharField(source="ticket.subject", read_only=True)
    client = serializers.CharField(source="ticket.client.name", read_only=True)
    stage = serializers.CharField(source="ticket.stage.name", read_only=True)
    kind = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    due_at = serializers.DateTimeField(read_only=True)


class TicketSerializer(TicketListSerializer):
    """One ticket with its current checklist and open tasks (filled in by the view)."""

    description = serializers.CharField(read_only=True)
    channel = serializers.ChoiceField(choices=_choices(Channel), read_only=True)
    team = serializers.IntegerField(source="team_id", read_only=True, allow_null=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True,
                                          allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    lost_reason = serializers.SerializerMethodField()
    close_note = serializers.CharField(read_only=True)
    checklist = ChecklistItemStateSerializer(many=True, read_only=True,
                                             source="api_checklist")
    open_tasks = TaskSerializer(many=True, read_only=True, source="api_open_tasks")

    def get_lost_reason(self, ticket: Any) -> str | None:
        reason = ticket.lost_reason
        return str(reason.code) if reason is not None else None


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(read_only=True)
    type = serializers.CharField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    actor = PersonSerializer(read_only=True, allow_null=True)
    payload = serializers.JSONField(read_only=True)


class ClientSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    key_account = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    anonymised = serializers.SerializerMethodField()

    def get_anonymised(self, client: Any) -> bool:
        return client.anonymised_at is not None


class ClientCreatedSerializer(ClientSerializer):
    duplicates = serializers.ListField(child=serializers.IntegerField(), read_only=True,
                                       source="api_duplicates",
                                       help_text="earlier clients with one of these contacts")


class PipelineSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    version = serializers.IntegerField(source="current_version.number", read_only=True,
                                       allow_null=True)


class PipelineDetailSerializer(PipelineSerializer):
    stages = serializers.SerializerMethodField()

    def get_stages(self, pipeline: Any) -> list[dict[str, Any]]:
        version = pipeline.current_version
        if version is None:
            return []
        return [{"code": s.code, "name": s.name, "semantic": s.semantic, "sla": s.sla,
                 "items": [{"code": i.code, "title": i.title, "required": i.required,
                            "evidence_kind": i.evidence} for i in s.items.all()]}
                for s in version.stage_list]


class PipelineLoadedSerializer(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.IntegerField()
    changed = serializers.BooleanField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


# --- input ---------------------------------------------------------------------------------


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"})


class TaskDraftSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=_choices(TaskKind))
    title = serializers.CharField(max_length=200)
    due_at = AwareDateTimeField()
    assignee = IdField(required=False, allow_null=True,
                       help_text="user id; default: the person planning it")


class TicketCreateSerializer(serializers.Serializer):
    """A new request. The client is an existing id or a new one (name and contacts)."""

    pipeline = code_field()
    channel = serializers.ChoiceField(choices=_choices(Channel))
    subject = serializers.CharField(max_length=200)
    description = text_field(10000)
    amount = MoneyField(required=False, allow_null=True)
    client = IdField(required=False, help_text="an existing client's id")
    client_name = serializers.CharField(max_length=200, required=False,
                                        help_text="a new client's name (with phone or email)")
    client_phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    client_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    first_task = TaskDraftSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("client" in attrs) == ("client_name" in attrs):
            raise serializers.ValidationError(
                {"client": ["give either client (an id) or client_name"]})
        return attrs


class TicketUpdateSerializer(serializers.Serializer):
    """The editable fields. Anything else in the body is ignored."""

    subject = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    amount = MoneyField(required=False, allow_null=True)


class ChecklistItemSerializer(serializers.Serializer):
    stage = code_field(help_text="the stage the person saw (409 if the ticket moved on)")
    item = code_field()
    evidence = EvidenceField(required=False, allow_null=True)
    file = serializers.FileField(required=False, help_text="for items asking for a file")


class StageCloseSerializer(serializers.Serializer):
    stage = code_field(help_text="the stage the person saw (409 if the ticket moved on)")
    to = code_field(required=False, help_text="a later stage, over skippable ones")
    amount = MoneyField(required=False, allow_null=True)
    next_task = TaskDraftSerializer(required=False)


class ActivitySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=_choices(ActivityKind))
    direction = serializers.ChoiceField(choices=_choices(Direction))
    outcome = serializers.ChoiceField(choices=_choices(ActivityOutcome))
    duration_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                max_value=86400)
    occurred_at = AwareDateTimeField(required=False, allow_null=True)
    note = text_field(10000)


class ActivityOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    direction = serializers.CharField(read_only=True)
    outcome = serializers.CharField(read_only=True)
    duration_seconds = serializers.IntegerField(read_only=True, allow_null=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    note = serializers.CharField(read_only=True)


class DocumentSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=_choices(DocumentKind))
    number = serializers.CharField(max_length=64)
    amount = MoneyField()
    currency = serializers.CharField(max_length=3, default="RUB")


class DocumentOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    number = serializers.CharField(read_only=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    currency = serializers.CharField(read_only=True)
    issued_at = serializers.DateTimeField(read_only=True)


class WonSerializer(serializers.Serializer):
    stage = code_field(help_text="the stage the person saw (409 if the ticket moved on)")
    amount = MoneyField(required=False, allow_null=True)


class LostSerializer(serializers.Serializer):
    reason = code_field(help_text="a lost reason code of the pipeline")
    note = text_field(10000)


class VoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10000)
    duplicate_of = serializers.CharField(max_length=32, required=False, allow_blank=True)


class ReassignSerializer(serializers.Serializer):
    owner = IdField(help_text="the new owner's user id")
    reason = text_field(10000)
    move_tasks = serializers.BooleanField(default=True)


class ReopenSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10000)
    to = code_field(required=False)


class TaskCompleteSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[TaskStatus.DONE.value, TaskStatus.MISSED.value],
                                      default=TaskStatus.DONE.value)
    result = text_field(5000)
    contact_outcome = serializers.ChoiceField(choices=_choices(ActivityOutcome), required=False,
                                              allow_null=True)
    duration_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                max_value=86400)
    successor = TaskDraftSerializer(required=False,
                                    help_text="required when this is the ticket's last open "
                                              "task (code successor_required otherwise)")


class TaskRescheduleSerializer(serializers.Serializer):
    due_at = AwareDateTimeField()
    reason = serializers.CharField(max_length=5000)


class ClientCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=_choices(ClientKind), default=ClientKind.PERSON.value)
    phones = serializers.ListField(child=serializers.CharField(max_length=40), max_length=10,
                                   default=list)
    emails = serializers.ListField(child=serializers.CharField(max_length=254), max_length=10,
                                   default=list)
    notes = text_field(10000)


class AnonymiseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10000)


class PipelineYAMLSerializer(serializers.Serializer):
    yaml = serializers.CharField(max_length=1_000_000, trim_whitespace=False,
                                 help_text="the pipeline definition (YAML)")
