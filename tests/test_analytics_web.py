"""The analytics dashboard, its drill-downs and exports, the API figures and ``estafeta report``.

History (November 2026, Moscow time): Ann and Bob (team Sales) and Olga (team Other) each own a
ticket created on 2 November and make one connected call on it; Ann's ticket is then given to
Olga by the director, so Helen (head of Sales) still counts it as Ann's lead but may no longer
open it.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.analytics.charts import bars, funnel, line
from estafeta.core import clock
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import activity_log, ticket_reassign

from .factories import PASSWORD, World

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
NOV = "period=2026-11"


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=MSK)


def make_history(w: World, extra: int = 0) -> dict[str, Ticket]:
    tickets = {}
    with clock.frozen(at(2)):
        for who in ("ann", "bob", "olga"):
            tickets[who] = w.ticket(owner=getattr(w, who))
        for _ in range(extra):
            w.ticket(owner=w.bob)
    with clock.frozen(at(3)):
        for who, ticket in tickets.items():
            activity_log(actor=getattr(w, who), ticket=ticket, kind="call", direction="out",
                         outcome="connected")
    with clock.frozen(at(4)):
        ticket_reassign(actor=w.director, ticket=tickets["ann"], owner=w.olga)
    return tickets


def signed(user: User) -> HttpClient:
    client = HttpClient()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def page(user: User, query: str = NOV, path: str = "/analytics/") -> Any:
    return signed(user).get(f"{path}?{query}")


# --- who sees what -----------------------------------------------------------------------------


def test_a_seller_sees_only_their_own_figures(world: World) -> None:
    w = world
    make_history(w)
    w.ann.first_name, w.bob.first_name = "Annabel", "Bobby"
    w.ann.save()
    w.bob.save()
    answer = page(w.ann)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "Annabel" in text and "Bobby" not in text
    cards = {c.code: c for c in answer.context["cards"]}
    assert [r["owner"] for r in cards["K2"].rows] == [w.ann.pk]
    assert cards["K1"].total["contacts"] == 1
    for query in (f"seller={w.bob.pk}", f"team={w.other.pk}", f"seller={w.olga.pk}"):
        assert page(w.ann, f"{NOV}&{query}").status_code == 403, query


def test_a_head_sees_their_team_with_a_row_per_seller(world: World) -> None:
    w = world
    make_history(w)
    answer = page(w.head)
    assert answer.status_code == 200
    cards = {c.code: c for c in answer.context["cards"]}
    assert [r["performer"] for r in cards["K1"].rows] == sorted([w.ann.pk, w.bob.pk])
    assert cards["K2"].total["leads"] == 2  # Ann's lead stays hers after the reassignment
    assert page(w.head, f"{NOV}&seller={w.ann.pk}").status_code == 200
    assert page(w.head, f"{NOV}&team={w.sales.pk}").status_code == 200
    assert page(w.head, f"{NOV}&team={w.other.pk}").status_code == 403
    assert page(w.head, f"{NOV}&seller={w.olga.pk}").status_code == 403
    assert page(w.other_head, f"{NOV}&seller={w.ann.pk}").status_code == 403


def test_a_director_sees_everything_and_any_cut(world: World) -> None:
    w = world
    make_history(w)
    answer = page(w.director)
    cards = {c.code: c for c in answer.context["cards"]}
    assert cards["K2"].total["leads"] == 3 and cards["K1"].total["contacts"] == 3
    other = page(w.director, f"{NOV}&team={w.other.pk}")
    assert {c.code: c for c in other.context["cards"]}["K2"].total["leads"] == 1


@pytest.mark.parametrize("who", ["operator", "admin"])
def test_other_roles_are_refused(world: World, who: str) -> None:
    assert page(getattr(world, who)).status_code == 403
    assert APIClient().get("/api/v1/analytics/K1/").status_code == 401


@pytest.mark.parametrize("query", ["period=2026-13", "period=2026-02-30..2026-03-01",
                                   "period=soon", f"{NOV}&seller=abc", f"{NOV}&seller=999999",
                                   f"{NOV}&channel=pigeon"])
def test_bad_periods_and_cuts_answer_400_with_the_reason(world: World, query: str) -> None:
    answer = page(world.director, query)
    assert answer.status_code == 400
    assert answer.context["message"]
    api = APIClient()
    api.force_authenticate(world.director)
    assert api.get(f"/api/v1/analytics/K2/?{query}").status_code == 400


def test_an_unknown_figure_is_refused(world: World) -> None:
    assert page(world.director, NOV, "/analytics/K99/tickets/").status_code == 400
    assert page(world.director, NOV, "/analytics/K99/export/").status_code == 400


# --- drill-down ---------------------------------------------------------------------------------


def test_drill_down_lists_only_tickets_the_person_may_see(world: World) -> None:
    w = world
    tickets = make_history(w)
    cell = f"{NOV}&k_owner={w.ann.pk}&column=leads"
    # Helen counts Ann's lead but the ticket is team Other's now: she may not open it.
    answer = page(w.head, cell, "/analytics/K2/tickets/")
    assert answer.status_code == 200
    assert list(answer.context["page"].object_list) == []
    # The director sees it behind the same cell.
    answer = page(w.director, cell, "/analytics/K2/tickets/")
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["ann"].pk]
    assert tickets["ann"].number in answer.content.decode()
    # Bob's cell for the head: his ticket.
    answer = page(w.head, f"{NOV}&k_performer={w.bob.pk}&column=contacts",
                  "/analytics/K1/tickets/")
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    # A seller cannot drill into another's cell by naming them.
    assert page(w.ann, f"{NOV}&seller={w.bob.pk}", "/analytics/K1/tickets/").status_code == 403
    assert page(w.director, f"{NOV}&k_nobody=1", "/analytics/K1/tickets/").status_code == 400
    assert page(w.director, f"{NOV}&column=x", "/analytics/K1/tickets/").status_code == 400


def test_the_dashboard_links_each_count_to_its_tickets(world: World) -> None:
    w = world
    make_history(w)
    text = page(w.head).content.decode()
    assert f"/analytics/K2/tickets/?period=2026-11&amp;k_owner={w.bob.pk}&amp;column=leads" in text
    assert "/analytics/K2/export/?period=2026-11&amp;format=xlsx" in text


# --- escaping and exports -----------------------------------------------------------------------


def test_names_are_escaped_in_the_svg_and_the_tables(world: World) -> None:
    w = world
    make_history(w)
    w.bob.first_name = '<script>alert("x")</script>'
    w.bob.save()
    text = page(w.head).content.decode()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    for chart in (bars([("<b>", 1)], "<t>"), funnel([("<b>", 2), ("&", 1)], "<t>"),
                  line([("<b>", 1), ("<i>", 2)], "<t>")):
        assert "<b>" not in chart and "<t>" not in chart and "&lt;b&gt;" in chart


def test_exports_neutralise_formulas(world: World) -> None:
    w = world
    make_history(w)
    w.bob.first_name, w.bob.last_name = "=HYPERLINK(\"http://x\")", ""
    w.bob.save()
    csv = page(w.head, f"{NOV}&format=csv", "/analytics/K1/export/")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "\r\n=HYPERLINK" not in body
    xlsx = page(w.head, f"{NOV}&format=xlsx", "/analytics/K1/export/")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    names = [row[0] for row in values[1:]]
    assert '\'=HYPERLINK("http://x")' in names and len(names) == 3  # Ann, Bob, the total
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    assert page(w.head, f"{NOV}&format=pdf", "/analytics/K1/export/").status_code == 400
    assert page(w.ann, f"{NOV}&format=csv&team={w.other.pk}",
                "/analytics/K1/export/").status_code == 403


# --- the API gives the page's figures -----------------------------------------------------------


@pytest.mark.parametrize("who", ["ann", "head", "director"])
def test_api_figures_equal_the_pages(world: World, who: str) -> None:
    w = world
    make_history(w)
    user = getattr(w, who)
    cards = {c.code: c for c in page(user).context["cards"]}
    api = APIClient()
    api.force_authenticate(user)
    for code, card in cards.items():
        data = api.get(f"/api/v1/analytics/{code}/?{NOV}").json()
        assert data["figure"] == code and data["period"] == "2026-11"
        # a director's company page has a row per team (tests/test_analytics_teamrows.py);
        # the API keeps a row per seller, so only the totals are compared then
        by_team = card.keys[0] == "team"
        assert by_team == (who == "director"), code
        for got, row in zip(data["rows"], [] if by_team else card.rows, strict=not by_team):
            for column in card.columns:
                assert str(got[column]) == str(row[column]), (code, column)
        assert {c: str(v) for c, v in data["total"].items()} == {
            c: str(card.total[c]) for c in card.columns}
    assert api.get(f"/api/v1/analytics/K2/?{NOV}&team={w.other.pk}").status_code == (
        200 if who == "director" else 403)


def test_the_api_figure_is_in_the_openapi_schema(world: World) -> None:
    api = APIClient()
    api.force_authenticate(world.director)
    schema = api.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/analytics/{figure}/" in schema.json()["paths"]


# --- queries ------------------------------------------------------------------------------------


def _queries(user: User) -> int:
    client = signed(user)
    with CaptureQueriesContext(connection) as seen:
        assert client.get(f"/analytics/?{NOV}").status_code == 200
    return len(seen)


def test_the_dashboard_reads_a_fixed_number_of_queries(world: World) -> None:
    w = world
    make_history(w)
    few = {who: _queries(getattr(w, who)) for who in ("ann", "head", "director")}
    with clock.frozen(at(5)):
        for _ in range(6):
            t = w.ticket(owner=w.bob)
            activity_log(actor=w.bob, ticket=t, kind="call", direction="out",
                         outcome="connected")
            activity_log(actor=w.head, ticket=t, kind="email", direction="out",
                         outcome="sent")
    many = {who: _queries(getattr(w, who)) for who in ("ann", "head", "director")}
    assert many == few


# --- estafeta report ----------------------------------------------------------------------------


def test_report_writes_a_real_xlsx_with_a_sheet_per_figure(world: World, tmp_path: Path) -> None:
    w = world
    make_history(w)
    out = tmp_path / "report.xlsx"
    call_command("report", "--period", "2026-11", "--format", "xlsx", "--out", str(out),
                 "--team", "Sales", stdout=io.StringIO())
    book = load_workbook(out)
    assert [name.split()[0] for name in book.sheetnames] == ["K1", "K2", "K3", "K4", "K10",
                                                             "K8", "K8", "K7", "K7", "K7",
                                                             "K7", "K7", "K9", "K9", "K12",
                                                             "K12", "K12", "K12", "Growth",
                                                             "Growth", "Growth", "Growth",
                                                             "K5", "K5", "K5", "K6", "K11"]
    funnel_sheet = list(book[book.sheetnames[5]].iter_rows(values_only=True))
    assert funnel_sheet[0][:3] == (_("Pipeline"), _("Stage"), _("Reached"))
    assert funnel_sheet[1][2] == 2  # Ann's and Bob's leads entered the first stage
    leads = list(book[book.sheetnames[1]].iter_rows(values_only=True))
    assert leads[0][:3] == (_("Seller"), _("Leads"), _("Void"))  # in the company's language
    assert leads[-1][0] == _("Total") and leads[-1][1] == 2  # Ann's and Bob's

    csv = tmp_path / "report.csv"
    call_command("report", "--period", "2026-11", "--format", "csv", "--out", str(csv),
                 stdout=io.StringIO())
    text = csv.read_text("utf-8-sig")
    assert "K10" in text and "Estafeta report 2026-11" in text


@pytest.mark.parametrize("args", [
    ["--period", "2026-13", "--format", "xlsx"],
    ["--period", "2026-11", "--format", "xlsx", "--team", "Nobody"],
])
def test_report_refuses_bad_input_and_writes_nothing(world: World, tmp_path: Path,
                                                     args: list[str]) -> None:
    out = tmp_path / "report.xlsx"
    with pytest.raises(CommandError) as refused:
        call_command("report", *args, "--out", str(out), stdout=io.StringIO())
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CommandError):
        call_command("report", "--period", "2026-11", "--format", "xlsx", "--out",
                     str(tmp_path / "missing" / "r.xlsx"), stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("report", "--period", "2026-11", "--format", "pdf", "--out", str(out),
                     stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == []


# --- K8 stage funnel ----------------------------------------------------------------------------


def _first_step(answer: Any) -> dict[str, Any]:
    return answer.context["stage_funnel"].rows[0]


@pytest.mark.parametrize(("who", "reached"), [("ann", 1), ("head", 2), ("director", 3)])
def test_the_stage_funnel_card_per_role(world: World, who: str, reached: int) -> None:
    w = world
    make_history(w)
    answer = page(getattr(w, who))
    assert answer.status_code == 200
    first = _first_step(answer)
    assert first["pipeline"] == "sales" and first["reached"] == reached
    assert first["cumulative_text"] == "100%"
    text = answer.content.decode()
    assert 'id="K8"' in text and "/analytics/K8/export/?period=2026-11&amp;mode=strict" in text
    assert text.count('class="bar funnel"') >= 4 + len(answer.context["stage_funnel"].rows)
    # the switch keeps the period and changes the mode
    assert "period=2026-11&amp;mode=any#K8" in text
    assert _first_step(page(getattr(w, who), f"{NOV}&mode=any"))["reached"] == reached
    assert page(getattr(w, who), f"{NOV}&mode=sideways").status_code == 400


def test_the_stage_funnel_drills_down_to_visible_tickets(world: World) -> None:
    w = world
    tickets = make_history(w)
    stage = _first_step(page(w.head))["stage"]
    cell = f"{NOV}&k_pipeline=sales&k_stage={stage}&column=reached"
    # Helen counts Ann's lead and Bob's, but opens only Bob's now.
    answer = page(w.head, cell, "/analytics/K8/tickets/")
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    answer = page(w.director, f"{cell}&mode=any", "/analytics/K8/tickets/")
    assert {t.pk for t in answer.context["page"].object_list} == {t.pk for t in tickets.values()}
    assert page(w.head, f"{cell}&mode=x", "/analytics/K8/tickets/").status_code == 400
    assert page(w.ann, f"{cell}&seller={w.bob.pk}", "/analytics/K8/tickets/").status_code == 403


def test_the_stage_funnel_export_and_api_equal_the_page(world: World) -> None:
    w = world
    make_history(w)
    card = page(w.head).context["stage_funnel"]
    csv = page(w.head, f"{NOV}&format=csv", "/analytics/K8/export/")
    assert csv.status_code == 200
    body = csv.content.decode("utf-8-sig")
    assert f"sales,{card.rows[0]['stage']},2," in body
    xlsx = load_workbook(io.BytesIO(page(w.head, f"{NOV}&mode=any&format=xlsx",
                                         "/analytics/K8/export/").content)).active
    assert xlsx is not None
    values = list(xlsx.iter_rows(values_only=True))
    assert [v[2] for v in values[1:]] == [r["reached"] for r in card.rows]
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    api = APIClient()
    api.force_authenticate(w.head)
    data = api.get(f"/api/v1/analytics/K8/?{NOV}").json()
    assert data["figure"] == "K8" and data["mode"] == "strict" and data["total"] == {"cohort": 2}
    assert [(r["pipeline"], r["stage"], r["reached"]) for r in data["rows"]] == [
        (r["pipeline"], r["stage"], r["reached"]) for r in card.rows]
    assert data["rows"][0]["cumulative"] == "1.0000"
    assert api.get(f"/api/v1/analytics/K8/?{NOV}&mode=x").status_code == 400
    assert api.get(f"/api/v1/analytics/K8/?{NOV}&team={w.other.pk}").status_code == 403


# --- K7 conversions -----------------------------------------------------------------------------


def _k7(answer: Any, part: str) -> Any:
    return {t.part: t for t in answer.context["conversions"].tables}[part]


@pytest.mark.parametrize(("who", "performers"), [("ann", ["ann"]), ("head", ["ann", "bob"]),
                                                 ("director", ["ann", "bob", "olga"])])
def test_the_conversions_card_per_role(world: World, who: str, performers: list[str]) -> None:
    w = world
    make_history(w)
    answer = page(getattr(w, who))
    assert answer.status_code == 200
    calls = _k7(answer, "call_meeting")
    expected = sorted(getattr(w, p).pk for p in performers)
    if who == "director":  # a row per team: each seller's team now
        expected = sorted({getattr(w, p).team_id for p in performers})
    assert sorted(r["performer"] for r in calls.rows) == expected
    assert calls.total["cohort"] == len(performers) and calls.total["converted"] == 0
    assert calls.total["shares"] == ["0%"]
    leads = _k7(answer, "lead_sale")
    # every lead is still open after its 14 days: the three shares make 100%
    assert leads.total["shares"] == ["0%", "0%", "100%"] and not leads.immature
    card = answer.context["conversions"]
    assert card.ratio_headers[1:] == [_("Calls per email (ratio)"),
                                      _("Presentations per call (ratio)")]
    assert all(k.endswith("_ratio") for r in card.ratio_rows for k in r
               if k not in ("performer", "label", "texts"))
    text = answer.content.decode()
    assert 'id="K7"' in text and "docs/analytics-conversions.md" in text
    assert "/analytics/K7/export/?period=2026-11&amp;part=lead_sale&amp;format=csv" in text
    assert page(getattr(w, who), f"{NOV}&part=nonsense", "/analytics/K7/export/"
                ).status_code == 400


def test_an_immature_cohort_is_flagged(world: World) -> None:
    w = world
    make_history(w)
    with clock.frozen(at(10)):  # the leads' 14 days are not over yet
        answer = page(w.head)
    leads = _k7(answer, "lead_sale")
    assert leads.immature and all(r["is_immature"] for r in leads.rows)
    assert 'class="badge immature"' in answer.content.decode()


def test_k7_shares_of_a_cohort_always_make_100() -> None:
    from fractions import Fraction

    from estafeta.web.pages.analytics import split_whole

    third = Fraction(1, 3)
    assert split_whole([third, third, third], 100) == [34, 33, 33]
    assert sum(split_whole([Fraction(1, 7), Fraction(2, 7), Fraction(4, 7)], 10000)) == 10000
    assert split_whole([None, None, None], 100) == [None, None, None]


def test_the_conversions_drill_down_to_visible_tickets(world: World) -> None:
    w = world
    tickets = make_history(w)
    base = f"{NOV}&part=call_meeting&column=cohort"
    # Helen counts Ann's call but may no longer open Ann's ticket
    answer = page(w.head, f"{base}&k_performer={w.ann.pk}", "/analytics/K7/tickets/")
    assert answer.status_code == 200 and list(answer.context["page"].object_list) == []
    answer = page(w.head, f"{base}&k_performer={w.bob.pk}", "/analytics/K7/tickets/")
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    answer = page(w.director, f"{NOV}&part=lead_sale&column=open", "/analytics/K7/tickets/")
    assert {t.pk for t in answer.context["page"].object_list} == {
        t.pk for t in tickets.values()}
    assert page(w.head, f"{NOV}&part=x&column=cohort", "/analytics/K7/tickets/"
                ).status_code == 400
    assert page(w.ann, f"{base}&seller={w.bob.pk}", "/analytics/K7/tickets/").status_code == 403


def test_the_conversions_export_neutralises_and_the_api_equals_the_page(world: World) -> None:
    w = world
    make_history(w)
    w.bob.first_name, w.bob.last_name = "=HYPERLINK(\"http://x\")", ""
    w.bob.save()
    csv = page(w.head, f"{NOV}&part=call_meeting&format=csv", "/analytics/K7/export/")
    assert csv.status_code == 200
    body = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "\r\n=HYPERLINK" not in body
    xlsx = load_workbook(io.BytesIO(page(w.head, f"{NOV}&part=call_meeting&format=xlsx",
                                         "/analytics/K7/export/").content)).active
    assert xlsx is not None
    values = list(xlsx.iter_rows(values_only=True))
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    card = page(w.head).context["conversions"]
    api = APIClient()
    api.force_authenticate(w.head)
    for table in card.tables:
        data = api.get(f"/api/v1/analytics/K7/?{NOV}&part={table.part}").json()
        assert data["figure"] == "K7" and data["part"] == table.part
        assert [[r[c] for c in data["columns"][:len(table.rows[0]["cells"])]]
                for r in data["rows"]] == [[v for _c, v in r["cells"]] for r in table.rows]
        assert data["total"]["cohort"] == table.total["cohort"]
    lead = api.get(f"/api/v1/analytics/K7/?{NOV}").json()
    assert lead["part"] == "lead_sale" and lead["total"]["open_share"] == "1.0000"
    assert api.get(f"/api/v1/analytics/K7/?{NOV}&part=x").status_code == 400
    assert api.get(f"/api/v1/analytics/K7/?{NOV}&team={w.other.pk}").status_code == 403


def test_the_report_sheet_names_are_unique_within_31_characters(world: World,
                                                               tmp_path: Path) -> None:
    make_history(world)
    out = tmp_path / "november.xlsx"
    call_command("report", "--period", "2026-11", "--format", "xlsx", "--out", str(out),
                 stdout=io.StringIO())
    names = load_workbook(out).sheetnames
    assert len({n[:31] for n in names}) == len(names)
    assert {"K7 email_call", "K7 call_meeting", "K7 lead_sale", "K7 win_rate",
            "K7 ratios", "K9 stuck", "K12 coverage", "K12 overdue", "K12 sla",
            "K12 escalations", "Growth channels", "Growth average_deal",
            "Growth lost_value", "Growth stages", "K5 week", "K5 month",
            "K5 quarter"} <= set(names)
    assert any(n.startswith("K6 ") for n in names)  # the whole company: with K6


# --- K9 time in stage ---------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "open_", "stuck"), [("ann", 0, 0), ("head", 1, 1),
                                                     ("director", 3, 3)])
def test_the_time_in_stage_card_per_role(world: World, who: str, open_: int, stuck: int) -> None:
    w = world
    make_history(w)  # three leads still in their first stage, past its SLA; Ann's now Olga's
    answer = page(getattr(w, who))
    assert answer.status_code == 200
    card = answer.context["timing"]
    assert sum(r["open"] for r in card.rows) == open_
    assert sum(r["closed"] for r in card.rows) == 0
    assert all(r["texts"]["median"] == "-" for r in card.rows)  # no stay ended
    assert len(card.stuck) == card.stuck_total == stuck
    text = answer.content.decode()
    assert 'id="K9"' in text and "docs/analytics-timing.md" in text
    assert "/analytics/K9/export/?period=2026-11&amp;part=stuck&amp;format=csv" in text


def test_the_time_in_stage_drills_down_to_visible_tickets(world: World) -> None:
    w = world
    tickets = make_history(w)
    stage = page(w.head).context["timing"].rows[0]["stage"]
    cell = f"{NOV}&k_pipeline=sales&k_stage={stage}&column=stays"
    for part in ("open", "stuck"):
        answer = page(w.head, f"{cell}&part={part}", "/analytics/K9/tickets/")
        assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
        answer = page(w.director, f"{cell}&part={part}", "/analytics/K9/tickets/")
        assert len(answer.context["page"].object_list) == 3
    text = page(w.head).content.decode()
    assert tickets["bob"].number in text and tickets["olga"].number not in text
    assert page(w.head, f"{cell}&part=x", "/analytics/K9/tickets/").status_code == 400
    assert page(w.ann, f"{cell}&seller={w.bob.pk}", "/analytics/K9/tickets/").status_code == 403


def test_the_time_in_stage_export_neutralises_and_the_api_equals_the_page(world: World) -> None:
    w = world
    make_history(w)
    w.bob.first_name, w.bob.last_name = "=HYPERLINK(\"http://x\")", ""
    w.bob.save()
    csv = page(w.head, f"{NOV}&part=stuck&format=csv", "/analytics/K9/export/")
    assert csv.status_code == 200
    body = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "\r\n=HYPERLINK" not in body
    assert body.count("\r\n") == 2  # the header and Bob's stuck ticket, not Olga's
    xlsx = load_workbook(io.BytesIO(page(w.director, f"{NOV}&format=xlsx",
                                         "/analytics/K9/export/").content)).active
    assert xlsx is not None
    assert list(xlsx.iter_rows(values_only=True))[1][5] == 3  # three open stays
    card = page(w.director).context["timing"]
    api = APIClient()
    api.force_authenticate(w.director)
    data = api.get(f"/api/v1/analytics/K9/?{NOV}").json()
    assert data["figure"] == "K9" and data["total"] == {"closed": 0, "open": 3, "stuck": 3}
    assert [(r["stage"], r["open"], r["stuck"], r["oldest_open_hours"]) for r in data["rows"]] \
        == [(r["stage"], r["open"], r["stuck"], r["texts"]["oldest_open"]) for r in card.rows]
    assert api.get(f"/api/v1/analytics/K9/?{NOV}&team=999999").status_code in (400, 403)


# --- K12 control --------------------------------------------------------------------------------


def _k12(answer: Any) -> dict[str, Any]:
    return {t.part: t for t in answer.context["control"].tables}


@pytest.mark.parametrize(("who", "tickets"), [("ann", 0), ("head", 1), ("director", 3)])
def test_the_control_card_per_role(world: World, who: str, tickets: int) -> None:
    w = world
    make_history(w)  # Ann's lead is Olga's now; every task is past due by the end of November
    answer = page(getattr(w, who))
    assert answer.status_code == 200
    parts = _k12(answer)
    assert list(parts) == ["coverage", "overdue", "sla", "escalations"]
    coverage = dict(parts["coverage"].total["cells"])
    assert coverage == {"open_tickets": tickets, "covered": tickets, "uncovered": 0}
    assert dict(parts["overdue"].total["cells"])["overdue"] == tickets
    assert parts["coverage"].total["rate_text"] == ("100%" if tickets else "-")
    assert not parts["escalations"].has_rate
    text = answer.content.decode()
    assert 'id="K12"' in text and "docs/analytics-timing.md" in text
    assert "/analytics/K12/export/?period=2026-11&amp;part=overdue&amp;format=csv" in text


def test_the_control_drills_down_to_visible_tickets(world: World) -> None:
    w = world
    tickets = make_history(w)
    answer = page(w.head, f"{NOV}&part=overdue&column=overdue", "/analytics/K12/tickets/")
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    answer = page(w.director, f"{NOV}&part=coverage&k_owner={w.olga.pk}&column=covered",
                  "/analytics/K12/tickets/")
    assert {t.pk for t in answer.context["page"].object_list} == {tickets["ann"].pk,
                                                                 tickets["olga"].pk}
    assert page(w.head, f"{NOV}&part=x", "/analytics/K12/tickets/").status_code == 400
    assert page(w.ann, f"{NOV}&part=sla&seller={w.bob.pk}", "/analytics/K12/tickets/"
                ).status_code == 403


def test_the_control_export_neutralises_and_the_api_equals_the_page(world: World) -> None:
    w = world
    make_history(w)
    w.bob.first_name, w.bob.last_name = "=HYPERLINK(\"http://x\")", ""
    w.bob.save()
    for part in ("coverage", "overdue"):
        csv = page(w.head, f"{NOV}&part={part}&format=csv", "/analytics/K12/export/")
        assert csv.status_code == 200
        body = csv.content.decode("utf-8-sig")
        assert "'=HYPERLINK" in body and "\r\n=HYPERLINK" not in body
    xlsx = load_workbook(io.BytesIO(page(w.director, f"{NOV}&part=coverage&format=xlsx",
                                         "/analytics/K12/export/").content)).active
    assert xlsx is not None
    values = list(xlsx.iter_rows(values_only=True))
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    assert values[-1][1:4] == (3, 3, 0)
    api = APIClient()
    for who in (w.head, w.director):  # the director's page: a row per team, the API per seller
        parts = _k12(page(who))
        api.force_authenticate(who)
        for part, table in parts.items():
            data = api.get(f"/api/v1/analytics/K12/?{NOV}&part={part}").json()
            assert data["figure"] == "K12" and data["part"] == part
            assert [data["total"][c] for c, _v in table.total["cells"]] == [
                v for _c, v in table.total["cells"]]
            if who == w.head or part in ("sla", "escalations"):
                assert [[r[c] for c, _v in table.total["cells"]] for r in data["rows"]] == [
                    [v for _c, v in r["cells"]] for r in table.rows]
    data = api.get(f"/api/v1/analytics/K12/?{NOV}").json()
    assert data["part"] == "coverage" and data["total"]["rate"] == "1.0000"
    assert api.get(f"/api/v1/analytics/K12/?{NOV}&part=x").status_code == 400


# --- growth points ------------------------------------------------------------------------------


def _lose_bobs(w: World, tickets: dict[str, Ticket]) -> None:
    from estafeta.tickets.services import ticket_close_lost

    with clock.frozen(at(5)):
        ticket_close_lost(actor=w.bob, ticket=tickets["bob"], reason="price")


def _growth(answer: Any) -> dict[str, Any]:
    return {t.part: t for t in answer.context["growth"].tables}


@pytest.mark.parametrize(("who", "leads", "lost"), [("ann", 1, 0), ("head", 2, 1),
                                                    ("director", 3, 1)])
def test_the_growth_card_per_role(world: World, who: str, leads: int, lost: int) -> None:
    w = world
    _lose_bobs(w, make_history(w))
    answer = page(getattr(w, who))
    assert answer.status_code == 200
    parts = _growth(answer)
    assert list(parts) == ["channels", "average_deal", "lost_value", "stages"]
    assert sum(int(r["cells"][1][0]) for r in parts["channels"].rows) == leads
    assert [r["cells"][2][0] for r in parts["channels"].rows] == ["0"] * len(
        parts["channels"].rows)  # nothing in October
    assert sum(int(r["cells"][3][0]) for r in parts["lost_value"].rows) == lost
    assert all(r["largest"] for r in parts["lost_value"].rows)  # the only loss is the largest
    text = answer.content.decode()
    assert 'id="growth"' in text and "/analytics/growth/export/?period=2026-11&amp;part=" \
        "lost_value&amp;format=csv" in text
    if lost:
        assert 'class="largest-loss"' in text


def test_the_growth_points_drill_down_to_visible_tickets(world: World) -> None:
    w = world
    tickets = make_history(w)
    _lose_bobs(w, tickets)
    link = _growth(page(w.head))["channels"].rows[0]["cells"][1][1]
    answer = signed(w.head).get(link)
    assert answer.status_code == 200  # Ann's lead is counted, only Bob's may be opened
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    link = _growth(page(w.director))["lost_value"].rows[0]["cells"][3][1]
    answer = signed(w.director).get(link)
    assert [t.pk for t in answer.context["page"].object_list] == [tickets["bob"].pk]
    link = _growth(page(w.head))["stages"].rows[0]["cells"][2][1]
    assert signed(w.head).get(link).context["page"].object_list[0].pk == tickets["bob"].pk
    assert page(w.head, f"{NOV}&part=average_deal", "/analytics/growth/tickets/"
                ).status_code == 400
    assert page(w.head, f"{NOV}&part=x", "/analytics/growth/tickets/").status_code == 400
    assert page(w.ann, f"{NOV}&seller={w.bob.pk}", "/analytics/growth/tickets/"
                ).status_code == 403


def test_the_growth_export_and_the_api_equal_the_page(world: World) -> None:
    w = world
    _lose_bobs(w, make_history(w))
    parts = _growth(page(w.director))
    for part in parts:
        xlsx = page(w.director, f"{NOV}&part={part}&format=xlsx", "/analytics/growth/export/")
        assert xlsx.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert len(values) == 1 + len(parts[part].rows)
        assert all(not (isinstance(v, str) and v.startswith("=")) for row in values
                   for v in row)
    api = APIClient()
    api.force_authenticate(w.director)
    data = api.get(f"/api/v1/analytics/growth/?{NOV}&part=channels").json()
    assert [[str(r[c]) for c in ("channel", "leads", "previous")] for r in data["rows"]] == [
        [t for t, _l in r["cells"][:3]] for r in parts["channels"].rows]
    lost = api.get(f"/api/v1/analytics/growth/?{NOV}&part=lost_value").json()
    assert lost["total"]["largest_loss"]["lost"] == 1
    assert api.get(f"/api/v1/analytics/growth/?{NOV}&part=x").status_code == 400
    api.force_authenticate(w.ann)
    assert api.get(f"/api/v1/analytics/growth/?{NOV}&seller={w.bob.pk}").status_code == 403


# --- K5 sales dynamics and K6 realisation -------------------------------------------------------


def _win_bobs(w: World, tickets: dict[str, Ticket]) -> None:
    from estafeta.targets.services import target_set
    from estafeta.tickets.services import checklist_item_complete, stage_close, ticket_close_won

    with clock.frozen(at(5)):
        t = tickets["bob"]
        w.fill_new(t)
        t = stage_close(actor=w.bob, ticket=t, stage="new", to="contract")
        checklist_item_complete(actor=w.bob, ticket=t, stage="contract", item="signed_on",
                                evidence="2026-11-05")
        ticket_close_won(actor=w.bob, ticket=t, stage="contract", amount="1000")
    target_set(w.director, kind="client", ref=tickets["bob"].client_id, start="2026-11-01",
               end="2026-11-30", amount="4000")


def _simple(answer: Any) -> dict[str, Any]:
    return {c.code: c for c in answer.context["simple_cards"] if c}


@pytest.mark.parametrize(("who", "won"), [("ann", 0), ("head", 1), ("director", 1)])
def test_the_sales_dynamics_card_per_role_and_bucket(world: World, who: str, won: int) -> None:
    w = world
    _win_bobs(w, make_history(w))
    user = getattr(w, who)
    for bucket, label in (("month", "2026-11"), ("quarter", "2026-Q4"), ("week", "2026-W45")):
        card = _simple(page(user, f"{NOV}&bucket={bucket}"))["K5"]
        assert card.choice == bucket
        rows = [dict(zip(("bucket", "segment", "currency", "won"),
                         [t for t, _l in r["cells"][:4]], strict=True)) for r in card.rows]
        assert sum(int(r["won"]) for r in rows if r["bucket"] == label) == won
    assert page(user, f"{NOV}&bucket=day").status_code == 400
    text = page(user).content.decode()
    assert 'id="K5"' in text and "docs/analytics-sales.md" in text
    assert "period=2026-11&amp;bucket=quarter#K5" in text


def test_the_realisation_card_is_for_directors_and_heads(world: World) -> None:
    w = world
    _win_bobs(w, make_history(w))
    card = _simple(page(w.director))["K6"]
    cells = [t for t, _l in card.rows[0]["cells"]]
    assert cells[5:8] == ["4000.00", "1000.00", "25.0"]
    link = card.rows[0]["cells"][6][1]
    answer = signed(w.director).get(link)
    assert answer.status_code == 200
    assert [t.pk for t in answer.context["page"].object_list] == [w_bob_ticket(w).pk]
    user = w.ann  # a seller; heads see their team's share (tests/test_k6_heads.py)
    assert "K6" not in _simple(page(user)) and 'id="K6"' not in page(user).content.decode()
    assert page(user, NOV, "/analytics/K6/export/").status_code == 403
    assert signed(user).get(link).status_code == 403
    api = APIClient()
    api.force_authenticate(w.ann)
    assert api.get(f"/api/v1/analytics/K6/?{NOV}").status_code == 403
    api.force_authenticate(w.director)
    data = api.get(f"/api/v1/analytics/K6/?{NOV}").json()
    assert data["rows"][0]["realisation"] == "25.0" and data["rows"][0]["potential"] == "4000.00"


def w_bob_ticket(w: World) -> Ticket:
    return Ticket.objects.get(owner=w.bob)


def test_k5_and_k6_exports_and_the_api_equal_the_page(world: World) -> None:
    w = world
    _win_bobs(w, make_history(w))
    card = _simple(page(w.head, f"{NOV}&bucket=week"))["K5"]
    api = APIClient()
    api.force_authenticate(w.head)
    data = api.get(f"/api/v1/analytics/K5/?{NOV}&bucket=week").json()
    assert data["bucket"] == "week"
    assert [[str(r[c]) if r[c] is not None else "-" for c in ("bucket", "currency", "won")]
            for r in data["rows"]] == [[r["cells"][0][0], r["cells"][2][0], r["cells"][3][0]]
                                       for r in card.rows]
    assert api.get(f"/api/v1/analytics/K5/?{NOV}&bucket=day").status_code == 400
    for path, user in (("/analytics/K5/export/", w.head), ("/analytics/K6/export/", w.director)):
        xlsx = page(user, f"{NOV}&format=xlsx", path)
        assert xlsx.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert len(values) > 1
        assert all(not (isinstance(v, str) and v.startswith("=")) for row in values
                   for v in row)
    assert page(w.head, f"{NOV}&format=csv&bucket=x", "/analytics/K5/export/").status_code == 400


# --- K11 energy beside the seller rows ----------------------------------------------------------


def _rate_bob(w: World) -> None:
    from datetime import date

    from estafeta.ratings.services import energy_rate

    energy_rate(w.head, w.bob, date(2026, 11, 9), 4)
    energy_rate(w.head, w.bob, date(2026, 11, 16), 2)


def test_energy_sparklines_sit_beside_the_seller_rows_never_in_them(world: World) -> None:
    w = world
    make_history(w)
    _rate_bob(w)
    plain = {c.code: c for c in page(w.director).context["cards"]}
    answer = page(w.head)
    cards = {c.code: c for c in answer.context["cards"]}
    assert [c for c in cards if cards[c].energy] == ["K1", "K4", "K10"]
    bob = next(r for r in cards["K1"].rows if r["performer"] == w.bob.pk)
    assert 'class="chart sparkline"' in bob["energy"] and "<polyline" in bob["energy"]
    ann = next(r for r in cards["K1"].rows if r["performer"] == w.ann.pk)
    assert "<polyline" not in ann["energy"]  # never rated: no line
    # the figures themselves are unchanged by the energy beside them
    assert cards["K1"].columns == plain["K1"].columns and "energy" not in cards["K1"].total
    assert [c for c, _v in bob["cells"]] == list(cards["K1"].columns)
    assert answer.content.decode().count('class="chart sparkline"') >= 2
    seller = page(w.ann)
    assert not any(c.energy for c in seller.context["cards"])
    assert "sparkline" not in seller.content.decode()


def test_energy_api_export_and_report(world: World, tmp_path: Path) -> None:
    w = world
    make_history(w)
    _rate_bob(w)
    api = APIClient()
    api.force_authenticate(w.head)
    data = api.get(f"/api/v1/analytics/K11/?{NOV}").json()
    assert data["figure"] == "K11" and len(data["columns"]) == 8
    bob = next(r for r in data["rows"] if r["seller"] == w.bob.pk)
    assert bob["2026-11-09"] == 4 and bob["2026-11-16"] == 2
    assert {r["seller"] for r in data["rows"]} == {w.ann.pk, w.bob.pk}
    api.force_authenticate(w.ann)
    assert api.get(f"/api/v1/analytics/K11/?{NOV}").status_code == 403
    assert page(w.ann, f"{NOV}&format=csv", "/analytics/K11/export/").status_code == 403
    w.bob.first_name, w.bob.last_name = "=HYPERLINK(\"http://x\")", ""
    w.bob.save()
    csv = page(w.head, f"{NOV}&format=csv", "/analytics/K11/export/")
    assert csv.status_code == 200
    body = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "\r\n=HYPERLINK" not in body
    out = tmp_path / "november.xlsx"
    call_command("report", "--period", "2026-11", "--format", "xlsx", "--out", str(out),
                 stdout=io.StringIO())
    assert "K11 energy" in load_workbook(out).sheetnames
