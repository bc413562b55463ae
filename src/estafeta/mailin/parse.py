"""Reading one raw email (bytes) into what intake needs, with the standard ``email`` package.

The parser never trusts the message: a header that cannot be read, a charset nobody knows, a
broken base64 part or a huge body are handled by a fixed rule (documented in docs/email.md)
instead of an exception. What cannot be handled raises ``Refused`` with a quarantine reason.

Rules that matter for safety:

* every header value is reduced to one line without control characters (no header injection
  through an encoded CR/LF reaches anything Estafeta sends);
* ``X-Estafeta-*`` headers from outside are never read: Estafeta recognises its own mail only
  by its own addresses, never by a header anybody can write;
* the sender is the one address of the one ``From`` header; several ``From`` headers or several
  addresses are ambiguous (quarantine); a display name that itself looks like an address is
  dropped (the client is matched by the real address only);
* the body is capped at ``ESTAFETA_MAIL_MAX_TEXT`` characters and every attachment at
  ``ESTAFETA_MAIL_MAX_ATTACHMENT`` bytes; what was cut is said in the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from django.conf import settings

from estafeta.domain.contacts import normalise_email
from estafeta.domain.errors import BadInput

from .models import QuarantineReason

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# No control characters inside (a NUL cannot be stored on PostgreSQL, and would stop the
# mailbox at this message on every pass): such an id is not an id.
_MSGID = re.compile(r"<[^<>\s\x00-\x1f\x7f]{1,250}>")
_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+")
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


class Refused(Exception):
    """The message cannot be taken in; ``reason`` is a ``QuarantineReason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class Parsed:
    digest: str
    message_id: str  # "<...>", or "<sha256@estafeta.invalid>" for a message without one
    has_message_id: bool
    from_address: str  # normalised
    from_name: str
    to_addresses: list[str]
    subject: str
    text: str
    html: str
    date: datetime | None
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # attachments not stored, and why
    truncated: bool = False
    auto: str = ""  # why no acknowledgement may be sent ("" = a person wrote it)
    defects: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        ids = [self.in_reply_to] if self.in_reply_to else []
        return ids + [r for r in self.references if r not in ids]


def one_line(value: Any, limit: int = 255) -> str:
    """A header value as one line without control characters."""
    return " ".join(_CONTROL.sub(" ", str(value or "")).split())[:limit]


def max_text() -> int:
    return int(getattr(settings, "ESTAFETA_MAIL_MAX_TEXT", 100_000))


def max_attachment() -> int:
    return int(getattr(settings, "ESTAFETA_MAIL_MAX_ATTACHMENT", 10 << 20))


def max_message() -> int:
    return int(getattr(settings, "ESTAFETA_MAIL_MAX_MESSAGE", 50 << 20))


def digest_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _header(msg: Message, name: str) -> str:
    """A header as text; a header the parser cannot decode is read raw (never raises)."""
    try:
        value = msg.get(name)
    except Exception:  # a broken header must not stop the message
        raw = msg._headers  # type: ignore[attr-defined]  # the stored (name, value) pairs
        value = next((v for k, v in raw if k.lower() == name.lower()), "")
    return "" if value is None else str(value)


def _ids(value: str) -> list[str]:
    return list(dict.fromkeys(_MSGID.findall(value or "")))


def _date(msg: Message) -> datetime | None:
    text = one_line(_header(msg, "Date"))
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _raw_from_headers(msg: Message) -> list[str]:
    raw = msg._headers  # type: ignore[attr-defined]
    return [str(v) for k, v in raw if k.lower() == "from"]


def _sender(msg: Message) -> tuple[str, str]:
    """(normalised address, display name) of the one sender; ``Refused`` when ambiguous."""
    values = _raw_from_headers(msg)
    if len(values) > 1:
        raise Refused(QuarantineReason.AMBIGUOUS_FROM, f"{len(values)} From headers")
    if not values:
        return "", ""
    decoded = _header(msg, "From")
    pairs = [(n, a) for n, a in getaddresses([one_line(decoded, 2000)]) if a or n]
    if len(pairs) > 1:
        raise Refused(QuarantineReason.AMBIGUOUS_FROM,
                      f"several sender addresses: {one_line(decoded, 500)}")
    if not pairs or not pairs[0][1]:
        return "", one_line(pairs[0][0] if pairs else "", 200)
    name, address = pairs[0]
    try:
        address = normalise_email(address)
    except BadInput:
        raise Refused(QuarantineReason.NO_SENDER,
                      f"the sender is not an address: {one_line(decoded, 500)}") from None
    name = one_line(name, 200)
    if _LOOKS_LIKE_ADDRESS.search(name) or "@" in name:
        name = ""  # "boss@company.ru" <evil@example.com>: the real address decides
    return address, name


def _recipients(msg: Message) -> list[str]:
    values = [one_line(_header(msg, h), 5000) for h in ("To", "Cc")]
    out = []
    for _name, address in getaddresses([v for v in values if v]):
        try:
            out.append(normalise_email(address))
        except BadInput:
            continue
    return list(dict.fromkeys(out))


