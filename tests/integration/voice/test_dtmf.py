"""DTMF through warpd: RFC 4733 events relayed, SIP INFO digits played into the RTP.

The PBX is SIPp (``uac_info``: an RFC 2833 digit 1 in RTP, audio, then SIP INFO
digit 5 and an INFO whose signal is not a digit); the carrier is SIPp answering
with an SDP whose media port is a socket this test reads, so what rtpengine
sends the carrier is seen packet by packet.
"""

from __future__ import annotations

import asyncio
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
from tests.media.conftest import RtpEngineDaemon

TELEPHONE_EVENT = 101  # the payload type both SDPs give telephone-event/8000


class RtpSink(asyncio.DatagramProtocol):
    """The carrier's media port: RFC 4733 event codes and the count of audio packets."""

    def __init__(self) -> None:
        self.events: set[int] = set()
        self.audio = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if len(data) < 13 or data[0] >> 6 != 2:
            return
        header = 12 + 4 * (data[0] & 0x0F)  # CSRCs; no extensions from rtpengine here
        if data[1] & 0x7F == TELEPHONE_EVENT:
            self.events.add(data[header])  # RFC 4733 2.3: the event code comes first
        else:
            self.audio += 1


async def test_rfc4733_digits_relayed_and_sip_info_digits_played_as_rfc4733(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    capture = free_udp_port()
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=(HOST, capture))
    try:
        async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
            await sipp.uas(
                prov.gateway_ports[0], "uas_capture", extra=("-key", "capture_port", str(capture))
            )
            uac = await sipp.uac(voice.local_addr, calls=1, scenario="uac_info")
            assert await uac.wait() == 0, uac.errors()
            await voice.settled()
            played = voice.metrics.dtmf.labels("a")._value.get()
    finally:
        transport.close()
    [row] = await cdrs(voice_pool)
    assert row["disposition"] == "ANSWERED"
    assert sink.audio > 20  # the PBX's audio reached the carrier
    # 1 came as RFC 2833 in the PBX's RTP; 5 only as SIP INFO; the INFO with
    # "Signal=X" was answered 200 and played nothing.
    assert sink.events == {1, 5}
    assert played == 1
