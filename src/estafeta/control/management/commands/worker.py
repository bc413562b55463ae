"""``estafeta worker``: the monitor and the outbox, one pass at a time.

    estafeta worker                       loop every 60 s until SIGTERM or SIGINT
    estafeta worker --interval 10
    estafeta worker --once --now 2026-12-07T19:00:00+03:00   one pass as if at that moment

A pass = ``mailin.transports.poll_all`` (read the mailboxes into tickets) + ``monitor_pass``
(decide escalations) + ``deliver_pending`` (send the outbox, until nothing due is left) +
``send_digests`` + ``seal_if_due`` (an audit checkpoint, as ``estafeta audit checkpoint``, when
the last one is ``ESTAFETA_CHECKPOINT_EVERY`` seconds old; 0 leaves sealing to cron). A signal
finishes the current pass, then exits 0.
"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentTypeError
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.core.management.base import CommandParser
from django.db import close_old_connections
from django.utils import timezone

from estafeta.core.management.base import EstafetaCommand


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not an ISO moment like "
                                "2026-12-07T19:00:00+03:00") from None
    if timezone.is_naive(moment):
        raise ArgumentTypeError(f"{value!r} needs its UTC offset, e.g. +03:00")
    return moment


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < number <= 86400:
        raise ArgumentTypeError(f"{value!r}: use 0 < seconds <= 86400")
    return number


def seal_if_due(moment: datetime) -> str:
    """Seal an audit checkpoint (``history.services.checkpoint_create``, what ``estafeta audit
    checkpoint`` runs) when there is none yet or the newest is at least
    ``ESTAFETA_CHECKPOINT_EVERY`` seconds older than ``moment``; the summary's part, or "".
    Nothing new to seal seals nothing (and is tried again next pass)."""
    from django.conf import settings

    from estafeta.history.services import checkpoint_create, last_checkpoint_at

    every = int(settings.ESTAFETA_CHECKPOINT_EVERY)
    if every <= 0:
        return ""
    last = last_checkpoint_at()
    if last is not None and moment - last < timedelta(seconds=every):
        return ""
    cp = checkpoint_create()
    if cp is None:
        return ""
    return f"checkpoint {cp.pk} up to event {cp.upto_event_id}, hash {cp.hash}"


def run_pass(now: datetime | None = None) -> str:
    """One pass of the worker; returns its summary line."""
    from estafeta.control.services import monitor_pass
    from estafeta.core import clock
    from estafeta.notifications.services import deliver_pending, send_digests

    moment = now or clock.now()
    from estafeta.mailin.transports import poll_all  # email intake (docs/email.md)

    mail = poll_all()
    report = monitor_pass(now=moment)
    digests = send_digests(moment)
    sent = failed = retried = 0
    while True:  # the outbox until nothing due is left (each call claims a batch)
        delivery = deliver_pending(now=moment, limit=500)
        sent += delivery.sent
        failed += delivery.failed
        retried += delivery.retried
        if delivery.claimed < 500:
            break
    sealed = seal_if_due(moment)
    return (f"{report.summary()}; outbox: {sent} sent, {retried} to retry, {failed} failed"
            + (f"; {digests} digests" if digests else "")
            + (f"; {mail.summary()}" if mail.mailboxes else "")
            + (f"; {sealed}" if sealed else ""))


class Command(EstafetaCommand):
    help = ("Run the monitor (overdue tasks, stage SLAs, unavailable owners, tickets without a "
            "next task), deliver notifications and seal an audit checkpoint every "
            "ESTAFETA_CHECKPOINT_EVERY seconds, every --interval seconds until SIGTERM.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--now", type=_moment, default=None,
                            help="run as if at this ISO moment (replays and tests)")
        parser.add_argument("--interval", type=_seconds, default=60.0,
                            help="seconds between passes (default 60)")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stderr.write(f"worker: {signal.Signals(signum).name}: stopping after this pass")
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        while True:
            self.stdout.write(run_pass(options["now"]))
            self.stdout.flush()
            if options["once"] or stop.wait(options["interval"]):
                break
            close_old_connections()  # a database restart between passes is not fatal
        self.stdout.write("worker: stopped")
