"""Signing in and out, the person's password and language."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from estafeta.accounts.services import user_change_own_password, user_set_own_language
from estafeta.domain.codes import Role
from estafeta.domain.errors import EstafetaError

from ..forms import LanguageForm, PasswordChangeForm
from .common import refusal


class LoginView(auth_views.LoginView):
    template_name = "web/auth/login.html"
    authentication_form = AuthenticationForm
    redirect_authenticated_user = True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role starts where its work is."""
    role = Role(request.user.role)  # type: ignore[union-attr]
    if role == Role.ADMIN:
        return redirect("web:settings")
    if role == Role.OPERATOR:
        return redirect("web:ticket_new")
    if role == Role.DIRECTOR:
        return redirect("web:board")
    return redirect("web:tasks")


@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(request, "web/auth/account.html", {
        "language_form": LanguageForm(initial={"language": user.language}),  # type: ignore[union-attr]
        "password_form": PasswordChangeForm(user),  # type: ignore[arg-type]
    })


@login_required
@require_POST
def password(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = PasswordChangeForm(user, request.POST)  # type: ignore[arg-type]
    if form.is_valid():
        try:
            user_change_own_password(actor=user, old_password=form.cleaned_data["old_password"],  # type: ignore[arg-type]
                                     new_password=form.cleaned_data["new_password1"])
        except EstafetaError as exc:
            status = refusal(request, exc)
        else:
            update_session_auth_hash(request, user)  # type: ignore[arg-type]
            messages.success(request, _("Your password has been changed."))
            return redirect("web:account")
    else:
        status = 400
    return render(request, "web/auth/account.html", {
        "language_form": LanguageForm(initial={"language": user.language}),  # type: ignore[union-attr]
        "password_form": form,
    }, status=status)


@require_POST
def language(request: HttpRequest) -> HttpResponse:
    """Signed in: saved on the person (their language everywhere). Not signed in: a cookie."""
    form = LanguageForm(request.POST)
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                           require_https=request.is_secure()):
        target = "web:account" if request.user.is_authenticated else "web:login"
    if not form.is_valid():
        messages.error(request, _("Choose one of the offered languages."))
        return redirect(target)
    code = form.cleaned_data["language"]
    translation.activate(code)
    if request.user.is_authenticated:
        user_set_own_language(actor=request.user, language=code)
        messages.success(request, _("Language saved."))
    response = redirect(target)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=365 * 24 * 3600,
                        samesite="Lax", secure=request.is_secure())
    return response


urlpatterns = [
    path("", home, name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account, name="account"),
    path("account/password/", password, name="password"),
    path("language/", language, name="language"),
]
