"""The permission matrix of the web interface: every URL of ``estafeta.web.urls`` x GET and
POST x person x ticket (or task), each answer checked against an explicit table.

People: Ann (seller, team Sales), Bob (seller, Sales), Olga (seller, team Other), Helen (head of
Sales), Oscar (head of Other), Dora (director), Otto and Opal (operators), Adam (admin) and an
anonymous visitor.

Tickets, named by their owner: ``ann`` and ``bob`` (team Sales, registered by Otto), ``olga``
(team Other, registered by Opal) and ``held``: Olga's ticket (registered by Opal) on which Ann
holds a task. So every person meets an own, a same-team and an other-team ticket: Ann owns
``ann``, her teammate's is ``bob``, the other team's ``olga``; Helen heads ``ann`` and ``bob``;
Otto registered ``ann`` and ``bob`` but not ``olga``; and so on. The task of a ticket is its
owner's first task, except on ``held``, where it is Ann's.

Answers: 200 a page, 302 a done change (or a redirect that is the page's purpose), ``LOGIN`` the
redirect of an anonymous visitor to the sign-in page, 403 a role gate or a service's refusal,
404 a ticket or task the person may not see (the same as one that does not exist), 405 a method
the URL does not take. Each request runs in a savepoint that is rolled back, so every URL meets
the same data. A refused POST must leave every table's row count (the history's included) and
the tickets, tasks and people as they were; a done change must have recorded an event.

A new URL without an entry in the tables fails ``test_every_web_url_is_in_the_matrix``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver
from django.utils import timezone

from estafeta.accounts.models import User
from estafeta.accounts.services import absence_add, user_deactivate
from estafeta.core import clock
from estafeta.history.models import Event
from estafeta.pipelines.models import LostReason, clear_version_cache
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import task_plan
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import (
    checklist_item_complete,
    stage_close,
    stage_pause,
    ticket_close_lost,
)
from estafeta.web import urls as web_urls

from .dbstate import APPS
from .factories import PASSWORD, PIPELINES, World, draft, later, make_user

pytestmark = pytest.mark.django_db

LOGIN = "login"  # a redirect to the sign-in page
Outcome = int | str

ANON = "anonymous"
PEOPLE = ("ann", "bob", "olga", "head", "other_head", "director", "operator", "operator2",
          "admin", ANON)
TICKETS = ("ann", "bob", "olga", "held")
ALL = frozenset(TICKETS)

SIGNED = frozenset(PEOPLE) - {ANON}
WORKERS = SIGNED - {"admin"}  # who works with tickets
BOARD = frozenset({"ann", "bob", "olga", "head", "other_head", "director"})
HEADS = frozenset({"head", "other_head", "director"})
ADMINS = frozenset({"admin"})
TARGETERS = HEADS | ADMINS  # who sets targets

# Which tickets each person sees (tickets/access.py).
SEES: dict[str, frozenset[str]] = {
    "ann": frozenset({"ann", "held"}),  # her own, and the other team's ticket she has a task on
    "bob": frozenset({"bob"}),  # not his teammate's
    "olga": frozenset({"olga", "held"}),
    "head": frozenset({"ann", "bob"}),  # the team's; not "held" (team Other's, Ann or not)
    "other_head": frozenset({"olga", "held"}),
    "director": ALL,
    "operator": frozenset({"ann", "bob"}),  # the ones he registered
    "operator2": frozenset({"olga", "held"}),
    "admin": frozenset(),  # configuration only
}

_RUNS = {"ann": {"ann"}, "bob": {"bob"}, "olga": {"olga", "held"}, "head": {"ann", "bob"},
         "other_head": {"olga", "held"}, "director": set(ALL)}
# What each may do on a ticket they see (domain/policy.py, asked by the services). Operators
# see the tickets they registered and may do nothing more there.
MAY: dict[str, dict[str, set[str]]] = {
    "see": {who: set(seen) for who, seen in SEES.items()},
    # the stage's executor (the owner here) or a supervisor: checklist, close, won, board move
    "stage": _RUNS,
    # the owner, the executor or a supervisor: lost, void
    "outcome": _RUNS,
    # a participant (a task holder too) or a supervisor: plan a task, log a contact, documents
    "work": {**_RUNS, "ann": {"ann", "held"}},
    # the ticket's team's head or a director: reassign, reopen
    "supervise": {"head": {"ann", "bob"}, "other_head": {"olga", "held"}, "director": set(ALL)},
    # the task's assignee or a supervisor (Olga owns "held" but the task there is Ann's)
    "task": {**_RUNS, "ann": {"ann", "held"}, "olga": {"olga"}},
}


# --- the data ------------------------------------------------------------------------------------


@dataclass
class Cast:
    world: World
    people: dict[str, User]
    tickets: dict[str, Ticket]
    tasks: dict[str, int]
    keys: dict[str, Any]  # ids the URLs and bodies use


@pytest.fixture
def cast(world: World) -> Cast:
    w = world
    opal = make_user("opal", "operator")
    # A second version of "sales" whose stage "new" may wait for the client (pause, resume).
    pipeline_load(actor=None, source="sales.yaml",
                  text=SALES_YAML.replace("    sla: 2h\n", "    sla: 2h\n    pausable: true\n"))
    tickets = {"ann": w.ticket(actor=w.operator, owner=w.ann),
               "bob": w.ticket(actor=w.operator, owner=w.bob),
               "olga": w.ticket(actor=opal, owner=w.olga),
               "held": w.ticket(actor=opal, owner=w.olga)}
    held = task_plan(actor=w.olga, ticket=tickets["held"],
                     draft=draft("Show the car", assignee=w.ann))
    tasks = {name: Task.objects.filter(ticket=t).order_by("pk").values_list("pk", flat=True)[0]
             for name, t in tickets.items()}
    tasks["held"] = held.pk
    people = {"ann": w.ann, "bob": w.bob, "olga": w.olga, "head": w.head,
              "other_head": w.other_head, "director": w.director, "operator": w.operator,
              "operator2": opal, "admin": w.admin}
    keys = {"ann": w.ann.pk, "bob": w.bob.pk, "sales": w.sales.pk, "other_head": w.other_head.pk,
            "pipeline": w.pipeline.pk, "reason": LostReason.objects.get(code="price").pk}
    return Cast(w, people, tickets, tasks, keys)


# --- setups run in each request's savepoint (by the director, who may do everything) ---------


def _fill_new(c: Cast, t: Ticket) -> dict[str, Any]:
    c.world.fill_new(t, actor=c.world.director)
    return {}


def _to_contract(c: Cast, t: Ticket) -> dict[str, Any]:
    _fill_new(c, t)
    stage_close(actor=c.world.director, ticket=t, stage="new", to="contract")
    checklist_item_complete(actor=c.world.director, ticket=Ticket.objects.get(pk=t.pk),
                            stage="contract", item="signed_on", evidence="2026-12-01")
    return {}


def _with_file(c: Cast, t: Ticket) -> dict[str, Any]:
    _to_contract(c, t)
    upload = SimpleUploadedFile("scan.pdf", b"%PDF-1.4 signed", content_type="application/pdf")
    entry = checklist_item_complete(actor=c.world.director, ticket=Ticket.objects.get(pk=t.pk),
                                    stage="contract", item="scan", file=upload)
    assert isinstance(entry.evidence, dict)
    return {"f": entry.evidence["file_id"]}


def _with_mail(c: Cast, t: Ticket) -> dict[str, Any]:
    """An email from the client on the ticket, with an attachment (as mail intake stores it)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from estafeta.mailin.models import MailAttachment, MailMessage
    from estafeta.tickets.models import StoredFile

    now = clock.now()
    message = MailMessage.objects.create(
        ticket=t, direction="in", message_id=f"<{t.number}@client.example>",
        from_address="ivan@example.com", subject="A car", text="Hello", html="<p>Hello</p>",
        received_at=now, created_at=now)
    stored = StoredFile.objects.create(
        sha256="0" * 64, size=4, name="a.pdf", content_type="application/pdf",
        path=default_storage.save("mail/matrix/a.pdf", ContentFile(b"%PDF")), uploaded_at=now)
    attachment = MailAttachment.objects.create(message=message, file=stored, name="a.pdf",
                                               content_type="application/pdf", size=4)
    return {"m": message.pk, "a": attachment.pk}


