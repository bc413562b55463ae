"""Finding clients by any spelling of their phone or email."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from estafeta.domain.codes import ContactKind
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.errors import BadInput

from .models import Client


def clients_matching(*, phones: Iterable[str] = (), emails: Iterable[str] = ()) -> QuerySet[Client]:
    """Clients (not anonymised) having any of these phones or emails, oldest first.

    Unparseable input matches nothing rather than failing: this is a search, not a write.
    """
    q = Q()
    for raw in phones:
        try:
            q |= Q(contacts__kind=ContactKind.PHONE, contacts__value=normalise_phone(raw))
        except BadInput:
            continue
    for raw in emails:
        try:
            q |= Q(contacts__kind=ContactKind.EMAIL, contacts__value=normalise_email(raw))
        except BadInput:
            continue
    if not q:
        return Client.objects.none()
    return (Client.objects.filter(q, anonymised_at__isnull=True).distinct()
            .order_by("created_at", "pk"))
