"""Core benchmarks of Estafeta. Prints figures; asserts nothing.

    python bench/core.py                     # SQLite and PostgreSQL, up to 1,000,000 tickets
    python bench/core.py --db postgres --large 100000
    python bench/core.py --quick             # small sizes, a minute or two

Rates are measured on fresh databases (``estafeta_bench_rates``, ``estafeta_bench_raw``); the
large database ``estafeta_bench`` is kept between runs and only grown (a million tickets take
an hour or two to make), unless --fresh-large. SQLite files live in bench/results/, PostgreSQL
databases on BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432).
Measured:
  - ticket creations per second through ticket_create (number, first stage, owner by round
    robin, first task, event), with 1 and 2 processes; and plain INSERTs of the same four rows,
    one transaction per ticket, as the floor the database itself sets;
  - stage closings per second through stage_close (checklist gate, next executor, next task);
  - one seller's open-task page (50 rows): p50/p95 at 10,000 tickets and at --large tickets;
  - ``estafeta seed``, ``estafeta check`` and ``estafeta audit verify`` over --large tickets:
    seconds and peak memory of the process (maxrss);
  - with --seed-rss N: the memory of ``estafeta seed --light`` sampled every 3 s over N tickets.

The large database: its first --small tickets are made by ``estafeta seed --light`` (through
the services); above that it is grown by bench/grow.py, which replicates those real tickets by
SQL with fresh ids, numbers and re-computed hash chains (a million tickets in minutes instead of
hours; see bench/README.md). --seed-all makes every ticket through the services instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent


def run(env: dict[str, str], *args: str, quiet: bool = True) -> tuple[str, float, int]:
    """Run a command; return (stdout, seconds, peak RSS in MiB) of that one process."""
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL if quiet else None, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{out}")
    return out, time.monotonic() - started, usage.ru_maxrss // 1024


def worker(env: dict[str, str], *args: str) -> dict[str, Any]:
    out, _, _ = run(env, sys.executable, str(HERE / "worker.py"), *args)
    return dict(json.loads(out.strip().splitlines()[-1]))


def parallel(env: dict[str, str], processes: int, action: str, *args: str) -> float:
    """Start ``processes`` workers together; the rate over the slowest one's span."""
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, str(HERE / "worker.py"), action,
                               *[a.replace("{i}", str(i)) for a in args], start],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for i in range(processes)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker {action} failed")
        results.append(json.loads(out.strip().splitlines()[-1]))
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["count"] for r in results) / span


def fresh_database(kind: str, name: str = "estafeta_bench") -> dict[str, str]:
    env = dict(os.environ)
    env["ESTAFETA_DATA_DIR"] = str(RESULTS / "data")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = RESULTS / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{path}"
    else:
        import psycopg

        server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        env["DATABASE_URL"] = f"{server}/{name}"
    run(env, str(BIN / "estafeta"), "migrate", "-v0")
    return env


def seed(env: dict[str, str], total: int, jobs: int) -> tuple[float, int]:
    """Grow the database to ``total`` tickets; (seconds, peak MiB of the seeding process)."""
    have = count_tickets(env)
    if have >= total:
        return 0.0, 0
    # --light: each ticket is a real ticket_create (number, owner, first task, event), without
    # the rest of its life, so that a million fit in an hour or two on this machine.
    _, seconds, peak = run(env, str(BIN / "estafeta"), "seed", "--tickets", str(total - have),
                           "--jobs", str(jobs), "--light", "-v0", quiet=False)
    return seconds, peak


def grow(env: dict[str, str], total: int, base: int) -> dict[str, Any]:
    """Grow to ``total`` tickets by replicating the first ``base`` (bench/grow.py)."""
    if count_tickets(env) >= total:
        return {}
    out, _, peak = run(env, sys.executable, str(HERE / "grow.py"), "--tickets", str(total),
                             "--base", str(base), quiet=False)
    return dict(json.loads(out.strip().splitlines()[-1])) | {"peak_mib": peak}


