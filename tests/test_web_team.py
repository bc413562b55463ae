"""The team page: heads see their team's workload, directors every team, sellers nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.tickets.services import activity_log

from .factories import World, make_user


def signed_in(user: User) -> HttpClient:
    http = HttpClient()
    # These tests read the English texts (a plain update: no event to count).
    User.objects.filter(pk=user.pk).update(language="en")
    http.force_login(user)
    return http


def row_of(html: str, name: str) -> list[str]:
    """The cells of the person's row (their name, then the figures)."""
    match = re.search(rf"<tr>\s*<td>{re.escape(name)}</td>(.*?)</tr>", html, re.S)
    assert match, f"no row for {name}"
    return [re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


@pytest.mark.parametrize(("who", "status"), [
    ("head", 200), ("director", 200), ("ann", 403), ("operator", 403), ("admin", 403),
])
def test_the_team_page_is_for_heads_and_directors(world: World, who: str, status: int) -> None:
    assert signed_in(getattr(world, who)).get("/team/").status_code == status


def test_a_head_sees_their_team_only_and_a_director_every_team(world: World) -> None:
    head = signed_in(world.head).get("/team/").content.decode()
    assert "<td>ann</td>" in head and "<td>bob</td>" in head
    assert "<td>olga</td>" not in head and "Other" not in head
    director = signed_in(world.director).get("/team/").content.decode()
    assert all(f"<td>{n}</td>" in director for n in ("ann", "bob", "olga"))


def test_open_and_overdue_tasks_and_tickets_without_recent_contact(world: World) -> None:
    quiet = world.ticket(owner=world.ann)
    talked = world.ticket(owner=world.ann)
    world.ticket(owner=world.bob)
    with clock.frozen(clock.now() + timedelta(days=8)):
        activity_log(actor=world.ann, ticket=talked, kind="call", direction="out",
                     outcome="connected")
        html = signed_in(world.head).get("/team/").content.decode()
        assert row_of(html, "ann")[:3] == ["2", "2", "1"]  # open, overdue, quiet
        assert row_of(html, "bob")[:3] == ["1", "1", "1"]
        assert f"?owner={world.ann.pk}&amp;status=open&amp;quiet=7" in html
        # The quiet link lists exactly the quiet ticket.
        listed = signed_in(world.head).get(
            "/tickets/", {"owner": world.ann.pk, "status": "open", "quiet": 7}).content.decode()
        assert f"/tickets/{quiet.number}/" in listed
        assert f"/tickets/{talked.number}/" not in listed
        longer = signed_in(world.head).get("/team/", {"days": 30}).content.decode()
        assert row_of(longer, "ann")[2] == "0"


def test_a_bad_number_of_days_is_a_400(world: World) -> None:
    response = signed_in(world.head).get("/team/", {"days": "<b>x</b>"})
    assert response.status_code == 400
    assert "<b>x</b>" not in response.content.decode()


def test_html_in_a_persons_name_is_shown_as_text(world: World) -> None:
    make_user("eve", "seller", world.sales, first_name="<script>x</script>")
    html = signed_in(world.head).get("/team/").content.decode()
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_team_page_makes_the_same_number_of_queries_for_few_and_many(world: World) -> None:
    http = signed_in(world.director)
    world.ticket(owner=world.ann)
    http.get("/team/")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert http.get("/team/").status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(6):
        make_user(f"seller{i}", "seller", world.sales if i % 2 else world.other)
    for _ in range(6):
        world.ticket(owner=world.bob)
    assert count() == few
