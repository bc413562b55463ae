"""The analytics dashboard (issue 5): /analytics/ with a period and a cut, a card per figure
with its table, a chart, a "how is this counted?" note, export links and drill-downs.

Sellers see their own figures, heads their teams with a row per seller, directors everything
(``analytics/access.py``); other cuts answer 403, bad periods and cuts 400. A cell's count links
to the tickets behind it, of which only those the person may see are listed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from estafeta.accounts.models import Team, User
from estafeta.analytics import charts, fast, rollup
from estafeta.analytics.access import (
    ANALYTICS_ROLES,
    PERSON_KEYS,
    ROWS_BY,
    check_k6,
    dashboard_rows,
    drill_down,
    read_cut,
    read_period,
)
from estafeta.analytics.control import (
    NEXT_STEP,
    STAGE_KEYS,
    average_deal_by_month,
    escalations,
    largest_loss,
    lead_volume_by_channel,
    lost_value_by_stage,
    next_task_coverage,
    overdue_rate,
    sla_compliance,
    stage_conversion,
)
from estafeta.analytics.conversions import (
    ANY_ORDER,
    STRICT,
    Funnel,
    activity_ratios,
    k7_call_to_meeting,
    k7_email_to_call,
    k7_lead_to_sale,
    k8_funnel,
    rate,
    rates,
    win_rate,
)
from estafeta.analytics.figures import FIGURES, Fact, Table, k10_outcomes
from estafeta.analytics.period import CUT_FIELDS, Cut, Period
from estafeta.analytics.sales import (
    BUCKETS,
    K5_KEYS,
    k5_dynamics,
    k6_realisation,
    people_of,
)
from estafeta.analytics.timing import KEYS as KEYS9
from estafeta.analytics.timing import TimeInStage, k9_time_in_stage
from estafeta.core import clock
from estafeta.core.export import export_response
from estafeta.domain.codes import MoveKind, Role
from estafeta.domain.errors import BadInput, EstafetaError, Forbidden
from estafeta.ratings.selectors import energy_trends, sellers_see_own_energy, weeks_back
from estafeta.tickets.models import Ticket

from ..errors import describe, status_for
from .common import error_page, paginate, query_without, roles_required

TITLES = {
    "K1": _l("Contacts made"),
    "K2": _l("Leads"),
    "K3": _l("Documents issued"),
    "K4": _l("Stage moves"),
    "K10": _l("Deals won and lost"),
    "K8": _l("Stage funnel"),
    "K7": _l("Conversions"),
    "K9": _l("Time in stage"),
    "K12": _l("Control"),
    "growth": _l("Growth points"),
    "K5": _l("Sales dynamics"),
    "K6": _l("Realisation of potential"),
    "K11": _l("Energy, last 8 weeks"),
}
HOW = {
    "K1": _l("Activities in the period for whoever performed them: emails sent, outgoing calls "
             "(attempted; connected ones are contacts), video calls and meetings held or "
             "missed. A contact is a sent email, a connected call or a held video call or "
             "meeting."),
    "K2": _l("Tickets created in the period, for the owner they had at creation. Tickets "
             "voided since are counted apart and never as leads."),
    "K3": _l("Quotes, invoices and contracts issued in the period, for the ticket's owner at "
             "the time of issue: how many, on how many tickets and for how much, by currency. "
             "Void tickets count nowhere."),
    "K4": _l("Stage moves in the period (forward, skips, back-moves, reopenings, closing into "
             "the lost stage), for the ticket's owner at the time of the move."),
    "K10": _l("Deals won (with revenue) and lost (with their value) in the period, for the "
              "owner at the time of the outcome, by currency. An outcome undone by a later "
              "reopening counts nowhere; void tickets never."),
    "K8": _l("Tickets that first entered their pipeline's first stage in the period (the "
             "cohort), followed to today: how many reached each later stage and the won stage. "
             "A stage counts once, at its first entry; the won stage only if the ticket is won "
             "now. Strict: a stage counts only if every earlier stage was reached first, in "
             "order; any order: a stage counts if it was ever reached. Lost tickets stay in the "
             "cohort; void tickets are never in it."),
    "K7": _l("Cohorts: a ticket joins the period of its first outbound email, its first "
             "connected outbound call or its creation, and is followed for 14 days from there. "
             "Email to call: a connected outbound call within 14 days; call to presentation: a "
             "video presentation or meeting held within 14 days; lead to sale: won, lost or "
             "still open at the end of the 14 days (the three shares make 100%). A cohort whose "
             "14 days have not all passed is marked immature: its figures can still grow. Win "
             "rate is won / (won + lost) among deals closed in the period. The activity ratios "
             "are counts divided by each other, not conversions. Void tickets are never counted."),
    "K9": _l("Business hours (the pipeline's calendar: nights, weekends, holidays and lunch "
             "do not count) spent in each open stage. Median and 80th percentile of the stays "
             "that ended in the period; stays still open at the end of the period (or now) are "
             "counted apart with the oldest age, never mixed into the percentiles. Stuck: open "
             "stays past their SLA due time or much older than usual. A paused stay counts "
             "whole. By the seller who ran the stage; void tickets never count."),
    "K12": _l("Next-task coverage: open tickets now, and how many have an open task for an "
              "active person (it should be all of them; the rest are listed). Overdue: tasks "
              "open at the end of the period (or now) and how many were past their due time "
              "then. SLA compliance: stays of stages with an SLA that ended in the period, and "
              "how many ended by their due time (a pause moves the due time on). Escalations "
              "raised and acknowledged in the period. Void tickets never count."),
    "K11": _l("Energy (K11): the latest energy rating a head or director gave the seller for "
              "each of the 8 weeks ending with the period, from 1 to 5; a gap is a week not "
              "rated. It is shown beside the seller's row and is never part of the figure."),
    "growth": _l("Leads by channel in the period against the previous period of the same "
                 "length; won deals, revenue and the average deal (revenue / won) for each of "
                 "the last six months, by currency; tickets lost in the period by the stage "
                 "they were lost in with their value (the stage losing the most is marked); and "
                 "per stage, of the tickets that left it in the period, the share that went on "
                 "to a later stage, against the previous period. Void tickets never count."),
    "K5": _l("Deals won, revenue and the average deal per week, month or quarter of the "
             "period, by the segment recorded on the win and by currency (currencies are never "
             "added), against the bucket before and the same bucket a year earlier. A change "
             "without a base (nothing before) is shown as -. Outcomes undone by a reopening "
             "count nowhere."),
    "K6": _l("For each client or territory target in force whose period lies within the "
             "period: won revenue in the target's period and currency against the target (the "
             "potential), and today's open weighted pipeline (amount × the current stage's "
             "probability) against it. Directors see the company; a head sees their team's "
             "share: wins whose owner at the time of the win is in the team and open tickets "
             "the team owns now, against the whole potential; a client is listed when the "
             "team won there in the target's period or has an open ticket there, a territory "
             "always. Only the seller and team filters apply."),
}
COLUMN_TITLES = {
    "contacts": _l("Contacts"), "emails_out": _l("Emails sent"),
    "calls_attempted": _l("Calls attempted"), "calls_connected": _l("Calls connected"),
    "videos_held": _l("Video calls held"), "meetings_held": _l("Meetings held"),
    "videos_missed": _l("Video calls missed"), "meetings_missed": _l("Meetings missed"),
    "leads": _l("Leads"), "void": _l("Void"), "documents": _l("Documents"),
    "tickets": _l("Tickets"), "amount": _l("Amount"), "moves": _l("Moves"), "won": _l("Won"),
    "revenue": _l("Revenue"), "lost": _l("Lost"), "lost_value": _l("Lost value"),
    "pipeline": _l("Pipeline"), "stage": _l("Stage"), "reached": _l("Reached"),
    "next_step": _l("To the next stage"), "cumulative": _l("Of the cohort"),
    "performer": _l("Seller"), "owner": _l("Seller"), "currency": _l("Currency"),
    "cohort": _l("Cohort"), "converted": _l("Converted"), "conversion": _l("Conversion"),
    "open": _l("Open"), "won_share": _l("Won, %"), "lost_share": _l("Lost, %"),
    "open_share": _l("Open, %"), "immature": _l("Immature"), "channel": _l("Channel"),
    "win_rate": _l("Win rate"), "calls_per_email_ratio": _l("Calls per email (ratio)"),
    "presentations_per_call_ratio": _l("Presentations per call (ratio)"),
    "closed": _l("Stays ended"), "median": _l("Median, h"), "p80": _l("80th percentile, h"),
    "oldest_open": _l("Oldest open, h"), "stuck": _l("Stuck"), "ticket": _l("Ticket"),
    "executor": _l("Seller"), "age": _l("In stage, h"), "why": _l("Why"), "team": _l("Team"),
}
COLUMN_TITLES.update({
    "open_tickets": _l("Open tickets"), "covered": _l("Covered"), "uncovered": _l("Uncovered"),
    "open_tasks": _l("Open tasks"), "overdue": _l("Overdue"), "within": _l("Within SLA"),
    "late": _l("Late"), "raised": _l("Raised"), "acknowledged": _l("Acknowledged"),
    "reason": _l("Reason"), "level": _l("Level"), "assignee": _l("Assignee"),
    "rate": pgettext_lazy("share column", "Rate"),
})
STUCK_WHY = {"sla": _l("past its SLA"), "age": _l("too long in the stage")}
NOT_CUT = ("period", "format", "page", "column", "q", "mode", "part", "bucket")
EXTRA_FIGURES = ("K8", "K7", "K9", "K12", "growth", "K5", "K6", "K11")
MODES = {STRICT: _l("Strict order"), ANY_ORDER: _l("Any order")}
KEY_PREFIX = "k_"


def column_title(name: str) -> str:
    return str(COLUMN_TITLES.get(name, name))


# --- what the page and the API show -----------------------------------------------------------


@dataclass
class Card:
    code: str
    title: str
    how: str
    table: Table
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    chart: str
    headers: list[str]
    energy: bool = False  # a K11 sparkline beside each seller row (never in the figures)
    energy_how: str = ""
    teams_how: str = ""  # rows are teams (a director's company view), how they add up


ENERGY_FIGURES = {"K1": "performer", "K4": "owner", "K10": "owner"}
ENERGY_WEEKS = 8


def energy_visible(user: User) -> bool:
    """Heads and directors see sellers' energy; a seller their own, when the company allows."""
    if user.role == Role.SELLER:
        return sellers_see_own_energy()
    return user.role in (Role.HEAD, Role.DIRECTOR)


