"""Prometheus metrics of the ng client, one label set per rtpengine instance.

The collectors live in a registry passed in by the owner (the daemon's
``/metrics`` registry) or in a fresh one per pool, so two pools in one process
(tests) never clash over metric names.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# An ng round trip on loopback takes ~0.3 ms; over a LAN a few ms; a
# retransmission adds the client's timeout (500 ms by default).
_RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ErrorKind(StrEnum):
    TIMEOUT = "timeout"
    SEND = "send"
    ERROR_REPLY = "error_reply"
    OVERLOAD = "overload"
    MALFORMED = "malformed"
    UNKNOWN_COOKIE = "unknown_cookie"


class NgMetrics:
    """The collectors; ``instance(name)`` gives one instance's bound view."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.round_trip = Histogram(
            "warpd_rtpengine_round_trip_seconds",
            "ng request to reply, for requests answered without retransmission",
            ["instance", "command"],
            buckets=_RTT_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "warpd_rtpengine_requests",
            "ng requests sent (retransmissions not counted)",
            ["instance", "command"],
            registry=self.registry,
        )
        self.errors = Counter(
            "warpd_rtpengine_errors",
            "failed ng requests and dropped replies, by kind",
            ["instance", "kind"],
            registry=self.registry,
        )
        self.retransmissions = Counter(
            "warpd_rtpengine_retransmissions",
            "ng requests sent again with the same cookie",
            ["instance"],
            registry=self.registry,
        )
        self.up = Gauge(
            "warpd_rtpengine_up",
            "1 when the instance takes calls, 0 while it is disabled",
            ["instance"],
            registry=self.registry,
        )

    def instance(self, name: str) -> InstanceMetrics:
        return InstanceMetrics(self, name)


class InstanceMetrics:
    """One instance's children, bound once: ``labels()`` is too slow per request."""

    def __init__(self, metrics: NgMetrics, name: str) -> None:
        self._metrics = metrics
        self.name = name
        self._retransmissions = metrics.retransmissions.labels(name)
        self._up = metrics.up.labels(name)
        self._errors = {kind: metrics.errors.labels(name, kind.value) for kind in ErrorKind}
        self._requests: dict[str, Counter] = {}
        self._round_trip: dict[str, Histogram] = {}

    def request(self, command: str) -> None:
        counter = self._requests.get(command)
        if counter is None:
            counter = self._requests[command] = self._metrics.requests.labels(self.name, command)
        counter.inc()

    def round_trip(self, command: str, seconds: float) -> None:
        histogram = self._round_trip.get(command)
        if histogram is None:
            histogram = self._metrics.round_trip.labels(self.name, command)
            self._round_trip[command] = histogram
        histogram.observe(seconds)

    def error(self, kind: ErrorKind) -> None:
        self._errors[kind].inc()

    def retransmission(self) -> None:
        self._retransmissions.inc()

    def set_up(self, up: bool) -> None:
        self._up.set(1 if up else 0)
