"""A separate process for the monitor's crash and signal tests. Usage, with DATABASE_URL set:

    python -m tests.control_worker setup COUNT        a world and COUNT overdue tasks
    python -m tests.control_worker decide-and-die NOW monitor pass, then SIGKILL itself
    python -m tests.control_worker report

Each (but the one that dies) prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from estafeta.control.models import Escalation
    from estafeta.control.services import monitor_pass
    from estafeta.notifications.models import Notification

    action, args = sys.argv[1], sys.argv[2:]
    if action == "setup":
        from tests.test_control_workers import overdue_world

        print(json.dumps({"tasks": overdue_world(int(args[0]))}))
    elif action == "decide-and-die":
        monitor_pass(now=datetime.fromisoformat(args[0]))
        # The decisions are committed; the process dies before any delivery.
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "report":
        print(json.dumps({
            "escalations": Escalation.objects.count(),
            "pending": Notification.objects.filter(kind="escalation", status="pending").count(),
            "sent": Notification.objects.filter(kind="escalation", status="sent").count(),
        }))
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
