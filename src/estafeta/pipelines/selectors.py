"""Reads about pipelines."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Q, QuerySet

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


def pipelines_search(text: str = "") -> QuerySet[Pipeline]:
    """Pipelines with their current version and the number of versions and open tickets."""
    qs = (Pipeline.objects.select_related("current_version")
          .annotate(versions_count=Count("versions", distinct=True))
          .order_by("name"))
    text = " ".join((text or "").split())[:200]
    if text:
        qs = qs.filter(Q(code__icontains=text) | Q(name__icontains=text))
    return qs


def pipeline_versions(pipeline: Pipeline) -> QuerySet[PipelineVersion]:
    return (pipeline.versions.select_related("created_by")
            .only("number", "digest", "created_at", "pipeline_id", "created_by__username")
            .order_by("-number"))


def lost_reasons_search(text: str = "") -> QuerySet[LostReason]:
    qs = LostReason.objects.select_related("pipeline").order_by("pipeline__name", "title")
    text = " ".join((text or "").split())[:200]
    if text:
        qs = qs.filter(Q(code__icontains=text) | Q(title__icontains=text))
    return qs


def lost_reasons_usable(pipeline_id: int) -> list[LostReason]:
    """The active reasons a ticket of this pipeline can be lost with (its own, then global);
    a pipeline's own reason hides a global one with the same code."""
    reasons = list(LostReason.objects.filter(Q(pipeline_id=pipeline_id) | Q(pipeline__isnull=True),
                                             is_active=True).order_by("title"))
    own = {r.code for r in reasons if r.pipeline_id is not None}
    return [r for r in reasons if r.pipeline_id is not None or r.code not in own]


def pipelines_accepting() -> QuerySet[Pipeline]:
    """Pipelines a new ticket can be registered in."""
    return Pipeline.objects.filter(is_active=True, current_version__isnull=False).order_by("name")
