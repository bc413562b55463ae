"""Reads about tickets, and the locked read every ticket service starts with."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber

from estafeta.domain.codes import TaskStatus, TicketStatus
from estafeta.domain.errors import BadInput, Conflict, NotFound
from estafeta.domain.numbering import parse_number
from estafeta.domain.policy import TicketFacts
from estafeta.history.models import Event
from estafeta.tasks.models import Task

from .models import Activity, ChecklistEntry, StageVisit, StoredFile, Ticket


def ticket_for_update(ticket: Ticket | int) -> Ticket:
    """Lock the ticket row: every change to a ticket is serialised here, so a stale request
    (two people closing the same stage) is detected after the lock, not lost."""
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    try:
        # Joining the version is safe under the lock: a ticket's version never changes. (A
        # join on a column that does change, like the stage, would be re-checked against the
        # joined row read before waiting, and a concurrent stage change would make the ticket
        # vanish from the result: the stage comes from the cache instead.)
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("version")
                  .order_by().get(pk=pk))
    except Ticket.DoesNotExist:
        raise NotFound("there is no such ticket", code="unknown_ticket") from None
    # The stage comes from the version's cached stage list (versions never change), which
    # saves a join on every change to a ticket; the rest loads when a service needs it.
    ticket.stage = next(s for s in ticket.version.stage_list if s.pk == ticket.stage_id)
    return ticket


def ticket_by_number(number: str) -> Ticket:
    """The ticket with this number (whitespace and case forgiven); ``NotFound`` otherwise."""
    if parse_number(number) is None:
        raise NotFound(f"{number!r} is not a ticket number", code="unknown_ticket")
    try:
        return Ticket.objects.select_related("stage", "pipeline", "owner", "client").get(
            number=number.strip().upper())
    except Ticket.DoesNotExist:
        raise NotFound(f"there is no ticket {number.strip()}", code="unknown_ticket") from None


def open_visit(ticket: Ticket) -> StageVisit:
    """The ticket's current stage visit, with its executor and the version's cached stage."""
    visit = (StageVisit.objects.select_related("executor")
             .filter(ticket=ticket, closed_at__isnull=True).first())
    if visit is None:
        raise Conflict(f"{ticket.number} is not in an open stage", code="ticket_closed")
    visit.stage = next(s for s in ticket.version.stage_list if s.pk == visit.stage_id)
    return visit


def require_stage(ticket: Ticket, visit: StageVisit, stage_code: str) -> None:
    """The caller names the stage it saw; if the ticket moved on meanwhile, refuse (409)."""
    if visit.stage.code != stage_code:
        raise Conflict(
            f"{ticket.number} is now in stage {visit.stage.code!r}, not {stage_code!r};"
            " reload and try again", code="stale_stage", current=visit.stage.code)


def ticket_facts(ticket: Ticket, visit: StageVisit | None, *,
                 assignees: bool = True) -> TicketFacts:
    """What the policy needs; ``assignees=False`` when only executors and heads matter (the
    open tasks' assignees are one more query)."""
    executor = visit.executor if visit is not None else None
    teams = {ticket.team_id, executor.team_id if executor else None} - {None}
    holders = frozenset(ticket.tasks.filter(status=TaskStatus.OPEN)
                        .values_list("assignee_id", flat=True)) if assignees else frozenset()
    return TicketFacts(ticket.owner_id, frozenset(t for t in teams if t is not None),
                       executor.pk if executor else None, holders)


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    type: str
    occurred_at: Any
    actor: str
    payload: dict[str, Any]


def ticket_timeline(ticket: Ticket) -> Iterator[TimelineEntry]:
    """Every event of the ticket in order, with the actor's name; read from the history only."""
    events = (Event.objects.filter(stream=ticket.stream).select_related("actor")
              .order_by("seq").only("seq", "type", "occurred_at", "payload", "actor__username",
                                    "actor__first_name", "actor__last_name"))
    for e in events.iterator():
        actor = (e.actor.get_full_name() or e.actor.username) if e.actor else "system"
        yield TimelineEntry(e.seq, e.type, e.occurred_at, actor, e.payload)


def visits_with_entries(ticket: Ticket) -> list[StageVisit]:
    return list(ticket.visits.select_related("stage", "executor").prefetch_related(
        Prefetch("entries", queryset=ChecklistEntry.objects.select_related("item"))))


# --- lists, search and the board (the web interface reads these) ------------------------------


def ticket_search(text: str, prefix: str = "") -> Q:
    """A condition matching tickets by number, client name, phone or email (``prefix`` is the
    path to the ticket, like ``"ticket__"`` for tasks). Empty text matches everything.

    A whole number matches exactly; part of one, its digits; a phone or an email matches the
    client's normalised contacts (any spelling: ``8 912 345-67-89`` finds ``+79123456789``);
    a run of digits matches inside phones too. Contacts are read in a subquery, so a client with
    several phones never repeats a row.
    """
    from estafeta.clients.models import ClientContact
    from estafeta.domain.contacts import normalise_email, normalise_phone

    text = " ".join((text or "").split())[:200]
    if not text:
        return Q()
    p = prefix
    if parse_number(text) is not None:
        # A merged ticket's number finds the ticket it was merged into as well.
        merged = Ticket.objects.filter(number=text.upper(), merged_into__isnull=False)
        return (Q(**{f"{p}number": text.upper()})
                | Q(**{f"{p}pk__in": merged.values("merged_into_id")}))
    cond = Q(**{f"{p}number__icontains": text}) | Q(**{f"{p}client__name__icontains": text})
    contacts = Q()
    digits = re.sub(r"[\s()+\-]", "", text)
    if digits.isdigit() and len(digits) >= 4:
        with contextlib.suppress(BadInput):
            contacts |= Q(kind="phone", value=normalise_phone(text))
        if len(digits) == 11 and digits[0] in "78":  # a Russian trunk prefix: +7 or 8
            digits = digits[1:]
        contacts |= Q(kind="phone", value__contains=digits)
    if "@" in text:
        try:
            contacts |= Q(kind="email", value=normalise_email(text))
        except BadInput:
            contacts |= Q(kind="email", value__icontains=text.lower())
    if contacts:
        cond |= Q(**{f"{p}client_id__in": ClientContact.objects.filter(contacts)
                     .values("client_id")})
    return cond


def _last_contact() -> Subquery:
    """The time of a ticket's latest contact (served by the (ticket, occurred_at) index)."""
    return Subquery(Activity.objects.filter(ticket=OuterRef("pk")).order_by("-occurred_at")
                    .values("occurred_at")[:1])


def _quiet_since(cutoff: datetime) -> Q:
    """Open tickets without a contact since ``cutoff`` (a ticket younger than that is not
    quiet yet: it counts from its creation)."""
    return Q(quiet_since__lt=cutoff)


def tickets_list(
    visible: QuerySet[Ticket], *, q: str = "", status: str = "", pipeline: str = "",
    owner: int | None = None, team: int | None = None, stage: str = "",
    quiet_days: int | None = None, now: datetime | None = None,
) -> QuerySet[Ticket]:
    """Tickets from ``visible`` (``access.tickets_visible_to``), filtered, newest first, with
    what a list row shows: one query for the page whatever its size."""
    qs = visible.filter(ticket_search(q)) if q else visible
    if status:
        qs = qs.filter(status=status)
    if pipeline:
        qs = qs.filter(pipeline__code=pipeline)
    if owner:
        qs = qs.filter(owner_id=owner)
    if team:
        qs = qs.filter(team_id=team)
    if stage:
        qs = qs.filter(stage__code=stage)
    if quiet_days and now is not None:
        qs = (qs.filter(status=TicketStatus.OPEN)
              .annotate(quiet_since=Coalesce(_last_contact(), F("created_at")))
              .filter(_quiet_since(now - timedelta(days=quiet_days))))
    return (qs.select_related("client", "owner", "stage", "pipeline")
            .only("number", "subject", "status", "amount", "currency", "created_at",
                  "client__name", "owner__username", "owner__first_name", "owner__last_name",
                  "stage__name", "stage__code", "pipeline__name", "pipeline__code")
            .order_by("-created_at", "-pk"))


@dataclass(frozen=True)
class BoardFilters:
    owner: int | None = None
    team: int | None = None
    segment: str = ""
    territory: str = ""
    channel: str = ""
    q: str = ""

    def apply(self, qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.owner:
            qs = qs.filter(owner_id=self.owner)
        if self.team:
            qs = qs.filter(team_id=self.team)
        if self.segment:
            qs = qs.filter(client__segment__code=self.segment)
        if self.territory:
            qs = qs.filter(client__territory__code=self.territory)
        if self.channel:
            qs = qs.filter(channel=self.channel)
        if self.q:
            qs = qs.filter(ticket_search(self.q))
        return qs


@dataclass
class BoardColumn:
    code: str
    name: str
    sla: str
    count: int = 0
    cards: list[Ticket] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return max(self.count - len(self.cards), 0)


def board_columns(visible: QuerySet[Ticket], *, pipeline_id: int, stages: list[Any],
                  filters: BoardFilters, now: datetime, per_column: int = 30
                  ) -> list[BoardColumn]:
    """The open tickets of a pipeline by stage: a column per open stage of ``stages`` (the
    current version's), in order; tickets still on an older version sit in the column of the
    same stage code, or in an extra column at the end if that stage is gone.

    Two queries whatever the number of tickets: the count per stage, and the first
    ``per_column`` cards of every stage (those longest in their stage first), each with its
    client, owner, time it entered the stage and whether it has an overdue task.
    """
    base = filters.apply(visible.filter(pipeline_id=pipeline_id, status=TicketStatus.OPEN))
    columns = {s.code: BoardColumn(s.code, s.name, s.sla) for s in stages if s.is_open}
    for row in base.values("stage__code", "stage__name").annotate(n=Count("pk")).order_by():
        column = columns.setdefault(row["stage__code"],
                                    BoardColumn(row["stage__code"], row["stage__name"], ""))
        column.count += row["n"]
    entered = Subquery(StageVisit.objects.filter(ticket=OuterRef("pk"), closed_at__isnull=True)
                       .values("entered_at")[:1])
    overdue = Exists(Task.objects.filter(ticket=OuterRef("pk"), status=TaskStatus.OPEN,
                                         due_at__lt=now))
    cards = (base.annotate(
        stage_code=F("stage__code"), entered_at=entered, overdue=overdue,
        place=Window(RowNumber(), partition_by=[F("stage__code")],
                     order_by=[F("entered_at").asc(), F("pk").asc()]))
        .filter(place__lte=per_column)
        .select_related("client", "owner", "stage")
        .only("number", "subject", "amount", "currency", "stage__code", "stage__name",
              "client__name", "owner__username", "owner__first_name", "owner__last_name")
        .order_by("entered_at", "pk"))
    for card in cards:
        columns[card.stage_code].cards.append(card)
    return list(columns.values())


@dataclass
class Workload:
    user: Any
    open_tasks: int = 0
    overdue: int = 0
    quiet: int = 0


def team_workload(members: list[Any], *, now: datetime, quiet_days: int) -> list[Workload]:
    """Per person: open tasks, overdue tasks, open tickets they own without a contact for
    ``quiet_days`` days. Two queries for any number of people."""
    rows = {u.pk: Workload(u) for u in members}
    if not rows:
        return []
    tasks = (Task.objects.filter(assignee_id__in=list(rows), status=TaskStatus.OPEN)
             .values("assignee_id")
             .annotate(n=Count("pk"), late=Count("pk", filter=Q(due_at__lt=now))).order_by())
    for t in tasks:
        rows[t["assignee_id"]].open_tasks, rows[t["assignee_id"]].overdue = t["n"], t["late"]
    quiet = (Ticket.objects.filter(owner_id__in=list(rows), status=TicketStatus.OPEN)
             .annotate(quiet_since=Coalesce(_last_contact(), F("created_at")))
             .filter(_quiet_since(now - timedelta(days=quiet_days)))
             .values("owner_id").annotate(n=Count("pk")).order_by())
    for row in quiet:
        rows[row["owner_id"]].quiet = row["n"]
    return list(rows.values())


def ticket_events(ticket: Ticket) -> QuerySet[Event]:
    """The ticket's events, newest first, with their actors (for a paginated timeline)."""
    return (Event.objects.filter(stream=ticket.stream).select_related("actor")
            .only("seq", "type", "occurred_at", "payload", "actor__username",
                  "actor__first_name", "actor__last_name")
            .order_by("-seq"))


def visit_entries(visit: StageVisit) -> dict[int, ChecklistEntry]:
    """Checklist item id → its entry in this visit, with who did it."""
    return {e.item_id: e for e in ChecklistEntry.objects.filter(visit=visit)
            .select_related("done_by")}


def evidence_file(ticket: Ticket, file_id: int) -> StoredFile:
    """A file given as evidence on this ticket; ``NotFound`` for any other file id."""
    for entry in ChecklistEntry.objects.filter(visit__ticket=ticket).only("evidence"):
        ev = entry.evidence
        if isinstance(ev, dict) and ev.get("file_id") == file_id:
            found = StoredFile.objects.filter(pk=file_id).first()
            if found is not None:
                return found
    raise NotFound("there is no such file on this ticket", code="unknown_file")


def stage_pausable(ticket: Ticket, stage: Any) -> bool:
    """May ``stage`` wait for the client in ``ticket``'s pipeline version (``pausable: true`` in
    its file, kept in the stored spec)? The pause service's rule; pages ask it to offer the form."""
    for spec in ticket.version.spec.get("stages", []):
        if spec.get("code") == stage.code:
            return bool(spec.get("pausable", False))
    return False
