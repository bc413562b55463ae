"""``POST /api/v1/tickets/<number>/reply/``: reply to the client by email, the same service as
the ticket page's "Reply by email" form (``mailin.outgoing.mail_reply``): one outbound message,
one outbound email activity, the outbox row, and the ticket's open "reply to the client" task
completed by that reply (docs/email.md, docs/api.md)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.request import Request
from rest_framework.response import Response

from estafeta.mailin.models import MailMessage
from estafeta.mailin.outgoing import MAX_SUBJECT, MAX_TEXT, mail_reply, reply_task
from estafeta.tickets.access import access_ticket

from . import serializers as s
from .errors import ErrorSerializer
from .idempotency import idempotent
from .views import IDEMPOTENCY, ApiView, _draft, _valid

ERRORS = {status: OpenApiResponse(ErrorSerializer)
          for status in (400, 401, 403, 404, 409, 422)}


class ReplySerializer(drf.Serializer):
    to = drf.CharField(max_length=1000,
                       help_text="the client's address; several: separate them with commas "
                                 "(at most 10)")
    subject = drf.CharField(max_length=MAX_SUBJECT, required=False, allow_blank=True,
                            default="",
                            help_text="empty: 'Re: ' and the client's last subject; the "
                                      "ticket's number tag is added when missing")
    text = drf.CharField(max_length=MAX_TEXT, trim_whitespace=False,
                         help_text="plain text of the reply")
    next_task = s.TaskDraftSerializer(
        required=False,
        help_text="planned only when the reply completes the ticket's last open task; without "
                  "it that task stays open (reply_task.status 'open')")


class ReplyOutSerializer(drf.Serializer):
    id = drf.IntegerField(read_only=True)
    ticket = drf.CharField(source="ticket.number", read_only=True)
    message_id = drf.CharField(read_only=True, help_text="the email's Message-ID")
    to = drf.CharField(source="to_addresses", read_only=True)
    subject = drf.CharField(read_only=True)
    sent_at = drf.DateTimeField(read_only=True)
    activity = drf.IntegerField(source="activity_id", read_only=True)
    reply_task = drf.SerializerMethodField(
        help_text="the 'reply to the client' task this reply answered: done, or open when it "
                  "was the ticket's last task and no next_task was given; null when none was "
                  "waiting")

    def get_reply_task(self, obj: MailMessage) -> dict[str, Any] | None:
        task = reply_task(obj)
        return dict(s.TaskSerializer(task).data) if task is not None else None


class TicketReplyView(ApiView):
    @extend_schema(request=ReplySerializer, parameters=[IDEMPOTENCY],
                   responses={201: ReplyOutSerializer, **ERRORS},
                   summary="Reply to the client by email (completes the waiting reply task)")
    def post(self, request: Request, number: str) -> Response:
        user = self.person
        ticket = access_ticket(user, number)
        data = _valid(ReplySerializer, request.data)

        def produce() -> Response:
            with transaction.atomic():
                message = mail_reply(actor=user, ticket=ticket, to=data["to"],
                                     subject=data["subject"], text=data["text"],
                                     successor=_draft(data.get("next_task"), "next_task"))
            message = MailMessage.objects.select_related("ticket").get(pk=message.pk)
            return Response(ReplyOutSerializer(message).data, status=201)

        return idempotent(request, produce)
