"""Clients: normalised contacts for finding duplicates, and anonymisation that keeps history."""

from __future__ import annotations

from estafeta.clients.models import Client, ClientContact, Segment
from estafeta.clients.selectors import clients_matching
from estafeta.clients.services import (
    ANONYMISED_NAME,
    client_anonymise,
    client_create,
    client_update,
)
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.tickets.services import activity_log

from .dbstate import refused
from .factories import World


def test_a_client_is_found_by_any_spelling_of_its_phone_or_email(world: World) -> None:
    assert list(clients_matching(phones=["+7 (912) 345 67 89"])) == [world.client]
    assert list(clients_matching(phones=["9123456789"])) == [world.client]
    assert list(clients_matching(emails=["IVAN@example.com "])) == [world.client]
    assert list(clients_matching(phones=["nonsense"], emails=["x@example.com"])) == []
    assert list(clients_matching()) == []


def test_bad_contacts_are_refused_when_creating_a_client(world: World) -> None:
    refused(lambda: client_create(actor=world.ann, name="X", phones=["123"]), "bad_phone")
    refused(lambda: client_create(actor=world.ann, name="X", emails=["x@"]), "bad_email")
    refused(lambda: client_create(actor=world.ann, name="  "), "bad_name")
    refused(lambda: client_create(actor=world.ann, name="X", kind="alien"), "bad_kind")


def test_client_events_carry_no_personal_data(world: World) -> None:
    retail = Segment.objects.create(code="retail", name="Retail")
    c = client_create(actor=world.ann, name="Мария Иванова", phones=["89001112233"],
                      emails=["maria@example.com"], segment=retail)
    client_update(actor=world.ann, client=c, name="Мария Петрова", add_phones=["89001112244"])
    text = str(list(Event.objects.filter(stream=c.stream).values_list("payload", flat=True)))
    for secret in ("Мария", "Иванова", "Петрова", "9001112233", "maria@"):
        assert secret not in text
    assert "retail" in text


def test_anonymising_erases_personal_data_and_keeps_tickets_and_history(world: World) -> None:
    t = world.ticket(description="Ivan Petrov, +7 912 345 67 89, wants a red car")
    activity_log(actor=t.owner, ticket=t, kind="call", direction="out", outcome="connected",
                 note="Ivan said his wife decides")
    events_before = Event.objects.count()
    refused(lambda: client_anonymise(actor=world.head, client=world.client, reason="GDPR-1"),
            "role_required", Forbidden)
    refused(lambda: client_anonymise(actor=world.admin, client=world.client, reason=" "),
            "reason_required", BadInput)
    client_anonymise(actor=world.admin, client=world.client, reason="erasure request 2026/17")
    c = Client.objects.get(pk=world.client.pk)
    assert (c.name, c.notes) == (ANONYMISED_NAME, "")
    assert not ClientContact.objects.filter(client=c).exists()
    t.refresh_from_db()
    assert (t.number, t.client_id, t.description) == (t.number, c.pk, "")
    assert t.activities.get().note == ""
    assert Event.objects.count() == events_before + 1
    everything = str(list(Event.objects.values_list("payload", flat=True)))
    assert "Ivan" not in everything and "912" not in everything
    assert audit_verify().ok
    assert list(clients_matching(phones=["89123456789"])) == []
    refused(lambda: world.ticket(), "client_anonymised", BadInput)
    refused(lambda: client_anonymise(actor=world.admin, client=c, reason="again"),
            "client_anonymised", Conflict)


def test_segments_and_territories_are_saved_with_an_event(world: World) -> None:
    from estafeta.clients.models import Territory
    from estafeta.clients.services import classification_save

    seg = classification_save(actor=world.admin, model=Segment, code="taxi", name="Такси")
    classification_save(actor=world.admin, model=Segment, code="ignored", name="Такси и каршеринг",
                        instance=seg)
    seg.refresh_from_db()
    assert (seg.code, seg.name) == ("taxi", "Такси и каршеринг")
    assert list(Event.objects.filter(stream=f"segment:{seg.pk}").values_list("type", flat=True)
                ) == ["segment.saved", "segment.saved"]
    refused(lambda: classification_save(actor=world.admin, model=Segment, code="taxi",
                                        name="x"), "segment_exists")
    refused(lambda: classification_save(actor=world.admin, model=Territory, code="North Side",
                                        name="x"), "bad_code")
    refused(lambda: classification_save(actor=world.head, model=Territory, code="north",
                                        name="North"), "role_required")
