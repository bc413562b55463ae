"""The demo dealership's intake: its web form, telephony and messenger sources, its mailbox, and
the requests that came in through them.

Everything goes through the channels' own services, as a real arrival would: an email is a raw
RFC 5322 message given to ``mailin.services.mail_ingest`` (threading, attachments), a call and a
messenger message are what the signed webhooks would have parsed (``hooks.services``), a web form
request is ``webforms.services.webform_submit`` with a rendered form's nonce. All of them reach
``intake.services.intake_arrival``. The seller's email replies are ``mailin.outgoing.mail_reply``
and leave the outbox through ``notifications.services.deliver_pending`` at the moment they were
written (into a discarded buffer: a demo never mails anybody).

The channels are connected when the dealership is set up; from then on a new client's request by
phone, web form, messenger or email arrives through them (see ``Dealership.register``).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.test import override_settings

from estafeta.clients.models import Client, ClientContact
from estafeta.clients.services import client_update
from estafeta.core import clock
from estafeta.domain.codes import Channel, TaskStatus
from estafeta.hooks.models import HookKind, HookSource
from estafeta.hooks.schema import CallIn, MessageIn
from estafeta.hooks.services import call_receive, hook_source_create, message_receive
from estafeta.intake.models import FollowUp
from estafeta.mailin.models import Mailbox, MailboxKind, MailMessage
from estafeta.mailin.outgoing import mail_reply
from estafeta.mailin.services import mail_ingest, mailbox_save
from estafeta.notifications.services import deliver_pending
from estafeta.pipelines.models import Pipeline
from estafeta.tasks.models import Task
from estafeta.tickets.models import Ticket
from estafeta.webforms.models import WebForm
from estafeta.webforms.services import contact_clean, webform_create, webform_submit

if TYPE_CHECKING:
    from collections.abc import Generator

    from estafeta.accounts.models import User

    from .builder import Dealership, PersonName

FORM_SLUG = "avtosever"
FORM_TITLE = "Заявка на покупку автомобиля в «Автосевер»"
TELEPHONY_SLUG = "pbx"
MESSENGER_SLUG = "chat"
MAILBOX_NAME = "sales"
MAILBOX_ADDRESS = "sales@avtosever.example"
OFFICE_PHONE = "+7 495 150-40-40"
PIPELINE = "car-purchase"  # the pipeline every demo channel opens tickets in
INTAKE_CHANNELS = frozenset({Channel.PHONE, Channel.WEB_FORM, Channel.MESSENGER,
                             Channel.EMAIL})


def mail_root() -> Path:
    """Where the demo's maildir lives unless the build is told otherwise."""
    return Path(settings.DATA_DIR) / "mail"


def maildir_ensure(path: str | Path) -> None:
    """``new/``, ``cur/`` and ``tmp/`` of a maildir (a file dropped into ``new/`` is read)."""
    for sub in ("new", "cur", "tmp"):
        (Path(path) / sub).mkdir(parents=True, exist_ok=True)


def _pdf(title: str) -> bytes:
    """A small, well-formed one-page PDF (what a client attaches: a bank's calculation)."""
    text = title.encode("ascii", "replace")
    stream = b"BT /F1 14 Tf 60 760 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += str(number).encode() + b" 0 obj\n" + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


@dataclass
class Arrived:
    """A new client's request that came in through a channel, and how to go on talking."""

    ticket: Ticket
    channel: str
    name: PersonName
    phone: str
    email: str
    model: str
    sender_id: str = ""
    messenger: str = ""


