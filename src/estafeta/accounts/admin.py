"""Admin for people: users, teams and absences. Every write is a call to accounts.services.

Deactivation hands a user's open work over, so it is its own page (``<id>/deactivate/``) that
asks for the successor; passwords are set on ``<id>/password/`` through ``user_set_password``.
Flags that follow from the role (staff, superuser) and the active flag are read-only here.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import AdminPasswordChangeForm, SetPasswordMixin, UsernameField
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters

from estafeta.core.admin_base import (
    ServiceAdmin,
    ServiceForm,
    actor_of,
    admin_url,
    refusal_messages,
)
from estafeta.domain.codes import Role, TaskStatus, TicketStatus
from estafeta.domain.errors import EstafetaError

from .models import Absence, Team, User
from .services import (
    absence_add,
    absence_cancel,
    team_create,
    team_rename,
    team_set_head,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_password,
    user_update,
)

# Estafeta has roles, not Django groups: a Group page would only offer a way to delete.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


# --- users --------------------------------------------------------------------------------------


class UserAddForm(SetPasswordMixin, ServiceForm):
    password1, password2 = SetPasswordMixin.create_password_fields()

    class Meta:
        model = User
        fields = ("username", "role", "team", "first_name", "last_name", "email", "language")
        field_classes = {"username": UsernameField}

    def clean(self) -> dict[str, Any] | None:
        self.validate_passwords()
        return super().clean()

    def check_before_service(self) -> None:
        self.validate_password_for_user(self.instance)

    def perform(self) -> User:
        data = self.cleaned_data
        return user_create(
            actor=self.actor, username=data["username"], role=data["role"],
            password=data["password1"], team=data["team"], email=data["email"] or "",
            first_name=data["first_name"] or "", last_name=data["last_name"] or "",
            language=data["language"],
        )


class UserChangeForm(ServiceForm):
    class Meta:
        model = User
        fields = ("role", "team", "first_name", "last_name", "email", "language")

    def perform(self) -> User:
        data = self.cleaned_data
        return user_update(
            actor=self.actor, user=self.instance, role=data["role"], team=data["team"],
            email=data["email"] or "", first_name=data["first_name"] or "",
            last_name=data["last_name"] or "", language=data["language"],
        )


class PasswordForm(AdminPasswordChangeForm):
    """Django's admin password form, without "disable password login" (no service does it)."""

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.fields.pop("usable_password", None)
        self.fields["password1"].required = True
        self.fields["password2"].required = True


class DeactivateForm(forms.Form):
    successor = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label=gettext_lazy("Successor"),
        help_text=gettext_lazy(
            "Receives every open task, owned ticket and current stage of this user, in the same "
            "transaction. Empty means the head of the user's team. If the user heads a team, "
            "the successor must be a head of sales and takes the team over too."),
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False, max_length=500,
                             widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["successor"])
        field.queryset = User.objects.filter(is_active=True).exclude(pk=user.pk)
        team = user.team
        if team is not None and team.head_id != user.pk:
            field.initial = team.head_id