def _paused(c: Cast, t: Ticket) -> dict[str, Any]:
    stage_pause(actor=c.world.director, ticket=t, reason="The client is away")
    return {}


def _lost(c: Cast, t: Ticket) -> dict[str, Any]:
    ticket_close_lost(actor=c.world.director, ticket=t, reason="price")
    return {}


def _vic_away(c: Cast, t: Ticket | None) -> dict[str, Any]:
    vic = make_user("vic", "seller", c.world.sales)  # not one of the people asking
    user_deactivate(actor=c.world.admin, user=vic, successor=c.world.ann)
    return {"vic": vic.pk}


def _absence(c: Cast, t: Ticket | None) -> dict[str, Any]:
    now = clock.now()
    return {"absence": absence_add(actor=None, user=c.world.bob, starts_at=now,
                                   ends_at=now + timedelta(days=2)).pk}


def _hugo(c: Cast, t: Ticket | None) -> dict[str, Any]:
    return {"hugo": make_user("hugo", "head").pk}


def _hook(c: Cast, t: Ticket | None) -> dict[str, Any]:
    """A telephony webhook source (its secret rotated, or it switched off, by the admin)."""
    from estafeta.hooks.services import hook_source_create

    source, _ = hook_source_create(actor=None, name="Office PBX", slug="pbx", kind="telephony",
                                   pipeline=c.world.pipeline)
    return {"hook": source.pk}


def _escalated(c: Cast, t: Ticket) -> dict[str, Any]:
    """The monitor a day later: the ticket's overdue first task has escalated to the head."""
    from estafeta.control.models import Escalation
    from estafeta.control.services import monitor_pass

    monitor_pass(now=clock.now() + timedelta(days=1))
    return {"e": Escalation.objects.filter(ticket=t, level="head").values_list(
        "pk", flat=True)[0]}


def _twin(c: Cast, t: Ticket) -> dict[str, Any]:
    """Another open ticket of the same owner (registered by the system): one to merge into."""
    from estafeta.tickets.services import ticket_create

    twin = ticket_create(actor=None, pipeline=c.world.pipeline, client=c.world.client,
                         channel="email", subject="The same car", owner=t.owner)
    return {"into": twin.number, "twin": twin}


def _flagged(c: Cast, t: Ticket) -> dict[str, Any]:
    """A possible duplicate: the twin, flagged as one of the ticket (intake flags it so)."""
    from estafeta.intake.models import DuplicateFlag

    twin = _twin(c, t)["twin"]
    return {"flag": DuplicateFlag.objects.create(ticket=twin, of=t, created_at=clock.now()).pk}


def _webform(c: Cast, t: Ticket | None) -> dict[str, Any]:
    """The public form "site" and a token of it rendered ten seconds ago (past the minimum)."""
    from estafeta.web.pages.webforms import render_token
    from estafeta.webforms.services import webform_create

    form = webform_create(actor=None, slug="site", pipeline=c.world.pipeline, title="Test drive")
    return {"webform": form.pk, "token": render_token(form, clock.now() - timedelta(seconds=10))}


