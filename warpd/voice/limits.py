"""Admission limits of a call, pure: channels, calls per second, balance.

``admit`` decides from frozen inputs whether a new call may proceed and, if
not, which SIP answer the PBX gets: a trunk at its channel limit gets
``channel_status`` (503 or 486, per operator taste), one over its calls per
second 503 with Retry-After (RFC 3261 21.5.4 lets a 503 say when to retry), an
account without funds 402. The token bucket is a value: ``take`` returns the
bucket after the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``at`` is when ``tokens`` was true."""

    rate: float
    burst: float
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def refilled(self, now: float) -> TokenBucket:
        tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        return TokenBucket(self.rate, self.burst, tokens, now)

    def take(self, now: float) -> tuple[bool, TokenBucket]:
        """(allowed, bucket after): one token per call when one is there."""
        bucket = self.refilled(now)
        if bucket.tokens >= 1.0:
            return True, TokenBucket(self.rate, self.burst, bucket.tokens - 1.0, now)
        return False, bucket

    def wait_for_token(self, now: float) -> float:
        """Seconds until the next token (for Retry-After)."""
        missing = 1.0 - self.refilled(now).tokens
        return 0.0 if missing <= 0 else missing / self.rate


class Refusal(Enum):
    CHANNELS = "channels"
    CPS = "cps"
    BALANCE = "balance"


@dataclass(frozen=True, slots=True)
class Verdict:
    refusal: Refusal | None
    status: int = 0
    retry_after: int | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


ALLOW = Verdict(None)


@dataclass(frozen=True, slots=True)
class CallLimits:
    max_channels: int
    channel_status: int = 503


def admit(
    limits: CallLimits,
    active_channels: int,
    cps_allowed: bool,
    cps_wait: float,
    available_micros: int,
    *,
    minimum_micros: int = 1,
) -> Verdict:
    """Channels first (a full trunk refuses before spending a CPS token's worth of
    work), then calls per second, then money: ``available_micros`` is balance
    plus credit limit minus what is reserved and what calls in progress may
    still cost; it must cover ``minimum_micros``, the cheapest answered call."""
    if active_channels >= limits.max_channels:
        return Verdict(Refusal.CHANNELS, limits.channel_status)
    if not cps_allowed:
        return Verdict(Refusal.CPS, 503, max(1, -(-int(cps_wait * 1000) // 1000)))
    if available_micros < max(1, minimum_micros):
        return Verdict(Refusal.BALANCE, 402)
    return ALLOW


class SourceRates:
    """Per-source-address token buckets for raw datagrams (a flood from one address is
    dropped before parsing, others unaffected). At most ``capacity`` sources are
    tracked; when full, buckets that have refilled completely are forgotten."""

    def __init__(self, rate: float, burst: float, capacity: int = 65_536) -> None:
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.capacity:
                self._forget_idle(now)
            bucket = TokenBucket.full(self.rate, self.burst, now)
        allowed, self._buckets[source] = bucket.take(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        idle = [s for s, b in self._buckets.items() if b.refilled(now).tokens >= b.burst]
        for source in idle or list(self._buckets)[: self.capacity // 2]:
            del self._buckets[source]


def _rates(rate: float) -> SourceRates | None:
    """A per-source bucket of ``rate`` a second, bursts of twice that; None for 0."""
    return SourceRates(rate, 2 * rate) if rate > 0 else None


class SourceBudgets:
    """A request budget and a response budget per source address (0: no limit).

    Apart so that a request flood from (or spoofed as) a gateway's address
    spends only the requests' tokens, and the gateway's answers still get in."""

    def __init__(self, request_rate: float, response_rate: float) -> None:
        self.requests = _rates(request_rate)
        self.responses = _rates(response_rate)

    def allow(self, source: str, now: float, response: bool) -> bool:
        rates = self.responses if response else self.requests
        return rates is None or rates.allow(source, now)
