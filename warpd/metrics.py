"""Prometheus metrics: one registry per daemon, so tests can run several.

Process and platform collectors come from prometheus-client; warpd's own
series are named ``warpd_*`` and grow with each subsystem.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import warpd
from warpd.store import Database


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.build = Info("warpd_build", "warpd version and runtime", registry=r)
        self.build.info({"version": warpd.__version__, "python": platform.python_version()})
        self.start_time = Gauge("warpd_start_time_seconds", "Unix time warpd started", registry=r)
        self.ready = Gauge("warpd_ready", "1 when warpd serves traffic", registry=r)
        self.schema_version = Gauge(
            "warpd_schema_version", "Applied database schema version", registry=r
        )
        self.reloads = Counter(
            "warpd_config_reloads", "SIGHUP reloads by result", ["result"], registry=r
        )
        self.http_requests = Counter(
            "warpd_http_requests", "HTTP requests by route and status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.http_latency = Histogram(
            "warpd_http_request_seconds", "HTTP request handling time", ["route"], registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )  # fmt: skip

    def watch_database(self, database: Database) -> None:
        self.registry.register(_PoolCollector(database))


class _PoolCollector(Collector):
    """Pool occupancy, read at scrape time rather than kept up to date per query."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._database.pool
        family = GaugeMetricFamily(
            "warpd_db_pool_connections", "PostgreSQL pool connections by state", labels=["state"]
        )
        idle = pool.get_idle_size()
        family.add_metric(["idle"], idle)
        family.add_metric(["busy"], pool.get_size() - idle)
        family.add_metric(["max"], pool.get_max_size())
        yield family
