"""Choosing who does the work: round robin or least loaded among present, active people.

The caller locks the rotation state so that concurrent choices are serialised and stay fair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    user_id: int
    active: bool = True
    absent: bool = False
    open_tasks: int = 0

    @property
    def available(self) -> bool:
        return self.active and not self.absent


def round_robin(candidate_ids: Sequence[int], last_id: int | None) -> int | None:
    """The first candidate after ``last_id`` in id order, wrapping around; None if nobody."""
    ordered = sorted(set(candidate_ids))
    if not ordered:
        return None
    if last_id is not None:
        for user_id in ordered:
            if user_id > last_id:
                return user_id
    return ordered[0]


def in_turn(candidate_ids: Sequence[int], turn: int) -> int | None:
    """Round robin by a counter: the ``turn``-th candidate in id order (turns start at 1).

    Consecutive turns visit every candidate in order; a counter never blocks, so concurrent
    choices need no lock (PostgreSQL hands out turns with a sequence).
    """
    ordered = sorted(set(candidate_ids))
    return ordered[(turn - 1) % len(ordered)] if ordered else None


def least_loaded(loads: Mapping[int, int], last_id: int | None) -> int | None:
    """The candidate with fewest open tasks; ties go round robin after ``last_id``."""
    if not loads:
        return None
    lowest = min(loads.values())
    return round_robin([uid for uid, load in loads.items() if load == lowest], last_id)


def choose(
    candidates: Sequence[Candidate], strategy: str, last_id: int | None
) -> int | None:
    available = [c for c in candidates if c.available]
    if strategy == "least_loaded":
        return least_loaded({c.user_id: c.open_tasks for c in available}, last_id)
    return round_robin([c.user_id for c in available], last_id)
