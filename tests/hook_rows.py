"""A row in every table of the webhooks app (for the guard and admin fixtures): a telephony and
a messenger source, a call and a message through them, and the messenger sender they remember."""

from __future__ import annotations

from datetime import timedelta

from estafeta.core import clock
from estafeta.hooks.models import HookCall, HookMessage, HookSender, HookSource
from estafeta.hooks.schema import CallIn, MessageIn
from estafeta.hooks.services import call_receive, hook_source_create, message_receive

from .factories import World


def hooks_rows(world: World) -> None:
    pbx, _ = hook_source_create(actor=world.admin, name="Guards PBX", slug="guards-pbx",
                                kind="telephony", pipeline=world.pipeline)
    bot, _ = hook_source_create(actor=world.admin, name="Guards bot", slug="guards-bot",
                                kind="messenger", pipeline=world.pipeline)
    started = clock.now() - timedelta(minutes=5)
    call_receive(source=pbx, call=CallIn(
        call_id="guards-call", direction="in", caller="+79123456789", callee="+74950000000",
        started_at=started, duration=60, outcome="answered",
        recording_url="https://pbx.example.com/rec/guards.mp3"))
    message_receive(source=bot, message=MessageIn(
        message_id="guards-message", channel="telegram", sender_id="guards-777",
        text="Is the red one available?", sent_at=started, sender_name="Pavel"))
    for model in (HookSource, HookCall, HookMessage, HookSender):
        assert model._base_manager.exists(), model
