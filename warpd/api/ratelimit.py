"""Per-key rate limits: a token bucket, as a pure function over frozen state.

The bucket holds ``burst`` tokens and refills at ``rate`` per second; a request
takes one or waits ``Retry-After``. Time is monotonic seconds passed in, so
the policy is tested without a clock.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Bucket(NamedTuple):
    """Frozen like the other policy records, but a tuple: one is made per request, and a
    frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``."""

    rate: float
    burst: int
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> Bucket:
        return cls(rate, burst, float(burst), now)


def take(bucket: Bucket, now: float, cost: int = 1) -> tuple[Bucket, float]:
    """(next state, 0.0) when allowed; (state, seconds to wait) when not.

    A cost larger than the burst can never pass; it waits for a full bucket
    and is then charged the burst, so a batch is limited but never stuck.
    """
    tokens = min(float(bucket.burst), bucket.tokens + max(0.0, now - bucket.at) * bucket.rate)
    needed = float(min(cost, bucket.burst))
    if tokens >= needed:
        return Bucket(bucket.rate, bucket.burst, tokens - needed, now), 0.0
    return Bucket(bucket.rate, bucket.burst, tokens, now), (needed - tokens) / bucket.rate


def retry_after_header(wait: float) -> str:
    """Retry-After is whole seconds (RFC 9110 10.2.3): round up, never 0."""
    return str(max(1, math.ceil(wait)))
