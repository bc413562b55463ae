"""What every Estafeta admin page shares: nothing is deleted, and every write is a service call.

The Django admin is a configuration tool (users, teams, pipelines). It keeps promise 3 and 5:

- ``EstafetaAdmin`` and ``ReadOnlyInline`` have no delete permission, no delete view and no
  delete action, whatever the user's flags.
- ``ServiceAdmin`` saves through a ``ServiceForm``: once Django's own validation passes, the
  form calls one service, so the change writes its event; a refusal (``EstafetaError``) becomes
  a form error on the same page, never a 500.
- Permissions come from Estafeta's roles, not Django's per-model permissions (which Estafeta does
  not use): a superuser, or an active staff member whose role is in ``view_roles`` /
  ``write_roles``. The admin site itself already requires ``is_staff``.
- Pages the admin has no template for (deactivate a user, anonymise a client, load a pipeline)
  render ``FORM_PAGE``, which extends the admin's base template and escapes everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import engines
from django.template.backends.base import BaseEngine
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from estafeta.domain.codes import Role
from estafeta.domain.errors import DeletionRefused, EstafetaError, PipelineInvalid

if TYPE_CHECKING:
    from estafeta.accounts.models import User

ADMIN_ONLY: tuple[Role, ...] = (Role.ADMIN,)


def actor_of(request: HttpRequest) -> User:
    """The acting user of an admin request (the admin site lets only logged-in staff in)."""
    return cast("User", request.user)


def staff_with_role(request: HttpRequest, roles: Iterable[Role]) -> bool:
    """A superuser, or an active staff member whose role is one of ``roles``."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    return bool(user.is_superuser or getattr(user, "role", None) in set(roles))


def refusal_messages(exc: EstafetaError) -> list[str]:
    """What to show for a refused service call: every problem of an invalid pipeline, else one."""
    if isinstance(exc, PipelineInvalid) and exc.problems:
        return [str(p) for p in exc.problems]
    return [exc.message]


def show_json(value: Any) -> SafeString:
    """A JSON value as an escaped, indented ``<pre>`` block."""
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)


def links(pairs: Iterable[tuple[str, str]]) -> SafeString:
    """``(url, label)`` pairs as escaped links separated by a middle dot."""
    return format_html_join(" · ", '<a href="{}">{}</a>', pairs)


