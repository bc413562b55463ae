"""Browser tests: Debian's Chromium (``/usr/bin/chromium``, installed by ``make browser``)
driven by Playwright against Django's live server.

Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make there
are ordinary synchronous code, so Django's async guard is told so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("ESTAFETA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


# Package scope: Playwright's driver and event loop end with the browser tests, so that later
# tests that fork processes (the seed's workers) do not inherit them.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-gpu",
                                            "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, locale="ru-RU",
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture(autouse=True)
def _sqlite_flush_past_guards(transactional_db: None) -> Iterator[None]:
    """Let the flush that ends a transactional test empty SQLite's guarded tables.

    The guard triggers refuse every DELETE (promise 3); PostgreSQL's flush is a TRUNCATE the
    guard lets through for tests (see ``tests/conftest.py``), SQLite's is a DELETE. So here, at
    teardown (before Django's flush, which then finds the tables empty): drop the triggers, empty
    the tables, put the triggers back for the tests that follow."""
    yield
    from django.core.management.color import no_style
    from django.db import connection

    from estafeta.core.db import guarded_models, install_guards, unguard_sql

    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for model, _refuse_update in guarded_models():
            for sql in unguard_sql("sqlite", model._meta.db_table):
                cursor.execute(sql)
    tables = connection.introspection.django_table_names(only_existing=True,
                                                         include_views=False)
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables))
    install_guards(connection)
