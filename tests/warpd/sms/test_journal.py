"""The journal: a row PostgreSQL refuses does not stop the rest of its batch; receipt
lookups bounded to recent months still find what is older; a small batch that somebody
waits for gathers what follows within URGENT_LINGER; a receipt parked while its part
committed in the other lane is settled at once; two parts' receipts committing side by
side make their message final."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from warpd.sms.journal import (
    RECEIPT_LOOKBACK,
    URGENT_LINGER,
    CarrierReceipt,
    MessageFailed,
    PartAccepted,
    uuid7_floor,
)

from .conftest import Running, start_warpd, stop_warpd
from .helpers import bind, submit, wait_for


async def test_a_refused_entry_does_not_stop_the_others(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    # A part of a message that does not exist: the foreign key refuses it.
    ghost = sms.journal.add_and_wait(
        PartAccepted(uuid.uuid4(), 1, next(iter(sms.connectors)), "x", last=True, attempts=1)
    )
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    resp = await peer.request(submit())
    assert resp.command_status == 0
    [receipt] = await peer.deliveries(1)
    assert resp.message_id.encode() in receipt.short_message  # type: ignore[attr-defined]
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await ghost
    await wait_for(lambda: sms.journal.idle, what="journal idle")
    assert await warpd.value("SELECT state FROM messages") == "delivered"
    peer.close()


async def old_message(warpd: Running, age: timedelta, parts: int = 1) -> uuid.UUID:
    """A message made ``age`` ago (its UUIDv7 says so), already sent upstream: a queued
    one the dispatcher could claim and send again meanwhile, under another carrier id."""
    made = datetime.now(UTC) - age
    message_id = uuid.UUID(int=(uuid7_floor(made).int | 0x7000_8000_0000_0000_0001))
    await warpd.query(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at, created_at, state, parts) SELECT $1, id, 'smpp', 'WARPD',"
        " '447700900123', 'hi', 'EUR', now() + interval '1 day', $2, 'submitted', $3"
        " FROM accounts",
        message_id,
        made,
        parts,
    )
    return message_id


def receipt(connector_id: int, carrier_id: str) -> CarrierReceipt:
    return CarrierReceipt(connector_id, carrier_id, "delivered", None, {})


async def test_a_receipt_past_the_look_back_is_matched_in_every_month(warpd: Running) -> None:
    """The receipt lookup reads the last RECEIPT_LOOKBACK of message_parts' months first;
    one it misses there (an old message's late receipt) is matched, not parked."""
    sms = warpd.daemon.sms
    assert sms is not None
    connector = next(iter(sms.connectors))
    old = await old_message(warpd, RECEIPT_LOOKBACK + timedelta(days=33))
    new = await old_message(warpd, timedelta(minutes=1))
    await sms.journal.add_and_wait(PartAccepted(old, 1, connector, "late", last=True, attempts=1))
    await sms.journal.add_and_wait(PartAccepted(new, 1, connector, "soon", last=True, attempts=1))
    await sms.journal.add_and_wait(receipt(connector, "late"))
    await sms.journal.add_and_wait(receipt(connector, "soon"))
    # A receipt for no part at all: still parked, to wait for its mapping.
    await sms.journal.add_and_wait(receipt(connector, "nobody"))
    rows = await warpd.query("SELECT id, state FROM messages WHERE id = any($1)", [old, new])
    states = dict(rows)
    assert states == {old: "delivered", new: "delivered"}
    parked = await warpd.query("SELECT carrier_message_id FROM pending_receipts")
    assert [r[0] for r in parked] == ["nobody"]


async def test_a_parked_receipt_of_an_old_message_unparks_when_its_part_is_stored(
    warpd: Running,
) -> None:
    """The unpark after a batch of parts reads the months from the oldest of those parts."""
    sms = warpd.daemon.sms
    assert sms is not None
    connector = next(iter(sms.connectors))
    old = await old_message(warpd, RECEIPT_LOOKBACK + timedelta(days=33))
    await sms.journal.add_and_wait(receipt(connector, "early"))
    assert await warpd.value("SELECT count(*) FROM pending_receipts") == 1
    await sms.journal.add_and_wait(PartAccepted(old, 1, connector, "early", last=True, attempts=1))
    await wait_for(lambda: sms.journal.idle, what="journal idle")
    assert await warpd.value("SELECT state FROM messages WHERE id = $1", old) == "delivered"
    assert await warpd.value("SELECT count(*) FROM pending_receipts") == 0


async def test_two_waited_entries_a_moment_apart_share_one_commit(warpd: Running) -> None:
    """Without the linger the first would be committed alone (it is waited for), then the
    second: two commits."""
    sms = warpd.daemon.sms
    assert sms is not None
    connector = next(iter(sms.connectors))
    first = await old_message(warpd, timedelta(minutes=1))
    second = await old_message(warpd, timedelta(minutes=1))
    await wait_for(lambda: sms.journal.idle, what="journal idle")
    assert URGENT_LINGER >= 0.003
    before = sms.journal.commits
    one = sms.journal.add_and_wait(PartAccepted(first, 1, connector, "a", last=True, attempts=1))
    await asyncio.sleep(0.001)  # a third of URGENT_LINGER: its timer fires first
    two = sms.journal.add_and_wait(PartAccepted(second, 1, connector, "b", last=True, attempts=1))
    await asyncio.gather(one, two)
    assert sms.journal.commits == before + 1
    rows = await warpd.query("SELECT carrier_message_id FROM message_parts ORDER BY 1")
    assert [r[0] for r in rows] == ["a", "b"]


async def test_a_receipt_parked_while_its_part_commits_beside_it_is_settled_at_once(
    database_dsn: str, tmp_path: Path
) -> None:
    """Parts and receipts commit in two lanes. A receipt that found no part, parked while
    the part's batch committed beside it (which looked for parked receipts before this one
    was there), makes the parts lane look again at once: not at the next beat, 20 s here.
    A lock on pending_receipts holds the receipt's batch at its INSERT meanwhile."""
    running = await start_warpd(
        database_dsn,
        tmp_path / "state",
        0,
        extra="heartbeat_seconds = 20\n",  # in [cluster]
    )
    try:
        sms = running.daemon.sms
        assert sms is not None
        connector = next(iter(sms.connectors))
        message_id = await old_message(running, timedelta(minutes=1))
        blocker = await asyncpg.connect(database_dsn)
        try:
            await blocker.execute("BEGIN; LOCK TABLE pending_receipts IN SHARE MODE")
            parked = sms.journal.add_and_wait(receipt(connector, "beside"))
            async with asyncio.timeout(5):
                while not await blocker.fetchval(  # noqa: ASYNC110 - bounded
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'pending_receipts'::regclass"
                ):
                    await asyncio.sleep(0.01)
                await sms.journal.add_and_wait(
                    PartAccepted(message_id, 1, connector, "beside", last=True, attempts=1)
                )
            await blocker.execute("ROLLBACK")
        finally:
            await blocker.close()
        await parked
        state = "SELECT state FROM messages WHERE id = $1"
        async with asyncio.timeout(5):
            while await running.value(state, message_id) != "delivered":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await running.value("SELECT count(*) FROM pending_receipts") == 0
    finally:
        await stop_warpd(running)


async def test_two_parts_receipts_committing_side_by_side_make_their_message_final(
    warpd: Running,
) -> None:
    """Each lane counts the message's parts after its own receipt: counted while the other
    part's receipt was written but not committed beside it, neither would see both parts
    done, and the message would stay submitted for ever. A lock on another message holds
    the first receipt's batch (at that message's failure) until the second has run."""
    sms = warpd.daemon.sms
    assert sms is not None
    connector = next(iter(sms.connectors))
    message_id = await old_message(warpd, timedelta(minutes=1), parts=2)
    other = await old_message(warpd, timedelta(minutes=2))
    for part_no, carrier_id in ((1, "one"), (2, "two")):
        last = part_no == 2
        await sms.journal.add_and_wait(
            PartAccepted(message_id, part_no, connector, carrier_id, last=last, attempts=1)
        )
    waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
    blocker = await asyncpg.connect(warpd.dsn)
    try:
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT FROM messages WHERE id = $1 FOR UPDATE", other)
        sms.journal.add(receipt(connector, "one"))
        first = sms.journal.add_and_wait(MessageFailed(other, "failed", 8, "test"))
        async with asyncio.timeout(5):
            while not await blocker.fetchval(waiting):  # noqa: ASYNC110 - bounded
                await asyncio.sleep(0.01)
            second = sms.journal.add_and_wait(receipt(connector, "two"))
            # The second either waits for the first's lock on the message (counted: two
            # waits) or, without it, commits having counted one part of two.
            while not second.done() and await blocker.fetchval(waiting) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await blocker.execute("ROLLBACK")
    finally:
        await blocker.close()
    await asyncio.gather(first, second)
    assert await warpd.value("SELECT state FROM messages WHERE id = $1", message_id) == "delivered"
    assert await warpd.value("SELECT state FROM messages WHERE id = $1", other) == "failed"
