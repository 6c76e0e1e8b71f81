"""The live dashboards: the /metrics registry sampled once a second, as server-sent events.

The figures are the ones Prometheus scrapes (the SMS core's and the voice
service's collectors in the daemon's registry), turned into rates by
differencing two samples, so the console and a Grafana board never disagree.
The only database read is the age of the oldest queued message, once a tick,
and only while someone watches: no tick runs without a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from warpd.api.keys import DATABASE, DRAINING, METRICS

log = structlog.get_logger(__name__)

TICK = 1.0
KEEPALIVE = 15.0
Labels = tuple[tuple[str, str], ...]
Values = Mapping[tuple[str, Labels], float]
WATCHED = (
    "warpd_sms_accepted_total",
    "warpd_sms_refused_total",
    "warpd_sms_upstream_responses_total",
    "warpd_sms_receipts_total",
    "warpd_sms_queue_depth",
    "warpd_sms_in_flight",
    "warpd_smpp_connector_binds",
    "warpd_sms_commit_queue",
    "warpd_voice_active_calls",
    "warpd_voice_call_attempts_total",
    "warpd_voice_call_failures_total",
)
QUEUE_AGE_SQL = (
    "SELECT count(*) AS depth, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
    " AS oldest_s FROM messages WHERE state = 'queued'"
)


def read(registry: CollectorRegistry) -> dict[tuple[str, Labels], float]:
    """The watched samples, keyed by name and sorted labels."""
    out: dict[tuple[str, Labels], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in WATCHED:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _by(values: Values, name: str, label: str) -> dict[str, float]:
    """``name`` summed by one label's value."""
    sums: dict[str, float] = defaultdict(float)
    for (sample, labels), value in values.items():
        if sample == name:
            sums[dict(labels).get(label, "")] += value
    return sums


def _where(values: Values, name: str, **match: str) -> dict[str, float]:
    """``name`` by its first label not in ``match``, for samples matching ``match``."""
    sums: dict[str, float] = defaultdict(float)
    for (sample, labels), value in values.items():
        found = dict(labels)
        if sample == name and all(found.get(k) == v for k, v in match.items()):
            rest = [v for k, v in labels if k not in match]
            sums[rest[0] if rest else ""] += value
    return sums


def _rate(
    now: Mapping[str, float], before: Mapping[str, float], seconds: float
) -> dict[str, float]:
    # A counter that went down restarted (a reload): count from zero, never negative.
    return {
        k: round(max(0.0, v - before.get(k, 0.0) if v >= before.get(k, 0.0) else v) / seconds, 2)
        for k, v in now.items()
    }