def energy_weeks(period: Period) -> list[Any]:
    return weeks_back(ENERGY_WEEKS, min(period.last, clock.now().date()))


def energy_lines(period: Period, seller_ids: set[int]) -> dict[int, SafeString]:
    """K11: each seller's energy over the 8 weeks ending with the period, as a sparkline (one
    query whatever the number of sellers)."""
    trends = energy_trends(sorted(seller_ids), energy_weeks(period))
    title = str(TITLES["K11"])
    return {sid: charts.sparkline([w.score for w in weeks], title)
            for sid, weeks in trends.items()}


def person_names(ids: set[int]) -> dict[int, str]:
    names = {}
    for user in User.objects.filter(pk__in=sorted(ids)).only("pk", "first_name", "last_name",
                                                            "username"):
        names[user.pk] = user.get_full_name() or user.username
    return names


def key_label(key: str, value: Any, names: dict[int, str]) -> str:
    if value is None:
        return _("nobody") if key in PERSON_KEYS else "-"
    if key in PERSON_KEYS:
        return names.get(value, f"#{value}")
    return str(value)


TEAM_ROWS = _l("A row per team, as the team filter counts it (each person's team now; "
               "\"No team\" for nobody and people without a team); open a team for a row "
               "per seller. Lead → sale adds a team's channels up: choose a channel for its "
               "own. The exports keep a row per seller.")
TEAM_HOW = _l("Rows are teams: each seller's figures are added to the team the seller is in "
              "now, as the team filter counts them, so the team rows add up to the total "
              "(tickets with documents, K3, count once per seller, as on the seller rows). "
              "Figures of people without a team, or of nobody, are under \"No team\". Open a "
              "team for a row per seller.")


def by_teams(user: User, cut: Cut) -> bool:
    """A director with no seller or team chosen sees a row per team, not per seller (at 1,300
    sellers a row each makes a page nobody reads); they open a team for its sellers."""
    return user.role == Role.DIRECTOR and cut.seller is None and cut.team is None


def team_rows(table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]],
              teams: Teams) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The seller rows (by ``keys``, a person first) added up per team (the person's team now,
    None for nobody and people without a team), keeping the other keys."""
    rest = keys[1:]
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        person = row[keys[0]]
        team = teams.team_of.get(person) if person else None
        head = (team, *(row[k] for k in rest))
        slot = groups.get(head)
        if slot is None:
            slot = groups[head] = {"team": team, **{k: row[k] for k in rest},
                                   **dict.fromkeys(table.columns, 0)}
        for column in table.columns:
            slot[column] = slot[column] + row[column]
    return ("team", *rest), teams.ordered(list(groups.values()), "team", rest)


class Teams:
    """The director's company view of the per-person tables (K7, K12): each person's team
    now (one query for everybody, as the team cut counts them) and the team names; a team's
    label opens the dashboard for that team (``query``: the page's query string)."""

    def __init__(self, query: str = "") -> None:
        self.team_of: dict[int, int | None] = dict(User.objects.values_list("pk", "team_id"))
        self.names: dict[int, str] = dict(Team.objects.values_list("pk", "name"))
        self.page = reverse("web:analytics") + "?" + (f"{query}&" if query else "")

    def view(self, table: Table, person: str) -> Table:
        """``table`` with each ``person`` key holding the person's team (None: nobody, or a
        person without a team): grouped by it, the rows add the team's people up."""
        return replace(table, facts=tuple(
            Fact(f.ticket, {**f.keys, person: self.team_of.get(f.keys[person])
                            if f.keys[person] else None}, f.values) for f in table.facts))

    def source(self, figure: Any, person: str) -> Any:
        return lambda period, cut: self.view(figure(period, cut), person)

    def label(self, team: int | None) -> str:
        return self.names.get(team, f"#{team}") if team else _("No team")

    def ordered(self, rows: list[dict[str, Any]], key: str, rest: tuple[str, ...] = ()
                ) -> list[dict[str, Any]]:
        """Team rows (the team under ``key``) by team name, "No team" last, then ``rest``."""
        return sorted(rows, key=lambda r: (
            r[key] is None, self.names.get(r[key], "").casefold() if r[key] else "",
            r[key] or 0, *((r[k] is None, r[k] if r[k] is not None else "") for k in rest)))

    def link(self, team: int | None) -> str:
        return self.page + urlencode({"team": team}) if team else ""


def labelled(row: dict[str, Any], keys: tuple[str, ...], names: dict[int, str],
             teams: Teams | None, part: str) -> None:
    """A row's labels (``labels``: texts; ``label_links``: (text, link) for the page) and its
    drill-down query (``cell``). Team rows (``teams``) name the team, link to its dashboard and
    drill down through the team cut ("No team" has none)."""
    person = next((k for k in keys if k in PEOPLE), None)
    if teams is None or person is None:
        row["labels"] = [person_label(k, row[k], names) for k in keys]
        row["label_links"] = [(text, "") for text in row["labels"]]
        row["cell"] = urlencode({"part": part, **{
            f"{KEY_PREFIX}{k}": "" if row[k] is None else row[k] for k in keys}})
        return
    team = row[person]
    row["labels"] = [teams.label(team) if k == person else person_label(k, row[k], names)
                     for k in keys]
    row["label_links"] = [(text, teams.link(team) if k == person else "")
                          for k, text in zip(keys, row["labels"], strict=True)]
    row["cell"] = urlencode({"team": team, "part": part, **{
        f"{KEY_PREFIX}{k}": "" if row[k] is None else row[k] for k in keys if k != person}}
    ) if team else ""


CHART_ROWS = 30  # bars a chart draws; a table lists every row


def largest(rows: list[dict[str, Any]], column: str, title: str
            ) -> tuple[list[dict[str, Any]], str]:
    """The rows a chart draws: all of them, or the ``CHART_ROWS`` with the most in ``column``
    (in the table's order), the title saying so."""
    if len(rows) <= CHART_ROWS:
        return rows, title
    kept = {id(r) for r in sorted(rows, key=lambda r: r[column] or 0, reverse=True)
            [:CHART_ROWS]}
    return [r for r in rows if id(r) in kept], _("%(title)s (the %(shown)d largest of "
                                                 "%(all)d rows)") % {
        "title": title, "shown": CHART_ROWS, "all": len(rows)}


PER_SELLER = _l("A row per seller of this team")


def _text(value: Any) -> str:
    """A value as the template would show it: localised (numbers), escaped. A count is its
    digits unless thousands are grouped (the localising costs more than the rest of a row)."""
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)
    return html.escape(str(formats.localize(value)))


