"""Writing events, sealing checkpoints and verifying the chains (promise 5)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Max

from estafeta.core import clock
from estafeta.core.db import insert, is_postgres
from estafeta.domain.codes import EventType
from estafeta.domain.hashchain import (
    GENESIS,
    Break,
    ChainWalker,
    EventFacts,
    checkpoint_hash,
    heads_digest,
    jsonable,
)

from .models import Checkpoint, Event

if TYPE_CHECKING:
    from estafeta.accounts.models import User
    from estafeta.tickets.models import Ticket


def event_record(
    *,
    stream: str,
    type: EventType,
    actor: User | None,
    payload: Mapping[str, Any],
    ticket: Ticket | None = None,
    owner_id: int | None = None,
    new_stream: bool = False,
) -> Event:
    """Append one event to ``stream`` inside the caller's transaction.

    The caller holds the lock that serialises its stream (the ticket or user row); the unique
    (stream, seq) constraint backs that up, so a forked chain can never be committed.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("events are written inside the transaction of the change they record")
    body = jsonable(dict(payload))
    if new_stream:
        seq, prev = 1, GENESIS
    else:
        last = (Event.objects.filter(stream=stream).order_by("-seq")
                .values_list("seq", "hash").first())
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    occurred_at = clock.now()
    facts = EventFacts(stream, seq, prev, str(type), occurred_at,
                       actor.pk if actor is not None else None, owner_id, body)
    event: Event = insert(Event, stream=stream, seq=seq, ticket=ticket, type=str(type),
                          actor=actor, owner_id=owner_id, occurred_at=occurred_at, payload=body,
                          prev_hash=prev, hash=facts.digest())
    return event


# --- checkpoints -------------------------------------------------------------------------------

_HEADS_SQL = """
SELECT e.stream, e.seq, e.hash FROM history_event e
JOIN (SELECT stream, MAX(seq) AS mseq FROM history_event
      WHERE id > %s AND id <= %s GROUP BY stream) h
  ON e.stream = h.stream AND e.seq = h.mseq
ORDER BY e.stream
"""


def _heads(low: int, high: int) -> Iterator[tuple[str, int, str]]:
    """Heads of the streams that changed in events (low, high], streamed in stream order.

    A server-side cursor on PostgreSQL: a plain one would hold every head (a million after a
    big import) in the client before the first is read.
    """
    with connection.chunked_cursor() as cursor:
        cursor.execute(_HEADS_SQL, [low, high])
        while rows := cursor.fetchmany(5000):
            for stream, seq, digest in rows:
                yield str(stream), int(seq), str(digest)


def _committed_upto() -> int:
    """The largest event id below which every event is committed.

    On PostgreSQL a SHARE lock waits for every transaction that is inserting events and holds
    back new ones for the moment it takes to read max(id). SQLite writers are serialised anyway.
    """
    with transaction.atomic():
        if is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE history_event IN SHARE MODE")
        upto = Event.objects.aggregate(m=Max("id"))["m"]
    return int(upto or 0)


def checkpoint_create() -> Checkpoint | None:
    """Seal every stream head that changed since the last checkpoint; None if nothing did."""
    upto = _committed_upto()
    for _attempt in range(3):
        last = Checkpoint.objects.order_by("-upto_event_id").first()
        low = last.upto_event_id if last else 0
        if upto <= low:
            return None
        digest, count = heads_digest(_heads(low, upto))
        prev = last.hash if last else GENESIS
        with transaction.atomic():
            if is_postgres():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(7364021)")  # one sealer at a time
            newest = Checkpoint.objects.order_by("-upto_event_id").first()
            if (newest.pk if newest else None) != (last.pk if last else None):
                continue  # another process sealed meanwhile; start again from its checkpoint
            return Checkpoint.objects.create(
                created_at=clock.now(), upto_event_id=upto, streams=count, heads_digest=digest,
                prev_hash=prev, hash=checkpoint_hash(prev, upto, digest, count),
            )
    return None


# --- verification ------------------------------------------------------------------------------


@dataclass
class AuditReport:
    events: int = 0
    streams: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    broken: Break | None = None
    unsealed_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None


def audit_verify(*, progress: Any = None, chunk: int = 5000) -> AuditReport:
    """Walk every stream and every checkpoint; stop at the first broken link.

    Memory stays flat: events are streamed in (stream, seq) order through the unique index.
    ``progress`` (optional) is called with the number of events checked so far.
    """
    started = time.monotonic()
    report = AuditReport()
    walker = ChainWalker()
    rows = (Event.objects.order_by("stream", "seq")
            .values_list("id", "stream", "seq", "prev_hash", "type", "occurred_at", "actor_id",
                         "owner_id", "payload", "hash")
            .iterator(chunk_size=chunk))
    for n, (eid, stream, seq, prev, etype, at, actor, owner, payload, digest) in enumerate(rows):
        broken = walker.feed(eid, EventFacts(stream, seq, prev, etype, at, actor, owner, payload),
                             digest)
        if broken:
            report.broken = broken
            break
        if progress and n % chunk == 0:
            progress(n)
    report.events, report.streams = walker.events, walker.streams
    if report.broken is None:
        report.broken = _verify_checkpoints(report)
    report.seconds = time.monotonic() - started
    return report


def _verify_checkpoints(report: AuditReport) -> Break | None:
    prev_hash, low = GENESIS, 0
    for cp in Checkpoint.objects.order_by("upto_event_id").iterator():
        report.checkpoints += 1
        where = f"checkpoint up to event {cp.upto_event_id}"
        if cp.prev_hash != prev_hash:
            return Break(where, report.checkpoints, None, "does not link to the previous one")
        digest, count = heads_digest(_heads(low, cp.upto_event_id))
        if (digest, count) != (cp.heads_digest, cp.streams):
            return Break(where, report.checkpoints, None,
                         "the sealed stream heads no longer match the events")
        if checkpoint_hash(prev_hash, cp.upto_event_id, digest, count) != cp.hash:
            return Break(where, report.checkpoints, None, "content does not match its hash")
        prev_hash, low = cp.hash, cp.upto_event_id
    report.unsealed_events = Event.objects.filter(id__gt=low).count()
    return None


def last_checkpoint_at() -> datetime | None:
    cp = Checkpoint.objects.order_by("-upto_event_id").first()
    return cp.created_at if cp else None


def ticket_event(
    ticket: Ticket, type: EventType, actor: User | None, payload: Mapping[str, Any],
    *, new_stream: bool = False,
) -> Event:
    """An event on a ticket's stream, recording the owner the ticket has at this moment.

    The analytics rollups of the ticket are brought in step in the same transaction
    (docs/analytics-scale.md)."""
    from estafeta.analytics.rollup import on_ticket_event

    event = event_record(stream=ticket.stream, type=type, actor=actor, payload=payload,
                         ticket=ticket, owner_id=ticket.owner_id, new_stream=new_stream)
    on_ticket_event(ticket.pk)
    return event
