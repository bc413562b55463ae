"""REST API: clients, pipelines, people and teams."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from estafeta.accounts.models import User
from estafeta.clients.models import Client
from estafeta.pipelines.models import Pipeline

from .factories import PIPELINES, World

pytestmark = pytest.mark.django_db


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def codes(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


def test_client_search_create_and_duplicates(world: World) -> None:
    otto = api(world.operator)
    r = otto.get("/api/v1/clients/", {"phone": "+7 (912) 345 67 89"})
    assert [c["id"] for c in r.json()["results"]] == [world.client.pk]
    r = otto.get("/api/v1/clients/", {"email": "IVAN@example.com"})
    assert r.json()["count"] == 1
    r = otto.get("/api/v1/clients/", {"q": "ivan"})
    assert r.json()["count"] == 1  # otto registered Ivan
    assert api(world.ann).get("/api/v1/clients/", {"q": "ivan"}).json()["count"] == 0
    r = otto.post("/api/v1/clients/", {"name": "Ivan Petrov Jr", "phones": ["89123456789"],
                                       "emails": ["<b>@x</b>"]}, format="json")
    assert r.status_code == 400 and Client.objects.count() == 1
    r = otto.post("/api/v1/clients/", {"name": "<i>Ivan</i> Jr", "phones": ["89123456789"]},
                  format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert r.status_code == 201, r.content
    assert r.json()["duplicates"] == [world.client.pk]
    assert r.json()["name"] == "<i>Ivan</i> Jr"
    again = otto.post("/api/v1/clients/", {"name": "<i>Ivan</i> Jr", "phones": ["89123456789"]},
                      format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert again.json() == r.json() and Client.objects.count() == 2
    r = otto.post("/api/v1/clients/", {"name": "", "phones": "x"}, format="json")
    assert r.status_code == 400 and {"name", "phones"} <= set(r.json()["params"]["fields"])


def test_client_card_and_anonymise(world: World) -> None:
    path = f"/api/v1/clients/{world.client.pk}/"
    assert api(world.operator).get(path).json()["name"] == "Ivan Petrov"
    assert codes(api(world.olga).get(path)) == (404, "unknown_client")
    assert codes(api(world.olga).get("/api/v1/clients/99999999/")) == (404, "unknown_client")
    assert codes(api(world.director).post(path + "anonymise/", {"reason": "x"},
                                          format="json")) == (403, "role_required")
    assert codes(api(world.admin).post(path + "anonymise/", {}, format="json"))[0] == 400
    r = api(world.admin).post(path + "anonymise/", {"reason": "erasure request 17"},
                              format="json")
    assert r.status_code == 200 and r.json()["anonymised"] is True
    assert r.json()["name"] != "Ivan Petrov"
    assert codes(api(world.admin).post(path + "anonymise/", {"reason": "again"},
                                       format="json")) == (409, "client_anonymised")


def test_pipelines_read_and_load(world: World) -> None:
    ann, admin = api(world.ann), api(world.admin)
    r = ann.get("/api/v1/pipelines/")
    assert [p["code"] for p in r.json()["results"]] == ["sales"]
    r = ann.get("/api/v1/pipelines/sales/")
    stages = r.json()["stages"]
    assert [s["code"] for s in stages][:2] == ["new", "offer"]
    assert stages[0]["items"][0]["code"] == "contacted"
    assert codes(ann.get("/api/v1/pipelines/nope/"))[0] == 404
    text = (PIPELINES / "sales.yaml").read_text().replace("name: Offer", "name: Proposal")
    assert codes(ann.post("/api/v1/pipelines/", {"yaml": text}, format="json")) == (
        403, "role_required")
    r = admin.post("/api/v1/pipelines/", text.encode(), content_type="application/yaml")
    assert r.status_code == 201, r.content
    assert r.json() == {"code": "sales", "version": 2, "changed": True}
    r = admin.post("/api/v1/pipelines/", {"yaml": text}, format="json")
    assert r.status_code == 200 and r.json()["changed"] is False
    r = admin.post("/api/v1/pipelines/", {"yaml": "code: [broken"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "pipeline_invalid"
    assert r.json()["params"]["problems"]
    r = ann.get("/api/v1/pipelines/sales/yaml/")
    assert r["Content-Type"].startswith("application/yaml") and b"Proposal" in r.content
    assert Pipeline.objects.get().current_version.number == 2


def test_people_and_teams(world: World) -> None:
    ann = api(world.ann)
    r = ann.get("/api/v1/users/", {"q": "hel"})
    assert [u["username"] for u in r.json()["results"]] == ["helen"]
    assert r.json()["results"][0]["name"] == "Helen"
    assert ann.get(f"/api/v1/users/{world.bob.pk}/").json()["role"] == "seller"
    assert codes(ann.get("/api/v1/users/99999999/")) == (404, "unknown_user")
    assert codes(ann.get("/api/v1/users/99999999999999999999999/")) == (404, "unknown_user")
    teams = ann.get("/api/v1/teams/").json()["results"]
    assert [t["name"] for t in teams] == ["Other", "Sales"]
    assert ann.get("/api/v1/users/me/").json()["team"] == world.sales.pk
    # Nobody's password or email leaks through the API.
    assert "password" not in ann.get("/api/v1/users/").content.decode()
