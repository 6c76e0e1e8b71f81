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

from warpd.smpp.connector import BindHealth
from warpd.sms.stats import Histogram

if TYPE_CHECKING:
    from warpd.sms.service import SmsCore


# name, help, labels, a counter keyed (account or connector id, label), and the ids' names
_Series = tuple[str, str, list[str], Counter[tuple[int, str]], dict[int, str]]


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

        # (name, help, labels, counter keyed (account or connector id, label), whose ids)
        counters: tuple[_Series, ...] = (
            ("warpd_sms_accepted", "Messages accepted (committed)", ["account", "channel"],
             stats.accepted, accounts),
            ("warpd_sms_refused", "Messages refused at acceptance", ["account", "code"],
             stats.refused, accounts),
            ("warpd_sms_upstream_responses", "submit_sm responses from carriers by status",
             ["connector", "status"], stats.responses, connectors),
            ("warpd_sms_receipts", "Final receipts from carriers by state",
             ["connector", "state"], stats.receipts, connectors),
            ("warpd_sms_deliveries_taken", "Receipts and MO taken by customers' binds",
             ["account", "kind"], stats.delivered, accounts),
        )  # fmt: skip
        for name, doc, labels, counter, names in counters:
            family = CounterMetricFamily(name, doc, labels=labels)
            for (owner, label), n in counter.items():
                family.add_metric([names.get(owner, str(owner)), label], n)
            yield family
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
        age = GaugeMetricFamily(
            "warpd_sms_queue_age_seconds",
            "How long the oldest message held in memory per connector has waited",
            labels=["connector"],
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
            age.add_metric([name], core.dispatcher.queue_age(connector.conf.id))
            in_flight.add_metric([name], connector.in_flight)
            states = Counter(b.health.value for b in connector.binds)
            for state in (h.value for h in BindHealth):
                binds.add_metric([name, state], states.get(state, 0))
        yield queue
        yield age
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
        listener, inbound = core.listener, core.inbound
        events = CounterMetricFamily(
            "warpd_sms_events", "What the SMS core counts besides messages", labels=["event"]
        )
        for event, n in (
            ("group_commit", core.commit.commits),
            ("part_sent_upstream", core.dispatcher.sent_parts),
            ("mo_received", inbound.mo),
            ("receipt_without_id", inbound.unreadable),
            ("bind_refused", listener.bind_failures),
            ("bind_locked_out", listener.locked_out),
            ("submit_throttled", listener.throttled),
            ("pdu_rejected", listener.rejected),
        ):
            events.add_metric([event], n)
        yield events
