from estafeta.tickets.invariants import violations

from .factories import World


def test_a_new_ticket_has_a_number_an_owner_and_a_first_task(world: World) -> None:
    ticket = world.ticket()
    assert ticket.number.startswith("Z-2026-")
    assert ticket.owner in (world.ann, world.bob)
    assert ticket.tasks.get().assignee == ticket.owner
    assert list(violations()) == []
