"""The control panel: overdue tasks, stages at risk or breached, unacknowledged escalations and
quiet tickets, for heads (their teams) and directors (everyone); acknowledging; the nav count."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.control.models import Escalation
from estafeta.control.services import monitor_pass
from estafeta.core import clock
from estafeta.history.models import Event

from .factories import World


def signed_in(user: User) -> HttpClient:
    http = HttpClient()
    User.objects.filter(pk=user.pk).update(language="en")  # English texts; no event to count
    http.force_login(user)
    return http


def numbers(html: str) -> set[str]:
    return set(re.findall(r'href="/tickets/([A-Z0-9-]+)/"', html))


def tab_counts(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="count(?: warn)?">(\d+)</span></a>', html)]


@pytest.mark.parametrize(("who", "status"), [
    ("head", 200), ("director", 200), ("ann", 403), ("operator", 403), ("admin", 403),
])
def test_the_control_panel_is_for_heads_and_directors(world: World, who: str,
                                                      status: int) -> None:
    assert signed_in(getattr(world, who)).get("/control/").status_code == status


def test_a_head_sees_their_teams_late_work_and_a_director_everyones(world: World) -> None:
    ann = world.ticket(owner=world.ann)
    olga = world.ticket(owner=world.olga)
    later = clock.now() + timedelta(days=1)
    monitor_pass(now=later)
    with clock.frozen(later):
        head = signed_in(world.head)
        html = head.get("/control/").content.decode()
        assert numbers(html) == {ann.number}
        # overdue, stages, unacknowledged escalations, quiet (none quiet for 7 days yet)
        assert tab_counts(html) == [1, 1, 5, 0]  # task: head, director; stage: 3 levels
        assert numbers(head.get("/control/?show=escalations").content.decode()) == {ann.number}
        assert numbers(head.get("/control/?show=stages").content.decode()) == {ann.number}
        director = signed_in(world.director).get("/control/?show=escalations").content.decode()
        assert numbers(director) == {ann.number, olga.number}
        # Filters: by person, by search.
        assert numbers(head.get(f"/control/?person={world.bob.pk}").content.decode()) == set()
        assert numbers(head.get("/control/?q=Petrov").content.decode()) == {ann.number}
        assert head.get("/control/?days=0").status_code == 400
        # The nav bar counts the unacknowledged escalations the person sees.
        nav = head.get("/tasks/").content.decode()
        assert re.search(r'Control <span class="count"[^>]*>5</span>', nav)


def test_quiet_tickets_show_after_the_chosen_number_of_days(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    with clock.frozen(clock.now() + timedelta(days=3)):
        http = signed_in(world.head)
        assert numbers(http.get("/control/?show=quiet").content.decode()) == set()
        assert numbers(http.get("/control/?show=quiet&days=2").content.decode()) == {
            ticket.number}


def test_acknowledging_from_the_panel_is_recorded_and_a_seller_cannot(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    monitor_pass(now=clock.now() + timedelta(days=1))
    escalation = Escalation.objects.filter(ticket=ticket, level="head").first()
    assert escalation is not None
    url = f"/control/escalations/{escalation.pk}/acknowledge/"
    events = Event.objects.count()
    assert signed_in(world.ann).post(url).status_code == 403
    assert signed_in(world.other_head).post(url).status_code == 404  # not their ticket
    assert signed_in(world.head).get(url).status_code == 405
    assert Event.objects.count() == events
    assert signed_in(world.head).post(url, {"next": "https://evil.example/"})["Location"] == (
        "/control/")
    escalation.refresh_from_db()
    assert escalation.acknowledged_by == world.head
    assert signed_in(world.director).post(url).status_code == 409
    assert signed_in(world.head).post("/control/escalations/999999/acknowledge/"
                                      ).status_code == 404


def test_the_panel_reads_a_fixed_number_of_queries_whatever_the_rows(world: World) -> None:
    def queries(show: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert http.get(f"/control/?show={show}").status_code == 200
        return len(ctx.captured_queries)

    http = signed_in(world.director)
    world.ticket(owner=world.ann)
    monitor_pass(now=clock.now() + timedelta(days=1))
    with clock.frozen(clock.now() + timedelta(days=2)):
        few = {s: queries(s) for s in ("overdue", "stages", "escalations", "quiet")}
    for _ in range(6):
        world.ticket(owner=world.bob)
    monitor_pass(now=clock.now() + timedelta(days=1, minutes=1))
    with clock.frozen(clock.now() + timedelta(days=2)):
        many = {s: queries(s) for s in ("overdue", "stages", "escalations", "quiet")}
    assert few == many


def test_names_typed_by_people_stay_text_on_the_panel(world: World) -> None:
    from estafeta.clients.services import client_create

    client = client_create(actor=world.operator, name="<script>alert(1)</script>",
                           phones=["+7 900 000-00-01"])
    world.ticket(owner=world.ann, client=client)
    monitor_pass(now=clock.now() + timedelta(days=1))
    with clock.frozen(clock.now() + timedelta(days=1)):
        html = signed_in(world.head).get("/control/?show=escalations").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_the_ticket_page_shows_the_stage_sla_clock_in_business_time(world: World) -> None:
    # Wednesday 10:00 Moscow, stage "new" has 2 business hours: due 12:00, at risk from 11:36.
    ticket = world.ticket(owner=world.ann)
    http = signed_in(world.ann)

    def clock_text(minutes: int) -> str:
        with clock.frozen(clock.now() + timedelta(minutes=minutes)):
            html = http.get(f"/tickets/{ticket.number}/").content.decode()
        match = re.search(r'<p class="sla-clock" id="sla">(.*?)</p>', html, re.S)
        assert match, "no SLA clock"
        return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())

    assert "on time 2 h 0 min of business time left" in clock_text(0)
    assert "at risk 0 h 20 min of business time left" in clock_text(100)
    # 14:30: 12:00-13:00 and 14:00-14:30 are business time; lunch is not.
    assert "breached 1 h 30 min of business time late" in clock_text(270)


def test_the_ticket_page_lists_escalations_and_a_head_acknowledges_there(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    monitor_pass(now=clock.now() + timedelta(days=1))
    page = f"/tickets/{ticket.number}/"
    seller = signed_in(world.ann).get(page).content.decode()
    assert 'id="escalations"' in seller and "task overdue" in seller
    assert "Acknowledge" not in seller  # a seller sees the history, cannot acknowledge
    head = signed_in(world.head)
    html = head.get(page).content.decode()
    forms = re.findall(r'action="(/control/escalations/\d+/acknowledge/)"', html)
    assert len(forms) == Escalation.objects.filter(ticket=ticket).count() == 5
    answer = head.post(forms[0], {"next": page})
    assert answer.status_code == 302 and answer["Location"] == page
    assert "acknowledged by Helen" in head.get(page).content.decode()


def test_acknowledging_twice_says_so_in_words(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    monitor_pass(now=clock.now() + timedelta(days=1))
    escalation = Escalation.objects.filter(ticket=ticket).first()
    assert escalation is not None
    url = f"/control/escalations/{escalation.pk}/acknowledge/"
    assert signed_in(world.head).post(url).status_code == 302
    again = signed_in(world.director).post(url)
    assert again.status_code == 409
    assert "This escalation is already acknowledged." in again.content.decode()
