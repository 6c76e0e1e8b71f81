"""Call recording per trunk (``sip_trunks.record_calls``) through RTPEngine's ``record call``.

A recording trunk's call runs on the daemon-owned rtpengine (``RtpEngineProcess``,
started with ``--recording-dir`` and ``--recording-method=pcap``): SIPp sends
audio (``uac_pcap``), the UAS echoes it, and the pcap the CDR names holds the
call's packets. Another trunk's call on the same rtpengine leaves no file. The
shared test rtpengine has no recording directory: it answers the offer without
recording, and the call completes with ``recording = 'refused'`` in its CDR.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    HOST,
    SippFactory,
    cdrs,
    free_udp_port,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon, media
from warpd.config.schema import RtpEngineConfig

PCAP_HEADER = 24  # bytes of a pcap file's global header: a file of packets is longer


def recording_rtpengine(tmp_path: Path) -> RtpEngineConfig:
    return RtpEngineConfig(
        embedded=True,
        ng_port=free_udp_port(),
        media_address=HOST,
        port_min=media(1900),
        port_max=media(1999),
        recording_dir=str(tmp_path / "recordings"),
        recording_method="pcap",
    )


def sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


async def test_a_recording_trunks_call_leaves_its_recording_and_another_none(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await conn.execute("UPDATE sip_trunks SET record_calls = true")
    config = recording_rtpengine(tmp_path)
    pcaps = tmp_path / "recordings" / "pcaps"
    async with running_voice(
        voice_pool, voice_rtpengine, tmp_path / "state", media_config=config
    ) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_pcap", hold_ms=1000)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        async with voice_pool.acquire() as conn:
            await conn.execute("UPDATE sip_trunks SET record_calls = false")
        await voice.reload()
        uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_pcap", hold_ms=1000)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    recorded, plain = await cdrs(voice_pool)
    assert (recorded["disposition"], recorded["recording"]) == ("ANSWERED", "recorded")
    path = Path(recorded["recording_path"])
    assert path.parent == pcaps
    assert recorded["id"].hex in path.name.replace("-", "")  # rtpengine names it by call-id
    files = sizes(pcaps)
    assert files[path.name] > PCAP_HEADER + 50 * 16, "the recording holds no audio"
    assert recorded["rtp_packets_a"] > 0
    assert (plain["disposition"], plain["recording"], plain["recording_path"]) == (
        "ANSWERED", None, None,
    )  # fmt: skip
    assert list(files) == [path.name]  # the second call left nothing


async def test_rtpengine_not_recording_does_not_fail_the_call(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await conn.execute("UPDATE sip_trunks SET record_calls = true")
    # The shared rtpengine runs without --recording-dir: it answers "ok" and records nothing.
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=2, hold_ms=200)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["recording"], r["recording_path"]) for r in rows] == [
        ("ANSWERED", "refused", None)
    ] * 2
    assert all(r["price_micros"] > 0 for r in rows)
