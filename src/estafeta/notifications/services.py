"""The outbox's writers: ``notify`` (rows in the caller's transaction), ``deliver_pending`` (the
worker's delivery step), ``notifications_mark_read`` and the heads' daily digest.

Delivery is at least once. A row is claimed in a short transaction (PostgreSQL: ``SELECT ... FOR
UPDATE SKIP LOCKED``; SQLite: an immediate transaction) that counts the attempt and leases the
row for ``LEASE``; it is sent outside any transaction and then marked. A worker that dies between
sending and marking leaves the row due again when the lease ends: that window ("sent but not yet
marked") is the only way a notification can arrive twice, and the email's ``Message-ID`` and the
webhook's ``X-Estafeta-Delivery`` stay the same so that receivers can drop the copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.core.db import is_postgres
from estafeta.domain.errors import BadInput
from estafeta.tickets.models import Ticket

from .models import CHANNELS, Notification, WebhookEndpoint

log = logging.getLogger(__name__)

# A claimed row is someone's for this long; a sender's timeouts are far shorter.
LEASE = timedelta(minutes=10)
CLAIM_BATCH = 20
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)


def max_attempts() -> int:
    return int(getattr(settings, "ESTAFETA_NOTIFY_MAX_ATTEMPTS", 10))


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed try: 1, 2, 4 ... minutes, at most two hours."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


# --- writing ---------------------------------------------------------------------------------


def notify(*, recipient: User, kind: str, payload: dict[str, Any], key: str,
           ticket: Ticket | None = None,
           channels: Sequence[str] = ("inapp", "email", "webhook")) -> list[Notification]:
    """Outbox rows, written in the CALLER's transaction (nothing is delivered here).

    One row per channel with the idempotency key ``f"{key}:{channel}"`` (webhooks: one row per
    active endpoint, ``f"{key}:webhook:{endpoint_id}"``), unique per recipient: calling again
    with the same key adds nothing and returns the rows already there. Email only if the
    recipient has an address. Returns the rows for ``key``, in channel order.
    """
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise BadInput(f"unknown notification channels {sorted(unknown)}", code="bad_channel")
    if not key or len(key) > 150:
        raise BadInput("a notification key is 1 to 150 characters", code="bad_key")
    now = clock.now()
    rows: list[Notification] = []
    for channel in channels:
        if channel == "email" and not (recipient.email or "").strip():
            continue
        if channel == "webhook":
            for endpoint in WebhookEndpoint.objects.filter(is_active=True).order_by("pk"):
                rows.append(Notification(
                    recipient=recipient, channel=channel, kind=kind, ticket=ticket,
                    endpoint=endpoint, payload=payload, created_at=now, next_attempt_at=now,
                    idempotency_key=f"{key}:webhook:{endpoint.pk}"))
            continue
        rows.append(Notification(recipient=recipient, channel=channel, kind=kind, ticket=ticket,
                                 payload=payload, created_at=now, next_attempt_at=now,
                                 idempotency_key=f"{key}:{channel}"))
    if not rows:
        return []
    # ON CONFLICT DO NOTHING: a concurrent or repeated call with the same key adds nothing.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [r.idempotency_key for r in rows]
    found = {n.idempotency_key: n for n in Notification.objects.filter(
        recipient=recipient, idempotency_key__in=keys)}
    return [found[k] for k in keys if k in found]


def notifications_mark_read(*, actor: User, ids: Iterable[int] | None = None) -> int:
    """Mark the actor's unread in-app notifications read (``ids``: only those; ``None``: all).
    Someone else's ids match nothing. Returns how many changed."""
    rows = Notification.objects.filter(recipient=actor, channel="inapp", read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=[i for i in ids if 0 < i < 2**63])
    return rows.update(read_at=clock.now())


# --- delivering ------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What one try gave: ``sent``; else ``error`` and whether trying again may help."""

    sent: bool
    error: str = ""
    permanent: bool = False


SENT = Outcome(True)


def _claim(now: datetime, limit: int) -> list[tuple[int, int]]:
    """Lease up to ``limit`` due pending rows; returns (id, attempts after this claim)."""
    with transaction.atomic():
        due = (Notification.objects.filter(status="pending", next_attempt_at__lte=now)
               .order_by("next_attempt_at", "pk").values_list("pk", flat=True))
        if is_postgres():
            due = due.select_for_update(skip_locked=True)
        ids = list(due[:limit])
        if not ids:
            return []
        rows = list(Notification.objects.filter(pk__in=ids).values_list("pk", "attempts"))
        for pk, attempts in rows:
            Notification.objects.filter(pk=pk).update(attempts=attempts + 1,
                                                      next_attempt_at=now + LEASE)
        return [(pk, attempts + 1) for pk, attempts in rows]


def _send(n: Notification) -> Outcome:
    from . import mail, webhooks

    recipient = n.recipient
    if not recipient.is_active or recipient.deactivated_at is not None:
        return Outcome(False, "recipient inactive", permanent=True)
    # Re-checked now, not when written: the ticket may have changed hands since.
    if n.ticket_id is not None:
        from estafeta.tickets.access import tickets_visible_to

        if not tickets_visible_to(recipient).filter(pk=n.ticket_id).exists():
            return Outcome(False, "not visible: the recipient may no longer see the ticket",
                           permanent=True)
    if n.channel == "inapp":
        return SENT
    if n.channel == "email":
        return mail.send(n)
    if n.channel == "webhook":
        return webhooks.send(n)
    return Outcome(False, f"unknown channel {n.channel}", permanent=True)


