"""People: users with one role, teams led by a head of sales, absence periods.

Users are deactivated, never deleted (promise 3). Roles are stable codes (``domain.codes.Role``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from estafeta.core.models import UndeletableModel, UndeletableQuerySet, _refuse
from estafeta.domain.codes import Role


class Team(UndeletableModel):
    name = models.CharField(_("name"), max_length=100, unique=True)
    head = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="headed_teams",
        verbose_name=_("head of sales"),
    )
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def stream(self) -> str:
        return f"team:{self.pk}"


class EstafetaUserManager(UserManager.from_queryset(UndeletableQuerySet)):  # type: ignore[misc]  # django-stubs cannot type from_queryset on UserManager
    """Django's ``createsuperuser`` goes through here: such users get the admin role."""

    def create_superuser(self, username: str, email: str | None = None,
                         password: str | None = None, **extra: Any) -> User:
        from django.db import transaction

        from estafeta.domain.codes import EventType
        from estafeta.history.services import event_record

        extra.setdefault("role", Role.ADMIN)
        with transaction.atomic():  # the user and its event, or neither
            user: User = super().create_superuser(username, email, password, **extra)
            event_record(stream=user.stream, type=EventType.USER_CREATED, actor=None,
                         new_stream=True, payload={"role": user.role, "superuser": True,
                                                   "via": "createsuperuser"})
        return user


class User(AbstractUser):
    ESTAFETA_UNDELETABLE = True

    role = models.CharField(_("role"), max_length=16, choices=[(r.value, r.value) for r in Role],
                            default=Role.SELLER)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="members", verbose_name=_("team"))
    language = models.CharField(_("language"), max_length=8, default="ru",
                                choices=[("ru", "Русский"), ("en", "English")])
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)

    objects: ClassVar[EstafetaUserManager] = EstafetaUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]
        indexes = [models.Index(fields=["team", "role"], name="user_team_role",
                                condition=Q(is_active=True))]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(type(self))

    @property
    def stream(self) -> str:
        return f"user:{self.pk}"

    @property
    def role_code(self) -> Role:
        return Role(self.role)


class Absence(UndeletableModel):
    """A period when a user takes no new work (holiday, sick leave). Cancelled, not deleted."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="absences")
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(_("created"))
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["user", "ends_at"], name="absence_user_ends")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                   name="absence_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.starts_at:%Y-%m-%d} – {self.ends_at:%Y-%m-%d}"
