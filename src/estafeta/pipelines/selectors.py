"""Reads about pipelines."""

from __future__ import annotations

from django.db import connection

from estafeta.domain.errors import BadInput, NotFound

from .models import LostReason, Pipeline, PipelineVersion, cached_version


def pipeline_by_code(code: str) -> Pipeline:
    try:
        return Pipeline.objects.select_related("current_version").get(code=code)
    except Pipeline.DoesNotExist:
        raise NotFound(f"there is no pipeline {code!r}", code="unknown_pipeline") from None


def version_for_new_ticket(code: str) -> PipelineVersion:
    """The current version of pipeline ``code``, if it accepts new tickets.

    One plain query for the pipeline's state (ticket creation is the hottest path there is);
    the version itself, which never changes, comes from the per-process cache.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.is_active, v.id, v.digest FROM pipelines_pipeline p "
            "LEFT JOIN pipelines_pipelineversion v ON v.id = p.current_version_id "
            "WHERE p.code = %s", [code])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"there is no pipeline {code!r}", code="unknown_pipeline")
    active, version_id, digest = row
    if version_id is None or not active:
        raise BadInput(f"pipeline {code!r} does not accept new tickets",
                       code="pipeline_inactive")
    return cached_version(version_id, digest)


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
