"""The SMS core's Prometheus series, read from its counters at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from warpd.sms.stats import Histogram

if TYPE_CHECKING:
    from warpd.sms.service import SmsCore


def _histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], hist.cumulative(), hist.total)
    return family


class SmsCollector(Collector):
    def __init__(self, core: SmsCore) -> None:
        self._core = core

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        core, stats = self._core, self._core.stats
        accounts = {a.id: a.name for a in core.catalog.accounts.values()}
        connectors = {c.id: c.name for c in core.catalog.connectors.values()}

        accepted = CounterMetricFamily(
            "warpd_sms_accepted", "Messages accepted (committed)", labels=["account", "channel"]
        )
        for (account_id, channel), n in stats.accepted.items():
            accepted.add_metric([accounts.get(account_id, str(account_id)), channel], n)
        yield accepted
        refused = CounterMetricFamily(
            "warpd_sms_refused", "Messages refused at acceptance", labels=["account", "code"]
        )
        for (account_id, code), n in stats.refused.items():
            refused.add_metric([accounts.get(account_id, str(account_id)), code], n)
        yield refused
        responses = CounterMetricFamily(
            "warpd_sms_upstream_responses",
            "submit_sm responses from carriers by status",
            labels=["connector", "status"],
        )
        for (connector_id, status), n in stats.responses.items():
            responses.add_metric([connectors.get(connector_id, str(connector_id)), status], n)
        yield responses
        receipts = CounterMetricFamily(
            "warpd_sms_receipts",
            "Final receipts from carriers by state",
            labels=["connector", "state"],
        )
        for (connector_id, state), n in stats.receipts.items():
            receipts.add_metric([connectors.get(connector_id, str(connector_id)), state], n)
        yield receipts
        delivered = CounterMetricFamily(
            "warpd_sms_deliveries_taken",
            "Receipts and MO taken by customers' binds",
            labels=["account", "kind"],
        )
        for (account_id, kind), n in stats.delivered.items():
            delivered.add_metric([accounts.get(account_id, str(account_id)), kind], n)
        yield delivered
        yield _histogram(
            "warpd_sms_accept_seconds",
            "Submit to committed answer (submit_sm_resp, 202)",
            stats.accept_latency,
        )
        yield _histogram(
            "warpd_sms_receipt_seconds", "Acceptance to final receipt", stats.receipt_latency
        )

        queue = GaugeMetricFamily(
            "warpd_sms_queue_depth", "Messages held in memory per connector", labels=["connector"]
        )
        in_flight = GaugeMetricFamily(
            "warpd_sms_in_flight", "submit_sm awaiting their response", labels=["connector"]
        )
        binds = GaugeMetricFamily(
            "warpd_smpp_connector_binds", "Carrier binds by state", labels=["connector", "state"]
        )
        for connector in core.connectors.values():
            name = connector.conf.name
            queue.add_metric([name], core.dispatcher.queued(connector.conf.id))
            in_flight.add_metric([name], connector.in_flight)
            states = Counter(b.health.value for b in connector.binds)
            for state in ("connecting", "bound", "backoff", "stopped"):
                binds.add_metric([name, state], states.get(state, 0))
        yield queue
        yield in_flight
        yield binds
        customer = GaugeMetricFamily(
            "warpd_smpp_customer_binds", "Customer binds open per account", labels=["account"]
        )
        users = core.catalog.smpp_users_by_id
        per_account: Counter[str] = Counter()
        for user_id, count in core.listener.bind_counts.items():
            user = users.get(user_id)
            if user is not None and count:
                per_account[accounts.get(user.account_id, str(user.account_id))] += count
        for account, count in per_account.items():
            customer.add_metric([account], count)
        yield customer
        pending = GaugeMetricFamily("warpd_sms_commit_queue", "Messages awaiting their commit")
        pending.add_metric([], core.commit.depth)
        yield pending
