"""API tokens: one per person, issued on request and revoked by its owner.

A token is a credential, not part of a ticket's history: issuing and revoking write only DRF's
token table (the Django admin does not list it, see ``estafeta.urls``).
"""

from __future__ import annotations

from rest_framework.authtoken.models import Token

from estafeta.accounts.models import User


def token_issue(user: User) -> str:
    """The person's token, made on first use; the same one until it is revoked."""
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def token_revoke(user: User) -> bool:
    """Forget the person's token; True if there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0
