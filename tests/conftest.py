"""Shared fixtures. Tests run on SQLite by default and on PostgreSQL when DATABASE_URL says so.

Markers: ``postgres_only`` / ``sqlite_only`` tests exercise one engine's own mechanism (row locks
and threads on PostgreSQL, several processes on one file for SQLite); CI runs the suite on both
engines, so every test runs somewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created

from estafeta.calendars.selectors import clear_calendar_cache
from estafeta.core import clock
from estafeta.pipelines.models import clear_version_cache

from . import factories

IS_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _allow_test_flush(sender: object, connection: object, **kwargs: object) -> None:
    # Transactional tests end with Django's flush (TRUNCATE); the guard lets only this through.
    if getattr(connection, "vendor", "") == "postgresql":
        with connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET estafeta.allow_truncate = 'on'")


connection_created.connect(_allow_test_flush)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    engine = "PostgreSQL" if IS_POSTGRES else "SQLite"
    for item in items:
        if "postgres_only" in item.keywords and not IS_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass of CI"))
        if "sqlite_only" in item.keywords and IS_POSTGRES:
            item.add_marker(pytest.mark.skip(reason=f"runs in the SQLite pass of CI, not {engine}"))


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "files")
    # Real password hashing takes half a second a user; tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Each test's transaction rolls back and ids are reused: forget cached pipeline versions.
    clear_version_cache()
    # Calendar days written by a test roll back with it: forget the calendar built from them.
    clear_calendar_cache()


# A Wednesday in working hours, Moscow time (UTC+3): tests say which moment they mean.
T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
def now() -> Iterator[datetime]:
    with clock.frozen(T0):
        yield T0


@pytest.fixture
def world(db: None, now: datetime) -> factories.World:
    return factories.build_world()