def seed_memory(kind: str, tickets: int, figures: dict[str, Any], say: Any) -> None:
    """RSS of ``estafeta seed --light`` sampled every 3 s over ``tickets`` (a database of its
    own): it should stay flat."""
    from rss import measure

    env = fresh_database(kind, "estafeta_bench_seed")
    jobs = "2" if kind == "postgres" else "1"
    result = measure([str(BIN / "estafeta"), "seed", "--tickets", str(tickets), "--jobs", jobs,
                      "--light", "-v0"], every=3.0, env=env, cwd=ROOT)
    if result["returncode"]:
        raise SystemExit("estafeta seed failed")
    samples = result["samples"]
    assert isinstance(samples, list)
    figures["seed_rss"] = result
    biggest = [s[2] for s in samples]
    say(f"estafeta seed --light --jobs {jobs}, {tickets:,} tickets in {result['seconds']}s: "
        f"largest process {min(biggest, default=0)}-{max(biggest, default=0)} MiB over "
        f"{len(samples)} samples")


def kept_database(kind: str, name: str = "estafeta_bench") -> dict[str, str]:
    """The large database of earlier runs (created empty if there is none), migrated."""
    env = dict(os.environ)
    env["ESTAFETA_DATA_DIR"] = str(RESULTS / "data")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{RESULTS / f'{name}.sqlite3'}"
    else:
        import psycopg

        server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                [name]).fetchone():
                conn.execute(f"CREATE DATABASE {name}")
        env["DATABASE_URL"] = f"{server}/{name}"
    run(env, str(BIN / "estafeta"), "migrate", "-v0")
    return env


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    say = lambda text: print(f"[{kind}] {text}", flush=True)  # noqa: E731
    figures: dict[str, Any] = {"database": kind}
    if not args.large_only:
        rates(kind, args, figures, say)
    if args.seed_rss:
        seed_memory(kind, args.seed_rss, figures, say)
    if args.rates_only:
        return figures
    if args.fresh_large:
        fresh_database(kind, "estafeta_bench")
    return large(kind, kept_database(kind), args, figures, say)


def rates(kind: str, args: argparse.Namespace, figures: dict[str, Any], say: Any) -> None:
    """Creation and closing rates on a fresh database, and the plain-INSERT floor."""
    env = fresh_database(kind, "estafeta_bench_rates")
    worker(env, "setup")
    n = args.create
    figures["create_1p"] = parallel(env, 1, "create", str(n))
    say(f"ticket creation, 1 process: {figures['create_1p']:.0f}/s")
    figures["create_2p"] = parallel(env, 2, "create", str(n))
    say(f"ticket creation, 2 processes: {figures['create_2p']:.0f}/s")
    # Hand-made rows break the invariants on purpose (no real hashes): a database of their own.
    raw_env = fresh_database(kind, "estafeta_bench_raw")
    worker(raw_env, "setup")
    figures["raw_2p"] = parallel(raw_env, 2, "raw", str(n))
    say(f"plain INSERTs of the same rows, 2 processes: {figures['raw_2p']:.0f}/s "
        f"(the service reaches {figures['create_2p'] / figures['raw_2p']:.0%} of it)")
    worker(env, "prepare", str(args.close))
    figures["close_1p"] = parallel(env, 1, "close", "0", "1")
    say(f"stage closing, 1 process: {figures['close_1p']:.0f}/s")
    worker(env, "prepare", str(args.close))
    figures["close_2p"] = parallel(env, 2, "close", "{i}", "2")
    say(f"stage closing, 2 processes: {figures['close_2p']:.0f}/s")
    tasklist(kind, env, args, figures, say, "small")


def count_tickets(env: dict[str, str]) -> int:
    out, _, _ = run(env, str(BIN / "estafeta"), "shell", "-c",
                    "from estafeta.tickets.models import Ticket; print(Ticket.objects.count())")
    return int(out.strip().splitlines()[-1])


