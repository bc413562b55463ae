"""Writes about people. Each function is one transaction that also writes its event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from estafeta.core import clock
from estafeta.domain.codes import EventType, Role, TaskStatus, TicketStatus
from estafeta.domain.contacts import normalise_email
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.domain.policy import require_active, require_role
from estafeta.history.services import event_record, ticket_event

from .models import Absence, Team, User
from .selectors import actor_facts, team_named

_UNSET: Any = object()


def _facts(actor: User | None) -> Any:
    return actor_facts(actor) if actor is not None else None


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise BadInput(f"{value!r} is not a role; use one of {allowed}", code="bad_role") from None


def _name(value: str, what: str, limit: int = 150) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise BadInput(f"the {what} is longer than {limit} characters", code="too_long")
    return value


def claim_users(users: Sequence[User]) -> None:
    """Lock people who are about to receive work and make sure they are still active.

    A deactivation locks the user row FOR UPDATE and moves that user's work; taking FOR SHARE
    here means either it waits for this transaction (and then moves the new work too) or this
    transaction sees the deactivation and refuses. SQLite serialises writers, so it needs none.
    """
    ids = sorted({u.pk for u in users})
    if connection.vendor == "postgresql" and ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM accounts_user WHERE id = ANY(%s) AND is_active "
                "ORDER BY id FOR SHARE", [ids])
            active = {row[0] for row in cursor.fetchall()}
    else:
        active = set(User.objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))
    for user in users:
        if user.pk not in active:
            raise Conflict(f"{user.username} is deactivated and cannot take work",
                           code="user_inactive", user=user.username)


def user_create(
    *, actor: User | None, username: str, role: str | Role, password: str | None,
    team: Team | None = None, email: str = "", first_name: str = "", last_name: str = "",
    language: str = "ru",
) -> User:
    """Create a user. ``password=None`` makes an account that cannot log in until one is set."""
    require_role(_facts(actor), Role.ADMIN, what="create users")
    role = _role(role)
    username = (username or "").strip()
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise BadInput(f"{username!r} is not a valid username (letters, digits and @.+-_)",
                       code="bad_username") from None
    if not username or len(username) > 150:
        raise BadInput("the username must be 1-150 characters", code="bad_username")
    if language not in {"ru", "en"}:
        raise BadInput("the language must be ru or en", code="bad_language")
    email = normalise_email(email) if email and email.strip() else ""
    first_name, last_name = _name(first_name, "first name"), _name(last_name, "last name")
    candidate = User(username=username, email=email, first_name=first_name, last_name=last_name)
    if password is not None:
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise BadInput("the password is too weak: " + " ".join(exc.messages),
                           code="weak_password") from None
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise Conflict(f"the username {username!r} is taken", code="username_taken")
        user = User(
            username=username, email=email, first_name=first_name, last_name=last_name,
            role=role, team=team, language=language, date_joined=clock.now(),
            is_staff=role is Role.ADMIN, is_superuser=role is Role.ADMIN,
        )
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save(force_insert=True)
        event_record(stream=user.stream, type=EventType.USER_CREATED, actor=actor, new_stream=True,
                     payload={"role": role, "team": team.pk if team else None})
    return user


def user_update(
    *, actor: User | None, user: User, role: str | Role | None = None, team: Any = _UNSET,
    email: str | None = None, first_name: str | None = None, last_name: str | None = None,
    language: str | None = None,
) -> User:
    """Change a user's role, team or details. Heading a team pins the role to ``head``."""
    require_role(_facts(actor), Role.ADMIN, what="change users")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        changes: dict[str, list[Any]] = {}

        def change(field: str, value: Any, stored: Any = None) -> None:
            old = getattr(user, field)
            if old != value:
                setattr(user, field, value)
                show = stored or (lambda v: v)
                changes[field] = [show(old), show(value)]

        if role is not None:
            new_role = _role(role)
            if new_role is not Role.HEAD and Team.objects.filter(head=user).exists():
                raise Conflict(f"{user.username} heads a team; give the team another head first",
                               code="heads_a_team")
            change("role", new_role.value)
            user.is_staff = user.is_superuser = new_role is Role.ADMIN
        if team is not _UNSET:
            change("team", team, stored=lambda t: t.pk if t else None)
        if email is not None:
            change("email", normalise_email(email) if email.strip() else "", stored=lambda _: "*")
        if first_name is not None:
            change("first_name", _name(first_name, "first name"), stored=lambda _: "*")
        if last_name is not None:
            change("last_name", _name(last_name, "last name"), stored=lambda _: "*")
        if language is not None:
            if language not in {"ru", "en"}:
                raise BadInput("the language must be ru or en", code="bad_language")
            change("language", language)
        if not changes:
            return user
        user.save()
        # Personal details are marked "*": the history says they changed, not to what.
        event_record(stream=user.stream, type=EventType.USER_UPDATED, actor=actor,
                     payload={"changes": changes})
    return user


