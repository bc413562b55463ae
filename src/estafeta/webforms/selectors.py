"""Reads about web forms: the admins' list, the public form and the thank-you page."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import WebForm, WebFormSubmission


def webforms_search(text: str = "") -> QuerySet[WebForm]:
    """Every form (active first), matching ``text`` in its address, title or pipeline."""
    forms = WebForm.objects.select_related("pipeline")
    if text:
        forms = forms.filter(Q(slug__icontains=text) | Q(title__icontains=text)
                             | Q(pipeline__name__icontains=text)
                             | Q(pipeline__code__icontains=text))
    return forms.order_by("-is_active", "slug")


def webform_by_pk(pk: int) -> WebForm | None:
    return WebForm.objects.select_related("pipeline").filter(pk=pk).first()


def webform_public(slug: str) -> WebForm | None:
    """The form at ``/f/<slug>/`` if it accepts requests; ``None`` (a 404) otherwise."""
    return WebForm.objects.select_related("pipeline").filter(slug=slug, is_active=True).first()


def submission_for_thanks(slug: str, token: str) -> WebFormSubmission | None:
    """The submission behind a thank-you page; only its token finds it (never a number)."""
    if not token or len(token) > 64:
        return None
    return (WebFormSubmission.objects.select_related("ticket", "form")
            .filter(form__slug=slug, token=token).first())
