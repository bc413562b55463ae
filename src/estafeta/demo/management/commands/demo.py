"""``estafeta demo``: migrate, build the demo dealership once, then serve it until stopped."""

from __future__ import annotations

import subprocess
import sys
from argparse import ArgumentTypeError
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser

from estafeta.core.management.base import EstafetaCommand


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise ArgumentTypeError(f"{value!r} must be greater than zero")
    return number


class Command(EstafetaCommand):
    help = ("Build a demo car dealership (people, pipelines, clients and six months of history, "
            "all through the services) unless it is there already, print the demo logins, and "
            "serve it on 127.0.0.1:8000 until stopped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true",
                            help="only build the data (and print the logins)")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--months", type=_positive, default=6,
                            help="months of history ending now (default 6)")
        parser.add_argument("--scale", type=_positive, default=1.0,
                            help="multiply the number of requests (default 1.0)")
        parser.add_argument("--seed", type=int, default=2026,
                            help="random seed: the same seed builds the same dealership")
        parser.add_argument("--no-migrate", action="store_true",
                            help="do not apply pending migrations first")

    def handle(self, *args: Any, **options: Any) -> None:
        from estafeta.demo.builder import PASSWORD, build_demo, demo_logins

        if not 0 < options["port"] < 65536:
            raise CommandError(f"{options['port']} is not a port number")
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Demo logins (password for all of them: "
                          f"{PASSWORD}):")
        for person in demo_logins():
            about = [person.team] if person.team and person.role != "head" else []
            about += [person.note] if person.note else []
            self.stdout.write(f"  {person.username:<11} {person.role:<9} {person.full_name}"
                              + (f" ({'; '.join(about)})" if about else ""))
        self.stdout.write("")
        result = build_demo(months=options["months"], scale=options["scale"],
                            seed=options["seed"], progress=self.stdout.write)
        self.stdout.write(result.summary())
        url = f"http://{options['host']}:{options['port']}/"
        self._intake(url)
        if options["no_serve"]:
            return
        self.stdout.write(f"Open {url} and sign in as ivanov (a seller), sokolova (a head of "
                          "sales), morozov (the director), orlova (the operator) or admin; the "
                          f"API is at {url}api/v1/docs/.")
        # The monitor and the outbox run beside the web server, as a child process stopped
        # with it (mail is printed here unless ESTAFETA_SMTP_HOST is set).
        worker = subprocess.Popen([sys.executable, "-m", "estafeta", "worker",
                                   "--interval", "30"])
        try:
            call_command("serve", host=options["host"], port=options["port"], no_migrate=True)
        finally:
            worker.terminate()  # SIGTERM: it finishes its pass and exits
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()

    def _intake(self, url: str) -> None:
        """Where requests come in (README "Try the intake"); the webhook secrets are the demo's
        own, printed every time: never reuse them for a real exchange."""
        from estafeta.demo.channels import intake_info

        info = intake_info(url)
        if info is None:
            return
        self.stdout.write("")
        self.stdout.write("Intake (DEMO ONLY: these webhook secrets are printed for anyone to "
                          "see; a real source's secret is shown once):")
        self.stdout.write(f"  web form   {info.form_url}")
        self.stdout.write(f"  telephony  POST {info.telephony_url}  secret {info.telephony_secret}")
        self.stdout.write(f"  messenger  POST {info.messenger_url}  secret {info.messenger_secret}")
        self.stdout.write(f"  email      mailbox {info.mailbox!r}: put .eml files into "
                          f"{info.maildir}/new/ (the worker reads it every 30 s), or run "
                          f"estafeta intake email --file MESSAGE.eml --mailbox {info.mailbox}")
        self.stdout.write("  examples   docs/examples/ (request.eml, call.json, message.json, "
                          "post_hook.py)")
        self.stdout.write("")
