"""REST API v1 views: thin. Each one authenticates, finds its object through ``tickets.access``
(missing and forbidden answer the same 404), checks the input's shape with a serializer and calls
one service; the services decide and refuse. Refusals become JSON errors in ``errors``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from estafeta.accounts.models import User
from estafeta.accounts.selectors import teams_search, users_search
from estafeta.clients.models import Client
from estafeta.clients.selectors import clients_matching
from estafeta.clients.services import client_anonymise, client_create
from estafeta.domain.codes import Role, TicketStatus
from estafeta.domain.errors import BadInput, Forbidden, NotFound
from estafeta.pipelines.models import Pipeline
from estafeta.pipelines.selectors import pipeline_by_code, pipelines_search
from estafeta.pipelines.services import pipeline_dump, pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.selectors import open_tasks_for_user
from estafeta.tasks.services import TaskDraft, task_complete, task_plan, task_reschedule
from estafeta.tickets.access import (
    access_client,
    access_task,
    access_ticket,
    clients_visible_to,
)
from estafeta.tickets.access import tickets_visible_to as visible_tickets
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import ticket_events, tickets_list, visit_entries
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    document_issue,
    stage_close,
    stage_pause,
    stage_resume,
    ticket_close_lost,
    ticket_close_won,
    ticket_create,
    ticket_reassign,
    ticket_reopen,
    ticket_update,
    ticket_void,
)

from . import serializers as s
from .errors import ErrorSerializer
from .fields import MAX_ID, IdField, code_field
from .idempotency import HEADER, idempotent
from .pagination import Pagination
from .parsers import SafeJSONParser, TextYAMLParser, YAMLTextParser
from .permissions import require_ticket_creator
from .tokens import token_issue, token_revoke

ERRORS = {status: OpenApiResponse(ErrorSerializer) for status in (400, 401, 404, 409)}
IDEMPOTENCY = OpenApiParameter(
    HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="a retried request with the same key and body returns the first answer and "
                "creates nothing; the same key with another body is refused (422)")


class ApiView(APIView):
    """Token first, so that an anonymous request gets 401 with ``WWW-Authenticate: Token``;
    session authentication (the UI) enforces CSRF on every write."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]

    @property
    def person(self) -> User:
        user = self.request.user
        assert isinstance(user, User)  # IsAuthenticated ran first
        return user


