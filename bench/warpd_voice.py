"""warpd's voice B2BUA under test: its own count of calls, and its memory per active call.

``bench.peers.warpd.Warpd`` with a ``Voice`` starts the daemon with ``[sip]`` on,
media on the bench's RTPEngine and the demo's trunk and gateway pointed at the
bench's SIPp UAS. warpd's count of a run is its CDRs: every call SIPp offered
must have one row in ``voice_cdrs`` and every answered one a ``voice_charge``
ledger row (SIPp's own count is unreliable under loss, issue 10).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass

import asyncpg

from bench.harness.proc import HOST, free_port, pss_bytes
from bench.harness.results import Role, Row
from bench.peers import sipp
from bench.peers.base import rundir
from bench.peers.rtpengine import RtpEngine
from bench.peers.warpd import Voice, Warpd


@dataclass(frozen=True, slots=True)
class CdrCount:
    cdrs: int
    answered: int
    charged: int
    active: int  # answered calls whose CDR is not written yet


def start(name: str, voice: Voice) -> Warpd:
    """warpd with its B2BUA calling ``voice``'s UAS (the SMS side has no carrier)."""
    warpd = Warpd(name, free_port(), ("bench", "bench"), voice=voice)
    try:
        warpd.start()
    except BaseException:
        warpd.stop()
        raise
    time.sleep(1.0)  # the next directory reload (0.5 s) sees the gateway's bench port
    return warpd


def target(warpd: Warpd) -> str:
    return f"{HOST}:{warpd.sip_port}"


def counted(warpd: Warpd) -> CdrCount:
    return asyncio.run(_counted(warpd.dsn()))


async def _counted(dsn: str) -> CdrCount:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS cdrs, count(*) FILTER (WHERE disposition = 'ANSWERED')"
            " AS answered, (SELECT count(*) FROM ledger WHERE kind = 'voice_charge')"
            " AS charged, (SELECT count(*) FROM voice_active_calls) AS active"
            " FROM voice_cdrs"
        )
    finally:
        await conn.close()
    assert row is not None
    return CdrCount(row["cdrs"], row["answered"], row["charged"], row["active"])


def settled(warpd: Warpd, expected: int, timeout: float = 15.0) -> CdrCount:
    """The count once ``expected`` CDRs are in and no answered call lacks one (or at
    ``timeout``: a call SIPp never hung up stays up in warpd)."""
    deadline = time.monotonic() + timeout
    while True:
        count = counted(warpd)
        if (count.cdrs >= expected and count.active == 0) or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


def calls_row(calls: int, uas: sipp.Uas) -> Row:
    """memory.py's warpd row: the growth of warpd's own process's PSS (not its
    PostgreSQL's) while SIPp holds ``calls`` answered calls through it to ``uas``,
    media on an RTPEngine of its own (memory.py starts none)."""
    rtpengine = RtpEngine()
    rtpengine.install()
    rtpengine.start()
    voice = Voice(uas.port, rtpengine.ng_port)
    try:
        warpd = start("warpd-voice-memory", voice)
        try:
            before, after = hold(warpd, voice, calls)
        finally:
            warpd.stop()
    finally:
        rtpengine.stop()
    return Row(
        "warpd",
        Role.WARPD,
        {
            "kib": (after - before) / 1024 / calls,
            "before_mib": before / 2**20,
            "after_mib": after / 2**20,
            "count": calls,
        },
    )


def hold(warpd: Warpd, voice: Voice, calls: int, rate: int = 100) -> tuple[int, int]:
    """warpd's PSS before and while SIPp holds ``calls`` answered calls (checked in
    PostgreSQL: each answered call has its ``voice_active_calls`` row)."""
    run = rundir("sipp-hold-warpd")
    uac, _ = sipp.write_scenarios(run)

    def own() -> list[int]:
        return warpd.processes()["warpd"]

    before = pss_bytes(own())
    argv = sipp.uac_argv(uac, target(warpd), rate, calls, calls, 60_000, voice.number)
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run
    ) as uac_process:
        deadline = time.monotonic() + calls / rate + 20.0
        while counted(warpd).active < calls and time.monotonic() < deadline:
            time.sleep(0.5)
        held = counted(warpd).active
        after = pss_bytes(own())
        uac_process.terminate()
        uac_process.wait(30)
    if held < calls:
        raise RuntimeError(f"only {held} of {calls} calls answered and held")
    return before, after
