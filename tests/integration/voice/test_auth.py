"""Digest-authenticated trunks: SIPp answers warpd's 407 (RFC 3261 22.4, MD5 in SIPp)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import SippFactory, cdrs, provision, running_voice
from tests.media.conftest import RtpEngineDaemon

# SIPp answers only the first challenge it gets and only MD5, although RFC 8760
# section 2.4 has clients pick the strongest they support: offer MD5 first.
MD5_FIRST = {"digest_algorithms": ("MD5", "SHA-256")}


async def digest_trunk(conn: asyncpg.Connection, username: str, password: str) -> None:
    ha1 = f"{username}:warpd:{password}".encode()
    await conn.execute(
        "UPDATE sip_trunks SET auth_mode = 'digest', allowed_ips = '{}', username = $1,"
        " realm = 'warpd', ha1_md5 = $2, ha1_sha256 = $3",
        username, hashlib.md5(ha1).hexdigest(), hashlib.sha256(ha1).hexdigest(),
    )  # fmt: skip


async def test_sipp_answers_the_407_and_the_call_completes(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await digest_trunk(conn, "pbx1", "s3cret")
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **MD5_FIRST) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(
            voice.local_addr, calls=2, scenario="uac_auth", extra=["-au", "pbx1", "-ap", "s3cret"]
        )
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["trunk_id"]) for r in rows] == [("ANSWERED", prov.trunk_id)] * 2


async def test_a_wrong_password_is_refused_403(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await digest_trunk(conn, "pbx1", "s3cret")
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **MD5_FIRST) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(
            voice.local_addr, calls=1, scenario="uac_auth", extra=["-au", "pbx1", "-ap", "guess"]
        )
        assert await uac.wait() != 0
        assert "403" in uac.errors()
        assert voice.metrics.answered == 0


async def test_a_carrier_challenge_is_answered_with_the_gateway_credentials(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await conn.execute(
            "UPDATE carrier_gateways SET username = 'warpd-gw', password = 'gw-pass'"
        )
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], "uas_challenge", extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1)
        assert await uac.wait() == 0, uac.errors()
        assert await uas.wait() == 0, uas.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["attempt_codes"]) == ("ANSWERED", [200])
