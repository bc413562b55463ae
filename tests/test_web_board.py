"""The board: who sees which cards, filters, what a card shows, moving a card by closing its
stage (checklist gate included), and a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.clients.models import Segment
from estafeta.clients.services import classification_ensure, client_create, client_update
from estafeta.core import clock
from estafeta.history.models import Event
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import stage_close

from .factories import World


def signed_in(user: User, *, csrf: bool = False) -> HttpClient:
    http = HttpClient(enforce_csrf_checks=csrf)
    # These tests read the English texts (a plain update: no event to count).
    User.objects.filter(pk=user.pk).update(language="en")
    http.force_login(user)
    return http


def cards(html: str, tickets: list[Ticket]) -> set[str]:
    return {t.number for t in tickets if f'data-number="{t.number}"' in html}


@pytest.mark.parametrize(("who", "status"), [
    ("ann", 200), ("head", 200), ("director", 200), ("operator", 403), ("admin", 403),
])
def test_the_board_opens_for_sellers_heads_and_directors(world: World, who: str,
                                                         status: int) -> None:
    assert signed_in(getattr(world, who)).get("/board/").status_code == status


def test_sellers_see_their_cards_heads_their_team_directors_everything(world: World) -> None:
    anns, bobs, olgas = (world.ticket(owner=p) for p in (world.ann, world.bob, world.olga))
    every = [anns, bobs, olgas]

    def seen(who: User) -> set[str]:
        return cards(signed_in(who).get("/board/").content.decode(), every)

    assert seen(world.ann) == {anns.number}
    assert seen(world.head) == {anns.number, bobs.number}
    assert seen(world.other_head) == {olgas.number}
    assert seen(world.director) == {t.number for t in every}


def test_a_card_shows_number_client_owner_age_and_an_overdue_mark(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    with clock.frozen(clock.now() + timedelta(hours=3)):  # the first task was due in 1 h
        html = signed_in(world.ann).get("/board/").content.decode()
    card = html[html.index(f'data-number="{ticket.number}"'):]
    card = card[:card.index("</li>")]
    assert ticket.number in card and "Ivan Petrov" in card and "ann" in card
    assert "3" in card[card.index('class="age"'):]
    assert "overdue" in card
    assert "is-overdue" in html
    fresh = signed_in(world.ann).get("/board/").content.decode()
    assert "is-overdue" not in fresh


def test_filters_by_owner_team_segment_territory_and_channel(world: World) -> None:
    retail = classification_ensure(actor=None, model=Segment, code="retail", name="Retail")
    shop = client_create(actor=world.operator, name="Shop", phones=["+79030000002"])
    client_update(actor=world.director, client=shop, segment=retail)
    anns = world.ticket(owner=world.ann, channel="email")
    bobs = world.ticket(owner=world.bob, client=shop)
    olgas = world.ticket(owner=world.olga)
    every = [anns, bobs, olgas]
    http = signed_in(world.director)

    def shown(**params: object) -> set[str]:
        response = http.get("/board/", params)
        assert response.status_code == 200
        return cards(response.content.decode(), every)

    assert shown(owner=world.bob.pk) == {bobs.number}
    assert shown(team=world.other.pk) == {olgas.number}
    assert shown(segment="retail") == {bobs.number}
    assert shown(channel="email") == {anns.number}
    assert shown(q="shop") == {bobs.number}
    assert shown(pipeline="sales") == {t.number for t in every}
    assert http.get("/board/", {"owner": "not a number"}).status_code == 400


def _move(http: HttpClient, ticket: Ticket, stage: str = "new", **extra: str) -> Any:
    return http.post("/board/move/", {"number": ticket.number, "stage": stage, **extra})


def test_moving_a_card_closes_its_stage_through_the_service(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    world.fill_new(ticket)
    http = signed_in(world.ann)
    events = Event.objects.count()
    response = _move(http, ticket, back=f"owner={world.ann.pk}&junk=1")
    assert response.status_code == 302
    assert response["Location"] == f"/board/?owner={world.ann.pk}"
    ticket.refresh_from_db()
    assert ticket.stage.code == "offer"
    assert Event.objects.count() == events + 1
    assert Event.objects.order_by("-pk").first().type == "stage.closed"  # type: ignore[union-attr]
    board = http.get("/board/").content.decode()
    assert f'data-number="{ticket.number}" data-stage="offer"' in board


def test_a_card_with_missing_checklist_items_is_refused_and_says_which(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    events = Event.objects.count()
    response = _move(signed_in(world.ann), ticket)
    assert response.status_code == 400
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "Client contacted" in said and "What the client needs" in said
    assert "Budget" not in said  # optional
    ticket.refresh_from_db()
    assert ticket.stage.code == "new" and Event.objects.count() == events


def test_a_stale_board_is_refused_with_a_conflict(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    world.fill_new(ticket)
    stage_close(actor=world.ann, ticket=ticket, stage="new")
    events = Event.objects.count()
    response = _move(signed_in(world.ann), ticket, stage="new")
    assert response.status_code == 409
    assert Event.objects.count() == events


def test_someone_else_cannot_move_a_card_they_cannot_see_or_may_not_close(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    world.fill_new(ticket)
    events = Event.objects.count()
    assert _move(signed_in(world.olga), ticket).status_code == 404
    assert _move(signed_in(world.other_head), ticket).status_code == 404
    assert _move(signed_in(world.bob), ticket).status_code == 404
    assert _move(signed_in(world.operator), ticket).status_code == 403
    ticket.refresh_from_db()
    assert ticket.stage.code == "new" and Event.objects.count() == events


@pytest.mark.parametrize("who", ["head", "director"])
def test_a_supervisor_may_move_a_card_recorded_as_an_override(world: World, who: str) -> None:
    ticket = world.ticket(owner=world.ann)
    world.fill_new(ticket)
    assert _move(signed_in(getattr(world, who)), ticket).status_code == 302
    ticket.refresh_from_db()
    assert ticket.stage.code == "offer"
    assert Event.objects.order_by("-pk").first().payload["override"] is True  # type: ignore[union-attr]


def test_moving_needs_a_post_with_a_csrf_token(world: World) -> None:
    ticket = world.ticket(owner=world.ann)
    world.fill_new(ticket)
    assert signed_in(world.ann).get("/board/move/").status_code == 405
    response = _move(signed_in(world.ann, csrf=True), ticket)
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.stage.code == "new"


@pytest.mark.parametrize("number", ["", "<script>", "Z-2026-999999", "9" * 40])
def test_bad_or_unknown_numbers_change_nothing(world: World, number: str) -> None:
    events = Event.objects.count()
    response = signed_in(world.ann).post("/board/move/", {"number": number, "stage": "new"})
    assert response.status_code in (400, 404)
    assert "<script>" not in response.content.decode()
    assert Event.objects.count() == events


def test_html_in_client_names_and_subjects_is_shown_as_text(world: World) -> None:
    evil = client_create(actor=world.operator, name="<script>alert(1)</script>",
                         phones=["+79030000001"])
    world.ticket(owner=world.ann, client=evil, subject="<img src=x onerror=alert(2)>")
    html = signed_in(world.ann).get("/board/").content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("who", ["ann", "head", "director"])
def test_the_board_makes_the_same_number_of_queries_for_few_and_many_cards(world: World,
                                                                           who: str) -> None:
    http = signed_in(getattr(world, who))
    world.ticket(owner=world.ann)
    http.get("/board/")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert http.get("/board/").status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(10):
        ticket = world.ticket(owner=world.ann if i % 2 else world.bob)
        if i % 3 == 0:
            world.fill_new(ticket)
            stage_close(actor=ticket.owner, ticket=ticket, stage="new")
    assert count() == few


def test_a_long_column_shows_its_first_cards_and_links_to_the_rest(world: World) -> None:
    tickets = [world.ticket(owner=world.ann) for _ in range(32)]
    html = signed_in(world.ann).get("/board/").content.decode()
    assert len(cards(html, tickets)) == 30
    assert cards(html, tickets[:30]) == {t.number for t in tickets[:30]}  # longest waiting first
    assert "?pipeline=sales&amp;stage=new&amp;status=open" in html


def test_without_a_choice_the_board_shows_the_busiest_pipeline(world: World) -> None:
    from estafeta.pipelines.services import pipeline_load

    from .factories import PIPELINES

    text = (PIPELINES / "sales.yaml").read_text()
    text = text.replace("code: sales", "code: aaa-empty", 1).replace("name: Sales", "name: AAA", 1)
    pipeline_load(actor=None, text=text, source="aaa.yaml")
    world.ticket()
    page = signed_in(world.director).get("/board/")
    assert page.status_code == 200
    assert page.context["pipeline"].code == "sales"
