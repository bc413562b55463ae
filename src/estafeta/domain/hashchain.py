"""The per-stream hash chain of events (promise 5).

Each event's hash covers its stream, position, the previous hash and its content, in a canonical
JSON form that reads back identically from PostgreSQL ``jsonb`` and SQLite text. Checkpoints chain
digests of stream heads so that truncating or rewriting a stream's tail is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

GENESIS = "0" * 64
FORMAT_VERSION = 1


def jsonable(value: Any) -> Any:
    """Turn a payload into plain JSON types, refusing floats (their text is not canonical)."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("event payload strings cannot contain NUL")
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("event payload datetimes must be aware")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        raise ValueError("event payloads take decimals as text, not floats")
    raise TypeError(f"cannot store {type(value).__name__} in an event payload")


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("event times must be aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class EventFacts:
    stream: str
    seq: int
    prev_hash: str
    type: str
    occurred_at: datetime
    actor_id: int | None
    owner_id: int | None
    payload: Any

    def digest(self) -> str:
        body = {
            "v": FORMAT_VERSION,
            "stream": self.stream,
            "seq": self.seq,
            "prev": self.prev_hash,
            "type": self.type,
            "at": utc_text(self.occurred_at),
            "actor": self.actor_id,
            "owner": self.owner_id,
            "payload": self.payload,
        }
        return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link found: where, and what is wrong with it."""

    stream: str
    seq: int
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "checkpoint"
        return f"{self.stream} #{self.seq} ({where}): {self.reason}"


class ChainWalker:
    """Checks events fed in (stream, seq) order; ``feed`` returns the first ``Break`` or None."""

    def __init__(self) -> None:
        self.stream: str | None = None
        self.seq = 0
        self.head = GENESIS
        self.events = 0
        self.streams = 0

    def feed(self, event_id: int, facts: EventFacts, stored_hash: str) -> Break | None:
        if facts.stream != self.stream:
            self.stream, self.seq, self.head = facts.stream, 0, GENESIS
            self.streams += 1
        self.events += 1
        if facts.seq != self.seq + 1:
            return Break(facts.stream, facts.seq, event_id, f"expected #{self.seq + 1}: a gap")
        if facts.prev_hash != self.head:
            return Break(facts.stream, facts.seq, event_id, "does not link to the previous event")
        if facts.digest() != stored_hash:
            return Break(facts.stream, facts.seq, event_id, "content does not match its hash")
        self.seq, self.head = facts.seq, stored_hash
        return None


def heads_digest(heads: Iterable[tuple[str, int, str]]) -> tuple[str, int]:
    """Digest of (stream, seq, hash) heads given in stream order; returns (hex, count)."""
    h = hashlib.sha256()
    count = 0
    for stream, seq, digest in heads:
        h.update(f"{stream}\x1f{seq}\x1f{digest}\x1e".encode())
        count += 1
    return h.hexdigest(), count


def checkpoint_hash(prev_hash: str, upto_event_id: int, heads_hex: str, count: int) -> str:
    body = {"v": FORMAT_VERSION, "prev": prev_hash, "upto": upto_event_id, "heads": heads_hex}
    body["count"] = count
    return hashlib.sha256(canonical(body)).hexdigest()
