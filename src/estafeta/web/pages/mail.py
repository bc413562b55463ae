"""A ticket's email: the thread (also shown on the ticket page), one message, its attachments
and the "Reply by email" form.

Every view finds the ticket through ``access_ticket`` (a ticket the person may not see answers
404, like one that does not exist) and then the message or attachment *of that ticket*. HTML
bodies are shown only through ``mailin.sanitize``; remote images stay out unless the reader
opens the message with ``?images=1``. Attachments are always downloads: a safe RFC 6266 name,
``nosniff``, and a content type from an allow-list (anything else is
``application/octet-stream``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from estafeta.accounts.selectors import actor_facts
from estafeta.domain.codes import TicketStatus
from estafeta.domain.errors import EstafetaError, NotFound
from estafeta.domain.policy import is_participant, is_supervisor
from estafeta.mailin.models import MailAttachment, MailDirection, MailMessage
from estafeta.mailin.outgoing import MAX_TEXT, mail_reply, reply_draft, reply_task
from estafeta.mailin.sanitize import sanitize_html, text_as_html
from estafeta.tickets.access import access_ticket
from estafeta.tickets.files import safe_name
from estafeta.tickets.models import Ticket
from estafeta.tickets.selectors import ticket_facts

from ..errors import describe, status_for
from .common import TICKET_ROLES, error_page, roles_required

# Served with their own type (still as downloads); anything else is application/octet-stream.
# Never text/html, image/svg+xml or anything a browser would run.
SAFE_TYPES = frozenset({
    "application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic",
    "text/plain", "text/csv", "application/zip",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
})

# Refusals of mail_reply that web/errors.py has no words for.
REFUSALS = {
    "header_injection": gettext_lazy("The subject and the recipients must be one line each."),
    "recipient_required": gettext_lazy("Enter the client's email address."),
    "too_many_recipients": gettext_lazy("A reply goes to at most 10 addresses."),
    "text_required": gettext_lazy("Write the text of the reply."),
    "too_many_files": gettext_lazy("Attach at most 10 files."),
}


def max_attachment_bytes() -> int:
    return int(getattr(settings, "ESTAFETA_MAIL_MAX_ATTACHMENT", 10 << 20))


# --- the reply form --------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


class ReplyForm(forms.Form):
    to = forms.CharField(label=gettext_lazy("To"), max_length=1000,
                         help_text=gettext_lazy("Several addresses: separate them with commas."))
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=255, required=False)
    text = forms.CharField(label=gettext_lazy("Text"), max_length=MAX_TEXT,
                           widget=forms.Textarea(attrs={"rows": 6}))
    attachments = MultipleFileField(label=gettext_lazy("Attachments"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "reply")
        super().__init__(*args, **kwargs)


# --- reading ---------------------------------------------------------------------------------


@dataclass
class ThreadRow:
    message: MailMessage
    incoming: bool
    body: SafeString  # sanitised HTML or escaped text
    blocked_images: int
    attachments: list[MailAttachment]


def _body(message: MailMessage, *, load_images: bool = False) -> tuple[SafeString, int]:
    if message.html.strip():
        clean = sanitize_html(message.html, load_images=load_images)
        if clean.html.strip():
            return clean.html, clean.blocked_images
    return text_as_html(message.text), 0


def ticket_thread(ticket: Ticket) -> list[ThreadRow]:
    """The ticket's emails, oldest first, bodies ready to show (two queries)."""
    rows = (MailMessage.objects.filter(ticket=ticket).order_by("created_at", "pk")
            .prefetch_related(Prefetch("attachments",
                                       queryset=MailAttachment.objects.order_by("pk"))))
    thread = []
    for m in rows:
        body, blocked = _body(m)
        thread.append(ThreadRow(m, m.direction == MailDirection.IN, body, blocked,
                                list(m.attachments.all())))
    return thread


def may_reply(request: HttpRequest, ticket: Ticket) -> bool:
    """Whether to offer the form: people working on the ticket and their heads (the service
    decides again, under the ticket's lock)."""
    if ticket.status == TicketStatus.VOID:
        return False
    from estafeta.tickets.models import StageVisit

    visit = (StageVisit.objects.filter(ticket=ticket, closed_at__isnull=True)
             .select_related("executor").first() if ticket.is_open else None)
    facts = ticket_facts(ticket, visit)
    actor = actor_facts(request.user)  # type: ignore[arg-type]
    return is_participant(actor, facts) or is_supervisor(actor, facts)


def thread_context(request: HttpRequest, ticket: Ticket,
                   form: ReplyForm | None = None) -> dict[str, Any]:
    """What ``web/mail/thread.html`` shows (the ticket page includes it too)."""
    context: dict[str, Any] = {"ticket": ticket, "mail_thread": ticket_thread(ticket)}
    if may_reply(request, ticket):
        if form is None:
            draft = reply_draft(ticket)
            form = ReplyForm(initial={"to": draft.to, "subject": draft.subject})
        context["reply_form"] = form
    return context


def _ticket_or_none(request: HttpRequest, number: str) -> Ticket | None:
    try:
        return access_ticket(request.user, number)  # type: ignore[arg-type]
    except NotFound:
        return None


