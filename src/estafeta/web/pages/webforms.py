"""Web forms: the public request form at ``/f/<slug>/`` with its thank-you page, and the
administrators' settings pages that manage the forms (docs/webforms.md).

The public pages need no sign-in and live inside an ``<iframe>`` on the dealership's own site.
That changes two things compared with every other page:

- CSRF. Django's check compares a form field with a cookie, and a browser does not send our
  ``SameSite=Lax`` cookie with a POST made inside a frame on another site (and blocks such
  third-party cookies more and more anyway), so the cookie check would refuse every embedded
  submission. The view is therefore exempt from it and carries its own proof instead: a token
  signed with the secret key, made for this form at render time, holding a random nonce and the
  render time. It cannot be forged, it makes the minimum fill time and the one-ticket-per-render
  rule possible, and a POST whose ``Origin`` is neither this site nor one of the form's allowed
  sites is refused. There is no session or account behind the form for a forged request to
  abuse: the worst a forger can do is what anyone can do, send a request, and that is what the
  spam checks are for.
- Framing. The rest of the site answers ``X-Frame-Options: DENY``. These pages answer
  ``Content-Security-Policy: frame-ancestors <the form's allowed sites>`` and no X-Frame-Options
  (it cannot name a list); a form with no allowed sites keeps DENY and ``frame-ancestors 'none'``.

The settings pages are for admins only and write through ``webforms.services``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.codes import Role
from estafeta.domain.errors import BadInput, EstafetaError, NotFound
from estafeta.intake.selectors import survivor_of
from estafeta.pipelines.models import Pipeline
from estafeta.webforms.models import FIELDS, FieldMode, WebForm
from estafeta.webforms.selectors import (
    submission_for_thanks,
    webform_by_pk,
    webform_public,
    webforms_search,
)
from estafeta.webforms.services import (
    MAX_MESSAGE,
    MAX_MIN_FILL,
    MAX_NAME,
    Contact,
    contact_clean,
    webform_create,
    webform_set_active,
    webform_submit,
    webform_update,
)

from ..errors import status_for
from .common import error_page, paginate, query_without, refusal, roles_required

admin_only = roles_required(Role.ADMIN)
read_or_post = require_http_methods(["GET", "HEAD", "POST"])

TOKEN_SALT = "estafeta.webforms.render"  # noqa: S105 - a namespace, not a secret
HONEYPOT = "website"  # a name bots like to fill; people never see the field
PUBLIC_LANGUAGES = ("ru", "en")


# --- the signed render token -------------------------------------------------------------------


def render_token(form: WebForm, at: datetime | None = None, nonce: str | None = None) -> str:
    """A token for one rendering of ``form``: its nonce and render time, signed."""
    moment = at or clock.now()
    return signing.dumps({"f": form.pk, "n": nonce or secrets.token_urlsafe(24),
                          "t": round(moment.timestamp(), 3)}, salt=TOKEN_SALT)


def read_token(form: WebForm, value: str) -> tuple[str, datetime] | None:
    """(nonce, render time) of a token made for this form; ``None`` if forged or foreign."""
    try:
        data = signing.loads(value or "", salt=TOKEN_SALT)
        if not isinstance(data, dict) or data.get("f") != form.pk:
            return None
        return str(data["n"]), datetime.fromtimestamp(float(data["t"]), tz=UTC)
    except (signing.BadSignature, KeyError, TypeError, ValueError, OverflowError):
        return None


# --- the public pages ----------------------------------------------------------------------------

LABELS: dict[str, Any] = {  # lazy: the page is rendered in the visitor's language
    "name": gettext_lazy("Your name"),
    "phone": gettext_lazy("Phone"),
    "email": gettext_lazy("Email"),
    "message": gettext_lazy("Your request"),
}

REFUSALS: dict[str, Any] = {  # lazy, like LABELS
    "webform_spam": gettext_lazy("Your request could not be accepted."),
    "webform_too_fast": gettext_lazy("That was very fast. Please check the form and send it "
                                     "again."),
    "webform_expired": gettext_lazy("The form was open for too long. Please check it and send "
                                    "it again."),
    "webform_rate_limited": gettext_lazy("Too many requests have been sent from here or for "
                                         "this email or phone in the last hour. Please try "
                                         "again later."),
    "webform_required": gettext_lazy("Please fill in this field."),
    "webform_contact_required": gettext_lazy("Please give a phone number or an email so that we "
                                             "can answer you."),
    "bad_phone": gettext_lazy("This is not a phone number."),
    "bad_email": gettext_lazy("This is not an email address."),
    "too_long": gettext_lazy("The text is too long: at most %(limit)s characters."),
}
UNAVAILABLE = gettext_lazy("We cannot take requests through this form right now. Please try "
                           "again later.")
FOREIGN_ORIGIN = gettext_lazy("This form can only be sent from the site it is published on.")


class PublicForm(forms.Form):
    """The fields the web form shows (built per form) and the honeypot."""

    name = forms.CharField(max_length=MAX_NAME, required=False,
                           widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = forms.CharField(max_length=40, required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}))
    email = forms.CharField(max_length=254, required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "email",
                                                          "type": "email"}))
    message = forms.CharField(max_length=MAX_MESSAGE, required=False,
                              widget=forms.Textarea(attrs={"rows": 5}))

    def __init__(self, webform: WebForm, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.webform = webform
        self.contact: Contact | None = None
        for field in FIELDS:
            mode = webform.mode(field)
            if mode == FieldMode.HIDDEN:
                del self.fields[field]
                continue
            self.fields[field].label = LABELS[field]
            self.fields[field].required = mode == FieldMode.REQUIRED
        # The limits are checked (and reported next to the field) by the service rules below.
        for shown in self.fields.values():
            shown.error_messages["required"] = REFUSALS["webform_required"]
            if isinstance(shown, forms.CharField):
                shown.error_messages["max_length"] = _too_long(shown.max_length)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.contact = contact_clean(self.webform, **{f: data.get(f, "") for f in FIELDS})
        except BadInput as exc:
            field = exc.params.get("field")
            self.add_error(field if field in self.fields else None, _public_message(exc))
        return data


def _too_long(limit: int | None) -> str:
    return str(REFUSALS["too_long"]) % {"limit": limit}


def _public_message(exc: EstafetaError) -> str:
    template = REFUSALS.get(exc.code)
    if template is None:
        return str(UNAVAILABLE)
    text = str(template)
    return text % dict(exc.params) if "%(" in text else text


def _language(request: HttpRequest) -> str:
    """``?lang=`` (or the posted ``lang``), else the browser's preference, else Russian."""
    asked = (request.POST.get("lang") if request.method == "POST" else None) \
        or request.GET.get("lang")
    if asked in PUBLIC_LANGUAGES:
        return asked
    found = translation.get_language_from_request(request)
    return found if found in PUBLIC_LANGUAGES else settings.LANGUAGE_CODE