def _valid(serializer_class: type[drf.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _user(user_id: int | None, what: str) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise BadInput(f"there is no user {user_id} to be the {what}", code="unknown_user",
                       field=what)
    return user


def _draft(data: dict[str, Any] | None, what: str) -> TaskDraft | None:
    if data is None:
        return None
    return TaskDraft(kind=data["kind"], title=data["title"], due_at=data["due_at"],
                     assignee=_user(data.get("assignee"), f"{what}.assignee"))


def _page(view: APIView, request: Request, qs: QuerySet[Any] | list[Any],
          serializer_class: type[drf.Serializer]) -> Response:
    paginator = Pagination()
    rows = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer_class(rows, many=True).data)


def _ticket_out(user: User, number: str, *, acted: Ticket | None = None) -> dict[str, Any]:
    """The ticket as the person sees it now, with its checklist and open tasks. After an
    action (``acted``) the result is shown even if the person no longer sees the ticket (a
    head who gave it to another team): they were allowed to do what they just did."""
    try:
        ticket = access_ticket(user, number)
    except NotFound:
        if acted is None:
            raise
        ticket = (Ticket.objects.select_related("stage", "pipeline", "owner", "client")
                  .get(pk=acted.pk))
    checklist: list[dict[str, Any]] = []
    if ticket.status == TicketStatus.OPEN:
        visit = ticket.visits.filter(closed_at__isnull=True).first()
        if visit is not None:
            entries = visit_entries(visit)
            stage = next(st for st in ticket.version.stage_list if st.pk == visit.stage_id)
            for item in stage.items.all():
                entry = entries.get(item.pk)
                checklist.append({
                    "code": item.code, "title": item.title, "required": item.required,
                    "evidence_kind": item.evidence, "done": entry is not None,
                    "evidence": entry.evidence if entry else None})
    ticket.api_checklist = checklist  # type: ignore[attr-defined]
    ticket.api_open_tasks = list(  # type: ignore[attr-defined]
        ticket.tasks.filter(status="open").select_related("ticket").order_by("due_at", "pk"))
    return dict(s.TicketSerializer(ticket).data)


def _created_out(ticket: Ticket, client: Client) -> dict[str, Any]:
    """A ticket just registered, as ``_ticket_out`` shows it, without reading it back: the
    service returned it with its version, stage and owner, its first stage's checklist is still
    empty, and only its first task is read (one query instead of six)."""
    ticket.client = client
    ticket.pipeline = ticket.version.pipeline
    ticket.api_checklist = [  # type: ignore[attr-defined]
        {"code": item.code, "title": item.title, "required": item.required,
         "evidence_kind": item.evidence, "done": False, "evidence": None}
        for item in ticket.stage.items.all()]
    ticket.api_open_tasks = list(  # type: ignore[attr-defined]
        ticket.tasks.filter(status="open").select_related("ticket").order_by("due_at", "pk"))
    return dict(s.TicketSerializer(ticket).data)


# --- authentication ------------------------------------------------------------------------


class TokenThrottle(AnonRateThrottle):
    """Password guessing through the token endpoint: a few tries a minute per address."""

    scope = "token"
    rate = "20/min"


class TokenView(APIView):
    """Exchange a username and password for the person's API token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    @extend_schema(request=s.TokenRequestSerializer, responses={200: s.TokenSerializer,
                                                                400: ErrorSerializer},
                   auth=[], summary="Get an API token")
    def post(self, request: Request) -> Response:
        data = _valid(s.TokenRequestSerializer, request.data)
        user = authenticate(request._request, username=data["username"],
                            password=data["password"])
        if not isinstance(user, User) or not user.is_active:
            raise BadInput("the username or the password is wrong", code="invalid_credentials")
        return Response({"token": token_issue(user)})


class TokenRevokeView(ApiView):
    """Revoke the caller's token: every integration using it stops working at once."""

    @extend_schema(request=None, responses={204: None, 401: ErrorSerializer},
                   summary="Revoke my API token")
    def post(self, request: Request) -> Response:
        token_revoke(self.person)
        return Response(status=204)


# --- tickets -------------------------------------------------------------------------------


class TicketFilterSerializer(drf.Serializer):
    status = drf.ChoiceField(choices=[t.value for t in TicketStatus], required=False)
    pipeline = drf.CharField(max_length=40, required=False)
    stage = drf.CharField(max_length=40, required=False)
    owner = IdField(required=False)
    team = IdField(required=False)
    q = drf.CharField(max_length=200, required=False)


class TicketListView(ApiView):
    @extend_schema(parameters=[TicketFilterSerializer], responses={200: s.TicketListSerializer(
        many=True), 400: ErrorSerializer, 401: ErrorSerializer}, summary="Tickets I may see")
    def get(self, request: Request) -> Response:
        f = _valid(TicketFilterSerializer, request.query_params)
        qs = tickets_list(visible_tickets(self.person), q=f.get("q", ""),
                          status=f.get("status", ""), pipeline=f.get("pipeline", ""),
                          stage=f.get("stage", ""), owner=f.get("owner"), team=f.get("team"))
        return _page(self, request, qs, s.TicketListSerializer)

    @extend_schema(request=s.TicketCreateSerializer, parameters=[IDEMPOTENCY],
                   responses={201: s.TicketSerializer, 403: ErrorSerializer,
                              422: ErrorSerializer, **ERRORS},
                   summary="Register a request")
    def post(self, request: Request) -> Response:
        user = self.person
        require_ticket_creator(user)
        data = _valid(s.TicketCreateSerializer, request.data)

        def produce() -> Response:
            with transaction.atomic():
                client = self._client(user, data)
                ticket = ticket_create(
                    actor=user, pipeline=data["pipeline"], client=client,
                    channel=data["channel"], subject=data["subject"],
                    description=data["description"], amount=data.get("amount"),
                    first_task=_draft(data.get("first_task"), "first_task"))
            return Response(_created_out(ticket, client), status=201)

        return idempotent(request, produce)

    @staticmethod
    def _client(user: User, data: dict[str, Any]) -> Client:
        phones = [p for p in [data.get("client_phone", "")] if p.strip()]
        emails = [e for e in [data.get("client_email", "")] if e.strip()]
        if "client" in data:
            # A client the person may open, or one their phone/email search just found.
            found = clients_matching(phones=phones, emails=emails).filter(pk=data["client"])
            client = found.first()
            return client if client is not None else access_client(user, data["client"])
        if not phones and not emails:
            raise BadInput("a new client needs a phone or an email", code="contact_required",
                           field="client_phone")
        return client_create(actor=user, name=data["client_name"], phones=phones,
                             emails=emails)


class TicketDetailView(ApiView):
    @extend_schema(responses={200: s.TicketSerializer, 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="One ticket")
    def get(self, request: Request, number: str) -> Response:
        return Response(_ticket_out(self.person, number))

    @extend_schema(request=s.TicketUpdateSerializer,
                   responses={200: s.TicketSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Change the subject, description or expected amount")
    def patch(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data = _valid(s.TicketUpdateSerializer, request.data)
        ticket_update(actor=self.person, ticket=ticket, **data)
        return Response(_ticket_out(self.person, number))


class TicketEventsView(ApiView):
    @extend_schema(responses={200: s.EventSerializer(many=True), 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="The ticket's history, newest first")
    def get(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        return _page(self, request, ticket_events(ticket), s.EventSerializer)


class TicketTasksView(ApiView):
    @extend_schema(responses={200: s.TaskSerializer(many=True), 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="The ticket's tasks")
    def get(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        qs = (Task.objects.filter(ticket=ticket).select_related("ticket")
              .order_by("-created_at", "-pk"))
        return _page(self, request, qs, s.TaskSerializer)

    @extend_schema(request=s.TaskDraftSerializer,
                   responses={201: s.TaskSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Plan a task")
    def post(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data = _valid(s.TaskDraftSerializer, request.data)
        task = task_plan(actor=self.person, ticket=ticket, draft=_draft(data, "task"))  # type: ignore[arg-type]
        return Response(s.TaskSerializer(task).data, status=201)


class TicketActionView(ApiView):
    """A POST sub-resource of a ticket answering with the ticket as it now stands."""

    input: type[drf.Serializer]

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        raise NotImplementedError  # pragma: no cover

    def post(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data = _valid(self.input, request.data)
        self.act(self.person, ticket, data)
        return Response(_ticket_out(self.person, ticket.number, acted=ticket))


def _action(request_serializer: type[drf.Serializer], summary: str) -> Any:
    return extend_schema(request=request_serializer, summary=summary,
                         responses={200: s.TicketSerializer, 403: ErrorSerializer, **ERRORS})


class ChecklistView(TicketActionView):
    input = s.ChecklistItemSerializer

    @_action(s.ChecklistItemSerializer, "Complete a checklist item of the current stage")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return checklist_item_complete(actor=user, ticket=ticket, stage=data["stage"],
                                       item=data["item"], evidence=data.get("evidence"),
                                       file=data.get("file"))


class StageCloseView(TicketActionView):
    input = s.StageCloseSerializer

    @_action(s.StageCloseSerializer, "Close the current stage (409 stale_stage if it moved)")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return stage_close(actor=user, ticket=ticket, stage=data["stage"], to=data.get("to"),
                           amount=data.get("amount"),
                           next_task=_draft(data.get("next_task"), "next_task"))


class WonView(TicketActionView):
    input = s.WonSerializer

    @_action(s.WonSerializer, "Close the ticket as won")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return ticket_close_won(actor=user, ticket=ticket, stage=data["stage"],
                                amount=data.get("amount"))


class LostView(TicketActionView):
    input = s.LostSerializer

    @_action(s.LostSerializer, "Close the ticket as lost")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return ticket_close_lost(actor=user, ticket=ticket, reason=data["reason"],
                                 note=data["note"])


class VoidView(TicketActionView):
    input = s.VoidSerializer

    @_action(s.VoidSerializer, "Close the ticket as void (duplicate, spam, test)")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return ticket_void(actor=user, ticket=ticket, reason=data["reason"],
                           duplicate_of=data.get("duplicate_of") or None)


class ReassignView(TicketActionView):
    input = s.ReassignSerializer

    @_action(s.ReassignSerializer, "Give the ticket to another owner (heads)")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        owner = _user(data["owner"], "owner")
        assert owner is not None
        return ticket_reassign(actor=user, ticket=ticket, owner=owner, reason=data["reason"],
                               move_tasks=data["move_tasks"])


class ReopenView(TicketActionView):
    input = s.ReopenSerializer

    @_action(s.ReopenSerializer, "Reopen a closed ticket (heads)")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return ticket_reopen(actor=user, ticket=ticket, reason=data["reason"], to=data.get("to"))


class PauseSerializer(drf.Serializer):
    reason = drf.CharField(max_length=10000, help_text="why the stage waits for the client")
    stage = code_field(required=False, help_text="the stage the person saw (409 if it moved)")


class ResumeSerializer(drf.Serializer):
    stage = code_field(required=False, help_text="the stage the person saw (409 if it moved)")


class PauseView(TicketActionView):
    input = PauseSerializer

    @_action(PauseSerializer, "Wait for the client: stop the current stage's SLA clock "
                              "(stages marked pausable; the executor or a head)")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return stage_pause(actor=user, ticket=ticket, reason=data["reason"],
                           stage=data.get("stage") or None)


class ResumeView(TicketActionView):
    input = ResumeSerializer

    @_action(ResumeSerializer, "Resume a stage waiting for the client: its SLA clock runs again")
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)

    def act(self, user: User, ticket: Ticket, data: dict[str, Any]) -> Any:
        return stage_resume(actor=user, ticket=ticket, stage=data.get("stage") or None)


class ActivityView(ApiView):
    @extend_schema(request=s.ActivitySerializer,
                   responses={201: s.ActivityOutSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Log a contact with the client")
    def post(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data = _valid(s.ActivitySerializer, request.data)
        activity = activity_log(actor=self.person, ticket=ticket, **data)
        return Response(s.ActivityOutSerializer(activity).data, status=201)


class DocumentView(ApiView):
    @extend_schema(request=s.DocumentSerializer,
                   responses={201: s.DocumentOutSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Record a quote, invoice or contract issued")
    def post(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data = _valid(s.DocumentSerializer, request.data)
        document = document_issue(actor=self.person, ticket=ticket, **data)
        return Response(s.DocumentOutSerializer(document).data, status=201)


# --- tasks ---------------------------------------------------------------------------------


class MyTasksView(ApiView):
    @extend_schema(responses={200: s.MyTaskSerializer(many=True), 401: ErrorSerializer},
                   summary="My open tasks, soonest due first")
    def get(self, request: Request) -> Response:
        return _page(self, request, open_tasks_for_user(self.person), s.MyTaskSerializer)


class TaskDetailView(ApiView):
    @extend_schema(responses={200: s.TaskSerializer, 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="One task")
    def get(self, request: Request, task_id: int) -> Response:
        return Response(s.TaskSerializer(access_task(self.person, task_id)).data)


class TaskCompleteView(ApiView):
    @extend_schema(request=s.TaskCompleteSerializer,
                   responses={200: s.TaskSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Complete a task (with its successor when it is the last one)")
    def post(self, request: Request, task_id: int) -> Response:
        task = access_task(self.person, task_id)
        data = _valid(s.TaskCompleteSerializer, request.data)
        task = task_complete(actor=self.person, task=task, outcome=data["outcome"],
                             result=data["result"], contact_outcome=data.get("contact_outcome"),
                             duration_seconds=data.get("duration_seconds"),
                             successor=_draft(data.get("successor"), "successor"))
        return Response(s.TaskSerializer(access_task(self.person, task.pk)).data)


class TaskRescheduleView(ApiView):
    @extend_schema(request=s.TaskRescheduleSerializer,
                   responses={200: s.TaskSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Move a task's due time, with the reason")
    def post(self, request: Request, task_id: int) -> Response:
        task = access_task(self.person, task_id)
        data = _valid(s.TaskRescheduleSerializer, request.data)
        task = task_reschedule(actor=self.person, task=task, due_at=data["due_at"],
                               reason=data["reason"])
        return Response(s.TaskSerializer(access_task(self.person, task.pk)).data)


# --- clients -------------------------------------------------------------------------------


class ClientFilterSerializer(drf.Serializer):
    q = drf.CharField(max_length=200, required=False, help_text="part of the name")
    phone = drf.CharField(max_length=40, required=False, help_text="any spelling")
    email = drf.CharField(max_length=254, required=False)


class ClientListView(ApiView):
    @extend_schema(parameters=[ClientFilterSerializer],
                   responses={200: s.ClientSerializer(many=True), 400: ErrorSerializer,
                              401: ErrorSerializer},
                   summary="Find clients: by phone or email (before registering a request) "
                           "or among those I may open, by name")
    def get(self, request: Request) -> Response:
        f = _valid(ClientFilterSerializer, request.query_params)
        qs: QuerySet[Client]
        if f.get("phone") or f.get("email"):
            if Role(self.person.role) is Role.ADMIN:
                raise Forbidden("admins open client cards; the search by contact is for "
                                "registering requests", code="role_required")
            qs = clients_matching(phones=[f["phone"]] if f.get("phone") else [],
                                  emails=[f["email"]] if f.get("email") else [])
        else:
            qs = clients_visible_to(self.person).order_by("name", "pk")
            if f.get("q"):
                qs = qs.filter(name__icontains=" ".join(f["q"].split()))
        return _page(self, request, qs, s.ClientSerializer)

    @extend_schema(request=s.ClientCreateSerializer, parameters=[IDEMPOTENCY],
                   responses={201: s.ClientCreatedSerializer, 403: ErrorSerializer,
                              422: ErrorSerializer, **ERRORS},
                   summary="Register a client (duplicates are listed, not refused)")
    def post(self, request: Request) -> Response:
        user = self.person
        require_ticket_creator(user)
        data = _valid(s.ClientCreateSerializer, request.data)

        def produce() -> Response:
            duplicates = list(clients_matching(phones=data["phones"], emails=data["emails"])
                              .values_list("pk", flat=True)[:20])
            client = client_create(actor=user, name=data["name"], kind=data["kind"],
                                   phones=data["phones"], emails=data["emails"],
                                   notes=data["notes"])
            client.api_duplicates = duplicates  # type: ignore[attr-defined]
            return Response(s.ClientCreatedSerializer(client).data, status=201)

        return idempotent(request, produce)


class ClientDetailView(ApiView):
    @extend_schema(responses={200: s.ClientSerializer, 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="One client")
    def get(self, request: Request, client_id: int) -> Response:
        return Response(s.ClientSerializer(access_client(self.person, client_id)).data)


class ClientAnonymiseView(ApiView):
    @extend_schema(request=s.AnonymiseSerializer,
                   responses={200: s.ClientSerializer, 403: ErrorSerializer, **ERRORS},
                   summary="Erase a client's personal data (admins)")
    def post(self, request: Request, client_id: int) -> Response:
        client = access_client(self.person, client_id)
        data = _valid(s.AnonymiseSerializer, request.data)
        client = client_anonymise(actor=self.person, client=client, reason=data["reason"])
        return Response(s.ClientSerializer(client).data)


# --- configuration (read for everyone, pipelines written by admins) ------------------------


class PipelineListView(ApiView):
    parser_classes = [SafeJSONParser, YAMLTextParser, TextYAMLParser]

    @extend_schema(responses={200: s.PipelineSerializer(many=True), 401: ErrorSerializer},
                   summary="Pipelines")
    def get(self, request: Request) -> Response:
        return _page(self, request, pipelines_search(request.query_params.get("q", "")),
                     s.PipelineSerializer)

    @extend_schema(request={"application/json": s.PipelineYAMLSerializer,
                            "application/yaml": OpenApiTypes.STR},
                   responses={200: s.PipelineLoadedSerializer, 201: s.PipelineLoadedSerializer,
                              403: ErrorSerializer, **ERRORS},
                   summary="Load a pipeline definition (YAML) as its new version (admins)")
    def post(self, request: Request) -> Response:
        data = _valid(s.PipelineYAMLSerializer, request.data)
        result = pipeline_load(actor=self.person, text=data["yaml"], source="request")
        return Response({"code": result.pipeline.code, "version": result.version.number,
                         "changed": result.created}, status=201 if result.created else 200)


def _pipeline(code: str) -> Pipeline:
    if not code or len(code) > 40:
        raise NotFound(f"there is no pipeline {code!r}", code="unknown_pipeline")
    return pipeline_by_code(code)


class PipelineDetailView(ApiView):
    @extend_schema(responses={200: s.PipelineDetailSerializer, 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="A pipeline and its stages")
    def get(self, request: Request, code: str) -> Response:
        pipeline = _pipeline(code)
        return Response(s.PipelineDetailSerializer(pipeline).data)


class PipelineYAMLView(ApiView):
    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.STR,
                              401: ErrorSerializer, 404: ErrorSerializer},
                   summary="The current definition as YAML")
    def get(self, request: Request, code: str) -> Response:
        pipeline = _pipeline(code)
        return HttpResponse(pipeline_dump(pipeline.code),  # type: ignore[return-value]
                            content_type="application/yaml; charset=utf-8")


class UserListView(ApiView):
    @extend_schema(responses={200: s.UserSerializer(many=True), 401: ErrorSerializer},
                   parameters=[OpenApiParameter("q", OpenApiTypes.STR)], summary="People")
    def get(self, request: Request) -> Response:
        return _page(self, request, users_search(request.query_params.get("q", "")),
                     s.UserSerializer)


class UserMeView(ApiView):
    @extend_schema(responses={200: s.UserSerializer, 401: ErrorSerializer}, summary="Me")
    def get(self, request: Request) -> Response:
        return Response(s.UserSerializer(self.person).data)


class UserDetailView(ApiView):
    @extend_schema(responses={200: s.UserSerializer, 401: ErrorSerializer,
                              404: ErrorSerializer}, summary="One person")
    def get(self, request: Request, user_id: int) -> Response:
        user = users_search().filter(pk=user_id).first() if user_id <= MAX_ID else None
        if user is None:
            raise NotFound(f"there is no user {user_id}", code="unknown_user")
        return Response(s.UserSerializer(user).data)


class TeamListView(ApiView):
    @extend_schema(responses={200: s.TeamSerializer(many=True), 401: ErrorSerializer},
                   parameters=[OpenApiParameter("q", OpenApiTypes.STR)], summary="Teams")
    def get(self, request: Request) -> Response:
        return _page(self, request, teams_search(request.query_params.get("q", "")),
                     s.TeamSerializer)
