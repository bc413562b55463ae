"""The first minute of a new user: the Russian sign-in page, a wrong password, then in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, World

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sign_in_page_speaks_russian_and_lets_a_seller_in(page: Any, world: World) -> None:
    page.goto("/login/")
    assert page.locator("html").get_attribute("lang") == "ru"
    sign_in(page, "ann", "wrong password")
    assert "/login/" in page.url
    sign_in(page, "ann", PASSWORD)
    assert "/login/" not in page.url
    assert page.locator("header .me").inner_text().strip() != ""