def _auto(msg: Message, sender: str) -> str:
    ctype = msg.get_content_type()
    return_path = one_line(_header(msg, "Return-Path"))
    if ctype == "multipart/report" or return_path == "<>" or sender.startswith(BOUNCE_SENDERS):
        return "bounce"
    auto_submitted = one_line(_header(msg, "Auto-Submitted")).lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_submitted"
    if one_line(_header(msg, "Precedence")).lower() in AUTO_PRECEDENCE:
        return "precedence"
    if _header(msg, "X-Auto-Response-Suppress"):
        return "auto_response_suppress"
    if _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return "list"
    return ""


class _Text(HTMLParser):
    """HTML to plain text for the ticket's description (display of the HTML is sanitize's job)."""

    SKIP = {"script", "style", "head", "title"}
    BREAK = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # broken markup: fall back to stripping tags
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    text = "".join(parser.parts)
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _payload(part: Message) -> bytes:
    """The decoded bytes of a part; broken base64 is decoded as far as it goes."""
    if part.get("Content-Transfer-Encoding", "").strip().lower() == "base64":
        text = part.get_payload(decode=False)
        if isinstance(text, str):
            clean = _NOT_BASE64.sub(b"", text.encode("ascii", "ignore"))
            if len(clean) % 4 == 1:
                clean = clean[:-1]  # a lone sixth of a byte: cut
            clean += b"=" * (-len(clean) % 4)
            try:
                return base64.b64decode(clean)
            except (binascii.Error, ValueError):
                return b""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return str(part.get_payload() or "").encode("utf-8", "replace")


def _decode(part: Message, defects: list[str]) -> str:
    """A text part as str: its charset if Python knows it, else UTF-8 with replacements."""
    payload = _payload(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        defects.append(f"unknown charset {one_line(charset, 40)}")
        return payload.decode("utf-8", "replace")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return one_line(name or "", 200)


def _walk(msg: Message, parsed: Parsed, texts: list[str], htmls: list[str]) -> None:
    limit = max_attachment()
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        name = _filename(part)
        if disposition != "attachment" and not name and ctype in ("text/plain", "text/html"):
            (texts if ctype == "text/plain" else htmls).append(_decode(part, parsed.defects))
            continue
        if ctype == "message/delivery-status":
            continue
        data = _payload(part)
        label = name or f"part-{len(parsed.attachments) + len(parsed.skipped) + 1}"
        if len(data) > limit:
            parsed.skipped.append(f"{label} ({len(data)} bytes, more than {limit}) not stored")
            continue
        if not data:
            continue
        parsed.attachments.append(Attachment(name=label, content_type=ctype, data=data))


def parse(raw: bytes) -> Parsed:
    """Read a raw message; ``Refused`` if it cannot become a ticket."""
    digest = digest_of(raw)
    if len(raw) > max_message():
        raise Refused(QuarantineReason.TOO_LARGE,
                      f"{len(raw)} bytes, more than {max_message()}")
    if not raw.strip():
        raise Refused(QuarantineReason.UNPARSEABLE, "empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything left is fatal
        raise Refused(QuarantineReason.UNPARSEABLE, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise Refused(QuarantineReason.UNPARSEABLE, "no headers")
    sender, name = _sender(msg)
    ids = _ids(_header(msg, "Message-ID"))
    message_id = ids[0] if ids else f"<{digest}@estafeta.invalid>"
    parsed = Parsed(
        digest=digest, message_id=message_id, has_message_id=bool(ids), from_address=sender,
        from_name=name, to_addresses=_recipients(msg), subject=one_line(_header(msg, "Subject")),
        text="", html="", date=_date(msg),
    )
    reply_to = _ids(_header(msg, "In-Reply-To"))
    parsed.in_reply_to = reply_to[0] if reply_to else ""
    parsed.references = _ids(_header(msg, "References"))[-50:]
    parsed.auto = _auto(msg, sender)
    if not sender and parsed.auto != "bounce":
        raise Refused(QuarantineReason.NO_SENDER, "no sender address")
    texts: list[str] = []
    htmls: list[str] = []
    try:
        _walk(msg, parsed, texts, htmls)
    except Exception as exc:  # malformed MIME beyond what the parser mends
        raise Refused(QuarantineReason.UNPARSEABLE,
                      f"malformed MIME: {type(exc).__name__}: {exc}") from None
    parsed.defects += [type(d).__name__ for p in msg.walk() for d in p.defects][:20]
    cap = max_text()
    html_text = "\n\n".join(htmls)
    text = "\n\n".join(t.strip() for t in texts if t.strip()) or html_to_text(html_text)
    text = text.replace("\x00", "")
    if len(text) > cap:
        text = text[:cap] + f"\n\n[… the text was cut at {cap} characters]"
        parsed.truncated = True
    if len(html_text) > cap:
        html_text = ""  # a cut HTML document is not worth showing; the text has the words
        parsed.truncated = True
    if parsed.skipped:
        text += "\n\n" + "\n".join(f"[attachment {s}]" for s in parsed.skipped)
    parsed.text = text
    parsed.html = html_text.replace("\x00", "")
    return parsed
