"""API tokens: one per person, issued on request and revoked by its owner.

The only writers of DRF's token table (the Django admin does not list it, see ``estafeta.urls``).
Each change is one transaction with one event on the person's stream: ``token.issued`` when a
token is made, ``token.revoked`` when it is forgotten. The key is a credential and never goes
into the history: the event holds only a fingerprint (the first 12 hex digits of the key's
SHA-256), enough to tell which token a revocation ended and useless for signing in. Asking for
a token one already has, or revoking none, changes nothing and records nothing.
"""

from __future__ import annotations

import hashlib

from django.db import transaction
from rest_framework.authtoken.models import Token

from estafeta.accounts.models import User
from estafeta.domain.codes import EventType
from estafeta.history.services import event_record


def fingerprint(key: str) -> str:
    """What the history says of a token: not the key, and no way back to it."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def token_issue(user: User) -> str:
    """The person's token, made on first use (``token.issued``); the same one until it is
    revoked."""
    with transaction.atomic():
        person = User.objects.select_for_update().get(pk=user.pk)  # serialises the stream
        token, created = Token.objects.get_or_create(user=person)
        if created:
            event_record(stream=person.stream, type=EventType.TOKEN_ISSUED, actor=person,
                         payload={"fingerprint": fingerprint(token.key)})
    return str(token.key)


def token_revoke(user: User) -> bool:
    """Forget the person's token (``token.revoked``); True if there was one."""
    with transaction.atomic():
        person = User.objects.select_for_update().get(pk=user.pk)
        token = Token.objects.select_for_update().filter(user=person).first()
        if token is None:
            return False
        key = str(token.key)
        token.delete()
        event_record(stream=person.stream, type=EventType.TOKEN_REVOKED, actor=person,
                     payload={"fingerprint": fingerprint(key)})
    return True
