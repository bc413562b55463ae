"""``estafeta serve`` warms up in the master process before gunicorn forks its workers."""

from pathlib import Path
from typing import Any

import pytest
from django.template import TemplateDoesNotExist, TemplateSyntaxError

from estafeta.core import warmup

SRC = Path(warmup.__file__).resolve().parents[1]


@pytest.mark.django_db
def test_warm_up_compiles_every_template_of_ours_without_the_database(
        django_assert_num_queries: Any) -> None:
    shipped = {p.relative_to(root).as_posix()
               for root in SRC.glob("*/templates") for p in root.rglob("*") if p.is_file()}
    with django_assert_num_queries(0):
        done = warmup.warm_up()
    assert done["templates"] == len(shipped) == len(warmup.our_templates())
    assert "web/analytics/dashboard.html" in warmup.our_templates()
    assert done["languages"] == 2 and done["views"] > 50


def test_a_template_that_does_not_compile_stops_the_warm_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup, "our_templates", lambda: ["no/such/template.html"])
    with pytest.raises((TemplateDoesNotExist, TemplateSyntaxError)):
        warmup.warm_up()
