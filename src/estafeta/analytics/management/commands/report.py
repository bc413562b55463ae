"""``estafeta report --period 2026-11 --format xlsx|csv --out FILE [--team NAME]``: the monthly
report a head of sales sends the director, a sheet per figure (CSV: a section per figure).

Bad input (a period, a team, a format, a file that cannot be written) is refused with one line
and a non-zero exit, and nothing is written."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


class Command(EstafetaCommand):
    help = "Write the monthly analytics report (a sheet per figure) to an XLSX or CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True,
                            help="2026-11, 2026-W48, 2026-Q4, 2026 or 2026-11-01..2026-11-15")
        parser.add_argument("--format", required=True, choices=["xlsx", "csv"])
        parser.add_argument("--out", required=True, help="the file to write")
        parser.add_argument("--team", help="only this team (its name)")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.accounts.selectors import team_by_name
        from estafeta.analytics.conversions import ANY_ORDER, STRICT
        from estafeta.analytics.figures import FIGURES
        from estafeta.analytics.period import Cut, Period
        from estafeta.web.pages.analytics import (
            GROWTH_PARTS,
            K7_PARTS,
            K12_PARTS,
            TITLES,
            energy_export,
            export_rows,
            funnel_export,
            growth_export,
            k5_export,
            k6_export,
            k7_export,
            k7_extra_export,
            k9_export,
            k9_stuck_export,
            k12_export,
        )

        out = Path(options["out"])
        if out.is_dir() or not out.parent.is_dir():
            raise CommandError(f"cannot write {out}: no such directory or it is a directory")
        period = Period.parse(options["period"])
        cut = Cut(team=team_by_name(options["team"]).pk) if options["team"] else Cut()
        sheets = []
        for code, figure in FIGURES.items():
            headers, rows = export_rows(figure(period, cut))
            sheets.append((f"{code} {TITLES[code]}", headers, rows))
        for mode in (STRICT, ANY_ORDER):
            headers, rows = funnel_export(period, cut, mode)
            sheets.append((f"K8 {mode} {TITLES['K8']}", headers, rows))
        for part in K7_PARTS:
            headers, rows = k7_export(period, cut, part)
            sheets.append((f"K7 {part}", headers, rows))
        for which in ("win_rate", "ratios"):
            headers, rows = k7_extra_export(period, cut, which)
            sheets.append((f"K7 {which}", headers, rows))
        headers, rows = k9_export(period, cut)
        sheets.append((f"K9 {TITLES['K9']}", headers, rows))
        headers, rows = k9_stuck_export(None, period, cut)
        sheets.append(("K9 stuck", headers, rows))
        for part in K12_PARTS:
            headers, rows = k12_export(period, cut, part)
            sheets.append((f"K12 {part}", headers, rows))
        for part in GROWTH_PARTS:
            headers, rows = growth_export(period, cut, part)
            sheets.append((f"Growth {part}", headers, rows))
        for bucket in ("week", "month", "quarter"):
            headers, rows = k5_export(period, cut, bucket)
            sheets.append((f"K5 {bucket}", headers, rows))
        headers, rows = k6_export(period, cut)  # one team: the team's share (as its head sees)
        sheets.append((f"K6 {TITLES['K6']}", headers, rows))
        headers, rows = energy_export(period, cut)
        sheets.append(("K11 energy", headers, rows))
        body = _xlsx(sheets) if options["format"] == "xlsx" else _csv(period.label, sheets)
        temporary = out.with_name(f".{out.name}.part")
        temporary.write_bytes(body)
        os.replace(temporary, out)
        self.stdout.write(f"wrote {out} ({period.label}, {len(sheets)} figures)")


Sheet = tuple[str, list[str], list[list[Any]]]


def _xlsx(sheets: list[Sheet]) -> bytes:
    from openpyxl import Workbook, load_workbook

    from estafeta.core.export import sheet_title, write_xlsx

    workbook = Workbook(write_only=True)
    for title, headers, rows in sheets:
        # each sheet as write_xlsx makes it (neutralised texts, typed numbers), then copied
        one = load_workbook(io.BytesIO(write_xlsx(rows, headers, sheet=title)), read_only=True)
        sheet = workbook.create_sheet(sheet_title(title))
        for values in one.active.iter_rows(values_only=True):  # type: ignore[union-attr]
            sheet.append(list(values))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _csv(label: str, sheets: list[Sheet]) -> bytes:
    from estafeta.core.export import write_csv

    rows: list[list[Any]] = []
    for title, headers, body in sheets:
        rows += [[], [title], headers, *body]
    return write_csv(rows, [f"Estafeta report {label}"])
