"""SIP over TCP and TLS through warpd (RFC 3261 18.3): SIPp peers, a real rtpengine.

Calls from a PBX on TCP to a gateway on UDP, on TCP to a gateway on TCP, and over TLS;
then the failure paths of a stream: an oversized message, garbage, a peer that closes in
the middle of a message, a bad TLS client, the per-address connection cap."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from protocols.sip.transaction import StreamAddr, Transport
from tests.integration.voice.conftest import (
    HOST,
    SippFactory,
    cdrs,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon


async def test_a_pbx_on_tcp_calls_a_gateway_on_udp(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.stream_addr(Transport.TCP), calls=3, rate=10, hold_ms=500,
                             extra=["-t", "t1"])  # fmt: skip
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["sip_code"]) for r in rows] == [("ANSWERED", 200)] * 3


async def test_tcp_on_both_legs_media_through_rtpengine(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await conn.execute("UPDATE carrier_gateways SET transport = 'tcp'")
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0], extra=["-t", "t1"])
        uac = await sipp.uac(voice.stream_addr(Transport.TCP), calls=3, rate=10,
                             scenario="uac_pcap", extra=["-t", "t1"])  # fmt: skip
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        assert voice.streams is not None
        # SIPp's one connection (closed as it exited) and the one warpd opened to the gateway,
        # each reused by every call.
        assert voice.streams.accepted == 1
        gateway = StreamAddr(HOST, prov.gateway_ports[0], Transport.TCP)
        assert gateway in voice.streams.connections
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["hangup_by"]) for r in rows] == [("ANSWERED", "caller")] * 3
    for row in rows:  # g711a.pcap's ~250 packets reached the carrier and its echo came back
        assert row["rtp_packets_a"] > 200
        assert row["rtp_packets_b"] > 200