def client_ip(request: HttpRequest) -> str:
    if settings.ESTAFETA_WEBFORM_BEHIND_PROXY:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1][:100]
    return str(request.META.get("REMOTE_ADDR") or "")[:100]


def _own_origins(request: HttpRequest) -> set[str]:
    scheme = "https" if request.is_secure() else "http"
    return {f"{scheme}://{request.get_host()}".lower(),
            *(o.rstrip("/").lower() for o in settings.CSRF_TRUSTED_ORIGINS)}


def frame_headers(response: HttpResponse, webform: WebForm) -> HttpResponse:
    """Only the form's allowed sites may show this page in a frame."""
    origins = [o for o in webform.frame_origins if o]
    if origins:
        response["Content-Security-Policy"] = "frame-ancestors " + " ".join(origins)
        response.xframe_options_exempt = True
    else:
        response["Content-Security-Policy"] = "frame-ancestors 'none'"
        response["X-Frame-Options"] = "DENY"
    return response


def _public(request: HttpRequest, webform: WebForm, template: str, context: dict[str, Any],
            language: str, status: int = 200) -> HttpResponse:
    with translation.override(language):
        response = render(request, f"web/webforms/{template}",
                          {"webform": webform, "lang": language, **context}, status=status)
    response["Content-Language"] = language
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ["Accept-Language"])
    return frame_headers(response, webform)


def _form_page(request: HttpRequest, webform: WebForm, form: PublicForm, token: str,
               language: str, status: int = 200, error: str = "") -> HttpResponse:
    return _public(request, webform, "public_form.html",
                   {"form": form, "token": token, "honeypot": HONEYPOT, "error": error},
                   language, status)


@csrf_exempt  # the signed render token stands in for the cookie check (module docstring)
@read_or_post
def webform_page(request: HttpRequest, slug: str) -> HttpResponse:
    webform = webform_public(slug)
    if webform is None:
        raise Http404
    language = _language(request)
    with translation.override(language):  # the form's own messages too
        if request.method != "POST":
            return _form_page(request, webform, PublicForm(webform), render_token(webform),
                              language)
        return _submit(request, webform, language)


