"""``estafeta worker`` seals audit checkpoints: in a pass, when there is none yet or the newest
is ``ESTAFETA_CHECKPOINT_EVERY`` seconds old, it runs what ``estafeta audit checkpoint`` runs."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from estafeta.control.management.commands.worker import run_pass, seal_if_due
from estafeta.core import clock
from estafeta.history.models import Checkpoint, Event
from estafeta.history.services import audit_verify

from .factories import World

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def sealed() -> list[Checkpoint]:
    return list(Checkpoint.objects.order_by("upto_event_id"))


def test_the_first_pass_seals_then_waits_for_the_interval(world: World, now: datetime,
                                                         settings: Any) -> None:
    settings.ESTAFETA_CHECKPOINT_EVERY = 3600
    w = world  # building the world wrote events, and nothing is sealed yet
    assert not sealed() and Event.objects.exists()
    with clock.frozen(now):
        line = run_pass()
    [first] = sealed()
    assert first.upto_event_id == Event.objects.latest("id").pk
    assert f"checkpoint {first.pk} up to event {first.upto_event_id}, hash {first.hash}" in line

    with clock.frozen(now + timedelta(minutes=10)):
        w.ticket(owner=w.ann)  # new events, but the checkpoint is only 10 minutes old
        line = run_pass()
    assert sealed() == [first] and "checkpoint" not in line

    with clock.frozen(now + HOUR - timedelta(seconds=1)):
        run_pass()
    assert sealed() == [first]

    with clock.frozen(now + HOUR):  # an hour after the first: the new events are sealed
        line = run_pass()
    first_, second = sealed()
    assert first_ == first and second.prev_hash == first.hash
    assert second.upto_event_id == Event.objects.latest("id").pk > first.upto_event_id
    assert f"checkpoint {second.pk}" in line
    report = audit_verify()
    assert report.ok and report.checkpoints == 2 and report.unsealed_events == 0


def test_nothing_new_since_the_last_checkpoint_seals_nothing(world: World, now: datetime,
                                                            settings: Any) -> None:
    settings.ESTAFETA_CHECKPOINT_EVERY = 60
    with clock.frozen(now):
        assert seal_if_due(now).startswith("checkpoint ")
    with clock.frozen(now + HOUR):
        assert seal_if_due(now + HOUR) == ""  # due, but no event since
    assert len(sealed()) == 1


def test_zero_leaves_sealing_to_cron(world: World, now: datetime, settings: Any) -> None:
    settings.ESTAFETA_CHECKPOINT_EVERY = 0
    with clock.frozen(now):
        line = run_pass()
    assert not sealed() and "checkpoint" not in line


def test_the_worker_command_prints_the_checkpoint_it_sealed(world: World, now: datetime,
                                                            settings: Any) -> None:
    settings.ESTAFETA_CHECKPOINT_EVERY = 3600
    out = io.StringIO()
    call_command("worker", "--once", "--now", now.isoformat(), stdout=out)
    [cp] = sealed()
    assert f"checkpoint {cp.pk} up to event {cp.upto_event_id}, hash {cp.hash}" in out.getvalue()
    # a replay at a moment before the checkpoint was made seals nothing more
    out = io.StringIO()
    call_command("worker", "--once", "--now", (cp.created_at - HOUR).isoformat(), stdout=out)
    assert len(sealed()) == 1 and "checkpoint" not in out.getvalue()
