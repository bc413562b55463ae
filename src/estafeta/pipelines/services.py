"""Writes about pipelines: loading versioned definitions, lost reasons."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max

from estafeta.accounts.models import User
from estafeta.accounts.selectors import actor_facts, team_named
from estafeta.core import clock
from estafeta.domain.codes import EventType, Role, StageSemantic
from estafeta.domain.errors import BadInput, Conflict, NotFound, PipelineInvalid
from estafeta.domain.hashchain import canonical
from estafeta.domain.pipeline import CODE, PipelineSpec, parse_pipeline
from estafeta.domain.policy import require_role
from estafeta.history.services import event_record

from .models import ChecklistItem, LostReason, Pipeline, PipelineVersion, Stage
from .selectors import pipeline_by_code
from .yamlio import dump_yaml, load_yaml


@dataclass(frozen=True)
class LoadResult:
    pipeline: Pipeline
    version: PipelineVersion
    created: bool  # False: the definition equals the current version, nothing was written


def _reference_problems(spec: PipelineSpec) -> list[str]:
    """Teams and people named in executor rules must exist (and people must be active)."""
    problems = []
    for i, stage in enumerate(spec.stages):
        rule = stage.executor
        if rule is None:
            continue
        if rule.team and team_named(rule.team) is None:
            problems.append(f"stages[{i}].executor.team: there is no team {rule.team!r}")
        if rule.user and not User.objects.filter(username=rule.user, is_active=True).exists():
            problems.append(f"stages[{i}].executor.user: there is no active user {rule.user!r}")
    return problems


def pipeline_load(*, actor: User | None, text: str | bytes,
                  source: str = "pipeline") -> LoadResult:
    """Validate a YAML definition and make it the pipeline's current version.

    Loading the definition the pipeline already has writes nothing. Tickets already running keep
    the version they started with. Raises ``PipelineInvalid`` naming every problem.
    """
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change pipelines")
    spec = parse_pipeline(load_yaml(text, source=source), source=source)
    problems = _reference_problems(spec)
    if problems:
        raise PipelineInvalid(problems, source=source)
    data = spec.model_dump(mode="json")
    digest = hashlib.sha256(canonical(data)).hexdigest()
    now = clock.now()
    with transaction.atomic():
        Pipeline.objects.bulk_create(
            [Pipeline(code=spec.code, name=spec.name, created_at=now)], ignore_conflicts=True)
        pipeline = Pipeline.objects.select_for_update().get(code=spec.code)
        current = pipeline.current_version
        if current is not None and current.digest == digest:
            return LoadResult(pipeline, current, created=False)
        number = (pipeline.versions.aggregate(m=Max("number"))["m"] or 0) + 1
        version = PipelineVersion.objects.create(pipeline=pipeline, number=number, spec=data,
                                                 digest=digest, created_by=actor, created_at=now)
        for position, s in enumerate(spec.stages):
            probability = s.probability
            if probability is None:
                probability = 100 if s.semantic is StageSemantic.WON else 0
            stage = Stage.objects.create(
                version=version, code=s.code, name=s.name, position=position,
                semantic=s.semantic, sla=s.sla or "", probability=probability,
                skippable=s.skippable,
                executor=s.executor.model_dump(mode="json", exclude_none=True)
                if s.executor else None,
                executor_team=team_named(s.executor.team)
                if s.executor and s.executor.team else None,
                next_task=s.next_task.model_dump(mode="json") if s.next_task else None,
            )
            ChecklistItem.objects.bulk_create([
                ChecklistItem(stage=stage, code=item.code, title=item.title,
                              required=item.required, evidence=item.evidence, position=k)
                for k, item in enumerate(s.checklist)
            ])
        for reason in spec.lost_reasons:
            LostReason.objects.update_or_create(
                pipeline=pipeline, code=reason.code,
                defaults={"title": reason.title, "is_active": True},
                create_defaults={"title": reason.title, "created_at": now})
        pipeline.current_version = version
        pipeline.name = spec.name
        pipeline.save(update_fields=["current_version", "name"])
        event_record(stream=pipeline.stream, type=EventType.PIPELINE_VERSION_LOADED, actor=actor,
                     payload={"version": number, "digest": digest, "source": source[:200],
                              "stages": [s.code for s in spec.stages]})
    return LoadResult(pipeline, version, created=True)


def pipeline_dump(code: str, version: int | None = None) -> str:
    """A version (default: the current one) as YAML, defaults omitted; loading the current one
    back changes nothing."""
    pipeline = pipeline_by_code(code)
    found = (pipeline.current_version if version is None
             else pipeline.versions.filter(number=version).first())
    if found is None:
        what = f"version {version}" if version is not None else "a version"
        raise NotFound(f"pipeline {code!r} has no {what}", code="unknown_version")
    spec = PipelineSpec.model_validate(found.spec)
    return dump_yaml(spec.to_data())


def pipeline_set_active(*, actor: User | None, pipeline: Pipeline, active: bool) -> Pipeline:
    """Stop or resume accepting new tickets; tickets already running go on unchanged."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change pipelines")
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
        if pipeline.is_active == active:
            return pipeline
        pipeline.is_active = active
        pipeline.save(update_fields=["is_active"])
        event_record(stream=pipeline.stream, type=EventType.PIPELINE_UPDATED, actor=actor,
                     payload={"changes": {"is_active": [not active, active]}})
    return pipeline


def lost_reason_add(*, actor: User | None, code: str, title: str,
                    pipeline: Pipeline | None = None) -> LostReason:
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change lost reasons")
    code = (code or "").strip()
    title = " ".join((title or "").split())
    if not CODE.match(code):
        raise BadInput(f"{code!r} is not a code: use lower-case Latin letters, digits, - or _",
                       code="bad_code")
    if not title or len(title) > 200:
        raise BadInput("the title must be 1-200 characters", code="bad_title")
    with transaction.atomic():
        if LostReason.objects.filter(code=code, pipeline=pipeline).exists():
            raise Conflict(f"the lost reason {code!r} exists", code="lost_reason_exists")
        reason = LostReason.objects.create(code=code, title=title, pipeline=pipeline,
                                           created_at=clock.now())
        event_record(stream=f"lost_reason:{reason.pk}", type=EventType.LOST_REASON_ADDED,
                     actor=actor, new_stream=True,
                     payload={"code": code, "pipeline": pipeline.code if pipeline else None})
    return reason


def lost_reason_set_active(*, actor: User | None, reason: LostReason,
                           active: bool) -> LostReason:
    """Retire a reason (it stays on the tickets that used it) or bring it back."""
    require_role(actor_facts(actor) if actor else None, Role.ADMIN, what="change lost reasons")
    with transaction.atomic():
        reason = LostReason.objects.select_for_update().get(pk=reason.pk)
        if reason.is_active == active:
            return reason
        reason.is_active = active
        reason.save(update_fields=["is_active"])
        event_record(stream=f"lost_reason:{reason.pk}", type=EventType.LOST_REASON_UPDATED,
                     actor=actor, payload={"active": active})
    return reason
