"""Settings pages for administrators: people, teams, absences, pipelines, lost reasons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from html import escape
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, resolve, reverse

from estafeta.accounts.models import Absence, Team, User
from estafeta.accounts.services import absence_add, team_create, user_deactivate, user_update
from estafeta.core import clock
from estafeta.domain.codes import EventType, TaskStatus
from estafeta.domain.errors import PipelineInvalid
from estafeta.history.models import Event
from estafeta.pipelines.models import LostReason, Pipeline
from estafeta.pipelines.services import lost_reason_add, pipeline_dump, pipeline_load
from estafeta.tasks.models import Task
from estafeta.web.pages import admin as settings_pages

from .dbstate import snapshot
from .factories import PIPELINES, World, make_user

SALES_YAML = (PIPELINES / "sales.yaml").read_text()
NEW_PASSWORD = "Qw-83-lkj-wer"


def signed_in(user: User, **kwargs: Any) -> HttpClient:
    http = HttpClient(**kwargs)
    http.force_login(user)
    return http


@pytest.fixture
def admin(world: World) -> HttpClient:
    """The administrator, reading English (the messages below are the English ones)."""
    user_update(actor=None, user=world.admin, language="en")
    world.admin.refresh_from_db()
    return signed_in(world.admin)


def pages(world: World) -> list[str]:
    """Every page of the settings that answers a GET."""
    return [
        "/settings/", "/settings/users/", "/settings/users/new/",
        f"/settings/users/{world.ann.pk}/", f"/settings/users/{world.head.pk}/",
        "/settings/teams/", f"/settings/teams/{world.sales.pk}/",
        "/settings/absences/", "/settings/absences/?all=1",
        "/settings/pipelines/", "/settings/pipelines/import/", "/settings/pipelines/guide/",
        "/settings/pipelines/import/?from=sales", "/settings/pipelines/import/?from=nope",
        "/settings/pipeline/sales/", "/settings/pipeline/sales/v1/",
        "/settings/pipeline/sales/v1/export/",
        "/settings/lost-reasons/",
    ]


def writes(world: World) -> list[str]:
    """Every address of the settings that changes something (POST only)."""
    absence = absence_add(actor=None, user=world.bob, starts_at=clock.now(),
                          ends_at=clock.now() + timedelta(days=2))
    reason = LostReason.objects.filter(code="price").get()
    return [
        "/settings/users/new/", f"/settings/users/{world.ann.pk}/",
        f"/settings/users/{world.ann.pk}/password/", f"/settings/users/{world.ann.pk}/deactivate/",
        f"/settings/users/{world.ann.pk}/reactivate/",
        "/settings/teams/new/", f"/settings/teams/{world.sales.pk}/rename/",
        f"/settings/teams/{world.sales.pk}/head/",
        "/settings/absences/new/", f"/settings/absences/{absence.pk}/cancel/",
        "/settings/pipelines/import/", "/settings/pipeline/sales/active/",
        "/settings/lost-reasons/new/", f"/settings/lost-reasons/{reason.pk}/active/",
    ]


def events(type_: str) -> int:
    return Event.objects.filter(type=type_).count()


def unchanged(action: Callable[[], Any]) -> Any:
    """Run ``action`` (an HTTP request) and assert no Estafeta table changed, history included."""
    before = snapshot()
    result = action()
    after = snapshot()
    assert [k for k in before if before[k] != after[k]] == []
    return result


# --- who may see -----------------------------------------------------------------------------


def test_every_settings_page_renders_for_an_admin(world: World, admin: HttpClient) -> None:
    for url in pages(world):
        response = admin.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize("who", ["ann", "head", "director", "operator"])
def test_every_other_role_gets_the_forbidden_page_and_changes_nothing(world: World,
                                                                       who: str) -> None:
    http = signed_in(getattr(world, who))
    for url in pages(world):
        response = http.get(url)
        assert response.status_code == 403, url
    for url in writes(world):
        response = unchanged(partial(http.post, url, {"active": "0", "name": "X"}))
        assert response.status_code == 403, url


def test_the_matrix_covers_every_settings_address(world: World) -> None:
    covered = {resolve(url.split("?")[0]).url_name for url in [*pages(world), *writes(world)]}
    names = {p.name for p in settings_pages.urlpatterns if isinstance(p, URLPattern)}
    assert covered == names


def test_an_anonymous_visitor_is_sent_to_sign_in(world: World) -> None:
    for url in [*pages(world), *writes(world)]:
        response = HttpClient().get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_writes_need_a_post_and_nothing_answers_delete(world: World, admin: HttpClient) -> None:
    for url in writes(world):
        if url in ("/settings/users/new/", f"/settings/users/{world.ann.pk}/",
                   "/settings/pipelines/import/"):
            continue  # pages with their form: GET shows it
        assert admin.get(url).status_code == 405, url
    for url in [*pages(world), *writes(world)]:
        assert unchanged(partial(admin.delete, url)).status_code == 405, url
    names = [p.name or "" for p in settings_pages.urlpatterns if isinstance(p, URLPattern)]
    assert not [n for n in names if "delete" in n]
    assert not [p for p in settings_pages.urlpatterns if "delete" in str(p.pattern)]


def test_a_post_without_csrf_token_is_refused(world: World) -> None:
    http = signed_in(world.admin, enforce_csrf_checks=True)
    response = unchanged(lambda: http.post("/settings/users/new/", {
        "username": "eve", "role": "seller", "language": "ru", "password": NEW_PASSWORD}))
    assert response.status_code == 403
    response = unchanged(lambda: http.post("/settings/pipeline/sales/active/", {"active": "0"}))
    assert response.status_code == 403


# --- people ----------------------------------------------------------------------------------


def test_create_a_user_with_role_team_and_password(world: World, admin: HttpClient) -> None:
    before = events(EventType.USER_CREATED)
    response = admin.post("/settings/users/new/", {
        "username": "vera", "first_name": "Vera", "last_name": "Lis", "email": "Vera@Example.com",
        "role": "seller", "team": world.sales.pk, "language": "en", "password": NEW_PASSWORD})
    vera = User.objects.get(username="vera")
    assert response.status_code == 302
    assert response["Location"] == f"/settings/users/{vera.pk}/"
    assert (vera.role, vera.team, vera.language, vera.email) == (
        "seller", world.sales, "en", "vera@example.com")
    assert vera.check_password(NEW_PASSWORD)
    assert events(EventType.USER_CREATED) == before + 1


def test_a_taken_username_is_refused_with_its_message(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post("/settings/users/new/", {
        "username": "ann", "role": "seller", "language": "ru", "password": NEW_PASSWORD}))
    assert response.status_code == 409
    assert "This username is taken." in response.content.decode()


def test_a_user_without_password_cannot_sign_in_until_one_is_set(world: World,
                                                                  admin: HttpClient) -> None:
    admin.post("/settings/users/new/", {"username": "max", "role": "operator", "language": "ru"})
    max_ = User.objects.get(username="max")
    assert not max_.has_usable_password()
    before = events(EventType.USER_UPDATED)
    response = admin.post(f"/settings/users/{max_.pk}/password/",
                          {"password-password": NEW_PASSWORD})
    assert response.status_code == 302
    max_.refresh_from_db()
    assert max_.check_password(NEW_PASSWORD)
    assert events(EventType.USER_UPDATED) == before + 1


def test_a_weak_password_is_refused_and_nothing_changes(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post(f"/settings/users/{world.ann.pk}/password/",
                                            {"password-password": "123"}))
    assert response.status_code == 400


def test_edit_a_user(world: World, admin: HttpClient) -> None:
    before = events(EventType.USER_UPDATED)
    response = admin.post(f"/settings/users/{world.ann.pk}/", {
        "username": "hacker", "first_name": "Anna", "last_name": "", "email": "",
        "role": "seller", "team": world.other.pk, "language": "en"})
    assert response.status_code == 302
    world.ann.refresh_from_db()
    assert (world.ann.username, world.ann.first_name, world.ann.team) == ("ann", "Anna",
                                                                           world.other)
    assert events(EventType.USER_UPDATED) == before + 1


def test_a_head_of_a_team_keeps_the_head_role(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post(f"/settings/users/{world.head.pk}/", {
        "username": "helen", "first_name": "Helen", "role": "seller",
        "team": world.sales.pk, "language": "ru"}))
    assert response.status_code == 409
    assert "give the team another head first" in response.content.decode()


def test_deactivate_hands_open_work_to_the_named_successor(world: World,
                                                            admin: HttpClient) -> None:
    ticket = world.ticket(owner=world.ann)
    assert Task.objects.filter(assignee=world.ann, status=TaskStatus.OPEN).exists()
    deactivated = events(EventType.USER_DEACTIVATED)
    handed = events(EventType.TICKET_HANDED_OVER)
    response = admin.post(f"/settings/users/{world.ann.pk}/deactivate/", {
        "deactivate-successor": world.bob.pk, "deactivate-reason": "left the company"})
    assert response.status_code == 302
    world.ann.refresh_from_db()
    ticket.refresh_from_db()
    assert not world.ann.is_active
    assert ticket.owner == world.bob
    assert not Task.objects.filter(assignee=world.ann, status=TaskStatus.OPEN).exists()
    assert events(EventType.USER_DEACTIVATED) == deactivated + 1
    assert events(EventType.TICKET_HANDED_OVER) == handed + 1
    page = admin.get(response["Location"]).content.decode()
    assert "is deactivated" in page
    assert "Reactivate" in page


def test_the_last_head_of_sales_cannot_be_deactivated(world: World, admin: HttpClient) -> None:
    user_deactivate(actor=world.admin, user=world.other_head, successor=world.head)
    response = unchanged(lambda: admin.post(f"/settings/users/{world.head.pk}/deactivate/", {
        "deactivate-successor": world.ann.pk}))
    assert response.status_code == 403
    assert "This is the last active head of sales" in response.content.decode()
    world.head.refresh_from_db()
    assert world.head.is_active


def test_a_head_needs_a_head_as_successor(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post(f"/settings/users/{world.other_head.pk}/deactivate/",
                                            {"deactivate-successor": world.olga.pk}))
    assert response.status_code == 400
    assert "the successor must be a head of sales" in response.content.decode()


def test_reactivate_a_user(world: World, admin: HttpClient) -> None:
    user_deactivate(actor=world.admin, user=world.bob, successor=world.ann)
    before = events(EventType.USER_REACTIVATED)
    response = admin.post(f"/settings/users/{world.bob.pk}/reactivate/")
    assert response.status_code == 302
    world.bob.refresh_from_db()
    assert world.bob.is_active
    assert events(EventType.USER_REACTIVATED) == before + 1
    again = unchanged(lambda: admin.post(f"/settings/users/{world.bob.pk}/reactivate/"))
    assert again.status_code == 409


def test_users_are_searched_and_filtered_by_state(world: World, admin: HttpClient) -> None:
    page = admin.get("/settings/users/?q=olg").content.decode()
    assert "olga" in page
    assert ">ann<" not in page
    user_deactivate(actor=world.admin, user=world.bob, successor=world.ann)
    assert ">bob<" not in admin.get("/settings/users/").content.decode()
    assert ">bob<" in admin.get("/settings/users/?state=inactive").content.decode()


def test_an_unknown_user_is_not_found(world: World, admin: HttpClient) -> None:
    assert admin.get("/settings/users/999999/").status_code == 404
    assert unchanged(lambda: admin.post("/settings/users/999999/password/", {
        "password-password": NEW_PASSWORD})).status_code == 404


# --- teams and absences ---------------------------------------------------------------------


def test_create_rename_and_change_the_head_of_a_team(world: World, admin: HttpClient) -> None:
    hugo = make_user("hugo", "head")
    created = events(EventType.TEAM_CREATED)
    response = admin.post("/settings/teams/new/", {"name": "North", "head": hugo.pk})
    team = Team.objects.get(name="North")
    assert response.status_code == 302
    assert team.head == hugo
    assert events(EventType.TEAM_CREATED) == created + 1
    updated = events(EventType.TEAM_UPDATED)
    assert admin.post(f"/settings/teams/{team.pk}/rename/",
                      {"rename-name": "North-West"}).status_code == 302
    assert admin.post(f"/settings/teams/{team.pk}/head/",
                      {"head-head": world.other_head.pk}).status_code == 302
    team.refresh_from_db()
    assert (team.name, team.head) == ("North-West", world.other_head)
    assert events(EventType.TEAM_UPDATED) == updated + 2


def test_a_team_name_taken_in_other_letters_is_refused(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post(f"/settings/teams/{world.other.pk}/rename/",
                                            {"rename-name": "SALES"}))
    assert response.status_code == 409
    assert "A team with this name exists." in response.content.decode()
    response = unchanged(lambda: admin.post("/settings/teams/new/",
                                            {"name": "sales", "head": world.head.pk}))
    assert response.status_code == 409


def test_a_seller_cannot_head_a_team(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post(f"/settings/teams/{world.sales.pk}/head/",
                                            {"head-head": world.ann.pk}))
    assert response.status_code == 400  # not among the choices


def test_add_and_cancel_an_absence(world: World, admin: HttpClient) -> None:
    added = events(EventType.ABSENCE_ADDED)
    response = admin.post("/settings/absences/new/", {
        "user": world.bob.pk, "starts_on": "2026-12-07", "ends_on": "2026-12-11",
        "reason": "holiday"})
    assert response.status_code == 302
    absence = Absence.objects.get(user=world.bob)
    assert absence.ends_at - absence.starts_at == timedelta(days=5)
    assert events(EventType.ABSENCE_ADDED) == added + 1
    assert "holiday" in admin.get("/settings/absences/").content.decode()
    cancelled = events(EventType.ABSENCE_CANCELLED)
    assert admin.post(f"/settings/absences/{absence.pk}/cancel/").status_code == 302
    absence.refresh_from_db()
    assert absence.cancelled_at is not None
    assert events(EventType.ABSENCE_CANCELLED) == cancelled + 1
    again = unchanged(lambda: admin.post(f"/settings/absences/{absence.pk}/cancel/"))
    assert again.status_code == 409
    assert "This absence is already cancelled." in again.content.decode()


def test_an_absence_ending_before_it_starts_is_refused(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post("/settings/absences/new/", {
        "user": world.bob.pk, "starts_on": "2026-12-07", "ends_on": "2026-12-01"}))
    assert response.status_code == 400
    assert "The absence must end on or after its first day." in response.content.decode()


# --- pipelines -------------------------------------------------------------------------------


def test_a_version_shows_stages_checklists_rules_and_templates(world: World,
                                                                admin: HttpClient) -> None:
    page = admin.get("/settings/pipeline/sales/v1/").content.decode()
    for text in ("New request", "Offer", "Contract", "Won", "Lost",  # stages
                 "What the client needs", "Budget", "optional", "amount of money",  # checklist
                 "2h", "10%", "a person of a team by role", "in turn (round robin)", "Sales",
                 "the ticket&#x27;s owner", "Call the client", "due in 1h", "can be skipped"):
        assert text in page, text
    assert page.index("New request") < page.index("Offer") < page.index("Contract")
    assert "docs/pipelines.md" in admin.get("/settings/pipelines/guide/").content.decode()
    assert "/settings/pipelines/guide/" in page


def test_export_downloads_the_yaml_of_a_version(world: World, admin: HttpClient) -> None:
    response = admin.get("/settings/pipeline/sales/v1/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/yaml")
    assert response["Content-Disposition"] == 'attachment; filename="sales-v1.yaml"'
    assert response.content.decode() == pipeline_dump("sales", 1)
    assert admin.get("/settings/pipeline/sales/v9/export/").status_code == 404
    assert admin.get("/settings/pipeline/nope/v1/").status_code == 404


def test_import_pasted_yaml_makes_a_new_version_and_running_tickets_keep_theirs(
        world: World, admin: HttpClient) -> None:
    ticket = world.ticket()
    loaded = events(EventType.PIPELINE_VERSION_LOADED)
    response = admin.post("/settings/pipelines/import/",
                          {"text": SALES_YAML.replace("sla: 2h", "sla: 3h")})
    assert response.status_code == 302
    assert response["Location"] == "/settings/pipeline/sales/"
    pipeline = Pipeline.objects.get(code="sales")
    assert pipeline.current_version is not None
    assert pipeline.current_version.number == 2
    assert events(EventType.PIPELINE_VERSION_LOADED) == loaded + 1
    ticket.refresh_from_db()
    assert ticket.version.number == 1
    assert "version 2" in admin.get(response["Location"]).content.decode()


def test_editing_in_the_page_starts_from_the_current_definition(world: World,
                                                                 admin: HttpClient) -> None:
    page = admin.get("/settings/pipelines/import/?from=sales").content.decode()
    assert escape(pipeline_dump("sales")) in page
    assert "Skip to content" in admin.get("/settings/pipelines/import/?from=nope").content.decode()


def test_importing_the_current_definition_changes_nothing(world: World,
                                                          admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post("/settings/pipelines/import/", {"text": SALES_YAML}))
    assert response.status_code == 302
    assert "Nothing changed" in admin.get(response["Location"]).content.decode()


def test_import_an_uploaded_file(world: World, admin: HttpClient) -> None:
    text = SALES_YAML.replace("code: sales", "code: service").replace("name: Sales\n",
                                                                      "name: Service\n")
    upload = SimpleUploadedFile("../../service.yaml", text.encode(), "application/x-yaml")
    response = admin.post("/settings/pipelines/import/", {"file": upload})
    assert response.status_code == 302
    version = Pipeline.objects.get(code="service").current_version
    assert version is not None
    assert Event.objects.filter(type=EventType.PIPELINE_VERSION_LOADED).latest("pk").payload[
        "source"] == "service.yaml"


def test_invalid_yaml_lists_every_problem_and_changes_nothing(world: World,
                                                              admin: HttpClient) -> None:
    bad = SALES_YAML.replace("sla: 2h", "sla: soon").replace("probability: 40",
                                                             "probability: 400\n    colour: red")
    with pytest.raises(PipelineInvalid) as caught:
        pipeline_load(actor=world.admin, text=bad)
    assert len(caught.value.problems) >= 3
    response = unchanged(lambda: admin.post("/settings/pipelines/import/", {"text": bad}))
    page = response.content.decode()
    assert response.status_code == 400
    for problem in caught.value.problems:
        assert escape(problem) in page, problem
    assert "Nothing was changed." in page
    assert page.count('class="problems"') == 1


def test_html_in_uploaded_yaml_is_shown_as_text(world: World, admin: HttpClient) -> None:
    evil = "<script>alert(1)</script>"
    text = SALES_YAML.replace("name: Sales\n", f'name: "{evil}"\n').replace(
        "title: Budget", 'title: "<img src=x onerror=alert(2)>"')
    upload = SimpleUploadedFile("evil.yaml", text.encode(), "text/yaml")
    assert admin.post("/settings/pipelines/import/", {"file": upload}).status_code == 302
    for url in ("/settings/pipelines/", "/settings/pipeline/sales/",
                "/settings/pipeline/sales/v2/"):
        page = admin.get(url).content.decode()
        assert evil not in page and "<img src=x" not in page, url
        assert escape(evil) in page, url
    bad = SALES_YAML.replace("stages:", f"{evil}: 1\nstages:")
    response = unchanged(lambda: admin.post("/settings/pipelines/import/", {
        "file": SimpleUploadedFile("bad.yaml", bad.encode(), "text/yaml")}))
    assert response.status_code == 400
    assert evil not in response.content.decode()
    assert escape(evil) in response.content.decode()


def test_an_empty_import_asks_for_a_definition(world: World, admin: HttpClient) -> None:
    response = unchanged(lambda: admin.post("/settings/pipelines/import/", {"text": ""}))
    assert response.status_code == 400
    assert "Paste the definition or choose a file." in response.content.decode()


def test_stop_and_resume_new_tickets_in_a_pipeline(world: World, admin: HttpClient) -> None:
    before = events(EventType.PIPELINE_UPDATED)
    def accepts() -> bool:
        return Pipeline.objects.get(code="sales").is_active

    assert admin.post("/settings/pipeline/sales/active/", {"active": "0"}).status_code == 302
    assert not accepts()
    assert admin.post("/settings/pipeline/sales/active/", {"active": "1"}).status_code == 302
    assert accepts()
    assert events(EventType.PIPELINE_UPDATED) == before + 2
    unchanged(lambda: admin.post("/settings/pipeline/sales/active/", {"active": "maybe"}))


# --- lost reasons ----------------------------------------------------------------------------


def test_add_retire_and_reuse_a_lost_reason(world: World, admin: HttpClient) -> None:
    added = events(EventType.LOST_REASON_ADDED)
    response = admin.post("/settings/lost-reasons/new/", {"code": "credit", "title": "No credit",
                                                          "pipeline": world.pipeline.pk})
    assert response.status_code == 302
    reason = LostReason.objects.get(code="credit")
    assert reason.pipeline == world.pipeline
    assert events(EventType.LOST_REASON_ADDED) == added + 1
    updated = events(EventType.LOST_REASON_UPDATED)
    assert admin.post(f"/settings/lost-reasons/{reason.pk}/active/",
                      {"active": "0"}).status_code == 302
    reason.refresh_from_db()
    assert not reason.is_active
    assert admin.post(f"/settings/lost-reasons/{reason.pk}/active/",
                      {"active": "1"}).status_code == 302
    assert events(EventType.LOST_REASON_UPDATED) == updated + 2


def test_a_lost_reason_code_taken_is_refused(world: World, admin: HttpClient) -> None:
    lost_reason_add(actor=world.admin, code="late", title="Too late")
    response = unchanged(lambda: admin.post("/settings/lost-reasons/new/",
                                            {"code": "late", "title": "Late again"}))
    assert response.status_code == 409
    assert "A lost reason with this code exists." in response.content.decode()


# --- lists keep their number of queries ------------------------------------------------------


def _more_rows(world: World, n: int) -> None:
    for i in range(n):
        head = make_user(f"h{i}", "head")
        team = team_create(actor=None, name=f"Team {i}", head=head)
        seller = make_user(f"s{i}", "seller", team)
        absence_add(actor=None, user=seller, starts_at=clock.now(),
                    ends_at=clock.now() + timedelta(days=3), reason=f"r{i}")
        lost_reason_add(actor=world.admin, code=f"r{i}", title=f"Reason {i}")
        pipeline_load(actor=None, text=SALES_YAML.replace("code: sales", f"code: p{i}"))


LISTS = ["/settings/users/", "/settings/users/?state=all&q=a", "/settings/teams/",
         "/settings/absences/?all=1", "/settings/pipelines/", "/settings/pipeline/sales/",
         "/settings/lost-reasons/", "/settings/teams/{team}/"]


def _queries(http: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert http.get(url).status_code == 200
    return len(queries)


def test_lists_keep_a_fixed_number_of_queries(world: World, admin: HttpClient) -> None:
    urls = [u.format(team=world.sales.pk) for u in LISTS]
    absence_add(actor=None, user=world.ann, starts_at=clock.now(),
                ends_at=clock.now() + timedelta(days=1))  # every list shows a row at first
    few = {url: _queries(admin, url) for url in urls}
    _more_rows(world, 6)
    for hours in range(3, 6):
        pipeline_load(actor=None, text=SALES_YAML.replace("sla: 2h", f"sla: {hours}h"))
    many = {url: _queries(admin, url) for url in urls}
    assert many == few
    assert reverse("web:settings") == "/settings/"