def admin_url(obj: models.Model, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


# --- pages without a template of their own -----------------------------------------------------

FORM_PAGE = """{% extends "admin/base_site.html" %}
{% load i18n admin_urls static %}
{% block title %}{% if form.errors %}{% translate "Error:" %} {% endif %}
{{ block.super }}{% endblock %}
{% block extrastyle %}{{ block.super }}
<link rel="stylesheet" href="{% static "admin/css/forms.css" %}">{% endblock %}
{% block bodyclass %}{{ block.super }} {{ opts.app_label }}-{{ opts.model_name }}
change-form{% endblock %}
{% block breadcrumbs %}
<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">
{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">
{{ opts.verbose_name_plural|capfirst }}</a>
{% if original %}&rsaquo;
<a href="{% url opts|admin_urlname:'change' original.pk|admin_urlquote %}">
{{ original|truncatewords:"18" }}</a>{% endif %}
&rsaquo; {{ title }}
</div>
{% endblock %}
{% block content %}<div id="content-main">
{% for line in intro %}<p>{{ line }}</p>{% endfor %}
<form method="post" novalidate
{% if form.is_multipart %} enctype="multipart/form-data"{% endif %}>{% csrf_token %}
{% if form.errors %}<p class="errornote">{% translate "Please correct the errors below." %}</p>
{{ form.non_field_errors }}{% endif %}
<fieldset class="module aligned">
{% for field in form %}
<div class="form-row field-{{ field.name }}">
  {{ field.errors }}
  <div class="flex-container">{{ field.label_tag }} {{ field }}</div>
  {% if field.help_text %}<div class="help">{{ field.help_text|safe }}</div>{% endif %}
</div>
{% endfor %}
</fieldset>
<div class="submit-row"><input type="submit" value="{{ submit }}" class="default"></div>
</form></div>
{% endblock %}
"""


@cache
def _form_page() -> Any:
    engine: BaseEngine = engines["django"]
    return engine.from_string(FORM_PAGE)


# --- model admins -------------------------------------------------------------------------------


class EstafetaAdmin(admin.ModelAdmin):
    """No delete anywhere; view and write permissions from roles; helpers for service calls."""

    view_roles: ClassVar[tuple[Role, ...]] = ADMIN_ONLY
    write_roles: ClassVar[tuple[Role, ...]] = ADMIN_ONLY
    can_add: ClassVar[bool] = False
    can_change: ClassVar[bool] = False

    # Permissions -------------------------------------------------------------------------------
    def has_module_permission(self, request: HttpRequest) -> bool:
        return staff_with_role(request, self.view_roles)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return staff_with_role(request, self.view_roles)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.can_add and staff_with_role(request, self.write_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.can_change and staff_with_role(request, self.write_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # promise 3

    def has_write_permission(self, request: HttpRequest) -> bool:
        """For ``@admin.action(permissions=["write"])`` and the custom views."""
        return staff_with_role(request, self.write_roles)

    def require_write(self, request: HttpRequest) -> None:
        if not self.has_write_permission(request):
            raise PermissionDenied

    # No deletion, even if someone reaches the URL or re-enables the action ----------------------
    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict[str, Any] | None = None) -> NoReturn:
        raise PermissionDenied

    def delete_model(self, request: HttpRequest, obj: Any) -> NoReturn:
        raise DeletionRefused(f"{self.opts.verbose_name_plural} are never deleted in Estafeta")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> NoReturn:
        raise DeletionRefused(f"{self.opts.verbose_name_plural} are never deleted in Estafeta")

    # Helpers for custom views and actions --------------------------------------------------------
    def object_or_404(self, request: HttpRequest, object_id: str) -> Any:
        from django.contrib.admin.utils import unquote
        from django.http import Http404

        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(_("There is no such %(what)s.") % {"what": self.opts.verbose_name})
        return obj

    def form_page(self, request: HttpRequest, *, title: str, form: forms.BaseForm,
                  submit: str, original: models.Model | None = None,
                  intro: Iterable[str] = ()) -> HttpResponse:
        """Render ``form`` on an admin-styled page (``FORM_PAGE``)."""
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": title, "form": form, "submit": submit,
            "original": original, "intro": list(intro),
        }
        return HttpResponse(_form_page().render(context, request))

    def redirect_to(self, obj: models.Model | None = None) -> HttpResponseRedirect:
        if obj is None:
            opts = self.opts
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}"
                                                "_changelist"))
        return HttpResponseRedirect(admin_url(obj))

    def refuse(self, request: HttpRequest, exc: EstafetaError, obj: Any = None) -> None:
        prefix = f"{obj}: " if obj is not None else ""
        for message in refusal_messages(exc):
            self.message_user(request, prefix + message, messages.ERROR)

    def call_each(self, request: HttpRequest, objects: Iterable[Any],
                  call: Callable[[Any], object], done: str) -> int:
        """Call a service per object (each its own transaction); report refusals one by one.

        ``done`` is a message with ``%(count)d``; returns how many calls succeeded.
        """
        count = 0
        for obj in objects:
            try:
                call(obj)
            except EstafetaError as exc:
                self.refuse(request, exc, obj)
            else:
                count += 1
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)
        return count

    def single(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """The one object an action was asked for, or None (with a message) if not exactly one."""
        objects = list(queryset[:2])
        if len(objects) != 1:
            self.message_user(request, _("Select exactly one %(what)s for this action.")
                              % {"what": self.opts.verbose_name}, messages.WARNING)
            return None
        return objects[0]


class ReadOnlyAdmin(EstafetaAdmin):
    """History and the things services own: looked at, never added or changed here."""

    can_add = False
    can_change = False


class ServiceForm(forms.ModelForm):
    """A model form whose saving is one service call.

    The call is made at the end of validation, when every field and model check has passed, so
    that a refusal becomes a form error on the same page. ``instance`` is then the service's
    result; the admin's own ``save`` writes nothing more (see ``ServiceAdmin``).
    """

    actor: Any = None  # the acting user, set by ``ServiceAdmin.get_form``

    def check_before_service(self) -> None:
        """Validation that needs ``self.instance`` filled from the form (passwords)."""

    def perform(self) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # private in django-stubs, public in Django
        self.check_before_service()
        if self.errors:
            return
        try:
            self.instance = self.perform()
        except EstafetaError as exc:
            for message in refusal_messages(exc):
                self.add_error(None, message)


class ServiceAdmin(EstafetaAdmin):
    """Add and change pages whose forms are ``ServiceForm``s.

    ``add_form`` / ``add_fieldsets`` serve the add page, ``form`` / ``fieldsets`` the change
    page; ``readonly_fields`` apply to the change page only.
    """

    add_form: ClassVar[type[ServiceForm] | None] = None
    add_fieldsets: ClassVar[Any] = None

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and self.add_fieldsets is not None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return super().get_readonly_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        if obj is None and self.add_form is not None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user,
                                             "__module__": form.__module__})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: Any) -> None:
        """The service called by the form has saved everything, with its event."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        """Nothing related is edited on these pages."""


# --- inlines ------------------------------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    """A related list shown on a parent page: never added to, changed or deleted from here."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    view_roles: ClassVar[tuple[Role, ...]] = ADMIN_ONLY

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return staff_with_role(request, self.view_roles)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
