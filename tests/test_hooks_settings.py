"""Webhook sources: the services (admins only, one event each, the secret never recorded) and the
settings pages (the secret shown once after creating or rotating it)."""

from __future__ import annotations

import json

import pytest
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.history.models import Event
from estafeta.hooks.models import HookSource
from estafeta.hooks.services import (
    fingerprint,
    hook_source_create,
    hook_source_rotate_secret,
    hook_source_set_active,
)
from estafeta.hooks.signing import sign

from .dbstate import refused
from .factories import World

pytestmark = pytest.mark.django_db


def test_creating_a_source_returns_its_secret_once_and_records_only_a_fingerprint(
        world: World) -> None:
    source, secret = hook_source_create(actor=world.admin, name="  Office   PBX ", slug="pbx",
                                        kind="telephony", pipeline=world.pipeline)
    assert len(secret) >= 40 and source.secret == secret
    assert (source.name, source.is_active, source.tolerance_seconds) == ("Office PBX", True, 300)
    event = Event.objects.get(stream=source.stream)
    assert event.type == "hook_source.created" and event.actor_id == world.admin.pk
    assert event.payload["secret"] == fingerprint(secret)
    assert secret not in str(event.payload)
    _, other_secret = hook_source_create(actor=None, name="Bot", slug="bot",
                                         kind="messenger", pipeline=world.pipeline)
    assert other_secret != secret


@pytest.mark.parametrize(("fields", "code"), [
    ({"slug": "Bad Slug"}, "bad_code"),
    ({"slug": ""}, "bad_code"),
    ({"name": " "}, "bad_name"),
    ({"kind": "fax"}, "bad_kind"),
    ({"tolerance_seconds": 5}, "bad_tolerance"),
    ({"tolerance_seconds": 86400}, "bad_tolerance"),
])
def test_a_bad_source_is_refused_and_nothing_is_written(world: World, fields: dict[str, object],
                                                        code: str) -> None:
    data: dict[str, object] = {"name": "PBX", "slug": "pbx", "kind": "telephony",
                               "pipeline": world.pipeline, **fields}
    refused(lambda: hook_source_create(actor=world.admin, **data), code)  # type: ignore[arg-type]
    assert not HookSource.objects.exists()


def test_only_admins_configure_webhooks_and_a_code_is_used_once(world: World) -> None:
    refused(lambda: hook_source_create(actor=world.director, name="PBX", slug="pbx",
                                       kind="telephony", pipeline=world.pipeline),
            "role_required", Forbidden)
    hook_source_create(actor=world.admin, name="PBX", slug="pbx", kind="telephony",
                       pipeline=world.pipeline)
    refused(lambda: hook_source_create(actor=world.admin, name="Other", slug="pbx",
                                       kind="messenger", pipeline=world.pipeline),
            "hook_source_exists", Conflict)
    source = HookSource.objects.get()
    refused(lambda: hook_source_rotate_secret(actor=world.head, source=source),
            "role_required", Forbidden)
    refused(lambda: hook_source_set_active(actor=world.ann, source=source, active=False),
            "role_required", Forbidden)
    assert isinstance(refused(lambda: hook_source_create(
        actor=world.admin, name="x", slug="-x", kind="telephony", pipeline=world.pipeline)),
        BadInput)


def test_rotating_the_secret_makes_the_old_one_stop_working(world: World) -> None:
    source, old = hook_source_create(actor=world.admin, name="PBX", slug="pbx",
                                     kind="telephony", pipeline=world.pipeline)
    source, new = hook_source_rotate_secret(actor=world.admin, source=source)
    assert new != old and HookSource.objects.get().secret == new
    event = Event.objects.filter(stream=source.stream).order_by("-seq").first()
    assert event is not None and event.type == "hook_source.updated"
    assert event.payload == {"secret": fingerprint(new)}
    http = HttpClient()
    body = json.dumps({"call_id": "1", "direction": "in", "caller": "+79160001122",
                       "callee": "100", "started_at": clock.now().isoformat(), "duration": 3,
                       "outcome": "answered"}).encode()
    ts = int(clock.now().timestamp())
    with_old = http.post("/hooks/telephony/pbx/", body, content_type="application/json",
                         headers={"X-Estafeta-Timestamp": str(ts),
                                  "X-Estafeta-Signature": sign(old, ts, body)})
    assert with_old.status_code == 401
    with_new = http.post("/hooks/telephony/pbx/", body, content_type="application/json",
                         headers={"X-Estafeta-Timestamp": str(ts),
                                  "X-Estafeta-Signature": sign(new, ts, body)})
    assert with_new.status_code == 200


