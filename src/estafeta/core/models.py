"""Base classes that keep promise 3 at the ORM level (database triggers keep it below).

``UndeletableModel`` refuses ``instance.delete()`` and ``queryset.delete()``; foreign keys to it
use ``PROTECT`` so that no cascade can reach it either.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from estafeta.domain.errors import DeletionRefused


def _refuse(model: type[models.Model]) -> NoReturn:
    raise DeletionRefused(
        f"{model._meta.verbose_name_plural} are never deleted in Estafeta",
        model=model._meta.label,
    )


class UndeletableQuerySet(models.QuerySet):
    def delete(self) -> NoReturn:
        _refuse(self.model)

    def update(self, **kwargs: Any) -> int:
        if getattr(self.model, "ESTAFETA_APPEND_ONLY", False):
            raise DeletionRefused(f"{self.model._meta.verbose_name_plural} are append-only: "
                                  "rows are never changed", model=self.model._meta.label)
        return super().update(**kwargs)

    delete.alters_data = True  # type: ignore[attr-defined]  # Django's template-safety marker
    update.alters_data = True  # type: ignore[attr-defined]


class UndeletableModel(models.Model):
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(type(self))
