"""The ``estafeta`` console command: Estafeta's own operations and every Django command.

    estafeta demo | serve | seed | check | audit | pipeline | user | team | ...
    estafeta migrate | createsuperuser | shell | ...      (Django's own)
"""

from __future__ import annotations

import os
import sys

# Names people type that are not valid Python module names.
ALIASES = {"lost-reason": "lost_reason"}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    args = list(sys.argv if argv is None else argv)
    args[0] = "estafeta"
    if len(args) > 1:
        args[1] = ALIASES.get(args[1], args[1])
    try:
        import django

        django.setup()
    except Exception as exc:  # settings or database URL wrong: say so in one line
        sys.stderr.write(f"estafeta: cannot start: {exc}\n")
        raise SystemExit(1) from None
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(args)
    except DatabaseError as exc:  # Django's own commands let these out as tracebacks
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        sys.stderr.write(f"estafeta: database error: {reason}\n")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
