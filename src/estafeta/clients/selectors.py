"""Finding clients by any spelling of their phone or email."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from estafeta.domain.codes import ContactKind
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.errors import BadInput, NotFound

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


@dataclass(frozen=True)
class ClientFacts:
    """What a ticket event records about its client: the classification as of that moment."""

    id: int
    anonymised: bool
    segment: str | None
    territory: str | None
    key_account: bool

    def payload(self) -> dict[str, object]:
        return {"client": self.id, "segment": self.segment, "territory": self.territory,
                "key_account": self.key_account}


def client_facts(client_id: int) -> ClientFacts:
    """One plain query (read on every ticket creation and outcome)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.anonymised_at IS NOT NULL, s.code, t.code, c.key_account "
            "FROM clients_client c "
            "LEFT JOIN clients_segment s ON s.id = c.segment_id "
            "LEFT JOIN clients_territory t ON t.id = c.territory_id WHERE c.id = %s",
            [client_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("there is no such client", code="unknown_client")
    pk, anonymised, segment, territory, key_account = row
    return ClientFacts(int(pk), bool(anonymised), segment, territory, bool(key_account))
