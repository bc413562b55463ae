"""``/api/v1/notifications/``: the current person's in-app notifications, and marking them read."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf
from rest_framework.request import Request
from rest_framework.response import Response

from estafeta.api.errors import ErrorSerializer
from estafeta.api.views import ApiView, _page, _valid

from .models import Notification
from .selectors import inapp_for, unread_count
from .services import notifications_mark_read


class NotificationSerializer(drf.ModelSerializer):
    ticket = drf.SerializerMethodField()
    read = drf.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "ticket", "payload", "created_at", "read", "read_at"]

    def get_ticket(self, obj: Notification) -> str | None:
        return obj.ticket.number if obj.ticket is not None else None

    def get_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class MarkReadSerializer(drf.Serializer):
    ids = drf.ListField(child=drf.IntegerField(min_value=1), required=False, max_length=1000,
                        help_text="Only these; all unread ones if left out.")


class MarkedSerializer(drf.Serializer):
    marked = drf.IntegerField()
    unread = drf.IntegerField()


class NotificationListView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only unread")],
        responses={200: NotificationSerializer(many=True), 401: ErrorSerializer},
        summary="My in-app notifications, newest first")
    def get(self, request: Request) -> Response:
        unread = request.query_params.get("unread", "") in ("1", "true", "yes")
        return _page(self, request, inapp_for(self.person, unread=unread),
                     NotificationSerializer)


class NotificationReadView(ApiView):
    @extend_schema(request=MarkReadSerializer,
                   responses={200: MarkedSerializer, 400: ErrorSerializer, 401: ErrorSerializer},
                   summary="Mark my notifications read")
    def post(self, request: Request) -> Response:
        data: dict[str, Any] = _valid(MarkReadSerializer, request.data)
        marked = notifications_mark_read(actor=self.person, ids=data.get("ids"))
        return Response({"marked": marked, "unread": unread_count(self.person)})
