"""Limit/offset pages with bounds: at most 200 rows a page, and offsets the databases accept."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_OFFSET = 10**9


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        try:
            offset = int(raw)
        except ValueError:
            raise ValidationError({"offset": ["a whole number is required"]}) from None
        if not 0 <= offset <= MAX_OFFSET:
            raise ValidationError({"offset": [f"must be between 0 and {MAX_OFFSET}"]})
        return offset

    def get_limit(self, request: Request) -> Any:
        raw = request.query_params.get(self.limit_query_param)
        if raw is not None:
            try:
                limit = int(raw)
            except ValueError:
                raise ValidationError({"limit": ["a whole number is required"]}) from None
            if not 1 <= limit <= self.max_limit:
                raise ValidationError({"limit": [f"must be between 1 and {self.max_limit}"]})
            return limit
        return self.default_limit
