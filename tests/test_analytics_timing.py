"""K9 time in stage and K12 control on small histories made through the services.

Moments are Moscow time, the company zone; the business week is Mon-Fri 09:00-13:00 and
14:00-18:00 (lunch 13-14). November 2026: Mon 9 .. Fri 13, Mon 16, Tue 17 are working days
(the only public holiday in November is Wed 4). Every expected number is worked out here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from estafeta.analytics.period import Cut, Period
from estafeta.analytics.timing import k9_time_in_stage, median, percentile
from estafeta.core import clock
from estafeta.pipelines.services import pipeline_load
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    stage_close,
    stage_pause,
    stage_resume,
    ticket_close_lost,
    ticket_void,
)

from .factories import PIPELINES, World

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
NOV = Period.parse("2026-11")
ALL = Cut()
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


def pausable_sales() -> None:
    """A second version of "sales" whose first stage, "new", may wait for the client."""
    text = (PIPELINES / "sales.yaml").read_text()
    pipeline_load(actor=None, source="sales.yaml",
                  text=text.replace("    sla: 2h\n", "    sla: 2h\n    pausable: true\n"))


def created(w: World, when: datetime, owner: Any = None) -> Ticket:
    with clock.frozen(when):
        return w.ticket(owner=owner or w.ann)


def close_new(w: World, ticket: Ticket, when: datetime) -> None:
    with clock.frozen(when):
        w.fill_new(ticket, w.head)
        stage_close(actor=w.head, ticket=ticket, stage="new")


def lose(w: World, ticket: Ticket, when: datetime) -> None:
    with clock.frozen(when):
        ticket_close_lost(actor=w.head, ticket=ticket, reason="price")


def test_median_and_nearest_rank_percentile() -> None:
    assert median([]) is None and percentile([], 0.8) is None
    assert median([3 * H, H, 2 * H]) == 2 * H
    assert median([H, 4 * H, 2 * H, 3 * H]) == 2 * H + 30 * M
    five = [H, 2 * H, 3 * H, 4 * H, 5 * H]
    assert percentile(five, 0.8) == 4 * H  # ceil(0.8 * 5) = 4th
    assert percentile([*five, 6 * H, 7 * H, 8 * H, 9 * H, 10 * H], 0.8) == 8 * H
    assert percentile([H], 0.8) == H


@pytest.fixture
def history(world: World) -> dict[str, Ticket]:
    w = world
    pausable_sales()
    # t0: entered "offer" on Fri Oct 30 17:30, lost Mon Nov 2 10:00: 30 min + 1 h = 1h30 in
    # November; its "new" stay ended in October and is not in November's figure.
    t0 = created(w, at(10, 30, 17, 0))
    close_new(w, t0, at(10, 30, 17, 30))
    lose(w, t0, at(11, 2, 10, 0))
    # t1: "new" Mon 9 10:00-12:30 = 2h30; then in "offer" from 12:30, still open.
    t1 = created(w, at(11, 9, 10, 0))
    close_new(w, t1, at(11, 9, 12, 30))
    # t2: "new" Mon 9 12:00-14:30 over lunch = 1 h + 30 min = 1h30; "offer" 14:30-16:00 = 1h30.
    t2 = created(w, at(11, 9, 12, 0))
    close_new(w, t2, at(11, 9, 14, 30))
    lose(w, t2, at(11, 9, 16, 0))
    # t3 (Bob's): "new" Fri 13 17:00 - Mon 16 09:45 over the weekend = 1 h + 45 min = 1h45;
    # then in "offer" from Mon 16 09:45, still open.
    t3 = created(w, at(11, 13, 17, 0), owner=w.bob)
    close_new(w, t3, at(11, 16, 9, 45))
    # t4: "new" Tue 10 09:00-09:20 = 20 min; "offer" 09:20-09:50 = 30 min.
    t4 = created(w, at(11, 10, 9, 0))
    close_new(w, t4, at(11, 10, 9, 20))
    lose(w, t4, at(11, 10, 9, 50))
    # t5: "new" Wed 11 09:00-16:00 with a pause 10:00-15:00: the stay counts whole, 4 h + 2 h
    # = 6 h; "offer" 16:00-17:00 = 1 h.
    t5 = created(w, at(11, 11, 9, 0))
    with clock.frozen(at(11, 11, 10, 0)):
        stage_pause(actor=w.head, ticket=t5, reason="waits for the bank")
    with clock.frozen(at(11, 11, 15, 0)):
        stage_resume(actor=w.head, ticket=t5)
    close_new(w, t5, at(11, 11, 16, 0))
    lose(w, t5, at(11, 11, 17, 0))
    # t6: "new" since Tue 17 09:00 (SLA 2 h: due 11:00), open.
    t6 = created(w, at(11, 17, 9, 0))
    # t7: void: none of its stays count.
    t7 = created(w, at(11, 12, 9, 0))
    with clock.frozen(at(11, 12, 10, 0)):
        ticket_void(actor=w.head, ticket=t7, reason="duplicate")
    return {"t0": t0, "t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6, "t7": t7}


def test_k9_closed_stays_in_business_time(world: World, history: dict[str, Ticket]) -> None:
    t = history
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, ALL, stuck_after=7 * H)
    assert k9.at == at(11, 17, 9, 30)
    new = sorted(k9.durations(stage="new"))
    assert new == [20 * M, 90 * M, 105 * M, 150 * M, 6 * H]
    offer = sorted(k9.durations(stage="offer"))
    assert offer == [30 * M, H, 90 * M, 90 * M]
    rows = {row["stage"]: row for row in k9.rows()}
    # new: 5 stays, the middle one 1h45; 80th percentile: ceil(0.8 * 5) = the 4th, 2h30.
    assert rows["new"]["closed"] == 5
    assert rows["new"]["median"] == 105 * M
    assert rows["new"]["p80"] == 150 * M
    # offer: 4 stays, median (1 h + 1h30) / 2 = 1h15; p80: ceil(3.2) = the 4th, 1h30.
    assert rows["offer"]["median"] == 75 * M
    assert rows["offer"]["p80"] == 90 * M
    # Drill-down: the tickets behind a stage's closed stays; t7 (void) and nothing else.
    assert set(k9.closed.ticket_ids(stage="new")) == {t[k].pk for k in ("t1", "t2", "t3", "t4",
                                                                           "t5")}
    assert set(k9.closed.ticket_ids(stage="offer")) == {t[k].pk for k in ("t0", "t2", "t4",
                                                                             "t5")}
    assert k9.closed.total("seconds") == int(
        sum(new + offer, timedelta()).total_seconds())


def test_k9_open_stays_with_their_age_and_the_stuck_list(world: World,
                                                         history: dict[str, Ticket]) -> None:
    t = history
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, ALL, stuck_after=7 * H)
    ages = {f.ticket: timedelta(seconds=float(f.values["age_seconds"])) for f in k9.open.facts}
    # t1 in "offer" since Mon 9 12:30: 30 min + 4 h that day, 4 x 8 h (Tue-Fri), 8 h on Mon 16,
    # 30 min on Tue 17 = 45 h. t3 since Mon 16 09:45: 3h15 + 4 h + 30 min = 7h45. t6: 30 min.
    assert ages == {t["t1"].pk: 45 * H, t["t3"].pk: 7 * H + 45 * M, t["t6"].pk: 30 * M}
    rows = {row["stage"]: row for row in k9.rows()}
    assert rows["offer"]["open"] == 2 and rows["offer"]["oldest_open"] == 45 * H
    assert rows["new"]["open"] == 1
    # Stuck: t1 is past its SLA (1 working day: due Tue 10 12:30); t3 is within its SLA (due
    # Tue 17 09:45) but older than 7 h; t6 neither.
    assert [(s.ticket, s.why) for s in k9.stuck] == [(t["t1"].pk, "sla"), (t["t3"].pk, "age")]
    assert rows["offer"]["stuck"] == 2 and rows["new"]["stuck"] == 0
    # Without a duration only the SLA counts.
    with clock.frozen(at(11, 17, 9, 30)):
        assert [s.ticket for s in k9_time_in_stage(NOV, ALL).stuck] == [t["t1"].pk]


def test_k9_open_stays_as_of_the_end_of_a_past_period(world: World,
                                                      history: dict[str, Ticket]) -> None:
    t = history
    # Asked in December about October: at Nov 1 00:00, t0 was in "offer" (since Fri Oct 30
    # 17:30: 30 min) and t1..t7 did not exist yet.
    with clock.frozen(at(12, 5)):
        k9 = k9_time_in_stage(Period.parse("2026-10"), ALL)
    assert k9.at == at(11, 1, 0, 0)
    assert {f.ticket: f.values["age_seconds"] for f in k9.open.facts} == {t["t0"].pk: 30 * 60}
    assert k9.durations(stage="new") == [30 * M]  # t0: Fri Oct 30 17:00-17:30


def test_k9_cut_by_executor(world: World, history: dict[str, Ticket]) -> None:
    t = history
    # "offer" is run by the owner: Bob has only t3, open.
    with clock.frozen(at(11, 17, 9, 30)):
        k9 = k9_time_in_stage(NOV, Cut(seller=world.bob.pk))
    assert k9.durations(stage="offer") == []
    assert [f.ticket for f in k9.open.facts if f.keys["stage"] == "offer"] == [t["t3"].pk]
    with clock.frozen(at(11, 17, 9, 30)):
        other = k9_time_in_stage(NOV, Cut(team=world.other.pk))
    assert other.closed.facts == () and other.open.facts == ()
