"""Allocating ticket numbers safely under concurrent creation (promise 1).

PostgreSQL: one sequence per prefix and year. ``nextval`` never blocks and is never rolled back,
so concurrent creations never wait on each other; a failed creation leaves a gap (allowed) and a
number is never handed out twice. SQLite: a counter row updated inside the creating transaction,
which holds SQLite's single write lock anyway.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from estafeta.core.db import sequence_next
from estafeta.domain.numbering import check_prefix, format_number


def next_number(prefix: str, at: datetime) -> str:
    if not connection.in_atomic_block:
        raise RuntimeError("ticket numbers are allocated inside the creating transaction")
    prefix = check_prefix(prefix)
    year = timezone.localtime(at).year
    serial = _postgres_next(prefix, year) if connection.vendor == "postgresql" else \
        _sqlite_next(prefix, year)
    return format_number(prefix, year, serial)


def _postgres_next(prefix: str, year: int) -> int:
    # check_prefix allows only [A-Z0-9]: a valid sequence name.
    return sequence_next(f"estafeta_ticket_{prefix.lower()}_{year}")


def _sqlite_next(prefix: str, year: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_ticketcounter SET last = last + 1 WHERE prefix = %s AND year = %s "
            "RETURNING last", [prefix, year])
        row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        cursor.execute(
            "INSERT INTO tickets_ticketcounter (prefix, year, last) VALUES (%s, %s, 1)",
            [prefix, year])
        return 1
