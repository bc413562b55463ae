"""``Idempotency-Key`` for create endpoints: a retried request never creates a second object.

The key row is inserted in the same transaction as the service's change (the service's own
transaction nests inside as a savepoint). Two concurrent requests with one key: the second
insert waits on the unique (user, key) index until the first commits, then fails, and the
second request replays the first one's response. If the first is refused, its key row rolls
back with it and a retry is a fresh attempt. Only successful responses are kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from estafeta.core import clock

from .errors import IdempotencyKeyReused
from .models import IdempotencyKey
from .parsers import dumps_canonical

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Kept at least this long; ``estafeta idempotency_prune`` removes older keys.
KEEP = timedelta(hours=24)


def _fingerprint(request: Request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a QueryDict from a form: keep repeated fields
        data = dict(data.lists())
    text = f"{request.method}\n{request.path}\n{dumps_canonical(data)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _replay(row: IdempotencyKey, fingerprint: str) -> Response:
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"the {HEADER} {row.key!r} was already used for a different request; use a new "
            "key for a new request", key=row.key)
    response = Response(json.loads(row.body), status=row.status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(request: Request, produce: Callable[[], Response]) -> Response:
    """Run ``produce`` (one service call and its rendering) at most once per key and user."""
    key = request.headers.get(HEADER)
    if key is None:
        return produce()
    if not _KEY.match(key):
        raise ValidationError({HEADER: ["1-255 printable ASCII characters without spaces"]})
    fingerprint = _fingerprint(request)
    user = request.user
    assert user.pk is not None  # the view requires a signed-in person
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(user_id=user.pk, key=key,
                                                    fingerprint=fingerprint, status=0, body="",
                                                    created_at=clock.now())
        except IntegrityError:
            # Another request took this key and has committed (the insert waited for it).
            first = IdempotencyKey.objects.get(user_id=user.pk, key=key)
            return _replay(first, fingerprint)
        response = produce()
        if not 200 <= response.status_code < 300:  # pragma: no cover - refusals raise
            transaction.set_rollback(True)
            return response
        row.status = response.status_code
        row.body = JSONRenderer().render(response.data).decode("utf-8")
        row.save(update_fields=["status", "body"])
    return response


def idempotency_prune(*, older_than: timedelta = KEEP) -> int:
    """Forget keys older than ``older_than``; returns how many went. Not history: allowed."""
    cutoff = clock.now() - older_than
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
