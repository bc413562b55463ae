"""Writes about clients. Personal data (name, phones, emails, notes) stays in these rows and
never enters event payloads, so that anonymisation can erase it while the history stays whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.core import clock
from estafeta.domain.codes import ClientKind, ContactKind, EventType, Role
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.errors import BadInput, Conflict
from estafeta.domain.pipeline import CODE
from estafeta.domain.policy import require_active, require_role
from estafeta.history.services import event_record

from .models import Client, ClientContact, Segment, Territory

ANONYMISED_NAME = "(anonymised)"
ERASED_FILE_NAME = "erased"  # an erased attachment's name (and its stored file's)


def _normalised(phones: Iterable[str], emails: Iterable[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw in phones:
        if raw and raw.strip():
            out.append((ContactKind.PHONE, normalise_phone(raw)))
    for raw in emails:
        if raw and raw.strip():
            out.append((ContactKind.EMAIL, normalise_email(raw)))
    return list(dict.fromkeys(out))


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise BadInput("the client needs a name", code="bad_name")
    if len(name) > 200:
        raise BadInput("the client's name is longer than 200 characters", code="too_long")
    return name


def client_create(
    *, actor: User | None, name: str, kind: str | ClientKind = ClientKind.PERSON,
    phones: Iterable[str] = (), emails: Iterable[str] = (), segment: Segment | None = None,
    territory: Territory | None = None, key_account: bool = False, notes: str = "",
) -> Client:
    """Create a client. Duplicates are allowed (two people share a phone); ``clients_matching``
    is how interfaces warn about them before calling this."""
    if actor is not None:
        require_active(actor_facts(actor))
    name = _clean_name(name)
    try:
        kind = ClientKind(kind)
    except ValueError:
        raise BadInput(f"{kind!r} is not a client kind (person, company)",
                       code="bad_kind") from None
    contacts = _normalised(phones, emails)
    if len(notes) > 5000:
        raise BadInput("the notes are longer than 5000 characters", code="too_long")
    with transaction.atomic():
        client = Client.objects.create(
            kind=kind, name=name, segment=segment, territory=territory, key_account=key_account,
            notes=notes, created_by=actor, created_at=clock.now(),
        )
        ClientContact.objects.bulk_create(
            [ClientContact(client=client, kind=k, value=v) for k, v in contacts])
        event_record(stream=client.stream, type=EventType.CLIENT_CREATED, actor=actor,
                     new_stream=True, payload={
                         "kind": kind, "segment": segment.code if segment else None,
                         "territory": territory.code if territory else None,
                         "key_account": key_account,
                         "phones": sum(1 for k, _ in contacts if k == ContactKind.PHONE),
                         "emails": sum(1 for k, _ in contacts if k == ContactKind.EMAIL),
                     })
    return client


def client_update(
    *, actor: User | None, client: Client, name: str | None = None,
    segment: Segment | None = None, territory: Territory | None = None,
    key_account: bool | None = None, add_phones: Iterable[str] = (),
    add_emails: Iterable[str] = (),
) -> Client:
    """Change a client's classification or add contacts. Analytics read the segment stored in
    each event, so reclassifying a client changes no past figure."""
    if actor is not None:
        require_active(actor_facts(actor))
    contacts = _normalised(add_phones, add_emails)
    with transaction.atomic():
        client = Client.objects.select_for_update().get(pk=client.pk)
        if client.anonymised_at is not None:
            raise Conflict("this client was anonymised and cannot be changed",
                           code="client_anonymised")
        changes: dict[str, object] = {}
        if name is not None and _clean_name(name) != client.name:
            client.name = _clean_name(name)
            changes["name"] = "*"
        if segment is not None and segment.pk != client.segment_id:
            changes["segment"] = [client.segment.code if client.segment else None, segment.code]
            client.segment = segment
        if territory is not None and territory.pk != client.territory_id:
            changes["territory"] = [client.territory.code if client.territory else None,
                                    territory.code]
            client.territory = territory
        if key_account is not None and key_account != client.key_account:
            changes["key_account"] = [client.key_account, key_account]
            client.key_account = key_account
        existing = set(client.contacts.values_list("kind", "value"))
        new = [(k, v) for k, v in contacts if (k, v) not in existing]
        if new:
            ClientContact.objects.bulk_create(
                [ClientContact(client=client, kind=k, value=v) for k, v in new])
            changes["contacts_added"] = len(new)
        if not changes:
            return client
        client.save()
        event_record(stream=client.stream, type=EventType.CLIENT_UPDATED, actor=actor,
                     payload={"changes": changes})
    return client


def client_anonymise(*, actor: User | None, client: Client, reason: str) -> Client:
    """Erase a client's personal data on request (admins only).

    The client row, its tickets, their numbers and the whole history stay; the name becomes a
    placeholder; phones, emails and notes go; free text written about the client on its tickets
    (ticket descriptions, contact notes) is cleared. Event payloads never held any of it.
    """
    from estafeta.tickets.models import Activity, Ticket

    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="anonymise clients")
    reason = " ".join((reason or "").split())
    if not reason:
        raise BadInput("say why (for example, the erasure request's reference)",
                       code="reason_required")
    with transaction.atomic():
        client = Client.objects.select_for_update().get(pk=client.pk)
        if client.anonymised_at is not None:
            raise Conflict("this client is already anonymised", code="client_anonymised")
        removed = client.contacts.count()
        client.contacts.all().delete()
        client.name = ANONYMISED_NAME
        client.notes = ""
        client.anonymised_at = clock.now()
        client.save()
        tickets = Ticket.objects.filter(client=client)
        cleared = tickets.exclude(description="").update(description="")
        notes = Activity.objects.filter(ticket__client=client).exclude(note="").update(note="")
        # What intake kept as received (name, phones, emails, subject, text) goes too.
        from estafeta.intake.models import IntakeRecord

        IntakeRecord.objects.filter(client=client).update(name="", phones=[], emails=[],
                                                          subject="", text="")
        # And the emails on their tickets, both ways (our replies quote and address them): the
        # rows, Message-IDs and times stay (threading, idempotency), the words and addresses go.
        from estafeta.mailin.models import MailDirection, MailMessage

        mail = MailMessage.objects.filter(ticket__client=client)
        mail.update(from_name="", subject="", text="", html="")
        mail.filter(direction=MailDirection.IN).update(from_address="", to_addresses="")
        mail.filter(direction=MailDirection.OUT).update(to_addresses="")
        files = _erase_mail_attachments(client)
        # Messenger messages and calls: the sender, numbers, text and recording link go; the
        # provider's message and call ids stay (a redelivery is still recognised as one).
        from estafeta.hooks.models import HookCall, HookMessage, HookSender

        mine = Q(ticket__client=client) | Q(record__client=client)
        HookMessage.objects.filter(mine).update(sender_id="", sender_phone="", sender_name="",
                                                text="")
        HookCall.objects.filter(mine).update(caller="", callee="", recording_url="")
        # The sender's id in the messenger (a WhatsApp id is a phone number) goes too. The row
        # stays with a placeholder no webhook can send (ids are stripped of spaces), so a later
        # message from that person finds no sender and makes one new client.
        HookSender.objects.filter(client=client).update(
            sender_id=Concat(Value(" erased "), Cast("pk", output_field=CharField())))
        event_record(stream=client.stream, type=EventType.CLIENT_ANONYMISED, actor=actor,
                     payload={"contacts_removed": removed, "descriptions_cleared": cleared,
                              "notes_cleared": notes, "attachments_erased": files,
                              "reason": reason[:500]})
    return client


def _erase_mail_attachments(client: Client) -> int:
    """The files attached to the emails on the client's tickets (both ways) are erased: each
    ``StoredFile`` row stays (the attachment rows point to it) but loses its name, digest and
    path, and the attachment its name; the file itself is removed from storage once the
    transaction commits, unless another stored file (somebody else's identical attachment, a
    scan) still uses it. Returns how many attachments were erased."""
    from estafeta.mailin.models import MailAttachment
    from estafeta.tickets.models import StoredFile

    attachments = MailAttachment.objects.filter(message__ticket__client=client)
    file_ids = set(attachments.values_list("file_id", flat=True))
    if not file_ids:
        return 0
    paths = set(StoredFile.objects.filter(pk__in=file_ids).exclude(path="")
                .values_list("path", flat=True))
    count = attachments.update(name=ERASED_FILE_NAME)
    StoredFile.objects.filter(pk__in=file_ids).update(name=ERASED_FILE_NAME, sha256="", path="")
    shared = set(StoredFile.objects.filter(path__in=paths).values_list("path", flat=True))
    unused = sorted(paths - shared)

    def remove() -> None:
        for path in unused:
            # Checked again: an identical file stored after the erasure reuses the path.
            if not StoredFile.objects.filter(path=path).exists():
                default_storage.delete(path)

    transaction.on_commit(remove)
    return count


Classification = TypeVar("Classification", Segment, Territory)


def classification_save(*, actor: User | None, model: type[Classification], code: str,
                        name: str, instance: Classification | None = None) -> Classification:
    """Create a segment or territory, or rename one. The code never changes once created:
    events and analytics refer to it."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change classifications")
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        raise BadInput("the name must be 1-100 characters", code="bad_name")
    kind = model._meta.model_name
    event = EventType.SEGMENT_SAVED if model is Segment else EventType.TERRITORY_SAVED
    with transaction.atomic():
        if instance is None:
            code = (code or "").strip()
            if not CODE.match(code):
                raise BadInput(f"{code!r} is not a code: use lower-case Latin letters, digits,"
                               " - or _", code="bad_code")
            if model.objects.filter(code=code).exists():
                raise Conflict(f"the {kind} {code!r} exists", code=f"{kind}_exists")
            row = model.objects.create(code=code, name=name)
            event_record(stream=f"{kind}:{row.pk}", type=event, actor=actor, new_stream=True,
                         payload={"code": code, "created": True})
            return row
        row = model.objects.select_for_update().get(pk=instance.pk)
        if row.name != name:
            row.name = name
            row.save(update_fields=["name"])
            event_record(stream=f"{kind}:{row.pk}", type=event, actor=actor,
                         payload={"code": row.code, "renamed": True})
        return row


def classification_ensure(*, actor: User | None, model: type[Classification], code: str,
                          name: str) -> Classification:
    """The segment or territory ``code``, created (with its event) if it does not exist yet."""
    existing = model.objects.filter(code=code).first()
    if existing is not None:
        return existing
    return classification_save(actor=actor, model=model, code=code, name=name)
