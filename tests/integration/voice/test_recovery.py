"""A call still up when the process died is closed at the next start, with a CDR and a charge."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    BALANCE,
    CONNECT_FEE,
    PER_MIN,
    cdrs,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon
from warpd.voice.cdr import Answered, Cdr, write


async def test_a_call_left_active_by_a_crash_is_closed_and_charged_at_start(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    now = dt.datetime.now(dt.UTC)
    cdr = Cdr(
        uuid.uuid4(), "outbound", "pbx-call@10.0.0.1", "100", "441234567890",
        now - dt.timedelta(seconds=65), account_id=prov.account_id, trunk_id=prov.trunk_id,
        dst_e164="441234567890", answer_at=now - dt.timedelta(seconds=60), currency="EUR",
    )  # fmt: skip
    # What the dead process had written: the answered call, last seen alive 30 s ago.
    await write(voice_pool, [Answered(cdr, "test")])
    async with voice_pool.acquire() as conn:
        await conn.execute(
            "UPDATE voice_active_calls SET alive_at = $1", now - dt.timedelta(seconds=30)
        )
    async with running_voice(voice_pool, voice_rtpengine, tmp_path):
        pass
    [row] = await cdrs(voice_pool)
    assert row["id"] == cdr.id
    assert (row["disposition"], row["hangup_by"], row["billsec"]) == ("ANSWERED", "system", 30)
    assert row["price_micros"] == CONNECT_FEE + PER_MIN * 30 // 60
    async with voice_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM voice_active_calls") == 0
        balance = await conn.fetchval(
            "SELECT balance_micros FROM accounts WHERE id = $1", prov.account_id
        )
    assert balance == BALANCE - row["price_micros"]


async def test_other_instances_calls_are_left_alone(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    now = dt.datetime.now(dt.UTC)
    cdr = Cdr(
        uuid.uuid4(), "outbound", "x@10.0.0.1", "100", "441234567890", now,
        account_id=prov.account_id, trunk_id=prov.trunk_id, answer_at=now,
    )  # fmt: skip
    await write(voice_pool, [Answered(cdr, "another-instance")])
    async with running_voice(voice_pool, voice_rtpengine, tmp_path):
        pass
    assert await cdrs(voice_pool) == []
