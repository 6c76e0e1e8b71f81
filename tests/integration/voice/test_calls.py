"""Calls PBX (SIPp uac) -> warpd -> carrier (SIPp uas with RTP echo), media through rtpengine."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    BALANCE,
    CONNECT_FEE,
    PER_MIN,
    SippFactory,
    cdrs,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon


async def balance(pool: asyncpg.Pool, account_id: int) -> tuple[int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT a.balance_micros, (SELECT sum(amount_micros) FROM ledger l"
            " WHERE l.account_id = a.id) AS total FROM accounts a WHERE a.id = $1",
            account_id,
        )
    assert row is not None
    return row["balance_micros"], row["total"]


async def test_calls_complete_with_a_cdr_and_one_charge_each(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=5, rate=20, hold_ms=1200)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        assert voice.metrics.answered == 5
        assert voice.metrics.answers.labels("pbx", "gw0")._value.get() == 5
    rows = await cdrs(voice_pool)
    assert len(rows) == 5
    for row in rows:
        assert row["disposition"] == "ANSWERED"
        assert row["sip_code"] == 200
        assert (row["hangup_by"], row["q850_cause"]) == ("caller", 16)
        assert row["call_id_b"] != row["call_id_a"]
        assert row["dst_e164"] == "441234567890"
        assert row["gateway_id"] == prov.gateway_ids[0]
        assert row["attempt_codes"] == [200]
        assert row["billsec"] in (1, 2)
        assert row["price_micros"] == CONNECT_FEE + PER_MIN * row["billsec"] // 60
        assert row["rtpengine_node"] is not None
        assert row["codec_a"] == "PCMU"
    charged = sum(r["price_micros"] for r in rows)
    assert await balance(voice_pool, prov.account_id) == (BALANCE - charged, BALANCE - charged)
    async with voice_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM voice_active_calls") == 0
        kinds = await conn.fetch("SELECT call_id FROM ledger WHERE kind = 'voice_charge'")
    assert sorted(str(r["call_id"]) for r in kinds) == sorted(str(r["id"]) for r in rows)


async def test_bye_from_the_carrier_ends_both_legs(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], "uas_bye", extra=["-m", "2"])
        uac = await sipp.uac(voice.local_addr, calls=2, rate=10, scenario="uac_wait_bye")
        assert await uac.wait() == 0, uac.errors()
        assert await uas.wait() == 0, uas.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["hangup_by"]) for r in rows] == [("ANSWERED", "callee")] * 2


async def test_first_gateway_503_then_the_second_answers(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=2)
        for gateway, per_min in zip(prov.gateway_ids, (1000, 30_000), strict=True):
            await conn.execute(
                "INSERT INTO voice_costs (gateway_id, prefix, cost_per_min_micros, currency,"
                " first_increment_s, next_increment_s) VALUES ($1, '44', $2, 'EUR', 1, 1)",
                gateway, per_min,
            )  # fmt: skip
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0], "uas_503")
        await sipp.uas(prov.gateway_ports[1])
        uac = await sipp.uac(voice.local_addr, calls=3, rate=10)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        sample = voice.metrics.registry.get_sample_value
        answered = {"trunk": "pbx", "gateway": "gw1"}
        assert sample("warpd_voice_call_attempts_total", {"trunk": "pbx"}) == 3
        assert sample("warpd_voice_call_answers_total", answered) == 3
        assert sample("warpd_voice_setup_seconds_count", answered) == 3
        assert sample("warpd_voice_call_failures_total", {**answered, "status": "503"}) is None
    rows = await cdrs(voice_pool)
    assert len(rows) == 3
    for row in rows:
        assert row["disposition"] == "ANSWERED"
        assert row["attempts"] == 2
        assert row["attempt_codes"] == [503, 200]
        assert row["gateway_id"] == prov.gateway_ids[1]
        # The cost is the answering carrier's: 30 000 micros a minute, per second.
        assert row["cost_micros"] == -(-30_000 * row["billsec"] // 60)


async def test_a_silent_gateway_times_out_and_the_next_answers(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=2)  # nothing listens on the first
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, gateway_timeout=0.5) as voice:
        await sipp.uas(prov.gateway_ports[1])
        uac = await sipp.uac(voice.local_addr, calls=1)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["attempt_codes"], row["gateway_id"]) == ([408, 200], prov.gateway_ids[1])


async def test_cancel_before_answer_cancels_the_carrier_leg(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=2)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], "uas_ring", extra=["-m", "2"])
        uac = await sipp.uac(voice.local_addr, calls=2, rate=10, scenario="uac_cancel")
        assert await uac.wait() == 0, uac.errors()
        assert await uas.wait() == 0, uas.errors()  # the carrier saw the CANCEL and ACKed its 487
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert len(rows) == 2
    for row in rows:
        assert (row["disposition"], row["sip_code"], row["price_micros"]) == ("CANCELLED", 487, 0)
        assert row["attempt_codes"] == [487]
        assert row["ring_at"] is not None
    assert await balance(voice_pool, prov.account_id) == (BALANCE, BALANCE)


async def test_media_is_relayed_both_ways_through_rtpengine(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])  # -rtp_echo sends back what it receives
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_pcap")
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    # g711a.pcap is ~5 s of audio at 50 packets/s, then RFC 2833 digit 1: the PBX's
    # packets reached the carrier, and its echo came back through rtpengine.
    assert row["rtp_packets_a"] > 200
    assert row["rtp_packets_b"] > 200
    assert row["rtp_bytes_a"] > 200 * 172


async def test_twenty_concurrent_calls_held_five_seconds_all_charged(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=20, rate=100, hold_ms=5000)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        assert voice.metrics.answered == 20
    rows = await cdrs(voice_pool)
    assert len(rows) == 20
    assert {r["disposition"] for r in rows} == {"ANSWERED"}
    assert {r["billsec"] for r in rows} <= {5, 6}
    charged = sum(r["price_micros"] for r in rows)
    assert charged == sum(CONNECT_FEE + PER_MIN * r["billsec"] // 60 for r in rows)
    assert await balance(voice_pool, prov.account_id) == (BALANCE - charged, BALANCE - charged)


async def test_a_200_crossing_the_cancel_is_acked_and_byed(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], "uas_cross", extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_cancel")
        assert await uac.wait() == 0, uac.errors()  # the PBX got 487, not the 200
        assert await uas.wait() == 0, uas.errors()  # the carrier got ACK then BYE
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["sip_code"], row["price_micros"]) == ("CANCELLED", 487, 0)
    assert row["attempt_codes"] == [200]


async def test_hold_re_invite_is_relayed_with_a_new_offer_and_answer(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        # The carrier checks the re-INVITE says sendonly, the PBX that the 200 says recvonly.
        uas = await sipp.uas(prov.gateway_ports[0], "uas_reinvite", extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_hold")
        assert await uac.wait() == 0, uac.errors()
        assert await uas.wait() == 0, uas.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["hangup_by"]) == ("ANSWERED", "caller")


async def test_ringing_too_long_cancels_the_carrier_and_answers_480(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=2)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, ring_timeout=1.0) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], "uas_ring", extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1)
        assert await uac.wait() != 0
        assert "SIP/2.0 480 " in uac.errors()
        assert await uas.wait() == 0, uas.errors()  # CANCELled, not left ringing
        await voice.settled()
        sample = voice.metrics.registry.get_sample_value
        tried = {"trunk": "pbx", "gateway": "gw0"}
        assert sample("warpd_voice_call_failures_total", {**tried, "status": "480"}) == 1
        assert sample("warpd_voice_post_dial_delay_seconds_count", tried) == 1
        assert sample("warpd_voice_call_answers_total", tried) is None
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["sip_code"], row["attempt_codes"]) == ("NO ANSWER", 480, [480])
