"""HTTP benchmark of Estafeta under gunicorn (issue 3). Prints figures; asserts nothing.

    python bench/web.py                                   # the kept PostgreSQL bench database
    DATABASE_URL=sqlite:////abs/path.sqlite3 python bench/web.py --requests 500

Serves the database with ``estafeta serve --workers 2`` on a free loopback port and drives it
with a bounded load loop (``--concurrency`` client threads, each on its own keep-alive
connection, ``--requests`` requests per measure):
  - GET /tasks/ (My tasks) of the seed seller with the most open tasks, signed in by session;
  - POST /api/v1/tickets/ by the same seller with a token (a walk-in: a new ticket through
    ticket_create: number, first stage, the seller as owner, first task, event).
Reports requests per second and client-side latency p50/p95/p99, plus the server's own time
(the Server-Timing header) p50/p95. The database is expected to hold ``estafeta seed`` data
(bench/core.py builds and grows it; see bench/README.md). The bench sets a password on the two
seed seller it signs in as (an event) and adds the tickets it creates.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - a synthetic benchmark database
DEFAULT_DB = (os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
              + "/estafeta_bench")

PREPARE = r"""
import json, sys
import django
django.setup()
from django.db.models import Count, Q
from estafeta.accounts.models import User
from estafeta.accounts.services import user_set_password
from estafeta.clients.models import Client
password = sys.argv[1]
seller = (User.objects.filter(username__startswith="seed-seller-", is_active=True)
          .annotate(n=Count("tasks", filter=Q(tasks__status="open"))).order_by("-n").first())
user_set_password(actor=None, user=seller, password=password)
clients = sorted(set(Client.objects.filter(tickets__owner=seller)
                     .values_list("pk", flat=True)[:2000]))[:500]
print(json.dumps({"seller": seller.username, "open_tasks": seller.n,
                  "clients": clients}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise SystemExit(f"the server did not start on port {port}")


def session_cookie(port: int, username: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    page = response.read().decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not csrf_cookie or not token:
        raise SystemExit("the login page gave no CSRF token")
    body = f"username={username}&password={PASSWORD}&csrfmiddlewaretoken={token.group(1)}"
    conn.request("POST", "/login/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf_cookie.group(1)}", "Referer": f"http://127.0.0.1:{port}/login/"})
    response = conn.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 302 or not session:
        raise SystemExit(f"signing in as {username} failed ({response.status})")
    return f"sessionid={session.group(1)}"


def api_token(port: int, username: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/auth/token/",
                 body=json.dumps({"username": username, "password": PASSWORD}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"no API token for {username}: {data}")
    return str(data["token"])


Request = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]


def load(port: int, make: Request, requests: int, concurrency: int, ok: int
         ) -> dict[str, Any]:
    """Send ``requests`` requests from ``concurrency`` threads; latencies of the good ones."""
    latencies: list[float] = []
    server: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body, headers = make(i)
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            timing = re.search(r"app;dur=([\d.]+)", response.getheader("Server-Timing") or "")
            with lock:
                if response.status == ok:
                    latencies.append(elapsed)
                    if timing:
                        server.append(float(timing.group(1)))
                else:
                    failures.append(f"{response.status} {payload[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")

    return {"requests": requests, "ok": len(latencies), "failed": len(failures),
            "first_failure": failures[0] if failures else "", "rps": len(latencies) / wall,
            "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99), "server_p50_ms": pct(server, 50),
            "server_p95_ms": pct(server, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per measure (default 2000)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL") or DEFAULT_DB,
           "ESTAFETA_DATA_DIR": os.environ.get("ESTAFETA_DATA_DIR",
                                                "/tmp/estafeta-bench-http"),  # noqa: S108,
           "DJANGO_SETTINGS_MODULE": "estafeta.settings", "ESTAFETA_CONN_MAX_AGE": "600"}
    print(f"database {env['DATABASE_URL']}", flush=True)
    facts = json.loads(subprocess.run([str(BIN / "python"), "-c", PREPARE, PASSWORD], env=env,
                                      check=True, capture_output=True, text=True).stdout)
    tickets = subprocess.run([str(BIN / "python"), "-c", "import django; django.setup(); "
                              "from estafeta.tickets.models import Ticket; "
                              "print(Ticket.objects.count())"],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
    print(f"{tickets} tickets; seller {facts['seller']} with {facts['open_tasks']} open tasks",
          flush=True)
    port = free_port()
    server = subprocess.Popen([str(BIN / "estafeta"), "serve", "--port", str(port),
                               "--workers", str(args.workers), "--no-migrate"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        cookie = session_cookie(port, facts["seller"])
        token = api_token(port, facts["seller"])
        clients = facts["clients"]

        def tasks_page(i: int) -> tuple[str, str, bytes | None, dict[str, str]]:
            return "GET", "/tasks/", None, {"Cookie": cookie}

        def create(i: int) -> tuple[str, str, bytes | None, dict[str, str]]:
            body = json.dumps({"pipeline": "seed-sales", "channel": "phone",
                               "subject": f"HTTP bench {i}",
                               "client": clients[i % len(clients)]}).encode()
            return "POST", "/api/v1/tickets/", body, {"Authorization": f"Token {token}",
                                                      "Content-Type": "application/json"}

        results = {}
        for name, make, ok in (("my-tasks page (GET /tasks/)", tasks_page, 200),
                               ("ticket creation (POST /api/v1/tickets/)", create, 201)):
            load(port, make, args.warmup, args.concurrency, ok)
            figures = load(port, make, args.requests, args.concurrency, ok)
            results[name] = figures
            print(f"{name}: {figures['rps']:.0f} req/s; p50 {figures['p50_ms']:.1f} ms, "
                  f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms; server p50 "
                  f"{figures['server_p50_ms']:.1f} ms, p95 {figures['server_p95_ms']:.1f} ms; "
                  f"{figures['ok']} ok, {figures['failed']} failed "
                  f"{figures['first_failure']}", flush=True)
        print(json.dumps({"tickets": int(tickets), "workers": args.workers,
                          "concurrency": args.concurrency, "results": results}, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
