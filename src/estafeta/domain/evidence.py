"""Evidence for checklist items: what each kind accepts and how it is stored.

``validate_evidence(kind, raw)`` returns the normalised JSON value or raises ``EvidenceInvalid``
naming the problem. Stored values are plain JSON (strings for decimals and dates) so that they
hash the same on every database.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .codes import EvidenceKind
from .errors import EvidenceInvalid

MAX_TEXT = 2000
MAX_DOCUMENT_NUMBER = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DOC_NUMBER = re.compile(r"^[0-9A-Za-zА-Яа-яЁё№#/\\.\- _]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CURRENCY_TAIL = re.compile(r"\s*(₽|руб\.?|rub|р\.)\s*$", re.IGNORECASE)


def parse_decimal(raw: Any, *, what: str = "value") -> Decimal:
    """Read ``1 250 000,50`` or ``1250000.5`` or a number; raise ``EvidenceInvalid`` otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise EvidenceInvalid(f"the {what} must be a number")
    if isinstance(raw, float):
        raise EvidenceInvalid(f"the {what} must be given exactly, as text or an integer")
    text = str(raw).strip()
    text = _CURRENCY_TAIL.sub("", text)
    text = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace(",", ".")
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise EvidenceInvalid(f"{raw!r} is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex above rules this out
        raise EvidenceInvalid(f"{raw!r} is not a number") from exc
    if abs(value) >= Decimal("1e15"):
        raise EvidenceInvalid(f"{raw!r} is too large")
    return value


def parse_money(raw: Any, *, what: str = "amount") -> Decimal:
    """A non-negative amount with at most two decimal places, returned quantised to cents."""
    value = parse_decimal(raw, what=what)
    if value < 0:
        raise EvidenceInvalid(f"the {what} cannot be negative")
    if value != value.quantize(Decimal("0.01")):
        raise EvidenceInvalid(f"the {what} has more than two decimal places")
    return value.quantize(Decimal("0.01"))


def parse_date(raw: Any) -> date:
    if isinstance(raw, datetime):
        raise EvidenceInvalid("a date is expected, not a moment in time")
    if isinstance(raw, date):
        return raw
    text = str(raw or "").strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    raise EvidenceInvalid(f"{raw!r} is not a date; write it as 2026-12-07 or 07.12.2026")


def validate_evidence(kind: EvidenceKind | str, raw: Any) -> Any:
    """Return the stored form of ``raw`` for an item asking for ``kind``."""
    kind = EvidenceKind(kind)
    if kind is EvidenceKind.NONE:
        if raw not in (None, "", {}):
            raise EvidenceInvalid("this item takes no evidence")
        return None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise EvidenceInvalid(f"this item needs evidence: {kind.value.replace('_', ' ')}")
    if kind is EvidenceKind.TEXT:
        if not isinstance(raw, str):
            raise EvidenceInvalid("the evidence must be text")
        text = raw.strip()
        if len(text) > MAX_TEXT:
            raise EvidenceInvalid(f"the text is longer than {MAX_TEXT} characters")
        if _CONTROL.search(text):
            raise EvidenceInvalid("the text contains control characters")
        return text
    if kind is EvidenceKind.NUMBER:
        return str(parse_decimal(raw, what="number").normalize())
    if kind is EvidenceKind.MONEY:
        return str(parse_money(raw))
    if kind is EvidenceKind.DATE:
        return parse_date(raw).isoformat()
    if kind is EvidenceKind.DOCUMENT_NUMBER:
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise EvidenceInvalid("the document number must be text")
        text = " ".join(str(raw).split())
        if len(text) > MAX_DOCUMENT_NUMBER:
            raise EvidenceInvalid(
                f"the document number is longer than {MAX_DOCUMENT_NUMBER} characters"
            )
        if not _DOC_NUMBER.match(text) or not re.search(r"\d", text):
            raise EvidenceInvalid(
                f"{raw!r} is not a document number (letters, digits, № / . - and a digit)"
            )
        return text
    if kind is EvidenceKind.FILE:
        return _validate_file_reference(raw)
    raise EvidenceInvalid(f"unknown evidence kind {kind!r}")  # pragma: no cover


def _validate_file_reference(raw: Any) -> dict[str, Any]:
    """A stored file is referenced by id, digest and size (never by a name or path)."""
    if not isinstance(raw, dict):
        raise EvidenceInvalid("this item needs a file")
    file_id, digest, size = raw.get("file_id"), raw.get("sha256"), raw.get("size")
    if not isinstance(file_id, int) or isinstance(file_id, bool) or file_id <= 0:
        raise EvidenceInvalid("the file reference has no valid id")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise EvidenceInvalid("the file reference has no valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise EvidenceInvalid("the file is empty")
    return {"file_id": file_id, "sha256": digest, "size": size}