def row_html(row: dict[str, Any], tickets: str, query: str, tail: str = "",
             css: str = "") -> SafeString:
    """One row of a long dashboard table as HTML (the template's loops cost more than the
    figures at a thousand rows): the labels (``label_links``: a team's opens its dashboard),
    the numbers (``cells``), each count linking to its tickets (``tickets?query&cell``), then
    ``tail`` (HTML already). Every text is escaped."""
    title = html.escape(str(PER_SELLER))
    out = [f'<tr class="{css}">' if css else "<tr>"]
    for text, link in row["label_links"]:
        out.append(f'<td><a href="{html.escape(link)}" title="{title}">{_text(text)}</a></td>'
                   if link else f"<td>{_text(text)}</td>")
    cell = row["cell"]
    base = html.escape(f"{tickets}?{query}&{cell}&column=") if cell else ""
    for column, value in row["cells"]:
        out.append(f'<td class="num"><a href="{base}{html.escape(column)}">{_text(value)}</a>'
                   "</td>" if value and cell else f'<td class="num">{_text(value)}</td>')
    out.append(tail)
    out.append("</tr>")
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped


def build_cards(period: Period, cut: Cut, energy: bool = False,
                teams: Teams | None = None, query: str = "") -> list[Card]:
    """The per-person cards (K1-K4, K10): a row per person, or with ``teams`` a row per team
    whose label opens the dashboard for that team (``query``: the page's, for the links)."""
    tables = [rollup.table(code, period, cut, ROWS_BY[code]) for code in FIGURES]
    people: set[int] = set()
    built = []
    for table in tables:
        keys, rows, total = dashboard_rows(table)
        people |= {row[k] for row in rows for k in keys if k in PERSON_KEYS and row[k]}
        built.append((table, keys, rows, total))
    if teams is not None:
        energy = False
        built = [(table, *team_rows(table, keys, rows, teams), total)
                 for table, keys, rows, total in built]
        people = set()
    names = person_names(people)
    sellers = {row[ENERGY_FIGURES[t.figure]] for t, _k, rows, _tot in built
               if t.figure in ENERGY_FIGURES for row in rows
               if row[ENERGY_FIGURES[t.figure]]} if energy else set()
    lines = energy_lines(period, sellers) if sellers else {}
    cards = []
    for table, keys, rows, total in built:
        tickets = reverse("web:analytics_tickets", args=[table.figure])
        with_energy = energy and table.figure in ENERGY_FIGURES
        for row in rows:
            if with_energy:
                row["energy"] = lines.get(row[ENERGY_FIGURES[table.figure]], "")
        for row in rows:
            if teams is not None:
                team = row["team"]
                row["labels"] = [teams.label(team),
                                 *(key_label(k, row[k], names) for k in keys[1:])]
                row["team_link"] = teams.link(team)
                row["label_links"] = [(row["labels"][0], row["team_link"]),
                                      *((text, "") for text in row["labels"][1:])]
                # a team's cell drills down through the team cut; "no team" has no cut
                row["cell"] = urlencode({"team": team, **{
                    f"{KEY_PREFIX}{k}": "" if row[k] is None else row[k] for k in keys[1:]}}
                ) if team else ""
            else:
                row["labels"] = [key_label(k, row[k], names) for k in keys]
                row["label_links"] = [(text, "") for text in row["labels"]]
                row["cell"] = urlencode({f"{KEY_PREFIX}{k}": "" if row[k] is None else row[k]
                                         for k in keys})
            row["cells"] = [(c, row[c]) for c in table.columns]
            row["html"] = row_html(row, tickets, query, format_html(
                '<td class="energy">{}</td>', row.get("energy", "")) if with_energy else "")
        first = table.columns[0]
        shown, title = largest(rows, first, f"{TITLES[table.figure]}: {column_title(first)}")
        chart = charts.bars([(" ".join(r["labels"]), r[first]) for r in shown], title)
        cards.append(Card(table.figure, str(TITLES[table.figure]), str(HOW[table.figure]),
                          table, keys, table.columns, rows, total, chart,
                          [column_title(k) for k in (*keys, *table.columns)], with_energy,
                          str(HOW["K11"]) if with_energy else "",
                          str(TEAM_HOW) if teams is not None else ""))
    return cards


def funnel_of(cards: list[Card]) -> str:
    """Contacts made, leads, documents issued and deals won in the period, side by side."""
    totals = {card.code: card.total for card in cards}
    steps = [(str(TITLES["K1"]), totals["K1"]["contacts"]),
             (str(TITLES["K2"]), totals["K2"]["leads"]),
             (str(TITLES["K3"]), totals["K3"]["tickets"]),
             (column_title("won"), totals["K10"]["won"])]
    return charts.funnel(steps, _("From contacts to deals"))


def trend_of(period: Period, cut: Cut, count: int = 6) -> str:
    """Deals won in this period and the ``count - 1`` periods of the same kind before it."""
    periods = [period]
    while len(periods) < count:
        periods.insert(0, periods[0].previous())
    points = [(p.label, rollup.table("K10", p, cut, ()).total("won")) for p in periods]
    return charts.line(points, _("Deals won, period by period"))


def export_rows(card_table: Table, names: dict[int, str] | None = None
                ) -> tuple[list[str], list[list[Any]]]:
    keys, rows, total = dashboard_rows(card_table)
    if names is None:
        names = person_names({row[k] for row in rows for k in keys
                              if k in PERSON_KEYS and row[k]})
    headers = [column_title(k) for k in keys] + [column_title(c) for c in card_table.columns]
    body = [[key_label(k, row[k], names) for k in keys] + [row[c] for c in card_table.columns]
            for row in rows]
    body.append([_("Total")] + [""] * (len(keys) - 1) + [total[c] for c in card_table.columns])
    return headers, body


# --- K8 stage funnel ------------------------------------------------------------------------


def read_mode(data: Any) -> str:
    """``mode`` of the K8 funnel: ``strict`` (the default) or ``any``."""
    mode = data.get("mode") or STRICT
    if mode not in MODES:
        raise BadInput(f"the funnel mode is strict or any, not {mode!r}", code="bad_cut",
                       field="mode", value=mode)
    return str(mode)


def percent(share: Any) -> str:
    """A share (an exact fraction, None when nothing was divided) as a percentage."""
    return "-" if share is None else f"{round(100 * float(share))}%"


def funnel_rows(funnel: Funnel) -> list[dict[str, Any]]:
    """A row per pipeline and step, in pipeline order: reached, share to the next step and
    share of the cohort (exact fractions, None when nothing is divided)."""
    return [{"pipeline": pipeline, **step} for pipeline in sorted(funnel.stages)
            for step in funnel.steps(pipeline)]


@dataclass
class FunnelCard:
    code: str
    title: str
    how: str
    mode: str
    modes: list[tuple[str, str]]
    headers: list[str]
    rows: list[dict[str, Any]]
    charts: list[SafeString]


def funnel_card(period: Period, cut: Cut, mode: str) -> FunnelCard:
    funnel = fast.k8_funnel(period, cut, mode=mode)
    rows = funnel_rows(funnel)
    for row in rows:
        row["cell"] = urlencode({f"{KEY_PREFIX}pipeline": row["pipeline"],
                                 f"{KEY_PREFIX}stage": row["stage"], "mode": mode})
        row["next_text"], row["cumulative_text"] = (percent(row["next_step"]),
                                                    percent(row["cumulative"]))
    drawn = [charts.funnel([(r["stage"], r["reached"]) for r in rows if r["pipeline"] == p],
                           f"{TITLES['K8']}: {p}")
             + charts.percent_bars([(r["stage"], r["next_step"], False) for r in rows
                                    if r["pipeline"] == p and r["next_step"] is not None],
                                   f"{p}: {column_title('next_step')}")
             for p in sorted(funnel.stages)]
    return FunnelCard("K8", str(TITLES["K8"]), str(HOW["K8"]), mode,
                      [(m, str(t)) for m, t in MODES.items()],
                      [column_title(c) for c in ("pipeline", "stage", "reached", "next_step",
                                                 "cumulative")], rows, drawn)


