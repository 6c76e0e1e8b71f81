"""Token buckets: a sustained rate with a burst (smpp.md 2: never a fixed gap)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # bucket size
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, count: float = 1.0) -> bool:
        """Spend ``count`` tokens if the bucket holds them at ``now``."""
        if self.tokens < 0:  # first use: a full bucket
            self.tokens, self.stamp = self.burst, now
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < count:
            self.tokens = tokens
            return False
        self.tokens = tokens - count
        return True

    def retry_after(self, count: float = 1.0) -> float:
        """Seconds until ``count`` tokens are there again."""
        return max(0.0, (count - self.tokens) / self.rate)
