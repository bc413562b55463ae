"""The demo dealership: built through the services, consistent, and built only once."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone

from estafeta.accounts.models import Team, User
from estafeta.demo.builder import (
    CORPORATE,
    CREDIT,
    DIRECTOR,
    LEAVER,
    PASSWORD,
    PEOPLE,
    RETAIL,
    DemoResult,
    build_demo,
    company_tz,
    is_working_day,
)
from estafeta.demo.channels import (
    FORM_SLUG,
    MAILBOX_NAME,
    MESSENGER_SLUG,
    TELEPHONY_SLUG,
    intake_info,
)
from estafeta.history.models import Event
from estafeta.history.services import audit_verify
from estafeta.hooks.models import HookCall, HookMessage, HookSource
from estafeta.hooks.signing import sign
from estafeta.intake.models import DuplicateFlag, FollowUp, IntakeRecord
from estafeta.mailin.models import MailAttachment, Mailbox, MailMessage
from estafeta.mailin.transports import poll_all
from estafeta.notifications.models import Notification
from estafeta.pipelines.models import Pipeline
from estafeta.tasks.models import Task
from estafeta.tickets.invariants import violations
from estafeta.tickets.models import Document, Ticket
from estafeta.webforms.models import WebForm, WebFormSubmission

from .dbstate import refused
from .factories import make_user

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A Thursday afternoon, Moscow time: where the demo's history ends in these tests.
END = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture(scope="class")
def demo(django_db_setup: None, django_db_blocker: Any,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    """One demo for the tests of a class, built once and rolled back after them (a rollback
    is the only way to take data away again: Estafeta refuses deletion)."""
    mail_dir = tmp_path_factory.mktemp("demo-mail")
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHER), \
            transaction.atomic():
        result = build_demo(months=1, scale=0.5, end=END, mail_dir=mail_dir)
        assert result.created
        yield result
        transaction.set_rollback(True)


@pytest.mark.usefixtures("demo")
class TestTheDemoDealership:
    def test_it_has_its_people_teams_and_pipelines(self, db: None) -> None:
        assert set(User.objects.values_list("username", flat=True)) == {p.username
                                                                        for p in PEOPLE}
        heads = dict(Team.objects.values_list("name", "head__username"))
        assert heads == {RETAIL: "sokolova", CREDIT: "sokolova", CORPORATE: "volkov"}
        sellers = User.objects.filter(role="seller", is_active=True)
        assert sellers.filter(team__name__in=[RETAIL, CORPORATE]).count() == 8
        assert sellers.filter(team__name=CREDIT).count() == 1
        assert User.objects.get(username=DIRECTOR).role == "director"
        assert User.objects.get(username="admin").role == "admin"
        assert User.objects.get(username="orlova").role == "operator"
        assert not User.objects.get(username=LEAVER).is_active  # left during the history
        assert authenticate(username="sokolova", password=PASSWORD) is not None
        assert set(Pipeline.objects.filter(current_version__isnull=False)
                   .values_list("code", flat=True)) == {"car-purchase", "fleet",
                                                        "service-booking", "complaint"}

    def test_its_history_has_every_outcome_and_some_overdue_work(self, db: None) -> None:
        statuses = set(Ticket.objects.values_list("status", flat=True))
        assert {"won", "lost", "open"} <= statuses
        assert Ticket.objects.filter(status="won", amount__gt=0).exists()
        assert Ticket.objects.filter(status="lost", lost_reason__isnull=False).exists()
        assert Document.objects.filter(kind="quote", number__startswith="КП-").exists()
        open_tasks = Task.objects.filter(status="open")
        overdue = open_tasks.filter(due_at__lt=END).count()
        assert overdue >= 1
        assert overdue < open_tasks.filter(due_at__gte=END).count()  # some, not most
        # Requests arrived in working hours on working days, in the company's time zone.
        for created in Ticket.objects.values_list("created_at", flat=True):
            local = timezone.localtime(created, company_tz())
            assert is_working_day(local.date()) and 9 <= local.hour < 19, local
        assert not Event.objects.filter(occurred_at__gt=END).exists()

    def test_it_keeps_every_invariant_and_its_history_verifies(self, db: None) -> None:
        assert list(violations()) == []
        report = audit_verify()
        assert report.ok, report.broken
        assert report.checkpoints >= 1

    def test_its_intake_channels_are_connected_and_the_form_answers(self, db: None) -> None:
        form = WebForm.objects.get(slug=FORM_SLUG)
        assert form.is_active and form.pipeline.code == "car-purchase"
        sources = dict(HookSource.objects.filter(is_active=True).values_list("slug", "kind"))
        assert sources == {TELEPHONY_SLUG: "telephony", MESSENGER_SLUG: "messenger"}
        mailbox = Mailbox.objects.get(name=MAILBOX_NAME)
        assert mailbox.active and mailbox.kind == "maildir" and not mailbox.acknowledge
        assert all((Path(mailbox.path) / sub).is_dir() for sub in ("new", "cur", "tmp"))
        page = HttpClient().get(f"/f/{FORM_SLUG}/")
        assert page.status_code == 200
        assert form.title in page.content.decode()
        info = intake_info("http://127.0.0.1:8000/")
        assert info is not None
        assert info.form_url == f"http://127.0.0.1:8000/f/{FORM_SLUG}/"
        assert info.telephony_secret == HookSource.objects.get(slug=TELEPHONY_SLUG).secret

    def test_requests_came_in_through_every_channel_in_working_hours(self, db: None) -> None:
        channels = set(IntakeRecord.objects.values_list("channel", flat=True))
        assert channels == {"email", "web_form", "phone", "messenger"}
        assert IntakeRecord.objects.filter(created_ticket=True).count() >= 10
        assert not IntakeRecord.objects.filter(occurred_at__gt=END).exists()
        assert WebFormSubmission.objects.filter(form__slug=FORM_SLUG).exists()
        assert HookMessage.objects.exists()
        # Each channel's tickets are car-purchase tickets of that channel.
        for record in IntakeRecord.objects.filter(created_ticket=True).select_related("ticket"):
            assert record.ticket.pipeline.code == "car-purchase"
            assert record.ticket.channel == record.channel

    def test_an_email_thread_with_an_attachment_and_a_reply_that_was_sent(self,
                                                                           db: None) -> None:
        ours = MailMessage.objects.filter(direction="out")
        assert ours.exists()
        answered = MailMessage.objects.filter(direction="in",
                                              in_reply_to__in=ours.values("message_id"))
        assert answered.exists()
        for answer in answered:  # threaded onto the ticket of our reply
            assert answer.ticket_id == ours.get(message_id=answer.in_reply_to).ticket_id
        assert MailAttachment.objects.filter(content_type="application/pdf").exists()
        replies = Notification.objects.filter(kind="mail_reply")
        assert replies.count() == ours.count()
        assert set(replies.values_list("status", flat=True)) == {"sent"}  # nothing left to mail
        assert FollowUp.objects.filter(kind="reply").exists()

    def test_calls_were_logged_and_the_newest_missed_call_waits_for_a_call_back(
            self, db: None) -> None:
        outcomes = set(HookCall.objects.values_list("outcome", flat=True))
        assert {"answered", "missed"} <= outcomes
        waiting = FollowUp.objects.filter(kind="callback", task__status="open")
        assert waiting.count() >= 1
        for follow_up in waiting.select_related("task", "ticket"):
            assert follow_up.ticket.status == "open"
            assert follow_up.task.due_at > follow_up.created_at
        assert FollowUp.objects.filter(kind="callback", task__status="done").exists()

    def test_one_possible_duplicate_waits_for_the_head(self, db: None) -> None:
        flag = DuplicateFlag.objects.select_related("ticket", "of").get()
        assert flag.status == "open"
        assert flag.ticket.status == flag.of.status == "open"
        assert flag.of.number in flag.ticket.subject
        assert flag.ticket.client_id != flag.of.client_id
        browser = HttpClient()
        browser.force_login(User.objects.get(username="sokolova"))
        page = browser.get("/duplicates/")
        assert page.status_code == 200
        assert flag.ticket.number in page.content.decode()

    def test_estafeta_check_passes(self, db: None) -> None:
        out = StringIO()
        call_command("check", "--quiet", stdout=out, stderr=StringIO())
        assert out.getvalue() == ""

    def test_the_example_email_arrives_from_the_maildir_and_by_the_command(
            self, db: None) -> None:
        mailbox = Mailbox.objects.get(name=MAILBOX_NAME)
        dropped = Path(mailbox.path) / "new" / "request.eml"
        shutil.copy(EXAMPLES / "request.eml", dropped)
        report = poll_all()  # what the worker does every pass
        assert [r.status for r in report.results] == ["created"]
        ticket = report.results[0].ticket
        assert ticket is not None and ticket.pipeline.code == "car-purchase"
        assert ticket.subject == "Покупка Haval Jolion в кредит"
        assert not dropped.exists() and list((Path(mailbox.path) / "cur").iterdir())
        out = StringIO()
        call_command("intake", "email", "--file", str(EXAMPLES / "request.eml"), "--mailbox",
                     MAILBOX_NAME, stdout=out)
        assert f"repeated: {ticket.number}" in out.getvalue()

    def test_the_example_call_and_message_post_to_the_demo_sources(self, db: None) -> None:
        def post(kind: str, slug: str, name: str) -> Any:
            body = (EXAMPLES / name).read_bytes()
            stamp = int(time.time())
            secret = HookSource.objects.get(slug=slug).secret
            return HttpClient(enforce_csrf_checks=True).post(
                f"/hooks/{kind}/{slug}/", body, content_type="application/json",
                headers={"X-Estafeta-Timestamp": str(stamp),
                         "X-Estafeta-Signature": sign(secret, stamp, body)})

        call = post("telephony", TELEPHONY_SLUG, "call.json")
        assert call.status_code == 200, call.content
        assert call.json()["created"] is True
        ticket = Ticket.objects.get(number=call.json()["ticket"])
        assert FollowUp.objects.filter(ticket=ticket, kind="callback",
                                       task__status="open").exists()
        message = post("messenger", MESSENGER_SLUG, "message.json")
        assert message.status_code == 200, message.content
        # The same phone in another spelling: the message joins the call's ticket.
        assert message.json() == {"ok": True, "ticket": ticket.number, "created": False}
        again = post("telephony", TELEPHONY_SLUG, "call.json")
        assert again.headers["X-Estafeta-Repeated"] == "true"
        assert json.loads((EXAMPLES / "call.json").read_text())["outcome"] == "missed"

    def test_building_it_again_builds_nothing(self, db: None) -> None:
        tickets, events = Ticket.objects.count(), Event.objects.count()
        again = build_demo(months=1, scale=0.5, end=END)
        assert not again.created
        assert (Ticket.objects.count(), Event.objects.count()) == (tickets, events)


def _shape() -> list[tuple[object, ...]]:
    return sorted(Ticket.objects.values_list("pipeline__code", "status", "stage__code", "amount",
                                             "subject", "owner__username", "created_at"))


def test_the_same_seed_builds_the_same_dealership(db: None, tmp_path: Path) -> None:
    with transaction.atomic():
        build_demo(months=0.3, scale=0.2, end=END, seed=7, mail_dir=tmp_path)
        first = _shape()
        arrivals = _arrivals()
        transaction.set_rollback(True)
    assert first and not Ticket.objects.exists()
    build_demo(months=0.3, scale=0.2, end=END, seed=7, mail_dir=tmp_path)
    assert _shape() == first
    assert arrivals and _arrivals() == arrivals


def _arrivals() -> list[tuple[object, ...]]:
    return sorted(IntakeRecord.objects.values_list("channel", "ticket__number", "occurred_at",
                                                   "created_ticket", "subject"))


def test_the_demo_refuses_a_database_that_has_its_names_but_not_the_demo(db: None) -> None:
    make_user("sokolova", "head")
    refused(lambda: build_demo(months=0.5, scale=0.3, end=END), code="demo_collision")


def test_the_demo_command_prints_the_logins_and_builds_once(db: None, settings: Any,
                                                            tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path  # the demo's maildir goes under the data directory
    out = StringIO()
    call_command("demo", "--no-serve", "--months", "0.3", "--scale", "0.2", stdout=out)
    text = out.getvalue()
    assert PASSWORD in text and "sokolova" in text and "orlova" in text
    assert "built in" in text
    for source in HookSource.objects.all():  # the demo's secrets, marked as such
        assert f"/hooks/{source.kind}/{source.slug}/  secret {source.secret}" in text
    assert "DEMO ONLY" in text and f"http://127.0.0.1:8000/f/{FORM_SLUG}/" in text
    assert str(tmp_path / "mail" / MAILBOX_NAME / "new") in text
    assert (tmp_path / "mail" / MAILBOX_NAME / "new").is_dir()
    assert User.objects.filter(username=DIRECTOR).exists()
    tickets = Ticket.objects.count()
    out = StringIO()
    call_command("demo", "--no-serve", "--months", "0.3", "--scale", "0.2", stdout=out)
    assert "already" in out.getvalue()
    assert "DEMO ONLY" in out.getvalue()  # the channels are printed every time
    assert Ticket.objects.count() == tickets