def user_set_password(*, actor: User | None, user: User, password: str) -> None:
    require_role(_facts(actor), Role.ADMIN, what="set passwords")
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise BadInput("the password is too weak: " + " ".join(exc.messages),
                       code="weak_password") from None
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(password)
        user.save(update_fields=["password"])
        event_record(stream=user.stream, type=EventType.USER_UPDATED, actor=actor,
                     payload={"changes": {"password": ["*", "*"]}})


def user_set_own_language(*, actor: User, language: str) -> User:
    """Anyone switches their own interface language (ru or en)."""
    require_active(actor_facts(actor))
    if language not in {"ru", "en"}:
        raise BadInput("the language must be ru or en", code="bad_language")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=actor.pk)
        if user.language == language:
            return user
        old, user.language = user.language, language
        user.save(update_fields=["language"])
        event_record(stream=user.stream, type=EventType.USER_UPDATED, actor=actor,
                     payload={"changes": {"language": [old, language]}})
    return user


def user_change_own_password(*, actor: User, old_password: str, new_password: str) -> User:
    """Anyone changes their own password, proving the old one first."""
    require_active(actor_facts(actor))
    if not actor.check_password(old_password):
        raise BadInput("the current password is not right", code="wrong_password")
    try:
        validate_password(new_password, actor)
    except ValidationError as exc:
        raise BadInput("the password is too weak: " + " ".join(exc.messages),
                       code="weak_password") from None
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=actor.pk)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        event_record(stream=user.stream, type=EventType.USER_UPDATED, actor=actor,
                     payload={"changes": {"password": ["*", "*"]}})
    return user


@dataclass(frozen=True)
class Handover:
    successor: User
    tickets: int
    tasks: int
    teams: int


def user_deactivate(*, actor: User | None, user: User, successor: User | None = None,
                    reason: str = "") -> Handover:
    """Deactivate ``user`` and, in the same transaction, hand all their open work over.

    Open tasks, owned open tickets and current stages move to ``successor`` (default: the head
    of the user's team). Teams they head move too (the successor must then be a head). The last
    active head of sales cannot be deactivated: escalations would have nobody to reach.
    """
    from estafeta.tasks.models import Task
    from estafeta.tickets.models import StageVisit, Ticket

    require_role(_facts(actor), Role.ADMIN, what="deactivate users")
    now = clock.now()
    with transaction.atomic():
        if user.role == Role.HEAD:
            # Lock every active head so that two heads deactivated at once cannot both go.
            heads = list(User.objects.select_for_update()
                         .filter(role=Role.HEAD, is_active=True).order_by("pk"))
            if [h.pk for h in heads] == [user.pk]:
                raise Forbidden(f"{user.username} is the last active head of sales; create or "
                                "activate another head first", code="last_head")
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            raise Conflict(f"{user.username} is already deactivated", code="already_inactive")
        teams = list(Team.objects.select_for_update().filter(head=user).order_by("pk"))
        if successor is None:
            team = user.team
            if team is None or team.head_id == user.pk:
                raise BadInput(f"name a successor to take over the work of {user.username}",
                               code="successor_needed")
            successor = team.head
        if successor.pk == user.pk:
            raise BadInput("a user cannot be their own successor", code="bad_successor")
        if teams and successor.role != Role.HEAD:
            names = ", ".join(t.name for t in teams)
            raise BadInput(f"{user.username} heads {names}; the successor must be a head of sales",
                           code="successor_not_head")
        claim_users([successor])

        ticket_ids = set(
            Task.objects.filter(assignee=user, status=TaskStatus.OPEN)
            .values_list("ticket_id", flat=True))
        ticket_ids |= set(Ticket.objects.filter(owner=user, status=TicketStatus.OPEN)
                          .values_list("pk", flat=True))
        ticket_ids |= set(StageVisit.objects.filter(executor=user, closed_at__isnull=True)
                          .values_list("ticket_id", flat=True))
        moved_tasks = 0
        for ticket in Ticket.objects.select_for_update().filter(pk__in=ticket_ids).order_by("pk"):
            tasks = list(Task.objects.filter(ticket=ticket, assignee=user, status=TaskStatus.OPEN)
                         .values_list("pk", flat=True))
            Task.objects.filter(pk__in=tasks).update(assignee=successor)
            moved_tasks += len(tasks)
            executor = StageVisit.objects.filter(ticket=ticket, executor=user,
                                                 closed_at__isnull=True).update(executor=successor)
            owner = ticket.owner_id == user.pk and ticket.is_open
            if owner:
                ticket.owner = successor
                ticket.team = successor.team
            ticket.updated_at = now
            ticket.save(update_fields=["owner", "team", "updated_at"])
            ticket_event(ticket, EventType.TICKET_HANDED_OVER, actor, {
                "from": user.pk, "to": successor.pk, "owner": owner, "executor": bool(executor),
                "tasks": tasks, "reason": "deactivation",
            })
        for team in teams:
            team.head = successor
            team.save(update_fields=["head"])
            event_record(stream=team.stream, type=EventType.TEAM_UPDATED, actor=actor,
                         payload={"changes": {"head": [user.pk, successor.pk]}})
        user.is_active = False
        user.deactivated_at = now
        user.save(update_fields=["is_active", "deactivated_at"])
        event_record(stream=user.stream, type=EventType.USER_DEACTIVATED, actor=actor, payload={
            "successor": successor.pk, "tickets": len(ticket_ids), "tasks": moved_tasks,
            "teams": [t.pk for t in teams], "reason": _name(reason, "reason", 500),
        })
    return Handover(successor, len(ticket_ids), moved_tasks, len(teams))


