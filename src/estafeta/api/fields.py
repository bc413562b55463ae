"""Input fields stricter than DRF's defaults, so that bad input is a 400 and never a 500."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# Ids travel to the database as 64-bit integers; larger ones would crash the driver.
MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    """A row id: a positive 64-bit integer (never a string, never a boolean)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, (bool, float)):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 moment with its offset. A naive time is refused rather than guessed: a
    due time read in the wrong zone would escalate hours early or late."""

    default_error_messages = {
        "naive": "give the time with its offset, e.g. 2026-12-07T10:00:00+03:00",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # well-formed but impossible (month 13): DRF says "invalid"
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        elif isinstance(value, datetime) and timezone.is_naive(value):
            self.fail("naive")
        return super().to_internal_value(value)


class MoneyField(serializers.DecimalField):
    """An amount in the currency's main unit with cents: what the amount columns hold
    (14 digits, 2 after the point), never negative; a JSON number or a string."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def code_field(**kwargs: Any) -> serializers.RegexField:
    """A stable code (stage, item, pipeline, reason): lower-case Latin letters, digits, - or _."""
    kwargs.setdefault("max_length", 40)
    return serializers.RegexField(r"^[a-z0-9][a-z0-9_-]*$", **kwargs)


def text_field(max_length: int, **kwargs: Any) -> serializers.CharField:
    """Free text: stored and returned exactly as text (markup included, never interpreted)."""
    kwargs.setdefault("allow_blank", True)
    kwargs.setdefault("default", "")
    return serializers.CharField(max_length=max_length, **kwargs)


@extend_schema_field({"description": "any JSON value; what the checklist item's evidence kind "
                                     "accepts (text, number, money, date, document number)"})
class EvidenceField(serializers.JSONField):
    """Checklist evidence: whatever JSON the item's kind accepts; the service validates it.
    In multipart forms it is the form field's text."""
