"""Clients (people and companies) with normalised phones and emails for finding duplicates.

Clients are never deleted; an erasure request anonymises one (``client_anonymise``) and keeps
its tickets, their history and their numbers.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel
from estafeta.domain.codes import ClientKind, ContactKind


class Segment(UndeletableModel):
    """Client classification used by analytics (retail, corporate fleet, taxi...)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Territory(UndeletableModel):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("territory")
        verbose_name_plural = _("territories")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Client(UndeletableModel):
    kind = models.CharField(_("kind"), max_length=16, default=ClientKind.PERSON,
                            choices=[(k.value, k.value) for k in ClientKind])
    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, null=True, blank=True,
                                verbose_name=_("segment"))
    territory = models.ForeignKey(Territory, on_delete=models.PROTECT, null=True, blank=True,
                                  verbose_name=_("territory"))
    key_account = models.BooleanField(_("key account"), default=False)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"))
    anonymised_at = models.DateTimeField(_("anonymised"), null=True, blank=True)

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["name"]
        indexes = [models.Index(fields=["name"], name="client_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def stream(self) -> str:
        return f"client:{self.pk}"


class ClientContact(models.Model):
    """One normalised phone (E.164) or email of a client. Rows are removed by anonymisation."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contacts")
    kind = models.CharField(max_length=8, choices=[(k.value, k.value) for k in ContactKind])
    value = models.CharField(max_length=254)

    class Meta:
        verbose_name = _("client contact")
        verbose_name_plural = _("client contacts")
        constraints = [
            models.UniqueConstraint(fields=["client", "kind", "value"], name="contact_unique"),
        ]
        indexes = [models.Index(fields=["kind", "value"], name="contact_lookup")]

    def __str__(self) -> str:
        return self.value
