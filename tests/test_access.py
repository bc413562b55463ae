"""The ticket visibility choke point, as a matrix of roles and relations to the ticket."""

from __future__ import annotations

import pytest

from estafeta.domain.errors import NotFound
from estafeta.tasks.services import task_plan
from estafeta.tickets.access import access_ticket, tickets_visible_to
from estafeta.tickets.models import Ticket

from .factories import World, draft, make_user


@pytest.fixture
def tickets(world: World) -> dict[str, Ticket]:
    """ann's ticket; bob's ticket where ann holds a task; olga's ticket in the other team."""
    own = world.ticket(owner=world.ann)
    helped = world.ticket(owner=world.bob)
    task_plan(actor=world.bob, ticket=helped, draft=draft("Ann calls", assignee=world.ann))
    other = world.ticket(owner=world.olga)
    return {"own": own, "helped": helped, "other": other}


@pytest.mark.parametrize(("who", "sees"), [
    ("ann", {"own", "helped"}),
    ("bob", {"helped"}),
    ("olga", {"other"}),
    ("head", {"own", "helped"}),  # helen heads Sales
    ("other_head", {"other"}),
    ("director", {"own", "helped", "other"}),
    ("operator", {"own", "helped", "other"}),  # otto registered all three
    ("admin", set()),
])
def test_who_sees_which_ticket(world: World, tickets: dict[str, Ticket], who: str,
                               sees: set[str]) -> None:
    user = getattr(world, who)
    visible = set(tickets_visible_to(user).values_list("pk", flat=True))
    assert {name for name, t in tickets.items() if t.pk in visible} == sees
    for name, ticket in tickets.items():
        if name in sees:
            assert access_ticket(user, ticket.number.lower()).pk == ticket.pk
        else:
            with pytest.raises(NotFound) as err:
                access_ticket(user, ticket.number)
            assert err.value.message == f"there is no ticket {ticket.number}"


def test_missing_and_forbidden_tickets_look_the_same(world: World,
                                                     tickets: dict[str, Ticket]) -> None:
    with pytest.raises(NotFound) as forbidden:
        access_ticket(world.olga, tickets["own"].number)
    with pytest.raises(NotFound) as missing:
        access_ticket(world.olga, "Z-2026-999999")
    assert forbidden.value.code == missing.value.code == "unknown_ticket"
    with pytest.raises(NotFound):
        access_ticket(world.olga, "'; DROP TABLE tickets_ticket; --")


def test_an_operator_sees_only_what_they_registered(world: World) -> None:
    other_operator = make_user("oleg", "operator")
    t = world.ticket()
    assert not tickets_visible_to(other_operator).filter(pk=t.pk).exists()


def test_deactivated_people_see_nothing(world: World, tickets: dict[str, Ticket]) -> None:
    from estafeta.accounts.services import user_deactivate

    user_deactivate(actor=None, user=world.bob, successor=world.ann)
    world.bob.refresh_from_db()
    assert not tickets_visible_to(world.bob).exists()