def funnel_export(period: Period, cut: Cut, mode: str) -> tuple[list[str], list[list[Any]]]:
    rows = funnel_rows(fast.k8_funnel(period, cut, mode=mode))
    headers = [column_title(c) for c in ("pipeline", "stage", "reached", "next_step",
                                          "cumulative")]
    return headers, [[r["pipeline"], r["stage"], r["reached"], percent(r["next_step"]),
                      percent(r["cumulative"])] for r in rows]


def figure_table(code: str, period: Period, cut: Cut, data: Any) -> Table:
    """The table behind a figure's cells (its facts answer the drill-down)."""
    if code == "K8":
        return k8_funnel(period, cut, mode=read_mode(data)).table
    if code == "K7":
        return K7_PARTS[read_part(data)][0](period, cut)
    if code == "K9":
        return k9_tables(period, cut)[1][read_k9_part(data)]
    if code == "K12":
        return k12_rows(period, cut, read_k12_part(data))[0]
    if code == "K11":
        raise BadInput("energy ratings are not about tickets", code="bad_cut",
                       field="figure", value="K11")
    if code == "K5":
        raise BadInput("K5 drills down through K10 (each bucket's won deals)", code="bad_cut",
                       field="figure", value="K5")
    if code == "K6":
        try:
            target = int(data.get(f"{KEY_PREFIX}target") or "")
        except ValueError:
            raise BadInput("K6 drills down by target", code="bad_cut", field="target",
                           value=str(data.get(f"{KEY_PREFIX}target"))) from None
        return k6_won_table(period, cut, target)
    if code == "growth":
        table = growth_rows(period, cut, read_growth_part(data))[1]
        if table is None:
            raise BadInput("the average deal drills down through K10", code="bad_cut",
                           field="part", value="average_deal")
        return table
    return FIGURES[_figure(code)](period, cut)


# --- K7 conversions ---------------------------------------------------------------------------

# part -> (cohort figure, row keys, count columns, share columns, title)
K7_PARTS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...], tuple[str, ...], Any]] = {
    "email_call": (k7_email_to_call, ("performer",), ("cohort", "converted"), ("conversion",),
                   _l("First email → connected call")),
    "call_meeting": (k7_call_to_meeting, ("performer",), ("cohort", "converted"),
                     ("conversion",), _l("First connected call → presentation or meeting")),
    "lead_sale": (k7_lead_to_sale, ("channel", "owner"), ("cohort", "won", "lost", "open"),
                  ("won_share", "lost_share", "open_share"), _l("Lead → sale")),
}
DEFAULT_PART = "lead_sale"


def read_part(data: Any) -> str:
    """``part`` of K7: email_call, call_meeting or lead_sale (the default)."""
    part = data.get("part") or DEFAULT_PART
    if part not in K7_PARTS:
        raise BadInput(f"the K7 part is one of {', '.join(K7_PARTS)}, not {part!r}",
                       code="bad_cut", field="part", value=part)
    return str(part)


