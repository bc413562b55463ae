"""What people do with Estafeta, clicked through in a real browser (Russian UI, ru-RU locale).

The live server runs on the real clock (``clock.frozen`` holds only in the test's thread), so
data that must be old by the time a person looks at it is made under ``clock.frozen`` at a
moment before now.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from estafeta.core import clock
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tickets.models import Activity, Ticket
from estafeta.tickets.services import ticket_create
from tests.factories import PASSWORD, PIPELINES, World

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@contextmanager
def person(browser: Any, live_server: Any, username: str, password: str) -> Iterator[Any]:
    """Another person at another computer: a fresh browser context, signed in."""
    context = browser.new_context(base_url=live_server.url, locale="ru-RU",
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        sign_in(tab, username, password)
        yield tab
    finally:
        context.close()


def overdue_ticket(world: World, *, pipeline: Any = None) -> Ticket:
    """Ann's ticket registered two days ago: its first task ("Call the client") is overdue."""
    with clock.frozen(timezone.now() - timedelta(days=2)):
        return ticket_create(actor=world.operator, pipeline=pipeline or world.pipeline,
                             client=world.client, channel="phone",
                             subject="A car for the family", owner=world.ann)


def handover_pipeline() -> Any:
    """``sales.yaml`` with its second stage run by Bob: closing stage one hands the work on."""
    text = (PIPELINES / "sales.yaml").read_text()
    text = text.replace("code: sales\nname: Sales", "code: handover\nname: Handover", 1)
    offer, rest = text.split("  - code: offer\n", 1)
    rest = rest.replace("executor: {rule: keep_owner}", "executor: {rule: user, user: bob}", 1)
    return pipeline_load(actor=None, text=f"{offer}  - code: offer\n{rest}",
                         source="handover.yaml").pipeline


def checklist_item(page: Any, title: str) -> Any:
    return page.locator("#checklist li").filter(has_text=title)


def messages(page: Any) -> Any:
    return page.get_by_role("status")


# --- 1. a seller's day: overdue task, checklist with evidence, close the stage -----------------


def test_seller_fills_the_checklist_closes_the_stage_and_the_next_executor_gets_the_task(
        page: Any, browser: Any, live_server: Any, world: World) -> None:
    ticket = overdue_ticket(world, pipeline=handover_pipeline())
    sign_in(page, "ann", PASSWORD)

    # My tasks: the ticket's first task is in the overdue group.
    menu = page.get_by_role("navigation", name="Главное меню")
    menu.get_by_role("link", name="Мои задачи").click()
    overdue = page.locator("section").filter(has=page.get_by_role("heading", name="Просрочено"))
    expect(overdue).to_contain_text("Call the client")
    overdue.get_by_role("link", name=ticket.number).click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.number}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    expect(page.locator("[aria-current=step]")).to_have_text("New request")

    # A wrong evidence value is refused with a message and nothing is recorded.
    budget = checklist_item(page, "Budget")
    budget.get_by_label("Сумма").fill("очень много")
    budget.get_by_role("button", name="Готово").click()
    budget = checklist_item(page, "Budget")
    expect(budget.get_by_role("alert")).to_contain_text("Введите сумму")
    assert not ticket.visits.get(closed_at__isnull=True).entries.exists()

    # The right value, and the item with no evidence.
    budget.get_by_label("Сумма").fill("1 250 000")
    budget.get_by_role("button", name="Готово").click()
    expect(messages(page)).to_contain_text("Пункт чек-листа «Budget» выполнен.")
    expect(checklist_item(page, "Budget")).to_contain_text("1250000")
    checklist_item(page, "Client contacted").get_by_role("button", name="Готово").click()
    expect(messages(page)).to_contain_text("«Client contacted» выполнен")

    # Closing with a required item missing: refused, and the message names the item.
    page.get_by_role("button", name="Закрыть этап").click()
    expect(messages(page)).to_contain_text(
        "Этап пока нельзя закрыть. Не выполнены обязательные пункты: What the client needs.")
    expect(page.locator("[aria-current=step]")).to_have_text("New request")

    # The last required item: empty text is refused, then the stage closes and moves on.
    need = checklist_item(page, "What the client needs")
    need.get_by_role("button", name="Готово").click()
    need = checklist_item(page, "What the client needs")
    expect(need.get_by_role("alert")).to_contain_text("Обязательное поле")
    need.get_by_label("Текст").fill("A family car, seven seats")
    need.get_by_role("button", name="Готово").click()
    expect(checklist_item(page, "What the client needs")).to_contain_text(
        "A family car, seven seats")
    page.get_by_role("button", name="Закрыть этап").click()
    expect(messages(page)).to_contain_text("Этап закрыт.")
    expect(page.locator("[aria-current=step]")).to_have_text("Offer")
    expect(page.get_by_role("heading", name=re.compile("Offer"))).to_be_visible()
    expect(page.locator("#tasks")).to_contain_text("Send the quote")

    # Bob, who runs the next stage, finds the next task in his My tasks.
    with person(browser, live_server, "bob", PASSWORD) as bob:
        bob.goto("/tasks/")
        row = bob.get_by_role("row").filter(has_text=ticket.number)
        expect(row).to_contain_text("Send the quote")
        expect(row).to_contain_text("Offer")
    assert Task.objects.get(ticket=ticket, title="Send the quote").assignee == world.bob


# --- 2. a head reassigns a ticket of his team ---------------------------------------------------


