"""``estafeta serve``: the production web server (gunicorn) on 127.0.0.1 by default."""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandParser

from estafeta.core.management.base import EstafetaCommand


def run_gunicorn(*, host: str, port: int, workers: int, log_level: str = "info") -> None:
    from django.db import connections
    from gunicorn.app.base import BaseApplication

    from estafeta.core.warmup import warm_up
    from estafeta.wsgi import application

    warm_up()  # once here, inherited by every worker: no slow first page per worker
    connections.close_all()  # a worker must not share the master's database connection

    class App(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}", "workers": workers, "worker_class": "sync",
                "accesslog": "-", "errorlog": "-", "loglevel": log_level, "timeout": 60,
                "graceful_timeout": 10, "proc_name": "estafeta",
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    App().run()


class Command(EstafetaCommand):
    help = "Run the web server (gunicorn): 127.0.0.1:8000 by default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("ESTAFETA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("ESTAFETA_PORT",
                                                                           "8000")))
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--no-migrate", action="store_true",
                            help="do not apply pending migrations first")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"Estafeta on http://{options['host']}:{options['port']}/ "
                          "(Ctrl+C stops)")
        run_gunicorn(host=options["host"], port=options["port"], workers=options["workers"])
