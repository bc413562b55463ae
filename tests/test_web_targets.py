"""The targets pages: /targets/ (the targets in force, set one, import CSV/XLSX all or nothing)
and /targets/<kind>/<ref>/ (one object's history), for directors, admins and heads (their own
teams' sellers only); sellers and operators are refused."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook

from estafeta.accounts.models import User
from estafeta.clients.models import Segment, Territory
from estafeta.clients.services import classification_ensure, client_create
from estafeta.history.models import Event
from estafeta.targets.models import Target
from estafeta.targets.services import target_set

from .factories import PASSWORD, World

pytestmark = pytest.mark.django_db

DEC = {"start": "2026-12-01", "end": "2026-12-31", "currency": "RUB"}


def signed(user: User, csrf: bool = False) -> HttpClient:
    User.objects.filter(pk=user.pk).update(language="en")
    http = HttpClient(enforce_csrf_checks=csrf)
    assert http.login(username=user.username, password=PASSWORD)
    return http


def csv_file(text: str, name: str = "plan.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def counts() -> tuple[int, int]:
    return Target.objects.count(), Event.objects.count()


@pytest.mark.parametrize("who", ["director", "admin", "head"])
def test_directors_admins_and_heads_open_the_page_and_see_the_menu_link(world: World,
                                                                        who: str) -> None:
    target_set(world.director, kind="seller", ref=world.ann.pk, amount="100", **DEC)
    response = signed(getattr(world, who)).get("/targets/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/targets/"' in html and "Set a target" in html and "Import targets" in html
    assert f'href="/targets/seller/{world.ann.pk}/"' in html


@pytest.mark.parametrize("who", ["ann", "operator"])
def test_sellers_and_operators_are_refused(world: World, who: str) -> None:
    http = signed(getattr(world, who))
    before = counts()
    assert http.get("/targets/").status_code == 403
    assert 'href="/targets/"' not in http.get("/notifications/").content.decode()
    assert http.post("/targets/", {"kind": "seller", "ref": world.ann.pk, "amount": "1",
                                   **DEC}).status_code == 403
    assert http.post("/targets/import/", {"file": csv_file("x")}).status_code == 403
    assert http.get(f"/targets/seller/{world.ann.pk}/").status_code == 403
    assert counts() == before


def test_set_and_supersede_then_the_history_keeps_both(world: World) -> None:
    http = signed(world.director)
    body = {"kind": "seller", "ref": world.ann.pk, "amount": "1000", **DEC}
    response = http.post("/targets/", body)
    assert response.status_code == 302
    assert response["Location"] == f"/targets/seller/{world.ann.pk}/"
    assert http.post("/targets/", {**body, "amount": "2500.50"}).status_code == 302
    assert Target.objects.count() == 2
    listed = http.get("/targets/").content.decode()
    assert "2500.50 RUB" in listed and "1000.00" not in listed  # only the target in force
    history = http.get(f"/targets/seller/{world.ann.pk}/").content.decode()
    assert history.index("2500.50") < history.index("1000.00")
    assert "In force" in history and "Superseded" in history


def test_a_head_sets_own_sellers_targets_only(world: World) -> None:
    mine = {"kind": "seller", "ref": world.ann.pk, "amount": "10", **DEC}
    assert signed(world.head).post("/targets/", mine).status_code == 302
    before = counts()
    other = signed(world.other_head)
    response = other.post("/targets/", mine)
    assert response.status_code == 403
    assert "the targets of the sellers of their own teams" in response.content.decode()
    team = other.post("/targets/", {**mine, "kind": "team", "ref": world.other.pk})
    assert team.status_code == 403
    assert counts() == before
    # Oscar sees neither Ann's target in the list nor her history
    assert f"/targets/seller/{world.ann.pk}/" not in other.get("/targets/").content.decode()
    assert other.get(f"/targets/seller/{world.ann.pk}/").status_code == 404
    assert signed(world.head).get(f"/targets/seller/{world.ann.pk}/").status_code == 200


def test_a_head_sees_only_own_sellers_targets(world: World) -> None:
    target_set(world.director, kind="seller", ref=world.olga.pk, amount="7", **DEC)
    target_set(world.director, kind="team", ref=world.sales.pk, amount="8", **DEC)
    target_set(world.director, kind="seller", ref=world.bob.pk, amount="9", **DEC)
    html = signed(world.head).get("/targets/").content.decode()
    assert f"/targets/seller/{world.bob.pk}/" in html
    assert f"/targets/seller/{world.olga.pk}/" not in html
    assert f"/targets/team/{world.sales.pk}/" not in html


def test_refusals_change_nothing(world: World) -> None:
    http = signed(world.director)
    before = counts()
    unknown = http.post("/targets/", {"kind": "seller", "ref": "999999", "amount": "1", **DEC})
    assert unknown.status_code == 400 and "There is no seller" in unknown.content.decode()
    backwards = http.post("/targets/", {"kind": "team", "ref": world.sales.pk, "amount": "1",
                                        **DEC, "start": "2026-12-31", "end": "2026-12-01"})
    assert backwards.status_code == 400
    negative = http.post("/targets/", {"kind": "team", "ref": world.sales.pk, "amount": "-1",
                                       **DEC})
    assert negative.status_code == 400
    assert http.get("/targets/client/999999/").status_code == 404
    assert http.get("/targets/planet/1/").status_code == 404
    assert http.get("/targets/").status_code == 200
    assert counts() == before


def test_import_csv_good(world: World) -> None:
    http = signed(world.head)
    text = (f"kind,object,start,end,amount\nseller,{world.ann.pk},2026-12-01,2026-12-31,100\n"
            f"seller,{world.bob.pk},2026-12-01,2026-12-31,200\n")
    response = http.post("/targets/import/", {"file": csv_file(text)})
    assert response.status_code == 302
    assert sorted(Target.objects.values_list("ref", "amount")) == sorted(
        [(str(world.ann.pk), 100), (str(world.bob.pk), 200)])
    assert "Targets imported: 2." in http.get("/targets/").content.decode()


def test_import_with_bad_rows_writes_nothing_and_names_each(world: World) -> None:
    http = signed(world.head)
    text = (f"kind,object,start,end,amount\nseller,{world.ann.pk},2026-12-01,2026-12-31,100\n"
            f"seller,{world.olga.pk},2026-12-01,2026-12-31,200\n"
            f"planet,1,2026-12-01,2026-12-31,5\n"
            f"seller,{world.bob.pk},2026-12-31,2026-12-01,200\n")
    before = counts()
    response = http.post("/targets/import/", {"file": csv_file(text)})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported" in html
    for line in (3, 4, 5):
        assert f"<tr><td>{line}</td>" in html
    assert "<tr><td>2</td>" not in html
    assert "&#x27;planet&#x27; is not a kind of target" in html
    assert counts() == before
    header = http.post("/targets/import/", {"file": csv_file("kind,object\nteam,1\n")})
    assert header.status_code == 400 and "the header lacks start; end; amount" in (
        header.content.decode())
    wrong = http.post("/targets/import/", {"file": csv_file("a", name="plan.txt")})
    assert wrong.status_code == 400 and "Use a CSV or XLSX file." in wrong.content.decode()
    assert http.post("/targets/import/", {}).status_code == 400
    assert counts() == before


def test_import_xlsx(world: World) -> None:
    classification_ensure(actor=None, model=Territory, code="north", name="North")
    book = Workbook()
    sheet = book.active
    sheet.append(["kind", "object", "start", "end", "amount", "currency"])
    sheet.append(["territory", "north", date(2026, 12, 1), date(2026, 12, 31), 700, "usd"])
    sheet.append(["team", world.sales.pk, "2026-12-01", "2026-12-31", 12.5, None])
    out = io.BytesIO()
    book.save(out)
    upload = SimpleUploadedFile("plan.xlsx", out.getvalue())
    http = signed(world.admin)
    assert http.post("/targets/import/", {"file": upload}).status_code == 302
    assert sorted(Target.objects.values_list("kind", "ref", "currency")) == [
        ("team", str(world.sales.pk), "RUB"), ("territory", "north", "USD")]
    html = http.get("/targets/?q=nort").content.decode()
    assert "North" in html and "/targets/territory/north/" in html
    assert "/targets/team/" not in html


def test_html_in_object_names_is_escaped(world: World) -> None:
    evil = "<script>alert(1)</script>"
    client = client_create(actor=world.operator, name=evil, phones=["+79005550011"])
    seg = classification_ensure(actor=None, model=Segment, code="evil", name=evil)
    target_set(world.director, kind="client", ref=client.pk, amount="1", **DEC)
    target_set(world.director, kind="segment", ref=seg.code, amount="1", **DEC)
    http = signed(world.director)
    for url in ("/targets/", f"/targets/client/{client.pk}/", "/targets/segment/evil/",
                "/targets/?q=script"):
        html = http.get(url).content.decode()
        assert evil not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_search_by_object_name(world: World) -> None:
    target_set(world.director, kind="seller", ref=world.ann.pk, amount="1", **DEC)
    target_set(world.director, kind="team", ref=world.other.pk, amount="2", **DEC)
    http = signed(world.director)
    html = http.get(f"/targets/?q={world.ann.username}").content.decode()
    assert f"/targets/seller/{world.ann.pk}/" in html and "/targets/team/" not in html
    html = http.get(f"/targets/?q={world.other.name}").content.decode()
    assert f"/targets/team/{world.other.pk}/" in html and "/targets/seller/" not in html


def test_a_post_without_csrf_token_is_refused(world: World) -> None:
    http = signed(world.director, csrf=True)
    assert http.get("/targets/").status_code == 200
    before = counts()
    body = {"kind": "seller", "ref": world.ann.pk, "amount": "1", **DEC}
    assert http.post("/targets/", body).status_code == 403
    text = f"kind,object,start,end,amount\nseller,{world.ann.pk},2026-12-01,2026-12-31,1\n"
    assert http.post("/targets/import/", {"file": csv_file(text)}).status_code == 403
    assert counts() == before
    token = http.cookies["csrftoken"].value
    assert http.post("/targets/", {**body, "csrfmiddlewaretoken": token}).status_code == 302


def test_the_list_takes_a_fixed_number_of_queries(world: World) -> None:
    def targets_of(month: int) -> None:
        start, end = f"2026-{month:02d}-01", f"2026-{month:02d}-28"
        for ref in (world.ann.pk, world.bob.pk):
            target_set(world.director, kind="seller", ref=ref, amount="1", start=start, end=end)
        target_set(world.director, kind="team", ref=world.sales.pk, amount="1", start=start,
                   end=end)
        target_set(world.director, kind="client", ref=world.client.pk, amount="1", start=start,
                   end=end)

    def queries(user: User) -> int:
        http = signed(user)
        http.get("/targets/")  # the session and caches warmed
        with CaptureQueriesContext(connection) as run:
            assert http.get("/targets/").status_code == 200
        return len(run.captured_queries)

    targets_of(1)
    few = {who: queries(getattr(world, who)) for who in ("director", "head")}
    for month in range(2, 10):
        targets_of(month)
    assert {who: queries(getattr(world, who)) for who in ("director", "head")} == few
