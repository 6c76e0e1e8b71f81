"""Calls warpd ends by itself: the maximum duration, and an rtpengine that died."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    SippFactory,
    cdrs,
    free_tcp_port,
    free_udp_port,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon


async def test_max_duration_hangs_up_both_legs(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, max_duration=1.0) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1, hold_ms=2500)
        assert await uas.wait() == 0, uas.errors()  # the carrier got warpd's BYE
        await uac.wait()  # the PBX got a BYE it did not expect while pausing
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["hangup_by"]) == ("ANSWERED", "system")
    assert row["billsec"] in (1, 2)


async def test_calls_on_a_dead_rtpengine_end_with_a_cdr(
    voice_pool: asyncpg.Pool, sipp: SippFactory, tmp_path: Path
) -> None:
    rtpengine = RtpEngineDaemon(tmp_path / "rtpe", free_udp_port(), free_tcp_port(), 45500, 45999)
    rtpengine.start()
    try:
        async with voice_pool.acquire() as conn:
            prov = await provision(conn, gateways=1)
        async with running_voice(voice_pool, rtpengine, tmp_path) as voice:
            await sipp.uas(prov.gateway_ports[0])
            uac = await sipp.uac(voice.local_addr, calls=2, rate=50, hold_ms=20_000)
            async with asyncio.timeout(10):
                while voice.metrics.answered < 2:  # noqa: ASYNC110 - a counter
                    await asyncio.sleep(0.05)
            rtpengine.stop()
            async with asyncio.timeout(10):
                await voice.settled()
            await uac.stop()
    finally:
        rtpengine.stop()
    rows = await cdrs(voice_pool)
    assert [(r["hangup_by"], r["q850_cause"]) for r in rows] == [("system", 41)] * 2
    assert all(r["billsec"] < 10 and r["price_micros"] > 0 for r in rows)


async def test_an_unrefreshed_session_timer_ends_the_call(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, min_session_expires=1) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_timer")
        assert await uac.wait() == 0, uac.errors()  # the PBX saw the timer and got the BYE
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert row["hangup_by"] == "session_timer"
    assert row["billsec"] in (2, 3)  # 2 s and the start of the next second
