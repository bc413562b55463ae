"""core/export.py: CSV and XLSX that spreadsheets never execute, typed numbers and dates, safe
download names."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from estafeta.core.export import export_response, safe_filename, write_csv, write_xlsx
from estafeta.domain.errors import BadInput

DANGEROUS = ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\x01x", "\x1bx",
             "  =HYPERLINK(\"http://x\")", " +1", "   -cmd", " @a", "\uff1d1+1",
             "=cmd|' /C calc'!A0"]
HARMLESS = ["hello", "1+2", "a=b", "Иван Петров", "日本語", "😀 emoji", "", " spaced", "'quoted"]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> list[list[Any]]:
    ws = load_workbook(io.BytesIO(data)).active
    assert isinstance(ws, Worksheet)
    return [list(row) for row in ws.iter_rows()]


@pytest.mark.parametrize("text", DANGEROUS)
def test_a_dangerous_text_is_neutralised_in_csv(text: str) -> None:
    rows = read_csv(write_csv([[text, 1]], ["text", "n"]))
    assert rows[1][0] == "'" + text
    assert rows[1][1] == "1"


@pytest.mark.parametrize("text", DANGEROUS)
def test_a_dangerous_text_is_neutralised_in_xlsx(text: str) -> None:
    cells = read_xlsx(write_xlsx([[text]], ["text"]))
    cell = cells[1][0]
    assert cell.data_type == "s"  # never "f", a formula
    assert isinstance(cell.value, str) and cell.value.startswith("'")
    if not any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
        assert cell.value == "'" + text.replace("\r", "\n")  # XML reads CR as LF
    else:  # XML cannot carry it: replaced, the apostrophe stays
        assert cell.value == "'" + "".join(
            "\ufffd" if ord(ch) < 32 and ch not in "\t\r\n" else ch for ch in text)


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_and_unicode_text_is_kept_as_is(text: str) -> None:
    assert read_csv(write_csv([[text]], ["t"]))[1] == [text]
    value = read_xlsx(write_xlsx([[text]], ["t"]))[1][0].value
    assert value == (text or None)  # an empty string is an empty cell


def test_dangerous_headers_are_neutralised_too() -> None:
    assert read_csv(write_csv([], ["=evil", "ok"]))[0] == ["'=evil", "ok"]
    assert [c.value for c in read_xlsx(write_xlsx([], ["=evil", "ok"]))[0]] == ["'=evil", "ok"]


def test_numbers_dates_and_decimals_stay_typed_in_xlsx() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    row = [-5, 2.5, Decimal("-1234.50"), date(2026, 11, 23),
           datetime(2026, 11, 23, 9, 30, tzinfo=moscow), True, None]
    cells = read_xlsx(write_xlsx([row], ["a", "b", "c", "d", "e", "f", "g"]))[1]
    assert [c.data_type for c in cells[:6]] == ["n", "n", "n", "d", "d", "b"]
    assert cells[0].value == -5  # a negative number is not text, so not neutralised
    assert cells[1].value == 2.5
    assert cells[2].value == pytest.approx(-1234.5)
    assert cells[3].value == datetime(2026, 11, 23)
    assert cells[4].value == datetime(2026, 11, 23, 9, 30)  # in company time
    assert cells[5].value is True
    assert cells[6].value is None


def test_numbers_and_dates_in_csv_are_plain() -> None:
    rows = read_csv(write_csv([[-5, Decimal("-1.50"), date(2026, 11, 23), None, False]],
                              ["a", "b", "c", "d", "e"]))
    assert rows[1] == ["-5", "-1.50", "2026-11-23", "", "false"]


def test_empty_tables_and_empty_rows() -> None:
    assert read_csv(write_csv([], ["a", "b"])) == [["a", "b"]]
    assert read_csv(write_csv([[], ["x"]], ["a"])) == [["a"], [], ["x"]]
    cells = read_xlsx(write_xlsx([], ["a", "b"]))
    assert [[c.value for c in row] for row in cells] == [["a", "b"]]
    ws = load_workbook(io.BytesIO(write_xlsx([], []))).active
    assert isinstance(ws, Worksheet) and ws.max_row == 1


def test_many_rows_stream_through_a_generator() -> None:
    rows = ([i, f"=row{i}"] for i in range(2000))
    cells = read_xlsx(write_xlsx(rows, ["n", "text"], sheet="Big: [data]?"))
    assert len(cells) == 2001
    assert cells[2000][0].value == 1999 and cells[2000][1].value == "'=row1999"


def test_sheet_title_is_made_valid() -> None:
    wb = load_workbook(io.BytesIO(write_xlsx([], ["a"], sheet="K1/K4: [week]*" + "x" * 40)))
    assert wb.sheetnames == ["K1_K4_ _week__" + "x" * 17]


@pytest.mark.parametrize(("given", "fmt", "safe"), [
    ("report", "csv", "report.csv"),
    ("report.xlsx", "xlsx", "report.xlsx"),
    ("../../etc/passwd", "csv", "passwd.csv"),
    ('a"b\r\nSet-Cookie: x=1', "csv", "a_b_Set-Cookie_ x=1.csv"),
    ("C:\\evil\\name", "xlsx", "name.xlsx"),
    ("", "csv", "export.csv"),
    ("...", "xlsx", "export.xlsx"),
    ("Отчёт за ноябрь", "xlsx", "Отчёт за ноябрь.xlsx"),
])
def test_safe_filename(given: str, fmt: str, safe: str) -> None:
    assert safe_filename(given, fmt) == safe


def test_export_response_csv_and_xlsx() -> None:
    response = export_response([["=1", 2]], ["a", "b"], 'Отчёт "K1"\n', "csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert "\n" not in disposition and '"K1"' not in disposition
    assert read_csv(response.content)[1] == ["'=1", "2"]
    response = export_response([["=1", 2]], ["a", "b"], "k1.xlsx", "xlsx")
    assert response["Content-Disposition"] == 'attachment; filename="k1.xlsx"'
    cells = read_xlsx(response.content)[1]
    assert (cells[0].value, cells[1].value, cells[1].data_type) == ("'=1", 2, "n")


def test_export_response_refuses_an_unknown_format() -> None:
    with pytest.raises(BadInput) as caught:
        export_response([], ["a"], "x", "pdf")
    assert caught.value.code == "bad_format"
