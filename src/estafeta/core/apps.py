from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "estafeta.core"
    label = "core"
    verbose_name = "Estafeta core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_reinstall_guards, sender=self)


def _reinstall_guards(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """SQLite rebuilds a table to alter it and drops its triggers; put them back every time."""
    from django.db import connections

    from .db import install_guards

    install_guards(connections[using])
