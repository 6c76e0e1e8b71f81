"""The outbox publisher: ``outbox`` rows to a RabbitMQ topic exchange, confirmed.

Migration 0011's triggers write an ``outbox`` row in the same transaction as
each receipt, MO, SMS or voice CDR and ledger entry, so an event exists if and
only if its row committed. This task drains the table in batches: it claims up
to ``[events] batch`` rows with ``FOR UPDATE SKIP LOCKED`` (so every instance
can run it, each on different rows), publishes them on a channel with
publisher confirms, and deletes them in the same transaction once RabbitMQ has
confirmed every one. A failure anywhere rolls the claim back and the rows stay
for the next try: delivery is at least once (a crash between the confirm and
the commit sends a batch again), and every message carries its outbox id as
AMQP ``message_id`` for consumers to drop repeats.

While RabbitMQ is away the backlog waits in PostgreSQL; the publisher
reconnects with exponential back-off and ``warpd_events_*`` shows the state.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aio_pika
import aiormq
import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from warpd.config.schema import EventsConfig

log = structlog.get_logger(__name__)

CLAIM_SQL = """
SELECT id, routing_key, payload::text AS body, created_at FROM outbox
 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
DELETE_SQL = "DELETE FROM outbox WHERE id = any($1::bigint[])"

# What losing RabbitMQ (or never reaching it) raises from aio-pika and aiormq.
_AMQP_ERRORS = (
    OSError,
    TimeoutError,
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel closed under us
    asyncio.IncompleteReadError,
)
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class BrokerLost(Exception):
    """RabbitMQ failed or went quiet mid-batch; the batch stays in the outbox."""


async def _close(connection: aio_pika.abc.AbstractConnection) -> None:
    # Closing a connection whose peer vanished can wait for ever on the socket.
    with contextlib.suppress(*_AMQP_ERRORS):
        async with asyncio.timeout(2):
            await connection.close()


class EventsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.published = Counter(
            "warpd_events_published", "Events RabbitMQ confirmed", ["routing_key"], registry=r
        )
        self.failures = Counter(
            "warpd_events_failures", "Publisher failures by stage", ["stage"], registry=r
        )
        self.connected = Gauge(
            "warpd_events_connected", "1 while the publisher holds a RabbitMQ channel", registry=r
        )
        self.backlog = Gauge(
            "warpd_events_backlog", "Outbox rows seen waiting at the last poll", registry=r
        )
        self.oldest = Gauge(
            "warpd_events_oldest_seconds", "Age of the oldest outbox row at the last poll",
            registry=r,
        )  # fmt: skip


class OutboxPublisher:
    def __init__(self, pool: asyncpg.Pool, config: EventsConfig, metrics: EventsMetrics) -> None:
        self._pool = pool
        self._config = config
        self._metrics = metrics
        self.published = 0
        self.connects = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """End after the batch in flight: one cut between confirm and delete repeats it."""
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def run(self) -> None:
        """Publish until stopped, reconnecting with back-off after each loss."""
        delay = self._config.backoff_initial
        while not self._stopping.is_set():
            connection: aio_pika.abc.AbstractConnection | None = None
            stage = "connect"
            try:
                connection = await aio_pika.connect(self._config.amqp_url, timeout=10)
                self.connects += 1
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self._config.exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self._metrics.connected.set(1)
                stage = "publish"
                log.info("events_connected", exchange=self._config.exchange)
                delay = self._config.backoff_initial
                await self._drain(exchange)
            except (*_AMQP_ERRORS, BrokerLost) as exc:
                self._metrics.failures.labels(stage).inc()
                log.warning("events_broker_lost", stage=stage, error=repr(exc), retry_in=delay)
            finally:
                self._metrics.connected.set(0)
                if connection is not None:
                    await _close(connection)
            await self._pause(delay)
            delay = min(delay * 2, self._config.backoff_max)

    async def _drain(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        while not self._stopping.is_set():
            try:
                sent = await self.publish_batch(exchange)
            except _DB_ERRORS as exc:
                self._metrics.failures.labels("database").inc()
                log.warning("events_outbox_unavailable", error=str(exc))
                sent = 0
            if sent < self._config.batch:
                await self._pause(self._config.poll_interval)

    async def publish_batch(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        """One claimed batch published and deleted; the number of events sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_SQL, self._config.batch)
            await self._observe(conn, rows)
            if not rows:
                return 0
            # Publishes are pipelined: each awaits its own confirm (basic.ack);
            # a nack or a lost channel raises, and the rows stay.
            try:
                async with asyncio.timeout(self._config.confirm_timeout):
                    await asyncio.gather(*(self._publish(exchange, r) for r in rows))
            except _AMQP_ERRORS as exc:  # before the database's errors: both raise OSError
                raise BrokerLost(repr(exc)) from exc
            await conn.execute(DELETE_SQL, [r["id"] for r in rows])
        for row in rows:
            self._metrics.published.labels(row["routing_key"]).inc()
        self.published += len(rows)
        return len(rows)

    @staticmethod
    async def _publish(exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        # Unroutable events are dropped by the exchange, as AMQP does: the
        # platform binds its (durable, quorum) queues before turning events on.
        await exchange.publish(_message(row), row["routing_key"], mandatory=False)

    async def _observe(self, conn: Any, rows: list[asyncpg.Record]) -> None:
        if len(rows) < self._config.batch:
            self._metrics.backlog.set(len(rows))
        else:  # a full batch: more wait behind it; estimate them, cheaply
            estimate = await conn.fetchval(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'outbox'::regclass"
            )
            self._metrics.backlog.set(max(estimate, len(rows)))
        if rows:
            age = await conn.fetchval("SELECT extract(epoch FROM now() - $1::timestamptz)",
                                      rows[0]["created_at"])  # fmt: skip
            self._metrics.oldest.set(float(age))
        else:
            self._metrics.oldest.set(0)


def _message(row: asyncpg.Record) -> aio_pika.Message:
    return aio_pika.Message(
        row["body"].encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(row["id"]),
        type=row["routing_key"],
        timestamp=row["created_at"],
        app_id="warpd",
    )