def tasklist(kind: str, env: dict[str, str], args: argparse.Namespace, figures: dict[str, Any],
             say: Any, name: str) -> None:
    tickets = count_tickets(env)
    listing = worker(env, "tasklist", str(args.repeat)) | {"tickets": tickets}
    figures[f"tasklist_{name}"] = listing
    say(f"open-task page at {tickets:,} tickets ({listing['open_tasks']:,} open tasks for "
        f"{listing['user']}): p50 {listing['p50_ms']:.2f} ms, p95 {listing['p95_ms']:.2f} ms")


def large(kind: str, env: dict[str, str], args: argparse.Namespace, figures: dict[str, Any],
          say: Any) -> dict[str, Any]:
    """Grow the kept database to --large tickets and measure the reads over it."""
    jobs = 2 if kind == "postgres" else 1
    have = count_tickets(env)
    if have < args.small:  # a young database: measure the small size on the way up
        seed(env, args.small, jobs)
        tasklist(kind, env, args, figures, say, "small")
    if args.seed_all:
        seconds, peak = seed(env, args.large, jobs)
        if seconds:
            say(f"seeded up to {args.large:,} tickets in {seconds:.0f}s, peak {peak} MiB")
            figures["seed_s"], figures["seed_mib"] = seconds, peak
    else:
        grown = grow(env, args.large, args.small)
        if grown.get("added"):
            say(f"grown to {grown['tickets']:,} tickets by replicas in {grown['seconds']:.0f}s "
                f"({grown['rate']:,.0f}/s), peak {grown['peak_mib']} MiB")
            figures["grow"] = grown
    tasklist(kind, env, args, figures, say, "large")
    if "tasklist_small" in figures:
        small, big = figures["tasklist_small"], figures["tasklist_large"]
        figures["tasklist_growth"] = big["p95_ms"] / small["p95_ms"]
        say(f"open-task page p95 grows {figures['tasklist_growth']:.2f}x from "
            f"{small['tickets']:,} to {big['tickets']:,} tickets")
    for name, command in (("check", ["check", "--quiet"]), ("audit", ["audit", "verify"])):
        _, seconds, peak = run(env, str(BIN / "estafeta"), *command)
        figures[f"{name}_s"], figures[f"{name}_mib"] = seconds, peak
        say(f"estafeta {' '.join(command)} over {args.large:,} tickets: {seconds:.1f}s, "
            f"peak {peak} MiB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--create", type=int, default=3000, help="tickets per process")
    parser.add_argument("--close", type=int, default=2000, help="stages to close")
    parser.add_argument("--small", type=int, default=10_000,
                        help="size of a young large database's first task-list figure")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=300, help="task-list samples")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--rates-only", action="store_true",
                        help="only creation and closing rates (no large database)")
    parser.add_argument("--large-only", action="store_true",
                        help="skip the rates: only grow the kept database to --large and "
                             "measure the reads over it")
    parser.add_argument("--fresh-large", action="store_true",
                        help="start the large database from empty instead of growing it")
    parser.add_argument("--seed-all", action="store_true",
                        help="make every ticket of the large database through the services "
                             "(estafeta seed --light: hours) instead of growing it by replicas")
    parser.add_argument("--seed-rss", type=int, default=0, metavar="N",
                        help="also sample the memory of estafeta seed over N tickets")
    args = parser.parse_args()
    if args.quick:
        args.create, args.close, args.small, args.large, args.repeat = 300, 200, 2000, 5000, 50
    kinds = ["sqlite", "postgres"] if args.db == "all" else [args.db]
    for kind in kinds:
        figures = bench(kind, args)
        out = RESULTS / f"core-{kind}{'-large' if args.large_only else ''}.json"
        out.write_text(json.dumps(figures, indent=2))
        print(f"[{kind}] figures written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