def _mark(pk: int, attempts: int, outcome: Outcome, now: datetime, report: DeliveryReport) -> None:
    # Only the holder of this claim marks the row (a longer-lived claim would have counted
    # another attempt).
    row = Notification.objects.filter(pk=pk, status="pending", attempts=attempts)
    if outcome.sent:
        if row.update(status="sent", sent_at=now, next_attempt_at=None, last_error=""):
            report.sent += 1
        return
    error = outcome.error[:2000]
    report.errors.append(f"{pk}: {error}")
    if outcome.permanent or attempts >= max_attempts():
        if not outcome.permanent:
            error = f"gave up after {attempts} attempts: {error}"
        if row.update(status="failed", next_attempt_at=None, last_error=error):
            report.failed += 1
            log.warning("notification %s failed: %s", pk, error)
        return
    if row.update(next_attempt_at=now + backoff(attempts), last_error=error):
        report.retried += 1


def deliver_pending(*, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
    """Deliver up to ``limit`` due pending notifications; see the module's docstring.

    Each is sent (or refused: its recipient may no longer see the ticket) and marked sent,
    scheduled for a retry with backoff, or failed for good (SMTP 5xx, webhook 4xx other than
    408/429, a refused private address, too many attempts). Safe with several workers.
    """
    now = now or clock.now()
    report = DeliveryReport()
    while report.claimed < limit:
        claimed = _claim(now, min(CLAIM_BATCH, limit - report.claimed))
        if not claimed:
            break
        report.claimed += len(claimed)
        attempts = dict(claimed)
        rows = (Notification.objects.filter(pk__in=attempts)
                .select_related("recipient", "ticket", "endpoint").order_by("pk"))
        for n in rows:
            try:
                outcome = _send(n)
            except Exception as exc:  # a bug must not stop the others; retried, then failed
                log.exception("notification %s: unexpected error", n.pk)
                outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
            _mark(n.pk, attempts[n.pk], outcome, now, report)
    return report


# --- the heads' daily digest -----------------------------------------------------------------


def _local_date(now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(ZoneInfo("UTC")).isoformat() if moment else ""


def _name(user: User | None) -> str:
    return (user.get_full_name() or user.username) if user is not None else ""


DIGEST_ROWS = 50


def digest_for(head: User, now: datetime) -> dict[str, Any]:
    """What a head's daily digest says: the open tasks past due and the stages past their
    at-risk moment, on the tickets of the teams they head (at most ``DIGEST_ROWS`` of each,
    with the full counts)."""
    from estafeta.accounts.selectors import actor_facts
    from estafeta.tasks.models import Task
    from estafeta.tickets.models import StageVisit

    teams = list(actor_facts(head).headed_team_ids)
    overdue = (Task.objects.filter(status="open", due_at__lt=now, ticket__team_id__in=teams)
               .select_related("ticket__client", "assignee").order_by("due_at", "pk"))
    out: dict[str, Any] = {
        "date": _local_date(now).isoformat(),
        "overdue_count": overdue.count(),
        "overdue": [{"ticket": t.ticket.number, "client": t.ticket.client.name,
                     "task": t.title, "due_at": _iso(t.due_at), "assignee": _name(t.assignee)}
                    for t in overdue[:DIGEST_ROWS]],
        "at_risk_count": 0, "at_risk": [],
    }
    names = {f.name for f in StageVisit._meta.get_fields()}
    if "sla_risk_at" in names:  # the business-time SLA columns (calendar part of issue 4)
        risky = (StageVisit.objects.filter(closed_at__isnull=True, sla_risk_at__lte=now,
                                           ticket__team_id__in=teams)
                 .select_related("ticket__client", "stage", "executor")
                 .order_by("sla_risk_at", "pk"))
        out["at_risk_count"] = risky.count()
        out["at_risk"] = [
            {"ticket": v.ticket.number, "client": v.ticket.client.name, "stage": v.stage.name,
             "due_at": _iso(getattr(v, "sla_due_at", None)), "assignee": _name(v.executor)}
            for v in risky[:DIGEST_ROWS]]
    return out


def send_digests(now: datetime | None = None) -> int:
    """Queue each active head's digest once per local day, from ``ESTAFETA_DIGEST_HOUR``
    (default 9) on, if there is anything to say. Returns how many digests were queued."""
    now = now or clock.now()
    local = now.astimezone(ZoneInfo(settings.TIME_ZONE))
    if local.hour < int(getattr(settings, "ESTAFETA_DIGEST_HOUR", 9)):
        return 0
    day = local.date().isoformat()
    heads = list(User.objects.filter(is_active=True, deactivated_at__isnull=True,
                                     headed_teams__isnull=False).distinct().order_by("pk"))
    done = set(Notification.objects.filter(
        Q(idempotency_key__in=[f"digest:{h.pk}:{day}:inapp" for h in heads]),
    ).values_list("recipient_id", flat=True))
    queued = 0
    for head in heads:
        if head.pk in done:
            continue
        digest = digest_for(head, now)
        if not digest["overdue_count"] and not digest["at_risk_count"]:
            continue
        with transaction.atomic():
            if notify(recipient=head, kind="digest", payload=digest,
                      key=f"digest:{head.pk}:{day}", channels=("inapp", "email")):
                queued += 1
    return queued


# --- configuration -----------------------------------------------------------------------------


def webhook_endpoint_save(*, actor: User | None, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Add or change a webhook endpoint (admins; the Django admin's form calls this). An
    endpoint is switched off, never deleted: its notifications keep pointing at it."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint.url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput("a webhook URL starts with http:// or https:// and names a host",
                       code="bad_webhook_url")
    if len(endpoint.secret or "") < 16:
        raise BadInput("a webhook secret has at least 16 characters", code="weak_secret")
    endpoint.save()
    log.info("webhook endpoint %s saved by %s", endpoint.pk, getattr(actor, "pk", None))
    return endpoint
