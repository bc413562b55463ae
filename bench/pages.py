"""Server time of every main page on the demo data (issue 3: "well under 100 ms").

    ESTAFETA_DATA_DIR=var python bench/pages.py        # the demo `make demo` built
    python bench/pages.py --data /tmp/demo --repeat 30

Renders each page in-process through Django's full request stack (middleware, session, templates)
as the demo person who would open it, ``--repeat`` times after one warm-up, and prints p50/p95/max
server time and the number of database queries. Builds the demo first if the data directory has
none (``estafeta demo --no-serve``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

PAGES = [
    ("ivanov", "/tasks/"), ("ivanov", "ticket"), ("ivanov", "/tickets/"),
    ("ivanov", "/tickets/?q=8 9"), ("ivanov", "/board/"), ("orlova", "/tickets/new/"),
    ("sokolova", "/tasks/"), ("sokolova", "/tickets/"), ("sokolova", "/board/"),
    ("sokolova", "/team/"), ("morozov", "/board/"), ("morozov", "/tickets/"),
    ("morozov", "/team/"), ("admin", "/settings/users/"), ("admin", "/settings/pipelines/"),
    ("ivanov", "/api/v1/tasks/"), ("ivanov", "/api/v1/tickets/"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("ESTAFETA_DATA_DIR", "var"))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ["ESTAFETA_DATA_DIR"] = str(Path(args.data).resolve())
    os.environ.pop("DATABASE_URL", None)
    estafeta = str(Path(sys.executable).with_name("estafeta"))
    subprocess.run([estafeta, "demo", "--no-serve"], check=True, stdout=subprocess.DEVNULL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from estafeta.accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    clients: dict[str, Client] = {}
    ticket = ""
    print(f"demo data in {args.data}; {args.repeat} renders a page after one warm-up")
    print(f"{'person':<10} {'page':<24} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'queries':>8}")
    worst = 0.0
    for person, path in PAGES:
        if person not in clients:
            clients[person] = Client()
            clients[person].force_login(User.objects.get(username=person))
        client = clients[person]
        if path == "ticket":
            path = ticket
        response = client.get(path)  # warm-up (and the ticket the seller sees first)
        assert response.status_code == 200, (person, path, response.status_code)
        found = re.search(rb'href="(/tickets/[A-Z]+-\d{4}-\d+/)"', response.content)
        if found and not ticket:
            ticket = found.group(1).decode()
        times = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - started) * 1000)
        p95 = statistics.quantiles(times, n=20)[18]
        worst = max(worst, p95)
        print(f"{person:<10} {path[:24]:<24} {statistics.median(times):7.1f} {p95:7.1f} "
              f"{max(times):7.1f} {len(queries):8d}")
    print(f"slowest page p95: {worst:.1f} ms")


if __name__ == "__main__":
    main()
