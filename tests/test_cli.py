"""The ``estafeta`` command as operators and scripts use it: names, exit codes, one-line errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from estafeta.accounts.models import Team, User
from estafeta.tickets.models import Ticket

from .factories import PASSWORD, PIPELINES, World


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = old
    return out.getvalue()


def test_people_and_teams_from_the_console(db: None) -> None:
    assert "created boss (head)" in run("user", "create", "boss", "--role", "head",
                                        stdin=PASSWORD + "\n")
    assert "created team Фургоны" in run("team", "create", "Фургоны", "--head", "boss")
    run("user", "create", "vera", "--role", "seller", "--team", "фургоны", "--email",
        "vera@example.com", stdin=PASSWORD + "\n")
    vera = User.objects.get(username="vera")
    assert (vera.team, vera.email) == (Team.objects.get(name="Фургоны"), "vera@example.com")
    assert vera.check_password(PASSWORD)
    assert "vera\tseller\tФургоны" in run("user", "list")
    assert "moved to boss" in run("user", "deactivate", "vera")
    assert "vera" not in run("user", "list")


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("user", "create", "x", "--role", "seller"), "", "no password"),
    (("user", "create", "x", "--role", "seller", "--team", "Nowhere"), PASSWORD, "no team"),
    (("user", "create", "x", "--role", "seller"), "123\n", "too weak"),
    (("user", "deactivate", "ghost"), "", "there is no user 'ghost'"),
    (("team", "create", "T", "--head", "ann"), "", "not a head of sales"),
    (("pipeline", "load", "/nonexistent.yaml"), "", "no such file"),
    (("pipeline", "dump", "nothing"), "", "there is no pipeline"),
    (("lost_reason", "add", "Bad Code", "x"), "", "not a code"),
    (("absence", "add", "ann", "--from", "tomorrow", "--until", "2026-12-31"), "",
     "not a date"),
    (("client", "anonymise", "999999", "--reason", "x"), "", "there is no client"),
    (("ticket", "show", "Z-2026-999999"), "", "there is no ticket"),
])
def test_bad_input_is_one_clear_error(world: World, args: tuple[str, ...], stdin: str,
                                      message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args, stdin=stdin)


def test_pipelines_lost_reasons_absences_and_tickets_from_the_console(world: World,
                                                                      tmp_path: Path) -> None:
    dumped = tmp_path / "sales.yaml"
    dumped.write_text(run("pipeline", "dump", "sales"))
    assert "sales is unchanged (version 1)" in run("pipeline", "load", str(dumped))
    dumped.write_text(dumped.read_text().replace("name: Sales", "name: Sales 2", 1))
    assert "loaded sales version 2" in run("pipeline", "load", str(dumped))
    assert "sales\tv2\tSales 2" in run("pipeline", "list")
    run("lost_reason", "add", "moved", "Client moved away")
    assert "*\tmoved\tClient moved away" in run("lost_reason", "list")
    run("lost_reason", "retire", "moved")
    assert "(retired)" in run("lost_reason", "list")
    assert "recorded" in run("absence", "add", "ann", "--from", "2026-12-10", "--until",
                             "2026-12-12", "--reason", "отпуск")
    assert "ann" in run("absence", "list")
    t = world.ticket()
    shown = run("ticket", "show", t.number.lower())
    assert t.number in shown and "ticket.created" in shown and "Call the client" in shown
    assert f"{world.client.pk}\tIvan Petrov" in run("client", "find", "8 912 345 67 89")
    assert "anonymised" in run("client", "anonymise", str(world.client.pk), "--reason", "GDPR")
    assert Ticket.objects.get(pk=t.pk).client.name == "(anonymised)"


@pytest.mark.slow
def test_the_installed_command_end_to_end(tmp_path: Path) -> None:
    """The real entry point in a fresh data directory: exit codes and one-line errors."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"ESTAFETA_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).parent / "estafeta"

    def estafeta(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    assert estafeta("migrate", "-v0").returncode == 0
    # Django's own command outside any test transaction: the user and its event together.
    env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    made = estafeta("createsuperuser", "--noinput", "--username", "root", "--email",
                    "root@example.com")
    assert made.returncode == 0, made.stderr
    assert estafeta("user", "create", "boss", "--role", "head", stdin=PASSWORD).returncode == 0
    assert estafeta("team", "create", "Sales", "--head", "boss").returncode == 0
    assert estafeta("user", "create", "ann", "--role", "seller", "--team", "Sales",
                    stdin=PASSWORD).returncode == 0
    loaded = estafeta("pipeline", "load", str(PIPELINES / "sales.yaml"))
    assert loaded.returncode == 0 and "loaded sales version 1" in loaded.stdout
    bad = estafeta("user", "create", "x", "--role", "wizard")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "invalid choice: 'wizard'" in bad.stderr
    refused = estafeta("team", "create", "Other", "--head", "ann")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("estafeta team: ann is not a head of sales "
                                      "(role seller)")
    broken = tmp_path / "broken.yaml"
    broken.write_text((PIPELINES / "sales.yaml").read_text().replace("round_robin", "lottery"))
    invalid = estafeta("pipeline", "load", str(broken))
    assert invalid.returncode == 1
    assert "broken.yaml: stages[0].executor.strategy" in invalid.stderr.splitlines()[-1]
    checked = estafeta("check")
    assert checked.returncode == 0 and "ok: every invariant holds" in checked.stdout
    audited = estafeta("audit", "verify")
    assert audited.returncode == 0 and audited.stdout.startswith("ok: ")
    nothing = estafeta("no-such-command")
    assert nothing.returncode == 1 and "Unknown command" in nothing.stderr


def test_djangos_createsuperuser_makes_an_admin_with_its_event(
        db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from estafeta.history.models import Event

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--username", "root", "--email",
                 "root@example.com", stdout=io.StringIO())
    root = User.objects.get(username="root")
    assert (root.role, root.is_superuser) == ("admin", True)
    assert Event.objects.get(stream=root.stream).payload["via"] == "createsuperuser"
