"""Instances on one real PostgreSQL: bind slots held once, handed back, taken over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from warpd.cluster.membership import Membership
from warpd.errors import ConfigError
from warpd.store.migrate import load_migrations, migrate

LEASE = 1.0
BEAT = 0.2
CONNECTOR = 7


class Bind:
    """Stands in for a carrier bind: only its lease matters here.

    Told to give its slot back, it closes at once and frees the slot, as a
    carrier bind does once its connection is closed.
    """

    def __init__(self, membership: Membership | None = None) -> None:
        self.lost = 0
        self.membership = membership
        self.slot: int | None = None

    async def take(self, binds: int) -> int:
        assert self.membership is not None
        self.slot = await self.membership.acquire_slot(CONNECTOR, binds, self)
        return self.slot

    def lease_lost(self) -> None:
        self.lost += 1
        if self.membership is not None and self.slot is not None:
            self.membership.release_slot(CONNECTOR, self.slot)


@pytest_asyncio.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database_dsn)
    try:
        await migrate(conn, load_migrations())
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def member(pool: asyncpg.Pool, name: str) -> Membership:
    return Membership(pool, name, lease_seconds=LEASE, heartbeat_seconds=BEAT)


@contextlib.asynccontextmanager
async def running(m: Membership) -> AsyncIterator[asyncio.Task[None]]:
    await m.start()
    task = asyncio.create_task(m.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def leases(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT instance_id, count(*) AS n FROM connector_bind_leases"
        " WHERE connector_id = $1 AND leased_until > now() GROUP BY 1",
        CONNECTOR,
    )
    return {r["instance_id"]: r["n"] for r in rows}


async def eventually(check: object, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_slots_are_held_once_and_shared_fairly(pool: asyncpg.Pool) -> None:
    a, b = member(pool, "a"), member(pool, "b")
    async with running(a):
        first, second = Bind(a), Bind(a)
        assert {await first.take(2), await second.take(2)} == {0, 1}
        async with running(b):
            wanting = Bind(b)
            taken = asyncio.create_task(wanting.take(2))
            # a sees b live and short: it gives one bind back, once, and b takes it.
            await asyncio.wait_for(taken, 5.0)
            assert first.lost + second.lost == 1
            # The bind a gave back asks again at once: it leaves the slot to b
            # rather than flap, and nothing else is free anyway.
            again = asyncio.create_task(Bind(a).take(2))
            await asyncio.sleep(6 * BEAT)
            assert not again.done()
            assert await leases(pool) == {"a": 1, "b": 1}
            assert first.lost + second.lost == 1
            again.cancel()


async def test_a_bind_given_back_keeps_its_slot_until_it_is_closed(pool: asyncpg.Pool) -> None:
    """Never a moment with both the closing bind and its successor open at the carrier."""
    a, b = member(pool, "a"), member(pool, "b")
    async with running(a):
        slow = [Bind(), Bind()]  # told to go, they have not closed yet
        for bind in slow:
            await a.acquire_slot(CONNECTOR, 2, bind)
        async with running(b):
            waiting = asyncio.create_task(b.acquire_slot(CONNECTOR, 2, Bind()))

            async def asked() -> bool:
                return sum(bind.lost for bind in slow) == 1

            await eventually(asked)
            assert slow[1].lost == 1  # the highest slot goes
            await asyncio.sleep(LEASE + 3 * BEAT)  # renewed meanwhile: never lapses
            assert not waiting.done()
            assert await leases(pool) == {"a": 2}
            a.release_slot(CONNECTOR, 1)  # now it is closed
            await asyncio.wait_for(waiting, 5.0)
            assert await leases(pool) == {"a": 1, "b": 1}


async def test_a_dead_instance_s_slot_is_taken_over_after_its_lease(pool: asyncpg.Pool) -> None:
    a, b = member(pool, "a"), member(pool, "b")
    async with running(a) as beating:
        await a.acquire_slot(CONNECTOR, 1, Bind())
    assert beating.cancelled()  # a stopped beating without a clean stop: as kill -9
    async with running(b):
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(b.acquire_slot(CONNECTOR, 1, Bind()), LEASE + 5.0)
        assert loop.time() - started >= 0.3  # not before a's lease lapsed
        assert await leases(pool) == {"b": 1}


async def test_a_clean_stop_hands_slots_back_at_once(pool: asyncpg.Pool) -> None:
    a, b = member(pool, "a"), member(pool, "b")
    async with running(a):
        await a.acquire_slot(CONNECTOR, 1, Bind())
    await a.stop()
    async with running(b):
        await asyncio.wait_for(b.acquire_slot(CONNECTOR, 1, Bind()), 0.5)
    row = await pool.fetchrow("SELECT stopped_at FROM instances WHERE instance_id = 'a'")
    assert row is not None
    assert row["stopped_at"] is not None


async def test_a_lease_that_cannot_be_renewed_closes_the_bind(pool: asyncpg.Pool) -> None:
    a = member(pool, "a")
    async with running(a):
        bind = Bind()
        await a.acquire_slot(CONNECTOR, 1, bind)
        # Someone else holds the slot now (as after a partition outlasting the lease).
        await pool.execute(
            "UPDATE connector_bind_leases SET instance_id = 'other' WHERE connector_id = $1",
            CONNECTOR,
        )

        async def closed() -> bool:
            return bind.lost == 1

        await eventually(closed, 3.0)
        assert a.slots_held(CONNECTOR) == 0


async def test_a_second_live_process_with_the_same_instance_id_is_refused(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute(
        "INSERT INTO instances (instance_id, host, pid, version, alive_until)"
        " VALUES ('a', 'elsewhere.example', 4242, '0', now() + interval '1 minute')"
    )
    with pytest.raises(ConfigError, match="instance_id"):
        await member(pool, "a").start()
    # Once that one stops beating, the id is free again (a restart after a crash).
    await pool.execute("UPDATE instances SET alive_until = now() WHERE instance_id = 'a'")
    await member(pool, "a").start()


async def test_customer_binds_count_over_instances(pool: asyncpg.Pool) -> None:
    a, b = member(pool, "a"), member(pool, "b")
    await a.start()
    await b.start()
    assert await a.reserve_customer_bind(1, 2, here=0)
    a.customer_binds(1, 1, 1)
    assert await b.reserve_customer_bind(1, 2, here=0)
    b.customer_binds(1, 1, 0)
    # Two binds of a user allowed two, one on each instance: a third is refused on either.
    assert not await a.reserve_customer_bind(1, 2, here=1)
    assert not await b.reserve_customer_bind(1, 2, here=1)
    async with running(a), running(b):

        async def seen() -> bool:
            return a.remote_binds(1) == 1 and b.remote_binds(1) == 1

        await eventually(seen)
        # b's bind closes: after b's next beat, a may take a second one.
        b.customer_binds(1, 0, 0)

        async def freed() -> bool:
            return await a.reserve_customer_bind(1, 2, here=1)

        await eventually(freed)
