"""The events outbox against a real RabbitMQ: one event per committed row, none else.

Each test has its own database and its own exchange and queue, so tests never
see each other's events even on a shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from tests.fixtures import postgres
from tests.warpd.events.conftest import Outage
from warpd.config.schema import EventsConfig
from warpd.events import set_enabled, start_events
from warpd.events.publisher import EventsMetrics, OutboxPublisher
from warpd.sms.commit import new_message_id
from warpd.store.migrate import load_migrations, migrate

WAIT = 15.0
STEP = 0.02


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds, for at most WAIT seconds."""
    for _ in range(int(WAIT / STEP)):
        if await check():
            return
        await asyncio.sleep(STEP)
    raise AssertionError(f"not within {WAIT} s")


@dataclass
class Consumer:
    """Everything published to one test's exchange, as (routing key, body, message_id)."""

    queue: aio_pika.abc.AbstractQueue
    got: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    async def start(self) -> None:
        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.got.append(
                    (message.routing_key or "", json.loads(message.body), message.message_id or "")
                )

        await self.queue.consume(take)

    async def wait_for(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.got) >= count

        await eventually(enough)


@dataclass
class Setup:
    pool: asyncpg.Pool
    config: EventsConfig
    consumer: Consumer
    account: int


@pytest.fixture(scope="module")
def template(pg_server: postgres.TestServer) -> Iterator[str]:
    """A migrated database with one account, copied for each test (faster than migrating)."""
    name = f"warpd_events_{uuid.uuid4().hex[:10]}"

    async def build() -> None:
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(pg_server.dsn(name))
        try:
            await migrate(conn, load_migrations())
            await conn.execute(
                "INSERT INTO accounts (id, name, currency) VALUES (1, 'acme', 'EUR')"
            )
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(build())
    yield name
    asyncio.run(drop())


@pytest_asyncio.fixture
async def setup(
    pg_server: postgres.TestServer, template: str, amqp_url: str
) -> AsyncIterator[Setup]:
    name = f"warpd_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    await admin.close()
    account = 1
    pool = await asyncpg.create_pool(pg_server.dsn(name), min_size=1, max_size=4)
    exchange_name = f"warpd.test.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "#")
    consumer = Consumer(queue)
    await consumer.start()
    config = EventsConfig(
        amqp_url=amqp_url, exchange=exchange_name, batch=50, poll_interval=0.02,
        backoff_initial=0.05, backoff_max=0.2,
    )  # fmt: skip
    await set_enabled(pool, True)
    try:
        yield Setup(pool, config, consumer, account)
    finally:
        await exchange.delete()
        await connection.close()
        await pool.close()
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run_publisher(setup: Setup, config: EventsConfig | None = None) -> OutboxPublisher:
    publisher = OutboxPublisher(
        setup.pool, config or setup.config, EventsMetrics(CollectorRegistry())
    )
    asyncio.get_running_loop().create_task(publisher.run())
    return publisher


async def one_of_each(conn: Any, account: int) -> uuid.UUID:
    """A top-up, an MO, a voice CDR, and a message that is submitted then delivered."""
    await conn.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind, note) VALUES ($1, 5000000,"
        " 'topup', 'invoice 7')",
        account,
    )
    await conn.execute(
        "INSERT INTO mo_messages (id, account_id, source_addr, destination_addr, body)"
        " VALUES ($1, $2, '447700900123', '12345', 'STOP')",
        uuid.uuid4(), account,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO voice_cdrs (id, account_id, direction, call_id_a, src_raw, dst_raw,"
        " start_at, end_at, duration_ms, billsec, disposition) VALUES ($1, $2, 'outbound',"
        " 'a@pbx', '1', '442079460000', now(), now(), 3000, 3, 'ANSWERED')",
        uuid.uuid4(), account,
    )  # fmt: skip
    connector = await conn.fetchval(
        "INSERT INTO connectors (name, host, port, system_id, password)"
        " VALUES ($1, '127.0.0.1', 2775, 'c', 'p') RETURNING id",
        f"c{uuid.uuid4().hex[:6]}",
    )
    message = new_message_id()
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at, price_micros) VALUES ($1, $2, 'smpp', 'BANK', '447700900123',"
        " 'hi', 'EUR', now() + interval '1 day', 5000)",
        message, account,
    )  # fmt: skip
    # Neither a claim, nor being submitted, nor a part's first write is an event.
    await conn.execute("UPDATE messages SET claimed_by = 'i1' WHERE id = $1", message)
    await conn.execute(
        "INSERT INTO message_parts (message_id, part_no, connector_id, carrier_message_id)"
        " VALUES ($1, 1, $2, 'c-1')",
        message, connector,
    )  # fmt: skip
    await conn.execute(
        "UPDATE messages SET state = 'submitted', submitted_at = now() WHERE id = $1", message
    )
    await conn.execute(
        "UPDATE message_parts SET state = 'delivered', done_at = now() WHERE message_id = $1",
        message,
    )
    await conn.execute(
        "UPDATE messages SET state = 'delivered', done_at = now() WHERE id = $1", message
    )
    # Once final, a later update is no second CDR.
    await conn.execute("UPDATE messages SET claimed_by = NULL WHERE id = $1", message)
    return message


