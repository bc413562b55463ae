"""``/api/v1/analytics/<figure>/``: the figures of the dashboard as JSON (docs/analytics-ui.md).

The same rows as the page: a seller gets their own figures, a head their teams with a row per
seller, a director everything; another cut answers 403, a bad period or cut 400.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf
from rest_framework.request import Request
from rest_framework.response import Response

from estafeta.analytics import rollup
from estafeta.analytics.access import (
    ANALYTICS_ROLES,
    ROWS_BY,
    dashboard_rows,
    read_cut,
    read_period,
)
from estafeta.analytics.figures import FIGURES
from estafeta.analytics.period import CUT_FIELDS
from estafeta.domain.codes import Role
from estafeta.domain.errors import BadInput, Forbidden

from .errors import ErrorSerializer
from .views import ApiView


class FigureSerializer(drf.Serializer):
    figure = drf.CharField(help_text=("K1, K2, K3, K4, K10, K8, K7, K9, K12, growth, K5, K6 "
                                      "or K11"))
    bucket = drf.CharField(required=False, help_text="K5 only: week, month (default), quarter")
    mode = drf.CharField(required=False,
                         help_text="K8 only: strict (the default) or any (order)")
    part = drf.CharField(required=False,
                         help_text=("K7: email_call, call_meeting or lead_sale (default); "
                                    "K12: coverage (default), overdue, sla or escalations; "
                                    "growth: channels (default), average_deal, lost_value or "
                                    "stages"))
    unit = drf.CharField()
    period = drf.CharField(help_text="The period as read, e.g. 2026-11")
    start = drf.DateTimeField(help_text="First instant (company time zone)")
    end = drf.DateTimeField(help_text="First instant after the period")
    cut = drf.DictField(help_text="The cut applied (narrowed to what you may see)")
    keys = drf.ListField(child=drf.CharField(), help_text="What each row is about")
    columns = drf.ListField(child=drf.CharField())
    rows = drf.ListField(child=drf.DictField(),
                         help_text="Keys (user ids, codes) and numbers; money as strings")
    total = drf.DictField()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def figure_data(code: str, period: Any, cut: Any) -> dict[str, Any]:
    # the cells when ready, grouped as shown (docs/analytics-scale.md)
    table = rollup.table(code, period, cut, ROWS_BY[code])
    keys, rows, total = dashboard_rows(table)
    return {"figure": table.figure, "unit": table.unit, "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": list(keys),
            "columns": list(table.columns), "rows": [_plain(r) for r in rows],
            "total": _plain(total)}


def _share(value: Fraction | None) -> str | None:
    if value is None:
        return None
    return str(round(Decimal(value.numerator) / Decimal(value.denominator), 4))


def funnel_data(period: Any, cut: Any, mode: str) -> dict[str, Any]:
    """K8: a row per pipeline and step; shares as decimal strings (None when nothing is
    divided), the total the cohort (tickets that reached each pipeline's first step)."""
    from estafeta.analytics.fast import k8_funnel
    from estafeta.web.pages.analytics import funnel_rows

    funnel = k8_funnel(period, cut, mode=mode)
    rows = funnel_rows(funnel)
    cohort = sum(r["reached"] for r in rows if r["stage"] == funnel.stages[r["pipeline"]][0])
    return {"figure": "K8", "mode": mode, "unit": "tickets", "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(),
            "keys": ["pipeline", "stage"], "columns": ["reached", "next_step", "cumulative"],
            "rows": [{**r, "next_step": _share(r["next_step"]),
              "cumulative": _share(r["cumulative"])}
                     for r in rows],
            "total": {"cohort": cohort}}


def conversion_data(period: Any, cut: Any, part: str) -> dict[str, Any]:
    """K7: one cohort table (``part``) by its keys: counts, shares as decimal strings with 4
    places (lead→sale's sum to exactly 1; null when nothing is divided) and ``immature``."""
    from estafeta.web.pages.analytics import K7_PARTS, k7_rows, share_decimals

    _figure, keys, counts, shares, _title = K7_PARTS[part]
    table, keys, rows, total = k7_rows(period, cut, part)

    def plain(row: dict[str, Any], with_keys: bool) -> dict[str, Any]:
        return {**({k: row[k] for k in keys} if with_keys else {}),
                **{c: row[c] for c in counts}, **share_decimals(part, row),
                "immature": bool(row["is_immature"])}

    return {"figure": "K7", "part": part, "unit": table.unit, "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": list(keys),
            "columns": [*counts, *shares, "immature"],
            "rows": [plain(r, True) for r in rows], "total": plain(total, False)}


def timing_data(period: Any, cut: Any) -> dict[str, Any]:
    """K9: a row per pipeline and stage; business hours as decimal strings with one place
    (null when there is no stay), counts of stays ended, open and stuck."""
    from estafeta.analytics.fast import k9_timing
    from estafeta.web.pages.analytics import k9_rows

    timing = k9_timing(period, cut)
    rows = [{"pipeline": r["pipeline"], "stage": r["stage"], "closed": r["closed"],
             "median_hours": _hours(r["median"]), "p80_hours": _hours(r["p80"]),
             "open": r["open"], "oldest_open_hours": _hours(r["oldest_open"]),
             "stuck": r["stuck"]} for r in k9_rows(timing)]
    return {"figure": "K9", "unit": "business hours", "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(),
            "keys": ["pipeline", "stage"],
            "columns": ["closed", "median_hours", "p80_hours", "open", "oldest_open_hours",
                        "stuck"], "rows": rows,
            "total": {c: sum(r[c] for r in rows) for c in ("closed", "open", "stuck")}}


def control_data(period: Any, cut: Any, part: str) -> dict[str, Any]:
    """K12: one of its tables (``part``) by its keys, with ``rate`` as a decimal string with 4
    places (null when nothing is divided; escalations have none)."""
    from estafeta.web.pages.analytics import K12_PARTS, k12_rows

    table, keys, rows, total = k12_rows(period, cut, part)
    has_rate = K12_PARTS[part][2] is not None

    def plain(row: dict[str, Any], with_keys: bool) -> dict[str, Any]:
        return {**({k: row[k] for k in keys} if with_keys else {}),
                **{c: row.get(c, 0) for c in table.columns},
                **({"rate": _share(row["rate"])} if has_rate else {})}

    return {"figure": "K12", "part": part, "unit": table.unit, "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": list(keys),
            "columns": [*table.columns, *(["rate"] if has_rate else [])],
            "rows": [plain(r, True) for r in rows], "total": plain(total, False)}


def growth_data(period: Any, cut: Any, part: str) -> dict[str, Any]:
    """The growth points: one part's rows as the dashboard shows them; shares and changes of
    shares as decimal strings with 4 places, money as decimal strings, null when nothing is
    divided; ``largest`` the stage losing the most value (lost_value only)."""
    from estafeta.web.pages.analytics import GROWTH_COLUMNS, growth_rows

    rows, _table, largest = growth_rows(period, cut, part)
    columns = GROWTH_COLUMNS[part]

    def plain(value: Any) -> Any:
        if isinstance(value, float):
            return str(round(Decimal(value), 4))
        return str(value) if isinstance(value, Decimal) else value

    keys = [c for c in columns if c in ("channel", "month", "pipeline", "stage", "currency")]
    return {"figure": "growth", "part": part, "unit": "tickets, money", "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": keys,
            "columns": [c for c in columns if c not in keys],
            "rows": [{c: plain(r[c]) for c in columns} for r in rows],
            "total": {} if largest is None else {"largest_loss": {
                k: plain(largest[k]) for k in ("pipeline", "stage", "currency", "lost",
                                               "lost_value")}}}


def _plain_values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def dynamics_data(period: Any, cut: Any, bucket: str) -> dict[str, Any]:
    """K5: a row per bucket, segment (as of the win) and currency; money and changes (percent,
    one decimal, null without a base) as decimal strings."""
    from estafeta.web.pages.analytics import K5_COLUMNS, k5_rows

    keys = ["bucket", "segment", "currency"]
    return {"figure": "K5", "bucket": bucket, "unit": "deals, money", "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": keys,
            "columns": [c for c in K5_COLUMNS if c not in keys],
            "rows": [_plain_values({c: r[c] for c in K5_COLUMNS})
                     for r in k5_rows(period, cut, bucket)], "total": {}}


def realisation_data(period: Any, cut: Any) -> dict[str, Any]:
    """K6 (directors: the company or a team; heads: their team's share): a row per client or
    territory target in force in the period; only the seller and team of the cut apply."""
    from estafeta.analytics.sales import people_of
    from estafeta.web.pages.analytics import K6_COLUMNS, k6_rows

    keys = ["kind", "object", "start", "end", "currency"]
    return {"figure": "K6", "unit": "money", "period": period.label, "start": period.start,
            "end": period.end, "cut": people_of(cut).as_dict(), "keys": keys,
            "columns": [c for c in K6_COLUMNS if c not in keys],
            "rows": [_plain_values({c: r[c] for c in K6_COLUMNS})
                     for r in k6_rows(period, cut)],
            "total": {}}


def energy_data(period: Any, cut: Any) -> dict[str, Any]:
    """K11: a row per active seller in the cut with the energy score of each of the 8 weeks
    ending with the period (the Monday's date; null: not rated)."""
    from estafeta.web.pages.analytics import energy_table

    weeks, rows = energy_table(period, cut)
    return {"figure": "K11", "unit": "score 1-5", "period": period.label,
            "start": period.start, "end": period.end, "cut": cut.as_dict(), "keys": ["seller"],
            "columns": weeks, "rows": rows, "total": {}}


def _hours(value: Any) -> str | None:
    return None if value is None else f"{value.total_seconds() / 3600:.1f}"


PARAMETERS = [
    OpenApiParameter("period", OpenApiTypes.STR, description=(
        "2026-11, 2026-W48, 2026-Q4, 2026 or 2026-11-01..2026-11-15; this month if left out")),
    *[OpenApiParameter(name, OpenApiTypes.INT if name in ("seller", "team") else OpenApiTypes.STR,
                       description=f"Only this {name}") for name in CUT_FIELDS],
    OpenApiParameter("mode", OpenApiTypes.STR, description="K8 only: strict (default) or any"),
    OpenApiParameter("bucket", OpenApiTypes.STR,
                     description="K5 only: week, month (default) or quarter"),
    OpenApiParameter("part", OpenApiTypes.STR, description=(
        "K7: email_call, call_meeting or lead_sale (default); K12: coverage (default), "
        "overdue, sla or escalations; growth: channels (default), average_deal, lost_value or "
        "stages")),
]


class FigureView(ApiView):
    @extend_schema(parameters=PARAMETERS,
                   responses={200: FigureSerializer, 400: ErrorSerializer, 401: ErrorSerializer,
                              403: ErrorSerializer},
                   summary="One figure (K1-K12, growth) for a period")
    def get(self, request: Request, figure: str) -> Response:
        if Role(self.person.role) not in ANALYTICS_ROLES:
            raise Forbidden("the figures are for sellers, heads and directors",
                            code="analytics_forbidden")
        if figure not in FIGURES and figure not in ("K8", "K7", "K9", "K12", "growth", "K5",
                                                    "K6", "K11"):
            raise BadInput(f"there is no figure {figure!r}; use {', '.join(FIGURES)}, K8, K7, "
                           "K9, K12, growth, K5, K6 or K11",
                           code="bad_figure", value=figure)
        period = read_period(request.query_params)
        cut = read_cut(self.person, request.query_params)
        if figure == "K8":
            from estafeta.web.pages.analytics import read_mode

            mode = read_mode(request.query_params)
            return Response(FigureSerializer(funnel_data(period, cut, mode)).data)
        if figure == "K11":
            from estafeta.web.pages.analytics import check_energy

            check_energy(self.person)
            return Response(FigureSerializer(energy_data(period, cut)).data)
        if figure == "K6":
            from estafeta.analytics.access import check_k6

            check_k6(self.person)
            return Response(FigureSerializer(realisation_data(period, cut)).data)
        if figure == "K5":
            from estafeta.web.pages.analytics import read_bucket

            bucket = read_bucket(request.query_params)
            return Response(FigureSerializer(dynamics_data(period, cut, bucket)).data)
        if figure == "growth":
            from estafeta.web.pages.analytics import read_growth_part

            part = read_growth_part(request.query_params)
            return Response(FigureSerializer(growth_data(period, cut, part)).data)
        if figure == "K12":
            from estafeta.web.pages.analytics import read_k12_part

            part = read_k12_part(request.query_params)
            return Response(FigureSerializer(control_data(period, cut, part)).data)
        if figure == "K9":
            return Response(FigureSerializer(timing_data(period, cut)).data)
        if figure == "K7":
            from estafeta.web.pages.analytics import read_part

            part = read_part(request.query_params)
            return Response(FigureSerializer(conversion_data(period, cut, part)).data)
        return Response(FigureSerializer(figure_data(figure, period, cut)).data)
