"""The dispatcher's two paths: memory in the steady state, the table behind a backlog;
claims through a backlog that go on where the last ended."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from warpd.smpp import connector as connector_module
from warpd.sms.dispatcher import POLL_INTERVAL, Dispatcher
from warpd.sms.journal import Journal, uuid7_floor
from warpd.sms.stats import SmsStats

from .conftest import start_warpd, stop_warpd
from .helpers import bind, submit, take_carrier_away, wait_for


async def test_new_messages_queue_behind_a_backlog_only_while_it_lasts(
    database_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connector_module, "BACKOFF_MAX", 1.0)
    warpd = await start_warpd(
        database_dsn, tmp_path / "state", 0, sms="connector_queue_max = 100\n"
    )
    try:
        sms = warpd.daemon.sms
        assert sms is not None
        dispatcher = sms.dispatcher
        [connector_id] = sms.connectors
        # Once the first claim has seen the table empty, everything takes the memory path.
        await wait_for(lambda: dispatcher.has_room(connector_id), what="the fast path")
        peer, _ = await bind(warpd, warpd.system_id, warpd.password)
        for n in range(20):
            assert (await peer.request(submit(to=f"44770090{n:04d}"))).command_status == 0
        assert dispatcher.has_room(connector_id)

        port = await take_carrier_away(warpd, connector_id)
        for n in range(150):
            assert (await peer.request(submit(to=f"44770091{n:04d}"))).command_status == 0
        # The memory queue overflowed: what follows queues behind the rows in the table.
        assert dispatcher.queued(connector_id) <= 100
        assert not dispatcher.has_room(connector_id)
        assert (await peer.request(submit(to="447700919999"))).command_status == 0
        assert not dispatcher.has_room(connector_id)

        await warpd.query("UPDATE connectors SET port = $2 WHERE id = $1", connector_id, port)
        await wait_for(
            lambda: dispatcher.has_room(connector_id), 30, "the fast path after the backlog"
        )
        # The claim that found the table empty took the last of the backlog.
        for _ in range(300):
            if not await warpd.value("SELECT count(*) FROM messages WHERE state = 'queued'"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the backlog was not sent")
        assert (await peer.request(submit(to="447700929999"))).command_status == 0
        assert dispatcher.has_room(connector_id)
        peer.close()
    finally:
        await stop_warpd(warpd)


async def test_claims_through_a_backlog_go_on_where_the_last_ended(
    database_dsn: str, tmp_path: Path
) -> None:
    """Each claim while a backlog drains starts at the last one's end, past the messages
    already held; what comes back behind it (a hand-over, a lapsed claim) is claimed by
    the claim from the start that follows the end of the table, or POLL_INTERVAL on."""
    warpd = await start_warpd(database_dsn, tmp_path / "state", 0)
    await stop_warpd(warpd)  # its schema and demo account; no dispatcher of its own now
    start = datetime.now(UTC) - timedelta(minutes=10)
    ids = [uuid.UUID(int=uuid7_floor(start).int | 0x7000_8000_0000_0000_0000 | n) for n in range(6)]
    await warpd.query(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at, created_at)"
        " SELECT i, a.id, 'smpp', 'WARPD', '447700900123', 'hi', 'EUR',"
        " now() + interval '1 day', $2::timestamptz + n * interval '1 second'"
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS m(i, n), accounts a",
        ids,
        start,
    )
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=2)
    try:
        journal = Journal(
            pool,
            SmsStats(),
            instance_id="a",
            delivery_ttl=timedelta(hours=1),
            lease=timedelta(minutes=1),
            on_deliveries=lambda created: None,
            locally_bound=lambda user_id: False,
        )
        dispatcher = Dispatcher(
            pool, journal, instance_id="a", lease=timedelta(minutes=1), queue_max=2
        )

        async def claim() -> list[uuid.UUID]:
            before = {
                r[0] for r in await warpd.query("SELECT id FROM messages WHERE claimed_by = 'a'")
            }
            await dispatcher._claim()
            after = await warpd.query("SELECT id FROM messages WHERE claimed_by = 'a'")
            return sorted(r[0] for r in after if r[0] not in before)

        async def release(*released: uuid.UUID) -> None:
            await warpd.query(
                "UPDATE messages SET claimed_by = NULL, claimed_until = NULL WHERE id = any($1)",
                list(released),
            )

        assert await claim() == ids[0:2]
        assert await claim() == ids[2:4]
        # The first comes back to the table (handed over), behind where the claims are.
        await release(ids[0])
        assert await claim() == ids[4:6]
        assert await claim() == []  # the end of the table after the last claim's end
        assert await claim() == [ids[0]]  # and from its start
        await release(*ids[:4])
        assert await claim() == ids[0:2]  # a full claim from the start: the next goes on
        await release(ids[0])
        dispatcher._claimed_from_start -= POLL_INTERVAL  # unless the last from the start
        assert await claim() == [ids[0], ids[2]]  # was POLL_INTERVAL ago
    finally:
        await pool.close()