def _not_found(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such ticket."))


@roles_required(*TICKET_ROLES)
@require_GET
def thread_page(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_or_none(request, number)
    if ticket is None:
        return _not_found(request)
    return render(request, "web/mail/page.html", {"section": "tickets",
                                                  **thread_context(request, ticket)})


def _with_policy(response: HttpResponse, *, images: bool) -> HttpResponse:
    # A second fence behind the sanitiser: nothing embedded, images only when asked for.
    response["Content-Security-Policy"] = (
        "object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'self'; "
        f"img-src 'self'{' https:' if images else ''}")
    response["Referrer-Policy"] = "no-referrer"
    return response


@roles_required(*TICKET_ROLES)
@require_GET
def message_page(request: HttpRequest, number: str, message_id: int) -> HttpResponse:
    """One email with its headers; ``?images=1`` shows its remote (https) images."""
    ticket = _ticket_or_none(request, number)
    message = (MailMessage.objects.filter(ticket=ticket, pk=message_id).first()
               if ticket is not None and 0 < message_id < 2**63 else None)
    if ticket is None or message is None:
        return _not_found(request)
    images = request.GET.get("images") == "1"
    body, blocked = _body(message, load_images=images)
    context = {"section": "tickets", "ticket": ticket, "m": message, "body": body,
               "blocked_images": blocked, "images": images,
               "incoming": message.direction == MailDirection.IN,
               "attachments": list(message.attachments.order_by("pk"))}
    return _with_policy(render(request, "web/mail/message.html", context), images=images)


def ascii_fallback(name: str) -> str:
    """An ASCII rendering of ``name`` for clients that do not read ``filename*``: accents
    dropped, other characters ``_``; a name with no Latin letters or digits left becomes
    ``attachment`` with its extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", plain).strip(" ._-")
    if not re.search(r"[A-Za-z0-9]", plain):
        plain = "attachment"
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:10]
    return f"{plain}.{ext}" if ext else plain


def content_disposition(name: str) -> str:
    """``attachment`` with both names of RFC 6266: ASCII ``filename`` and UTF-8 ``filename*``."""
    name = safe_name(name)
    return (f'attachment; filename="{ascii_fallback(name)}"; '
            f"filename*=UTF-8''{quote(name, safe='')}")


@roles_required(*TICKET_ROLES)
@require_GET
def attachment_download(request: HttpRequest, number: str, attachment_id: int) -> HttpResponse:
    ticket = _ticket_or_none(request, number)
    attachment = (MailAttachment.objects.select_related("file")
                  .filter(pk=attachment_id, message__ticket=ticket).first()
                  if ticket is not None and 0 < attachment_id < 2**63 else None)
    if ticket is None or attachment is None:
        return _not_found(request)
    if not attachment.file.path:  # erased with the client's personal data
        return error_page(request, 410, _("Erased"),
                          _("This attachment was erased with the client's personal data."))
    if max(attachment.size, attachment.file.size) > max_attachment_bytes():
        return error_page(request, 413, _("Too large"),
                          _("This attachment is larger than the limit for email attachments."))
    content_type = attachment.content_type.split(";")[0].strip().lower()
    if content_type not in SAFE_TYPES:
        content_type = "application/octet-stream"
    response = FileResponse(default_storage.open(attachment.file.path, "rb"),
                            content_type=content_type)
    response["Content-Disposition"] = content_disposition(attachment.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response  # type: ignore[return-value]  # a streaming response


# --- replying --------------------------------------------------------------------------------


@roles_required(*TICKET_ROLES)
@require_POST
def reply(request: HttpRequest, number: str) -> HttpResponse:
    """Send a reply to the client; back to the ticket page, or this page with the refusal."""
    ticket = _ticket_or_none(request, number)
    if ticket is None:
        return _not_found(request)
    form = ReplyForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            sent = mail_reply(actor=request.user, ticket=ticket,  # type: ignore[arg-type]
                              to=data["to"], subject=data.get("subject") or "",
                              text=data["text"], attachments=data.get("attachments") or [])
        except EstafetaError as exc:
            text = REFUSALS.get(exc.code)
            messages.error(request, str(text) if text is not None else describe(exc))
            status = status_for(exc)
        else:
            messages.success(request, _("The reply is on its way to the client."))
            task = reply_task(sent)
            if task is not None and task.is_open:
                messages.warning(request, _(
                    "The task “%(title)s” stays open: it is the ticket's only task. Complete it"
                    " and plan the next one (the reply is counted once).") % {"title": task.title})
            elif task is not None:
                messages.info(request, _("The task “%(title)s” is done.") % {"title": task.title})
            return redirect(reverse("web:ticket", args=[ticket.number]) + "#mail")
    fresh = _ticket_or_none(request, number)
    if fresh is None:
        return _not_found(request)
    return render(request, "web/mail/page.html",
                  {"section": "tickets", **thread_context(request, fresh, form)}, status=status)


urlpatterns = [
    path("tickets/<str:number>/mail/", thread_page, name="ticket_mail"),
    path("tickets/<str:number>/mail/reply/", reply, name="ticket_mail_reply"),
    path("tickets/<str:number>/mail/<int:message_id>/", message_page, name="ticket_mail_message"),
    path("tickets/<str:number>/mail/attachments/<int:attachment_id>/", attachment_download,
         name="ticket_mail_attachment"),
]
