"""``{% mail_thread %}``: the ticket's email thread and the reply form, on the ticket page.

The ticket page's view knows nothing about email; this tag reads the thread for the ``ticket``
already in the page's context (found there through ``access_ticket``) and renders
``web/mail/_section.html``, the same section the thread page shows.
"""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("web/mail/_section.html", takes_context=True)
def mail_thread(context: template.Context) -> dict[str, Any]:
    from estafeta.web.pages.mail import thread_context

    ticket = context.get("ticket")
    request = context.get("request")
    if ticket is None or request is None:
        return {"mail_thread": []}
    return thread_context(request, ticket)
