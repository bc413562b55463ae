"""Promise 5: every change is an event in a per-ticket hash chain sealed by checkpoints."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from estafeta.history.models import Checkpoint, Event
from estafeta.history.services import _heads, audit_verify, checkpoint_create
from estafeta.tickets import services as ts

from .conftest import IS_POSTGRES
from .factories import World


def drop_guard(name: str, table: str) -> None:
    """Tests tamper with the history the way an intruder with SQL access would: first the
    trigger goes (inside the test's transaction, so it comes back afterwards)."""
    on = f' ON "{table}"' if IS_POSTGRES else ""
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TRIGGER "estafeta_{name}_{table}"{on}')


def busy(world: World) -> list[object]:
    tickets = [world.ticket() for _ in range(3)]
    for t in tickets:
        ts.activity_log(actor=t.owner, ticket=t, kind="call", direction="out",
                        outcome="connected")
    return tickets


def test_each_ticket_is_its_own_chain(world: World) -> None:
    tickets = busy(world)
    for t in tickets:
        chain = list(Event.objects.filter(stream=t.stream).order_by("seq"))  # type: ignore[attr-defined]
        assert [e.seq for e in chain] == [1, 2]
        assert chain[1].prev_hash == chain[0].hash
        assert chain[0].ticket_id == t.pk  # type: ignore[attr-defined]
    report = audit_verify()
    assert report.ok and report.broken is None
    assert report.streams == Event.objects.values("stream").distinct().count()


def test_rewriting_an_event_is_found(world: World) -> None:
    t = busy(world)[1]
    drop_guard("noupdate", "history_event")
    first = Event.objects.get(stream=t.stream, seq=1)  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE history_event SET actor_id = NULL WHERE id = %s", [first.pk])
    report = audit_verify()
    assert not report.ok and report.broken is not None
    assert (report.broken.stream, report.broken.seq, report.broken.event_id) == (
        t.stream, 1, first.pk)  # type: ignore[attr-defined]
    assert "does not match its hash" in report.broken.reason
    with pytest.raises(CommandError, match=f"broken link: {t.stream} #1"):  # type: ignore[attr-defined]
        call_command("audit", "verify")


def test_rewriting_a_whole_chain_is_found_by_the_checkpoint(world: World) -> None:
    """An intruder who recomputes every hash of a stream still breaks the sealed head."""
    from estafeta.domain.hashchain import GENESIS, EventFacts

    t = busy(world)[0]
    checkpoint_create()
    drop_guard("noupdate", "history_event")
    prev = GENESIS
    for e in Event.objects.filter(stream=t.stream).order_by("seq"):  # type: ignore[attr-defined]
        facts = EventFacts(e.stream, e.seq, prev, e.type, e.occurred_at, None, e.owner_id,
                           e.payload)
        prev = facts.digest()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE history_event SET actor_id = NULL, prev_hash = %s, hash = %s "
                           "WHERE id = %s", [facts.prev_hash, prev, e.pk])
    report = audit_verify()
    assert report.broken is not None and "sealed stream heads" in report.broken.reason


def test_cutting_off_the_tail_is_found_by_the_checkpoint(world: World) -> None:
    t = busy(world)[2]
    checkpoint_create()
    drop_guard("nodelete", "history_event")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM history_event WHERE stream = %s AND seq = 2", [t.stream])  # type: ignore[attr-defined]
    report = audit_verify()
    assert report.broken is not None and "sealed stream heads" in report.broken.reason


def test_checkpoints_seal_only_what_is_new(world: World) -> None:
    busy(world)
    first = checkpoint_create()
    assert first is not None and first.streams == Event.objects.values("stream").distinct().count()
    assert checkpoint_create() is None
    t = world.ticket()
    second = checkpoint_create()
    assert second is not None and second.prev_hash == first.hash and second.streams >= 1
    assert Event.objects.filter(stream=t.stream).exists()
    report = audit_verify()
    assert report.ok and report.checkpoints == 2 and report.unsealed_events == 0
    assert Checkpoint.objects.count() == 2


def test_a_forged_checkpoint_is_found(world: World) -> None:
    busy(world)
    cp = checkpoint_create()
    assert cp is not None
    drop_guard("noupdate", "history_checkpoint")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE history_checkpoint SET streams = streams + 1 WHERE id = %s",
                       [cp.pk])
    report = audit_verify()
    assert report.broken is not None and "checkpoint" in report.broken.stream


def test_the_audit_command_reports_success(world: World, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    busy(world)
    call_command("audit", "checkpoint")
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert "checkpoint " in out and ": up to event " in out
    assert out.strip().splitlines()[-1].startswith("ok: ")


def test_stream_heads_are_streamed_from_the_server(world: World) -> None:
    """Sealing or verifying a checkpoint over a million streams does not hold every head in the
    client: on PostgreSQL they come through a server-side cursor."""
    busy(world)
    upto = Event.objects.order_by("-id").values_list("id", flat=True)[0]
    heads = _heads(0, upto)
    first = next(heads)
    if IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors")
            assert cursor.fetchone()[0] >= 1
    rest = list(heads)
    streams = Event.objects.values("stream").distinct().count()
    assert len(rest) + 1 == streams and first[0] == min(s for s, _, _ in [first, *rest])
