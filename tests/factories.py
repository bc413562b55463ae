"""Test data made through the services, so every row has its event like in real use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from estafeta.accounts.models import Team, User
from estafeta.accounts.services import team_create, user_create
from estafeta.clients.models import Client
from estafeta.clients.services import client_create
from estafeta.core import clock
from estafeta.domain.codes import Channel
from estafeta.pipelines.models import Pipeline
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.services import TaskDraft
from estafeta.tickets.models import Ticket
from estafeta.tickets.services import checklist_item_complete, ticket_create

PASSWORD = "Test-pass-2026!"
PIPELINES = Path(__file__).parent / "pipelines"


def make_user(username: str, role: str = "seller", team: Team | None = None, **extra: Any) -> User:
    return user_create(actor=None, username=username, role=role, password=PASSWORD, team=team,
                       **extra)


def load_pipeline(name: str = "sales") -> Pipeline:
    return pipeline_load(actor=None, text=(PIPELINES / f"{name}.yaml").read_text(),
                         source=f"{name}.yaml").pipeline


@dataclass
class World:
    """A team "Sales" (head Helen, sellers Ann and Bob), a team "Other" (head Oscar, seller
    Olga), a director, an operator, an admin, the ``sales`` pipeline and a client."""

    head: User
    ann: User
    bob: User
    sales: Team
    other_head: User
    olga: User
    other: Team
    director: User
    operator: User
    admin: User
    pipeline: Pipeline
    client: Client

    def ticket(self, *, actor: User | None = None, owner: User | None = None,
               **kwargs: Any) -> Ticket:
        kwargs.setdefault("channel", "phone")
        kwargs.setdefault("subject", "A car for the family")
        return ticket_create(actor=actor or self.operator, pipeline=self.pipeline,
                             client=kwargs.pop("client", self.client), owner=owner, **kwargs)

    def fill_new(self, ticket: Ticket, actor: User | None = None) -> None:
        """Complete the required items of stage ``new``."""
        actor = actor or ticket.owner
        checklist_item_complete(actor=actor, ticket=ticket, stage="new", item="contacted")
        checklist_item_complete(actor=actor, ticket=ticket, stage="new", item="need",
                                evidence="a family car")


def build_world() -> World:
    head = make_user("helen", "head", first_name="Helen")
    sales = team_create(actor=None, name="Sales", head=head)
    ann = make_user("ann", "seller", sales)
    bob = make_user("bob", "seller", sales)
    other_head = make_user("oscar", "head")
    other = team_create(actor=None, name="Other", head=other_head)
    olga = make_user("olga", "seller", other)
    director = make_user("dora", "director")
    operator = make_user("otto", "operator")
    admin = make_user("adam", "admin")
    pipeline = load_pipeline()
    client = client_create(actor=operator, name="Ivan Petrov", phones=["8 912 345-67-89"],
                           emails=["ivan@example.com"])
    return World(head=head, ann=ann, bob=bob, sales=sales, other_head=other_head, olga=olga,
                 other=other, director=director, operator=operator, admin=admin,
                 pipeline=pipeline, client=client)


def later(**delta: float) -> datetime:
    return clock.now() + timedelta(**delta)


def draft(title: str = "Follow up", kind: str = "call", assignee: User | None = None,
          **delta: float) -> TaskDraft:
    return TaskDraft(kind=kind, title=title, due_at=later(**(delta or {"days": 1})),
                     assignee=assignee)


def webform_sent(world: World, slug: str = "site") -> Any:
    """A public web form, sent once by a visitor: its submission (and the ticket intake made)."""
    from estafeta.webforms.services import Contact, webform_create, webform_submit

    form = webform_create(actor=world.admin, slug=slug, pipeline=world.pipeline,
                          title="Test drive")
    return webform_submit(form=form, nonce="n" * 32, rendered_at=later(seconds=-10),
                          contact=Contact(name="Visitor", email="visitor@example.com"),
                          client_ip="10.0.0.1").submission


def intake_rows(world: World) -> None:
    """A client's email on their open ticket (an intake record and a reply task) and a second
    ticket flagged as its possible duplicate: a row in every intake table."""
    from estafeta.intake.models import DuplicateFlag
    from estafeta.intake.services import Arrival, intake_arrival

    out = intake_arrival(Arrival(channel=Channel.EMAIL, source="mailbox:test",
                                 external_id="<news@example.com>", pipeline=world.pipeline.code,
                                 emails=("ivan@example.com",), text="Any news?"))
    twin = world.ticket(subject="The same car again", channel="email")
    DuplicateFlag.objects.create(ticket=twin, of=out.ticket, record=out.record,
                                 created_at=clock.now())
