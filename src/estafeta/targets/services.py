"""The one writer of targets (K6 potentials and plans). Directors and admins set any target; a
head of sales the targets of the sellers of the teams they head. Every target is a new row and
one ``target.set`` event; a target for the same object and period supersedes the earlier one.

``targets_import`` reads a CSV or XLSX file, checks every row first and writes nothing when any
row is bad: the refusal names each bad row by its line and reason."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.db import transaction

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import actor_facts
from estafeta.clients.models import Client, Segment, Territory
from estafeta.core import clock
from estafeta.domain.codes import EventType, Role
from estafeta.domain.errors import BadInput, EstafetaError, Forbidden
from estafeta.domain.policy import require_active
from estafeta.history.services import event_record

from .models import Target, TargetKind

MAX_AMOUNT = Decimal("999999999999.99")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
COLUMNS = ("kind", "object", "start", "end", "amount", "currency")
DEFAULT_CURRENCY = "RUB"


@dataclass(frozen=True)
class TargetInput:
    """A checked target, ready to be written."""

    kind: str
    ref: str
    start: date
    end: date
    amount: Decimal
    currency: str


# --- checks ---------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    kind = str(value or "").strip().lower()
    if kind not in TargetKind.values:
        raise BadInput(f"{value!r} is not a kind of target: use {', '.join(TargetKind.values)}",
                       code="bad_target_kind", value=str(value))
    return kind


def _date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise BadInput(f"{name} must be a date like 2026-01-31, not {value!r}",
                       code="bad_date", field=name, value=str(value)) from None


def _amount(value: Any) -> Decimal:
    try:
        if isinstance(value, float):
            value = repr(value)
        amount = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except (InvalidOperation, ValueError):
        raise BadInput(f"the amount must be a number, not {value!r}", code="bad_amount",
                       value=str(value)) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise BadInput(f"the amount must be from 0 to {MAX_AMOUNT}", code="bad_amount",
                       value=str(value))
    if amount != amount.quantize(Decimal("0.01")):
        raise BadInput("the amount has at most two decimals", code="bad_amount",
                       value=str(value))
    return amount.quantize(Decimal("0.01"))


def _currency(value: Any) -> str:
    code = str(value or DEFAULT_CURRENCY).strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise BadInput(f"{value!r} is not a currency code (like RUB)", code="bad_currency")
    return code


def _ref(kind: str, value: Any) -> str:
    """The object's id (client, seller, team) or code (territory, segment), checked to exist."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value if value is not None else "").strip()
    found: bool
    if kind in (TargetKind.TERRITORY, TargetKind.SEGMENT):
        model = Territory if kind == TargetKind.TERRITORY else Segment
        found = bool(text) and len(text) <= 64 and model.objects.filter(code=text).exists()
    else:
        if not text.isdigit() or len(text) > 18:
            raise BadInput(f"a {kind} is given by its id, not {text!r}", code="bad_target_object",
                           kind=kind, value=text)
        text = str(int(text))
        if kind == TargetKind.CLIENT:
            found = Client.objects.filter(pk=int(text)).exists()
        elif kind == TargetKind.TEAM:
            found = Team.objects.filter(pk=int(text)).exists()
        else:
            found = User.objects.filter(pk=int(text), role=Role.SELLER).exists()
    if not found:
        raise BadInput(f"there is no {kind} {text!r}", code="unknown_target_object", kind=kind,
                       value=text)
    return text


def target_check(*, kind: Any, ref: Any, start: Any, end: Any, amount: Any,
                 currency: Any = DEFAULT_CURRENCY) -> TargetInput:
    """Parse and check one target; raises ``BadInput`` naming what is wrong."""
    checked_kind = _kind(kind)
    first, last = _date(start, "start"), _date(end, "end")
    if last < first:
        raise BadInput(f"the period ends ({last}) before it begins ({first})",
                       code="bad_period", value=f"{first}..{last}")
    return TargetInput(checked_kind, _ref(checked_kind, ref), first, last, _amount(amount),
                       _currency(currency))


def may_set(actor: User, kind: str, ref: str) -> bool:
    """Directors and admins set any target; a head the targets of their teams' sellers."""
    facts = actor_facts(actor)
    if not facts.active:
        return False
    if facts.role in (Role.DIRECTOR, Role.ADMIN):
        return True
    if facts.role == Role.HEAD and kind == TargetKind.SELLER:
        return User.objects.filter(pk=int(ref), team_id__in=list(facts.headed_team_ids)).exists()
    return False


def _require_may_set(actor: User, target: TargetInput) -> None:
    if not may_set(actor, target.kind, target.ref):
        raise Forbidden("directors and admins set targets; a head those of their own sellers",
                        code="not_your_target")


# --- writes ---------------------------------------------------------------------------------


