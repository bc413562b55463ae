"""Never twice, never lost, under concurrency: the same arrival delivered by several workers at
once makes one ticket (threads on PostgreSQL); the savepoint path that settles a lost race
(both engines)."""

from __future__ import annotations

import pytest
from django.db import connection

from estafeta.clients.models import Client
from estafeta.domain.codes import Channel
from estafeta.domain.errors import BadInput
from estafeta.history.services import audit_verify
from estafeta.intake import services
from estafeta.intake.models import IntakeRecord
from estafeta.intake.services import Arrival, Outcome, intake_arrival
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import Ticket

from .factories import World, build_world
from .test_concurrency import in_threads
from .test_intake_routing import counts, mail


def arrival(external_id: str, email: str = "new.client@example.com") -> Arrival:
    return Arrival(channel=Channel.EMAIL, source="mailbox:1", external_id=external_id,
                   pipeline="sales", emails=(email,), subject="A car", text="Hello")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_same_message_from_eight_threads_makes_one_ticket_on_postgres() -> None:
    build_world()
    for round_ in range(3):
        results = in_threads(8, lambda i, r=round_: intake_arrival(  # type: ignore[misc]
            arrival(f"<same-{r}@example.com>", f"client{r}@example.com")))
        outcomes = [r for r in results if isinstance(r, Outcome)]
        assert len(outcomes) == 8, results
        assert sum(not o.repeated for o in outcomes) == 1
        assert len({o.record.pk for o in outcomes}) == 1
        assert len({o.ticket.pk for o in outcomes}) == 1
    assert IntakeRecord.objects.count() == 3
    assert Ticket.objects.count() == 3
    assert Client.objects.exclude(name="Ivan Petrov").count() == 3
    assert list(violations()) == []
    assert audit_verify().ok


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_first_messages_of_one_new_client_from_threads_make_one_client_on_postgres() -> None:
    build_world()
    results = in_threads(6, lambda i: intake_arrival(arrival(f"<m{i}@example.com>")))
    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert len(outcomes) == 6, results
    assert Client.objects.filter(contacts__value="new.client@example.com").count() == 1
    assert Ticket.objects.count() == 1  # the first opened it, the others were attached to it
    assert sum(o.created for o in outcomes) == 1
    # Five messages on an existing ticket, one reply task.
    assert Task.objects.filter(follow_up__kind="reply").count() == 1
    assert list(violations()) == []


def test_a_lost_race_is_settled_by_the_unique_constraint(world: World,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """As if another worker committed the same arrival between the check and the insert: the
    insert fails, the savepoint undoes the client, ticket and activity, and the first record is
    returned."""
    first = intake_arrival(mail())
    before = counts()
    real = services._repeated
    calls: list[int] = []

    def blind_once(source: str, external_id: str) -> Outcome | None:
        calls.append(1)
        return None if len(calls) == 1 else real(source, external_id)

    monkeypatch.setattr(services, "_repeated", blind_once)
    again = intake_arrival(mail(emails=("someone.else@example.com",)))
    assert again.repeated and again.record.pk == first.record.pk
    assert counts() == before
    assert connection.in_atomic_block  # the test's own transaction is still usable
    assert Client.objects.filter(contacts__value="someone.else@example.com").count() == 0


def test_nul_characters_are_dropped_not_fatal(world: World) -> None:
    out = intake_arrival(mail(text="Hel\x00lo", name="Ma\x00ria",
                              emails=("ma\x00ria@example.com",)))
    assert out.record.text == "Hello" and out.ticket.client.name == "Maria"
    with pytest.raises(BadInput, match="NUL"):
        intake_arrival(mail(external_id="<a\x00b>"))
