"""Signing in and out, the start page of each role, password and language."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.history.models import Event

from .factories import PASSWORD, World


def signed_in(user: User) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def test_a_page_asks_an_anonymous_visitor_to_sign_in(db: None) -> None:
    response = HttpClient().get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/account/")


def test_sign_in_with_the_right_password_and_refuse_a_wrong_one(world: World) -> None:
    http = HttpClient()
    wrong = http.post("/login/", {"username": "ann", "password": "nope"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in http.session
    right = http.post("/login/", {"username": "ann", "password": PASSWORD})
    assert right.status_code == 302
    assert int(http.session["_auth_user_id"]) == world.ann.pk


def test_login_refuses_a_post_without_csrf_token(world: World) -> None:
    http = HttpClient(enforce_csrf_checks=True)
    response = http.post("/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in http.session


@pytest.mark.parametrize(("who", "where"), [
    ("ann", "/tasks/"), ("head", "/tasks/"), ("director", "/board/"),
    ("operator", "/tickets/new/"), ("admin", "/settings/"),
])
def test_each_role_starts_where_its_work_is(world: World, who: str, where: str) -> None:
    response = signed_in(getattr(world, who)).get("/")
    assert response.status_code == 302
    assert response["Location"] == where


def test_sign_out_needs_a_post_and_ends_the_session(world: World) -> None:
    http = signed_in(world.ann)
    assert http.get("/logout/").status_code == 405
    assert http.post("/logout/").status_code == 302
    assert "_auth_user_id" not in http.session


def test_change_password_checks_the_old_one_and_records_an_event(world: World) -> None:
    http = signed_in(world.ann)
    events = Event.objects.count()
    bad = http.post("/account/password/", {"old_password": "wrong", "new_password1": "Zx-91-qpl-77",
                                           "new_password2": "Zx-91-qpl-77"})
    assert bad.status_code == 400
    assert Event.objects.count() == events
    good = http.post("/account/password/", {"old_password": PASSWORD,
                                            "new_password1": "Zx-91-qpl-77",
                                            "new_password2": "Zx-91-qpl-77"})
    assert good.status_code == 302
    world.ann.refresh_from_db()
    assert world.ann.check_password("Zx-91-qpl-77")
    assert Event.objects.count() == events + 1
    assert "_auth_user_id" in http.session  # still signed in


def test_language_is_saved_on_the_person_and_the_page_speaks_it(world: World) -> None:
    http = signed_in(world.ann)
    http.post("/language/", {"language": "en", "next": "/account/"})
    world.ann.refresh_from_db()
    assert world.ann.language == "en"
    assert "Change password" in http.get("/account/").content.decode()
    http.post("/language/", {"language": "ru", "next": "https://evil.example/"})
    world.ann.refresh_from_db()
    assert world.ann.language == "ru"
    page = http.get("/account/").content.decode()
    assert 'lang="ru"' in page


def test_unknown_language_is_refused_and_nothing_changes(world: World) -> None:
    http = signed_in(world.ann)
    response = http.post("/language/", {"language": "xx"})
    assert response.status_code == 302
    world.ann.refresh_from_db()
    assert world.ann.language == "ru"
