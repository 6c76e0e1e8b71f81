"""Webhook signatures: ``X-Warpd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>." + body`` with the webhook's secret, so a receiver that
checks it knows the body is ours and unchanged, and by bounding ``t`` that it
is not a replay of an old POST. The README's five-line recipe is
:func:`verify` without the parsing niceties.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Warpd-Signature"
# How far a receiver should let ``t`` drift from its clock, in seconds.
TOLERANCE = 300


def mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={mac(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), mac(secret, timestamp, body))
