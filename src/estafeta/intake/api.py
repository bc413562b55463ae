"""``/api/v1/duplicates/`` and ``/api/v1/tickets/<number>/merge/``: possible duplicates for heads
to merge or dismiss, and merging one ticket into another (docs/intake.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.request import Request
from rest_framework.response import Response

from estafeta.api import serializers as s
from estafeta.api.errors import ErrorSerializer
from estafeta.api.views import ApiView, _page, _ticket_out, _valid
from estafeta.domain.codes import Role
from estafeta.domain.errors import Forbidden, NotFound
from estafeta.tickets.access import access_ticket

from .models import DuplicateFlag
from .selectors import flag_for, flags_for
from .services import duplicate_dismiss, flag_merge, ticket_merge

ERRORS = dict.fromkeys((400, 401, 403, 404, 409), ErrorSerializer)


class FlagSerializer(drf.ModelSerializer):
    ticket = drf.SerializerMethodField()
    of = drf.SerializerMethodField()
    decided_by = drf.SerializerMethodField()

    class Meta:
        model = DuplicateFlag
        fields = ["id", "ticket", "of", "status", "created_at", "decided_at", "decided_by",
                  "note"]

    def get_ticket(self, obj: DuplicateFlag) -> str:
        return obj.ticket.number

    def get_of(self, obj: DuplicateFlag) -> str:
        return obj.of.number

    def get_decided_by(self, obj: DuplicateFlag) -> int | None:
        return obj.decided_by_id


class NoteSerializer(drf.Serializer):
    note = drf.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MergeSerializer(drf.Serializer):
    into = drf.CharField(max_length=40, help_text="The number of the ticket that stays")
    reason = drf.CharField(max_length=2000, required=False, allow_blank=True, default="")


class _HeadView(ApiView):
    def flag(self, pk: int) -> DuplicateFlag:
        if self.person.role not in (Role.HEAD, Role.DIRECTOR):
            raise Forbidden("only heads of sales and directors decide possible duplicates",
                            code="role_required")
        flag = flag_for(self.person, pk)
        if flag is None:
            raise NotFound("there is no such possible duplicate", code="unknown_flag")
        return flag


class FlagListView(_HeadView):
    @extend_schema(responses={200: FlagSerializer(many=True), **ERRORS},
                   summary="Open possible duplicates I may decide, oldest first")
    def get(self, request: Request) -> Response:
        if self.person.role not in (Role.HEAD, Role.DIRECTOR):
            raise Forbidden("only heads of sales and directors decide possible duplicates",
                            code="role_required")
        return _page(self, request, flags_for(self.person), FlagSerializer)


class FlagMergeView(_HeadView):
    @extend_schema(request=NoteSerializer, responses={200: s.TicketSerializer, **ERRORS},
                   summary="Merge the flagged ticket into the one it duplicates")
    def post(self, request: Request, flag_id: int) -> Response:
        flag = self.flag(flag_id)
        data: dict[str, Any] = _valid(NoteSerializer, request.data)
        survivor = flag_merge(actor=self.person, flag=flag, note=data["note"])
        return Response(_ticket_out(self.person, survivor.number, acted=survivor))


class FlagDismissView(_HeadView):
    @extend_schema(request=NoteSerializer, responses={200: FlagSerializer, **ERRORS},
                   summary="Keep the flagged ticket as a request of its own")
    def post(self, request: Request, flag_id: int) -> Response:
        flag = self.flag(flag_id)
        data: dict[str, Any] = _valid(NoteSerializer, request.data)
        row = duplicate_dismiss(actor=self.person, flag=flag, note=data["note"])
        return Response(FlagSerializer(DuplicateFlag.objects.select_related("ticket", "of")
                                       .get(pk=row.pk)).data)


class TicketMergeView(ApiView):
    @extend_schema(request=MergeSerializer, responses={200: s.TicketSerializer, **ERRORS},
                   summary="Merge this ticket into another (heads of both, directors)")
    def post(self, request: Request, number: str) -> Response:
        ticket = access_ticket(self.person, number)
        data: dict[str, Any] = _valid(MergeSerializer, request.data)
        into = access_ticket(self.person, data["into"])
        survivor = ticket_merge(actor=self.person, ticket=ticket, into=into,
                                reason=data["reason"])
        return Response(_ticket_out(self.person, survivor.number, acted=survivor))
