"""Settings › Mailboxes: the password is write-only, the quarantine downloads the raw message
as an attachment with a safe name, and resolving it records who did."""

from __future__ import annotations

from django.test import Client as HttpClient

from estafeta.mailin.models import Mailbox, Quarantine
from estafeta.mailin.services import mail_ingest

from .factories import World


def _admin(world: World) -> HttpClient:
    http = HttpClient()
    http.force_login(world.admin)
    return http


def test_mailbox_password_is_never_shown_and_kept_when_empty(world: World) -> None:
    http = _admin(world)
    form = {"name": "Sales", "address": "sales@dealer.example", "kind": "imap",
            "pipeline": world.pipeline.pk, "host": "imap.dealer.example", "port": "993",
            "username": "sales", "password": "S3cret-imap", "folder": "INBOX",
            "ssl_verify": "on", "active": "on"}
    answer = http.post("/settings/mailboxes/new/", form)
    assert answer.status_code == 302
    box = Mailbox.objects.get()
    assert box.password == "S3cret-imap"
    page = http.get(f"/settings/mailboxes/{box.pk}/").content.decode()
    assert "S3cret-imap" not in page and 'name="password"' in page
    answer = http.post(f"/settings/mailboxes/{box.pk}/", {**form, "password": "",
                                                          "active": ""})
    assert answer.status_code == 302
    box.refresh_from_db()
    assert box.password == "S3cret-imap" and not box.active  # deactivated, not deleted
    bad = http.post("/settings/mailboxes/new/", {**form, "name": "Other", "host": ""})
    assert bad.status_code == 400 and Mailbox.objects.count() == 1
    assert "Sales" in http.get("/settings/mailboxes/").content.decode()


def test_quarantine_download_and_resolve(world: World) -> None:
    mail_ingest(b"<script>alert(1)</script>", mailbox=None, pipeline="sales")
    item = Quarantine.objects.get()
    http = _admin(world)
    page = http.get("/settings/mailboxes/quarantine/").content.decode()
    assert "<script>alert(1)</script>" not in page
    raw = http.get(f"/settings/mailboxes/quarantine/{item.pk}/raw/")
    assert raw.status_code == 200
    assert raw["Content-Disposition"] == f'attachment; filename="quarantine-{item.pk}.eml"'
    assert raw["Content-Type"] == "application/octet-stream"
    assert b"".join(raw.streaming_content) == b"<script>alert(1)</script>"
    assert http.post(f"/settings/mailboxes/quarantine/{item.pk}/resolve/").status_code == 302
    item.refresh_from_db()
    assert item.resolved_by == world.admin
    seller = HttpClient()
    seller.force_login(world.ann)
    assert seller.get(f"/settings/mailboxes/quarantine/{item.pk}/raw/").status_code == 403
