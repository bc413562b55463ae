"""``{% hook_conversation ticket %}``: the messenger messages and telephony calls of a ticket,
shown on its page (which has already checked that the person may see the ticket)."""

from __future__ import annotations

from typing import Any

from django import template

from estafeta.hooks.models import HookCall, HookMessage

register = template.Library()

SHOWN = 50  # the newest this many of each; older ones stay in the database


@register.inclusion_tag("web/hooks/_ticket.html")
def hook_conversation(ticket: Any) -> dict[str, Any]:
    messages = list(HookMessage.objects.filter(ticket=ticket).order_by("-sent_at", "-pk")[:SHOWN])
    calls = list(HookCall.objects.filter(ticket=ticket).order_by("-started_at", "-pk")[:SHOWN])
    messages.reverse()
    calls.reverse()
    return {"hook_messages": messages, "hook_calls": calls}
