"""People: creating users and teams, absences, and deactivation handing all work over."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from estafeta.accounts import services as acc
from estafeta.accounts.models import Team, User
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.history.models import Event
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import StageVisit
from estafeta.tickets.services import stage_close

from .dbstate import refused
from .factories import PASSWORD, World, make_user


def test_a_user_is_created_with_a_role_and_an_event(db: None, now: datetime) -> None:
    u = make_user("maria", "seller", email=" Maria@Example.com ", first_name="Мария")
    assert (u.role, u.email, u.first_name, u.is_staff) == ("seller", "maria@example.com",
                                                           "Мария", False)
    assert u.check_password(PASSWORD)
    event = Event.objects.get(stream=u.stream)
    assert (event.type, event.payload["role"]) == ("user.created", "seller")
    admin = make_user("root2", "admin")
    assert admin.is_staff and admin.is_superuser


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"username": "bad name"}, "bad_username"),
    ({"username": ""}, "bad_username"),
    ({"role": "wizard"}, "bad_role"),
    ({"password": "123"}, "weak_password"),
    ({"password": "password"}, "weak_password"),
    ({"email": "not-an-email"}, "bad_email"),
    ({"language": "de"}, "bad_language"),
    ({"username": "ANN"}, "username_taken"),
])
def test_bad_users_are_refused(world: World, kwargs: dict[str, str], code: str) -> None:
    args = {"username": "newbie", "role": "seller", "password": PASSWORD} | kwargs
    refused(lambda: acc.user_create(actor=None, **args), code)  # type: ignore[arg-type]


def test_only_admins_manage_users(world: World) -> None:
    for actor in (world.head, world.ann, world.director):
        refused(lambda a=actor: acc.user_create(actor=a, username="x", role="seller",  # type: ignore[misc]
                                                password=PASSWORD), "role_required", Forbidden)
    acc.user_create(actor=world.admin, username="x", role="seller", password=PASSWORD)


def test_a_team_needs_a_head_of_sales(world: World) -> None:
    refused(lambda: acc.team_create(actor=None, name="Fleet", head=world.ann), "not_a_head")
    refused(lambda: acc.team_create(actor=None, name="sales", head=world.head), "team_exists")
    team = acc.team_create(actor=None, name="Fleet", head=world.head)
    assert team.head == world.head
    assert Event.objects.get(stream=team.stream).type == "team.created"


def test_a_head_of_a_team_keeps_the_head_role(world: World) -> None:
    refused(lambda: acc.user_update(actor=None, user=world.head, role="seller"), "heads_a_team")
    acc.user_update(actor=None, user=world.ann, role="head", first_name="Anna")
    world.ann.refresh_from_db()
    assert world.ann.role == "head"
    event = Event.objects.filter(stream=world.ann.stream).order_by("-seq").first()
    assert event is not None and event.payload["changes"] == {
        "role": ["seller", "head"], "first_name": ["*", "*"]}


def test_deactivation_hands_all_open_work_over_in_one_step(world: World) -> None:
    own = world.ticket(owner=world.ann)
    own.refresh_from_db()
    world.fill_new(own)
    own = stage_close(actor=world.ann, ticket=own, stage="new")
    helped = world.ticket(owner=world.bob)
    from estafeta.tasks.services import task_plan

    from .factories import draft

    task_plan(actor=world.bob, ticket=helped, draft=draft("Ann calls", assignee=world.ann))
    handover = acc.user_deactivate(actor=None, user=world.ann, reason="left the company")
    assert (handover.successor, handover.tickets) == (world.head, 2)
    world.ann.refresh_from_db()
    assert not world.ann.is_active and world.ann.deactivated_at is not None
    own.refresh_from_db()
    assert own.owner == world.head
    assert not Task.objects.filter(assignee=world.ann, status="open").exists()
    assert not StageVisit.objects.filter(executor=world.ann, closed_at__isnull=True).exists()
    helped.refresh_from_db()
    assert helped.owner == world.bob
    for t in (own, helped):
        event = Event.objects.filter(stream=t.stream).order_by("-seq").first()
        assert event is not None and event.type == "ticket.handed_over"
    assert list(violations()) == []
    assert not world.ann.check_password("x")


def test_deactivation_without_anyone_to_take_over_is_refused(world: World) -> None:
    loner = make_user("lone", "seller")
    refused(lambda: acc.user_deactivate(actor=None, user=loner), "successor_needed")
    refused(lambda: acc.user_deactivate(actor=None, user=world.ann, successor=world.ann),
            "bad_successor")


def test_the_last_head_of_sales_cannot_be_deactivated(world: World) -> None:
    # Oscar heads "Other": his successor must be a head, and takes his team.
    refused(lambda: acc.user_deactivate(actor=None, user=world.other_head,
                                        successor=world.olga), "successor_not_head")
    acc.user_deactivate(actor=None, user=world.other_head, successor=world.head)
    assert Team.objects.get(name="Other").head == world.head
    err = refused(lambda: acc.user_deactivate(actor=None, user=world.head,
                                              successor=world.director), "last_head", Forbidden)
    assert "last active head" in err.message


def test_a_deactivated_user_cannot_act(world: World) -> None:
    t = world.ticket(owner=world.bob)
    acc.user_deactivate(actor=None, user=world.bob, successor=world.ann)
    world.bob.refresh_from_db()
    refused(lambda: stage_close(actor=world.bob, ticket=t, stage="new"), "actor_inactive",
            Forbidden)
    refused(lambda: acc.user_deactivate(actor=None, user=world.bob, successor=world.ann),
            "already_inactive", Conflict)
    acc.user_reactivate(actor=None, user=world.bob)
    assert User.objects.get(pk=world.bob.pk).is_active


def test_absences_are_checked_and_can_be_cancelled(world: World, now: datetime) -> None:
    refused(lambda: acc.absence_add(actor=None, user=world.ann, starts_at=now,
                                    ends_at=now - timedelta(hours=1)), "bad_period", BadInput)
    refused(lambda: acc.absence_add(actor=world.bob, user=world.ann, starts_at=now,
                                    ends_at=now + timedelta(days=1)), "forbidden", Forbidden)
    absence = acc.absence_add(actor=world.head, user=world.ann, starts_at=now,
                              ends_at=now + timedelta(days=1), reason="vacation")
    assert {world.ticket().owner for _ in range(2)} == {world.bob}
    acc.absence_cancel(actor=world.head, absence=absence)
    assert {world.ticket().owner for _ in range(2)} == {world.ann, world.bob}


def test_a_team_is_renamed_with_an_event(world: World) -> None:
    team = acc.team_rename(actor=None, team=world.sales, name="Розничные продажи")
    assert team.name == "Розничные продажи"
    refused(lambda: acc.team_rename(actor=None, team=world.other, name="РОЗНИЧНЫЕ ПРОДАЖИ"),
            "team_exists")
    event = Event.objects.filter(stream=team.stream).order_by("-seq").first()
    assert event is not None and event.payload["changes"]["name"] == ["Sales", "Розничные продажи"]


def test_people_change_their_own_language_and_password(world: World) -> None:
    acc.user_set_own_language(actor=world.ann, language="en")
    world.ann.refresh_from_db()
    assert world.ann.language == "en"
    refused(lambda: acc.user_set_own_language(actor=world.ann, language="de"), "bad_language")
    refused(lambda: acc.user_change_own_password(actor=world.ann, old_password="nope",
                                                 new_password="Another-pass-2026"),
            "wrong_password")
    refused(lambda: acc.user_change_own_password(actor=world.ann, old_password=PASSWORD,
                                                 new_password="123"), "weak_password")
    user = acc.user_change_own_password(actor=world.ann, old_password=PASSWORD,
                                        new_password="Another-pass-2026")
    assert user.check_password("Another-pass-2026")
    kinds = [e.payload for e in Event.objects.filter(stream=world.ann.stream).order_by("seq")]
    assert kinds[-2:] == [{"changes": {"language": ["ru", "en"]}},
                          {"changes": {"password": ["*", "*"]}}]
