"""Public request forms, one or more per pipeline, and the submissions they took in.

A form is never deleted (it is deactivated: its address then answers 404). A submission is the
record of one accepted request: which ticket it made, the unguessable token of its thank-you page,
and keyed hashes of the sender's address, email and phone, which is all the rate limit needs (no
personal data is kept here: the client and the ticket hold it).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from estafeta.core.models import UndeletableModel


class FieldMode(models.TextChoices):
    HIDDEN = "hidden", _("not shown")
    OPTIONAL = "optional", _("optional")
    REQUIRED = "required", _("required")


# The fields a form may show, in the order they are shown.
FIELDS = ("name", "phone", "email", "message")


class WebForm(UndeletableModel):
    slug = models.SlugField(pgettext_lazy("web form", "address"), max_length=60, unique=True)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.PROTECT,
                                 related_name="webforms", verbose_name=_("pipeline"))
    title = models.CharField(_("title"), max_length=200)
    is_active = models.BooleanField(_("accepts requests"), default=True)
    name_field = models.CharField(pgettext_lazy("web form field", "name"), max_length=8,
                                  choices=FieldMode.choices, default=FieldMode.OPTIONAL)
    phone_field = models.CharField(pgettext_lazy("web form field", "phone"), max_length=8,
                                   choices=FieldMode.choices, default=FieldMode.OPTIONAL)
    email_field = models.CharField(pgettext_lazy("web form field", "email"), max_length=8,
                                   choices=FieldMode.choices, default=FieldMode.OPTIONAL)
    message_field = models.CharField(pgettext_lazy("web form field", "message"), max_length=8,
                                     choices=FieldMode.choices, default=FieldMode.OPTIONAL)
    # Sites allowed to show the form in a frame, as origins ("https://dealer.example").
    frame_origins = models.JSONField(_("sites that may embed the form"), default=list,
                                     blank=True)
    min_fill_seconds = models.PositiveIntegerField(_("minimum fill time, seconds"), default=3)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title

    @property
    def stream(self) -> str:
        return f"webform:{self.pk}"

    @property
    def source(self) -> str:
        """The intake source of its submissions (with the submission's nonce: idempotency)."""
        return f"form:{self.slug}"

    def mode(self, field: str) -> str:
        return str(getattr(self, f"{field}_field"))


class WebFormSubmission(UndeletableModel):
    form = models.ForeignKey(WebForm, on_delete=models.PROTECT, related_name="submissions",
                             verbose_name=_("web form"))
    # The random id of the rendered form it was sent from: one ticket per rendered form, however
    # often the button is pressed. Also the intake external id.
    nonce = models.CharField(max_length=64)
    # The secret part of the thank-you page's address.
    token = models.CharField(max_length=64, unique=True)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("ticket"))
    ip_key = models.CharField(max_length=64)
    email_key = models.CharField(max_length=64, blank=True)
    phone_key = models.CharField(max_length=64, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    created_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("web form submission")
        verbose_name_plural = _("web form submissions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["form", "nonce"], name="webform_submission_once"),
        ]
        indexes = [
            models.Index(fields=["ip_key", "created_at"], name="webform_sub_ip"),
            models.Index(fields=["email_key", "created_at"], name="webform_sub_email"),
            models.Index(fields=["phone_key", "created_at"], name="webform_sub_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.form.slug}/{self.pk}"
