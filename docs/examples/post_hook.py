"""Sign and post an example webhook to Estafeta (standard library only).

    python3 docs/examples/post_hook.py URL SECRET FILE

For example, against ``estafeta demo`` (it prints the sources' addresses and secrets):

    python3 docs/examples/post_hook.py http://127.0.0.1:8000/hooks/telephony/pbx/ SECRET \\
        docs/examples/call.json

The signature is the one docs/webhooks-in.md ("Signing") describes: HMAC-SHA256 of
``"<timestamp>.<raw body>"`` with the source's secret. The file's ``started_at`` / ``sent_at`` is
set to now, so the call or message is today's; its ``call_id`` / ``message_id`` stays as written,
so posting the same file again is answered with the first answer and ``X-Estafeta-Repeated:
true``, and nothing is written twice. Prints the HTTP status, that header and the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime


def main(url: str, secret: str, path: str) -> int:
    if not url.startswith(("http://", "https://")):
        sys.stderr.write(f"{url} is not an http(s) address\n")
        return 2
    with open(path, encoding="utf-8") as handle:
        payload = json.load(handle)
    now = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    for field in ("started_at", "sent_at"):
        if field in payload:
            payload[field] = now
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    timestamp = str(int(time.time()))
    signature = "sha256=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"."
                                     + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Estafeta-Timestamp": timestamp,
               "X-Estafeta-Signature": signature}
    # http(s) only, checked above
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, answered, answer = response.status, response.headers, response.read()
    except urllib.error.HTTPError as refusal:
        status, answered, answer = refusal.code, refusal.headers, refusal.read()
    repeated = " (repeated)" if answered.get("X-Estafeta-Repeated") == "true" else ""
    sys.stdout.write(f"{status}{repeated}\n{answer.decode('utf-8', 'replace')}\n")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__ or "")
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
