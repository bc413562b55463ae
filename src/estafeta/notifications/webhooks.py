"""Outgoing webhooks: a JSON POST signed with HMAC-SHA256.

Headers: ``X-Estafeta-Timestamp`` (Unix seconds), ``X-Estafeta-Signature: sha256=<hex>`` over
``f"{timestamp}.{body}"`` with the endpoint's secret, ``X-Estafeta-Delivery`` (the notification
id: the same on every retry). The host is resolved first and the connection goes to the address
that was checked (no second lookup that could answer differently); private, loopback,
link-local and other non-public addresses are refused unless the endpoint allows them.
Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from .models import Notification, WebhookEndpoint
from .services import SENT, Outcome

TIMEOUT = 15


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def body_of(n: Notification) -> bytes:
    data: dict[str, Any] = {
        "id": n.pk, "kind": n.kind, "created_at": n.created_at.isoformat(),
        "recipient": {"id": n.recipient_id, "username": n.recipient.username,
                      "name": n.recipient.get_full_name()},
        "ticket": n.ticket.number if n.ticket is not None else None,
        "payload": n.payload,
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode()


class Refused(Exception):
    """The target is not one Estafeta may call."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(endpoint: WebhookEndpoint) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, path, address to connect to); ``Refused`` if not allowed."""
    parts = urlsplit(endpoint.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {endpoint.url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not endpoint.allow_private:
        bad = [a for a in addresses if not _public(a)]
        if bad:
            raise Refused(f"{parts.hostname} resolves to a private, loopback or link-local "
                          f"address ({bad[0]}); an admin may allow it on the endpoint")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path, addresses[0]


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.host)


def send(n: Notification) -> Outcome:
    """2xx: sent. 408, 429, 5xx, a lost connection: tried again. Other answers and refused
    targets: permanent."""
    endpoint = n.endpoint
    if endpoint is None:
        return Outcome(False, "webhook without an endpoint", permanent=True)
    if not endpoint.is_active:
        return Outcome(False, "endpoint switched off", permanent=True)
    try:
        scheme, host, port, path, address = resolve(endpoint)
    except Refused as exc:
        return Outcome(False, str(exc), permanent=True)
    except OSError as exc:
        return Outcome(False, str(exc))
    body = body_of(n)
    timestamp = str(int(time.time()))
    cls = _PinnedTLS if scheme == "https" else _Pinned
    conn = cls(host, port, address, TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Estafeta-Webhook/1",
            "X-Estafeta-Timestamp": timestamp,
            "X-Estafeta-Signature": sign(endpoint.secret, timestamp, body),
            "X-Estafeta-Delivery": str(n.pk),
            "X-Estafeta-Kind": n.kind,
        })
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, f"webhook: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    if 200 <= status < 300:
        return SENT
    permanent = status < 500 and status not in (408, 429)
    return Outcome(False, f"webhook answered HTTP {status}", permanent=permanent)
