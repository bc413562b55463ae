"""Tables out as CSV and XLSX files, safe to open in a spreadsheet.

Every text cell that a spreadsheet could read as a formula or a command is neutralised: if it
begins with ``=``, ``+``, ``-``, ``@`` (or their full-width forms) or with a control character
(tab, CR, LF, ...), also after leading spaces, an apostrophe is put in front of it. Numbers,
decimals, dates and booleans are written as such in XLSX (typed cells; a formula can only come
from a text, and every text is neutralised); CSV has no types, so they are written as plain
text there and only strings are neutralised.

CSV is UTF-8 with a byte-order mark (Excel then reads Cyrillic right), comma-separated, CRLF
lines. XLSX is written by openpyxl in write-only (streaming) mode.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from estafeta.domain.errors import BadInput

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# Characters a spreadsheet may read as the start of a formula or a DDE command.
_DANGEROUS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_FILENAME_BAD = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def neutralise(text: str) -> str:
    """``text`` with an apostrophe in front if a spreadsheet could execute it."""
    stripped = text.lstrip(" ")
    if stripped and (stripped[0] in _DANGEROUS or unicodedata.category(stripped[0]) == "Cc"):
        return "'" + text
    return text


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (int, float, Decimal, date, time)):
        return value.isoformat() if isinstance(value, (date, time)) else str(value)
    return neutralise(str(value))


def write_csv(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> bytes:
    """The table as CSV bytes (UTF-8 with BOM); headers are neutralised like any text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_text(h) for h in headers])
    for row in rows:
        writer.writerow([_csv_text(v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _xlsx_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, Decimal, date, time)):
        if isinstance(value, datetime) and timezone.is_aware(value):
            return timezone.localtime(value).replace(tzinfo=None)  # XLSX has no time zones
        return value
    text = neutralise(value if isinstance(value, str) else str(value))
    # XML cannot carry most control characters; the apostrophe above already marks the cell.
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)


def sheet_title(name: str) -> str:
    """A valid sheet title: no ``[]:*?/\\``, at most 31 characters, never empty."""
    title = _SHEET_BAD.sub("_", name).strip("'").strip()[:31]
    return title or "Sheet"


def write_xlsx(rows: Iterable[Sequence[Any]], headers: Sequence[str],
               sheet: str = "Sheet") -> bytes:
    """The table as an XLSX workbook of one sheet, written in streaming mode."""
    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet(sheet_title(sheet))
    ws.append([_xlsx_value(h) for h in headers])
    for row in rows:
        ws.append([_xlsx_value(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def safe_filename(filename: str, fmt: str) -> str:
    """``filename`` fit for a Content-Disposition header: no path, quotes, control characters
    or separators; at most 100 characters; ending in ``.<fmt>``."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _FILENAME_BAD.sub("_", name).strip(" .")
    if name.lower().endswith(f".{fmt}"):
        name = name[: -len(fmt) - 1].rstrip(" .")
    name = name[:100] or "export"
    return f"{name}.{fmt}"


def export_response(rows: Iterable[Sequence[Any]], headers: Sequence[str], filename: str,
                    fmt: str) -> HttpResponse:
    """A download of the table as ``fmt`` (``csv`` or ``xlsx``) named after ``filename``."""
    if fmt not in FORMATS:
        raise BadInput(f"{fmt!r} is not an export format; use csv or xlsx", code="bad_format")
    if fmt == "csv":
        body = write_csv(rows, headers)
    else:
        body = write_xlsx(rows, headers, sheet=filename.rsplit(".", 1)[0])
    response = HttpResponse(body, content_type=FORMATS[fmt])
    response["Content-Disposition"] = content_disposition_header(
        True, safe_filename(filename, fmt))
    response["X-Content-Type-Options"] = "nosniff"
    return response
