"""Events on or off at start, and the publisher task when on.

aio-pika is imported only when ``[events] amqp_url`` is set: it is most of a
second of every start otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import asyncpg
import structlog
from prometheus_client import CollectorRegistry

from warpd.config.schema import EventsConfig
from warpd.errors import StorageError

if TYPE_CHECKING:
    from warpd.events.publisher import OutboxPublisher

log = structlog.get_logger(__name__)


async def set_enabled(pool: asyncpg.Pool, enabled: bool) -> None:
    """Outbox triggers created or dropped as ``[events] amqp_url`` is set or not.

    DDL on the busiest tables: it waits for their writers at most a few seconds
    (then warpd does not start, and says why), and does nothing when the
    triggers are already as asked, as on every start but the first.
    """
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            switched = await conn.fetchval("SELECT events_switch($1)", enabled)
    except asyncpg.PostgresError as exc:
        raise StorageError(f"cannot turn events {'on' if enabled else 'off'}: {exc}") from exc
    if switched:
        log.info("events_switched", enabled=enabled)


async def start_events(
    stack: contextlib.AsyncExitStack,
    config: EventsConfig,
    pool: asyncpg.Pool,
    registry: CollectorRegistry,
) -> OutboxPublisher | None:
    """Outbox rows on or off as ``amqp_url`` says; the publisher when on."""
    await set_enabled(pool, bool(config.amqp_url))
    if not config.amqp_url:
        return None
    from warpd.events.publisher import EventsMetrics, OutboxPublisher

    publisher = OutboxPublisher(pool, config, EventsMetrics(registry))
    task = asyncio.create_task(publisher.run(), name="events-publisher")

    async def stop() -> None:
        publisher.stop()
        # The batch in flight commits its delete; past its confirm timeout it goes.
        if not (await asyncio.wait({task}, timeout=config.confirm_timeout + 2))[0]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return publisher
