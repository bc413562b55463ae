"""The ticket list (search, filters, access, query count) and registering a new ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.accounts.services import absence_add
from estafeta.clients.models import Client
from estafeta.clients.services import client_create
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


def numbers_in(html: str, tickets: list[Ticket]) -> set[str]:
    """The tickets linked from the page (a search box may echo a number without listing it)."""
    return {t.number for t in tickets if f'href="/tickets/{t.number}/"' in html}


# --- the list --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ann", "head", "director", "operator"])
def test_the_list_renders_for_each_role_that_works_with_tickets(world: World, who: str) -> None:
    world.ticket(owner=world.ann)
    response = signed_in(getattr(world, who)).get("/tickets/")
    assert response.status_code == 200
    assert "Ivan Petrov" in response.content.decode()


def test_admins_may_not_open_the_list_and_visitors_must_sign_in(world: World) -> None:
    assert signed_in(world.admin).get("/tickets/").status_code == 403
    anonymous = HttpClient().get("/tickets/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_each_person_sees_only_the_tickets_visible_to_them(world: World) -> None:
    anns = world.ticket(owner=world.ann)
    bobs = world.ticket(owner=world.bob)
    olgas = world.ticket(owner=world.olga)
    every = [anns, bobs, olgas]
    seen = {who: numbers_in(signed_in(getattr(world, who)).get("/tickets/").content.decode(),
                            every)
            for who in ("ann", "head", "other_head", "director", "operator", "olga")}
    assert seen["ann"] == {anns.number}
    assert seen["head"] == {anns.number, bobs.number}
    assert seen["other_head"] == {olgas.number}
    assert seen["olga"] == {olgas.number}
    assert seen["director"] == seen["operator"] == {t.number for t in every}


@pytest.mark.parametrize("spelling", [
    "+7 912 345-67-89", "89123456789", "8 (912) 345 67 89", "9123456789", "345-67-89",
])
def test_search_finds_a_ticket_by_any_spelling_of_the_clients_phone(world: World,
                                                                     spelling: str) -> None:
    found = world.ticket(owner=world.ann)
    other = client_create(actor=world.operator, name="Maria Sidorova", phones=["+7 903 111 22 33"])
    missed = world.ticket(owner=world.ann, client=other)
    html = signed_in(world.director).get("/tickets/", {"q": spelling}).content.decode()
    assert numbers_in(html, [found, missed]) == {found.number}


@pytest.mark.parametrize("text", ["IVAN@EXAMPLE.COM", "ivan petrov", "Petrov"])
def test_search_finds_by_email_and_name(world: World, text: str) -> None:
    found = world.ticket(owner=world.ann)
    other = client_create(actor=world.operator, name="Maria Sidorova", emails=["m@example.org"])
    missed = world.ticket(owner=world.ann, client=other)
    html = signed_in(world.director).get("/tickets/", {"q": text}).content.decode()
    assert numbers_in(html, [found, missed]) == {found.number}


def test_search_by_number_in_lower_case_finds_exactly_that_ticket(world: World) -> None:
    one, two = world.ticket(owner=world.ann), world.ticket(owner=world.ann)
    html = signed_in(world.ann).get("/tickets/", {"q": f" {one.number.lower()} "}).content.decode()
    assert numbers_in(html, [one, two]) == {one.number}


def test_search_never_reveals_a_ticket_the_person_may_not_see(world: World) -> None:
    olgas = world.ticket(owner=world.olga)
    html = signed_in(world.ann).get("/tickets/", {"q": olgas.number}).content.decode()
    assert f"/tickets/{olgas.number}/" not in html


def test_filters_by_owner_team_status_pipeline_and_stage(world: World) -> None:
    anns = world.ticket(owner=world.ann)
    bobs = world.ticket(owner=world.bob)
    olgas = world.ticket(owner=world.olga)
    world.fill_new(bobs)
    stage_close(actor=world.bob, ticket=bobs, stage="new")
    every = [anns, bobs, olgas]
    http = signed_in(world.director)

    def shown(**params: object) -> set[str]:
        response = http.get("/tickets/", params)
        assert response.status_code == 200
        return numbers_in(response.content.decode(), every)

    assert shown(owner=world.ann.pk) == {anns.number}
    assert shown(team=world.other.pk) == {olgas.number}
    assert shown(stage="offer") == {bobs.number}
    assert shown(status="open", pipeline="sales") == {t.number for t in every}
    assert shown(status="won") == set()


def test_a_bad_filter_value_is_a_clear_400_and_lists_nothing(world: World) -> None:
    t = world.ticket(owner=world.ann)
    response = signed_in(world.director).get("/tickets/", {"status": "<b>gone</b>"})
    assert response.status_code == 400
    html = response.content.decode()
    assert t.number not in html
    assert "<b>gone</b>" not in html


def test_the_list_is_paginated_and_keeps_the_filters_in_pager_links(world: World) -> None:
    tickets = [world.ticket(owner=world.ann) for _ in range(27)]
    http = signed_in(world.ann)
    first = http.get("/tickets/", {"status": "open"}).content.decode()
    second = http.get("/tickets/", {"status": "open", "page": 2}).content.decode()
    assert len(numbers_in(first, tickets)) == 25
    assert numbers_in(second, tickets) == {t.number for t in tickets[:2]}  # the oldest
    assert "status=open&amp;page=2" in first


def _queries(http: HttpClient, url: str, params: dict[str, object] | None = None) -> int:
    http.get(url, params or {})  # warm: version caches, session
    with CaptureQueriesContext(connection) as ctx:
        assert http.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["ann", "head", "director"])
def test_the_list_makes_the_same_number_of_queries_for_few_and_many_rows(world: World,
                                                                          who: str) -> None:
    http = signed_in(getattr(world, who))
    world.ticket(owner=world.ann)
    few = _queries(http, "/tickets/", {"q": "petrov"})
    for i in range(12):
        client = client_create(actor=world.operator, name=f"Petrov {i}",
                               phones=[f"+7903000{i:04d}"])
        world.ticket(owner=world.ann if i % 2 else world.bob, client=client)
    assert _queries(http, "/tickets/", {"q": "petrov"}) == few


def test_html_in_client_names_and_subjects_is_shown_as_text(world: World) -> None:
    evil = client_create(actor=world.operator, name="<script>alert('n')</script>",
                         phones=["+79030000001"])
    world.ticket(owner=world.ann, client=evil, subject="<img src=x onerror=alert(1)>")
    html = signed_in(world.ann).get("/tickets/").content.decode()
    assert "<script>alert(" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# --- a new ticket ----------------------------------------------------------------------------


def _new(**fields: object) -> dict[str, object]:
    data: dict[str, object] = {"phone": "+7 903 555-44-33", "email": "", "client_name": "Olga K",
                               "client_kind": "person", "pipeline": "sales", "channel": "phone",
                               "subject": "Crossover for the winter", "amount": "2 500 000"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def _counts() -> tuple[int, int, int]:
    return Ticket.objects.count(), Client.objects.count(), Event.objects.count()


@pytest.mark.parametrize("who", ["operator", "ann", "head", "director"])
def test_the_new_ticket_form_renders_for_those_who_register_requests(world: World,
                                                                     who: str) -> None:
    response = signed_in(getattr(world, who)).get("/tickets/new/")
    assert response.status_code == 200
    assert 'name="subject"' in response.content.decode()


def test_admins_cannot_register_tickets(world: World) -> None:
    before = _counts()
    assert signed_in(world.admin).get("/tickets/new/").status_code == 403
    assert signed_in(world.admin).post("/tickets/new/", _new()).status_code == 403
    assert _counts() == before


def test_a_new_client_and_ticket_are_made_and_the_number_is_shown_at_once(world: World) -> None:
    http = signed_in(world.operator)
    response = http.post("/tickets/new/", _new())
    ticket = Ticket.objects.get(subject="Crossover for the winter")
    assert response.status_code == 302
    assert response["Location"] == f"/tickets/{ticket.number}/"
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(ticket.number in m for m in said)
    assert ticket.client.name == "Olga K"
    assert ticket.created_by == world.operator and ticket.channel == "phone"
    assert str(ticket.amount) == "2500000.00"
    assert list(ticket.client.contacts.values_list("value", flat=True)) == ["+79035554433"]


def test_an_existing_phone_in_another_spelling_warns_before_anything_is_made(world: World) -> None:
    existing = world.ticket(owner=world.ann)
    http = signed_in(world.operator)
    before = _counts()
    response = http.post("/tickets/new/", _new(phone="8 (912) 345 67 89"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ivan Petrov" in html and existing.number in html
    assert f'value="{world.client.pk}"' in html
    assert _counts() == before
    # Choosing the found client registers the request with it; no second client.
    chosen = http.post("/tickets/new/", _new(phone="8 (912) 345 67 89", client=world.client.pk))
    assert chosen.status_code == 302
    assert Client.objects.count() == before[1]
    assert Ticket.objects.order_by("-pk").first().client == world.client  # type: ignore[union-attr]


def test_a_person_may_confirm_that_a_client_with_a_known_email_is_new(world: World) -> None:
    http = signed_in(world.ann)
    before = _counts()
    response = http.post("/tickets/new/", _new(phone="", email="Ivan@Example.com",
                                               confirm_new="on", take_myself="on"))
    assert response.status_code == 302
    assert Client.objects.count() == before[1] + 1
    ticket = Ticket.objects.order_by("-pk").first()
    assert ticket is not None and ticket.client.name == "Olga K" and ticket.owner == world.ann


def test_a_client_id_not_among_those_found_is_refused(world: World) -> None:
    other = client_create(actor=world.operator, name="Somebody else", phones=["+79031112233"])
    before = _counts()
    response = signed_in(world.operator).post("/tickets/new/", _new(client=other.pk))
    assert response.status_code == 400
    assert _counts() == before


@pytest.mark.parametrize(("fields", "message"), [
    ({"subject": ""}, "invalid:subject"),
    ({"phone": "", "email": ""}, "Give the client&#x27;s phone or email"),
    ({"phone": "not a phone"}, "This is not a phone number."),
    ({"amount": "-5"}, "Enter an amount"),
    ({"pipeline": "nope"}, "invalid:pipeline"),
    ({"subject": "x" * 201}, "invalid:subject"),
    ({"client_name": ""}, "Name the new client"),
])
def test_bad_input_gets_a_clear_error_and_makes_nothing(world: World, fields: dict[str, object],
                                                        message: str) -> None:
    before = _counts()
    response = signed_in(world.operator).post("/tickets/new/", _new(**fields))
    assert response.status_code == 400
    html = response.content.decode()
    if message.startswith("invalid:"):  # Django's own words (in the person's language)
        message = f'<div class="field invalid">\n  <label for="id_{message[8:]}"'
    assert message in html
    assert _counts() == before


def test_a_post_without_csrf_token_is_refused(world: World) -> None:
    before = _counts()
    response = signed_in(world.operator, csrf=True).post("/tickets/new/", _new())
    assert response.status_code == 403
    assert _counts() == before


def test_html_in_the_warning_is_shown_as_text(world: World) -> None:
    client_create(actor=world.operator, name="<b onmouseover=x>Bold</b>", phones=["+79035554433"])
    html = signed_in(world.operator).post("/tickets/new/", _new()).content.decode()
    assert "<b onmouseover" not in html and "&lt;b onmouseover=x&gt;Bold&lt;/b&gt;" in html


def test_when_nobody_can_take_the_ticket_neither_it_nor_the_new_client_is_made(
        world: World) -> None:
    for person in (world.ann, world.bob, world.head):  # the head stands in for the sellers
        absence_add(actor=None, user=person, starts_at=clock.now() - timedelta(hours=1),
                    ends_at=clock.now() + timedelta(days=3))
    before = _counts()
    response = signed_in(world.operator).post("/tickets/new/", _new())
    assert response.status_code == 409
    assert "Nobody can take this work now" in response.content.decode()
    assert _counts() == before