def _webform_sent(c: Cast, t: Ticket | None) -> dict[str, Any]:
    """The form "site" sent once: the secret token of its thank-you page."""
    from estafeta.webforms.models import WebForm
    from estafeta.webforms.services import Contact, webform_submit

    keys = _webform(c, t)
    done = webform_submit(form=WebForm.objects.get(pk=keys["webform"]), nonce="n" * 32,
                          rendered_at=clock.now() - timedelta(seconds=10),
                          contact=Contact(email="visitor@example.com"), client_ip="10.0.0.1")
    return {**keys, "thanks": done.submission.token}


def _webform_body(k: dict[str, Any]) -> dict[str, Any]:
    return {"token": k["token"], "email": "visitor@example.com", "message": "A test drive"}


def _mailbox(c: Cast, t: Ticket | None) -> dict[str, Any]:
    """A maildir mailbox of the sales pipeline and a message it could not take in."""
    from estafeta.mailin.models import Mailbox
    from estafeta.mailin.services import mailbox_save, quarantine_add

    box = mailbox_save(actor=None, mailbox=Mailbox(
        name="Sales mail", address="sales@dealer.example", kind="maildir", path="/nonexistent",
        pipeline=c.world.pipeline))
    item = quarantine_add(b"not mail", mailbox=box, reason="unparseable", detail="no headers")
    return {"mailbox": box.pk, "quarantine": item.pk}


def _mailbox_body(k: dict[str, Any]) -> dict[str, Any]:
    return {"name": "Info", "address": "info@dealer.example", "kind": "imap",
            "pipeline": k["pipeline"], "host": "imap.dealer.example", "port": "993",
            "username": "info", "password": "secret", "folder": "INBOX", "ssl_verify": "on",
            "active": "on"}


def _due(**delta: float) -> str:
    return timezone.localtime(later(**delta)).strftime("%Y-%m-%dT%H:%M")


Body = Callable[[dict[str, Any]], dict[str, Any]]
Setup = Callable[[Cast, Any], dict[str, Any]]


def _const(data: dict[str, Any]) -> Body:
    return lambda keys: data


# --- the tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A URL without a ticket or task in it; ``get``/``post``: each person's expected answer."""

    path: str
    get: Callable[[str], Outcome]
    post: Callable[[str], Outcome] | None = None
    body: Body | None = None
    setup: Setup | None = None
    missing: str = ""  # the path with an object that does not exist (answers 404)
    records: bool = True  # a done POST records an event
    reads: bool = False  # a POST that never changes anything (signing in with a bad password)


def gated(roles: frozenset[str], ok: Outcome) -> Callable[[str], Outcome]:
    """Anonymous: to the sign-in page; ``roles``: ``ok``; anyone else: the 403 page."""
    return lambda who: LOGIN if who == ANON else ok if who in roles else 403


def _always(outcome: Outcome) -> Callable[[str], Outcome]:
    return lambda who: outcome


def _admin_form(path: str, body: Body, setup: Setup | None = None, missing: str = "") -> Page:
    return Page(path, gated(ADMINS, 200), gated(ADMINS, 302), body, setup, missing)


def _admin_post(path: str, body: Body, setup: Setup | None = None, missing: str = "") -> Page:
    return Page(path, gated(ADMINS, 405), gated(ADMINS, 302), body, setup, missing)


def _admin_page(path: str, missing: str = "") -> Page:
    return Page(path, gated(ADMINS, 200), missing=missing)


NEW_PASSWORD = "Qw-83-lkj-wer"
SALES_YAML = (PIPELINES / "sales.yaml").read_text()