def test_head_reassigns_a_ticket_and_the_new_owner_sees_it(
        page: Any, browser: Any, live_server: Any, world: World) -> None:
    ticket = overdue_ticket(world)
    with person(browser, live_server, "bob", PASSWORD) as bob:
        bob.goto("/tickets/")
        expect(bob.get_by_role("link", name=ticket.number)).to_have_count(0)

    sign_in(page, "helen", PASSWORD)
    page.goto(f"/tickets/{ticket.number}/")
    page.get_by_label("Новый ответственный").select_option(label="bob · Sales")
    page.get_by_label("Причина").last.fill("Ann is on a course")
    page.get_by_role("button", name="Сменить ответственного").click()
    expect(messages(page)).to_contain_text("Ответственный по заявке сменён.")
    expect(page.locator(".ticket-head")).to_contain_text("bob")

    with person(browser, live_server, "bob", PASSWORD) as bob:
        bob.get_by_role("link", name="Заявки").click()
        expect(bob.get_by_role("row").filter(has_text=ticket.number)).to_contain_text("bob")
        bob.get_by_role("link", name="Мои задачи").click()
        expect(bob.get_by_role("row").filter(has_text=ticket.number)).to_contain_text(
            "Call the client")
        bob.get_by_role("link", name=ticket.number).click()
        expect(bob.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    ticket.refresh_from_db()
    assert ticket.owner == world.bob


# --- 3. the interface speaks Russian, and English to whoever asks --------------------------------


def test_russian_by_default_and_english_for_a_person_who_switches(
        page: Any, browser: Any, live_server: Any, world: World) -> None:
    sign_in(page, "ann", PASSWORD)
    menu = page.get_by_role("navigation", name="Главное меню")
    expect(menu.get_by_role("link", name="Мои задачи")).to_be_visible()
    expect(menu.get_by_role("link", name="Заявки")).to_be_visible()
    expect(page.get_by_role("button", name="Выйти")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "ru"

    page.goto("/account/")
    page.get_by_label("Язык").select_option(label="English")
    page.get_by_role("button", name="Сохранить").click()
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="My tasks")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"

    # Saved on the person: another browser (with a Russian locale) gets English too.
    with person(browser, live_server, "ann", PASSWORD) as again:
        expect(again.get_by_role("link", name="My tasks")).to_be_visible()
        expect(again.locator("body")).not_to_contain_text("Мои задачи")


# --- 4. HTML and JavaScript typed into text fields stay text --------------------------------------


def test_html_typed_into_text_fields_is_shown_as_text_and_never_runs(
        page: Any, browser: Any, live_server: Any, world: World) -> None:
    sign_in(page, "otto", PASSWORD)
    page.get_by_role("link", name="Новая заявка").first.click()
    page.locator("#id_phone").fill("+7 903 111-22-33")
    page.locator("#id_client_name").fill(f"Client {PAYLOAD}")
    page.locator("#id_subject").fill(f"Subject {PAYLOAD}")
    page.locator("#id_description").fill(f"Description {PAYLOAD}")
    page.get_by_role("button", name="Зарегистрировать").click()
    expect(messages(page)).to_contain_text("зарегистрирована")
    ticket = Ticket.objects.get(subject=f"Subject {PAYLOAD}")

    def shown_as_text(tab: Any, *texts: str) -> None:
        for text in texts:
            expect(tab.get_by_text(text, exact=False).first).to_be_visible()
        assert tab.evaluate("window.__xss") is None
        assert tab.locator("main script").count() == 0
        assert tab.locator("main img").count() == 0

    shown_as_text(page, f"Subject {PAYLOAD}", f"Description {PAYLOAD}", f"Client {PAYLOAD}")
    page.get_by_role("link", name="Заявки").click()
    shown_as_text(page, f"Subject {PAYLOAD}", f"Client {PAYLOAD}")

    # The owner logs a contact with the same note; the ticket page and My tasks show it as text.
    owner = ticket.owner.username
    with person(browser, live_server, owner, PASSWORD) as seller:
        seller.goto(f"/tickets/{ticket.number}/")
        contacts = seller.locator("#contacts")
        contacts.locator("summary").click()
        seller.locator("#id_contact-kind").select_option("call")
        seller.locator("#id_contact-outcome").select_option("connected")
        seller.locator("#id_contact-note").fill(f"Note {PAYLOAD}")
        contacts.get_by_role("button", name="Записать контакт").click()
        expect(messages(seller)).to_contain_text("Контакт записан.")
        shown_as_text(seller, f"Note {PAYLOAD}", f"Subject {PAYLOAD}", f"Client {PAYLOAD}")
        seller.get_by_role("link", name="Мои задачи").click()
        shown_as_text(seller, f"Client {PAYLOAD}")
    assert Activity.objects.get(ticket=ticket).note == f"Note {PAYLOAD}"


# --- 5. an operator registers a request -----------------------------------------------------------


def test_operator_registers_a_ticket_and_sees_its_number_at_once(
        page: Any, world: World) -> None:
    sign_in(page, "otto", PASSWORD)
    page.get_by_role("navigation", name="Главное меню").get_by_role(
        "link", name="Новая заявка").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Новая заявка")
    page.get_by_label("Телефон клиента").fill("+7 916 555-44-33")
    page.get_by_label("Имя клиента или название компании").fill("Мария Сидорова")
    page.get_by_label("Тема").fill("Нужен семейный автомобиль")
    page.get_by_role("button", name="Зарегистрировать").click()

    ticket = Ticket.objects.get(subject="Нужен семейный автомобиль")
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.number}/$"))
    expect(messages(page)).to_have_text(f"Заявка {ticket.number} зарегистрирована.")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    expect(page.locator("#client")).to_contain_text("Мария Сидорова")
    assert ticket.created_by == world.operator
    assert ticket.client.name == "Мария Сидорова"

