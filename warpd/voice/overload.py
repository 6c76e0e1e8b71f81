"""Overload control: shed new calls while the event loop is late (RFC 6357 section 5).

Past its capacity a B2BUA that keeps taking every INVITE collapses instead of
levelling off: the socket buffer fills with INVITEs the callers have already
retransmitted or given up on, each one still costs a parse and a set-up, and
the answers of the calls in progress wait behind them (measured: at twice the
sustainable rate almost no call completed). The signal is how late the loop
runs a timer: when it is late, everything warpd does waits that long. While
the smoothed lag is above the limit a new INVITE gets 503 with Retry-After,
which costs a fraction of a call; requests in dialogs (ACK, BYE, re-INVITE),
CANCEL and every response are still handled, so calls in progress finish.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prometheus_client import Gauge

#: how often the loop's lateness is sampled, seconds
SAMPLE_INTERVAL = 0.02
#: weight of the newest sample: a burst of a few late turns is not overload
SMOOTHING = 0.2
#: what a shed INVITE's 503 tells the caller to wait, seconds
RETRY_AFTER = 1


@dataclass(slots=True)
class LagEstimate:
    """A smoothed lateness of the loop (seconds) against a limit; pure."""

    limit: float
    lag: float = 0.0

    def sample(self, late: float) -> None:
        self.lag += SMOOTHING * (max(0.0, late) - self.lag)

    @property
    def overloaded(self) -> bool:
        return self.limit > 0 and self.lag > self.limit


async def watch(estimate: LagEstimate, gauge: Gauge) -> None:
    """Sample the running loop's lateness into ``estimate`` every ``SAMPLE_INTERVAL``."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + SAMPLE_INTERVAL
        await asyncio.sleep(SAMPLE_INTERVAL)
        estimate.sample(loop.time() - due)
        gauge.set(estimate.lag)
