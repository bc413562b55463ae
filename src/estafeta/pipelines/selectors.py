"""Reads about pipelines."""

from __future__ import annotations

from estafeta.domain.errors import BadInput, NotFound

from .models import LostReason, Pipeline


def pipeline_by_code(code: str) -> Pipeline:
    try:
        return Pipeline.objects.select_related("current_version").get(code=code)
    except Pipeline.DoesNotExist:
        raise NotFound(f"there is no pipeline {code!r}", code="unknown_pipeline") from None


def lost_reason_for(pipeline_id: int, code: str) -> LostReason:
    """The active reason ``code`` valid for a pipeline (its own first, then a global one)."""
    reasons = LostReason.objects.filter(code=code, is_active=True)
    reason = (reasons.filter(pipeline_id=pipeline_id).first()
              or reasons.filter(pipeline__isnull=True).first())
    if reason is None:
        valid = sorted(set(
            LostReason.objects.filter(is_active=True, pipeline_id=pipeline_id)
            .values_list("code", flat=True)) | set(
            LostReason.objects.filter(is_active=True, pipeline__isnull=True)
            .values_list("code", flat=True)))
        raise BadInput(f"{code!r} is not a lost reason here; use one of: {', '.join(valid)}",
                       code="unknown_lost_reason", valid=valid)
    return reason
