"""K11 energy level: who rates whom, refusals change nothing, history kept, the sellers'
visibility setting, the /ratings/ pages (CSRF, escaping, a fixed number of queries)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.errors import BadInput, DeletionRefused, Forbidden
from estafeta.history.models import Event
from estafeta.ratings.models import EnergyRating
from estafeta.ratings.selectors import (
    energy_history,
    energy_trend,
    sellers_rated_by,
    sellers_see_own_energy,
)
from estafeta.ratings.services import energy_rate, week_of
from estafeta.web.pages.ratings import sparkline

from .dbstate import refused
from .factories import World, make_user

pytestmark = pytest.mark.django_db

MONDAY = date(2026, 11, 30)  # the week of the tests' frozen Wednesday, 2 December 2026


def counts() -> tuple[int, int]:
    return EnergyRating.objects.count(), Event.objects.filter(type="energy.rated").count()


def unchanged(action: Any, error: type[Exception], code: str) -> None:
    before = counts()
    refused(action, code, error)  # type: ignore[arg-type]
    assert counts() == before


# --- the service ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rater", "seller", "allowed"), [
    ("head", "ann", True), ("head", "bob", True), ("head", "olga", False),
    ("other_head", "olga", True), ("other_head", "ann", False),
    ("director", "ann", True), ("director", "olga", True),
    ("ann", "bob", False), ("ann", "ann", False), ("operator", "ann", False),
    ("admin", "ann", False),
])
def test_who_rates_whom(world: World, rater: str, seller: str, allowed: bool) -> None:
    actor, person = getattr(world, rater), getattr(world, seller)
    if not allowed:
        unchanged(lambda: energy_rate(actor, person, MONDAY, 4, "x"), Forbidden,
                  "not_your_seller" if rater in ("head", "other_head") else "role_required")
        return
    rating = energy_rate(actor, person, MONDAY, 4, "Steady week")
    assert (rating.seller, rating.rater, rating.week, rating.score, rating.comment) == (
        person, actor, MONDAY, 4, "Steady week")
    event = Event.objects.get(type="energy.rated")
    assert event.actor_id == actor.pk and event.stream == rating.stream
    assert event.payload == {"seller": person.pk, "team": person.team_id,
                             "week": "2026-11-30", "score": 4, "comment": "Steady week"}


def test_a_head_of_several_teams_rates_sellers_of_each(world: World) -> None:
    from estafeta.accounts.services import team_create

    north = team_create(actor=None, name="North", head=world.head)
    nina = make_user("nina", "seller", north)
    assert energy_rate(world.head, nina, MONDAY, 3).seller == nina
    assert set(sellers_rated_by(world.head)) == {world.ann, world.bob, nina}
    assert set(sellers_rated_by(world.other_head)) == {world.olga}
    assert set(sellers_rated_by(world.director)) == {world.ann, world.bob, world.olga, nina}
    assert list(sellers_rated_by(world.ann)) == []
    assert list(sellers_rated_by(world.director, "nin")) == [nina]


@pytest.mark.parametrize("score", [0, 6, -1, 100, True, "4", 3.5, None])
def test_a_bad_score_changes_nothing(world: World, score: Any) -> None:
    unchanged(lambda: energy_rate(world.head, world.ann, MONDAY, score, ""), BadInput,
              "bad_score")


def test_other_bad_input_changes_nothing(world: World) -> None:
    unchanged(lambda: energy_rate(world.head, world.ann, MONDAY + timedelta(weeks=1), 3),
              BadInput, "future_week")
    unchanged(lambda: energy_rate(world.head, world.ann, MONDAY, 3, "x" * 2001), BadInput,
              "too_long")
    unchanged(lambda: energy_rate(world.director, world.head, MONDAY, 3), BadInput,
              "not_a_seller")


def test_any_day_of_a_week_is_its_monday(world: World) -> None:
    assert week_of(date(2026, 12, 6)) == MONDAY and week_of(MONDAY) == MONDAY
    rating = energy_rate(world.head, world.ann, date(2026, 12, 2), 5)
    assert rating.week == MONDAY
    assert energy_rate(world.head, world.ann, datetime(2026, 11, 25, 10, 0), 2).week == date(
        2026, 11, 23)


def test_history_is_kept_and_the_latest_counts(world: World) -> None:
    energy_rate(world.head, world.ann, MONDAY - timedelta(weeks=2), 2, "tired")
    first = energy_rate(world.head, world.ann, MONDAY, 3, "first look")
    with clock.frozen(clock.now() + timedelta(hours=1)):
        second = energy_rate(world.director, world.ann, MONDAY, 5, "after the big deal")
    assert EnergyRating.objects.filter(seller=world.ann, week=MONDAY).count() == 2
    assert list(energy_history(world.ann, MONDAY)) == [second, first]
    trend = energy_trend(world.ann, weeks=4)
    assert [w.week for w in trend] == [MONDAY - timedelta(weeks=i) for i in (3, 2, 1, 0)]
    assert [w.score for w in trend] == [None, 2, None, 5]
    assert (trend[-1].comment, trend[-1].rater_id, trend[-1].ratings) == (
        "after the big deal", world.director.pk, 2)
    assert energy_trend(world.bob)[-1].score is None  # nobody else's ratings
    assert Event.objects.filter(type="energy.rated").count() == 3


def test_ratings_are_never_deleted_nor_changed(world: World) -> None:
    rating = energy_rate(world.head, world.ann, MONDAY, 3)
    with pytest.raises(DeletionRefused):
        rating.delete()
    with pytest.raises(DeletionRefused):
        EnergyRating.objects.all().delete()
    with pytest.raises(DeletionRefused):
        EnergyRating.objects.update(score=1)
    for sql in ("DELETE FROM ratings_energyrating",
                "UPDATE ratings_energyrating SET score = 1"):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as c:
            c.execute(sql)
    assert EnergyRating.objects.get().score == 3


def test_the_database_refuses_a_score_outside_1_to_5(world: World) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        EnergyRating.objects.create(seller=world.ann, rater=world.head, week=MONDAY, score=6,
                                    created_at=clock.now())


def test_a_deactivated_head_rates_nobody(world: World) -> None:
    User.objects.filter(pk=world.head.pk).update(is_active=False)
    head = User.objects.get(pk=world.head.pk)
    unchanged(lambda: energy_rate(head, world.ann, MONDAY, 3), Forbidden, "actor_inactive")


def test_sellers_do_not_see_their_own_energy_by_default(settings: Any) -> None:
    del settings.ESTAFETA_SELLERS_SEE_OWN_ENERGY
    assert sellers_see_own_energy() is False
    settings.ESTAFETA_SELLERS_SEE_OWN_ENERGY = True
    assert sellers_see_own_energy() is True


# --- the sparkline -------------------------------------------------------------------------------


def test_the_sparkline_breaks_at_unrated_weeks() -> None:
    from estafeta.ratings.selectors import WeekScore

    weeks = [MONDAY - timedelta(weeks=i) for i in (3, 2, 1, 0)]
    line = sparkline([WeekScore(weeks[0], 5), WeekScore(weeks[1], 1), WeekScore(weeks[2], None),
                      WeekScore(weeks[3], 3)], width=33, height=14, pad=3)
    assert line.segments == ["3.0,3.0 12.0,11.0", "30.0,7.0"]
    assert [(d.x, d.y, d.score) for d in line.dots] == [(3.0, 3.0, 5), (12.0, 11.0, 1),
                                                         (30.0, 7.0, 3)]
    assert sparkline([WeekScore(MONDAY, None)]).segments == []


# --- the pages -----------------------------------------------------------------------------------


def client_for(user: User, csrf: bool = False) -> HttpClient:
    http = HttpClient(enforce_csrf_checks=csrf)
    http.force_login(user)
    return http


def test_the_head_sees_the_team_and_rates(world: World) -> None:
    http = client_for(world.head)
    energy_rate(world.head, world.ann, MONDAY - timedelta(weeks=1), 2, "<b>tired</b>")
    page = http.get("/ratings/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="seller-{world.ann.pk}"' in html and f'id="seller-{world.bob.pk}"' in html
    assert f'id="seller-{world.olga.pk}"' not in html
    assert html.count('<svg class="sparkline"') == 2
    assert "<b>tired</b>" not in html  # no markup from data
    answer = http.post("/ratings/", {"seller": world.ann.pk, "score": "4",
                                     "comment": "<script>alert(1)</script>"})
    assert answer.status_code == 302
    rating = EnergyRating.objects.latest("pk")
    assert (rating.seller, rating.rater, rating.week, rating.score) == (
        world.ann, world.head, MONDAY, 4)
    html = http.get("/ratings/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert re.search(r"<polyline points=\"[0-9., ]+\"", html)


def test_a_refused_or_bad_post_changes_nothing(world: World) -> None:
    before = counts()
    other = client_for(world.other_head)
    assert other.post("/ratings/", {"seller": world.ann.pk, "score": "4"}).status_code == 403
    head = client_for(world.head)
    for score in ("0", "6", "x", ""):
        answer = head.post("/ratings/", {"seller": world.ann.pk, "score": score})
        assert answer.status_code == 400, score
    assert head.post("/ratings/", {"seller": 999_999, "score": "3"}).status_code == 404
    assert head.post("/ratings/", {"seller": world.head.pk, "score": "3"}).status_code == 404
    assert client_for(world.ann).post("/ratings/", {"seller": world.bob.pk,
                                                    "score": "5"}).status_code == 403
    assert counts() == before


def test_a_rating_needs_the_csrf_token(world: World) -> None:
    http = client_for(world.head, csrf=True)
    page = http.get("/ratings/")
    assert page.status_code == 200
    answer = http.post("/ratings/", {"seller": world.ann.pk, "score": "4"})
    assert answer.status_code == 403 and counts() == (0, 0)
    token = http.cookies["csrftoken"].value
    answer = http.post("/ratings/", {"seller": world.ann.pk, "score": "4",
                                     "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and counts() == (1, 1)


def test_the_ratings_page_asks_a_fixed_number_of_queries(world: World) -> None:
    director = client_for(world.director)
    director.get("/ratings/")  # warm the session and caches

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert director.get("/ratings/").status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for i in range(12):
        seller = make_user(f"s{i}", "seller", world.sales if i % 2 else world.other)
        for week in range(8):
            energy_rate(world.director, seller, MONDAY - timedelta(weeks=week), 1 + (i + week) % 5)
    assert queries() == few


def test_the_page_is_paginated_and_searchable(world: World) -> None:
    for i in range(30):
        make_user(f"seller{i:02d}", "seller", world.sales)
    http = client_for(world.head)
    html = http.get("/ratings/").content.decode()
    assert html.count('<svg class="sparkline"') == 25
    html = http.get("/ratings/?page=2").content.decode()
    assert html.count('<svg class="sparkline"') == 7
    html = http.get("/ratings/?q=seller07").content.decode()
    assert html.count('<svg class="sparkline"') == 1


def test_my_ratings_follow_the_company_setting(world: World, settings: Any) -> None:
    energy_rate(world.head, world.ann, MONDAY, 4, "Good <energy>")
    ann = client_for(world.ann)
    settings.ESTAFETA_SELLERS_SEE_OWN_ENERGY = False
    assert ann.get("/ratings/me/").status_code == 403
    settings.ESTAFETA_SELLERS_SEE_OWN_ENERGY = True
    page = ann.get("/ratings/me/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Good &lt;energy&gt;" in html and "30.11.2026" in html
    bob = client_for(world.bob).get("/ratings/me/").content.decode()
    assert "Good &lt;energy&gt;" not in bob  # his own only
    assert client_for(world.head).get("/ratings/me/").status_code == 302
    assert client_for(world.operator).get("/ratings/me/").status_code == 403
    assert ann.post("/ratings/me/").status_code == 405
