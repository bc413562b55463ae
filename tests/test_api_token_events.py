"""API tokens are issued and revoked through ``api.tokens``, each change one transaction with
one history event on the person's stream (``token.issued``/``token.revoked``), never the key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from estafeta.api import tokens
from estafeta.history.models import Event
from estafeta.history.services import audit_verify

from . import factories
from .factories import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    cache.clear()  # the token endpoint counts attempts per address in the cache
    yield
    cache.clear()


def token_events(w: World) -> list[Event]:
    return list(Event.objects.filter(stream=w.ann.stream, type__startswith="token.")
                .order_by("seq"))


def ask(username: str = "ann") -> Any:
    return APIClient().post("/api/v1/auth/token/", {"username": username,
                                                   "password": factories.PASSWORD},
                            format="json")


def test_issue_and_revoke_each_write_one_event_without_the_key(world: World) -> None:
    w = world
    key = ask().json()["token"]
    [issued] = token_events(w)
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:12]
    assert (issued.type, issued.actor_id, issued.payload) == ("token.issued", w.ann.pk,
                                                             {"fingerprint": fingerprint})
    assert ask().json()["token"] == key  # the same token again: nothing happened
    assert len(token_events(w)) == 1

    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post("/api/v1/auth/token/revoke/").status_code == 204
    issued_, revoked = token_events(w)
    assert issued_ == issued
    assert (revoked.type, revoked.actor_id, revoked.payload) == ("token.revoked", w.ann.pk,
                                                                {"fingerprint": fingerprint})
    assert revoked.seq == issued.seq + 1
    assert not Token.objects.filter(user=w.ann).exists()
    # nothing anywhere in the history holds the key
    every = Event.objects.all()
    assert all(key not in json.dumps(e.payload) and key not in e.hash for e in every)

    # revoking when there is no token: 204, no event; a new token is a new fingerprint
    session = APIClient()
    session.force_authenticate(w.ann)
    assert session.post("/api/v1/auth/token/revoke/").status_code == 204
    assert len(token_events(w)) == 2
    assert tokens.token_revoke(w.ann) is False
    new = ask().json()["token"]
    assert new != key
    assert token_events(w)[-1].payload == {"fingerprint": tokens.fingerprint(new)}
    assert audit_verify().ok


def test_a_refused_request_issues_nothing(world: World) -> None:
    w = world
    r = APIClient().post("/api/v1/auth/token/", {"username": "ann", "password": "wrong"},
                         format="json")
    assert r.status_code == 400
    assert not token_events(w) and not Token.objects.exists()


def test_a_failed_event_leaves_no_token_and_a_failed_revoke_keeps_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world

    def broken(**kwargs: Any) -> Event:
        raise RuntimeError("the history is unavailable")

    monkeypatch.setattr(tokens, "event_record", broken)
    with pytest.raises(RuntimeError):
        tokens.token_issue(w.ann)
    assert not Token.objects.filter(user=w.ann).exists()  # one transaction: no token
    monkeypatch.undo()
    key = tokens.token_issue(w.ann)
    monkeypatch.setattr(tokens, "event_record", broken)
    with pytest.raises(RuntimeError):
        tokens.token_revoke(w.ann)
    assert Token.objects.get(user=w.ann).key == key  # still valid: nothing was recorded
    assert [e.type for e in token_events(w)] == ["token.issued"]
