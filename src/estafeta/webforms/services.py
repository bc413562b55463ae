"""Writes about web forms: the administrators' configuration, and the public submissions.

Configuration (``webform_create``, ``webform_update``, ``webform_set_active``) is for admins and
writes one event on the form's stream. A submission (``webform_submit``) is checked for spam
first (honeypot, minimum fill time, rate limits), then goes through ``intake.services
.intake_arrival`` like every channel; the submission row is written in the same transaction, so a
refused or failed submission leaves nothing behind, and the same rendered form sent twice makes
one ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts
from estafeta.core import clock
from estafeta.domain.codes import Channel, EventType, Role
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.errors import BadInput, Conflict, NotFound
from estafeta.domain.policy import require_role
from estafeta.history.services import event_record
from estafeta.intake.services import Arrival, intake_arrival
from estafeta.pipelines.models import Pipeline

from .models import FIELDS, FieldMode, WebForm, WebFormSubmission

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,59}$")
MAX_NAME = 200
MAX_MESSAGE = 4000
MAX_ORIGINS = 20
MAX_MIN_FILL = 600
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RATE_WINDOW = timedelta(hours=1)


# --- configuration -------------------------------------------------------------------------------


def _title(value: str) -> str:
    title = " ".join((value or "").split())
    if not title or len(title) > 200:
        raise BadInput("the title must be 1-200 characters", code="bad_title")
    return title


def _modes(modes: dict[str, str]) -> dict[str, str]:
    out = {}
    for field in FIELDS:
        mode = modes.get(field, FieldMode.OPTIONAL)
        if mode not in FieldMode.values:
            raise BadInput(f"{mode!r} is not a field mode", code="bad_field_mode", field=field)
        out[f"{field}_field"] = str(mode)
    if out["phone_field"] == FieldMode.HIDDEN and out["email_field"] == FieldMode.HIDDEN:
        # A request nobody can answer is not a request.
        raise BadInput("the form must ask for a phone or an email", code="webform_no_contact")
    return out


def origin_normalise(raw: str) -> str:
    """``https://Dealer.example:8443/`` → ``https://dealer.example:8443``; ``BadInput`` for
    anything that is not a plain http(s) origin (no path, query, user or wildcard)."""
    text = (raw or "").strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"{raw!r} is not a site address", code="bad_origin", origin=raw) from exc
    host = (parts.hostname or "").lower()
    if (parts.scheme not in ("http", "https") or not host or parts.path or parts.query
            or parts.fragment or parts.username or parts.password
            or not re.fullmatch(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]", host) or len(text) > 200):
        raise BadInput(f"{raw!r} is not a site address", code="bad_origin", origin=raw[:200])
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _origins(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        if raw.strip() and (origin := origin_normalise(raw)) not in out:
            out.append(origin)
    if len(out) > MAX_ORIGINS:
        raise BadInput(f"at most {MAX_ORIGINS} sites", code="too_many_origins", limit=MAX_ORIGINS)
    return out


def _min_fill(value: int) -> int:
    if not 0 <= value <= MAX_MIN_FILL:
        raise BadInput(f"the minimum fill time must be 0-{MAX_MIN_FILL} seconds",
                       code="bad_min_fill", limit=MAX_MIN_FILL)
    return value


def _admin(actor: User | None) -> None:
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change web forms")


def _described(form: WebForm) -> dict[str, object]:
    return {"slug": form.slug, "pipeline": form.pipeline.code, "title": form.title,
            "active": form.is_active, **{f: form.mode(f) for f in FIELDS},
            "frame_origins": list(form.frame_origins), "min_fill_seconds": form.min_fill_seconds}


def webform_create(*, actor: User | None, slug: str, pipeline: Pipeline, title: str,
                   modes: dict[str, str] | None = None, frame_origins: Iterable[str] = (),
                   min_fill_seconds: int = 3) -> WebForm:
    """A new active form at ``/f/<slug>/``; the slug never changes (it is in embed snippets
    and in the intake source of every submission)."""
    _admin(actor)
    slug = (slug or "").strip()
    if not SLUG.match(slug):
        raise BadInput(f"{slug!r} is not an address: use lower-case Latin letters, digits and -",
                       code="bad_slug")
    fields = _modes(modes or {})
    values = {"title": _title(title), "frame_origins": _origins(frame_origins),
              "min_fill_seconds": _min_fill(min_fill_seconds), **fields}
    now = clock.now()
    with transaction.atomic():
        if WebForm.objects.filter(slug=slug).exists():
            raise Conflict(f"the web form {slug!r} exists", code="webform_exists")
        form = WebForm.objects.create(slug=slug, pipeline=pipeline, created_at=now,
                                      updated_at=now, **values)
        event_record(stream=form.stream, type=EventType.WEBFORM_CREATED, actor=actor,
                     new_stream=True, payload=_described(form))
    return form


def webform_update(*, actor: User | None, form: WebForm, pipeline: Pipeline, title: str,
                   modes: dict[str, str], frame_origins: Iterable[str],
                   min_fill_seconds: int) -> WebForm:
    """Change what the form asks and where it may be shown; the event names what changed."""
    _admin(actor)
    values: dict[str, object] = {
        "pipeline": pipeline, "title": _title(title), **_modes(modes),
        "frame_origins": _origins(frame_origins), "min_fill_seconds": _min_fill(min_fill_seconds)}
    with transaction.atomic():
        form = WebForm.objects.select_for_update().select_related("pipeline").get(pk=form.pk)
        before = _described(form)
        for name, value in values.items():
            setattr(form, name, value)
        after = _described(form)
        changed = {k: after[k] for k in after if after[k] != before[k]}
        if not changed:
            return form
        form.updated_at = clock.now()
        form.save(update_fields=[*values, "updated_at"])
        event_record(stream=form.stream, type=EventType.WEBFORM_UPDATED, actor=actor,
                     payload=changed)
    return form


def webform_set_active(*, actor: User | None, form: WebForm, active: bool) -> WebForm:
    """Deactivate a form (its page answers 404, nothing else changes) or bring it back."""
    _admin(actor)
    with transaction.atomic():
        form = WebForm.objects.select_for_update().get(pk=form.pk)
        if form.is_active == active:
            raise BadInput("nothing changes", code="no_change")
        form.is_active = active
        form.updated_at = clock.now()
        form.save(update_fields=["is_active", "updated_at"])
        event_record(stream=form.stream, type=EventType.WEBFORM_UPDATED, actor=actor,
                     payload={"active": active})
    return form


# --- submissions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """What the sender typed, checked and normalised (empty strings for fields not given)."""

    name: str = ""
    phone: str = ""
    email: str = ""
    message: str = ""


@dataclass(frozen=True)
class Submitted:
    submission: WebFormSubmission
    created: bool  # False: this rendered form was sent before; nothing was written this time


def contact_clean(form: WebForm, *, name: str = "", phone: str = "", email: str = "",
                  message: str = "") -> Contact:
    """The sender's fields as the form asks for them: hidden fields are dropped, required ones
    must be there, at least a phone or an email, phone and email normalised.

    Raises ``BadInput`` with ``params["field"]`` naming the field at fault.
    """
    given = {"name": " ".join((name or "").split()), "phone": (phone or "").strip(),
             "email": (email or "").strip(), "message": (message or "").strip()}
    for field in FIELDS:
        mode = form.mode(field)
        if mode == FieldMode.HIDDEN:
            given[field] = ""
        elif mode == FieldMode.REQUIRED and not given[field]:
            raise BadInput(f"the {field} is required", code="webform_required", field=field)
    if len(given["name"]) > MAX_NAME:
        raise BadInput("the name is too long", code="too_long", field="name", limit=MAX_NAME)
    if len(given["message"]) > MAX_MESSAGE:
        raise BadInput("the message is too long", code="too_long", field="message",
                       limit=MAX_MESSAGE)
    if not given["phone"] and not given["email"]:
        field = "phone" if form.mode("phone") != FieldMode.HIDDEN else "email"
        raise BadInput("a phone or an email is required", code="webform_contact_required",
                       field=field)
    try:
        phone = normalise_phone(given["phone"]) if given["phone"] else ""
    except BadInput as exc:
        raise BadInput(exc.message, code=exc.code, field="phone") from exc
    try:
        email = normalise_email(given["email"]) if given["email"] else ""
    except BadInput as exc:
        raise BadInput(exc.message, code=exc.code, field="email") from exc
    return Contact(given["name"], phone, email, given["message"])


def rate_key(kind: str, value: str) -> str:
    """A keyed hash of an address, email or phone: enough to count, useless to read."""
    if not value:
        return ""
    secret = f"estafeta.webforms.rate:{settings.SECRET_KEY}".encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _subject(form: WebForm, contact: Contact) -> str:
    line = next((s.strip() for s in contact.message.splitlines() if s.strip()), "")
    line = " ".join(line.split())
    if not line:
        return form.title
    return line if len(line) <= 120 else line[:119].rstrip() + "…"


def _rate_check(form: WebForm, ip_key: str, email_key: str, phone_key: str,
                now: datetime) -> None:
    since = now - RATE_WINDOW
    recent = WebFormSubmission.objects.filter(created_at__gte=since)
    if recent.filter(ip_key=ip_key).count() >= settings.ESTAFETA_WEBFORM_PER_IP_HOUR:
        raise BadInput("too many requests from this address", code="webform_rate_limited")
    contacts = Q()
    if email_key:
        contacts |= Q(email_key=email_key)
    if phone_key:
        contacts |= Q(phone_key=phone_key)
    if recent.filter(contacts).count() >= settings.ESTAFETA_WEBFORM_PER_CONTACT_HOUR:
        raise BadInput("too many requests for this email or phone", code="webform_rate_limited")


def webform_submit(*, form: WebForm, nonce: str, rendered_at: datetime, contact: Contact,
                   client_ip: str, honeypot: str = "", language: str = "") -> Submitted:
    """Take one request from the public form: a ticket (or the client's open one) through
    intake, and the submission that links the thank-you page to it.

    ``nonce`` and ``rendered_at`` come from the signed token of the rendered form. Refused with
    ``BadInput`` (codes ``webform_spam``, ``webform_too_fast``, ``webform_expired``,
    ``webform_rate_limited``) before anything is written; ``NotFound`` for an inactive form.
    The same nonce again returns the first submission with ``created=False``.
    """
    if not NONCE.match(nonce or ""):
        raise BadInput("the form token is not valid", code="webform_expired")
    now = clock.now()
    if honeypot:
        raise BadInput("the hidden field was filled in", code="webform_spam")
    age = (now - rendered_at).total_seconds()
    if age > settings.ESTAFETA_WEBFORM_TOKEN_AGE:
        raise BadInput("the form was opened too long ago", code="webform_expired")
    if age < form.min_fill_seconds:
        raise BadInput("the form was sent too fast", code="webform_too_fast",
                       seconds=form.min_fill_seconds)
    ip_key = rate_key("ip", client_ip or "unknown")
    email_key, phone_key = rate_key("email", contact.email), rate_key("phone", contact.phone)
    try:
        with transaction.atomic():
            # One submission of a form at a time: the nonce and the rate limits are checked
            # against everything committed before (the unique constraint backs the nonce up).
            locked = (WebForm.objects.select_for_update().select_related("pipeline")
                      .filter(pk=form.pk, is_active=True).first())
            if locked is None:
                raise NotFound("no such web form", code="unknown_webform")
            earlier = _earlier(locked, nonce)
            if earlier is not None:
                return Submitted(earlier, created=False)
            _rate_check(locked, ip_key, email_key, phone_key, now)
            outcome = intake_arrival(Arrival(
                channel=Channel.WEB_FORM, source=locked.source, external_id=nonce,
                pipeline=locked.pipeline.code, name=contact.name,
                phones=(contact.phone,) if contact.phone else (),
                emails=(contact.email,) if contact.email else (),
                subject=_subject(locked, contact), text=contact.message, occurred_at=now))
            submission = WebFormSubmission.objects.create(
                form=locked, nonce=nonce, token=secrets.token_urlsafe(32),
                ticket=outcome.ticket, ip_key=ip_key, email_key=email_key,
                phone_key=phone_key, language=(language or "")[:8], created_at=now)
    except IntegrityError:
        # A concurrent send of the same rendered form committed first: that one counts.
        earlier = _earlier(form, nonce)
        if earlier is None:
            raise
        return Submitted(earlier, created=False)
    return Submitted(submission, created=True)


def _earlier(form: WebForm, nonce: str) -> WebFormSubmission | None:
    return (WebFormSubmission.objects.select_related("ticket")
            .filter(form=form, nonce=nonce).first())