def _submit(request: HttpRequest, webform: WebForm, language: str) -> HttpResponse:
    form = PublicForm(webform, request.POST)
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None and origin.lower() not in _own_origins(request) | {
            o.lower() for o in webform.frame_origins}:
        return _form_page(request, webform, form, render_token(webform), language, 403,
                          str(FOREIGN_ORIGIN))
    token = request.POST.get("token", "")
    rendered = read_token(webform, token)
    if rendered is None:  # forged, from another form, or from before a change of the key
        form.is_valid()
        return _form_page(request, webform, form, render_token(webform), language, 400,
                          str(REFUSALS["webform_expired"]))
    if not form.is_valid() or form.contact is None:
        return _form_page(request, webform, form, token, language, 400)
    try:
        done = webform_submit(form=webform, nonce=rendered[0], rendered_at=rendered[1],
                              contact=form.contact, client_ip=client_ip(request),
                              honeypot=request.POST.get(HONEYPOT, ""), language=language)
    except NotFound as exc:
        raise Http404 from exc
    except EstafetaError as exc:
        if exc.code == "webform_expired":
            token = render_token(webform)
        status = 429 if exc.code == "webform_rate_limited" else status_for(exc)
        return _form_page(request, webform, form, token, language, status,
                          _public_message(exc))
    thanks = reverse("web:webform_thanks", kwargs={"slug": webform.slug,
                                                   "token": done.submission.token})
    return redirect(f"{thanks}?lang={language}")


@require_safe
def webform_thanks(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    submission = submission_for_thanks(slug, token)
    if submission is None:
        raise Http404
    return _public(request, submission.form, "public_thanks.html",
                   {"number": survivor_of(submission.ticket).number}, _language(request))


# --- settings: administrators only ---------------------------------------------------------------


def _origin_lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").replace(",", "\n").splitlines()
            if line.strip()]


class WebFormForm(forms.Form):
    slug = forms.SlugField(
        label=gettext_lazy("Address"), max_length=60,
        help_text=gettext_lazy("The form is at /f/<address>/; lower-case Latin letters, digits "
                               "and -. It cannot be changed later."))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    pipeline = forms.ModelChoiceField(label=gettext_lazy("Pipeline"),
                                      queryset=Pipeline.objects.order_by("name"))
    name_field = forms.ChoiceField(label=gettext_lazy("Name"), choices=FieldMode.choices)
    phone_field = forms.ChoiceField(label=gettext_lazy("Phone"), choices=FieldMode.choices)
    email_field = forms.ChoiceField(label=gettext_lazy("Email"), choices=FieldMode.choices)
    message_field = forms.ChoiceField(label=gettext_lazy("Message"), choices=FieldMode.choices)
    frame_origins = forms.CharField(
        label=gettext_lazy("Sites that may embed the form"), required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://dealer.example"}),
        help_text=gettext_lazy("One per line, like https://dealer.example. Other sites cannot "
                               "show the form in a frame; the plain link works everywhere."))
    min_fill_seconds = forms.IntegerField(
        label=gettext_lazy("Minimum fill time, seconds"), min_value=0, max_value=MAX_MIN_FILL,
        help_text=gettext_lazy("A form sent sooner after it was opened is taken for a robot."))

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["slug"]

    def modes(self) -> dict[str, str]:
        return {f: self.cleaned_data[f"{f}_field"] for f in FIELDS}


# Which field a refusal of ``webforms.services`` belongs to.
SETTINGS_FIELDS = {"bad_slug": "slug", "webform_exists": "slug", "bad_title": "title",
                   "bad_origin": "frame_origins", "too_many_origins": "frame_origins",
                   "bad_min_fill": "min_fill_seconds"}
SETTINGS_MESSAGES: dict[str, Promise] = {
    "bad_slug": gettext_lazy("An address uses lower-case Latin letters, digits and -, 2 to 60 "
                             "characters."),
    "webform_exists": gettext_lazy("A web form with this address exists."),
    "bad_origin": gettext_lazy("“%(origin)s” is not a site address like https://dealer.example "
                               "(no path)."),
    "too_many_origins": gettext_lazy("At most %(limit)s sites."),
    "bad_min_fill": gettext_lazy("From 0 to %(limit)s seconds."),
    "webform_no_contact": gettext_lazy("The form must ask for a phone or an email."),
}


def _settings_refusal(request: HttpRequest, form: WebFormForm, exc: EstafetaError) -> int:
    template = SETTINGS_MESSAGES.get(exc.code)
    if template is None:
        return refusal(request, exc)
    text = str(template)
    message = text % dict(exc.params) if "%(" in text else text
    form.add_error(SETTINGS_FIELDS.get(exc.code), message)
    return status_for(exc)


