"""Request plumbing of the web interface: each person's language, the server time taken, and
request text no database can store refused up front."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils import translation
from django.utils.translation import gettext as _

LANGUAGES = {code for code, _ in settings.LANGUAGES}


class UserLanguageMiddleware:
    """A signed-in person sees the interface in their own language (``User.language``).

    Placed after the authentication middleware. People not signed in keep what Django's
    ``LocaleMiddleware`` chose (the language cookie set by the switch on the login page, then the
    browser's preference, then Russian).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", None) if user is not None else None
        if user is not None and user.is_authenticated and language in LANGUAGES:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


class ServerTimingMiddleware:
    """Adds ``Server-Timing: app;dur=<ms>``: the time Django spent on the request, readable in
    a browser's developer tools and by the benchmark and the browser tests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = (time.perf_counter() - started) * 1000
        response.headers.setdefault("Server-Timing", f"app;dur={elapsed:.1f}")
        return response


def _unstorable(data: QueryDict) -> bool:
    """A lone UTF-16 surrogate in any key or value (PostgreSQL cannot store or even compare
    one: a search for it was a 500)."""
    for key, values in data.lists():
        for text in (key, *values):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


class UnstorableTextMiddleware:
    """Refuses with 400 a request whose query string or form holds a lone surrogate.

    Django decodes the query string with the charset the request's ``Content-Type`` names, so
    ``charset=utf-7`` (or ``unicode_escape``) turns ``+2AA-`` into ``"\\ud800"``. Forms sent as
    ``application/x-www-form-urlencoded`` are UTF-8 by Django's rule (anything else is its 400)
    and are checked as well; multipart bodies are left to the views (Django decodes their fields
    as UTF-8 with replacement characters) and JSON bodies to the API's parser (``bad_json``).
    Webhook bodies are the hooks' own (their parser refuses the same with ``bad_field``).
    Placed last, so the page is in the person's language with the usual layout.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = _unstorable(request.GET)
        if (not bad and request.method == "POST"
                and request.content_type == "application/x-www-form-urlencoded"
                and not request.path.startswith(("/api/", "/hooks/"))):
            bad = _unstorable(request.POST)
        if not bad:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"code": "bad_text", "params": {}, "message":
                                 "a query parameter or form field holds an unpaired UTF-16 "
                                 "surrogate (\\ud800-\\udfff)"}, status=400)
        from .pages.common import error_page

        return error_page(request, 400, _("Bad request"),
                          _("The request holds characters that are not text. Check the "
                            "address or the form and try again."))
