"""The webhook sender's Prometheus series, read from its counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from warpd.api.webhook_sender import WebhookSender


class WebhookCollector(Collector):
    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        attempts = CounterMetricFamily(
            "warpd_webhook_attempts", "Webhook POSTs by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(self._sender.outcomes.items()):
            attempts.add_metric([outcome], n)
        yield attempts
        yield GaugeMetricFamily(
            "warpd_webhook_busy", "Deliveries posting or queued behind a busy endpoint",
            value=self._sender.busy,
        )  # fmt: skip
