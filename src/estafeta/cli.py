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

    execute_from_command_line(args)


if __name__ == "__main__":
    main()
