"""Voice spends from the same view of each account as SMS: what SMS holds is not there
for a call, and a finished call's charge is held from its end until its ledger row
commits (or released if it never does)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.integration.voice.conftest import (
    BALANCE,
    CONNECT_FEE,
    PER_MIN,
    SippFactory,
    cdrs,
    provision,
    running_voice,
)
from tests.integration.voice.test_limits import final_response, invite
from tests.media.conftest import RtpEngineDaemon
from warpd.billing.balances import Balances
from warpd.voice.cdr import Cdr, CdrWriter, write

# The cheapest answered call: the connect fee and one second.
MINIMUM = CONNECT_FEE + PER_MIN // 60


def _loaded(account_id: int) -> Balances:
    """What the SMS core's reload gives the shared view: the balance, no credit."""
    balances = Balances()
    balances.load([(account_id, BALANCE, 0)])
    return balances


async def _db_balance(pool: asyncpg.Pool, account_id: int) -> int:
    async with pool.acquire() as conn:
        value = await conn.fetchval("SELECT balance_micros FROM accounts WHERE id = $1", account_id)
    return int(value)


@pytest.mark.parametrize(
    ("held", "status"), [(BALANCE - MINIMUM + 1, 402), (BALANCE - MINIMUM, 200)]
)
async def test_what_sms_holds_is_not_there_for_a_call(
    held: int,
    status: int,
    voice_pool: asyncpg.Pool,
    voice_rtpengine: RtpEngineDaemon,
    sipp: SippFactory,
    tmp_path: Path,
) -> None:
    # The database (and so the voice directory) still shows the whole balance: the
    # messages the hold stands for are accepted but not yet committed.
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    balances = _loaded(prov.account_id)
    assert balances.hold(prov.account_id, held)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, balances=balances) as voice:
        await sipp.uas(prov.gateway_ports[0])
        if status == 402:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                sock.sendto(invite(port, 1, voice.local_addr), voice.local_addr)
                refused = await asyncio.to_thread(final_response, sock, "raw-1@")
            assert refused.startswith("SIP/2.0 402 ")
        else:
            uac = await sipp.uac(voice.local_addr, calls=1, hold_ms=200)
            assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert row["sip_code"] == status
    # The call's charge, if any, has been posted: nothing of it is still held.
    spent = row["price_micros"]
    assert await _db_balance(voice_pool, prov.account_id) == BALANCE - spent
    assert balances.balance(prov.account_id) == BALANCE - spent
    assert balances.available(prov.account_id) == BALANCE - spent - held


def _finished_call(account_id: int, trunk_id: int, price: int) -> Cdr:
    now = dt.datetime.now(dt.UTC)
    cdr = Cdr(
        uuid.uuid4(), "outbound", f"{uuid.uuid4()}@pbx", "100", "441234567890",
        now - dt.timedelta(seconds=5), account_id=account_id, trunk_id=trunk_id,
        dst_e164="441234567890", answer_at=now - dt.timedelta(seconds=4), currency="EUR",
    )  # fmt: skip
    cdr.end_at, cdr.disposition, cdr.billsec, cdr.price_micros = now, "ANSWERED", 4, price
    return cdr


async def test_a_finished_calls_charge_is_held_until_its_ledger_row_commits(
    voice_pool: asyncpg.Pool,
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    balances = _loaded(prov.account_id)
    writer = CdrWriter(voice_pool, interval=0.3, balances=balances)
    writer.start()
    try:
        writer.put(_finished_call(prov.account_id, prov.trunk_id, 250_000))
        # Not yet in the ledger, already not there to spend.
        assert await _db_balance(voice_pool, prov.account_id) == BALANCE
        assert balances.available(prov.account_id) == BALANCE - 250_000
        await writer.flushed()
    finally:
        await writer.close(1.0)
    assert await _db_balance(voice_pool, prov.account_id) == BALANCE - 250_000
    assert balances.balance(prov.account_id) == BALANCE - 250_000
    assert balances.available(prov.account_id) == BALANCE - 250_000  # charged once


async def _written_by(writer: CdrWriter, cdr: Cdr) -> None:
    writer.start()
    try:
        writer.put(cdr)
        await asyncio.wait_for(writer.flushed(), 10.0)
    finally:
        await writer.close(1.0)


async def test_a_batch_given_up_releases_what_the_ledger_never_got(
    voice_pool: asyncpg.Pool,
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    # An account the balances know and the database does not: every write fails.
    balances = _loaded(prov.account_id)
    balances.load([(prov.account_id + 1000, BALANCE, 0)])
    writer = CdrWriter(voice_pool, interval=0.01, balances=balances, retry_after=0.01)
    await _written_by(writer, _finished_call(prov.account_id + 1000, prov.trunk_id, 250_000))
    assert writer.written == 0
    assert balances.available(prov.account_id + 1000) == BALANCE


async def test_a_batch_whose_commit_landed_unanswered_keeps_its_charge(
    voice_pool: asyncpg.Pool,
) -> None:
    # The commit landed and its answer was lost: every retry now hits the CDR that is
    # already there, and the ledger says what was charged.
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    cdr = _finished_call(prov.account_id, prov.trunk_id, 250_000)
    await write(voice_pool, [cdr])
    balances = _loaded(prov.account_id)
    writer = CdrWriter(voice_pool, interval=0.01, balances=balances, retry_after=0.01)
    await _written_by(writer, cdr)
    assert writer.written == 0
    assert await _db_balance(voice_pool, prov.account_id) == BALANCE - 250_000  # once
    assert balances.balance(prov.account_id) == BALANCE - 250_000
    assert balances.available(prov.account_id) == BALANCE - 250_000


async def test_a_charge_whose_fate_is_unknown_stays_held(database_dsn: str) -> None:
    # A pool that is closed answers neither the write nor the question whether the
    # ledger has the charge: the money stays held (refusing early is the safe side).
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=1)
    await pool.close()
    balances = Balances()
    balances.load([(7, BALANCE, 0)])
    writer = CdrWriter(pool, interval=0.01, balances=balances, retry_after=0.01)
    await _written_by(writer, _finished_call(7, 1, 250_000))
    assert writer.written == 0
    assert balances.available(7) == BALANCE - 250_000
