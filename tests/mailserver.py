"""A private dovecot IMAP server for the email intake tests (Debian's dovecot-imapd: `make
mailserver` installs it). Own configuration in a temporary folder, passwd-file login, maildirs
in the folder, IMAP over TLS on a free loopback port with a self-signed certificate made by
openssl; stopped after the tests."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"


@dataclass
class MailServer:
    host: str
    port: int
    user: str
    password: str
    ca_file: str
    root: Path

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message the way a client or an MTA would: IMAP APPEND, unread."""
        import imaplib

        context = ssl.create_default_context(cafile=self.ca_file)
        with imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context) as conn:
            conn.login(self.user, self.password)
            status, detail = conn.append(folder, "", None, raw)  # type: ignore[arg-type]
            assert status == "OK", detail

    def unseen(self, folder: str = "INBOX") -> int:
        import imaplib

        context = ssl.create_default_context(cafile=self.ca_file)
        with imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context) as conn:
            conn.login(self.user, self.password)
            conn.select(folder)
            _status, data = conn.search(None, "UNSEEN")
            return len((data[0] or b"").split())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, log: Path) -> None:
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not start: {log.read_text() if log.exists() else ''}")


def start(root: Path) -> tuple[MailServer, subprocess.Popen[bytes]]:
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("run", "state", "home"):
        (root / sub).mkdir(exist_ok=True)
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    me = pwd.getpwuid(os.getuid())
    user, password = "sales", "Imap-pass-2026"
    (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    port = _free_port()
    log = root / "dovecot.log"
    internal = "dovecot" if os.getuid() == 0 else me.pw_name
    if os.getuid() == 0:  # dovecot never gives mail to uid 0: the mail belongs to "dovecot"
        me = pwd.getpwnam("dovecot")
        os.chown(root / "home", me.pw_uid, me.pw_gid)
    login_user = "dovenull" if os.getuid() == 0 else me.pw_name
    (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
info_log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login_user}
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={me.pw_uid} gid={me.pw_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(port, log)
    except RuntimeError:
        proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(err) from None
    return MailServer("127.0.0.1", port, user, password, str(cert), root), proc


@pytest.fixture(scope="module")
def mailserver() -> Iterator[MailServer]:
    if not shutil.which(DOVECOT):
        pytest.fail("dovecot is not installed: run `make mailserver`")
    # Not under pytest's private temporary folder: dovecot's own users must read the files.
    root = Path(tempfile.mkdtemp(prefix="estafeta-dovecot-"))
    root.chmod(0o755)
    server, proc = start(root)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)
