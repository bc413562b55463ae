"""Fetching mail: IMAP over TLS (or STARTTLS) and local maildirs, one pass per mailbox.

The order is what keeps mail from being lost or taken twice: read the message without marking
it (``BODY.PEEK[]`` / a file in ``new/``), take it in (``services.mail_ingest`` commits), and
only then mark it (``\\Seen`` / move to ``cur/``). A crash in between leaves the message unread;
the next pass reads it again and the Message-ID makes the second reading a no-op.

A database error stops the pass for that mailbox (the message stays unread); bad mail never
stops it (it is quarantined).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError

from .models import Mailbox, MailboxKind
from .services import Result, mail_ingest, mailbox_polled, mailboxes_active

log = logging.getLogger(__name__)
TIMEOUT = 30
BATCH = 200  # messages per mailbox and pass; the rest waits for the next pass


class TransportError(Exception):
    pass


@dataclass
class PollReport:
    mailboxes: int = 0
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("created", "attached", "flagged", "repeated",
                                                     "quarantined") if self.count(s)]
        text = f"mail: {self.mailboxes} mailboxes, " + (", ".join(parts) or "nothing new")
        if self.errors:
            text += f", {len(self.errors)} errors"
        return text


def ssl_context(mailbox: Mailbox) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=getattr(settings, "ESTAFETA_MAIL_CA_FILE", "")
                                         or None)
    if not mailbox.ssl_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def imap_connect(mailbox: Mailbox) -> imaplib.IMAP4:
    context = ssl_context(mailbox)
    try:
        if mailbox.starttls:
            conn: imaplib.IMAP4 = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT)
            conn.starttls(ssl_context=context)
        else:
            conn = imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context,
                                     timeout=TIMEOUT)
        conn.login(mailbox.username, mailbox.password)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise TransportError(f"IMAP {mailbox.host}:{mailbox.port}: {exc}") from None
    return conn


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_messages(conn: imaplib.IMAP4, mailbox: Mailbox) -> Iterator[tuple[bytes, bytes]]:
    status, _ = conn.select(_quote(mailbox.folder))
    if status != "OK":
        raise TransportError(f"IMAP: cannot open folder {mailbox.folder!r}")
    status, data = conn.uid("SEARCH", None, "UNSEEN")  # type: ignore[arg-type]
    if status != "OK":
        raise TransportError("IMAP: SEARCH failed")
    uids = (data[0] or b"").split()[:BATCH]
    for uid in uids:
        status, parts = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
        if status != "OK" or raw is None:
            continue  # expunged meanwhile
        yield uid, raw


def poll_imap(mailbox: Mailbox, report: PollReport,
              ingest: Callable[..., Result] = mail_ingest) -> None:
    conn = imap_connect(mailbox)
    try:
        for uid, raw in _imap_messages(conn, mailbox):
            report.results.append(ingest(raw, mailbox=mailbox))
            conn.uid("STORE", uid.decode(), "+FLAGS", "(\\Seen)")  # only after the commit
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


_INFO = re.compile(r":2,([A-Za-z]*)$")


def poll_maildir(mailbox: Mailbox, report: PollReport,
                 ingest: Callable[..., Result] = mail_ingest) -> None:
    root = Path(mailbox.path)
    new, cur = root / "new", root / "cur"
    if not new.is_dir() or not cur.is_dir():
        raise TransportError(f"maildir {mailbox.path}: no new/ and cur/ folders")
    names = sorted(n for n in os.listdir(new) if not n.startswith("."))[:BATCH]
    for name in names:
        source = new / name
        try:
            raw = source.read_bytes()
        except FileNotFoundError:
            continue  # another reader took it
        report.results.append(ingest(raw, mailbox=mailbox))
        base = _INFO.sub("", name)
        os.replace(source, cur / f"{base}:2,S")  # only after the commit


def poll_mailbox(mailbox: Mailbox, report: PollReport,
                 ingest: Callable[..., Result] = mail_ingest) -> None:
    error = ""
    try:
        if mailbox.kind == MailboxKind.IMAP:
            poll_imap(mailbox, report, ingest)
        else:
            poll_maildir(mailbox, report, ingest)
    except (TransportError, OSError) as exc:
        error = str(exc)
    except DatabaseError as exc:
        error = f"database: {exc}"
        raise
    finally:
        if error:
            report.errors.append(f"{mailbox.name}: {error}")
            log.warning("mailbox %s: %s", mailbox.name, error)
        with contextlib.suppress(DatabaseError):
            mailbox_polled(mailbox, error=error)
        report.mailboxes += 1


def poll_all() -> PollReport:
    """One pass over every active mailbox (the worker calls this)."""
    report = PollReport()
    for mailbox in mailboxes_active():
        try:
            poll_mailbox(mailbox, report)
        except DatabaseError:
            continue  # noted on the report; the message stays unread for the next pass
    return report