PAGES: dict[str, Page] = {
    "home": Page("/", gated(SIGNED, 302)),  # each role to where its work is
    "login": Page("/login/", lambda who: 200 if who == ANON else 302,
                  lambda who: 200 if who == ANON else 302,
                  _const({"username": "ann", "password": "wrong"}), reads=True),
    "logout": Page("/logout/", _always(405), _always(LOGIN), records=False),
    "account": Page("/account/", gated(SIGNED, 200)),
    "password": Page("/account/password/", gated(SIGNED, 405), gated(SIGNED, 302),
                     _const({"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                             "new_password2": NEW_PASSWORD})),
    "language": Page("/language/", _always(405), lambda who: LOGIN if who == ANON else 302,
                     _const({"language": "en"})),
    "tasks": Page("/tasks/", gated(WORKERS, 200)),
    "tickets": Page("/tickets/", gated(WORKERS, 200)),
    "ticket_new": Page("/tickets/new/", gated(WORKERS, 200), gated(WORKERS, 302),
                       _const({"phone": "+79001112233", "client_name": "New client",
                               "client_kind": "person", "pipeline": "sales", "channel": "phone",
                               "subject": "A car"})),
    "board": Page("/board/", gated(BOARD, 200)),
    "team": Page("/team/", gated(HEADS, 200)),
    # settings: administrators only
    "settings": _admin_page("/settings/"),
    "settings_users": _admin_page("/settings/users/"),
    "settings_user_new": _admin_form(
        "/settings/users/new/",
        lambda k: {"username": "vera", "role": "seller", "team": k["sales"], "language": "en",
                   "password": NEW_PASSWORD}),
    "settings_user": _admin_form(
        "/settings/users/{ann}/",
        lambda k: {"username": "ann", "first_name": "Anna", "role": "seller",
                   "team": k["sales"], "language": "en"}, missing="/settings/users/999999/"),
    "settings_user_password": _admin_post(
        "/settings/users/{ann}/password/", _const({"password-password": NEW_PASSWORD}),
        missing="/settings/users/999999/password/"),
    "settings_user_deactivate": _admin_post(
        "/settings/users/{ann}/deactivate/",
        lambda k: {"deactivate-successor": k["bob"], "deactivate-reason": "left"},
        missing="/settings/users/999999/deactivate/"),
    "settings_user_reactivate": _admin_post(
        "/settings/users/{vic}/reactivate/", _const({}), _vic_away,
        missing="/settings/users/999999/reactivate/"),
    "settings_teams": _admin_page("/settings/teams/"),
    "settings_team_new": _admin_post("/settings/teams/new/",
                                     lambda k: {"name": "North", "head": k["hugo"]}, _hugo),
    "settings_team": _admin_page("/settings/teams/{sales}/", missing="/settings/teams/999999/"),
    "settings_team_rename": _admin_post("/settings/teams/{sales}/rename/",
                                        _const({"rename-name": "South"}),
                                        missing="/settings/teams/999999/rename/"),
    "settings_team_head": _admin_post("/settings/teams/{sales}/head/",
                                      lambda k: {"head-head": k["other_head"]},
                                      missing="/settings/teams/999999/head/"),
    "settings_absences": _admin_page("/settings/absences/"),
    "settings_absence_new": _admin_post(
        "/settings/absences/new/",
        lambda k: {"user": k["bob"], "starts_on": "2026-12-07", "ends_on": "2026-12-11",
                   "reason": "holiday"}),
    "settings_absence_cancel": _admin_post("/settings/absences/{absence}/cancel/", _const({}),
                                           _absence, missing="/settings/absences/999999/cancel/"),
    "settings_mailboxes": _admin_page("/settings/mailboxes/"),
    "settings_mailbox_new": _admin_form("/settings/mailboxes/new/", _mailbox_body),
    "settings_mailbox": _admin_form("/settings/mailboxes/{mailbox}/", _mailbox_body, _mailbox,
                                    missing="/settings/mailboxes/999999/"),
    "settings_quarantine": _admin_page("/settings/mailboxes/quarantine/"),
    "settings_quarantine_raw": Page("/settings/mailboxes/quarantine/{quarantine}/raw/",
                                    gated(ADMINS, 200), setup=_mailbox,
                                    missing="/settings/mailboxes/quarantine/999999/raw/"),
    "settings_quarantine_resolve": _admin_post(
        "/settings/mailboxes/quarantine/{quarantine}/resolve/", _const({}), _mailbox,
        missing="/settings/mailboxes/quarantine/999999/resolve/"),
    "settings_pipelines": _admin_page("/settings/pipelines/"),
    "settings_pipeline_import": _admin_form(
        "/settings/pipelines/import/", _const({"text": SALES_YAML.replace("sla: 2h", "sla: 3h")})),
    "settings_pipeline_guide": _admin_page("/settings/pipelines/guide/"),
    "settings_pipeline": _admin_page("/settings/pipeline/sales/",
                                     missing="/settings/pipeline/nope/"),
    "settings_pipeline_active": _admin_post("/settings/pipeline/sales/active/",
                                            _const({"active": "0"}),
                                            missing="/settings/pipeline/nope/active/"),
    "settings_pipeline_version": _admin_page("/settings/pipeline/sales/v1/",
                                             missing="/settings/pipeline/sales/v9/"),
    "settings_pipeline_export": _admin_page("/settings/pipeline/sales/v1/export/",
                                            missing="/settings/pipeline/sales/v9/export/"),
    "settings_lost_reasons": _admin_page("/settings/lost-reasons/"),
    "settings_lost_reason_new": _admin_post(
        "/settings/lost-reasons/new/",
        lambda k: {"code": "credit", "title": "No credit", "pipeline": k["pipeline"]}),
    "settings_lost_reason_active": _admin_post("/settings/lost-reasons/{reason}/active/",
                                               _const({"active": "0"}),
                                               missing="/settings/lost-reasons/999999/active/"),
    "settings_calendar": _admin_page("/settings/calendar/"),
    "settings_calendar_day": _admin_post("/settings/calendar/day/",
                                         _const({"day": "2026-12-04", "kind": "off"})),
    "settings_webforms": _admin_page("/settings/webforms/"),
    "settings_webform_new": _admin_form(
        "/settings/webforms/new/",
        lambda k: {"slug": "quote", "title": "Quote", "pipeline": k["pipeline"],
                   "name_field": "optional", "phone_field": "optional", "email_field": "optional",
                   "message_field": "optional", "frame_origins": "", "min_fill_seconds": "3"}),
    "settings_webform": _admin_form(
        "/settings/webforms/{webform}/",
        lambda k: {"title": "Quote", "pipeline": k["pipeline"], "name_field": "hidden",
                   "phone_field": "optional", "email_field": "optional",
                   "message_field": "optional", "frame_origins": "https://dealer.example",
                   "min_fill_seconds": "3"}, _webform, missing="/settings/webforms/999999/"),
    "settings_webform_active": _admin_post("/settings/webforms/{webform}/active/",
                                           _const({"active": "0"}), _webform,
                                           missing="/settings/webforms/999999/active/"),
    # the public web form: anyone, signed in or not, sends it (a ticket through intake) and
    # reads the thank-you page its secret token names
    "webform": Page("/f/site/", _always(200), _always(302), _webform_body, _webform),
    "webform_thanks": Page("/f/site/thanks/{thanks}/", _always(200), setup=_webform_sent,
                           missing="/f/site/thanks/nope/"),
    # telephony and messenger webhook sources: administrators only
    "settings_hooks": _admin_page("/settings/hooks/"),
    "settings_hook_new": _admin_post(
        "/settings/hooks/new/",
        lambda k: {"name": "Telegram bot", "slug": "tg", "kind": "messenger",
                   "pipeline": k["pipeline"], "tolerance_seconds": "300"}),
    "settings_hook": Page("/settings/hooks/{hook}/", gated(ADMINS, 200), setup=_hook,
                          missing="/settings/hooks/999999/"),
    "settings_hook_rotate": _admin_post("/settings/hooks/{hook}/rotate/", _const({}), _hook,
                                        missing="/settings/hooks/999999/rotate/"),
    "settings_hook_active": _admin_post("/settings/hooks/{hook}/active/",
                                        _const({"active": "0"}), _hook,
                                        missing="/settings/hooks/999999/active/"),
    # notifications: everyone signed in, their own only (marking read records no event)
    "notifications": Page("/notifications/", gated(SIGNED, 200)),
    "notifications_read": Page("/notifications/read/", gated(SIGNED, 405), gated(SIGNED, 302),
                               _const({}), records=False),
    # the control panel: heads and directors
    "control": Page("/control/", gated(HEADS, 200)),
    # intake: possible duplicates, heads and directors (their teams' / all)
    "duplicates": Page("/duplicates/", gated(HEADS, 200)),
    # K11 energy ratings: heads rate their team's sellers (Oscar is refused Ann), directors any;
    # sellers see their own only if the company allows it (not by default); heads are sent on
    "ratings": Page("/ratings/", gated(HEADS, 200),
                    lambda who: 403 if who == "other_head" else gated(HEADS, 302)(who),
                    lambda k: {"seller": k["ann"], "score": "4", "comment": "steady"}),
    "ratings_me": Page("/ratings/me/", lambda who: 302 if who in HEADS else gated(HEADS, 403)(who)),
    # analytics (issue 5): sellers their own figures, heads their teams, directors all
    "analytics": Page("/analytics/", gated(BOARD, 200)),
    "analytics_tickets": Page("/analytics/K2/tickets/", gated(BOARD, 200)),
    "analytics_export": Page("/analytics/K2/export/?format=csv", gated(BOARD, 200)),
    # targets (K6): directors and admins any, heads their own teams' sellers (Oscar: not Ann)
    "targets": Page("/targets/", gated(TARGETERS, 200),
                    lambda who: 403 if who == "other_head" else gated(TARGETERS, 302)(who),
                    lambda k: {"kind": "seller", "ref": k["ann"], "start": "2026-12-01",
                               "end": "2026-12-31", "amount": "1000000", "currency": "RUB"}),
    "targets_import": Page("/targets/import/", gated(TARGETERS, 405),
                           lambda who: 400 if who == "other_head" else gated(TARGETERS, 302)(who),
                           lambda k: {"file": SimpleUploadedFile(
                               "plan.csv", b"kind,object,start,end,amount\n"
                               + f"seller,{k['ann']},2026-12-01,2026-12-31,500\n".encode(),
                               content_type="text/csv")}),
    "target_history": Page("/targets/seller/{ann}/",
                           lambda who: 404 if who == "other_head" else gated(TARGETERS, 200)(who),
                           missing="/targets/seller/999999/"),
}


@dataclass(frozen=True)
class Ticketed:
    """A URL with a ticket (``{n}``) or a task (``{t}``) in it, or that names one in its body.

    ``get``/``post``: the authority (a key of ``MAY``) needed; ``None``: the method is not
    taken (405 for those past the role gate)."""

    path: str
    gate: frozenset[str]
    get: str | None
    post: str | None = None
    body: Body | None = None
    setup: Setup | None = None

    def expected(self, method: str, who: str, ticket: str) -> Outcome:
        if who == ANON:
            return LOGIN
        if who not in self.gate:
            return 403
        need = self.get if method == "get" else self.post
        if need is None:
            return 405
        if ticket not in SEES[who]:
            return 404  # the same answer as for a ticket that does not exist
        if ticket in MAY[need].get(who, set()):
            return 200 if method == "get" else 302
        return 403


def _other_owner(k: dict[str, Any]) -> dict[str, Any]:
    return {"reassign-owner": k["ann"] if k["owner"] == k["bob"] else k["bob"],
            "reassign-move_tasks": "on"}


TICKETED: dict[str, Ticketed] = {
    "ticket": Ticketed("/tickets/{n}/", WORKERS, "see"),
    "ticket_file": Ticketed("/tickets/{n}/files/{f}/", WORKERS, "see", setup=_with_file),
    "ticket_item": Ticketed("/tickets/{n}/items/contacted/", WORKERS, None, "stage",
                            _const({"stage": "new"})),
    "ticket_close": Ticketed("/tickets/{n}/close/", WORKERS, None, "stage",
                             _const({"stage": "new"}), _fill_new),
    "ticket_won": Ticketed("/tickets/{n}/won/", WORKERS, None, "stage",
                           _const({"stage": "contract"}), _to_contract),
    "ticket_lost": Ticketed("/tickets/{n}/lost/", WORKERS, None, "outcome",
                            _const({"lost-reason": "price"})),
    "ticket_void": Ticketed("/tickets/{n}/void/", WORKERS, None, "outcome",
                            _const({"void-reason": "spam"})),
    "ticket_plan": Ticketed("/tickets/{n}/tasks/", WORKERS, None, "work",
                            lambda k: {"plan-kind": "call", "plan-title": "Next call",
                                       "plan-due_at": _due(days=2)}),
    "ticket_contact": Ticketed("/tickets/{n}/contacts/", WORKERS, None, "work",
                               _const({"contact-kind": "call", "contact-direction": "out",
                                       "contact-outcome": "no_answer"})),
    "ticket_document": Ticketed("/tickets/{n}/documents/", WORKERS, None, "work",
                                _const({"document-kind": "invoice", "document-number": "INV-1",
                                        "document-amount": "10", "document-currency": "RUB"})),
    "ticket_reassign": Ticketed("/tickets/{n}/reassign/", WORKERS, None, "supervise",
                                _other_owner),
    "ticket_reopen": Ticketed("/tickets/{n}/reopen/", WORKERS, None, "supervise",
                              _const({"reopen-reason": "back"}), _lost),
    "ticket_pause": Ticketed("/tickets/{n}/pause/", WORKERS, None, "stage",
                             _const({"stage": "new", "pause-reason": "The client is away"})),
    "ticket_resume": Ticketed("/tickets/{n}/resume/", WORKERS, None, "stage",
                              _const({"stage": "new"}), _paused),
    # email: the thread, one message and its attachments for those who see the ticket; the
    # reply for those who may log a contact
    "ticket_mail": Ticketed("/tickets/{n}/mail/", WORKERS, "see"),
    "ticket_mail_message": Ticketed("/tickets/{n}/mail/{m}/", WORKERS, "see", setup=_with_mail),
    "ticket_mail_attachment": Ticketed("/tickets/{n}/mail/attachments/{a}/", WORKERS, "see",
                                       setup=_with_mail),
    "ticket_mail_reply": Ticketed("/tickets/{n}/mail/reply/", WORKERS, None, "work",
                                  _const({"reply-to": "ivan@example.com",
                                          "reply-text": "The car is ready."}), _with_mail),
    "board_move": Ticketed("/board/move/", BOARD, None, "stage",
                           lambda k: {"number": k["n"], "stage": "new"}, _fill_new),
    "task_complete": Ticketed("/tasks/{t}/complete/", WORKERS, "see", "task",
                              lambda k: {"outcome": "done", "contact_outcome": "no_answer",
                                         "next_kind": "call", "next_title": "Call again",
                                         "next_due": _due(days=3)}),
    "task_reschedule": Ticketed("/tasks/{t}/reschedule/", WORKERS, "see", "task",
                                lambda k: {"due_at": _due(days=3), "reason": "asked"}),
    "escalation_acknowledge": Ticketed("/control/escalations/{e}/acknowledge/", HEADS, None,
                                       "supervise", _const({}), _escalated),
    "ticket_merge": Ticketed("/tickets/{n}/merge/", HEADS, None, "supervise",
                             lambda k: {"merge-into": k["into"]}, _twin),
    "duplicate_merge": Ticketed("/duplicates/{flag}/merge/", HEADS, None, "supervise",
                                _const({}), _flagged),
    "duplicate_dismiss": Ticketed("/duplicates/{flag}/dismiss/", HEADS, None, "supervise",
                                  _const({"note": "another car"}), _flagged),
}


# --- running one request -------------------------------------------------------------------------

TABLES = sorted({m._meta.db_table for m in apps.get_models() if m._meta.app_label in APPS})
EVENTS = TABLES.index(Event._meta.db_table)


def state() -> tuple[Any, ...]:
    """Row counts of every Estafeta table (the history's at ``[0][EVENTS]``), and the tickets,
    tasks and people as they stand."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(t)})"
                                             for t in TABLES))
        counts = cursor.fetchone()
    return (counts,
            list(Ticket.objects.order_by("pk").values_list(
                "pk", "owner_id", "team_id", "stage_id", "status", "updated_at")),
            list(Task.objects.order_by("pk").values_list("pk", "status", "due_at",
                                                         "assignee_id")),
            list(User.objects.order_by("pk").values_list("pk", "is_active", "role", "team_id",
                                                         "password", "language")))


@dataclass
class Answer:
    outcome: Outcome
    unchanged: bool
    recorded: bool  # an event was recorded
    html: str


def outcome_of(response: Any) -> Outcome:
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return LOGIN
    return response.status_code


def request(c: Cast, who: str, method: str, path: str, body: Body | None = None,
            setup: Setup | None = None, ticket: str = "", csrf: str = "",
            keys: dict[str, Any] | None = None) -> Answer:
    """One request in a savepoint rolled back afterwards. ``csrf``: "" no CSRF checks (the
    test client's default); "cross-site" the browser holds its CSRF cookie (from a page of the
    site seen before) but the form brings no token; "token" the form brings it."""
    with transaction.atomic():
        found = Ticket.objects.get(pk=c.tickets[ticket].pk) if ticket else None
        extra = dict(c.keys)
        if found is not None:
            extra.update(n=found.number, t=c.tasks[ticket], owner=found.owner_id)
        if setup is not None:
            extra.update(setup(c, found))
        extra.update(keys or {})
        http = HttpClient(enforce_csrf_checks=bool(csrf))
        if who != ANON:
            http.force_login(c.people[who])
        data = body(extra) if body else {}
        if csrf:
            assert http.get("/login/" if who == ANON else "/account/").status_code == 200
            if csrf == "token":
                data = {**data, "csrfmiddlewaretoken": http.cookies["csrftoken"].value}
        url = path.format(**extra)
        before = state()
        response: Any = http.get(url) if method == "get" else http.post(url, data)
        # A download is read to its end, which closes it (the test client's own way; closing it
        # again would fire request_finished and close the database connection).
        html = (b"".join(response.streaming_content) if response.streaming
                else response.content).decode(errors="replace")
        after = state()
        answer = Answer(outcome_of(response), after == before,
                        after[0][EVENTS] > before[0][EVENTS], html)
        transaction.set_rollback(True)
    clear_version_cache()  # a rolled-back pipeline import leaves no cached version behind
    return answer


def check_post(name: str, expected: Outcome, answer: Answer, *, records: bool, reads: bool,
               changes: tuple[Outcome, ...] = (302,)) -> list[str]:
    """A refused POST changed nothing; a done one recorded its event."""
    problems = []
    done = expected in changes and not reads
    if not done and not answer.unchanged:
        problems.append(f"{name}: refused ({answer.outcome}) but changed the data")
    if done and records and expected == 302 and not answer.recorded:
        problems.append(f"{name}: answered {answer.outcome} but recorded no event")
    return problems


# --- the matrix ----------------------------------------------------------------------------------


def _url_names(patterns: list[Any]) -> list[str]:
    names: list[str] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            names += _url_names(p.url_patterns)
        elif isinstance(p, URLPattern):
            assert p.name, f"the web URL {p.pattern} has no name"
            names.append(p.name)
    return names


def test_every_web_url_is_in_the_matrix() -> None:
    names = _url_names(web_urls.urlpatterns)
    assert len(names) == len(set(names))
    assert not set(PAGES) & set(TICKETED)
    assert sorted(names) == sorted([*PAGES, *TICKETED]), "add the new URL to the matrix tables"


def matrix_size() -> int:
    pages = sum(1 + (p.post is not None) for p in PAGES.values()) * len(PEOPLE)
    ticketed = len(TICKETED) * 2 * len(PEOPLE) * len(TICKETS)
    return pages + ticketed


@pytest.mark.parametrize("who", PEOPLE)
def test_pages_matrix(cast: Cast, who: str) -> None:
    got: dict[str, Outcome] = {}
    want: dict[str, Outcome] = {}
    problems: list[str] = []
    for name, page in PAGES.items():
        want[f"GET {name}"] = page.get(who)
        got[f"GET {name}"] = request(cast, who, "get", page.path, setup=page.setup).outcome
        if page.post is None:
            continue
        expected = page.post(who)
        answer = request(cast, who, "post", page.path, page.body, page.setup)
        want[f"POST {name}"], got[f"POST {name}"] = expected, answer.outcome
        changes: tuple[Outcome, ...] = (302, LOGIN) if name in ("logout", "language") else (302,)
        problems += check_post(name, expected, answer, records=page.records, reads=page.reads,
                               changes=changes)
    assert got == want
    assert problems == []


@pytest.mark.parametrize("who", PEOPLE)
def test_tickets_and_tasks_matrix(cast: Cast, who: str) -> None:
    got: dict[str, Outcome] = {}
    want: dict[str, Outcome] = {}
    problems: list[str] = []
    for ticket in TICKETS:
        for name, case in TICKETED.items():
            for method in ("get", "post"):
                key = f"{method.upper()} {name} on {ticket}'s"
                expected = case.expected(method, who, ticket)
                answer = request(cast, who, method, case.path,
                                 case.body if method == "post" else None, case.setup, ticket)
                want[key], got[key] = expected, answer.outcome
                if method == "post":
                    problems += check_post(key, expected, answer, records=True, reads=False)
                elif not answer.unchanged:
                    problems.append(f"{key}: a GET changed the data")
    assert got == want
    assert problems == []


def test_a_post_to_a_page_without_a_form_changes_nothing(cast: Cast) -> None:
    for name, page in PAGES.items():
        if page.post is not None:
            continue
        who = next(w for w in PEOPLE if w != ANON and page.get(w) in (200, 302))
        answer = request(cast, who, "post", page.path, _const({"active": "0", "name": "X"}),
                         page.setup)
        assert answer.unchanged, name
        assert answer.outcome in (200, 302, 405), (name, answer.outcome)


# --- missing alike invisible, guessed numbers, CSRF ----------------------------------------------

_CSRF_INPUT = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]*"')


def _same_page(html: str) -> str:
    """The page without its CSRF tokens (new with each request)."""
    return _CSRF_INPUT.sub(r"\1", html)


def _number(ticket: Ticket, serial: int) -> str:
    prefix = ticket.number.rsplit("-", 1)[0]
    return f"{prefix}-{serial:06d}"


MISSING = {"n": "", "t": 999_999_999, "f": 999_999}  # "n" is filled with a never issued number


def test_a_missing_ticket_task_or_file_answers_like_an_invisible_one(cast: Cast) -> None:
    """For every ticket and task URL: Ann asking for Olga's ticket (or its task, or its file)
    gets the very page a never issued number (or id) gets; the director, who sees every ticket,
    gets the same 404 for the missing ones."""
    missing = {**MISSING, "n": _number(cast.tickets["ann"], 999_999)}
    for name, case in TICKETED.items():
        for method in ("get", "post"):
            if case.expected(method, "ann", "olga") != 404:
                continue
            body = case.body if method == "post" else None
            invisible = request(cast, "ann", method, case.path, body, case.setup, "olga")
            gone = {k: request(cast, "ann", method, case.path, body, case.setup, "ann",
                               keys={k: v})
                    for k, v in missing.items() if f"{{{k}}}" in case.path
                    or (k == "n" and name == "board_move")}
            assert gone, name
            for key, answer in gone.items():
                assert answer.outcome == 404, (name, method, key)
                assert answer.unchanged, (name, method, key)
                assert _same_page(answer.html) == _same_page(invisible.html), (name, method, key)
                director = request(cast, "director", method, case.path, body, case.setup, "ann",
                                   keys={key: missing[key]})
                assert director.outcome == 404, (name, method, key)
                assert director.unchanged, (name, method, key)


def test_a_missing_settings_object_is_not_found(cast: Cast) -> None:
    with_objects = {name: page for name, page in PAGES.items() if "{" in page.path
                    or re.search(r"/(sales|v1)/", page.path)}
    assert set(with_objects) == {name for name, page in PAGES.items() if page.missing}
    for name, page in with_objects.items():
        method = "get" if page.get("admin") == 200 else "post"
        answer = request(cast, "admin", method, page.missing, page.body, page.setup)
        assert answer.outcome == 404, name
        assert answer.unchanged, name


def test_guessing_the_numbers_next_to_an_invisible_ticket_gives_the_missing_answer(
        cast: Cast) -> None:
    """Ann sees tickets 1 (hers) and 4 (she holds a task on it); 2 and 3 exist but are Bob's
    and Olga's, 5 and 6 were never issued. Stepping through the numbers tells her nothing."""
    ann = cast.tickets["ann"]
    serials = [int(t.number.rsplit("-", 1)[1]) for t in cast.tickets.values()]
    assert serials == [serials[0] + i for i in range(4)]
    hidden = [_number(ann, s) for s in (serials[1], serials[2], serials[3] + 1, serials[3] + 2)]
    for path, method, body in (("/tickets/{n}/", "get", None),
                               ("/tickets/{n}/close/", "post", _const({"stage": "new"})),
                               ("/tickets/{n}/reassign/", "post", _const({})),
                               ("/board/move/", "post",
                                lambda k: {"number": k["n"], "stage": "new"})):
        pages = set()
        for number in hidden:
            answer = request(cast, "ann", method, path, body, keys={"n": number})
            assert answer.outcome == 404, (path, number)
            assert answer.unchanged, (path, number)
            if path != "/board/move/":  # the board renders its own filters around the refusal
                pages.add(_same_page(answer.html))
        assert len(pages) <= 1, path
    # Task ids: Bob's and Olga's tasks and the next ids that do not exist.
    last = Task.objects.order_by("-pk").values_list("pk", flat=True)[0]
    pages = set()
    for task_id in (cast.tasks["bob"], cast.tasks["olga"], last + 1, last + 2):
        answer = request(cast, "ann", "get", "/tasks/{t}/complete/", keys={"t": task_id})
        assert answer.outcome == 404, task_id
        pages.add(_same_page(answer.html))
    assert len(pages) == 1
    # A file of Olga's ticket asked through Ann's own ticket.
    answer = request(cast, "ann", "get", "/tickets/{n}/files/{f}/", setup=_with_file,
                     ticket="olga", keys={"n": ann.number})
    assert answer.outcome == 404


def _a_success(name: str) -> tuple[str, str, Body | None, Setup | None, str]:
    """Someone whose POST to ``name`` would be done (without CSRF checks): who, path, body,
    setup, ticket."""
    if name in TICKETED:
        case = TICKETED[name]
        who, ticket = next((w, t) for w in ("director", *PEOPLE) for t in TICKETS
                           if case.expected("post", w, t) == 302)
        return who, case.path, case.body, case.setup, ticket
    page = PAGES[name]
    assert page.post is not None
    who = next(w for w in PEOPLE if page.post(w) in (200, 302, LOGIN))  # anonymous is last
    return who, page.path, page.body, page.setup, ""


POSTS = sorted([n for n, p in PAGES.items() if p.post is not None]
               + [n for n, c in TICKETED.items() if c.post is not None])


# Public forms shown in frames on other sites, where the browser sends no SameSite cookie:
# they carry a signed render token instead of the cookie-based CSRF one (web/pages/webforms.py).
SIGNED_FORMS = {"webform"}


def _check_signed_form(c: Cast, name: str) -> None:
    """Without its signed token the form is refused and nothing changes; with it, it is done
    although the CSRF token is missing (as in a frame on the dealer's site)."""
    page = PAGES[name]
    assert page.body is not None
    body = page.body

    def without(k: dict[str, Any]) -> dict[str, Any]:
        return {key: v for key, v in body(k).items() if key != "token"}

    for sender in ("ann", ANON):
        answer = request(c, sender, "post", page.path, without, page.setup, csrf="cross-site")
        assert answer.outcome == 400, (name, sender, answer.outcome)
        assert answer.unchanged, (name, sender)
        done = request(c, sender, "post", page.path, body, page.setup, csrf="cross-site")
        assert done.outcome == 302, (name, sender, done.outcome)
        assert done.recorded, (name, sender)


def test_every_post_is_refused_without_a_csrf_token(cast: Cast) -> None:
    """A cross-site form (the browser has the site's CSRF cookie, the form has no token) is
    refused with 403 and nothing changes, for every URL that takes a POST: sent by someone
    whose same POST with the token is done, and by an anonymous visitor."""
    for name in POSTS:
        if name in SIGNED_FORMS:
            _check_signed_form(cast, name)
            continue
        who, path, body, setup, ticket = _a_success(name)
        for sender in dict.fromkeys((who, ANON)):
            answer = request(cast, sender, "post", path, body, setup, ticket, csrf="cross-site")
            assert answer.outcome == 403, (name, sender, answer.outcome)
            assert "CSRF" in answer.html, (name, sender)
            assert answer.unchanged, (name, sender)
        done = request(cast, who, "post", path, body, setup, ticket, csrf="token")
        assert done.outcome in (200, 302, LOGIN), (name, who, done.outcome)
        if done.outcome == 302 and name not in ("login", "logout", "language",
                                                "notifications_read"):
            assert done.recorded, name
