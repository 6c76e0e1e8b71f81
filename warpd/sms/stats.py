"""Counters the SMS hot path keeps as plain integers, read by Prometheus at scrape time.

A prometheus-client ``labels().inc()`` per message would cost the hot path
more than the work it counts; these are dict increments, and the collector
in warpd/sms/metrics.py turns them into series when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.buckets, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class SmsStats:
    #: (account_id, channel) -> messages accepted
    accepted: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: (account_id, code) -> refusals
    refused: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: (connector_id, status) -> submit_sm responses from the carrier ("ok", "0x00000058")
    responses: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: (connector_id, state) -> final receipts from the carrier
    receipts: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: (account_id, kind) -> receipts and MO taken by a customer's bind
    delivered: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: acceptance -> committed, i.e. submit -> submit_sm_resp / HTTP 202
    accept_latency: Histogram = field(default_factory=Histogram)
    #: committed -> final receipt from the carrier
    receipt_latency: Histogram = field(default_factory=Histogram)
