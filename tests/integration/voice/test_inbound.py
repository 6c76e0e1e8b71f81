"""REGISTER, then a carrier's call to the PBX's DID reaches the registered PBX."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    SippFactory,
    cdrs,
    free_udp_port,
    provision,
    running_voice,
)
from tests.integration.voice.test_auth import MD5_FIRST, digest_trunk
from tests.media.conftest import RtpEngineDaemon

DID = "442071234567"


async def test_register_then_an_inbound_call_reaches_the_pbx(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    carrier_port = free_udp_port()
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await digest_trunk(conn, "pbx1", "s3cret")
        await conn.execute("UPDATE sip_trunks SET auth_mode = 'register'")
        await conn.execute("UPDATE carrier_gateways SET port = $1, probe = false", carrier_port)
        await conn.execute(
            "INSERT INTO dids (number, account_id, trunk_id) VALUES ($1, $2, $3)",
            DID, prov.account_id, prov.trunk_id,
        )  # fmt: skip
    pbx_port = free_udp_port()
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **MD5_FIRST) as voice:
        pbx = await sipp.uas(pbx_port, extra=["-m", "1"])
        register = await sipp.uac(
            voice.local_addr, calls=1, scenario="uac_register",
            extra=["-au", "pbx1", "-ap", "s3cret", "-key", "contact_port", str(pbx_port)],
        )  # fmt: skip
        assert await register.wait() == 0, register.errors()
        async with voice_pool.acquire() as conn:
            binding = await conn.fetchrow("SELECT * FROM sip_registrations")
        assert binding["contact"] == f"sip:pbx1@127.0.0.1:{pbx_port}"
        carrier = await sipp.uac(
            voice.local_addr, calls=1, service=f"+{DID}", extra=["-p", str(carrier_port)]
        )
        assert await carrier.wait() == 0, carrier.errors()
        assert await pbx.wait() == 0, pbx.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["direction"], row["disposition"], row["dst_e164"]) == ("inbound", "ANSWERED", DID)
    assert (row["trunk_id"], row["price_micros"]) == (prov.trunk_id, 0)


async def test_an_unregistered_did_gets_480_and_an_unknown_one_404(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    carrier_port = free_udp_port()
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await digest_trunk(conn, "pbx1", "s3cret")
        await conn.execute("UPDATE sip_trunks SET auth_mode = 'register'")
        await conn.execute("UPDATE carrier_gateways SET port = $1, probe = false", carrier_port)
        await conn.execute(
            "INSERT INTO dids (number, account_id, trunk_id) VALUES ($1, $2, $3)",
            DID, prov.account_id, prov.trunk_id,
        )  # fmt: skip
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        for number, status in ((DID, "480"), ("449999999999", "404")):
            carrier = await sipp.uac(
                voice.local_addr, calls=1, service=number, extra=["-p", str(carrier_port)]
            )
            assert await carrier.wait() != 0
            assert f"SIP/2.0 {status} " in carrier.errors()
        await voice.settled()
    assert {r["sip_code"] for r in await cdrs(voice_pool)} == {480, 404}