def user_reactivate(*, actor: User | None, user: User) -> User:
    require_role(_facts(actor), Role.ADMIN, what="reactivate users")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active:
            raise Conflict(f"{user.username} is active", code="already_active")
        user.is_active, user.deactivated_at = True, None
        user.save(update_fields=["is_active", "deactivated_at"])
        event_record(stream=user.stream, type=EventType.USER_REACTIVATED, actor=actor, payload={})
    return user


def team_create(*, actor: User | None, name: str, head: User) -> Team:
    """Create a team led by ``head`` (a head of sales); the head joins it if in no team yet."""
    require_role(_facts(actor), Role.ADMIN, Role.DIRECTOR, what="create teams")
    name = _name(name, "team name", 100)
    if not name:
        raise BadInput("the team needs a name", code="bad_name")
    if head.role != Role.HEAD:
        raise BadInput(f"{head.username} is not a head of sales (role {head.role})",
                       code="not_a_head")
    with transaction.atomic():
        if team_named(name) is not None:
            raise Conflict(f"a team named {name!r} exists", code="team_exists")
        claim_users([head])
        team = Team.objects.create(name=name, head=head, created_at=clock.now())
        event_record(stream=team.stream, type=EventType.TEAM_CREATED, actor=actor,
                     new_stream=True, payload={"head": head.pk})
        if head.team_id is None:
            head = User.objects.select_for_update().get(pk=head.pk)
            head.team = team
            head.save(update_fields=["team"])
            event_record(stream=head.stream, type=EventType.USER_UPDATED, actor=actor,
                         payload={"changes": {"team": [None, team.pk]}})
    return team


def team_rename(*, actor: User | None, team: Team, name: str) -> Team:
    require_role(_facts(actor), Role.ADMIN, Role.DIRECTOR, what="rename teams")
    name = _name(name, "team name", 100)
    if not name:
        raise BadInput("the team needs a name", code="bad_name")
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        if name == team.name:
            return team
        other = team_named(name)
        if other is not None and other.pk != team.pk:
            raise Conflict(f"a team named {name!r} exists", code="team_exists")
        old, team.name = team.name, name
        team.save(update_fields=["name"])
        event_record(stream=team.stream, type=EventType.TEAM_UPDATED, actor=actor,
                     payload={"changes": {"name": [old, name]}})
    return team


def team_set_head(*, actor: User | None, team: Team, head: User) -> Team:
    require_role(_facts(actor), Role.ADMIN, Role.DIRECTOR, what="change team heads")
    if head.role != Role.HEAD:
        raise BadInput(f"{head.username} is not a head of sales", code="not_a_head")
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        if team.head_id == head.pk:
            return team
        claim_users([head])
        old = team.head_id
        team.head = head
        team.save(update_fields=["head"])
        event_record(stream=team.stream, type=EventType.TEAM_UPDATED, actor=actor,
                     payload={"changes": {"head": [old, head.pk]}})
    return team


def absence_add(*, actor: User | None, user: User, starts_at: datetime, ends_at: datetime,
                reason: str = "") -> Absence:
    """Record an absence: executor rules skip the user while it lasts (their open work stays)."""
    if actor is not None:
        require_active(actor_facts(actor))
    if actor is not None and actor.pk != user.pk:
        facts = actor_facts(actor)
        if not (facts.role in {Role.ADMIN, Role.DIRECTOR}
                or (facts.role is Role.HEAD and user.team_id in facts.headed_team_ids)):
            raise Forbidden("only the user, their head, a director or an admin can record this",
                            code="forbidden")
    for moment in (starts_at, ends_at):
        if timezone.is_naive(moment):
            raise BadInput("absence times need a time zone", code="naive_time")
    if ends_at <= starts_at:
        raise BadInput("an absence must end after it starts", code="bad_period")
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        absence = Absence.objects.create(user=user, starts_at=starts_at, ends_at=ends_at,
                                         reason=_name(reason, "reason", 200), created_by=actor,
                                         created_at=clock.now())
        event_record(stream=user.stream, type=EventType.ABSENCE_ADDED, actor=actor, payload={
            "absence": absence.pk, "from": starts_at, "until": ends_at})
    return absence


def absence_cancel(*, actor: User | None, absence: Absence) -> Absence:
    require_role(_facts(actor), Role.ADMIN, Role.DIRECTOR, Role.HEAD, what="cancel absences")
    with transaction.atomic():
        absence = Absence.objects.select_for_update().get(pk=absence.pk)
        if absence.cancelled_at is not None:
            raise Conflict("this absence is already cancelled", code="already_cancelled")
        absence.cancelled_at = clock.now()
        absence.save(update_fields=["cancelled_at"])
        event_record(stream=absence.user.stream, type=EventType.ABSENCE_CANCELLED, actor=actor,
                     payload={"absence": absence.pk})
    return absence
