"""HMAC signatures of incoming webhooks (pure functions: no Django, ``now`` passed in).

The sender computes ``HMAC-SHA256(secret, "<timestamp>.<raw body>")`` and sends it as
``X-Estafeta-Signature: sha256=<hex>`` with ``X-Estafeta-Timestamp: <unix seconds>``. The
timestamp is inside the signed text, so an old request cannot be replayed with a fresh one; a
replay inside the tolerance is caught by the provider's call or message id.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from estafeta.domain.errors import EstafetaError

PREFIX = "sha256="
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class Unauthorised(EstafetaError):
    """The request is not provably from the source: answered 401, nothing is read further."""

    code = "bad_signature"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header value ``sha256=<hex>`` for ``body`` sent at ``timestamp``."""
    text = str(timestamp).encode("ascii") + b"." + body
    return PREFIX + hmac.new(secret.encode("utf-8"), text, hashlib.sha256).hexdigest()


def verify(*, secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float, tolerance: int) -> int:
    """Return the request's timestamp if ``signature`` is right and the time within
    ``tolerance`` seconds of ``now``; else raise ``Unauthorised`` with a code saying why."""
    if not timestamp or not signature:
        raise Unauthorised("the X-Estafeta-Timestamp and X-Estafeta-Signature headers are "
                           "required", code="signature_missing")
    timestamp = timestamp.strip()
    signature = signature.strip()
    if not _TIMESTAMP.match(timestamp):
        raise Unauthorised("X-Estafeta-Timestamp is unix time in whole seconds",
                           code="bad_timestamp")
    if not signature.startswith(PREFIX) or not _HEX.match(signature[len(PREFIX):]):
        raise Unauthorised("X-Estafeta-Signature is sha256=<64 lower-case hex digits>",
                           code="bad_signature")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise Unauthorised("the signature does not match the body and timestamp",
                           code="bad_signature")
    sent = int(timestamp)
    # Checked after the signature, so an unsigned request learns nothing about the clock.
    if abs(now - sent) > tolerance:
        raise Unauthorised(f"the timestamp is more than {tolerance} seconds away from now",
                           code="stale_timestamp")
    return sent
