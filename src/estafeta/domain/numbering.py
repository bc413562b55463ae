"""Ticket numbers: ``<PREFIX>-<YEAR>-<NNNNNN>``, e.g. ``Z-2026-000123`` (promise 1)."""

from __future__ import annotations

import re

from .errors import BadInput

PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
NUMBER = re.compile(r"^([A-Z][A-Z0-9]{0,9})-(\d{4})-(\d{6,})$")


def check_prefix(prefix: str) -> str:
    """Prefixes become part of database object names, so they are strictly limited."""
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        raise BadInput(
            f"{prefix!r} is not a ticket number prefix: use 1-10 capital Latin letters or digits,"
            " starting with a letter",
            code="bad_prefix",
        )
    return prefix


def format_number(prefix: str, year: int, serial: int) -> str:
    if serial < 1:
        raise ValueError("ticket serials start at 1")
    return f"{check_prefix(prefix)}-{year:04d}-{serial:06d}"


def parse_number(text: str) -> tuple[str, int, int] | None:
    """Return (prefix, year, serial) of a well-formed number, else None."""
    m = NUMBER.match((text or "").strip().upper())
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))
