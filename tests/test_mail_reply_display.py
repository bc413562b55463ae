"""Showing a ticket's email safely: HTML bodies only through mailin.sanitize (no script, no
handlers, no javascript: links, no CSS tricks, no SVG, no remote images unless asked), and
attachments only as downloads with safe names, ``nosniff``, an allow-listed type and the size
limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client as HttpClient

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.mailin.models import MailAttachment, Mailbox, MailMessage
from estafeta.mailin.sanitize import sanitize_html
from estafeta.tickets.models import StoredFile, Ticket
from estafeta.web.pages.mail import ascii_fallback, content_disposition

from .factories import World

pytestmark = pytest.mark.django_db

# Each payload, and what must not survive it anywhere in the output.
XSS: list[tuple[str, tuple[str, ...]]] = [
    ("<script>alert('xss')</script>", ("<script", "alert(")),
    ("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>", ("<script", "evil.example")),
    ("<img src=x onerror=alert(1)>", ("onerror", "alert(", "<img")),
    ('<a href="javascript:alert(1)">click</a>', ("javascript:", "alert(")),
    ('<a href="JaVaScRiPt:alert(1)">click</a>', ("javascript:", "alert(")),
    ('<a href="&#106;avascript:alert(1)">click</a>', ("javascript", "alert(")),
    ('<a href="java\tscript:alert(1)">click</a>', ("script:", "alert(")),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', ("data:",)),
    ('<a href="vbscript:msgbox(1)">x</a>', ("vbscript:",)),
    ('<div style="width: expression(alert(1))">x</div>', ("expression", "alert(")),
    ('<div style="background:url(https://evil.example/t.png)">x</div>', ("url(", "evil.example")),
    ('<div style="position:fixed;top:0;left:0">overlay</div>', ("position", "fixed")),
    ("<style>body{background:url(https://evil.example/t)}</style>", ("<style", "evil.example")),
    ('<link rel="stylesheet" href="https://evil.example/s.css">', ("<link", "evil.example")),
    ("<svg onload=alert(1)><circle r=1 /></svg>", ("<svg", "onload", "alert(")),
    ('<svg><script>alert(1)</script><a xlink:href="javascript:alert(1)">x</a></svg>',
     ("<svg", "<script", "javascript:")),
    ('<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
     ("onerror", "alert(", "<img", "<math")),
    ('<iframe src="https://evil.example/"></iframe>', ("<iframe", "evil.example")),
    ('<object data="https://evil.example/x.swf"></object>', ("<object", "evil.example")),
    ('<embed src="https://evil.example/x.swf">', ("<embed", "evil.example")),
    ('<form action="https://evil.example/"><input name=p type=password></form>',
     ("<form", "<input", "evil.example")),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example/">',
     ("<meta", "refresh", "evil.example")),
    ('<base href="https://evil.example/">', ("<base", "evil.example")),
    ('<img src="https://tracker.example/open.gif?u=1">', ("tracker.example", "<img")),
    ('<img src="http://tracker.example/open.gif">', ("tracker.example", "<img")),
    ('<table background="https://tracker.example/bg.png"><tr><td>x</td></tr></table>',
     ("tracker.example",)),
    ('<p id="messages" class="button" name="csrfmiddlewaretoken">x</p>',
     ('id="messages"', "class=", "csrfmiddlewaretoken")),
    ('<a href="/tickets/S-2026-000001/void/">relative</a>', ('href="/tickets',)),
    ("<!--[if IE]><script>alert(1)</script><![endif]-->", ("<script", "alert(", "<!--")),
    ('<p onmouseover="alert(1)" onclick=alert(1)>x</p>', ("onmouseover", "onclick", "alert(")),
    ("<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
     ("onerror=alert", "<img")),
]


@pytest.mark.parametrize(("payload", "banned"), XSS)
def test_sanitised_html_keeps_none_of_the_attack(payload: str, banned: tuple[str, ...]) -> None:
    out = str(sanitize_html(f"<p>Hello</p>{payload}<p>Bye</p>").html).lower()
    for thing in banned:
        assert thing.lower() not in out, out
    assert "hello" in out  # (an unclosed <style> rightly swallows what follows it)


def test_links_stay_and_open_safely() -> None:
    out = str(sanitize_html('<a href="https://dealer.example/car?id=1&amp;x=2">car</a>').html)
    assert 'href="https://dealer.example/car?id=1&amp;x=2"' in out
    assert 'rel="noopener noreferrer nofollow"' in out and 'target="_blank"' in out


def test_formatting_survives_and_harmless_styles_stay() -> None:
    out = str(sanitize_html('<p style="color: red; font-weight: bold">A <b>b</b> <i>c</i></p>'
                            "<table><tr><td>1</td></tr></table><ul><li>x</li></ul>").html)
    assert 'style="color:red;font-weight:bold"' in out
    assert "<b>b</b>" in out and "<td>1</td>" in out and "<li>x</li>" in out


def test_remote_images_are_counted_held_back_and_shown_only_when_asked() -> None:
    html = ('<img src="https://cdn.example/a.png" alt="logo"><img src="https://cdn.example/b.png">'
            '<img src="cid:part1"><img src="http://cdn.example/c.png">')
    held = sanitize_html(html)
    assert "<img" not in str(held.html) and held.blocked_images == 2  # the https ones
    shown = str(sanitize_html(html, load_images=True).html)
    assert 'src="https://cdn.example/a.png"' in shown
    assert 'referrerpolicy="no-referrer"' in shown
    assert "cid:" not in shown and "http://cdn.example" not in shown


# --- on the pages ----------------------------------------------------------------------------


@pytest.fixture
def mailbox(world: World) -> Mailbox:
    return Mailbox.objects.create(name="Sales", address="sales@dealer.example", kind="maildir",
                                  path="/nonexistent", pipeline=world.pipeline)


def _message(ticket: Ticket, mailbox: Mailbox, html: str, n: int = 1) -> MailMessage:
    return MailMessage.objects.create(
        mailbox=mailbox, ticket=ticket, direction="in", message_id=f"<m{n}@client.example>",
        from_address="ivan@example.com", to_addresses="sales@dealer.example",
        subject="<script>window.pwned = 1</script>", text="plain version", html=html,
        received_at=clock.now(), created_at=clock.now())


def _http(user: User) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def test_no_attack_reaches_the_ticket_page_or_the_message_page(
        world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    messages = [_message(ticket, mailbox, f"<p>Body {i}</p>{payload}", i)
                for i, (payload, _banned) in enumerate(XSS)]
    http = _http(world.ann)
    pages = [http.get(f"/tickets/{ticket.number}/"),
             *(http.get(f"/tickets/{ticket.number}/mail/{m.pk}/") for m in messages),
             http.get(f"/tickets/{ticket.number}/mail/")]
    # asked for, https images are shown (and only they): everything else stays out
    shown = [http.get(f"/tickets/{ticket.number}/mail/{m.pk}/?images=1") for m in messages]
    for page in pages + shown:
        assert page.status_code == 200
        html = page.content.decode().lower()
        for needle in ("alert(", "evil.example", "javascript:", "onerror", "expression(",
                       "<svg", "<iframe", "vbscript", "http://tracker.example"):
            assert needle not in html, (page.request["PATH_INFO"], needle)
        if page not in shown:
            assert "tracker.example" not in html
        assert "<script>window.pwned" not in html  # the subject is text, escaped
    assert "Body 0" in pages[0].content.decode()


def test_the_message_page_fences_images_and_offers_to_load_them(
        world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    m = _message(ticket, mailbox, '<p>Hi</p><img src="https://cdn.example/logo.png">')
    http = _http(world.ann)
    page = http.get(f"/tickets/{ticket.number}/mail/{m.pk}/")
    html = page.content.decode()
    assert "cdn.example" not in html and 'href="?images=1"' in html
    assert "img-src 'self'" in page["Content-Security-Policy"]
    assert "https:" not in page["Content-Security-Policy"]
    assert page["Referrer-Policy"] == "no-referrer"
    page = http.get(f"/tickets/{ticket.number}/mail/{m.pk}/?images=1")
    assert 'src="https://cdn.example/logo.png"' in page.content.decode()
    assert "img-src 'self' https:" in page["Content-Security-Policy"]


def test_a_message_of_another_ticket_is_not_found_through_this_one(
        world: World, mailbox: Mailbox) -> None:
    mine = world.ticket(owner=world.ann)
    other = world.ticket(owner=world.bob)
    m = _message(other, mailbox, "<p>Bob's</p>")
    assert _http(world.ann).get(f"/tickets/{mine.number}/mail/{m.pk}/").status_code == 404


# --- attachments -------------------------------------------------------------------------------


def _attachment(ticket: Ticket, mailbox: Mailbox, name: str, content_type: str,
                data: bytes = b"data", size: int | None = None) -> MailAttachment:
    message = MailMessage.objects.filter(ticket=ticket).first() or _message(ticket, mailbox, "")
    path = default_storage.save("mail/test/blob", ContentFile(data))
    stored = StoredFile.objects.create(sha256="0" * 64, size=len(data), name="blob",
                                       content_type=content_type, path=path,
                                       uploaded_at=clock.now())
    return MailAttachment.objects.create(message=message, file=stored, name=name,
                                         content_type=content_type,
                                         size=len(data) if size is None else size)


def _download(http: HttpClient, ticket: Ticket, a: MailAttachment) -> Any:
    return http.get(f"/tickets/{ticket.number}/mail/attachments/{a.pk}/")


@pytest.mark.parametrize(("name", "ascii_name", "utf8_name"), [
    ("../../etc/passwd", "passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini", "win.ini"),
    ("evil\r\nSet-Cookie: session=x.pdf", "evil__Set-Cookie_ session_x.pdf",
     "evil__Set-Cookie_ session=x.pdf"),
    ('quote".pdf', "quote.pdf", "quote_.pdf"),
    ("Счёт №1.pdf", "No1.pdf", "Счёт №1.pdf"),
    ("Договор.docx", "attachment.docx", "Договор.docx"),
    ("résumé.txt", "resume.txt", "résumé.txt"),
    ("", "file", "file"),
])
def test_attachment_names_are_served_safely(world: World, mailbox: Mailbox, name: str,
                                            ascii_name: str, utf8_name: str) -> None:
    ticket = world.ticket(owner=world.ann)
    a = _attachment(ticket, mailbox, name, "application/pdf")
    answer = _download(_http(world.ann), ticket, a)
    assert answer.status_code == 200
    header = answer["Content-Disposition"]
    assert "\r" not in header and "\n" not in header
    assert header.startswith("attachment; ")
    assert f'filename="{ascii_name}"' in header
    star = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(star) == utf8_name
    assert "/" not in unquote(star) and "\\" not in unquote(star)
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert b"".join(answer.streaming_content) == b"data"


@pytest.mark.parametrize(("declared", "served"), [
    ("application/pdf", "application/pdf"),
    ("image/png", "image/png"),
    ("text/html", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("application/xhtml+xml", "application/octet-stream"),
    ("application/javascript", "application/octet-stream"),
    ("text/plain; charset=utf-8", "text/plain"),
    ("", "application/octet-stream"),
])
def test_attachment_types_come_from_an_allow_list(world: World, mailbox: Mailbox,
                                                  declared: str, served: str) -> None:
    ticket = world.ticket(owner=world.ann)
    a = _attachment(ticket, mailbox, "x.bin", declared, b"<script>alert(1)</script>")
    answer = _download(_http(world.ann), ticket, a)
    assert answer["Content-Type"] == served
    assert answer["Content-Disposition"].startswith("attachment;")
    assert answer["X-Content-Type-Options"] == "nosniff"


def test_an_attachment_over_the_limit_is_not_served(world: World, mailbox: Mailbox,
                                                    settings: Any) -> None:
    settings.ESTAFETA_MAIL_MAX_ATTACHMENT = 10
    ticket = world.ticket(owner=world.ann)
    a = _attachment(ticket, mailbox, "big.pdf", "application/pdf", b"x" * 11)
    assert _download(_http(world.ann), ticket, a).status_code == 413
    # a size that lies about the stored file is caught by the stored size too
    b = _attachment(ticket, mailbox, "lie.pdf", "application/pdf", b"x" * 11, size=1)
    assert _download(_http(world.ann), ticket, b).status_code == 413


def test_attachments_only_for_those_who_see_the_ticket(world: World, mailbox: Mailbox) -> None:
    ticket = world.ticket(owner=world.ann)
    other = world.ticket(owner=world.bob)
    a = _attachment(ticket, mailbox, "a.pdf", "application/pdf")
    assert _download(_http(world.bob), ticket, a).status_code == 404
    assert _download(_http(world.admin), ticket, a).status_code == 403  # role gate
    # the attachment id through a ticket it does not belong to
    answer = _http(world.bob).get(f"/tickets/{other.number}/mail/attachments/{a.pk}/")
    assert answer.status_code == 404
    assert _download(_http(world.head), ticket, a).status_code == 200
    assert _download(_http(world.operator), ticket, a).status_code == 200  # registered it


def test_content_disposition_pairs_an_ascii_name_with_the_utf8_one() -> None:
    assert content_disposition("Прайс 2026.xlsx") == (
        "attachment; filename=\"2026.xlsx\"; filename*=UTF-8''"
        "%D0%9F%D1%80%D0%B0%D0%B9%D1%81%202026.xlsx")
    assert ascii_fallback("Прайс.xlsx") == "attachment.xlsx"


def test_the_thread_costs_the_same_queries_for_one_email_or_many(
        world: World, mailbox: Mailbox) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ticket = world.ticket(owner=world.ann)
    _attachment(ticket, mailbox, "a.pdf", "application/pdf")
    http = _http(world.ann)
    http.get(f"/tickets/{ticket.number}/")  # warm the caches (pipeline version, session)
    with CaptureQueriesContext(connection) as one:
        assert http.get(f"/tickets/{ticket.number}/").status_code == 200
    for n in range(2, 7):
        m = _message(ticket, mailbox, f"<p>message {n}</p>", n)
        path = default_storage.save("mail/test/blob", ContentFile(b"x"))
        stored = StoredFile.objects.create(sha256="1" * 64, size=1, name="b", path=path,
                                           content_type="text/plain", uploaded_at=clock.now())
        MailAttachment.objects.create(message=m, file=stored, name=f"{n}.txt",
                                      content_type="text/plain", size=1)
    with CaptureQueriesContext(connection) as many:
        page = http.get(f"/tickets/{ticket.number}/")
    assert page.status_code == 200 and "message 6" in page.content.decode()
    assert len(many) == len(one)
