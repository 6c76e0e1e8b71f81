"""What happens to a webhook delivery after an attempt: pure policy over plain values.

A 2xx delivers. Anything else (another status, a timeout, a refused
connection) is retried with exponential back-off, ``initial * 2**(n-1)`` capped
at ``maximum``, until the next try would fall after the delivery's deadline
(the earlier of its ``expires_at`` and ``created_at + max_retry``); then it
expires. A target that cannot be posted to at all (webhook deleted, URL
refused by policy) fails at once: retrying cannot help.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    next_attempt_at: dt.datetime | None = None


def backoff(attempt_no: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the ``attempt_no``-th failed attempt (1-based)."""
    return min(maximum, initial * 2.0 ** min(attempt_no - 1, 60))


def decide(
    *,
    status: int | None,
    permanent: bool,
    attempt_no: int,
    now: dt.datetime,
    deadline: dt.datetime,
    initial: float,
    maximum: float,
) -> Outcome:
    if status is not None and 200 <= status < 300:
        return Outcome(Verdict.DELIVERED)
    if permanent:
        return Outcome(Verdict.FAILED)
    at = now + dt.timedelta(seconds=backoff(attempt_no, initial, maximum))
    if at > deadline:
        return Outcome(Verdict.EXPIRED)
    return Outcome(Verdict.RETRY, at)
