"""Pipelines and their versions.

Loading a changed definition creates a new ``PipelineVersion`` with its own ``Stage`` and
``ChecklistItem`` rows; versions are append-only, so a running ticket keeps the exact rules it
started with. ``Pipeline.current_version`` is what new tickets get.
"""

from __future__ import annotations

from functools import cached_property

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import EvidenceKind, StageSemantic
from estafeta.domain.durations import Duration
from estafeta.domain.pipeline import ExecutorSpec, ItemFacts, StageFacts, TaskTemplateSpec


class Pipeline(UndeletableModel):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    current_version = models.ForeignKey("PipelineVersion", on_delete=models.PROTECT, null=True,
                                        blank=True, related_name="+")
    is_active = models.BooleanField(_("accepts new tickets"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def stream(self) -> str:
        return f"pipeline:{self.pk}"


# (version id, digest) -> the version / its stages. A version is append-only, so an entry
# never goes stale; the digest in the key guards against an id reused after a rolled-back load
# (the test suite does that all the time, and clears these between tests).
_VERSIONS: dict[tuple[int, str], PipelineVersion] = {}
_STAGES: dict[tuple[int, str], list[Stage]] = {}


def clear_version_cache() -> None:
    _VERSIONS.clear()
    _STAGES.clear()


def cached_version(pk: int, digest: str) -> PipelineVersion:
    """The version ``pk`` (whose digest the caller has just read), loaded once per process."""
    version = _VERSIONS.get((pk, digest))
    if version is None:
        version = PipelineVersion.objects.select_related("pipeline").get(pk=pk)
        _VERSIONS[(pk, digest)] = version
    return version


class PipelineVersion(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True

    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    spec = models.JSONField(_("definition"))
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("pipeline version")
        verbose_name_plural = _("pipeline versions")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "number"], name="pipeline_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.code} v{self.number}"

    @property
    def number_prefix(self) -> str | None:
        prefix = self.spec.get("number_prefix")
        return str(prefix) if prefix else None

    @property
    def stage_list(self) -> list[Stage]:
        """The version's stages in order, with their checklist items (cached per process:
        versions never change once written, triggers see to it)."""
        key = (self.pk, self.digest)
        stages = _STAGES.get(key)
        if stages is None:
            stages = list(self.stages.order_by("position").prefetch_related("items"))
            _STAGES[key] = stages
        return stages

    def stage_facts(self) -> list[StageFacts]:
        return [s.facts for s in self.stage_list]


class Stage(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True

    version = models.ForeignKey(PipelineVersion, on_delete=models.PROTECT, related_name="stages")
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveSmallIntegerField()
    semantic = models.CharField(max_length=8, choices=[(s.value, s.value) for s in StageSemantic],
                                default=StageSemantic.OPEN)
    sla = models.CharField(_("SLA target (business time)"), max_length=40, blank=True)
    probability = models.PositiveSmallIntegerField(_("probability, %"), default=0)
    skippable = models.BooleanField(default=False)
    executor = models.JSONField(null=True, blank=True)
    # The team an executor rule names, resolved when the version is loaded (renaming the team
    # later does not break running tickets).
    executor_team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, null=True,
                                      blank=True, related_name="+")
    next_task = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="stage_code_unique"),
            models.UniqueConstraint(fields=["version", "position"], name="stage_position_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def facts(self) -> StageFacts:
        return StageFacts(self.code, StageSemantic(self.semantic), self.skippable)

    @property
    def is_open(self) -> bool:
        return self.semantic == StageSemantic.OPEN

    @cached_property
    def executor_rule(self) -> ExecutorSpec | None:
        return ExecutorSpec.model_validate(self.executor) if self.executor else None

    @cached_property
    def task_template(self) -> TaskTemplateSpec | None:
        return TaskTemplateSpec.model_validate(self.next_task) if self.next_task else None

    @property
    def sla_target(self) -> Duration | None:
        return Duration.parse(self.sla) if self.sla else None

    def item_facts(self) -> list[ItemFacts]:
        return [i.facts for i in self.items.all()]


class ChecklistItem(UndeletableModel):
    ESTAFETA_APPEND_ONLY = True

    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="items")
    code = models.SlugField(_("code"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    required = models.BooleanField(_("required"), default=True)
    evidence = models.CharField(_("evidence"), max_length=16, default=EvidenceKind.NONE,
                                choices=[(k.value, k.value) for k in EvidenceKind])
    position = models.PositiveSmallIntegerField()

    class Meta:
        verbose_name = _("checklist item")
        verbose_name_plural = _("checklist items")
        ordering = ["stage", "position"]
        constraints = [
            models.UniqueConstraint(fields=["stage", "code"], name="checklist_item_unique"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def facts(self) -> ItemFacts:
        return ItemFacts(self.code, self.title, self.required, EvidenceKind(self.evidence))


class LostReason(UndeletableModel):
    """Why a ticket was lost. Global (no pipeline) or a pipeline's own; retired, not deleted."""

    code = models.SlugField(_("code"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="lost_reasons")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("lost reason")
        verbose_name_plural = _("lost reasons")
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(pipeline__isnull=True),
                                    name="lost_reason_global_unique"),
            models.UniqueConstraint(fields=["pipeline", "code"],
                                    condition=Q(pipeline__isnull=False),
                                    name="lost_reason_pipeline_unique"),
        ]

    def __str__(self) -> str:
        return self.title


class Rotation(models.Model):
    """Where round robin stopped for one team and role; locked while choosing the next person."""

    key = models.CharField(max_length=80, unique=True)
    last_user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                  related_name="+")

    def __str__(self) -> str:
        return self.key