@admin.register(User)
class UserAdmin(ServiceAdmin):
    can_add = True
    can_change = True
    form = UserChangeForm
    add_form = UserAddForm
    list_display = ("username", "full_name", "role", "team", "is_active", "last_login")
    list_filter = ("role", "team", ("is_active", admin.BooleanFieldListFilter))
    search_fields = ("username", "first_name", "last_name", "email")
    list_select_related = ("team",)
    ordering = ("username",)
    actions = ("deactivate", "reactivate")
    readonly_fields = (
        "username", "password_status", "account", "is_active", "deactivated_at", "is_staff",
        "is_superuser", "groups", "user_permissions", "last_login", "date_joined",
    )
    fieldsets = (
        (None, {"fields": ("username", "password_status", "account")}),
        (gettext_lazy("Role"), {"fields": ("role", "team", "language")}),
        (gettext_lazy("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (gettext_lazy("Status"), {
            "fields": ("is_active", "deactivated_at", "is_staff", "is_superuser", "groups",
                       "user_permissions"),
            "description": gettext_lazy(
                "Staff and superuser follow the admin role. Deactivate a user with "
                "“Deactivate…” above: their open work is handed over to a successor."),
        }),
        (gettext_lazy("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": (
            "username", "role", "team", "first_name", "last_name", "email", "language",
            "password1", "password2")}),
    )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/password/", wrap(self.password_view),
                 name="accounts_user_password"),
            path("<path:object_id>/deactivate/", wrap(self.deactivate_view),
                 name="accounts_user_deactivate"),
            *super().get_urls(),
        ]

    @method_decorator(sensitive_post_parameters())
    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().add_view(request, form_url, extra_context)

    # Columns and read-only fields ----------------------------------------------------------------
    @admin.display(description=gettext_lazy("name"), ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    @admin.display(description=gettext_lazy("password"))
    def password_status(self, obj: User) -> SafeString:
        state = _("set") if obj.has_usable_password() else _("not set (cannot log in)")
        return format_html('{} · <a href="{}">{}</a>', state,
                           reverse("admin:accounts_user_password", args=[obj.pk]),
                           _("Set a new password…"))

    @admin.display(description=gettext_lazy("account"))
    def account(self, obj: User) -> SafeString | str:
        if obj.is_active:
            return format_html('{} · <a href="{}">{}</a>', _("active"),
                               reverse("admin:accounts_user_deactivate", args=[obj.pk]),
                               _("Deactivate and hand the work over…"))
        return _("deactivated; reactivate with the action on the list of users")

    # Actions -------------------------------------------------------------------------------------
    @admin.action(description=gettext_lazy("Deactivate the selected user (asks for a successor)"),
                  permissions=["write"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> Any:
        user = self.single(request, queryset)
        if user is None:
            return None
        return HttpResponseRedirect(reverse("admin:accounts_user_deactivate", args=[user.pk]))

    @admin.action(description=gettext_lazy("Reactivate the selected users"),
                  permissions=["write"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self.call_each(request, queryset,
                       lambda user: user_reactivate(actor=actor_of(request), user=user),
                       _("Users reactivated: %(count)d."))

    # Pages ---------------------------------------------------------------------------------------
    @method_decorator(sensitive_post_parameters())
    def password_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self.require_write(request)
        user: User = self.object_or_404(request, object_id)
        form = PasswordForm(user, request.POST) if request.method == "POST" else PasswordForm(user)
        if request.method == "POST" and form.is_valid():
            try:
                user_set_password(actor=actor_of(request), user=user,
                                  password=form.cleaned_data["password1"])
            except EstafetaError as exc:
                for message in refusal_messages(exc):
                    form.add_error(None, message)
            else:
                if user.pk == request.user.pk:  # keep the admin who changed their own logged in
                    update_session_auth_hash(request, User.objects.get(pk=user.pk))
                self.log_change(request, user, [{"changed": {"fields": ["password"]}}])
                self.message_user(request, _("The password of %(user)s was set.")
                                  % {"user": user.username}, messages.SUCCESS)
                return self.redirect_to(user)
        return self.form_page(request, title=_("Set a password"), form=form,
                              submit=_("Set password"), original=user)

    def deactivate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from estafeta.tasks.models import Task
        from estafeta.tickets.models import StageVisit, Ticket

        self.require_write(request)
        user: User = self.object_or_404(request, object_id)
        if not user.is_active:
            self.message_user(request, _("%(user)s is already deactivated.")
                              % {"user": user.username}, messages.WARNING)
            return self.redirect_to(user)
        post = request.method == "POST"
        form = DeactivateForm(user, request.POST) if post else DeactivateForm(user)
        if post and form.is_valid():
            try:
                handover = user_deactivate(
                    actor=actor_of(request), user=user,
                    successor=form.cleaned_data["successor"], reason=form.cleaned_data["reason"])
            except EstafetaError as exc:
                for message in refusal_messages(exc):
                    form.add_error(None, message)
            else:
                self.log_change(request, user, _("Deactivated; work handed over to %(user)s.")
                                % {"user": handover.successor.username})
                self.message_user(request, _(
                    "%(user)s is deactivated. Handed over to %(successor)s: tickets "
                    "%(tickets)d, open tasks %(tasks)d, teams %(teams)d.") % {
                    "user": user.username, "tickets": handover.tickets, "tasks": handover.tasks,
                    "teams": handover.teams, "successor": handover.successor,
                }, messages.SUCCESS)
                return self.redirect_to(user)
        work = {
            "tickets": Ticket.objects.filter(owner=user, status=TicketStatus.OPEN).count(),
            "tasks": Task.objects.filter(assignee=user, status=TaskStatus.OPEN).count(),
            "stages": StageVisit.objects.filter(executor=user, closed_at__isnull=True).count(),
            "teams": ", ".join(t.name for t in Team.objects.filter(head=user)) or _("none"),
        }
        intro = [
            _("%(user)s will no longer be able to log in or receive work.") % {"user": user},
            _("Work that moves to the successor: owned open tickets %(tickets)d, open tasks "
              "%(tasks)d, current stages %(stages)d; teams headed: %(teams)s.") % work,
        ]
        return self.form_page(request, title=_("Deactivate"), form=form,
                              submit=_("Deactivate and hand over"), original=user, intro=intro)


# --- teams --------------------------------------------------------------------------------------


class TeamAddForm(ServiceForm):
    class Meta:
        model = Team
        fields = ("name", "head")

    def perform(self) -> Team:
        return team_create(actor=self.actor, name=self.cleaned_data["name"],
                           head=self.cleaned_data["head"])


class TeamChangeForm(ServiceForm):
    class Meta:
        model = Team
        fields = ("name", "head")

    def perform(self) -> Team:
        # Two services, one outcome: if the second refuses, the rename is undone too.
        with transaction.atomic():
            team = Team.objects.get(pk=self.instance.pk)
            team = team_rename(actor=self.actor, team=team, name=self.cleaned_data["name"])
            return team_set_head(actor=self.actor, team=team, head=self.cleaned_data["head"])


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    view_roles = write_roles = (Role.ADMIN, Role.DIRECTOR)
    can_add = True
    can_change = True
    form = TeamChangeForm
    add_form = TeamAddForm
    list_display = ("name", "head", "member_count", "created_at")
    list_select_related = ("head",)
    search_fields = ("name",)
    readonly_fields = ("members", "created_at")
    fieldsets = ((None, {"fields": ("name", "head", "members", "created_at")}),)
    add_fieldsets = ((None, {"fields": ("name", "head")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest,
                                 **kwargs: Any) -> Any:
        if db_field.name == "head":
            kwargs["queryset"] = User.objects.filter(role=Role.HEAD, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("members"), ordering="member_total")
    def member_count(self, obj: Team) -> int:
        return int(getattr(obj, "member_total", 0))

    @admin.display(description=gettext_lazy("members"))
    def members(self, obj: Team) -> SafeString | str:
        users = list(obj.members.order_by("username"))
        if not users:
            return "—"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> · {}{}', (
            (admin_url(u), str(u), u.role, "" if u.is_active else _(" (deactivated)"))
            for u in users))


# --- absences -----------------------------------------------------------------------------------


class AbsenceAddForm(ServiceForm):
    class Meta:
        model = Absence
        fields = ("user", "starts_at", "ends_at", "reason")

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or self.cleaned_data
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("An absence must end after it starts."))
        return data

    def perform(self) -> Absence:
        data = self.cleaned_data
        return absence_add(actor=self.actor, user=data["user"], starts_at=data["starts_at"],
                           ends_at=data["ends_at"], reason=data["reason"] or "")


@admin.register(Absence)
class AbsenceAdmin(ServiceAdmin):
    view_roles = write_roles = (Role.ADMIN, Role.DIRECTOR, Role.HEAD)
    can_add = True
    add_form = AbsenceAddForm
    list_display = ("user", "starts_at", "ends_at", "reason", "cancelled_at", "created_by")
    list_filter = (("cancelled_at", admin.EmptyFieldListFilter), "user__team")
    list_select_related = ("user", "created_by")
    search_fields = ("user__username", "user__first_name", "user__last_name", "reason")
    actions = ("cancel",)
    fieldsets = ((None, {"fields": ("user", "starts_at", "ends_at", "reason", "created_by",
                                    "created_at", "cancelled_at")}),)
    add_fieldsets = ((None, {"fields": ("user", "starts_at", "ends_at", "reason")}),)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest,
                                 **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description=gettext_lazy("Cancel the selected absences"),
                  permissions=["write"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Absence]) -> None:
        self.call_each(request, queryset.select_related("user"),
                       lambda absence: absence_cancel(actor=actor_of(request), absence=absence),
                       _("Absences cancelled: %(count)d."))