def split_whole(shares: list[Any], whole: int) -> list[Any]:
    """Shares of one cohort (summing to 1) as integers summing to ``whole`` (largest remainder),
    so the percentages shown add up to exactly 100; None stays None."""
    if any(s is None for s in shares):
        return [None] * len(shares)
    scaled = [s * whole for s in shares]
    floors = [int(x) for x in scaled]
    left = whole - sum(floors)
    order = sorted(range(len(scaled)), key=lambda i: scaled[i] - floors[i], reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return list(floors)


def k7_rows(period: Period, cut: Cut, part: str, fast_path: bool = True,
            teams: Teams | None = None
            ) -> tuple[Table, tuple[str, ...], list[dict[str, Any]], dict[str, Any]]:
    """One K7 cohort table: rows by its keys with counts, shares (exact fractions) and
    ``is_immature``, and the total row (``fast_path``: from the per-ticket summaries;
    ``teams``: a row per team instead of per person, shares worked out from the team's
    counts)."""
    figure, keys, counts, shares, _title = K7_PARTS[part]
    if teams is not None:  # a row per team: across channels (a channel filter splits them)
        keys = tuple(k for k in keys if k in PEOPLE)
    table = (fast.k7_part(part, period, cut, channels=teams is None) if fast_path
             else figure(period, cut))
    if teams is None:
        rows = rates(table, *keys)
    else:
        person = next(k for k in keys if k in PEOPLE)
        table = teams.view(table, person)
        rows = teams.ordered(rates(table, *keys), person,
                             tuple(k for k in keys if k != person))
    total = (rates(table) or [{**dict.fromkeys((*counts, "immature"), 0), "is_immature": False,
                               **dict.fromkeys(shares)}])[0]
    return table, keys, rows, total


def share_texts(part: str, row: dict[str, Any]) -> list[str]:
    shares = K7_PARTS[part][3]
    if len(shares) == 1:
        return [percent(row[shares[0]])]
    return ["-" if p is None else f"{p}%"
            for p in split_whole([row[s] for s in shares], 100)]


def share_decimals(part: str, row: dict[str, Any]) -> dict[str, str | None]:
    """The shares as decimal strings with 4 places (those of lead→sale sum to exactly 1)."""
    shares = K7_PARTS[part][3]
    if len(shares) == 1:
        value = row[shares[0]]
        return {shares[0]: None if value is None else
                str(round(Decimal(value.numerator) / Decimal(value.denominator), 4))}
    parts = split_whole([row[s] for s in shares], 10000)
    four = Decimal("0.0001")
    return {s: None if p is None else str((Decimal(p) / 10000).quantize(four))
            for s, p in zip(shares, parts, strict=True)}


@dataclass
class K7Table:
    part: str
    title: str
    headers: list[str]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    immature: bool


@dataclass
class K7Card:
    code: str
    title: str
    how: str
    tables: list[K7Table]
    win_headers: list[str]
    win_rows: list[dict[str, Any]]
    ratio_headers: list[str]
    ratio_rows: list[dict[str, Any]]
    chart: SafeString
    teams_how: str = ""


def k7_card(period: Period, cut: Cut, teams: Teams | None = None, query: str = ""
            ) -> K7Card:
    """K7's cohort tables, win rate and activity ratios (``teams``: a row per team;
    ``query``: the page's without the part, for the links)."""
    built = [(part, *k7_rows(period, cut, part, teams=teams)) for part in K7_PARTS]
    wins_of, ratios_of = rollup.source("K10", ("owner",)), rollup.source("K1", ("performer",))
    if teams is not None:
        wins_of, ratios_of = teams.source(wins_of, "owner"), teams.source(ratios_of,
                                                                           "performer")
    wins = win_rate(period, cut, "owner", figure=wins_of)
    ratios = activity_ratios(period, cut, figure=ratios_of)
    people: set[int] = set()
    if teams is None:
        people = {row[k] for _p, _t, keys, rows, _tot in built for row in rows for k in keys
                  if k in PERSON_KEYS and row[k]}
        people |= {r["owner"] for r in wins if r["owner"]} | {r["performer"] for r in ratios
                                                              if r["performer"]}
    names = person_names(people)
    tables = []
    for part, _table, keys, rows, total in built:
        counts, title = K7_PARTS[part][2], K7_PARTS[part][4]
        tickets = reverse("web:analytics_tickets", args=["K7"])
        immature = format_html('<td><span class="badge immature">{}</span></td>',
                               _("immature"))
        for row in rows:
            labelled(row, keys, names, teams, part)
            row["cells"] = [(c, row[c]) for c in counts]
            row["shares"] = share_texts(part, row)
            row["html"] = row_html(row, tickets, query, "".join(
                f'<td class="num">{_text(t)}</td>' for t in row["shares"])
                + (immature if row["is_immature"] else "<td></td>"),
                "immature" if row["is_immature"] else "")
        total["cells"] = [(c, total[c]) for c in counts]
        total["shares"] = share_texts(part, total)
        shown = tuple("team" if teams is not None and k in PEOPLE else k for k in keys)
        tables.append(K7Table(part, str(title), [column_title(c) for c in (
            *shown, *counts, *K7_PARTS[part][3], "immature")], rows, total,
            bool(total["is_immature"])))
    for row in wins:
        row["label"] = (teams.label(row["owner"]) if teams is not None
                        else key_label("owner", row["owner"], names))
        row["text"] = percent(row["win_rate"])
    for row in ratios:
        row["label"] = (teams.label(row["performer"]) if teams is not None
                        else key_label("performer", row["performer"], names))
        row["texts"] = [ratio_text(row["calls_per_email_ratio"]),
                        ratio_text(row["presentations_per_call_ratio"])]
    chart = k7_chart(tables, wins)
    person = (str(column_title("team")),) * 2 if teams is not None else (
        column_title("owner"), column_title("performer"))
    return K7Card("K7", str(TITLES["K7"]), str(HOW["K7"]), tables,
                  [person[0], *(column_title(c) for c in ("won", "lost", "win_rate"))], wins,
                  [person[1], *(column_title(c) for c in (
                      "calls_per_email_ratio", "presentations_per_call_ratio"))], ratios,
                  chart, str(TEAM_ROWS) if teams is not None else "")


def k7_chart(tables: list[K7Table], wins: list[dict[str, Any]]) -> SafeString:
    """Conversion bars on a 0-100% scale (email→call, call→presentation, lead→sale won and
    the win rate, immature ones marked) and the lead→sale split per row as 100% bars."""
    by_part = {t.part: t for t in tables}
    items: list[charts.Share] = []
    for t in tables:
        share = t.total.get("conversion", t.total.get("won_share"))
        items.append((t.title, share, t.immature))
    won = sum(r["won"] for r in wins)
    lost = sum(r["lost"] for r in wins)
    items.append((str(column_title("win_rate")), rate(won, won + lost), False))
    chart = charts.percent_bars(items, _("Conversions, % of the cohort"))
    lead = by_part.get("lead_sale")
    if lead is not None and lead.rows:
        parts = K7_PARTS["lead_sale"][3]
        shown, title = largest(lead.rows, "cohort", str(K7_PARTS["lead_sale"][4]))
        chart += charts.stacked(
            [(" ".join(str(x) for x in r["labels"]), [r[p] for p in parts]) for r in shown],
            [str(column_title(p.removesuffix("_share"))) for p in parts], title)
    return chart


def ratio_text(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def k7_export(period: Period, cut: Cut, part: str) -> tuple[list[str], list[list[Any]]]:
    _table, keys, rows, total = k7_rows(period, cut, part)
    counts, shares = K7_PARTS[part][2], K7_PARTS[part][3]
    names = person_names({row[k] for row in rows for k in keys if k in PERSON_KEYS and row[k]})
    headers = [column_title(c) for c in (*keys, *counts, *shares, "immature")]
    flag = str(_("immature"))
    body = [[key_label(k, row[k], names) for k in keys] + [row[c] for c in counts]
            + share_texts(part, row) + [flag if row["is_immature"] else ""] for row in rows]
    body.append([_("Total")] + [""] * (len(keys) - 1) + [total[c] for c in counts]
                + share_texts(part, total) + [flag if total["is_immature"] else ""])
    return headers, body


def k7_extra_export(period: Period, cut: Cut, which: str) -> tuple[list[str], list[list[Any]]]:
    """K7 win rate (``win_rate``) or raw activity ratios (``ratios``) for the report."""
    if which == "win_rate":
        wins = win_rate(period, cut, "owner", figure=rollup.source("K10", ("owner",)))
        names = person_names({r["owner"] for r in wins if r["owner"]})
        return ([column_title(c) for c in ("owner", "won", "lost", "win_rate")],
                [[key_label("owner", r["owner"], names), r["won"], r["lost"],
                  percent(r["win_rate"])] for r in wins])
    ratios = activity_ratios(period, cut, figure=rollup.source("K1", ("performer",)))
    names = person_names({r["performer"] for r in ratios if r["performer"]})
    return ([column_title(c) for c in ("performer", "calls_per_email_ratio",
                                       "presentations_per_call_ratio")],
            [[key_label("performer", r["performer"], names),
              ratio_text(r["calls_per_email_ratio"]),
              ratio_text(r["presentations_per_call_ratio"])] for r in ratios])


# --- K9 time in stage -------------------------------------------------------------------------

K9_PARTS = ("closed", "open", "stuck")
K9_COLUMNS = ("closed", "median", "p80", "open", "oldest_open", "stuck")


def hours(value: timedelta | None) -> str:
    """Business time as hours with one decimal ("-" when there is none)."""
    return "-" if value is None else f"{value.total_seconds() / 3600:.1f}"


def k9_tables(period: Period, cut: Cut) -> tuple[TimeInStage, dict[str, Table]]:
    """K9 and its drill-down tables: closed stays, open stays and stuck stays (a fact each)."""
    timing = k9_time_in_stage(period, cut)
    stuck = Table("K9 stuck", "tickets", period, cut, KEYS9, ("stays",), tuple(
        Fact(s.ticket, {"pipeline": s.pipeline, "stage": s.stage, "executor": s.executor},
             {"stays": 1}) for s in timing.stuck))
    return timing, {"closed": timing.closed, "open": timing.open, "stuck": stuck}


def read_k9_part(data: Any) -> str:
    part = data.get("part") or "closed"
    if part not in K9_PARTS:
        raise BadInput(f"the K9 part is one of {', '.join(K9_PARTS)}, not {part!r}",
                       code="bad_cut", field="part", value=part)
    return str(part)


@dataclass
class K9Card:
    code: str
    title: str
    how: str
    headers: list[str]
    rows: list[dict[str, Any]]
    stuck_headers: list[str]
    stuck: list[dict[str, Any]]
    stuck_total: int
    chart: SafeString


def k9_rows(timing: fast.StageTiming) -> list[dict[str, Any]]:
    rows = timing.rows
    for row in rows:
        row["texts"] = {c: hours(row[c]) for c in ("median", "p80", "oldest_open")}
        row["cell"] = urlencode({f"{KEY_PREFIX}pipeline": row["pipeline"],
                                 f"{KEY_PREFIX}stage": row["stage"]})
    return rows


def _h(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def k9_chart(rows: list[dict[str, Any]]) -> SafeString:
    """The time-in-stage distribution: per stage the spread of the closed stays (shortest to
    longest, the median-to-p80 box) and the oldest open stay apart, in business hours."""
    items = []
    for r in rows:
        items.append(charts.Spread(f"{r['pipeline']} {r['stage']}", r["closed"],
                                   _h(r["shortest"]), _h(r["median"]), _h(r["p80"]),
                                   _h(r["longest"]), _h(r["oldest_open"])))
    return charts.spreads(items, _("Time in stage, business hours: spread of the stays"),
                          _("hours"), _("median"), _("80th percentile"),
                          _("oldest open stay"))


def k9_card(user: User, period: Period, cut: Cut) -> K9Card:
    timing = fast.k9_timing(period, cut)
    rows = k9_rows(timing)
    visible = dict(drill_down(user, {s.ticket for s in timing.stuck}).values_list("pk",
                                                                                  "number"))
    shown = [s for s in timing.stuck if s.ticket in visible]
    names = person_names({s.executor for s in shown if s.executor})
    stuck = [{"ticket": s.ticket, "number": visible[s.ticket], "pipeline": s.pipeline,
              "stage": s.stage, "executor": key_label("owner", s.executor, names),
              "age": hours(s.age), "why": str(STUCK_WHY[s.why])} for s in shown]
    chart = k9_chart(rows)
    return K9Card("K9", str(TITLES["K9"]), str(HOW["K9"]),
                  [column_title(c) for c in ("pipeline", "stage", *K9_COLUMNS)], rows,
                  [column_title(c) for c in ("ticket", "pipeline", "stage", "executor", "age",
                                             "why")], stuck, timing.stuck_total, chart)


def k9_export(period: Period, cut: Cut) -> tuple[list[str], list[list[Any]]]:
    rows = k9_rows(fast.k9_timing(period, cut))
    return ([column_title(c) for c in ("pipeline", "stage", *K9_COLUMNS)],
            [[r["pipeline"], r["stage"], r["closed"], r["texts"]["median"], r["texts"]["p80"],
              r["open"], r["texts"]["oldest_open"], r["stuck"]] for r in rows])


def k9_stuck_export(user: User | None, period: Period, cut: Cut
                    ) -> tuple[list[str], list[list[Any]]]:
    """The stuck stays (only the tickets ``user`` may see; all of them for the report)."""
    timing = k9_tables(period, cut)[0]
    stuck = list(timing.stuck)
    if user is not None:
        visible = set(drill_down(user, {s.ticket for s in stuck}).values_list("pk", flat=True))
        stuck = [s for s in stuck if s.ticket in visible]
    numbers = dict(Ticket.objects.filter(pk__in=sorted({s.ticket for s in stuck}))
                   .values_list("pk", "number"))
    names = person_names({s.executor for s in stuck if s.executor})
    return ([column_title(c) for c in ("ticket", "pipeline", "stage", "executor", "age", "why")],
            [[numbers.get(s.ticket, s.ticket), s.pipeline, s.stage,
              key_label("owner", s.executor, names), hours(s.age), str(STUCK_WHY[s.why])]
             for s in stuck])


# --- K12 control: a card of several tables ----------------------------------------------------

PEOPLE = PERSON_KEYS | {"assignee", "executor"}


def person_label(key: str, value: Any, names: dict[int, str]) -> str:
    return key_label("owner" if key in PEOPLE else key, value, names)


def _moment_of(period: Period) -> Any:
    return min(clock.now(), period.end)


# part -> (the table for a period and cut, row keys, (rate numerator, denominator), title)
K12_PARTS: dict[str, tuple[Any, tuple[str, ...], tuple[str, str] | None, Any]] = {
    "coverage": (lambda period, cut: next_task_coverage(cut), ("owner",),
                 ("covered", "open_tickets"), _l("Next-task coverage (now)")),
    "overdue": (lambda period, cut: overdue_rate(_moment_of(period), cut), ("assignee",),
                ("overdue", "open_tasks"), _l("Overdue tasks (end of the period, or now)")),
    "sla": (sla_compliance, ("pipeline", "stage"), ("within", "closed"),
            _l("SLA compliance")),
    "escalations": (escalations, ("reason", "level"), None, _l("Escalations")),
}


FAST_K12: dict[str, Any] = {
    "coverage": lambda period, cut: fast.next_task_coverage(cut),
    "overdue": lambda period, cut: fast.overdue_rate(_moment_of(period), cut),
    "sla": fast.sla_compliance,
    "escalations": lambda period, cut: rollup.table("ESC", period, cut, ("reason", "level")),
}


def read_k12_part(data: Any) -> str:
    part = data.get("part") or "coverage"
    if part not in K12_PARTS:
        raise BadInput(f"the K12 part is one of {', '.join(K12_PARTS)}, not {part!r}",
                       code="bad_cut", field="part", value=part)
    return str(part)


def k12_rows(period: Period, cut: Cut, part: str, fast: bool = False,
             teams: Teams | None = None
             ) -> tuple[Table, tuple[str, ...], list[dict[str, Any]], dict[str, Any]]:
    """One K12 table by its keys, with ``rate`` (None when nothing is divided) and the total;
    ``fast``: from the rollups, spans and SQL counts (rows only, no drill-down); ``teams``: a
    row per team instead of per person."""
    figure, keys, ratio, _title = K12_PARTS[part]
    table: Table = (FAST_K12[part](period, cut) if fast else figure(period, cut))
    person = next((k for k in keys if k in PEOPLE), None)
    if teams is not None and person is not None:
        table = teams.view(table, person)
    rows = table.rollup(*keys)
    if teams is not None and person is not None:
        rows = teams.ordered(rows, person, tuple(k for k in keys if k != person))
    total = (table.rollup() or [dict.fromkeys(table.columns, 0)])[0]
    if ratio is not None:
        for row in (*rows, total):
            row["rate"] = rate(row.get(ratio[0], 0), row.get(ratio[1], 0))
    return table, keys, rows, total


@dataclass
class PartTable:
    part: str
    title: str
    headers: list[str]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    has_rate: bool


@dataclass
class PartsCard:
    code: str
    title: str
    how: str
    doc: str
    tables: list[Any]
    teams_how: str = ""


def k12_card(period: Period, cut: Cut, teams: Teams | None = None, query: str = ""
             ) -> PartsCard:
    """K12's tables (``teams``: coverage and overdue tasks per team; ``query``: the page's
    without the part, for the links)."""
    tickets = reverse("web:analytics_tickets", args=["K12"])
    built = [(part, *k12_rows(period, cut, part, fast=True, teams=teams))
             for part in K12_PARTS]
    names = person_names({row[k] for _p, _t, keys, rows, _tot in built for row in rows
                          for k in keys if k in PEOPLE and row[k]} if teams is None else set())
    tables = []
    for part, table, keys, rows, total in built:
        has_rate = K12_PARTS[part][2] is not None
        for row in rows:
            labelled(row, keys, names, teams, part)
            row["cells"] = [(c, row.get(c, 0)) for c in table.columns]
            row["rate_text"] = percent(row.get("rate"))
            row["html"] = row_html(row, tickets, query, f'<td class="num">'
                                   f'{_text(row["rate_text"])}</td>' if has_rate else "")
        total["cells"] = [(c, total.get(c, 0)) for c in table.columns]
        total["rate_text"] = percent(total.get("rate"))
        shown = tuple("team" if teams is not None and k in PEOPLE else k for k in keys)
        tables.append(PartTable(part, str(K12_PARTS[part][3]), [column_title(c) for c in (
            *shown, *table.columns, *(("rate",) if has_rate else ()))], rows, total, has_rate))
    return PartsCard("K12", str(TITLES["K12"]), str(HOW["K12"]), "docs/analytics-timing.md",
                     tables, str(TEAM_ROWS) if teams is not None else "")


def k12_export(period: Period, cut: Cut, part: str) -> tuple[list[str], list[list[Any]]]:
    table, keys, rows, total = k12_rows(period, cut, part, fast=True)
    has_rate = K12_PARTS[part][2] is not None
    names = person_names({row[k] for row in rows for k in keys if k in PEOPLE and row[k]})
    headers = [column_title(c) for c in (*keys, *table.columns,
                                         *(("rate",) if has_rate else ()))]
    body = [[person_label(k, row[k], names) for k in keys]
            + [row.get(c, 0) for c in table.columns]
            + ([percent(row["rate"])] if has_rate else []) for row in rows]
    body.append([_("Total")] + [""] * (len(keys) - 1) + [total.get(c, 0) for c in table.columns]
                + ([percent(total["rate"])] if has_rate else []))
    return headers, body


# --- growth points ----------------------------------------------------------------------------

GROWTH_PARTS: dict[str, Any] = {
    "channels": _l("Leads by channel against the previous period"),
    "average_deal": _l("Average deal by month"),
    "lost_value": _l("Where the most value is lost"),
    "stages": _l("Next-step share per stage against the previous period"),
}
GROWTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "channels": ("channel", "leads", "previous", "change", "change_share"),
    "average_deal": ("month", "currency", "won", "revenue", "average"),
    "lost_value": ("pipeline", "stage", "currency", "lost", "lost_value"),
    "stages": ("pipeline", "stage", "exits", "next", "next_share", "previous_share",
               "change"),
}
COLUMN_TITLES.update({
    "previous": _l("Previous period"), "change": _l("Change"), "change_share": _l("Change, %"),
    "month": _l("Month"), "average": _l("Average deal"), "exits": _l("Left the stage"),
    "next": _l("To a later stage"), "next_share": _l("Next-step share"),
    "previous_share": _l("Previous share"),
})


def read_growth_part(data: Any) -> str:
    part = data.get("part") or "channels"
    if part not in GROWTH_PARTS:
        raise BadInput(f"the growth part is one of {', '.join(GROWTH_PARTS)}, not {part!r}",
                       code="bad_cut", field="part", value=part)
    return str(part)


def _stage_exits(current: Table) -> Table:
    """The moves out of each stage in the period (reopenings aside), ``next`` when forward."""
    return Table("growth stages", "stage moves", current.period, current.cut,
                 ("pipeline", "from_stage"), ("exits", "next"), tuple(
                     Fact(f.ticket, {"pipeline": f.keys["pipeline"],
                                     "from_stage": f.keys["from_stage"]},
                          {"exits": f.values["moves"],
                           "next": f.values["moves"] if f.keys["kind"] in NEXT_STEP else 0})
                     for f in current.facts if f.keys["kind"] != MoveKind.REOPEN))


def growth_rows(period: Period, cut: Cut, part: str, fast: bool = False
                ) -> tuple[list[dict[str, Any]], Table | None, dict[str, Any] | None]:
    """A growth part's rows (plain values), the table its counts drill into (None for the
    average deal, whose counts drill into K10 of each month) and the largest loss. ``fast``:
    from the rollups (the rows only: the tables then list no tickets)."""
    if part == "channels":
        comparison = lead_volume_by_channel(
            period, cut, **({"figure": rollup.source("K2", ("channel",))} if fast else {}))
        return comparison.rows, comparison.current, None
    if part == "average_deal":
        return average_deal_by_month(
            period, cut, figure=rollup.source("K10", ("currency",)) if fast else k10_outcomes
        ), None, None
    if part == "lost_value":
        table = (rollup.table("LOST", period, cut, ("pipeline", "stage", "currency")) if fast
                 else lost_value_by_stage(period, cut))
        return table.rows, table, largest_loss(table)
    comparison = stage_conversion(period, cut,
                                  **({"figure": rollup.source("K4", STAGE_KEYS)} if fast else {}))
    if fast:
        return comparison.rows, None, None
    return comparison.rows, _stage_exits(comparison.current), None


def growth_text(column: str, value: Any) -> str:
    if column in ("change_share", "next_share", "previous_share"):
        return percent(value)
    if column == "change" and isinstance(value, float):
        return f"{round(100 * value):+d} pp"
    if isinstance(value, int) and column == "change":
        return f"{value:+d}"
    return "-" if value is None else str(value)


GROWTH_LINKS = {"channels": ("leads", ("channel",), "leads"),
                "lost_value": ("lost", ("pipeline", "stage", "currency"), "lost"),
                "stages": ("exits", ("pipeline", "stage"), "exits")}


def growth_card(period: Period, cut: Cut) -> PartsCard:
    tables = []
    for part, title in GROWTH_PARTS.items():
        rows, _table, largest = growth_rows(period, cut, part, fast=True)
        columns = GROWTH_COLUMNS[part]
        shown = []
        for row in rows:
            cells = []
            for c in columns:
                link = ""
                if part in GROWTH_LINKS and c == GROWTH_LINKS[part][0] and row[c]:
                    keys = GROWTH_LINKS[part][1]
                    names = {"stage": "from_stage"} if part == "stages" else {}
                    link = reverse("web:analytics_tickets", args=["growth"]) + "?" + urlencode(
                        {"period": period.label, "part": part, "column": GROWTH_LINKS[part][2],
                         **cut.as_dict(),
                         **{f"{KEY_PREFIX}{names.get(k, k)}": "" if row[k] is None else row[k]
                            for k in keys}})
                elif part == "average_deal" and c == "won":
                    link = reverse("web:analytics_tickets", args=["K10"]) + "?" + urlencode(
                        {"period": row["month"], "column": "won", **cut.as_dict(),
                         f"{KEY_PREFIX}currency": row["currency"]})
                cells.append((growth_text(c, row[c]), link))
            shown.append({"cells": cells, "largest": largest is not None and all(
                row[k] == largest[k] for k in ("pipeline", "stage", "currency"))})
        tables.append(GrowthTable(part, str(title), [column_title(c) for c in columns], shown))
    return PartsCard("growth", str(TITLES["growth"]), str(HOW["growth"]),
                     "docs/analytics-timing.md", tables)


@dataclass
class GrowthTable:
    part: str
    title: str
    headers: list[str]
    rows: list[dict[str, Any]]


def growth_export(period: Period, cut: Cut, part: str) -> tuple[list[str], list[list[Any]]]:
    rows = growth_rows(period, cut, part, fast=True)[0]
    columns = GROWTH_COLUMNS[part]
    return ([column_title(c) for c in columns],
            [[growth_text(c, r[c]) if c in ("change_share", "next_share", "previous_share",
                                            "change") else r[c] for c in columns]
             for r in rows])


# --- K5 sales dynamics and K6 realisation of potential -------------------------------------

K5_COLUMNS = ("bucket", "segment", "currency", "won", "revenue", "average",
              "won_vs_previous", "revenue_vs_previous", "average_vs_previous",
              "won_vs_year_ago", "revenue_vs_year_ago", "average_vs_year_ago")
K6_COLUMNS = ("kind", "object", "start", "end", "currency", "potential", "won_revenue",
              "realisation", "weighted_pipeline", "coverage")
COLUMN_TITLES.update({
    "bucket": _l("Bucket"), "segment": _l("Segment"),
    "won_vs_previous": _l("Won vs previous, %"),
    "revenue_vs_previous": _l("Revenue vs previous, %"),
    "average_vs_previous": _l("Average vs previous, %"),
    "won_vs_year_ago": _l("Won vs a year ago, %"),
    "revenue_vs_year_ago": _l("Revenue vs a year ago, %"),
    "average_vs_year_ago": _l("Average vs a year ago, %"),
    "kind": _l("Target"), "object": _l("Client or territory"), "start": _l("From"),
    "end": pgettext_lazy("period end", "To"), "potential": _l("Potential"),
    "won_revenue": _l("Won revenue"),
    "realisation": _l("Realisation, %"), "weighted_pipeline": _l("Weighted pipeline"),
    "coverage": _l("Coverage, %"),
})
BUCKET_TITLES = {"week": _l("Weeks"), "month": _l("Months"), "quarter": _l("Quarters")}


def read_bucket(data: Any) -> str:
    bucket = data.get("bucket") or "month"
    if bucket not in BUCKETS:
        raise BadInput(f"the K5 bucket is week, month or quarter, not {bucket!r}",
                       code="bad_cut", field="bucket", value=bucket)
    return str(bucket)


def plain_text(value: Any) -> str:
    return "-" if value is None else str(value)


def k5_rows(period: Period, cut: Cut, bucket: str) -> list[dict[str, Any]]:
    return [row.as_dict() for row in k5_dynamics(period, cut, bucket,
                                                 figure=rollup.source("K10", K5_KEYS)).rows]


@dataclass
class SimpleCard:
    code: str
    title: str
    how: str
    doc: str
    headers: list[str]
    rows: list[dict[str, Any]]
    choice: str = ""
    choices: list[tuple[str, str]] | None = None


def k5_card(period: Period, cut: Cut, bucket: str) -> SimpleCard:
    rows = []
    for row in k5_rows(period, cut, bucket):
        link = ""
        if row["won"]:
            link = reverse("web:analytics_tickets", args=["K10"]) + "?" + urlencode(
                {"period": row["bucket"], "column": "won", **cut.as_dict(),
                 f"{KEY_PREFIX}segment": row["segment"] or "",
                 f"{KEY_PREFIX}currency": row["currency"]})
        rows.append({"cells": [(plain_text(row[c]), link if c == "won" else "")
                               for c in K5_COLUMNS]})
    return SimpleCard("K5", str(TITLES["K5"]), str(HOW["K5"]), "docs/analytics-sales.md",
                      [column_title(c) for c in K5_COLUMNS], rows, bucket,
                      [(b, str(BUCKET_TITLES[b])) for b in BUCKETS])


def k5_export(period: Period, cut: Cut, bucket: str) -> tuple[list[str], list[list[Any]]]:
    return ([column_title(c) for c in K5_COLUMNS],
            [[row[c] if c in ("won", "revenue", "average") and row[c] is not None
              else plain_text(row[c]) for c in K5_COLUMNS]
             for row in k5_rows(period, cut, bucket)])


def k6_rows(period: Period, cut: Cut) -> list[dict[str, Any]]:
    return [{**r.as_dict(), "target": r.target_id} for r in k6_realisation(period, cut)]


def k6_won_table(period: Period, cut: Cut, target_id: int) -> Table:
    """The won tickets behind a K6 row: K10 wins in the target's own period, for its client
    (a client target) or the territory recorded on the win, in its currency; of the cut's
    people (owner at the time of the win) only, as the row counts them."""
    found = [r for r in k6_realisation(period, cut) if r.target_id == target_id]
    if not found:
        raise BadInput(f"there is no K6 target {target_id!r} in this period", code="bad_cut",
                       field="target", value=str(target_id))
    target = found[0]
    table = k10_outcomes(Period.days(target.first, target.last), people_of(cut))
    facts = [f for f in table.facts if f.values.get("won")
             and f.keys["currency"] == target.currency]
    if target.kind == "client":
        clients = dict(Ticket.objects.filter(pk__in=sorted({f.ticket for f in facts}))
                       .values_list("pk", "client_id"))
        facts = [f for f in facts if str(clients.get(f.ticket)) == target.ref]
    else:
        facts = [f for f in facts if f.keys["territory"] == target.ref]
    return Table("K6", "deals", period, people_of(cut), ("target",), ("won",), tuple(
        Fact(f.ticket, {"target": str(target_id)}, {"won": 1}) for f in facts))


def k6_card(period: Period, cut: Cut) -> SimpleCard:
    rows = []
    for row in k6_rows(period, cut):
        link = reverse("web:analytics_tickets", args=["K6"]) + "?" + urlencode(
            {"period": period.label, **people_of(cut).as_dict(),
             f"{KEY_PREFIX}target": row["target"], "column": "won"})
        rows.append({"cells": [(plain_text(row[c]), link if c == "won_revenue" else "")
                               for c in K6_COLUMNS]})
    return SimpleCard("K6", str(TITLES["K6"]), str(HOW["K6"]), "docs/analytics-sales.md",
                      [column_title(c) for c in K6_COLUMNS], rows)


def k6_visible(user: User) -> bool:
    try:
        check_k6(user)
    except Forbidden:
        return False
    return True


def k6_export(period: Period, cut: Cut) -> tuple[list[str], list[list[Any]]]:
    return ([column_title(c) for c in K6_COLUMNS],
            [[row[c] if isinstance(row[c], Decimal) else plain_text(row[c])
              for c in K6_COLUMNS] for row in k6_rows(period, cut)])


# --- K11 energy trend (beside the seller rows; also on its own in the API and the report) ----


def energy_table(period: Period, cut: Cut) -> tuple[list[str], list[dict[str, Any]]]:
    """Active sellers within ``cut`` (seller/team) and their energy score per week of the 8
    weeks ending with the period (None: not rated)."""
    sellers = User.objects.filter(role=Role.SELLER, is_active=True)
    if cut.seller is not None:
        sellers = sellers.filter(pk=cut.seller)
    if cut.team is not None:
        sellers = sellers.filter(team_id=cut.team)
    weeks = energy_weeks(period)
    trends = energy_trends(sellers.order_by("pk").values_list("pk", flat=True), weeks)
    return ([w.isoformat() for w in weeks],
            [{"seller": sid, **{w.week.isoformat(): w.score for w in scores}}
             for sid, scores in trends.items()])


def check_energy(user: User) -> None:
    if not energy_visible(user):
        raise Forbidden("energy ratings are for heads and directors",
                        code="analytics_forbidden")


def energy_export(period: Period, cut: Cut) -> tuple[list[str], list[list[Any]]]:
    weeks, rows = energy_table(period, cut)
    names = person_names({r["seller"] for r in rows})
    return ([column_title("performer"), *weeks],
            [[key_label("performer", r["seller"], names), *[r[w] for w in weeks]]
             for r in rows])


# --- pages ------------------------------------------------------------------------------------


def _refused(request: HttpRequest, exc: EstafetaError) -> HttpResponse:
    title = _("Not allowed") if status_for(exc) == 403 else _("Cannot show these figures")
    return error_page(request, status_for(exc), title, describe(exc))


def _figure(code: str) -> str:
    if code not in FIGURES and code not in EXTRA_FIGURES:
        raise BadInput(f"there is no figure {code!r}", code="bad_figure", value=code)
    return code


@roles_required(*ANALYTICS_ROLES)
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        period = read_period(request.GET)
        cut = read_cut(user, request.GET)
        mode = read_mode(request.GET)
        bucket = read_bucket(request.GET)
    except EstafetaError as exc:
        return _refused(request, exc)
    with rollup.memo():
        return _dashboard(request, user, period, cut, mode, bucket)


def _dashboard(request: HttpRequest, user: User, period: Period, cut: Cut, mode: str,
               bucket: str) -> HttpResponse:
    fast.no_jit()
    teams = Teams(query_without(request, "page", "format", "team", "seller")
                  ) if by_teams(user, cut) else None
    query = query_without(request, "page", "format")
    part_query = query_without(request, "page", "format", "part")
    cards = build_cards(period, cut, energy_visible(user), teams, query)
    return render(request, "web/analytics/dashboard.html", {
        "section": "analytics", "period": period, "cut": cut, "cards": cards,
        "funnel": funnel_of(cards), "trend": trend_of(period, cut),
        "stage_funnel": funnel_card(period, cut, mode),
        "conversions": k7_card(period, cut, teams, part_query),
        "part_query": part_query,
        "timing": k9_card(user, period, cut),
        "control": k12_card(period, cut, teams, part_query),
        "growth": growth_card(period, cut),
        "bucket_query": query_without(request, "page", "format", "bucket"),
        "simple_cards": [k5_card(period, cut, bucket),
                         k6_card(period, cut) if k6_visible(user) else None],
        "mode_query": query_without(request, "page", "format", "mode"),
        "query": query,
        "filters": {name: request.GET.get(name, "") for name in CUT_FIELDS},
    })


def _cell(request: HttpRequest, table: Table) -> dict[str, str]:
    cell = {}
    for name in request.GET:
        value = request.GET.get(name, "")
        if name.startswith(KEY_PREFIX):
            key = name[len(KEY_PREFIX):]
            if key not in table.keys:
                raise BadInput(f"{table.figure} has no key {key!r}", code="bad_cut", field=key,
                               value=value)
            cell[key] = value
    return cell


@roles_required(*ANALYTICS_ROLES)
@require_GET
def figure_tickets(request: HttpRequest, figure: str) -> HttpResponse:
    """The tickets behind a cell (``k_<key>=value`` for the row, ``column`` for the number)
    that the person may see."""
    user: User = request.user  # type: ignore[assignment]
    try:
        if figure == "K6":
            check_k6(user)
        table = figure_table(_figure(figure), read_period(request.GET),
                             read_cut(user, request.GET), request.GET)
        cell = _cell(request, table)
        column = request.GET.get("column") or None
        if column is not None and column not in table.columns:
            raise BadInput(f"{figure} has no column {column!r}", code="bad_cut",
                           field="column", value=column)
    except EstafetaError as exc:
        return _refused(request, exc)
    source = table.distinct.get(column, column) if column else None
    ids = {f.ticket for f in table.facts
           if all(("" if f.keys[k] is None else str(f.keys[k])) == v for k, v in cell.items())
           and (source is None or f.values.get(source))}
    tickets = drill_down(user, ids).select_related("client", "owner").order_by("-pk")
    page = paginate(request, tickets)
    return render(request, "web/analytics/tickets.html", {
        "section": "analytics", "figure": figure, "title": TITLES[figure],
        "column": column_title(column) if column else "", "period": table.period,
        "page": page, "query": query_without(request, "page"),
        "back": query_without(request, "page", "column",
                              *[k for k in request.GET if k.startswith(KEY_PREFIX)]),
    })


@roles_required(*ANALYTICS_ROLES)
@require_GET
def figure_export(request: HttpRequest, figure: str) -> HttpResponse:
    """A figure's table as CSV or XLSX (``format``), formulas neutralised."""
    user: User = request.user  # type: ignore[assignment]
    try:
        period = read_period(request.GET)
        cut = read_cut(user, request.GET)
        if _figure(figure) == "K8":
            mode = read_mode(request.GET)
            headers, rows = funnel_export(period, cut, mode)
            return export_response(rows, headers, f"K8-{mode}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K9":
            stuck = request.GET.get("part") == "stuck"
            headers, rows = (k9_stuck_export(user, period, cut) if stuck
                             else k9_export(period, cut))
            return export_response(rows, headers,
                                   f"K9{'-stuck' if stuck else ''}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K11":
            check_energy(user)
            headers, rows = energy_export(period, cut)
            return export_response(rows, headers, f"K11-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K5":
            bucket = read_bucket(request.GET)
            headers, rows = k5_export(period, cut, bucket)
            return export_response(rows, headers, f"K5-{bucket}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K6":
            check_k6(user)
            headers, rows = k6_export(period, cut)
            return export_response(rows, headers, f"K6-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "growth":
            part = read_growth_part(request.GET)
            headers, rows = growth_export(period, cut, part)
            return export_response(rows, headers, f"growth-{part}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K12":
            part = read_k12_part(request.GET)
            headers, rows = k12_export(period, cut, part)
            return export_response(rows, headers, f"K12-{part}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        if figure == "K7":
            part = read_part(request.GET)
            headers, rows = k7_export(period, cut, part)
            return export_response(rows, headers, f"K7-{part}-{period.label}",
                                   request.GET.get("format") or "xlsx")
        headers, rows = export_rows(rollup.table(figure, period, cut, ROWS_BY[figure]))
        return export_response(rows, headers, f"{figure}-{period.label}",
                               request.GET.get("format") or "xlsx")
    except EstafetaError as exc:
        return _refused(request, exc)


urlpatterns = [
    path("analytics/", dashboard, name="analytics"),
    path("analytics/<str:figure>/tickets/", figure_tickets, name="analytics_tickets"),
    path("analytics/<str:figure>/export/", figure_export, name="analytics_export"),
]
