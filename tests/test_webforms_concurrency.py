"""The web form under concurrency (PostgreSQL threads): the same rendered form sent by several
requests at once makes one ticket, and the rate limit holds for simultaneous senders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient

from estafeta.core import clock
from estafeta.intake.models import IntakeRecord
from estafeta.tickets.models import Ticket
from estafeta.web.pages.webforms import render_token
from estafeta.webforms.models import WebFormSubmission
from estafeta.webforms.services import webform_create

from .factories import build_world
from .test_concurrency import in_threads


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_form_sent_eight_times_at_once_makes_one_ticket_on_postgres() -> None:
    world = build_world()
    form = webform_create(actor=world.admin, slug="site", pipeline=world.pipeline,
                          title="Test drive")
    token = render_token(form, clock.now() - timedelta(seconds=10))

    def send(i: int) -> tuple[int, str]:
        response = HttpClient().post("/f/site/", {"token": token, "email": "race@example.com",
                                                  "message": "Once"})
        return response.status_code, response.get("Location", "")

    results = in_threads(8, send)
    assert {r[0] for r in results} == {302}, results
    assert len({r[1] for r in results}) == 1  # every sender sees the same thank-you page
    assert Ticket.objects.count() == 1
    assert WebFormSubmission.objects.count() == IntakeRecord.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_simultaneous_senders_cannot_pass_the_rate_limit_on_postgres(settings: object) -> None:
    settings.ESTAFETA_WEBFORM_PER_IP_HOUR = 3  # type: ignore[attr-defined]
    world = build_world()
    form = webform_create(actor=world.admin, slug="site", pipeline=world.pipeline,
                          title="Test drive")
    tokens = [render_token(form, clock.now() - timedelta(seconds=10)) for _ in range(8)]

    def send(i: int) -> int:
        return HttpClient().post("/f/site/", {"token": tokens[i],
                                              "email": f"r{i}@example.com"}).status_code

    results = in_threads(8, send)
    assert sorted(results) == [302] * 3 + [429] * 5, results
    assert WebFormSubmission.objects.count() == 3
