"""Screenshots of the main pages for the README: ``make screenshots``.

Builds the demo dealership in its own data directory (once), serves it with ``estafeta serve``
on a free loopback port and photographs the pages in Debian's Chromium as the demo people see
them, in Russian. Writes ``docs/screenshots/*.png``; ``scripts/screenshots.py analytics-head``
takes only the named ones.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DATA = Path(os.environ.get("ESTAFETA_SCREENSHOT_DATA", ROOT / "var" / "screenshots"))
ESTAFETA = str(Path(sys.executable).with_name("estafeta"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "Estafeta-demo-2026"

# (file, person, path or None for "the first ticket on the page before")
SHOTS: list[tuple[str, str, str]] = [
    ("login", "", "/login/"),
    ("my-tasks", "ivanov", "/tasks/"),
    ("ticket", "ivanov", "ticket"),
    ("tickets", "ivanov", "/tickets/"),
    ("new-ticket", "orlova", "/tickets/new/"),
    ("board", "sokolova", "/board/"),
    ("team", "sokolova", "/team/"),
    ("settings", "admin", "/settings/"),
    ("analytics-director", "morozov", "/analytics/?period={last90}"),
    ("analytics-head", "sokolova", "/analytics/?period={last90}#K9"),
]


def last_90_days() -> str:
    """The analytics period of the demo's last 90 days (its history ends today)."""
    today = datetime.now(ZoneInfo("Europe/Moscow")).date()
    return f"{today - timedelta(days=89)}..{today}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise SystemExit(f"the server did not start on port {port}")


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def main() -> None:
    env = {**os.environ, "ESTAFETA_DATA_DIR": str(DATA)}
    env.pop("DATABASE_URL", None)
    print(f"building the demo in {DATA} (once; takes a couple of minutes the first time)")
    subprocess.run([ESTAFETA, "demo", "--no-serve"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen([ESTAFETA, "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    OUT.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(port)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            who, context, page, last_ticket = None, None, None, ""
            wanted = set(sys.argv[1:])
            for name, person, path in SHOTS:
                if wanted and name not in wanted:
                    continue  # ("ticket" needs "my-tasks" before it to find its ticket)
                if person != who or context is None:
                    if context is not None:
                        context.close()
                    context = browser.new_context(locale="ru-RU",
                                                  viewport={"width": 1360, "height": 900})
                    page = context.new_page()
                    if person:
                        sign_in(page, base, person)
                    who = person
                assert page is not None
                if path == "ticket":
                    path = last_ticket
                path = path.replace("{last90}", last_90_days())
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                found = re.search(r'href="(/tickets/[A-Z]+-\d{4}-\d+/)"', page.content())
                if found:
                    last_ticket = found.group(1)
                target = OUT / f"{name}.png"
                page.screenshot(path=str(target), full_page=False)
                print(f"{target.relative_to(ROOT)}  ({person or 'anonymous'} {path})")
            if context is not None:
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
