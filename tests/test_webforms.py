"""The public web form (issue 6): submissions become tickets through intake; spam is refused
with nothing written; one ticket per rendered form; frames only on the form's sites; Russian
and English; and the administrators' settings pages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import escape
from typing import Any

import pytest
from django.test import Client as HttpClient

from estafeta.clients.models import Client, ClientContact
from estafeta.core import clock
from estafeta.domain.codes import Channel, EventType
from estafeta.domain.errors import BadInput, Conflict, Forbidden
from estafeta.history.models import Event
from estafeta.intake.models import IntakeRecord
from estafeta.tickets.models import Ticket
from estafeta.webforms.models import WebForm, WebFormSubmission
from estafeta.webforms.services import (
    origin_normalise,
    webform_create,
    webform_set_active,
    webform_update,
)

from .factories import World

DEALER = "https://dealer.example"
TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def site_form(world: World) -> WebForm:
    return webform_create(actor=world.admin, slug="site", pipeline=world.pipeline,
                          title="Test drive", frame_origins=[DEALER + "/"])


def counts() -> tuple[int, ...]:
    """Everything a submission could write."""
    return (Ticket.objects.count(), Client.objects.count(), ClientContact.objects.count(),
            WebFormSubmission.objects.count(), IntakeRecord.objects.count(),
            Event.objects.count())


class Visitor:
    """A browser on the form: opens it at one moment, sends it at another."""

    def __init__(self, http: HttpClient | None = None, **headers: Any) -> None:
        self.http = http or HttpClient(**headers)
        self.headers: dict[str, Any] = {}

    def open(self, slug: str = "site", query: str = "", at: datetime | None = None) -> Any:
        with clock.frozen(at or clock.now()):
            return self.http.get(f"/f/{slug}/{query}")

    def token(self, slug: str = "site", at: datetime | None = None) -> str:
        response = self.open(slug, at=at)
        assert response.status_code == 200
        found = TOKEN.search(response.content.decode())
        assert found
        return found.group(1)

    def send(self, slug: str = "site", *, token: str | None = None, after: float = 5,
             lang: str = "", **fields: str) -> Any:
        opened = clock.now()
        token = token if token is not None else self.token(slug, at=opened)
        data = {"token": token, "website": "", "lang": lang, **fields}
        with clock.frozen(opened + timedelta(seconds=after)):
            return self.http.post(f"/f/{slug}/", data, **self.headers)


def thanks_page(visitor: Visitor, response: Any) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    page = visitor.http.get(response["Location"])
    assert page.status_code == 200
    return str(page.content.decode())


# --- the way it should go ----------------------------------------------------------------------


def test_a_submission_becomes_a_ticket_with_its_number_on_the_thanks_page(
        world: World, site_form: WebForm) -> None:
    visitor = Visitor()
    response = visitor.send(name="Maria Sidorova", phone="8 (903) 111-22-33",
                            email="Maria@Example.COM", message="I'd like a test drive on Friday")
    page = thanks_page(visitor, response)
    ticket = Ticket.objects.select_related("client", "pipeline").get()
    assert ticket.pipeline == world.pipeline
    assert ticket.channel == Channel.WEB_FORM
    assert ticket.subject == "I'd like a test drive on Friday"
    assert ticket.client.name == "Maria Sidorova"
    assert set(ticket.client.contacts.values_list("value", flat=True)) == {
        "+79031112233", "maria@example.com"}
    assert ticket.number in page
    # Only the number: nothing the client typed is shown to whoever holds the link.
    assert "Maria" not in page and "maria@example.com" not in page and "903" not in page
    submission = WebFormSubmission.objects.get()
    assert submission.ticket == ticket and submission.language == "ru"
    record = IntakeRecord.objects.get()
    assert record.source == "form:site" and record.external_id == submission.nonce
    assert Event.objects.filter(ticket=ticket, type=EventType.INTAKE_RECEIVED).count() == 1
    # The thank-you address holds an unguessable token, not the ticket's number or id.
    assert submission.token in response["Location"] and len(submission.token) >= 40
    assert ticket.number not in response["Location"]


def test_a_known_client_is_found_by_any_spelling_of_the_phone(world: World,
                                                              site_form: WebForm) -> None:
    before = Client.objects.count()
    visitor = Visitor()
    thanks_page(visitor, visitor.send(phone="+7 912 345 67 89", message="Call me"))
    assert Client.objects.count() == before
    assert Ticket.objects.get().client == world.client


def test_the_form_shows_only_the_fields_it_asks_for(world: World, site_form: WebForm) -> None:
    webform_update(actor=world.admin, form=site_form, pipeline=world.pipeline,
                   title="Call back", modes={"name": "required", "phone": "required",
                                             "email": "hidden", "message": "hidden"},
                   frame_origins=[], min_fill_seconds=3)
    html = Visitor().open().content.decode()
    assert 'name="name"' in html and 'name="phone"' in html
    assert 'name="email"' not in html and 'name="message"' not in html
    visitor = Visitor()
    response = visitor.send(phone="+79031112233", email="sneaky@example.com", message="x")
    assert response.status_code == 400  # the name is required
    assert "name" in re.findall(r'class="field invalid">\s*<label for="id_(\w+)"',
                                response.content.decode())
    thanks_page(visitor, visitor.send(name="Oleg", phone="+79031112233",
                                      email="sneaky@example.com"))
    client = Ticket.objects.select_related("client").get().client
    # A field the form does not show is not taken from a crafted request either.
    assert list(client.contacts.values_list("value", flat=True)) == ["+79031112233"]


# --- validation: errors next to the fields, values kept ------------------------------------


def test_a_phone_or_an_email_is_needed_and_the_values_are_kept(site_form: WebForm) -> None:
    before = counts()
    response = Visitor().send(name="Anna <Karenina>", message="Hello")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Anna &lt;Karenina&gt;"' in html
    assert re.search(r">\s*Hello</textarea>", html)
    assert re.search(r'class="field invalid">\s*<label for="id_phone"', html)
    assert counts() == before


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"phone": "12"}, "phone", "This is not a phone number."),
    # PostgreSQL cannot store a NUL character: refused on the form, never a server error.
    ({"email": "a@example.com", "message": "a\x00b"}, "message", "Null characters"),
    ({"email": "not-an-address"}, "email", "This is not an email address."),
    ({"email": "a@example.com", "message": "x" * 4001}, "message", "at most 4000 characters"),
    ({"email": "a@example.com", "name": "n" * 201}, "name", "at most 200 characters"),
])
def test_bad_fields_are_shown_next_to_the_field_and_nothing_is_created(
        site_form: WebForm, fields: dict[str, Any], field: str, message: str) -> None:
    before = counts()
    response = Visitor().send(lang="en", **fields)
    assert response.status_code == 400
    html = response.content.decode()
    block = re.search(rf'<div class="field invalid">\s*<label for="id_{field}".*?</div>', html,
                      re.S)
    assert block and message in block.group(0)
    assert counts() == before


# --- spam ----------------------------------------------------------------------------------


def test_a_filled_honeypot_is_refused_and_nothing_is_created(site_form: WebForm) -> None:
    before = counts()
    visitor = Visitor()
    response = visitor.send(lang="en", email="bot@example.com", website="http://spam.example")
    assert response.status_code == 400
    assert "Your request could not be accepted." in response.content.decode()
    assert counts() == before


def test_a_form_sent_too_fast_is_refused_and_can_be_sent_again(site_form: WebForm) -> None:
    before = counts()
    visitor = Visitor()
    opened = clock.now()
    token = visitor.token(at=opened)
    response = visitor.send(token=token, after=1, lang="en", email="quick@example.com",
                            message="Fast")
    assert response.status_code == 400
    html = response.content.decode()
    assert "That was very fast" in html
    assert 'value="quick@example.com"' in html and TOKEN.search(html).group(1) == token  # type: ignore[union-attr]
    assert counts() == before
    with clock.frozen(opened):
        thanks_page(visitor, visitor.send(token=token, after=4, email="quick@example.com"))
    assert Ticket.objects.count() == before[0] + 1


def test_the_minimum_fill_time_is_set_per_form(world: World, site_form: WebForm) -> None:
    webform_update(actor=world.admin, form=site_form, pipeline=world.pipeline, title="Test drive",
                   modes={}, frame_origins=[], min_fill_seconds=10)
    assert Visitor().send(after=6, email="a@example.com").status_code == 400
    assert Visitor().send(after=11, email="a@example.com").status_code == 302


def test_a_forged_or_foreign_token_is_refused(world: World, site_form: WebForm) -> None:
    other = webform_create(actor=world.admin, slug="other", pipeline=world.pipeline,
                           title="Other")
    before = counts()
    foreign = Visitor().token("other")
    for token in ("", "forged", foreign, foreign[:-2] + "xx"):
        response = Visitor().send(token=token, lang="en", email="a@example.com")
        assert response.status_code == 400, token
        assert "The form was open for too long" in response.content.decode()
    assert counts() == before
    assert other.pk


def test_an_old_form_is_refused_with_a_fresh_token(site_form: WebForm) -> None:
    visitor = Visitor()
    opened = clock.now()
    token = visitor.token(at=opened)
    before = counts()
    response = visitor.send(token=token, after=2 * 24 * 3600, lang="en", email="a@example.com")
    assert response.status_code == 400
    fresh = TOKEN.search(response.content.decode())
    assert fresh and fresh.group(1) != token
    assert counts() == before


def test_the_rate_limit_per_address_refuses_with_a_clear_message(
        settings: Any, site_form: WebForm) -> None:
    settings.ESTAFETA_WEBFORM_PER_IP_HOUR = 2
    for n in range(2):
        assert Visitor().send(email=f"c{n}@example.com").status_code == 302
    before = counts()
    response = Visitor().send(lang="en", email="c9@example.com", message="Third")
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert counts() == before
    # Another address is not affected, and an hour later this one may send again.
    assert Visitor(REMOTE_ADDR="10.0.0.9").send(email="c8@example.com").status_code == 302
    with clock.frozen(clock.now() + timedelta(hours=1, minutes=1)):
        assert Visitor().send(email="c9@example.com").status_code == 302


def test_the_rate_limit_per_email_and_phone_counts_across_addresses(
        settings: Any, site_form: WebForm) -> None:
    settings.ESTAFETA_WEBFORM_PER_CONTACT_HOUR = 1
    assert Visitor(REMOTE_ADDR="10.0.0.1").send(
        email="same@example.com", phone="+79031112233").status_code == 302
    before = counts()
    assert Visitor(REMOTE_ADDR="10.0.0.2").send(email="SAME@example.com").status_code == 429
    assert Visitor(REMOTE_ADDR="10.0.0.3").send(phone="8 903 111 22 33").status_code == 429
    assert counts() == before
    assert Visitor(REMOTE_ADDR="10.0.0.4").send(email="other@example.com").status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_counted(settings: Any,
                                                         site_form: WebForm) -> None:
    settings.ESTAFETA_WEBFORM_PER_IP_HOUR = 1
    settings.ESTAFETA_WEBFORM_BEHIND_PROXY = True
    one = Visitor(HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.1")
    assert one.send(email="a@example.com").status_code == 302
    assert one.send(email="b@example.com").status_code == 429
    # The proxy is the same; the client differs.
    assert Visitor(HTTP_X_FORWARDED_FOR="10.0.0.2").send(
        email="c@example.com").status_code == 302


# --- idempotency ---------------------------------------------------------------------------


def test_a_double_submit_makes_one_ticket(site_form: WebForm) -> None:
    visitor = Visitor()
    token = visitor.token()
    first = visitor.send(token=token, email="twice@example.com", message="Hello")
    second = visitor.send(token=token, after=6, email="twice@example.com", message="Hello")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Ticket.objects.count() == 1
    assert WebFormSubmission.objects.count() == IntakeRecord.objects.count() == 1


def test_a_second_request_of_the_same_client_joins_the_open_ticket(site_form: WebForm) -> None:
    a, b = Visitor(), Visitor()
    page_a = thanks_page(a, a.send(email="again@example.com", message="First"))
    page_b = thanks_page(b, b.send(email="again@example.com", message="Second"))
    ticket = Ticket.objects.get()
    assert ticket.number in page_a and ticket.number in page_b
    assert WebFormSubmission.objects.count() == 2


# --- who may see what ----------------------------------------------------------------------


def test_an_inactive_or_unknown_form_answers_404(world: World, site_form: WebForm) -> None:
    visitor = Visitor()
    token = visitor.token()
    webform_set_active(actor=world.admin, form=site_form, active=False)
    before = counts()
    assert visitor.open().status_code == 404
    assert visitor.send(token=token, email="a@example.com").status_code == 404
    assert Visitor().open("nope").status_code == 404
    assert counts() == before


def test_a_thanks_page_is_found_only_by_its_token(world: World, site_form: WebForm) -> None:
    visitor = Visitor()
    location = visitor.send(email="a@example.com")["Location"]
    token = WebFormSubmission.objects.get().token
    other = webform_create(actor=world.admin, slug="other", pipeline=world.pipeline,
                           title="Other")
    http = HttpClient()
    assert http.get(location).status_code == 200
    assert http.get(f"/f/site/thanks/{token[:-1]}x/").status_code == 404
    assert http.get(f"/f/{other.slug}/thanks/{token}/").status_code == 404
    ticket = Ticket.objects.get()
    assert http.get(f"/f/site/thanks/{ticket.pk}/").status_code == 404
    assert http.post(location).status_code == 405


# --- languages -----------------------------------------------------------------------------


def test_the_form_is_russian_by_default_and_english_when_asked(site_form: WebForm) -> None:
    russian = Visitor().open()
    assert russian["Content-Language"] == "ru"
    assert '<html lang="ru">' in russian.content.decode()
    assert 'href="?lang=en"' in russian.content.decode()
    english = Visitor().open(query="?lang=en")
    assert english["Content-Language"] == "en"
    assert "Your name" in english.content.decode()
    browser = Visitor(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").open()
    assert browser["Content-Language"] == "en"
    assert "Accept-Language" in browser["Vary"]
    # An explicit choice wins over the browser's.
    assert Visitor(HTTP_ACCEPT_LANGUAGE="en").open(query="?lang=ru")["Content-Language"] == "ru"


def test_errors_and_the_thanks_page_come_in_the_visitors_language(site_form: WebForm) -> None:
    russian = Visitor().send(phone="12")
    assert russian.status_code == 400
    assert "Это не номер телефона." in russian.content.decode()
    english = Visitor().send(phone="12", lang="en")
    assert "This is not a phone number." in english.content.decode()
    visitor = Visitor()
    response = visitor.send(email="a@example.com", lang="en")
    assert response["Location"].endswith("?lang=en")
    page = visitor.http.get(response["Location"])
    assert page["Content-Language"] == "en"
    assert "Thank you, your request is received" in page.content.decode()


# --- frames, CSRF, escaping ------------------------------------------------------------------


def test_only_the_forms_sites_may_frame_it_and_the_rest_stays_deny(
        world: World, site_form: WebForm) -> None:
    response = Visitor().open()
    assert response["Content-Security-Policy"] == f"frame-ancestors {DEALER}"
    assert "X-Frame-Options" not in response
    visitor = Visitor()
    thanks = visitor.http.get(visitor.send(email="a@example.com")["Location"])
    assert thanks["Content-Security-Policy"] == f"frame-ancestors {DEALER}"
    assert "X-Frame-Options" not in thanks
    webform_create(actor=world.admin, slug="closed", pipeline=world.pipeline, title="Closed")
    closed = Visitor().open("closed")
    assert closed["X-Frame-Options"] == "DENY"
    assert closed["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert HttpClient().get("/login/")["X-Frame-Options"] == "DENY"
    assert Visitor().open("nope")["X-Frame-Options"] == "DENY"


def test_the_form_works_inside_a_frame_without_the_csrf_cookie(site_form: WebForm) -> None:
    # A browser in a frame on another site sends no SameSite=Lax cookie with the POST.
    visitor = Visitor(HttpClient(enforce_csrf_checks=True))
    visitor.headers = {"HTTP_ORIGIN": "http://testserver"}
    opened = visitor.open()
    assert "csrftoken" not in opened.cookies
    token = TOKEN.search(opened.content.decode())
    assert token
    visitor.http.cookies.clear()
    response = visitor.send(token=token.group(1), email="framed@example.com")
    assert response.status_code == 302
    assert Ticket.objects.count() == 1


def test_a_post_from_a_site_that_is_not_the_forms_is_refused(site_form: WebForm) -> None:
    before = counts()
    evil = Visitor()
    evil.headers = {"HTTP_ORIGIN": "https://evil.example"}
    response = evil.send(email="a@example.com", lang="en")
    assert response.status_code == 403
    assert "only be sent from the site" in response.content.decode()
    assert counts() == before
    dealer = Visitor()
    dealer.headers = {"HTTP_ORIGIN": DEALER}
    assert dealer.send(email="a@example.com").status_code == 302


def test_what_the_client_typed_is_escaped_on_the_ticket_page(world: World,
                                                             site_form: WebForm) -> None:
    visitor = Visitor()
    thanks_page(visitor, visitor.send(
        name='<script>alert("name")</script>', email="x@example.com",
        message='<img src=x onerror=alert("msg")>\nsecond line'))
    ticket = Ticket.objects.select_related("owner").get()
    http = HttpClient()
    http.force_login(ticket.owner)
    html = http.get(f"/tickets/{ticket.number}/").content.decode()
    assert '<script>alert("name")' not in html and "<img src=x" not in html
    assert "onerror=alert" not in html.replace("&lt;img src=x onerror=alert", "")
    # The client's name and the request (the ticket's description) are there, as text.
    assert escape('<script>alert("name")</script>') in html
    assert escape('<img src=x onerror=alert("msg")>') in html


# --- services ------------------------------------------------------------------------------


def test_a_form_must_ask_for_a_phone_or_an_email(world: World) -> None:
    with pytest.raises(BadInput) as caught:
        webform_create(actor=world.admin, slug="mute", pipeline=world.pipeline, title="Mute",
                       modes={"phone": "hidden", "email": "hidden"})
    assert caught.value.code == "webform_no_contact"
    assert not WebForm.objects.exists()


def test_configuration_is_for_admins_with_history(world: World, site_form: WebForm) -> None:
    with pytest.raises(Forbidden):
        webform_create(actor=world.head, slug="x1", pipeline=world.pipeline, title="X")
    with pytest.raises(Conflict):
        webform_create(actor=world.admin, slug="site", pipeline=world.pipeline, title="X")
    events = list(Event.objects.filter(stream=site_form.stream).values_list("type", flat=True))
    assert events == [EventType.WEBFORM_CREATED]
    webform_set_active(actor=world.admin, form=site_form, active=False)
    last = Event.objects.filter(stream=site_form.stream).order_by("-seq").first()
    assert last is not None and last.payload == {"active": False}


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://Dealer.example/", "https://dealer.example"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("https://a.example/page", None), ("javascript:alert(1)", None), ("*.example.com", None),
    ("https://user@a.example", None), ("https://*.a.example", None), ("ftp://a.example", None),
])
def test_frame_origins_are_plain_site_addresses(raw: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(BadInput):
            origin_normalise(raw)
    else:
        assert origin_normalise(raw) == expected


# --- settings pages ----------------------------------------------------------------------------


@pytest.fixture
def admin_http(world: World) -> HttpClient:
    from estafeta.accounts.services import user_update

    user_update(actor=None, user=world.admin, language="en")
    http = HttpClient()
    http.force_login(world.admin)
    return http


def test_an_admin_creates_edits_and_switches_off_a_form(world: World,
                                                        admin_http: HttpClient) -> None:
    assert admin_http.get("/settings/webforms/").status_code == 200
    response = admin_http.post("/settings/webforms/new/", {
        "slug": "quote", "title": 'Get a "quote" <now>', "pipeline": world.pipeline.pk,
        "name_field": "optional", "phone_field": "required", "email_field": "optional",
        "message_field": "optional", "frame_origins": "https://dealer.example\n",
        "min_fill_seconds": "3"})
    assert response.status_code == 302
    webform = WebForm.objects.get(slug="quote")
    assert webform.frame_origins == [DEALER] and webform.phone_field == "required"
    page = admin_http.get(response["Location"]).content.decode()
    # The snippets are shown as text to copy: escaped once for the page, once in the snippet.
    assert "&lt;iframe src=&quot;http://testserver/f/quote/&quot;" in page
    assert "Get a &amp;quot;quote&amp;quot; &amp;lt;now&amp;gt;" in page
    assert "<iframe" not in page
    response = admin_http.post(f"/settings/webforms/{webform.pk}/", {
        "title": "Quote", "pipeline": world.pipeline.pk, "name_field": "hidden",
        "phone_field": "optional", "email_field": "optional", "message_field": "required",
        "frame_origins": "", "min_fill_seconds": "5"})
    assert response.status_code == 302
    webform.refresh_from_db()
    assert (webform.title, webform.name_field, webform.frame_origins,
            webform.min_fill_seconds) == ("Quote", "hidden", [], 5)
    response = admin_http.post(f"/settings/webforms/{webform.pk}/active/", {"active": "0"})
    assert response.status_code == 302
    assert Visitor().open("quote").status_code == 404
    types = list(Event.objects.filter(stream=webform.stream).order_by("seq")
                 .values_list("type", flat=True))
    assert types == [EventType.WEBFORM_CREATED, EventType.WEBFORM_UPDATED,
                     EventType.WEBFORM_UPDATED]


def test_a_bad_site_address_is_shown_on_the_field_and_nothing_changes(
        world: World, admin_http: HttpClient, site_form: WebForm) -> None:
    before = list(Event.objects.values_list("pk", flat=True))
    response = admin_http.post(f"/settings/webforms/{site_form.pk}/", {
        "title": "Test drive", "pipeline": world.pipeline.pk, "name_field": "optional",
        "phone_field": "optional", "email_field": "optional", "message_field": "optional",
        "frame_origins": "https://ok.example\nhttps://bad.example/path", "min_fill_seconds": "3"})
    assert response.status_code == 400
    assert "is not a site address" in response.content.decode()
    site_form.refresh_from_db()
    assert site_form.frame_origins == [DEALER]
    assert list(Event.objects.values_list("pk", flat=True)) == before
    response = admin_http.post("/settings/webforms/new/", {
        "slug": "site", "title": "Again", "pipeline": world.pipeline.pk,
        "name_field": "optional", "phone_field": "optional", "email_field": "optional",
        "message_field": "optional", "frame_origins": "", "min_fill_seconds": "3"})
    assert response.status_code == 409
    assert "A web form with this address exists." in response.content.decode()


def test_the_settings_pages_are_for_admins_only(world: World, site_form: WebForm) -> None:
    http = HttpClient()
    http.force_login(world.head)
    for path in ("/settings/webforms/", "/settings/webforms/new/",
                 f"/settings/webforms/{site_form.pk}/"):
        assert http.get(path).status_code == 403
    assert http.post(f"/settings/webforms/{site_form.pk}/active/",
                     {"active": "0"}).status_code == 403
    assert WebForm.objects.get().is_active


def test_settings_posts_keep_their_csrf_check(world: World, site_form: WebForm) -> None:
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(world.admin)
    assert http.post(f"/settings/webforms/{site_form.pk}/active/",
                     {"active": "0"}).status_code == 403
    assert WebForm.objects.get().is_active
