"""The Django admin: configuration through the services, read-only history, no delete anywhere
(promises 3 and 5), driven through the test client like a browser would."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Model
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from estafeta.accounts.models import Absence, Team, User
from estafeta.accounts.services import absence_add
from estafeta.calendars.services import calendar_day_set
from estafeta.clients.models import Client, Segment, Territory
from estafeta.clients.services import ANONYMISED_NAME
from estafeta.domain.codes import TaskStatus
from estafeta.history.models import Checkpoint, Event
from estafeta.history.services import checkpoint_create
from estafeta.notifications.models import WebhookEndpoint
from estafeta.notifications.services import notify, webhook_endpoint_save
from estafeta.pipelines.models import LostReason, Pipeline
from estafeta.tasks.models import Task
from estafeta.tickets import services as ts
from estafeta.tickets.models import Ticket

from .dbstate import snapshot
from .factories import PASSWORD, PIPELINES, World, intake_rows, later, webform_sent
from .hook_rows import hooks_rows

if TYPE_CHECKING:  # what the test client returns, as django-stubs names it
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse

# A delete link, button, inline checkbox or bulk action, in whatever form the admin renders it.
DELETE_MARKS = re.compile(
    r'href="[^"]*/delete/"|class="deletelink|-DELETE"|value="delete_selected"')
NEW_PASSWORD = "Brand-new-pass-2026!"


@dataclass
class Full:
    world: World
    ticket: Ticket


@pytest.fixture
def full(world: World) -> Full:
    """The world with one row of every model the admin shows: a ticket that went through a stage
    with a contact and a document, an absence, reference data and a checkpoint."""
    t = world.ticket(description="wants a family car")
    world.fill_new(t)
    t = ts.stage_close(actor=t.owner, ticket=t, stage="new")
    ts.activity_log(actor=t.owner, ticket=t, kind="call", direction="out", outcome="connected",
                    duration_seconds=120, note="asked for a quote")
    ts.document_issue(actor=t.owner, ticket=t, kind="quote", number="КП-2026/0001",
                      amount="2950000")
    absence_add(actor=None, user=world.bob, starts_at=later(days=1), ends_at=later(days=3),
                reason="holiday")
    Segment.objects.create(code="retail", name="Retail")  # reference data has no service
    Territory.objects.create(code="north", name="North")
    calendar_day_set(actor=world.admin, day=date(2026, 12, 31), kind="off", note="New Year's Eve")
    notify(recipient=world.head, kind="escalation", key="admin-test", ticket=t, channels=("inapp",),
           payload={"level": "head", "reason": "task_overdue", "ticket": t.number,
                    "client": "Ivan Petrov", "stage": "Offer", "task": "", "due_at": "",
                    "assignee": "Ann", "promise": ""})
    webhook_endpoint_save(actor=world.admin, endpoint=WebhookEndpoint(
        url="https://crm.example/hook", secret="s" * 32))
    webform_sent(world)
    intake_rows(world)
    hooks_rows(world)
    checkpoint_create()
    return Full(world, t)


def log_in(client: HttpClient, user: User) -> HttpClient:
    """Signed in, reading English (a signed-in person reads their own language)."""
    User.objects.filter(pk=user.pk).update(language="en")
    user.language = "en"
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def site(client: HttpClient, world: World) -> HttpClient:
    """The test client logged in as the admin (role admin: staff and superuser)."""
    return log_in(client, world.admin)


def url(model: type[Model] | Model, view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def page(response: HttpResponse) -> str:
    return response.content.decode()


def messages_of(response: HttpResponse) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def assert_no_delete(response: HttpResponse, where: str) -> None:
    found = DELETE_MARKS.search(page(response))
    assert found is None, f"{where} offers deletion: {found.group(0) if found else ''}"


def last_event(stream: str) -> Event:
    event = Event.objects.filter(stream=stream).order_by("-seq").first()
    assert event is not None, f"no event on {stream}"
    return event


# --- every page renders, none offers deletion ------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_changelist_and_change_page_renders_without_a_delete_link(
        full: Full, site: HttpClient, language: str) -> None:
    site.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    User.objects.filter(pk=full.world.admin.pk).update(language=language)
    response = site.get(reverse("admin:index"))
    assert response.status_code == 200
    assert_no_delete(response, "the index")
    registry = admin.site._registry
    assert {Ticket, Task, Event, Checkpoint, User, Team, Pipeline, Client} <= set(registry)
    for model, model_admin in registry.items():
        response = site.get(url(model, "changelist"))
        assert response.status_code == 200, model
        assert_no_delete(response, f"the list of {model.__name__}")
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"the fixture has no {model.__name__}"
        response = site.get(url(model, "change", obj.pk))
        assert response.status_code == 200, model
        assert_no_delete(response, f"the page of {model.__name__}")
        response = site.get(url(model, "history", obj.pk))
        assert response.status_code == 200, model
        request = response.wsgi_request
        if model_admin.has_add_permission(request):
            response = site.get(url(model, "add"))
            assert response.status_code == 200, model
            assert_no_delete(response, f"adding a {model.__name__}")


def test_the_custom_pages_render(full: Full, site: HttpClient) -> None:
    world = full.world
    for path in (url(User, "password", world.ann.pk), url(User, "deactivate", world.ann.pk),
                 url(Client, "anonymise", world.client.pk), url(Pipeline, "add")):
        response = site.get(path)
        assert response.status_code == 200, path
        assert_no_delete(response, path)
        assert 'name="csrfmiddlewaretoken"' in page(response)


def test_no_delete_permission_exists_anywhere_including_inlines(full: Full,
                                                                site: HttpClient) -> None:
    request = site.get(reverse("admin:index")).wsgi_request
    for model_admin in admin.site._registry.values():
        obj = model_admin.model._default_manager.first()
        assert not model_admin.has_delete_permission(request)
        assert not model_admin.has_delete_permission(request, obj)
        assert "delete_selected" not in model_admin.get_actions(request)
        for inline in model_admin.get_inline_instances(request, obj):
            assert not inline.has_delete_permission(request, obj)
            assert not inline.can_delete


def test_posting_to_any_delete_url_is_refused_and_deletes_nothing(full: Full,
                                                                  site: HttpClient) -> None:
    before = snapshot()
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None
        response = site.post(url(model, "delete", obj.pk), {"post": "yes"})
        assert response.status_code == 403, model
        # The bulk action, forced by hand although no list offers it.
        response = site.post(url(model, "changelist"), {
            "action": "delete_selected", "_selected_action": [obj.pk], "post": "yes",
            "index": 0})
        assert response.status_code in (200, 302), model
    assert snapshot() == before


def test_tickets_and_the_history_cannot_be_added_or_changed_here(full: Full,
                                                                 site: HttpClient) -> None:
    before = snapshot()
    t = full.ticket
    event = Event.objects.filter(ticket=t).first()
    assert event is not None
    for model, obj in ((Ticket, t), (Event, event), (Task, t.tasks.first())):
        assert obj is not None
        assert site.get(url(model, "add")).status_code == 403
        assert site.post(url(model, "add"), {"subject": "x"}).status_code == 403
        response = site.get(url(model, "change", obj.pk))
        assert response.status_code == 200
        assert 'name="_save"' not in page(response)  # a view, not a form
        assert site.post(url(model, "change", obj.pk), {"subject": "x"}).status_code == 403
    assert snapshot() == before


def test_the_ticket_page_shows_its_work_and_its_timeline_in_order(full: Full,
                                                                  site: HttpClient) -> None:
    t = full.ticket
    text = page(site.get(url(Ticket, "change", t.pk)))
    assert t.number in text
    for expected in ("КП-2026/0001", "asked for a quote", "What the client needs",
                     "Send the quote"):
        assert expected in text
    types = [e.type for e in Event.objects.filter(stream=t.stream).order_by("seq")]
    positions = [text.index(f">{type_}<") for type_ in dict.fromkeys(types)]
    assert positions == sorted(positions)


def test_the_ticket_list_searches_by_number_subject_and_client(full: Full,
                                                               site: HttpClient) -> None:
    other = full.world.ticket(subject="Fleet of ten vans")
    for query, shown, hidden in ((full.ticket.number, full.ticket, other),
                                 ("vans", other, full.ticket),
                                 ("Petrov", full.ticket, None)):
        text = page(site.get(url(Ticket, "changelist"), {"q": query}))
        assert shown.number in text
        if hidden is not None:
            assert hidden.number not in text


def queries(site: HttpClient, path: str) -> int:
    site.get(path)  # warm the caches (content types, sessions)
    with CaptureQueriesContext(connection) as captured:
        assert site.get(path).status_code == 200
    return len(captured)


def test_lists_and_the_ticket_page_do_not_query_per_row(full: Full, site: HttpClient) -> None:
    world = full.world
    paths = [url(model, "changelist") for model in admin.site._registry]
    ticket_page = url(Ticket, "change", full.ticket.pk)
    before = {path: queries(site, path) for path in [*paths, ticket_page]}
    for subject in ("Second", "Third", "Fourth"):  # more rows of everything
        t = world.ticket(subject=subject)
        ts.activity_log(actor=t.owner, ticket=t, kind="email", direction="out",
                        outcome="sent")
    t = full.ticket
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="offer", item="quote_number",
                               evidence="КП-2026/0002")
    ts.checklist_item_complete(actor=t.owner, ticket=t, stage="offer", item="units",
                               evidence="2")
    ts.stage_close(actor=t.owner, ticket=t, stage="offer")
    ts.activity_log(actor=t.owner, ticket=t, kind="meeting", direction="in", outcome="held")
    absence_add(actor=None, user=world.ann, starts_at=later(days=5), ends_at=later(days=6))
    Segment.objects.create(code="fleet", name="Fleet")
    checkpoint_create()
    after = {path: queries(site, path) for path in [*paths, ticket_page]}
    assert after == before


# --- users --------------------------------------------------------------------------------------


def add_user(site: HttpClient, **fields: Any) -> HttpResponse:
    data = {"username": "nina", "role": "seller", "team": "", "first_name": "Nina",
            "last_name": "Sokolova", "email": "Nina@Example.com", "language": "ru",
            "password1": PASSWORD, "password2": PASSWORD, "_save": "Save"}
    data.update(fields)
    return site.post(url(User, "add"), data)


def test_adding_a_user_through_the_admin_calls_user_create(world: World,
                                                           site: HttpClient) -> None:
    response = add_user(site, team=str(world.sales.pk))
    assert response.status_code == 302
    nina = User.objects.get(username="nina")
    assert (nina.role, nina.team, nina.email) == ("seller", world.sales, "nina@example.com")
    assert nina.check_password(PASSWORD)
    assert not (nina.is_staff or nina.is_superuser)
    event = last_event(nina.stream)
    assert (event.type, event.actor) == ("user.created", world.admin)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"password2": "something-else-2026"}, "didn’t match"),
    ({"password1": "nina1", "password2": "nina1"}, "too short"),
    ({"username": "Ann"}, "is taken"),
    ({"username": "bad name!"}, "valid username"),
])
def test_a_refused_user_shows_the_problem_and_writes_nothing(
        world: World, site: HttpClient, fields: dict[str, str], problem: str) -> None:
    before = snapshot()
    response = add_user(site, **fields)
    assert response.status_code == 200
    assert problem in page(response)
    assert snapshot() == before


def test_changing_a_user_goes_through_user_update(world: World, site: HttpClient) -> None:
    data = {"role": "seller", "team": str(world.other.pk), "first_name": "Ann",
            "last_name": "Ivanova", "email": "", "language": "en", "_save": "Save"}
    response = site.post(url(User, "change", world.ann.pk), data)
    assert response.status_code == 302
    ann = User.objects.get(pk=world.ann.pk)
    assert (ann.team, ann.language, ann.last_name) == (world.other, "en", "Ivanova")
    event = last_event(ann.stream)
    assert event.type == "user.updated"
    assert event.payload["changes"]["team"] == [world.sales.pk, world.other.pk]
    assert event.payload["changes"]["last_name"] == ["*", "*"]  # personal data stays out


def test_flags_and_the_username_cannot_be_changed_on_the_user_page(world: World,
                                                                   site: HttpClient) -> None:
    data = {"role": "seller", "team": str(world.sales.pk), "first_name": "", "last_name": "",
            "email": "", "language": "ru", "_save": "Save", "username": "boss",
            "is_superuser": "on", "is_staff": "on", "is_active": "", "password": "x"}
    site.post(url(User, "change", world.ann.pk), data)
    ann = User.objects.get(pk=world.ann.pk)
    assert (ann.username, ann.is_superuser, ann.is_staff, ann.is_active) == (
        "ann", False, False, True)
    assert ann.check_password(PASSWORD)


def test_a_refused_user_change_shows_the_service_error(world: World, site: HttpClient) -> None:
    before = snapshot()
    data = {"role": "seller", "team": str(world.sales.pk), "first_name": "Helen",
            "last_name": "", "email": "", "language": "ru", "_save": "Save"}
    response = site.post(url(User, "change", world.head.pk), data)
    assert response.status_code == 200
    assert "helen heads a team" in page(response)
    assert snapshot() == before


def test_setting_a_password_goes_through_user_set_password(world: World,
                                                           site: HttpClient) -> None:
    path = url(User, "password", world.ann.pk)
    response = site.post(path, {"password1": NEW_PASSWORD, "password2": "other"})
    assert response.status_code == 200
    assert not User.objects.get(pk=world.ann.pk).check_password("other")
    response = site.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
                         follow=True)
    assert "The password of ann was set." in messages_of(response)
    assert User.objects.get(pk=world.ann.pk).check_password(NEW_PASSWORD)
    event = last_event(world.ann.stream)
    assert (event.type, event.payload) == ("user.updated",
                                           {"changes": {"password": ["*", "*"]}})


def test_an_admin_who_sets_their_own_password_stays_logged_in(world: World,
                                                             site: HttpClient) -> None:
    response = site.post(url(User, "password", world.admin.pk),
                         {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert site.get(reverse("admin:index")).status_code == 200


def test_deactivation_through_the_admin_hands_open_work_to_the_successor(
        world: World, site: HttpClient) -> None:
    ticket = world.ticket()
    seller = ticket.owner
    successor = world.bob if seller == world.ann else world.ann
    response = site.post(url(User, "deactivate", seller.pk),
                         {"successor": str(successor.pk), "reason": "left the company"},
                         follow=True)
    assert response.status_code == 200
    [message] = messages_of(response)
    assert message == (f"{seller.username} is deactivated. Handed over to {successor}: "
                       "tickets 1, open tasks 1, teams 0.")
    seller.refresh_from_db()
    ticket.refresh_from_db()
    assert not seller.is_active and seller.deactivated_at is not None
    assert ticket.owner == successor
    assert list(ticket.tasks.filter(status=TaskStatus.OPEN).values_list("assignee", flat=True)) \
        == [successor.pk]
    assert not Task.objects.filter(assignee=seller, status=TaskStatus.OPEN).exists()
    event = last_event(seller.stream)
    assert (event.type, event.payload["successor"]) == ("user.deactivated", successor.pk)
    assert last_event(ticket.stream).type == "ticket.handed_over"


def test_deactivation_without_a_successor_gives_the_work_to_the_team_head(
        world: World, site: HttpClient) -> None:
    ticket = world.ticket()
    response = site.post(url(User, "deactivate", ticket.owner.pk), {"successor": ""})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.owner == world.head


def test_a_refused_deactivation_shows_the_reason_and_changes_nothing(
        world: World, site: HttpClient) -> None:
    world.ticket()
    before = snapshot()
    response = site.post(url(User, "deactivate", world.head.pk),
                         {"successor": str(world.ann.pk)})
    assert response.status_code == 200
    assert "the successor must be a head of sales" in page(response)
    assert snapshot() == before


def test_reactivating_is_an_action(world: World, site: HttpClient) -> None:
    site.post(url(User, "deactivate", world.bob.pk), {"successor": str(world.ann.pk)})
    response = site.post(url(User, "changelist"), {
        "action": "reactivate", "_selected_action": [world.bob.pk]}, follow=True)
    assert "Users reactivated: 1." in messages_of(response)
    assert User.objects.get(pk=world.bob.pk).is_active
    assert last_event(world.bob.stream).type == "user.reactivated"


# --- teams and absences -------------------------------------------------------------------------


def test_teams_are_created_and_get_a_new_head_through_the_services(
        world: World, site: HttpClient) -> None:
    response = site.post(url(Team, "add"), {"name": "North", "head": str(world.head.pk),
                                            "_save": "Save"})
    assert response.status_code == 302
    north = Team.objects.get(name="North")
    assert last_event(north.stream).type == "team.created"
    response = site.post(url(Team, "change", north.pk), {"head": str(world.other_head.pk),
                                                         "name": "Renamed", "_save": "Save"})
    assert response.status_code == 302
    north.refresh_from_db()
    assert (north.name, north.head) == ("Renamed", world.other_head)
    assert last_event(north.stream).payload == {
        "changes": {"head": [world.head.pk, world.other_head.pk]}}
    renamed = Event.objects.get(stream=north.stream, seq=2)
    assert renamed.payload == {"changes": {"name": ["North", "Renamed"]}}
    text = page(site.get(url(Team, "change", world.sales.pk)))
    for member in (world.head, world.ann, world.bob):  # members, shown read-only
        assert f'href="{url(User, "change", member.pk)}"' in text


def test_absences_are_added_and_cancelled_through_the_services(
        world: World, site: HttpClient, now: datetime) -> None:
    response = site.post(url(Absence, "add"), {
        "user": str(world.ann.pk), "starts_at_0": "2026-12-07", "starts_at_1": "09:00",
        "ends_at_0": "2026-12-11", "ends_at_1": "18:00", "reason": "holiday", "_save": "Save"})
    assert response.status_code == 302
    absence = Absence.objects.get(user=world.ann)
    assert last_event(world.ann.stream).type == "absence.added"
    before = snapshot()
    response = site.post(url(Absence, "add"), {
        "user": str(world.ann.pk), "starts_at_0": "2026-12-11", "starts_at_1": "09:00",
        "ends_at_0": "2026-12-07", "ends_at_1": "18:00", "_save": "Save"})
    assert "An absence must end after it starts." in page(response)
    assert snapshot() == before
    response = site.post(url(Absence, "changelist"), {
        "action": "cancel", "_selected_action": [absence.pk]}, follow=True)
    assert "Absences cancelled: 1." in messages_of(response)
    absence.refresh_from_db()
    assert absence.cancelled_at == now
    response = site.post(url(Absence, "changelist"), {
        "action": "cancel", "_selected_action": [absence.pk]}, follow=True)
    assert any("already cancelled" in m for m in messages_of(response))


# --- reference data and clients -----------------------------------------------------------------


def test_segments_are_added_and_renamed_but_keep_their_code(world: World,
                                                            site: HttpClient) -> None:
    response = site.post(url(Segment, "add"), {"code": "fleet", "name": "Fleet",
                                               "_save": "Save"})
    assert response.status_code == 302
    segment = Segment.objects.get(code="fleet")
    site.post(url(Segment, "change", segment.pk), {"code": "other", "name": "Corporate fleet",
                                                   "_save": "Save"})
    segment.refresh_from_db()
    assert (segment.code, segment.name) == ("fleet", "Corporate fleet")


def test_a_client_is_anonymised_with_a_reason_and_keeps_its_tickets(
        world: World, site: HttpClient) -> None:
    ticket = world.ticket(description="lives at 5 Lenina street")
    client = world.client
    path = url(Client, "anonymise", client.pk)
    before = snapshot()
    response = site.post(path, {"reason": "", "confirm": "on"})
    assert response.status_code == 200
    assert snapshot() == before
    response = site.post(path, {"reason": "erasure request 2026/17", "confirm": "on"},
                         follow=True)
    assert f"Client #{client.pk} is anonymised." in messages_of(response)
    client.refresh_from_db()
    ticket.refresh_from_db()
    assert client.name == ANONYMISED_NAME and not client.contacts.exists()
    assert (ticket.client, ticket.description) == (client, "")
    assert last_event(client.stream).payload["reason"] == "erasure request 2026/17"
    assert "Ivan Petrov" not in page(site.get(url(Client, "change", client.pk)))


def test_clients_cannot_be_changed_in_the_admin(world: World, site: HttpClient) -> None:
    before = snapshot()
    response = site.post(url(Client, "change", world.client.pk), {"name": "Someone else"})
    assert response.status_code == 403
    assert site.get(url(Client, "add")).status_code == 403
    assert snapshot() == before


# --- pipelines ----------------------------------------------------------------------------------


def upload(site: HttpClient, text: str, name: str = "sales.yaml", **extra: Any) -> HttpResponse:
    file = SimpleUploadedFile(name, text.encode(), content_type="application/yaml")
    return site.post(url(Pipeline, "add"), {"file": file, "text": ""}, **extra)


def test_uploading_a_pipeline_yaml_loads_a_new_version(world: World, site: HttpClient) -> None:
    text = (PIPELINES / "sales.yaml").read_text().replace("sla: 2h", "sla: 3h")
    response = upload(site, text, follow=True)
    assert "Sales: loaded version 2." in messages_of(response)
    pipeline = Pipeline.objects.get(code="sales")
    assert pipeline.current_version is not None
    assert pipeline.current_version.number == 2
    event = last_event(pipeline.stream)
    assert (event.type, event.actor, event.payload["source"]) == (
        "pipeline.version_loaded", world.admin, "sales.yaml")
    response = upload(site, text, follow=True)
    assert "Sales: the definition equals version 2; nothing was changed." in \
        messages_of(response)


def test_a_pipeline_can_be_pasted_and_downloaded_back(world: World, site: HttpClient) -> None:
    response = site.get(url(Pipeline, "yaml", world.pipeline.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="sales.yaml"'
    dumped = page(response)
    response = site.post(url(Pipeline, "add"), {"text": dumped}, follow=True)
    assert "Sales: the definition equals version 1; nothing was changed." in \
        messages_of(response)


def problems_shown(response: HttpResponse) -> list[str]:
    text = page(response)
    assert response.status_code == 200
    errors = text.split('<ul class="errorlist nonfield">', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(p) for p in re.findall(r"<li>(.*?)</li>", errors)]


def test_a_broken_pipeline_file_shows_every_problem_and_loads_nothing(
        world: World, site: HttpClient) -> None:
    good = (PIPELINES / "sales.yaml").read_text()
    before = snapshot()
    broken = good.replace("sla: 2h", "sla: soon").replace("evidence: money", "evidence: gold")
    problems = problems_shown(upload(site, broken))
    assert len(problems) == 2, problems
    assert problems[0].startswith("stages[0].sla: 'soon' is not a duration")
    assert problems[1].startswith("stages[0].checklist[2].evidence:")
    problems = problems_shown(upload(site, good.replace("team: Sales", "team: Nobody")))
    assert problems == ["stages[0].executor.team: there is no team 'Nobody'"]
    assert snapshot() == before


def test_a_file_that_is_not_yaml_is_refused_with_a_clear_problem(world: World,
                                                                 site: HttpClient) -> None:
    before = snapshot()
    response = upload(site, "code: [unclosed", name="bad.yaml")
    assert response.status_code == 200
    assert "not valid YAML" in page(response)
    assert snapshot() == before
    response = site.post(url(Pipeline, "add"), {"text": ""})
    assert "Choose a YAML file or paste the definition" in page(response)


def test_lost_reasons_are_added_retired_and_restored_through_the_services(
        world: World, site: HttpClient) -> None:
    response = site.post(url(LostReason, "add"), {"code": "credit", "title": "No credit",
                                                  "pipeline": "", "_save": "Save"})
    assert response.status_code == 302
    reason = LostReason.objects.get(code="credit", pipeline=None)
    assert last_event(f"lost_reason:{reason.pk}").type == "lost_reason.added"
    response = site.post(url(LostReason, "add"), {"code": "Credit", "title": "x",
                                                  "pipeline": "", "_save": "Save"})
    assert "is not a code" in page(response)
    site.post(url(LostReason, "changelist"), {"action": "retire",
                                              "_selected_action": [reason.pk]})
    assert not LostReason.objects.get(pk=reason.pk).is_active
    site.post(url(LostReason, "changelist"), {"action": "restore",
                                              "_selected_action": [reason.pk]})
    assert LostReason.objects.get(pk=reason.pk).is_active
    assert last_event(f"lost_reason:{reason.pk}").payload == {"active": True}


# --- who may enter -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ann", "head", "director", "operator"])
def test_people_without_the_admin_role_cannot_open_the_admin(
        full: Full, client: HttpClient, who: str) -> None:
    log_in(client, getattr(full.world, who))
    for path in (reverse("admin:index"), url(Ticket, "changelist"),
                 url(User, "deactivate", full.world.bob.pk), url(Pipeline, "add")):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("admin:login"))
    before = snapshot()
    client.post(url(User, "deactivate", full.world.bob.pk), {"successor": ""})
    assert snapshot() == before


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: HttpClient, db: None) -> None:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
