"""Proof that a refused action changed nothing: every row of every Estafeta table, before and
after, including the history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps

from estafeta.domain.errors import EstafetaError

APPS = {"accounts", "clients", "pipelines", "tickets", "tasks", "history"}


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for model in apps.get_models():
        if model._meta.app_label in APPS:
            out[model._meta.label] = list(model._base_manager.order_by("pk").values_list())
    return out


def refused(action: Callable[[], object], code: str | None = None,
            error: type[EstafetaError] = EstafetaError) -> EstafetaError:
    """Run ``action``; assert it raises ``error`` (with ``code``) and left every table as it was."""
    before = snapshot()
    with pytest.raises(error) as caught:
        action()
    if code is not None:
        assert caught.value.code == code, caught.value
    after = snapshot()
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"a refused action changed {changed}"
    return caught.value