def _settings_page(request: HttpRequest, template: str, context: dict[str, Any],
                   status: int = 200) -> HttpResponse:
    context.update(section="settings", area="webforms")
    return render(request, f"web/webforms/{template}", context, status=status)


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _initial(webform: WebForm) -> dict[str, Any]:
    return {"title": webform.title, "pipeline": webform.pipeline_id,
            **{f"{f}_field": webform.mode(f) for f in FIELDS},
            "frame_origins": "\n".join(webform.frame_origins),
            "min_fill_seconds": webform.min_fill_seconds}


def public_url(request: HttpRequest, webform: WebForm) -> str:
    """The form's address as a visitor reaches it (ESTAFETA_BASE_URL when set)."""
    where = reverse("web:webform", kwargs={"slug": webform.slug})
    base = settings.ESTAFETA_BASE_URL.rstrip("/")
    return f"{base}{where}" if base else request.build_absolute_uri(where)


def _edit_page(request: HttpRequest, webform: WebForm, form: WebFormForm | None = None,
               status: int = 200) -> HttpResponse:
    url = public_url(request, webform)
    src, title = escape(url), escape(webform.title)  # the snippet is HTML; shown escaped again
    return _settings_page(request, "settings_form.html", {
        "webform": webform, "url": url,
        "form": form or WebFormForm(editing=True, initial=_initial(webform)),
        "iframe": f'<iframe src="{src}" title="{title}" width="100%" height="620" '
                  f'style="border:0" loading="lazy"></iframe>',
        "link": f'<a href="{src}" target="_blank" rel="noopener">{title}</a>',
        "submissions": webform.submissions.count(),
    }, status)


@admin_only
@require_safe
def settings_webforms(request: HttpRequest) -> HttpResponse:
    q = (request.GET.get("q") or "").strip()[:200]
    return _settings_page(request, "settings_list.html", {
        "page": paginate(request, webforms_search(q)), "q": q,
        "query": query_without(request, "page")})


@admin_only
@read_or_post
def settings_webform_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {f"{f}_field": FieldMode.OPTIONAL for f in FIELDS}
    form = WebFormForm(request.POST or None, initial={**initial, "min_fill_seconds": 3})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                webform = webform_create(
                    actor=_me(request), slug=data["slug"], pipeline=data["pipeline"],
                    title=data["title"], modes=form.modes(),
                    frame_origins=_origin_lines(data["frame_origins"]),
                    min_fill_seconds=data["min_fill_seconds"])
            except EstafetaError as exc:
                status = _settings_refusal(request, form, exc)
            else:
                messages.success(request, _("The web form is created: copy the snippet to the "
                                            "site."))
                return redirect("web:settings_webform", pk=webform.pk)
    return _settings_page(request, "settings_new.html", {"form": form}, status)


def _missing(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("Not found"), _("There is no such item in the settings."))


@admin_only
@read_or_post
def settings_webform(request: HttpRequest, pk: int) -> HttpResponse:
    webform = webform_by_pk(pk)
    if webform is None:
        return _missing(request)
    if request.method != "POST":
        return _edit_page(request, webform)
    form = WebFormForm(request.POST, editing=True, initial=_initial(webform))
    if not form.is_valid():
        return _edit_page(request, webform, form, 400)
    data = form.cleaned_data
    try:
        webform_update(actor=_me(request), form=webform, pipeline=data["pipeline"],
                       title=data["title"], modes=form.modes(),
                       frame_origins=_origin_lines(data["frame_origins"]),
                       min_fill_seconds=data["min_fill_seconds"])
    except EstafetaError as exc:
        return _edit_page(request, webform, form, _settings_refusal(request, form, exc))
    messages.success(request, _("Saved."))
    return redirect("web:settings_webform", pk=webform.pk)


@admin_only
@require_POST
def settings_webform_active(request: HttpRequest, pk: int) -> HttpResponse:
    webform = webform_by_pk(pk)
    active = {"1": True, "0": False}.get(request.POST.get("active") or "")
    if webform is None or active is None:
        return _missing(request)
    try:
        webform_set_active(actor=_me(request), form=webform, active=active)
    except EstafetaError as exc:
        return _edit_page(request, webform, status=refusal(request, exc))
    messages.success(request, _("The form takes requests again.") if active else
                     _("The form is switched off: its address now answers “not found”."))
    return redirect("web:settings_webform", pk=webform.pk)


urlpatterns = [
    path("f/<slug:slug>/", webform_page, name="webform"),
    path("f/<slug:slug>/thanks/<slug:token>/", webform_thanks, name="webform_thanks"),
    path("settings/webforms/", settings_webforms, name="settings_webforms"),
    path("settings/webforms/new/", settings_webform_new, name="settings_webform_new"),
    path("settings/webforms/<int:pk>/", settings_webform, name="settings_webform"),
    path("settings/webforms/<int:pk>/active/", settings_webform_active,
         name="settings_webform_active"),
]
