"""Overload control: while the event loop runs late, new INVITEs get 503 with Retry-After
and the calls in progress still end normally; once the loop keeps time again calls go on."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import HOST, SippFactory, cdrs, provision, running_voice
from tests.integration.voice.test_limits import final_response, invite
from tests.media.conftest import RtpEngineDaemon
from tests.warpd.sms.helpers import wait_for
from warpd.voice.overload import LagEstimate


def test_the_lag_estimate_smooths_single_late_turns_and_follows_a_lasting_lag() -> None:
    estimate = LagEstimate(0.1)
    estimate.sample(0.3)  # one turn 300 ms late: a hiccup, not overload
    assert not estimate.overloaded
    for _ in range(10):
        estimate.sample(0.3)
    assert estimate.overloaded
    for _ in range(20):
        estimate.sample(-0.001)  # early wake-ups count as on time
    assert not estimate.overloaded
    assert estimate.lag >= 0
    assert not LagEstimate(0.0, lag=5.0).overloaded  # 0: off


async def test_a_late_loop_sheds_new_invites_and_lets_calls_in_progress_end(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, overload_lag_ms=100) as voice:
        assert voice.b2bua is not None
        b2bua = voice.b2bua
        await sipp.uas(prov.gateway_ports[0])
        held = await sipp.uac(voice.local_addr, calls=1, hold_ms=2500)
        await wait_for(lambda: len(b2bua.calls) == 1, 10, "the held call up")
        busy = True

        async def hog() -> None:  # what a loop past its capacity looks like from inside
            while busy:
                time.sleep(0.15)  # noqa: ASYNC251 - blocking the loop is the point
                await asyncio.sleep(0.005)

        hogging = asyncio.create_task(hog())
        try:
            await wait_for(lambda: b2bua.load.overloaded, 10, "the loop seen late")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((HOST, 0))
                port = sock.getsockname()[1]
                sock.sendto(invite(port, 1, voice.local_addr), voice.local_addr)
                shed = await asyncio.to_thread(final_response, sock, "raw-1@", 10.0)
            # The held call's BYE comes while the loop is still late: it is handled.
            assert await held.wait(30) == 0, held.errors()
        finally:
            busy = False
            await hogging
        assert shed.startswith("SIP/2.0 503 "), shed
        assert "\r\nRetry-After: 1\r\n" in shed, shed
        assert voice.metrics.shed._value.get() == 1  # type: ignore[attr-defined]
        await wait_for(lambda: not b2bua.load.overloaded, 10, "the loop on time again")
        after = await sipp.uac(voice.local_addr, calls=2, rate=10)
        assert await after.wait(30) == 0, after.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert sorted((r["disposition"], r["sip_code"]) for r in rows) == [
        ("ANSWERED", 200), ("ANSWERED", 200), ("ANSWERED", 200), ("CONGESTION", 503)
    ]  # fmt: skip
