"""Normalisation of phones and emails, so that one client is found by any spelling of them."""

from __future__ import annotations

import re

import phonenumbers

from .errors import BadInput

DEFAULT_REGION = "RU"
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\]+$")


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the phone in E.164 (``+79123456789``).

    Russian habits are understood: ``8 (912) 345-67-89``, ``+7 912 345 67 89``, ``9123456789``.
    Raises ``BadInput`` for anything that is not a possible number.
    """
    text = (raw or "").strip()
    if not text:
        raise BadInput("the phone number is empty", code="bad_phone")
    if len(text) > 40:
        raise BadInput("the phone number is too long", code="bad_phone")
    digits = re.sub(r"\D", "", text)
    # A bare ten-digit Russian mobile ("9123456789") has no trunk prefix at all.
    if region == "RU" and not text.startswith("+") and len(digits) == 10 and digits[0] == "9":
        text = "+7" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise BadInput(f"{raw!r} is not a phone number", code="bad_phone") from exc
    if not phonenumbers.is_possible_number(number):
        raise BadInput(f"{raw!r} is not a phone number", code="bad_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Return the address trimmed and lower-cased, the domain in its ASCII (IDNA) form.

    Raises ``BadInput`` for anything that is not one plain address.
    """
    text = (raw or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text or len(text) > 254 or not _EMAIL.match(text):
        raise BadInput(f"{raw!r} is not an email address", code="bad_email")
    local, _, domain = text.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadInput(f"{raw!r} has an invalid domain", code="bad_email") from exc
    return f"{local.lower()}@{domain.lower()}"
