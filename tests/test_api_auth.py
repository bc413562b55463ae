"""REST API: tokens, sessions with CSRF, the schema, and requests that are malformed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client as BrowserClient
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from estafeta.tickets.models import Ticket

from . import factories
from .factories import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    cache.clear()  # the token endpoint counts attempts per address in the cache
    yield
    cache.clear()


def test_token_issue_use_and_revoke(world: World) -> None:
    anon = APIClient()
    r = anon.post("/api/v1/auth/token/", {"username": "ann", "password": factories.PASSWORD},
                  format="json")
    assert r.status_code == 200, r.content
    token = r.json()["token"]
    # Asking again gives the same token (one per person).
    again = anon.post("/api/v1/auth/token/", {"username": "ann",
                                              "password": factories.PASSWORD}, format="json")
    assert again.json()["token"] == token
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/users/me/")
    assert me.status_code == 200 and me.json()["username"] == "ann"
    # Token requests need no CSRF token (they carry no cookie).
    r = client.post("/api/v1/clients/", {"name": "Acme", "phones": ["+79001234567"]},
                    format="json")
    assert r.status_code == 201, r.content
    assert client.post("/api/v1/auth/token/revoke/").status_code == 204
    assert not Token.objects.filter(user=world.ann).exists()
    r = client.get("/api/v1/users/me/")
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"


def test_token_refusals(world: World) -> None:
    anon = APIClient()
    for body in ({"username": "ann", "password": "wrong"},
                 {"username": "nobody", "password": factories.PASSWORD}):
        r = anon.post("/api/v1/auth/token/", body, format="json")
        assert r.status_code == 400 and r.json()["code"] == "invalid_credentials"
    r = anon.post("/api/v1/auth/token/", {"username": "ann"}, format="json")
    assert r.status_code == 400 and "password" in r.json()["params"]["fields"]
    r = APIClient(HTTP_AUTHORIZATION="Token nonsense").get("/api/v1/tickets/")
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"
    assert not Token.objects.exists()


def test_session_writes_need_csrf(world: World) -> None:
    browser = BrowserClient(enforce_csrf_checks=True)
    assert browser.login(username="otto", password=factories.PASSWORD)
    body = {"pipeline": "sales", "channel": "phone", "subject": "x", "client": world.client.pk}
    r = browser.post("/api/v1/tickets/", body, content_type="application/json")
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    assert not Ticket.objects.exists()
    # Reads need no token; a write with the cookie's token goes through.
    assert browser.get("/api/v1/tickets/").status_code == 200
    browser.get("/api/v1/users/me/", HTTP_ACCEPT="text/html")  # the browsable API's form
    csrf = browser.cookies["csrftoken"]
    r = browser.post("/api/v1/tickets/", body, content_type="application/json",
                     HTTP_X_CSRFTOKEN=csrf.value)
    assert r.status_code == 201, r.content


def test_schema_is_openapi_3_listing_the_endpoints(world: World) -> None:
    client = APIClient()
    client.force_authenticate(world.ann)
    r = client.get("/api/v1/schema/")
    assert r.status_code == 200
    schema = yaml.safe_load(r.content)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for path in ("/api/v1/auth/token/", "/api/v1/auth/token/revoke/", "/api/v1/tickets/",
                 "/api/v1/tickets/{number}/", "/api/v1/tickets/{number}/events/",
                 "/api/v1/tickets/{number}/close-stage/", "/api/v1/tickets/{number}/reopen/",
                 "/api/v1/tasks/", "/api/v1/tasks/{task_id}/complete/", "/api/v1/clients/",
                 "/api/v1/clients/{client_id}/anonymise/", "/api/v1/pipelines/",
                 "/api/v1/users/", "/api/v1/teams/"):
        assert path in paths, path
    assert "delete" not in schema["paths"]["/api/v1/tickets/{number}/"]
    assert "patch" in schema["paths"]["/api/v1/tickets/{number}/"]
    json_schema = client.get("/api/v1/schema/?format=json")
    assert json_schema.status_code == 200 and json_schema.json()["openapi"].startswith("3.")
    # The schema is public documentation of the shapes; it names no data.
    assert APIClient().get("/api/v1/schema/").status_code in (200, 401)


def test_browsable_api_is_html_for_a_browser(world: World) -> None:
    client = APIClient()
    client.force_authenticate(world.ann)
    r = client.get("/api/v1/tickets/", HTTP_ACCEPT="text/html")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    assert b"cdn" not in r.content.lower()


def test_unknown_paths_and_malformed_bodies(world: World) -> None:
    client = APIClient()
    client.force_authenticate(world.ann)
    r = client.get("/api/v1/nothing/here/")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    for raw in ('{"subject": "\\ud800"}', "[" * 5000 + "]" * 5000, "{", "null"):
        r = client.post("/api/v1/tickets/", raw, content_type="application/json")
        assert r.status_code == 400, (raw[:20], r.content)
        assert set(r.json()) == {"code", "message", "params"}
    r = client.post("/api/v1/tickets/", "subject: x", content_type="text/csv")
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = client.get("/api/v1/tasks/", {"offset": -1})
    assert r.status_code == 400
    assert not Ticket.objects.exists()


def test_password_guessing_is_throttled(world: World) -> None:
    anon = APIClient()
    statuses = [anon.post("/api/v1/auth/token/", {"username": "ann", "password": f"guess{i}"},
                          format="json").status_code for i in range(21)]
    assert statuses[:20] == [400] * 20
    r = anon.post("/api/v1/auth/token/", {"username": "ann", "password": factories.PASSWORD},
                  format="json")
    assert r.status_code == 429 and r.json()["code"] == "throttled"
    assert int(r["Retry-After"]) > 0


def test_schema_generates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


def test_browsable_docs_load_nothing_from_other_sites(world: World) -> None:
    browser = BrowserClient()
    browser.force_login(world.ann)
    r = browser.get("/api/v1/docs/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "/api/v1/schema/" in page
    assert "/static/drf_spectacular_sidecar/" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
