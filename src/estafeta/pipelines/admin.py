"""Admin for pipelines: read-only versions, stages and checklists; loading YAML; lost reasons.

A pipeline changes only by loading a new definition (``pipeline_load``), which appends a
version: "Add pipeline" is the upload page, and every pipeline page links to its YAML
(``pipeline_dump``). Lost reasons are added and retired through their services.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from estafeta.core.admin_base import (
    EstafetaAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    ServiceForm,
    actor_of,
    links,
    refusal_messages,
)
from estafeta.domain.errors import EstafetaError
from estafeta.domain.pipeline import PipelineSpec

from .models import ChecklistItem, LostReason, Pipeline, PipelineVersion, Stage
from .services import (
    lost_reason_add,
    lost_reason_set_active,
    pipeline_dump,
    pipeline_load,
    pipeline_set_active,
)
from .yamlio import MAX_BYTES, dump_yaml


def stages_table(version: PipelineVersion) -> SafeString:
    """The stages of a version with their checklists, as an escaped HTML table."""
    stages = version.stages.order_by("position").prefetch_related("items")
    rows = format_html_join("", (
        "<tr><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>"), (
        (s.position + 1, s.name, s.code, s.semantic, s.sla or "—", s.probability,
         checklist(s) or "—") for s in stages))
    return format_html(
        "<table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        _("stage"), _("semantic"), _("SLA"), _("probability, %"), _("checklist"), rows)


def checklist(stage: Stage) -> SafeString:
    items = sorted(stage.items.all(), key=lambda i: i.position)
    return format_html_join(mark_safe("<br>"), "{} <small>({}, {})</small>", (
        (i.title, i.evidence, _("required") if i.required else _("optional")) for i in items))


class PipelineUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("YAML file"), required=False,
        help_text=gettext_lazy("A pipeline definition, as written for “estafeta pipeline load”."))
    text = forms.CharField(label=gettext_lazy("…or paste it here"), required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 16, "cols": 100}))

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or self.cleaned_data
        has_file, has_text = bool(data.get("file")), bool((data.get("text") or "").strip())
        if has_file == has_text:
            raise ValidationError(_("Choose a YAML file or paste the definition (one of them)."))
        return data


class VersionInline(ReadOnlyInline):
    model = PipelineVersion
    fk_name = "pipeline"
    fields = ("number", "created_at", "created_by", "digest")
    ordering = ("-number",)
    show_change_link = True


@admin.register(Pipeline)
class PipelineAdmin(EstafetaAdmin):
    can_add = True  # "add" is loading a YAML definition
    list_display = ("name", "code", "current_version", "is_active", "created_at", "yaml")
    list_select_related = ("current_version",)
    search_fields = ("code", "name")
    inlines = (VersionInline,)
    actions = ("close_to_new", "open_to_new")
    fields = ("code", "name", "is_active", "current_version", "created_at", "tools",
              "definition")
    readonly_fields = ("tools", "definition")

    @admin.action(description=gettext_lazy("Stop accepting new tickets"), permissions=["write"])
    def close_to_new(self, request: HttpRequest, queryset: QuerySet[Pipeline]) -> None:
        actor = actor_of(request)
        self.call_each(request, queryset, lambda p: pipeline_set_active(
            actor=actor, pipeline=p, active=False),
            _("Pipelines closed to new tickets: %(count)d."))

    @admin.action(description=gettext_lazy("Accept new tickets again"), permissions=["write"])
    def open_to_new(self, request: HttpRequest, queryset: QuerySet[Pipeline]) -> None:
        actor = actor_of(request)
        self.call_each(request, queryset, lambda p: pipeline_set_active(
            actor=actor, pipeline=p, active=True),
            _("Pipelines open to new tickets: %(count)d."))

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/yaml/", self.admin_site.admin_view(self.yaml_view),
                 name="pipelines_pipeline_yaml"),
            *super().get_urls(),
        ]

    @admin.display(description="YAML")
    def yaml(self, obj: Pipeline) -> SafeString:
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:pipelines_pipeline_yaml", args=[obj.pk]),
                           _("download"))

    @admin.display(description=gettext_lazy("definition file"))
    def tools(self, obj: Pipeline) -> SafeString:
        return links([
            (reverse("admin:pipelines_pipeline_yaml", args=[obj.pk]), _("Download YAML")),
            (reverse("admin:pipelines_pipeline_add"), _("Load a new version…")),
        ])

    @admin.display(description=gettext_lazy("current stages"))
    def definition(self, obj: Pipeline) -> SafeString | str:
        return stages_table(obj.current_version) if obj.current_version else "—"

    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Load a pipeline definition: a new pipeline or a new version of an existing one."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        post = request.method == "POST"
        form = PipelineUploadForm(request.POST, request.FILES) if post else PipelineUploadForm()
        if post and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload:
                # One byte over the limit is enough for the service to refuse a large file.
                text: str | bytes = upload.read(MAX_BYTES + 1)
                source = str(upload.name)[:200]
            else:
                text, source = form.cleaned_data["text"], "pasted text"
            try:
                result = pipeline_load(actor=actor_of(request), text=text, source=source)
            except EstafetaError as exc:
                for message in refusal_messages(exc):
                    form.add_error(None, message)
            else:
                pipeline, number = result.pipeline, result.version.number
                if result.created:
                    self.log_change(request, pipeline,
                                    _("Loaded version %(number)d from %(source)s.")
                                    % {"number": number, "source": source})
                    message = _("%(pipeline)s: loaded version %(number)d.")
                else:
                    message = _("%(pipeline)s: the definition equals version %(number)d; "
                                "nothing was changed.")
                self.message_user(request, message % {"pipeline": pipeline, "number": number},
                                  messages.SUCCESS)
                return self.redirect_to(pipeline)
        intro = [_("A definition with a new code creates a pipeline; one with an existing code "
                   "becomes that pipeline's next version. Tickets already running keep the "
                   "version they started with.")]
        return self.form_page(request, title=_("Load a pipeline from YAML"), form=form,
                              submit=_("Load"), intro=intro)

    def yaml_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        pipeline: Pipeline = self.object_or_404(request, object_id)
        try:
            text = pipeline_dump(pipeline.code)
        except EstafetaError as exc:
            self.refuse(request, exc)
            return self.redirect_to(pipeline)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{pipeline.code}.yaml"'
        return response


class StageInline(ReadOnlyInline):
    model = Stage
    fields = ("position", "code", "name", "semantic", "sla", "probability", "skippable",
              "checklist_items")
    readonly_fields = ("checklist_items",)
    ordering = ("position",)
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Stage]:
        return super().get_queryset(request).prefetch_related("items")

    @admin.display(description=gettext_lazy("checklist"))
    def checklist_items(self, obj: Stage) -> SafeString:
        return checklist(obj)


@admin.register(PipelineVersion)
class PipelineVersionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "pipeline", "number", "created_at", "created_by")
    list_filter = ("pipeline",)
    list_select_related = ("pipeline", "created_by")
    ordering = ("pipeline__code", "-number")
    inlines = (StageInline,)
    fields = ("pipeline", "number", "created_at", "created_by", "digest", "definition")
    readonly_fields = ("definition",)

    @admin.display(description=gettext_lazy("definition (YAML)"))
    def definition(self, obj: PipelineVersion) -> SafeString:
        text = dump_yaml(PipelineSpec.model_validate(obj.spec).to_data())
        return format_html('<pre style="margin:0">{}</pre>', text)


class ChecklistItemInline(ReadOnlyInline):
    model = ChecklistItem
    fields = ("position", "code", "title", "required", "evidence")
    ordering = ("position",)


@admin.register(Stage)
class StageAdmin(ReadOnlyAdmin):
    list_display = ("name", "code", "version", "position", "semantic", "sla", "probability")
    list_filter = ("version__pipeline", "semantic")
    list_select_related = ("version__pipeline",)
    search_fields = ("code", "name")
    ordering = ("version__pipeline__code", "-version__number", "position")
    inlines = (ChecklistItemInline,)
    fields = ("version", "position", "code", "name", "semantic", "sla", "probability",
              "skippable", "executor", "next_task")


class LostReasonAddForm(ServiceForm):
    class Meta:
        model = LostReason
        fields = ("code", "title", "pipeline")

    def perform(self) -> LostReason:
        data = self.cleaned_data
        return lost_reason_add(actor=self.actor, code=data["code"], title=data["title"],
                               pipeline=data["pipeline"])


@admin.register(LostReason)
class LostReasonAdmin(ServiceAdmin):
    can_add = True
    add_form = LostReasonAddForm
    list_display = ("title", "code", "pipeline", "is_active", "created_at")
    list_filter = ("is_active", "pipeline")
    list_select_related = ("pipeline",)
    search_fields = ("code", "title")
    actions = ("retire", "restore")
    fields = ("code", "title", "pipeline", "is_active", "created_at")
    add_fieldsets = ((None, {"fields": ("code", "title", "pipeline"),
                             "description": gettext_lazy(
                                 "Without a pipeline the reason is offered everywhere.")}),)

    @admin.action(description=gettext_lazy("Retire the selected lost reasons"),
                  permissions=["write"])
    def retire(self, request: HttpRequest, queryset: QuerySet[LostReason]) -> None:
        actor = actor_of(request)
        self.call_each(request, queryset, lambda reason: lost_reason_set_active(
            actor=actor, reason=reason, active=False), _("Lost reasons retired: %(count)d."))

    @admin.action(description=gettext_lazy("Restore the selected lost reasons"),
                  permissions=["write"])
    def restore(self, request: HttpRequest, queryset: QuerySet[LostReason]) -> None:
        actor = actor_of(request)
        self.call_each(request, queryset, lambda reason: lost_reason_set_active(
            actor=actor, reason=reason, active=True), _("Lost reasons restored: %(count)d."))
