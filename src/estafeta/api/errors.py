"""Every error the API returns has one shape: ``{"code", "message", "params"}``.

``code`` is stable (clients branch on it), ``message`` is English for people, ``params`` holds
the details (the fields that failed, the current stage...). Statuses: 400 bad input, 401 not
authenticated, 403 not allowed, 404 missing or not visible (the same answer for both), 405 no
such method (DELETE: nothing in Estafeta is deleted), 409 conflict, 413 too large, 415 unknown
content type, 422 an idempotency key reused for another request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from estafeta.domain.errors import (
    BadInput,
    Conflict,
    DeletionRefused,
    EstafetaError,
    Forbidden,
    NotFound,
)

from .parsers import BadJSON


class IdempotencyKeyReused(EstafetaError):
    """The same ``Idempotency-Key`` came with a different request."""

    code = "idempotency_key_reused"


# Most specific first: ChecklistIncomplete is a BadInput, NoExecutorAvailable a Conflict.
STATUS_OF: list[tuple[type[EstafetaError], int]] = [
    (IdempotencyKeyReused, 422),
    (DeletionRefused, 405),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (BadInput, 400),
    (EstafetaError, 400),
]


def status_of(exc: EstafetaError) -> int:
    return next(code for cls, code in STATUS_OF if isinstance(exc, cls))


def body(code: str, message: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "params": dict(params or {})}


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[dict[str, str]]]:
    """DRF's nested error detail flattened to ``{"a.b": [{"code", "message"}]}``."""
    out: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            out.update(_field_errors(value, f"{prefix}.{name}" if prefix and name
                                     else prefix or name))
    elif isinstance(detail, list):
        if all(isinstance(d, (exceptions.ErrorDetail, str)) for d in detail):
            out.setdefault(prefix or "request", []).extend(
                {"code": getattr(d, "code", "invalid") or "invalid", "message": str(d)}
                for d in detail)
        else:  # a list field whose items failed: name them by position
            for i, item in enumerate(detail):
                if item:
                    out.update(_field_errors(item, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out.setdefault(prefix or "request", []).append(
            {"code": getattr(detail, "code", "invalid") or "invalid", "message": str(detail)})
    return out


def _validation(exc: exceptions.ValidationError) -> dict[str, Any]:
    fields = _field_errors(exc.detail)
    first = next(iter(fields.items()), None)
    message = "the request has invalid fields"
    if first is not None:
        message = f"{first[0]}: {first[1][0]['message']}"
        if len(fields) > 1:
            message += f" (and {len(fields) - 1} more fields)"
    return body("invalid", message, {"fields": fields})


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    BadJSON: "bad_json",  # before its parent ParseError: the first match names the error
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _message(detail: Any) -> str:
    text = str(detail).strip()
    return text[:1].lower() + text[1:] if text else "error"


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: domain refusals, DRF's own errors and oversized
    requests, all as the one JSON shape. Anything else is a bug and stays a 500."""
    request = context.get("request")
    headers: dict[str, str] = {}
    if isinstance(exc, EstafetaError):
        code, data = status_of(exc), body(exc.code, exc.message, exc.params)
        if isinstance(exc, DeletionRefused):
            headers["Allow"] = _allowed(context)
    elif isinstance(exc, exceptions.ValidationError):
        code, data = 400, _validation(exc)
    elif isinstance(exc, exceptions.MethodNotAllowed) and request is not None \
            and request.method == "DELETE":
        code = 405
        data = body("deletion_refused", "nothing in Estafeta is deleted: a ticket ends by an "
                    "outcome (won, lost or void), a task is completed or cancelled",
                    {"method": "DELETE"})
        headers["Allow"] = _allowed(context)
    elif isinstance(exc, exceptions.APIException):
        code = exc.status_code
        name = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        message = _message(exc.detail)
        if isinstance(exc, exceptions.PermissionDenied) and message.lower().startswith("csrf"):
            name = "csrf_failed"
        data = body(name, message)
        if isinstance(exc, exceptions.MethodNotAllowed):
            headers["Allow"] = _allowed(context)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
    elif isinstance(exc, Http404):
        code, data = 404, body("not_found", "not found")
    elif isinstance(exc, RequestDataTooBig):
        code, data = 413, body("request_too_large", "the request body is too large")
    elif isinstance(exc, SuspiciousOperation):
        code, data = 400, body("bad_request", "the request was refused as malformed")
    else:
        return None
    response = Response(data, status=code, headers=headers)
    return response


def _allowed(context: Mapping[str, Any]) -> str:
    view = context.get("view")
    methods = getattr(view, "allowed_methods", None) or []
    return ", ".join(m for m in methods if m != "DELETE")


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/v1/ that names no resource: JSON, like every other answer."""
    return JsonResponse(body("not_found", f"there is no API resource at {request.path}"),
                        status=status.HTTP_404_NOT_FOUND)


class ErrorSerializer(serializers.Serializer):
    """The shape of every error (documentation only)."""

    code = serializers.CharField(help_text="stable error code, e.g. stale_stage")
    message = serializers.CharField(help_text="English explanation for people")
    params = serializers.DictField(help_text="details: fields that failed, current values...")
