"""Email intake throughput: N messages from a maildir into tickets. Prints figures; asserts
nothing.

    python bench/mail.py                      # 10,000 messages on PostgreSQL (est_mailbench)
    python bench/mail.py --messages 500       # a smoke run
    python bench/mail.py --rate 600           # a steady 600 messages/minute beside the worker

PostgreSQL only (the issue's target), on its own database ``est_mailbench`` on BENCH_POSTGRES
(default postgres://postgres@127.0.0.1:5432), dropped and made again on each run.

How: one maildir mailbox of a pipeline whose new tickets go round robin to 20 sellers; N
messages written into ``new/`` first (distinct senders, 10% of them a second message of an
earlier sender that threads by In-Reply-To into that sender's ticket, 5% with a PDF attachment),
each with ``Date:`` = the moment it was written; then worker passes (``poll_all``, 200 messages
per mailbox and pass, the real order: read, take in and commit, move to cur/) until new/ is
empty. Measured: messages per minute over the whole drain, and per message the delay from its
Date (arrival in the maildir) to its ticket row's commit (the mail message's ``created_at``),
p50/p95/max. The delay includes the queue: the last message waits for all the others.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "est_mailbench"
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - the benchmark's throwaway people
PIPELINE = """
code: mailbench
name: Mail bench
stages:
  - {code: new, name: New, executor: {rule: team_role, team: Mail, role: seller,
     strategy: round_robin}, next_task: {kind: call, title: Answer the client, due: 2h}}
  - {code: won, name: Won, semantic: won}
"""


def prepare(server: str, data_dir: Path) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = f"{server}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estafeta.settings")
    os.environ["ESTAFETA_DATA_DIR"] = str(data_dir)
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)


def write_messages(new: Path, count: int, rate: float = 0.0) -> None:
    """All at once, or ``rate`` messages per minute (a steady stream beside the worker)."""
    begun = time.perf_counter()
    for i in range(count):
        if rate:
            time.sleep(max(0.0, begun + i * 60.0 / rate - time.perf_counter()))
        msg = EmailMessage()
        sender = i if i % 10 != 9 else i - 9  # every tenth: a follow-up of an earlier sender
        msg["From"] = f"Client {sender} <client{sender}@example.com>"
        msg["To"] = "sales@dealer.example"
        msg["Subject"] = f"Request {i}" if i % 10 != 9 else f"Re: Request {sender}"
        msg["Message-ID"] = f"<bench-{i}@example.com>"
        if i % 10 == 9:
            msg["In-Reply-To"] = f"<bench-{sender}@example.com>"
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg.set_content(f"Hello, I would like an offer for car #{i}.\n" * 5)
        if i % 20 == 7:
            msg.add_attachment(b"%PDF-1.4 " + os.urandom(2000), maintype="application",
                               subtype="pdf", filename=f"details-{i}.pdf")
        tmp = new.parent / "tmp" / f"{i}.bench"
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, new / f"{i:08d}.bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--rate", type=float, default=0.0,
                        help="messages per minute arriving while the worker runs (0: all first)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between worker passes in --rate mode")
    args = parser.parse_args()
    data_dir = ROOT / "bench" / "results" / "mail"
    prepare(args.server, data_dir)

    from estafeta.accounts.services import team_create, user_create
    from estafeta.mailin.models import Mailbox, MailMessage
    from estafeta.mailin.services import mailbox_save
    from estafeta.mailin.transports import poll_all
    from estafeta.pipelines.services import pipeline_load

    head = user_create(actor=None, username="mailhead", role="head", password=PASSWORD)
    team = team_create(actor=None, name="Mail", head=head)
    for n in range(20):
        user_create(actor=None, username=f"mailseller{n}", role="seller", password=PASSWORD,
                    team=team)
    pipeline = pipeline_load(actor=None, text=PIPELINE, source="mailbench.yaml").pipeline
    maildir = data_dir / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        for old in (maildir / sub).iterdir():
            old.unlink()
    mailbox_save(actor=None, mailbox=Mailbox(name="Bench", address="sales@dealer.example",
                                             kind="maildir", path=str(maildir),
                                             pipeline=pipeline))
    writer = None
    if args.rate:
        print(f"{args.messages} messages arriving at {args.rate:.0f}/min into {maildir}/new, "
              f"a worker pass every {args.interval:.0f} s", flush=True)
        writer = threading.Thread(target=write_messages,
                                  args=(maildir / "new", args.messages, args.rate))
        writer.start()
    else:
        print(f"writing {args.messages} messages into {maildir}/new", flush=True)
        write_messages(maildir / "new", args.messages)
    start = time.perf_counter()
    passes, statuses = 0, {}
    while (writer is not None and writer.is_alive()) or any((maildir / "new").iterdir()):
        began = time.perf_counter()
        report = poll_all()
        passes += 1
        for r in report.results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        if report.errors:
            print("errors:", report.errors, flush=True)
            break
        if passes % 10 == 0:
            done = sum(statuses.values())
            print(f"  {done} messages, {done / (time.perf_counter() - start) * 60:.0f}/min",
                  flush=True)
        if writer is not None:
            time.sleep(max(0.0, args.interval - (time.perf_counter() - began)))
    span = time.perf_counter() - start
    delays = []
    for sent, made in MailMessage.objects.filter(direction="in").values_list("sent_at",
                                                                              "created_at"):
        delays.append((made - sent).total_seconds())
    delays.sort()
    total = sum(statuses.values())
    q = statistics.quantiles(delays, n=100) if len(delays) > 1 else delays * 99
    print(f"messages: {total} in {span:.1f} s over {passes} passes: "
          f"{total / span * 60:.0f} messages/minute ({statuses})")
    print(f"arrival (Date) -> ticket: p50 {q[49]:.1f} s, p95 {q[94]:.1f} s, "
          f"max {delays[-1]:.1f} s")
    from estafeta.tickets.models import Ticket

    print(f"tickets: {Ticket.objects.count()}, mail messages in: {len(delays)}")


if __name__ == "__main__":
    main()