def snapshot(now: Values, before: Values, seconds: float, queue: Mapping[str, float]) -> Any:
    """The operator dashboard's figures from two samples ``seconds`` apart (pure)."""
    seconds = max(seconds, 1e-3)
    rate = {
        name: _rate(_by(now, name, label), _by(before, name, label), seconds)
        for name, label in (
            ("warpd_sms_accepted_total", "account"),
            ("warpd_sms_refused_total", "account"),
            ("warpd_sms_upstream_responses_total", "connector"),
            ("warpd_sms_receipts_total", "connector"),
        )
    }
    delivered = _where(now, "warpd_sms_receipts_total", state="delivered")
    receipts = _by(now, "warpd_sms_receipts_total", "connector")
    binds_up = _where(now, "warpd_smpp_connector_binds", state="bound")
    depth, in_flight = (
        _by(now, n, "connector") for n in ("warpd_sms_queue_depth", "warpd_sms_in_flight")
    )
    names = sorted(set(depth) | set(receipts) | set(rate["warpd_sms_upstream_responses_total"]))
    connectors: dict[str, dict[str, Any]] = {
        n: {
            "out_per_s": rate["warpd_sms_upstream_responses_total"].get(n, 0.0),
            "receipts_per_s": rate["warpd_sms_receipts_total"].get(n, 0.0),
            "delivery_ratio": _ratio(delivered.get(n, 0.0), receipts.get(n, 0.0)),
            "queue": int(depth.get(n, 0)),
            "in_flight": int(in_flight.get(n, 0)),
            "binds_up": int(binds_up.get(n, 0)),
        }
        for n in names
    }
    accounts = {
        n: {"in_per_s": v, "refused_per_s": rate["warpd_sms_refused_total"].get(n, 0.0)}
        for n, v in rate["warpd_sms_accepted_total"].items()
    }
    errors = {
        f"upstream {k}": int(v)
        for k, v in _by(now, "warpd_sms_upstream_responses_total", "status").items()
        if k != "ok"
    }
    errors |= {
        f"refused {k}": int(v) for k, v in _by(now, "warpd_sms_refused_total", "code").items()
    }
    errors |= {
        f"SIP {k}": int(v) for k, v in _by(now, "warpd_voice_call_failures_total", "status").items()
    }
    attempts = _rate(
        _by(now, "warpd_voice_call_attempts_total", "trunk"),
        _by(before, "warpd_voice_call_attempts_total", "trunk"),
        seconds,
    )
    return {
        "t": time.time(),
        "totals": {
            "in_per_s": round(sum(a["in_per_s"] for a in accounts.values()), 2),
            "out_per_s": round(sum(c["out_per_s"] for c in connectors.values()), 2),
            "receipts_per_s": round(sum(c["receipts_per_s"] for c in connectors.values()), 2),
            "delivery_ratio": _ratio(sum(delivered.values()), sum(receipts.values())),
            "binds_up": sum(c["binds_up"] for c in connectors.values()),
            "commit_queue": int(sum(_by(now, "warpd_sms_commit_queue", "").values())),
        },
        "queue": dict(queue),
        "connectors": connectors,
        "accounts": accounts,
        "errors": errors,
        "voice": {
            "active_calls": int(sum(_by(now, "warpd_voice_active_calls", "").values())),
            "cps": round(sum(attempts.values()), 2),
        },
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Sampler:
    """Ticks while anyone subscribes; each subscriber gets the newest snapshot."""

    app: web.Application
    subscribers: set[asyncio.Queue[Any]] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def subscribe(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        self.subscribers.add(queue)
        self.wake.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        self.subscribers.discard(queue)

    def close(self) -> None:
        self.closed = True
        self._publish(None)

    def _publish(self, item: Any) -> None:
        for queue in self.subscribers:
            if queue.full():
                queue.get_nowait()  # a slow browser gets the newest figures, not a backlog
            queue.put_nowait(item)

    async def run(self) -> None:
        registry = self.app[METRICS].registry
        before, at = read(registry), time.monotonic()
        while True:
            if not self.subscribers:
                self.wake.clear()
                await self.wake.wait()
                before, at = read(registry), time.monotonic()
            await asyncio.sleep(TICK)
            now, moment = read(registry), time.monotonic()
            try:
                async with self.app[DATABASE].pool.acquire() as conn:
                    queue = dict(await conn.fetchrow(QUEUE_AGE_SQL) or {})
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The figures from memory still go out; only the queue's age is missing.
                log.warning("console_queue_age_failed", error=repr(exc))
                queue = {}
            self._publish(snapshot(now, before, moment - at, queue))
            before, at = now, moment


SAMPLER = web.AppKey("console_sampler", Sampler)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    sampler = app[SAMPLER] = Sampler(app)
    task = asyncio.create_task(sampler.run(), name="console-sampler")
    yield
    sampler.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_streams(app: web.Application) -> None:
    """On shutdown, before aiohttp waits for handlers: open event streams end now."""
    app[SAMPLER].close()


async def stream(request: web.Request, shape: Any) -> web.StreamResponse:
    """Server-sent events of ``shape(snapshot)`` until the browser leaves or warpd drains."""
    sampler = request.app[SAMPLER]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    queue = sampler.subscribe()
    try:
        while not sampler.closed and not request.app[DRAINING].is_set():
            try:
                async with asyncio.timeout(KEEPALIVE):
                    item = await queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if item is None:
                break
            data = await shape(item)
            await response.write(b"data: " + orjson.dumps(data) + b"\n\n")
    except ConnectionResetError:
        pass  # the browser left
    finally:
        sampler.unsubscribe(queue)
    return response


def account_view(item: Any, account: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """What a customer's live view may see: its own account's rates, nothing else."""
    mine = item["accounts"].get(account, {"in_per_s": 0.0, "refused_per_s": 0.0})
    return {"t": item["t"], **mine, **extra}
