"""The one source of "now" for services.

Services call ``clock.now()``. Tests, replays and the demo's six months of history run under
``clock.frozen(moment)`` so that every event is written through the real services at the moment
it is said to have happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

_frozen: ContextVar[datetime | None] = ContextVar("estafeta_now", default=None)


def now() -> datetime:
    return _frozen.get() or timezone.now()


@contextmanager
def frozen(moment: datetime) -> Iterator[datetime]:
    if timezone.is_naive(moment):
        raise ValueError("clock.frozen needs an aware datetime")
    token = _frozen.set(moment)
    try:
        yield moment
    finally:
        _frozen.reset(token)
