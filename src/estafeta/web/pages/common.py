"""What every page module uses: role gates, refusals as messages, pagination, error pages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError

from ..errors import describe, status_for

View = TypeVar("View", bound=Callable[..., HttpResponse])

PER_PAGE = 25

# Who works with tickets (admins configure Estafeta; tickets are not theirs to see).
TICKET_ROLES = (Role.SELLER, Role.HEAD, Role.DIRECTOR, Role.OPERATOR)
BOARD_ROLES = (Role.SELLER, Role.HEAD, Role.DIRECTOR)
HEAD_ROLES = (Role.HEAD, Role.DIRECTOR)


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "web/error.html", {"title": title, "message": message}, status=status)


def forbidden(request: HttpRequest) -> HttpResponse:
    return error_page(request, 403, _("Not allowed"),
                      _("This page is not part of your work in Estafeta."))


def roles_required(*roles: Role) -> Callable[[View], View]:
    """Signed in (else the login page) and holding one of ``roles`` (else 403)."""
    allowed = {Role(r) for r in roles}

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if Role(request.user.role) not in allowed:  # type: ignore[union-attr]
                return forbidden(request)
            return view(request, *args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorator


def refusal(request: HttpRequest, exc: EstafetaError, **names: dict[str, str]) -> int:
    """Show a service's refusal as a translated message; returns the HTTP status it means."""
    messages.error(request, describe(exc, **names))
    return status_for(exc)


def paginate(request: HttpRequest, items: Any, per_page: int = PER_PAGE) -> Page:
    """The page ``?page=N`` of ``items`` (bad or too large numbers give the nearest page)."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string without ``names`` (for pager links that keep the filters)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def first(values: Iterable[Any]) -> Any:
    return next(iter(values), None)
