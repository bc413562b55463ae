"""``estafeta check``: the invariants over the whole database, every violation listed."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from estafeta.tickets.invariants import violations

from .factories import World


def sql(statement: str, *params: object) -> None:
    """Break an invariant behind the services' back, the way a bad migration or script would."""
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


def test_a_clean_database_passes(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.ticket()
    call_command("check")
    assert "ok: every invariant holds" in capsys.readouterr().out


def test_every_kind_of_violation_is_listed(world: World,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    no_task, no_stage, bad_owner, closed = (world.ticket() for _ in range(4))
    sql("UPDATE tasks_task SET status = 'done', done_at = created_at WHERE ticket_id = %s",
        no_task.pk)
    sql("UPDATE tickets_stagevisit SET closed_at = entered_at WHERE ticket_id = %s", no_stage.pk)
    sql("UPDATE tickets_ticket SET owner_id = %s WHERE id = %s", world.bob.pk, bad_owner.pk)
    sql("UPDATE accounts_user SET is_active = %s WHERE id = %s", False, world.bob.pk)
    sql("UPDATE tickets_ticket SET status = 'lost' WHERE id = %s", closed.pk)
    found = {(v.code, v.subject) for v in violations()}
    assert ("next_task", no_task.number) in found
    assert ("open_stage", no_stage.number) in found
    assert ("owner_active", bad_owner.number) in found
    assert ("closed_clean", closed.number) in found
    assert ("outcome_reason", closed.number) in found
    with pytest.raises(CommandError, match=r"violation\(s\) found"):
        call_command("check", quiet=True)
    out = capsys.readouterr().out
    assert f"next_task: {no_task.number}: open ticket without an open task" in out


def test_a_ticket_without_its_creation_event_is_listed(world: World) -> None:
    t = world.ticket()
    sql("UPDATE tickets_ticket SET number = 'bad-number' WHERE id = %s", t.pk)
    assert ("number", "bad-number") in {(v.code, v.subject) for v in violations()}


def test_numbers_are_streamed_from_the_server(world: World) -> None:
    """A million numbers are not held in the client at once: on PostgreSQL they come through a
    server-side cursor, still open while the first violation is being handled."""
    first, second = world.ticket(), world.ticket()
    sql("UPDATE tickets_ticket SET number = 'bad-1' WHERE id = %s", first.pk)
    sql("UPDATE tickets_ticket SET number = 'bad-2' WHERE id = %s", second.pk)
    found = []
    for v in violations():
        if v.code == "number" and not found and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_cursors WHERE NOT is_holdable")
                assert cursor.fetchone()[0] >= 1
        if v.code == "number":
            found.append(v.subject)
    assert found == ["bad-1", "bad-2"]