async def test_one_event_per_committed_row_none_for_a_rolled_back_one_none_when_off(
    setup: Setup,
) -> None:
    async with setup.pool.acquire() as conn:
        message = await one_of_each(conn, setup.account)
        try:
            async with conn.transaction():
                await one_of_each(conn, setup.account)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    publisher = await run_publisher(setup)
    await setup.consumer.wait_for(5)
    await asyncio.sleep(0.3)  # anything more would have come by now
    got = setup.consumer.got
    assert Counter(key for key, _, _ in got) == {
        "ledger.entry": 1, "sms.mo": 1, "voice.cdr": 1, "sms.receipt": 1, "sms.cdr": 1
    }  # fmt: skip
    bodies = {key: body for key, body, _ in got}
    assert all(body["v"] == 1 for body in bodies.values())
    assert bodies["ledger.entry"]["amount_micros"] == 5_000_000
    assert bodies["ledger.entry"]["kind"] == "topup"
    assert bodies["sms.cdr"]["id"] == str(message)
    assert bodies["sms.cdr"]["state"] == "delivered"
    assert bodies["sms.cdr"]["price_micros"] == 5000
    assert bodies["sms.receipt"]["message_id"] == str(message)
    assert bodies["sms.receipt"]["carrier_message_id"] == "c-1"
    assert bodies["voice.cdr"]["disposition"] == "ANSWERED"
    assert bodies["sms.mo"]["body_b64"] == "U1RPUA=="
    assert len({mid for _, _, mid in got}) == 5  # outbox ids as AMQP message_id
    assert publisher.published == 5
    assert await setup.pool.fetchval("SELECT count(*) FROM outbox") == 0
    # Events off: the triggers are gone and rows make no outbox rows.
    await set_enabled(setup.pool, False)
    async with setup.pool.acquire() as conn:
        await one_of_each(conn, setup.account)
    assert await setup.pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert publisher.published == 5


async def topups(pool: asyncpg.Pool, account: int, count: int, note: str) -> set[int]:
    rows = await pool.fetch(
        "INSERT INTO ledger (account_id, amount_micros, kind, note)"
        " SELECT $1, 1, 'topup', $2 || g FROM generate_series(1, $3) g RETURNING id",
        account, note, count,
    )  # fmt: skip
    return {r[0] for r in rows}


def ledger_ids(consumer: Consumer) -> list[int]:
    return [body["id"] for key, body, _ in consumer.got if key == "ledger.entry"]


async def test_rabbitmq_down_then_back_loses_nothing(setup: Setup, amqp_url: str) -> None:
    broker = urlsplit(amqp_url)
    outage = Outage((broker.hostname or "127.0.0.1", broker.port or 5672))
    await outage.up()
    via = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{outage.port}")
    metrics = EventsMetrics(CollectorRegistry())
    # A short confirm timeout: the relay's cut is noticed within a second.
    config = replace(setup.config, amqp_url=via.geturl(), confirm_timeout=1.0)
    publisher = OutboxPublisher(setup.pool, config, metrics)
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:

        async def drained() -> bool:
            return not await setup.pool.fetchval("SELECT count(*) FROM outbox")

        first = await topups(setup.pool, setup.account, 100, "before ")
        await setup.consumer.wait_for(100)
        await eventually(drained)  # confirmed and deleted: the cut falls between batches
        await outage.down()
        # Committed while RabbitMQ is unreachable: they wait in the outbox.
        during = await topups(setup.pool, setup.account, 150, "during ")

        async def lost() -> bool:
            return not metrics.connected._value.get() and bool(metrics.failures._metrics)

        await eventually(lost)
        await asyncio.sleep(0.5)  # several reconnect attempts fail meanwhile
        assert await setup.pool.fetchval("SELECT count(*) FROM outbox") == 150
        assert publisher.connects == 1
        await outage.up()
        await setup.consumer.wait_for(250)

        await eventually(drained)
        seen = ledger_ids(setup.consumer)
        assert set(seen) == first | during
        # Repeats are allowed (at least once) but a clean outage, cut between
        # batches, makes none.
        assert len(seen) - len(set(seen)) == 0, Counter(seen).most_common(3)
        assert publisher.connects >= 2
        assert metrics.connected._value.get() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outage.down()


async def test_two_publishers_share_the_outbox_without_repeats(setup: Setup) -> None:
    ids = await topups(setup.pool, setup.account, 400, "shared ")
    a = await run_publisher(setup)
    b = await run_publisher(setup)
    await setup.consumer.wait_for(400)
    await asyncio.sleep(0.2)
    seen = ledger_ids(setup.consumer)
    assert sorted(seen) == sorted(ids)  # each once
    assert a.published + b.published == 400
    # SKIP LOCKED let both work
    assert a.published > 0
    assert b.published > 0


async def test_start_events_turns_them_on_and_publishes_until_stopped(setup: Setup) -> None:
    await set_enabled(setup.pool, False)
    registry = CollectorRegistry()
    async with contextlib.AsyncExitStack() as stack:
        publisher = await start_events(stack, setup.config, setup.pool, registry)
        assert publisher is not None
        ids = await topups(setup.pool, setup.account, 3, "daemon ")
        await setup.consumer.wait_for(3)
        assert set(ledger_ids(setup.consumer)) == ids
        assert registry.get_sample_value("warpd_events_connected") == 1
    # Stopped with the stack: nothing more is published.
    await topups(setup.pool, setup.account, 2, "after ")
    await asyncio.sleep(0.3)
    assert len(setup.consumer.got) == 3
    assert await setup.pool.fetchval("SELECT count(*) FROM outbox") == 2
    # Off again (amqp_url empty): no publisher, no more outbox rows.
    off = replace(setup.config, amqp_url="")
    async with contextlib.AsyncExitStack() as stack:
        assert await start_events(stack, off, setup.pool, CollectorRegistry()) is None
    await topups(setup.pool, setup.account, 2, "off ")
    assert await setup.pool.fetchval("SELECT count(*) FROM outbox") == 2