class Channels:
    """The demo's intake sources and the arrivals through them (inside the dealership's
    transaction, with the clock frozen at each moment)."""

    def __init__(self, dealership: Dealership, mail_dir: Path | None) -> None:
        self.d = dealership
        self.rng = dealership.rng
        self.mail_dir = mail_dir or mail_root()
        self.form: WebForm | None = None
        self.telephony: HookSource | None = None
        self.messenger: HookSource | None = None
        self.mailbox: Mailbox | None = None
        self.emails = 0  # first requests by email so far

    # --- setup ---

    def setup(self, admin: User) -> None:
        pipeline = Pipeline.objects.get(code=PIPELINE)
        self.form = webform_create(
            actor=admin, slug=FORM_SLUG, pipeline=pipeline, title=FORM_TITLE,
            modes={"name": "required", "phone": "required", "email": "optional",
                   "message": "optional"})
        self.telephony, _ = hook_source_create(
            actor=admin, name="Телефония офиса (АТС)", slug=TELEPHONY_SLUG,
            kind=HookKind.TELEPHONY, pipeline=pipeline)
        self.messenger, _ = hook_source_create(
            actor=admin, name="Мессенджеры: Telegram и WhatsApp", slug=MESSENGER_SLUG,
            kind=HookKind.MESSENGER, pipeline=pipeline)
        path = self.mail_dir / MAILBOX_NAME
        maildir_ensure(path)
        self.mailbox = mailbox_save(actor=admin, mailbox=Mailbox(
            name=MAILBOX_NAME, address=MAILBOX_ADDRESS, kind=MailboxKind.MAILDIR,
            path=str(path), pipeline=pipeline, acknowledge=False))

    # --- a new client's first request ---

    def arrive(self, *, channel: str, model: str, subject: str, text: str,
               missed: bool = False) -> Arrived | None:
        """A new client's request through ``channel``; ``None`` if intake put it on somebody's
        ticket that was there already (a phone or email that happened to be known)."""
        from .builder import mobile, person_email, person_name

        rng = self.rng
        name = person_name(rng)
        phone = mobile(rng)
        email = person_email(rng, name)
        arrived = Arrived(ticket=None, channel=channel, name=name,  # type: ignore[arg-type]
                          phone=phone, email=email, model=model)
        if channel == Channel.PHONE:
            number = self._call(phone, missed)
        elif channel == Channel.MESSENGER:
            arrived.messenger = rng.choice(("telegram", "telegram", "whatsapp"))
            arrived.sender_id = str(rng.randint(10**8, 10**10))
            number = self._message(arrived, text, first=True)
        elif channel == Channel.WEB_FORM:
            number = self._form(name, phone, email if rng.random() < 0.5 else "",
                                f"{subject}\n{text}".strip())
        else:
            number = self._email(arrived, subject, text)
        ticket = Ticket.objects.get(number=number) if number else None
        if ticket is None or ticket.created_at != clock.now() or not self._new_client(ticket):
            return None
        arrived.ticket = ticket
        self._complete_card(ticket, name)
        return arrived

    def _new_client(self, ticket: Ticket) -> bool:
        return not Ticket.objects.filter(client_id=ticket.client_id).exclude(
            pk=ticket.pk).exists()

    def _complete_card(self, ticket: Ticket, name: PersonName) -> None:
        """The seller writes the caller's full name on the client's card and classifies it."""
        from .builder import TERRITORIES

        codes = [code for code, _, _ in TERRITORIES]
        weights = [w for _, _, w in TERRITORIES]
        client = client_update(actor=self.d.executor(ticket), client=ticket.client,
                               name=name.full, segment=self.d.segments["retail"],
                               territory=self.d.territories[self.rng.choices(codes, weights)[0]])
        self.d.persons.append(client)

    def _call(self, phone: str, missed: bool) -> str:
        assert self.telephony is not None
        connected = not missed
        received = call_receive(source=self.telephony, call=CallIn(
            call_id=f"call-{self.rng.getrandbits(48):012x}", direction="in", caller=phone,
            callee=OFFICE_PHONE, started_at=clock.now(),
            duration=self.rng.randint(60, 420) if connected else 0,
            outcome="answered" if connected else "missed"))
        return received.ticket

    def _message(self, arrived: Arrived, text: str, *, first: bool) -> str:
        assert self.messenger is not None
        rng = self.rng
        received = message_receive(source=self.messenger, message=MessageIn(
            message_id=f"{arrived.messenger}-{rng.getrandbits(40):010x}",
            channel=arrived.messenger, sender_id=arrived.sender_id, text=text,
            sent_at=clock.now(),
            sender_phone=arrived.phone if first and rng.random() < 0.6 else "",
            sender_name=arrived.name.first if first else ""))
        return received.ticket

    def _form(self, name: PersonName, phone: str, email: str, message: str) -> str:
        assert self.form is not None
        rng = self.rng
        contact = contact_clean(self.form, name=f"{name.first} {name.last}", phone=phone,
                                email=email, message=message)
        nonce = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                        for _ in range(24))
        submitted = webform_submit(
            form=self.form, nonce=nonce,
            rendered_at=clock.now() - timedelta(seconds=rng.randint(40, 400)),
            contact=contact, client_ip=f"198.51.100.{rng.randint(1, 254)}", language="ru")
        return submitted.submission.ticket.number

    def _raw_email(self, arrived: Arrived, subject: str, text: str, *,
                   reply_to: MailMessage | None = None, attachment: str = "") -> bytes:
        message = EmailMessage()
        message["From"] = formataddr((f"{arrived.name.first} {arrived.name.last}",
                                      arrived.email))
        message["To"] = MAILBOX_ADDRESS
        message["Subject"] = subject
        message["Date"] = format_datetime(clock.now())
        domain = arrived.email.rpartition("@")[2]
        message["Message-ID"] = f"<{self.rng.getrandbits(64):016x}.demo@{domain}>"
        if reply_to is not None:
            message["In-Reply-To"] = reply_to.message_id
            message["References"] = " ".join(filter(None, (reply_to.references,
                                                           reply_to.message_id)))
        message.set_content(text)
        if attachment:
            message.add_attachment(_pdf(attachment), maintype="application", subtype="pdf",
                                   filename=attachment)
        return bytes(message)

    def _email(self, arrived: Arrived, subject: str, text: str) -> str:
        wish = text or f"Интересует {arrived.model}."
        body = (f"Добрый день!\n\n{wish} Подскажите, пожалуйста, цену и наличие.\n\n"
                f"С уважением,\n{arrived.name.first} {arrived.name.last}\n{arrived.phone}\n")
        attachment = ""
        if self.rng.random() < 0.4 or not self.emails:  # the first one has an attachment
            attachment, note = self.rng.choice((
                ("raschet-kredita.pdf", "Во вложении расчёт, который мне сделали в банке."),
                ("predlozhenie-salona.pdf", "Во вложении предложение другого салона: сможете "
                                            "лучше?")))
            body += f"\n{note}\n"
        self.emails += 1
        return self._ingest(self._raw_email(arrived, subject, body, attachment=attachment))

    def _ingest(self, raw: bytes) -> str:
        result = mail_ingest(raw, mailbox=self.mailbox, received_at=clock.now())
        if result.ticket is None:  # pragma: no cover - the demo's own mail is well formed
            raise RuntimeError(f"the demo's email was not taken in: {result.line()}")
        return result.ticket.number

    # --- the conversation after the first request ---

    def conversation(self, arrived: Arrived) -> Generator[datetime, None, None]:
        """The seller answers an email (the client writes back) or the client adds a second
        messenger message; each leaves a "reply to the client" task that the next stage's move
        completes."""
        ticket = arrived.ticket
        if arrived.channel == Channel.EMAIL:
            yield self.d.later(minutes=self.rng.randint(10, 80))
            seller = self.d.executor(ticket)
            reply = mail_reply(
                actor=seller, ticket=ticket, to=arrived.email, subject="",
                text=(f"Здравствуйте, {arrived.name.first}!\n\nСпасибо, что написали в "
                      f"«Автосевер». {arrived.model} есть в наличии, приглашаю на "
                      "тест-драйв: подскажите удобный день и время, я всё подготовлю.\n\n"
                      f"{seller.get_full_name()}\nотдел продаж «Автосевер»\n{OFFICE_PHONE}"))
            self.deliver()
            yield self.d.later(hours=self.rng.uniform(1, 5))
            answer = self.rng.choice((
                "Спасибо за быстрый ответ! Удобно в субботу после 12:00.",
                "Спасибо! Могу приехать завтра после работы, около 18:00.",
                "Добрый день! Давайте в четверг утром. И подскажите, возможен ли трейд-ин?"))
            subject = reply.subject if reply.subject.startswith("Re:") else f"Re: {reply.subject}"
            self._ingest(self._raw_email(arrived, subject, answer, reply_to=reply))
        elif arrived.channel == Channel.MESSENGER:
            yield self.d.later(minutes=self.rng.randint(5, 40))
            self._message(arrived, self.rng.choice((
                "Можно приехать на тест-драйв в выходные?",
                "И ещё: какие сейчас есть программы кредита?",
                "Машина нужна к концу месяца, успеете?")), first=False)

    def same_client_by_form(self, ticket: Ticket, model: str) -> None:
        """A client already being handled also leaves a request on the site: intake puts it on
        their open ticket (and plans a reply) instead of a second ticket."""
        client = Client.objects.get(pk=ticket.client_id)
        phone = (ClientContact.objects.filter(client=client, kind="phone")
                 .values_list("value", flat=True).order_by("pk").first())
        if not phone:
            return
        first, _, last = client.name.partition(" ")
        contact_name = f"{last.split(' ')[0]} {first}".strip() if last else client.name
        assert self.form is not None
        contact = contact_clean(self.form, name=contact_name, phone=phone,
                                message=f"Заявка с сайта: {model}. Перезвоните, пожалуйста.")
        webform_submit(form=self.form, nonce=f"again{self.rng.getrandbits(96):024x}",
                       rendered_at=clock.now() - timedelta(seconds=self.rng.randint(40, 200)),
                       contact=contact, client_ip=f"198.51.100.{self.rng.randint(1, 254)}",
                       language="ru")

    def deliver(self) -> None:
        """The outbox, now, into a buffer: the replies count as sent when they were written and
        the demo's worker has nothing old to print (nor to send, even with SMTP configured)."""
        with override_settings(ESTAFETA_SMTP_HOST=""), contextlib.redirect_stdout(io.StringIO()):
            deliver_pending(now=clock.now(), limit=50)

    # --- a possible duplicate for a head to decide ---

    def stranger_with_a_number(self, s_start: datetime) -> Generator[datetime, None, None]:
        """The client's wife writes from her own address about his ticket, its number in the
        subject: intake opens a ticket for her and flags it as a possible duplicate."""
        from .builder import PersonName, person_email

        yield s_start
        ticket = (Ticket.objects.filter(pipeline__code=PIPELINE, status="open",
                                        mail_messages__isnull=False)
                  .order_by("pk").first()
                  or Ticket.objects.filter(pipeline__code=PIPELINE, status="open")
                  .order_by("pk").first())
        if ticket is None:
            return
        client = Client.objects.get(pk=ticket.client_id)
        last = client.name.split(" ")[0]
        wife = PersonName(self.rng.choice(("Ирина", "Елена", "Ольга", "Марина")), "",
                          last if last.endswith("а") else f"{last}а")
        arrived = Arrived(ticket=ticket, channel=Channel.EMAIL, name=wife, phone="",
                          email=person_email(self.rng, wife), model="")
        self._ingest(self._raw_email(
            arrived, f"Вопрос по заявке {ticket.number}",
            f"Здравствуйте!\n\nПишу по заявке мужа ({ticket.number}). Он просил уточнить, "
            "можно ли оформить автомобиль на меня и успеем ли мы до конца месяца.\n\n"
            f"{wife.first} {wife.last}\n"))


