"""Who may see which cut of the figures.

A seller sees only their own figures (the cut is narrowed to them); a head of sales their
teams, with a row per seller (the cut is narrowed to a team they head, or one of its sellers);
a director everything. Any other cut, and any other role, is refused with ``Forbidden``.
Drill-downs list only tickets the person may see (``tickets.access.tickets_visible_to``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.db.models import QuerySet

from estafeta.accounts.models import Team, User
from estafeta.core import clock
from estafeta.domain.codes import Role
from estafeta.domain.errors import Forbidden
from estafeta.tickets.access import tickets_visible_to
from estafeta.tickets.models import Ticket

from .figures import Table
from .period import CUT_FIELDS, Cut, Period, company_tz

ANALYTICS_ROLES = (Role.SELLER, Role.HEAD, Role.DIRECTOR)


def _refuse(what: str) -> Forbidden:
    return Forbidden(f"you may not see the figures of {what}", code="analytics_forbidden")


def headed_team_ids(user: User) -> list[int]:
    return list(Team.objects.filter(head=user).order_by("pk").values_list("pk", flat=True))


def scope_cut(user: User, cut: Cut) -> Cut:
    """``cut`` as ``user`` may see it: narrowed to what is theirs, or ``Forbidden``."""
    if not getattr(user, "is_active", False) or not getattr(user, "pk", None):
        raise _refuse("anyone")
    role = Role(user.role)
    if role is Role.DIRECTOR:
        return cut
    if role is Role.SELLER:
        if cut.seller not in (None, user.pk):
            raise _refuse("another seller")
        if cut.team is not None and cut.team != user.team_id:
            raise _refuse("another team")
        return replace(cut, seller=user.pk, team=None)
    if role is Role.HEAD:
        teams = headed_team_ids(user)
        if cut.team is not None and cut.team not in teams:
            raise _refuse("another team")
        if cut.seller is not None:
            if cut.seller == user.pk:
                return replace(cut, team=None)
            team = User.objects.filter(pk=cut.seller).values_list("team_id", flat=True).first()
            if team not in teams or (cut.team is not None and team != cut.team):
                raise _refuse("a seller of another team")
            return replace(cut, team=team)
        if cut.team is None:
            if not teams:
                return replace(cut, seller=user.pk)
            return replace(cut, team=teams[0])
        return cut
    raise _refuse("the company")


def drill_down(user: User, ticket_ids: set[int]) -> QuerySet[Ticket]:
    """The tickets behind a cell that ``user`` may see."""
    return tickets_visible_to(user).filter(pk__in=sorted(ticket_ids))


# --- what a dashboard shows of each figure ---------------------------------------------------

# figure -> the keys its rows are shown by (a person first; money never mixes currencies)
ROWS_BY: dict[str, tuple[str, ...]] = {
    "K1": ("performer",),
    "K2": ("owner",),
    "K3": ("owner", "currency"),
    "K4": ("owner",),
    "K10": ("owner", "currency"),
}
PERSON_KEYS = frozenset({"performer", "owner", "creator", "issuer", "actor"})


def dashboard_rows(table: Table) -> tuple[tuple[str, ...], list[dict[str, Any]], dict[str, Any]]:
    """The rows a dashboard (and the API, and the report) shows of ``table``: by ``ROWS_BY``,
    with the total row."""
    keys = ROWS_BY[table.figure]
    rows = table.rollup(*keys)
    total = (table.rollup() or [dict.fromkeys(table.columns, 0)])[0]
    return keys, rows, total


def read_period(data: Mapping[str, Any]) -> Period:
    """``period`` from a query string; the current month when left out."""
    text = data.get("period") or ""
    if not text:
        today = clock.now().astimezone(company_tz()).date()
        return Period.month(today.year, today.month)
    return Period.parse(text)


def read_cut(user: User, data: Mapping[str, Any]) -> Cut:
    """The cut named in a query string, checked and narrowed to what ``user`` may see."""
    values = {k: data.get(k) for k in CUT_FIELDS if data.get(k)}
    return scope_cut(user, Cut.parse(values))


def check_k6(user: User) -> None:
    """K6 (realisation of potential) is for directors and heads of sales. Its targets are set
    per client or territory, not per seller: a head sees their team's slice (the cut that
    ``scope_cut`` narrowed to a team they head, or one of its sellers), a seller nothing."""
    if Role(user.role) not in (Role.DIRECTOR, Role.HEAD):
        raise Forbidden("the realisation of potential (K6) is for directors and heads of sales",
                        code="analytics_forbidden")
