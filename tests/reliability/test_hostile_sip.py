"""Hostile SIP/TCP clients (issue 12): slowloris heads, silent and flooding connections.
Each is cut off by its own bound while a PBX's calls over TCP go on being served."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from protocols.sip.transaction import Transport
from tests.integration.voice.conftest import SippFactory, cdrs, provision, running_voice
from tests.integration.voice.test_tcp_faults import answer, connect, options
from tests.media.conftest import RtpEngineDaemon

from .clients import closed_after, trickle
from .tally import TALLY, Hostile

HEADER_TIMEOUT = 2.0


async def test_slowloris_heads_and_silent_connections_are_cut_off_while_calls_go_on(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    """30 connections trickling an OPTIONS head a byte every 0.3 s and 10 that send nothing:
    each is closed header_timeout after it began (its head never completes), while a PBX
    places calls over TCP, and an honest slow head within the deadline is answered."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path,
                             header_timeout=HEADER_TIMEOUT) as voice:  # fmt: skip
        addr = voice.stream_addr(Transport.TCP)
        await sipp.uas(prov.gateway_ports[0])
        limit = HEADER_TIMEOUT + 3.0

        async def slow(data: bytes, gap: float) -> float | None:
            reader, writer = await connect(addr)
            sending = asyncio.create_task(trickle(writer, data, gap, time.monotonic() + limit))
            took = await closed_after(reader, limit)
            await sending
            writer.close()
            return took

        uac = await sipp.uac(addr, calls=5, rate=5, hold_ms=500, extra=["-t", "t1"])
        results = await asyncio.gather(
            *(slow(options(f"slow{n}"), 0.3) for n in range(30)),
            *(slow(b"", 0.3) for _ in range(10)),
        )
        assert await uac.wait() == 0, uac.errors()
        honest = await connect(addr)
        sent = await trickle(honest[1], options("honest"), 0.002, time.monotonic() + 5)
        assert sent == len(options("honest"))
        assert await answer(honest) == b"SIP/2.0 200 OK"
        honest[1].close()
        await voice.settled()
    held = [took for took in results if took is None]
    slowest = max((took for took in results if took is not None), default=0.0)
    TALLY.hostile.append(
        Hostile("SIP/TCP slowloris heads (30, 1 byte / 0.3 s) and 10 silent connections, "
                "a PBX calling over TCP",
                f"all closed after <= {slowest:.1f} s (header_timeout {HEADER_TIMEOUT:g} s); "
                f"the PBX's 5 calls completed" if not held
                else f"{len(held)} still open after {limit:.0f} s", not held)
    )  # fmt: skip
    assert not held, f"{len(held)} of 40 held open {limit} s"
    assert HEADER_TIMEOUT - 0.1 <= slowest < HEADER_TIMEOUT + 1.0
    assert [r["disposition"] for r in await cdrs(voice_pool)] == ["ANSWERED"] * 5


async def test_a_connection_flood_from_one_address_is_capped_and_others_are_served(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    """600 connections from 127.0.0.2 as fast as they open: the first 50 (the cap) are held,
    the rest closed at once; a PBX at 127.0.0.1 places calls over TCP throughout, and the
    flood's address is served again once its connections close."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path,
                             max_connections_per_ip=50) as voice:  # fmt: skip
        addr = voice.stream_addr(Transport.TCP)
        assert voice.streams is not None
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(addr, calls=5, rate=5, hold_ms=500, extra=["-t", "t1"])
        flood = []
        for _ in range(600):
            flood.append(await connect_from(addr, "127.0.0.2"))
        closed = await asyncio.gather(*(closed_after(r, 2.0) for r, _ in flood))
        assert await uac.wait() == 0, uac.errors()
        refused = voice.streams.refused
        held = sum(took is None for took in closed)
        for _, writer in flood:
            writer.close()
        for _ in range(100):
            if not any(a.host == "127.0.0.2" for a in voice.streams.connections):
                break
            await asyncio.sleep(0.05)
        again = await connect_from(addr, "127.0.0.2")
        again[1].write(options("again"))
        assert await answer(again) == b"SIP/2.0 200 OK"
        again[1].close()
        await voice.settled()
    TALLY.hostile.append(
        Hostile("SIP/TCP connection flood (600 from one address, cap 50), a PBX calling over TCP",
                f"{held} held, {refused} refused at accept; the PBX's 5 calls completed",
                held == 50 and refused == 550)
    )  # fmt: skip
    assert (held, refused) == (50, 550)
    assert [r["disposition"] for r in await cdrs(voice_pool)] == ["ANSWERED"] * 5


async def connect_from(
    addr: tuple[str, int], source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(5):
        return await asyncio.open_connection(*addr, local_addr=(source, 0))