def _write(actor: User, target: TargetInput, source: str) -> Target:
    previous = (Target.objects.filter(kind=target.kind, ref=target.ref,
                                      period_start=target.start, period_end=target.end)
                .order_by("-created_at", "-pk").values_list("pk", flat=True).first())
    row = Target.objects.create(kind=target.kind, ref=target.ref, period_start=target.start,
                                period_end=target.end, amount=target.amount,
                                currency=target.currency, created_by=actor,
                                created_at=clock.now())
    event_record(stream=row.stream, type=EventType.TARGET_SET, actor=actor, new_stream=True,
                 payload={"kind": row.kind, "ref": row.ref, "start": target.start.isoformat(),
                          "end": target.end.isoformat(), "amount": str(target.amount),
                          "currency": target.currency, "supersedes": previous,
                          "source": source})
    return row


def target_set(actor: User, *, kind: Any, ref: Any, start: Any, end: Any, amount: Any,
               currency: Any = DEFAULT_CURRENCY) -> Target:
    """Set the target of one object for a period (both dates included). A target for the same
    object and period already set is superseded, not changed: both rows stay."""
    facts = actor_facts(actor)
    require_active(facts)
    if facts.role not in (Role.DIRECTOR, Role.ADMIN, Role.HEAD):
        raise Forbidden("only directors, admins and heads of sales set targets",
                        code="role_required")
    target = target_check(kind=kind, ref=ref, start=start, end=end, amount=amount,
                          currency=currency)
    _require_may_set(actor, target)
    with transaction.atomic():
        return _write(actor, target, "ui")


# --- import ---------------------------------------------------------------------------------


def _read(file: Any) -> bytes:
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        data = file.read(MAX_IMPORT_BYTES + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    if len(data) > MAX_IMPORT_BYTES:
        raise BadInput(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB",
                       code="file_too_large")
    return data


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("the CSV file is not UTF-8 text", code="bad_file") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for row in reader:
        yield reader.line_num, row


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds (zip, XML, KeyError) on a broken file
        raise BadInput("the file is not an XLSX workbook", code="bad_file") from None
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        book.close()


def _blank(row: Iterable[Any]) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in row)


def targets_import(actor: User, file: IO[bytes] | bytes, fmt: str) -> list[Target]:
    """Import targets from a CSV or XLSX file whose first row names the columns kind, object,
    start, end, amount and (optional) currency. Every row is checked first; if any is bad
    nothing is written and ``BadInput`` (code ``bad_import``) lists each bad row as
    ``{"line": n, "reason": text}`` in ``params["rows"]``."""
    facts = actor_facts(actor)
    require_active(facts)
    if facts.role not in (Role.DIRECTOR, Role.ADMIN, Role.HEAD):
        raise Forbidden("only directors, admins and heads of sales set targets",
                        code="role_required")
    fmt = (fmt or "").strip().lower()
    if fmt not in ("csv", "xlsx"):
        raise BadInput(f"{fmt!r} is not a format: use csv or xlsx", code="bad_format")
    data = _read(file)
    rows = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
    header: list[str] | None = None
    checked: list[TargetInput] = []
    bad: list[dict[str, Any]] = []
    for line, cells in rows:
        if _blank(cells):
            continue
        if header is None:
            header = [str(c or "").strip().lower() for c in cells]
            missing = [c for c in COLUMNS if c != "currency" and c not in header]
            if missing:
                raise BadInput(f"line {line}: the header lacks {', '.join(missing)}; the "
                               f"columns are {', '.join(COLUMNS)}", code="bad_header",
                               line=line, missing=", ".join(missing))
            continue
        if len(checked) + len(bad) >= MAX_IMPORT_ROWS:
            raise BadInput(f"the file has more than {MAX_IMPORT_ROWS} rows",
                           code="too_many_rows", limit=MAX_IMPORT_ROWS)
        values = dict(zip(header, list(cells) + [None] * (len(header) - len(cells)),
                          strict=False))
        try:
            target = target_check(kind=values.get("kind"), ref=values.get("object"),
                                  start=values.get("start"), end=values.get("end"),
                                  amount=values.get("amount"),
                                  currency=values.get("currency") or DEFAULT_CURRENCY)
            _require_may_set(actor, target)
        except EstafetaError as exc:
            bad.append({"line": line, "reason": str(exc)})
            continue
        checked.append(target)
    if header is None or (not checked and not bad):
        raise BadInput("the file has no targets", code="empty_import")
    if bad:
        listed = "; ".join(f"line {b['line']}: {b['reason']}" for b in bad)
        raise BadInput(f"nothing was imported: {listed}", code="bad_import", rows=bad)
    with transaction.atomic():
        return [_write(actor, target, "import") for target in checked]
