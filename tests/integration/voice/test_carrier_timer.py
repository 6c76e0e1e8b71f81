"""RFC 4028 session timers on the carrier leg, against SIPp carriers that refresh, stop or fail.

warpd asks every carrier for ``Session-Expires`` (``sip.carrier_session_expires``);
each SIPp UAS answers for a refresher and then behaves as its scenario says:
takes warpd's UPDATEs, answers its re-INVITE 481, refreshes itself or never
does, or first answers 422 with a larger Min-SE.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.integration.voice.conftest import SippFactory, cdrs, provision, running_voice
from tests.media.conftest import RtpEngineDaemon

ASK = {"carrier_session_expires": 4}


async def _call(
    voice_pool: asyncpg.Pool,
    voice_rtpengine: RtpEngineDaemon,
    sipp: SippFactory,
    tmp_path: Path,
    scenario: str,
    *,
    pbx: str = "uac_wait_bye",
    hold_ms: int = 200,
) -> asyncpg.Record:
    """One call through a carrier playing ``scenario``; its CDR."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **ASK) as voice:
        uas = await sipp.uas(prov.gateway_ports[0], scenario, extra=["-m", "1"])
        uac = await sipp.uac(voice.local_addr, calls=1, scenario=pbx, hold_ms=hold_ms)
        assert await uas.wait() == 0, uas.errors()  # the carrier saw what its scenario expects
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    return row


async def test_warpd_refreshes_when_the_carrier_makes_it_the_refresher(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    # 4 s interval, refreshed every 2 s by UPDATE: the call outlives the interval.
    row = await _call(
        voice_pool, voice_rtpengine, sipp, tmp_path, "uas_timer_refresh", pbx="uac", hold_ms=5000
    )
    assert (row["disposition"], row["hangup_by"]) == ("ANSWERED", "caller")
    assert 5 <= row["billsec"] <= 6


async def test_a_refresh_answered_481_clears_both_legs(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    # The carrier says 2 s and no UPDATE: the refresh is a re-INVITE at 1 s, answered 481.
    row = await _call(voice_pool, voice_rtpengine, sipp, tmp_path, "uas_timer_481")
    assert (row["disposition"], row["hangup_by"], row["q850_cause"]) == (
        "ANSWERED", "session_timer", 41,
    )  # fmt: skip
    assert row["billsec"] in (1, 2)


async def test_a_carrier_that_never_refreshes_is_cleared_when_the_session_expires(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    row = await _call(voice_pool, voice_rtpengine, sipp, tmp_path, "uas_timer_silent")
    assert (row["disposition"], row["hangup_by"], row["q850_cause"]) == (
        "ANSWERED", "session_timer", 102,
    )  # fmt: skip
    assert row["billsec"] in (2, 3)


@pytest.mark.parametrize("scenario", ["uas_timer_refreshing", "uas_timer_reinvite"])
async def test_a_carrier_that_refreshes_keeps_the_call_up_past_the_interval(
    voice_pool: asyncpg.Pool,
    voice_rtpengine: RtpEngineDaemon,
    sipp: SippFactory,
    tmp_path: Path,
    scenario: str,
) -> None:
    # 2 s interval, UPDATEs (or re-INVITEs without SDP) from the carrier at 1 s and 2 s,
    # each answered with the timer: the call is up at 3.5 s, when the PBX hangs up.
    row = await _call(
        voice_pool, voice_rtpengine, sipp, tmp_path, scenario, pbx="uac", hold_ms=3500
    )
    assert (row["disposition"], row["hangup_by"]) == ("ANSWERED", "caller")
    assert 3 <= row["billsec"] <= 5


async def test_a_422_is_retried_with_the_carriers_min_se(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    # The 200 to the retry has no Session-Expires: no timer, the PBX hangs up as usual.
    row = await _call(
        voice_pool, voice_rtpengine, sipp, tmp_path, "uas_timer_422", pbx="uac", hold_ms=500
    )
    assert (row["disposition"], row["hangup_by"], row["attempt_codes"]) == (
        "ANSWERED", "caller", [200],
    )  # fmt: skip
