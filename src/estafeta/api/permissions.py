"""Role gates the API adds in front of the services.

Which *tickets* a person sees is decided in one place, ``tickets.access``; what they may *do*
to a ticket they see, the services decide (and refuse with 403). These gates only keep people
out of whole areas that are not theirs, with the same error shape as the services' refusals.
"""

from __future__ import annotations

from estafeta.accounts.models import User
from estafeta.domain.codes import Role
from estafeta.domain.errors import Forbidden

# Admins configure Estafeta; tickets are not theirs to see, so not theirs to create either.
TICKET_CREATORS = frozenset({Role.SELLER, Role.HEAD, Role.DIRECTOR, Role.OPERATOR})


def require_ticket_creator(user: User) -> None:
    if Role(user.role) not in TICKET_CREATORS:
        allowed = ", ".join(sorted(r.value for r in TICKET_CREATORS))
        raise Forbidden(f"only {allowed} can register requests", code="role_required")