def test_switching_off_twice_records_one_event(world: World) -> None:
    source, _ = hook_source_create(actor=world.admin, name="PBX", slug="pbx", kind="telephony",
                                   pipeline=world.pipeline)
    hook_source_set_active(actor=world.admin, source=source, active=False)
    hook_source_set_active(actor=world.admin, source=source, active=False)
    assert Event.objects.filter(stream=source.stream).count() == 2
    assert HookSource.objects.get().is_active is False


# --- pages -------------------------------------------------------------------------------------


def _admin(world: World) -> HttpClient:
    http = HttpClient(enforce_csrf_checks=False)
    http.force_login(world.admin)
    return http


def test_the_admin_adds_a_source_and_sees_its_secret_once(world: World) -> None:
    http = _admin(world)
    assert http.get("/settings/hooks/").status_code == 200
    response = http.post("/settings/hooks/new/", {
        "name": "Office PBX", "slug": "pbx", "kind": "telephony",
        "pipeline": world.pipeline.pk, "tolerance_seconds": "300"})
    assert response.status_code == 302
    source = HookSource.objects.get()
    assert response["Location"] == f"/settings/hooks/{source.pk}/"
    first = http.get(response["Location"])
    assert first.status_code == 200
    assert source.secret in first.content.decode()
    assert first["Cache-Control"] == "no-store"
    assert "http://testserver/hooks/telephony/pbx/" in first.content.decode()
    again = http.get(response["Location"]).content.decode()
    assert source.secret not in again
    assert fingerprint(source.secret) in again
    # The list shows the source, never its secret.
    listing = http.get("/settings/hooks/?q=pbx").content.decode()
    assert "Office PBX" in listing and source.secret not in listing


def test_a_rotated_secret_is_shown_once_too(world: World) -> None:
    source, old = hook_source_create(actor=world.admin, name="PBX", slug="pbx",
                                     kind="telephony", pipeline=world.pipeline)
    http = _admin(world)
    assert http.post(f"/settings/hooks/{source.pk}/rotate/").status_code == 302
    new = HookSource.objects.get().secret
    page = http.get(f"/settings/hooks/{source.pk}/").content.decode()
    assert new in page and old not in page
    assert new not in http.get(f"/settings/hooks/{source.pk}/").content.decode()


def test_a_bad_form_is_answered_400_and_writes_nothing(world: World) -> None:
    http = _admin(world)
    response = http.post("/settings/hooks/new/", {
        "name": "PBX", "slug": "Not a slug!", "kind": "telephony",
        "pipeline": world.pipeline.pk, "tolerance_seconds": "300"})
    assert response.status_code == 400
    hook_source_create(actor=world.admin, name="PBX", slug="pbx", kind="telephony",
                       pipeline=world.pipeline)
    User.objects.filter(pk=world.admin.pk).update(language="en")
    duplicate = http.post("/settings/hooks/new/", {
        "name": "PBX 2", "slug": "pbx", "kind": "messenger",
        "pipeline": world.pipeline.pk, "tolerance_seconds": "300"})
    assert duplicate.status_code == 409
    assert "A webhook source with this code exists." in duplicate.content.decode()
    assert HookSource.objects.count() == 1


def test_switching_a_source_off_and_on_through_the_page(world: World) -> None:
    source, _ = hook_source_create(actor=world.admin, name="PBX", slug="pbx", kind="telephony",
                                   pipeline=world.pipeline)
    http = _admin(world)
    assert http.post(f"/settings/hooks/{source.pk}/active/", {"active": "0"}).status_code == 302
    assert HookSource.objects.get().is_active is False
    assert http.post(f"/settings/hooks/{source.pk}/active/", {"active": "1"}).status_code == 302
    assert HookSource.objects.get().is_active is True
    events = Event.objects.filter(stream=source.stream).count()
    assert http.post(f"/settings/hooks/{source.pk}/active/", {"active": "x"}).status_code == 302
    assert Event.objects.filter(stream=source.stream).count() == events


def test_the_settings_pages_need_a_csrf_token(world: World) -> None:
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(world.admin)
    response = http.post("/settings/hooks/new/", {
        "name": "PBX", "slug": "pbx", "kind": "telephony", "pipeline": world.pipeline.pk,
        "tolerance_seconds": "300"})
    assert response.status_code == 403
    assert not HookSource.objects.exists()
