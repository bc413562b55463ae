"""Durations written by people in pipeline files: ``30m``, ``4h``, ``2d``, ``1d 4h``.

They are kept as written units because a business day is not 24 hours: the control issue's
business calendar interprets ``d`` as working days. ``Duration.wall_clock()`` is the plain reading
used until a calendar applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from .errors import BadInput

_PART = re.compile(r"(\d+)\s*([mhd])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[mhd]\s*)+$")


@dataclass(frozen=True, slots=True)
class Duration:
    days: int = 0
    hours: int = 0
    minutes: int = 0

    @classmethod
    def parse(cls, text: str | int) -> Duration:
        """Parse ``"1d 4h 30m"``; a bare integer means minutes. Raises ``BadInput``."""
        if isinstance(text, bool):
            raise BadInput("a duration must look like 30m, 4h or 2d", code="bad_duration")
        if isinstance(text, int):
            if text < 0:
                raise BadInput("a duration cannot be negative", code="bad_duration")
            return cls(minutes=text).normalised()
        if not isinstance(text, str) or not _WHOLE.match(text.lower()):
            raise BadInput(
                f"{text!r} is not a duration; write it like 30m, 4h, 2d or 1d 4h",
                code="bad_duration",
            )
        parts = {"d": 0, "h": 0, "m": 0}
        for amount, unit in _PART.findall(text.lower()):
            parts[unit] += int(amount)
        return cls(days=parts["d"], hours=parts["h"], minutes=parts["m"]).normalised()

    def normalised(self) -> Duration:
        """Fold minutes into hours; days stay days (a working day has no fixed length)."""
        total = self.hours * 60 + self.minutes
        return Duration(days=self.days, hours=total // 60, minutes=total % 60)

    def is_zero(self) -> bool:
        return self.days == 0 and self.hours == 0 and self.minutes == 0

    def wall_clock(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)

    def __str__(self) -> str:
        out = []
        if self.days:
            out.append(f"{self.days}d")
        if self.hours:
            out.append(f"{self.hours}h")
        if self.minutes or not out:
            out.append(f"{self.minutes}m")
        return " ".join(out)
