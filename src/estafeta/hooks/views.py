"""The webhook endpoints: ``POST /hooks/telephony/<slug>/`` and ``/hooks/messenger/<slug>/``.

A sender proves itself by its HMAC signature, not by a session, so these are the only views
without CSRF protection. The checks run cheapest and least revealing first: the method, the
source (404 for an unknown and an inactive one alike), the body size (413), the signature and
its timestamp (401), then the JSON (400). Every refusal is ``{"code", "message"}`` and writes
nothing. A delivery answers 200 ``{"ok": true, "ticket": "<number>", "created": <bool>}``; a
repeat of the same call or message id answers exactly the same (header
``X-Estafeta-Repeated: true``) and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from estafeta.core import clock
from estafeta.domain.errors import EstafetaError

from .models import HookKind, HookSource
from .schema import parse_call, parse_message
from .services import Received, call_receive, message_receive
from .signing import Unauthorised, verify

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024


def max_body() -> int:
    return int(getattr(settings, "ESTAFETA_HOOKS_MAX_BODY", DEFAULT_MAX_BODY))


def _refuse(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message, **extra}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _status(exc: EstafetaError) -> int:
    from estafeta.web.errors import status_for

    return status_for(exc)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None if it is longer than ``limit`` (read no further than that)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _endpoint(kind: str, receive: Callable[[HookSource, bytes], Received]
              ) -> Callable[[HttpRequest, str], JsonResponse]:
    @csrf_exempt
    def view(request: HttpRequest, slug: str) -> JsonResponse:
        if request.method != "POST":
            response = _refuse(405, "method_not_allowed", "only POST is accepted")
            response["Allow"] = "POST"
            return response
        source = HookSource.objects.select_related("pipeline").filter(
            slug=slug, kind=kind, is_active=True).first()
        if source is None:
            return _refuse(404, "not_found", "there is no active webhook source with this code")
        limit = max_body()
        body = _read_body(request, limit)
        if body is None:
            return _refuse(413, "too_large", f"the body is larger than {limit} bytes")
        try:
            verify(secret=source.secret, timestamp=request.headers.get("X-Estafeta-Timestamp"),
                   signature=request.headers.get("X-Estafeta-Signature"), body=body,
                   now=clock.now().timestamp(), tolerance=source.tolerance_seconds)
        except Unauthorised as exc:
            log.info("webhook %s refused: %s", source.slug, exc.code)
            return _refuse(401, exc.code, exc.message)
        try:
            received = receive(source, body)
        except EstafetaError as exc:
            field = exc.params.get("field")
            return _refuse(_status(exc), exc.code, exc.message,
                           **({"field": field} if field else {}))
        response = JsonResponse(received.body())
        response["Cache-Control"] = "no-store"
        if received.repeated:
            response["X-Estafeta-Repeated"] = "true"
        return response

    view.__name__ = f"{kind}_hook"
    return view


telephony_hook = _endpoint(
    HookKind.TELEPHONY, lambda source, body: call_receive(source=source, call=parse_call(body)))
messenger_hook = _endpoint(
    HookKind.MESSENGER,
    lambda source, body: message_receive(source=source, message=parse_message(body)))
