"""The JSON formats of the webhooks, checked strictly (docs/webhooks-in.md describes them).

``parse_call`` and ``parse_message`` take the raw body and return a frozen dataclass, or raise
``BadInput`` whose ``code`` and English ``message`` name the first problem (the endpoint answers
400 ``{"code", "message"}``). Unknown fields, duplicate keys, wrong types and naive times are all
refused: a sender that drifts from the format finds out at once instead of losing data quietly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from estafeta.domain.errors import BadInput

from .models import CallOutcome

MAX_ID = 255
MAX_PHONE = 40
MAX_NAME = 200
MAX_TEXT = 20_000
MAX_URL = 2000
MAX_DURATION = 86_400
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
_url = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class CallIn:
    call_id: str
    direction: str
    caller: str
    callee: str
    started_at: datetime
    duration: int
    outcome: str
    recording_url: str = ""


@dataclass(frozen=True)
class MessageIn:
    message_id: str
    channel: str
    sender_id: str
    text: str
    sent_at: datetime
    sender_phone: str = ""
    sender_name: str = ""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadInput(f"the key {key!r} appears twice", code="bad_json")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not a JSON number", code="bad_json")


def load_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (UTF-8, no duplicate keys, no NaN)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("the body is not UTF-8", code="bad_json") from exc
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"the body is not JSON: {exc}", code="bad_json") from exc
    if not isinstance(data, dict):
        raise BadInput("the body must be a JSON object", code="bad_json")
    return data


class _Fields:
    def __init__(self, data: dict[str, Any], required: set[str], optional: set[str]) -> None:
        unknown = sorted(set(data) - required - optional)
        if unknown:
            raise BadInput(f"unknown field {unknown[0]!r}", code="unknown_field",
                           field=unknown[0])
        missing = sorted(required - set(data))
        if missing:
            raise BadInput(f"the field {missing[0]!r} is required", code="missing_field",
                           field=missing[0])
        self.data = data

    def _wrong(self, name: str, what: str) -> BadInput:
        return BadInput(f"{name!r} must be {what}", code="bad_field", field=name)

    def text(self, name: str, limit: int, *, blank: bool = False, optional: bool = False,
             check: Callable[[str], bool] | None = None, what: str = "") -> str:
        value = self.data.get(name)
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self._wrong(name, "a string")
        if "\x00" in value:
            raise self._wrong(name, "text without NUL characters")
        try:  # "\ud800" is valid JSON but no text: a lone surrogate cannot be stored
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self._wrong(name, "text without lone surrogates (\\ud800-\\udfff)") from None
        value = value.strip()
        if not value and not blank and not optional:
            raise self._wrong(name, "a non-empty string")
        if len(value) > limit:
            raise self._wrong(name, f"at most {limit} characters")
        if value and check is not None and not check(value):
            raise self._wrong(name, what)
        return value

    def choice(self, name: str, allowed: list[str]) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or value not in allowed:
            raise self._wrong(name, "one of " + ", ".join(f'"{a}"' for a in allowed))
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.data.get(name)
        # bool is an int in Python, never in the format.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self._wrong(name, f"a whole number from {low} to {high}")
        return value

    def moment(self, name: str) -> datetime:
        value = self.data.get(name)
        if not isinstance(value, str) or len(value) > 40:
            raise self._wrong(name, "an ISO 8601 time with a zone, like 2026-03-01T10:15:00+03:00")
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None or "T" not in text.upper() or moment.tzinfo is None \
                or moment.utcoffset() is None:
            raise self._wrong(name, "an ISO 8601 time with a zone, like 2026-03-01T10:15:00+03:00")
        return moment


def _is_url(value: str) -> bool:
    try:
        _url(value)
    except ValidationError:
        return False
    return True


def parse_call(body: bytes) -> CallIn:
    f = _Fields(load_object(body),
                {"call_id", "direction", "caller", "callee", "started_at", "duration", "outcome"},
                {"recording_url"})
    return CallIn(
        call_id=f.text("call_id", MAX_ID),
        direction=f.choice("direction", ["in", "out"]),
        caller=f.text("caller", MAX_PHONE),
        callee=f.text("callee", MAX_PHONE),
        started_at=f.moment("started_at"),
        duration=f.integer("duration", 0, MAX_DURATION),
        outcome=f.choice("outcome", [o.value for o in CallOutcome]),
        recording_url=f.text("recording_url", MAX_URL, optional=True, check=_is_url,
                             what="an http or https URL"),
    )


def parse_message(body: bytes) -> MessageIn:
    f = _Fields(load_object(body),
                {"message_id", "channel", "sender_id", "text", "sent_at"},
                {"sender_phone", "sender_name"})
    return MessageIn(
        message_id=f.text("message_id", MAX_ID),
        channel=f.text("channel", 40, check=lambda v: bool(_CHANNEL.match(v)),
                       what="a lower-case name like telegram or whatsapp"),
        sender_id=f.text("sender_id", MAX_ID),
        text=f.text("text", MAX_TEXT, blank=True),
        sent_at=f.moment("sent_at"),
        sender_phone=f.text("sender_phone", MAX_PHONE, optional=True),
        sender_name=f.text("sender_name", MAX_NAME, optional=True),
    )