def open_follow_ups() -> int:
    """Open reply/call-back tasks planned by intake (tests and the summary read it)."""
    return Task.objects.filter(status=TaskStatus.OPEN, pk__in=FollowUp.objects.values(
        "task_id")).count()


@dataclass(frozen=True)
class IntakeInfo:
    form_url: str
    telephony_url: str
    telephony_secret: str
    messenger_url: str
    messenger_secret: str
    mailbox: str
    maildir: str


def intake_info(base_url: str) -> IntakeInfo | None:
    """Where the demo's channels are and the webhook secrets (demo only), or ``None`` when
    this database has no demo channels."""
    form = WebForm.objects.filter(slug=FORM_SLUG).first()
    telephony = HookSource.objects.filter(slug=TELEPHONY_SLUG).first()
    messenger = HookSource.objects.filter(slug=MESSENGER_SLUG).first()
    mailbox = Mailbox.objects.filter(name=MAILBOX_NAME).first()
    if form is None or telephony is None or messenger is None or mailbox is None:
        return None
    if mailbox.kind == MailboxKind.MAILDIR and mailbox.path:
        maildir_ensure(mailbox.path)
    base = base_url.rstrip("/")
    return IntakeInfo(
        form_url=f"{base}/f/{form.slug}/",
        telephony_url=f"{base}/hooks/telephony/{telephony.slug}/",
        telephony_secret=telephony.secret,
        messenger_url=f"{base}/hooks/messenger/{messenger.slug}/",
        messenger_secret=messenger.secret, mailbox=mailbox.name, maildir=mailbox.path)

