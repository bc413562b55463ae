"""What every page of the web interface knows about the person (no database query)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from estafeta.domain.codes import Role


def nav(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = getattr(user, "role", None) if user is not None and user.is_authenticated else None
    return {"nav": {
        "role": role,
        "works_tickets": role in {Role.SELLER, Role.HEAD, Role.DIRECTOR, Role.OPERATOR},
        "creates_tickets": role in {Role.SELLER, Role.HEAD, Role.DIRECTOR, Role.OPERATOR},
        "sees_board": role in {Role.SELLER, Role.HEAD, Role.DIRECTOR},
        "sees_team": role in {Role.HEAD, Role.DIRECTOR},
        "is_admin": role == Role.ADMIN,
        "sets_targets": role in {Role.HEAD, Role.DIRECTOR, Role.ADMIN},
    }}
