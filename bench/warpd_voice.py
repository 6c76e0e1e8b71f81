"""warpd's voice B2BUA under test: its own count of calls, and its memory per active call.

``bench.peers.warpd.Warpd`` with a ``Voice`` starts the daemon with ``[sip]`` on,
media on the bench's RTPEngine and the demo's trunk and gateway pointed at the
bench's SIPp UAS. warpd's count of a run is its CDRs: every call SIPp offered
must have one row in ``voice_cdrs`` and every answered one a ``voice_charge``
ledger row (SIPp's own count is unreliable under loss, issue 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

# First: bench.scenarios' modules import bench.peers.warpd, which imports bench.scenarios.
import bench.scenarios  # noqa: F401
from bench.harness.proc import HOST, free_port, pss_bytes
from bench.harness.results import Role, Row
from bench.peers import sipp
from bench.peers.base import rundir
from bench.peers.rtpengine import RtpEngine
from bench.peers.warpd import Voice, Warpd

if TYPE_CHECKING:
    from warpd.voice.service import VoiceService


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


@contextlib.contextmanager
def running(name: str, uas: sipp.Uas) -> Iterator[tuple[Warpd, Voice]]:
    """warpd calling ``uas``, media on an RTPEngine of its own; both stopped after."""
    rtpengine = RtpEngine()
    rtpengine.install()
    rtpengine.start()
    try:
        voice = Voice(uas.port, rtpengine.ng_port)
        warpd = start(name, voice)
        try:
            yield warpd, voice
        finally:
            warpd.stop()
    finally:
        rtpengine.stop()


def calls_row(calls: int, uas: sipp.Uas) -> Row:
    """memory.py's warpd row: the growth of warpd's own process's PSS (not its
    PostgreSQL's) while SIPp holds ``calls`` answered calls through it to ``uas``,
    media on an RTPEngine of its own (memory.py starts none)."""
    with running("warpd-voice-memory", uas) as (warpd, voice):
        before, after = hold(warpd, voice, calls)
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


#: how long each held call lasts: longer than placing them all takes at worst
HOLD_MS = 180_000


def hold(warpd: Warpd, voice: Voice, calls: int, rate: int = 50) -> tuple[int, int]:
    """warpd's PSS before and while SIPp holds ``calls`` answered calls (checked in
    PostgreSQL: each answered call has its ``voice_active_calls`` row).

    SIPp keeps at most ``calls`` up and replaces a call that failed (up to as many
    again): on a busy machine some set-ups time out, and a fixed count of attempts
    then held fewer calls than asked (208 of 1,000 at a load average of 16)."""
    run = rundir("sipp-hold-warpd")
    uac, _ = sipp.write_scenarios(run)

    def own() -> list[int]:
        return warpd.processes()["warpd"]

    before = pss_bytes(own())
    argv = sipp.uac_argv(uac, target(warpd), rate, 2 * calls, calls, HOLD_MS, voice.number)
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run
    ) as uac_process:
        deadline = time.monotonic() + 2 * calls / rate + 30.0
        while counted(warpd).active < calls and time.monotonic() < deadline:
            time.sleep(0.5)
        held = counted(warpd).active
        after = pss_bytes(own())
        uac_process.terminate()
        uac_process.wait(30)
    if held < calls:
        raise RuntimeError(f"only {held} of {calls} calls answered and held")
    return before, after


def heap_per_call(calls: int, uas: sipp.Uas, rate: int = 20) -> tuple[int, int]:
    """Python heap of the voice service per answered call, by tracemalloc (independent of
    the allocator and of how busy the machine is): ``(bytes per call, calls held)``.

    The service runs in this process on a bench warpd's database (its trunk, its gateway
    to ``uas``), media on an RTPEngine of its own; SIPp holds ``calls`` calls through it.
    """
    with running("warpd-voice-heap", uas) as (warpd, voice):
        return asyncio.run(_heap(warpd, voice, calls, rate))


async def _heap(warpd: Warpd, voice: Voice, calls: int, rate: int) -> tuple[int, int]:
    from warpd.config import parse
    from warpd.voice.service import VoiceService

    config = parse(
        f"[sip]\nenabled = true\nlisten = '{HOST}:0'\ntcp_listen = ''\noptions_interval = 0.0\n"
        f"source_rate = 0.0\n[rtpengine]\nembedded = false\n"
        f"instances = ['{HOST}:{voice.ng_port}']\n",
        "bench",
        {},
    )
    pool = await asyncpg.create_pool(warpd.dsn(), min_size=1, max_size=4)
    service = VoiceService(
        config.sip, config.rtpengine, pool, state_dir=warpd.dir / "heap", instance="heap"
    )
    host, port = await service.start()
    run = rundir("sipp-heap-warpd")
    uac, _ = sipp.write_scenarios(run)
    argv = sipp.uac_argv(uac, f"{host}:{port}", rate, calls, calls, 300_000, voice.number)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    holder = await asyncio.create_subprocess_exec(
        *argv, cwd=run, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(int(2 * (calls / rate + 30))):  # polled every 0.5 s, bounded
            if _answered(service) >= calls:
                break
            await asyncio.sleep(0.5)
        gc.collect()
        held = _answered(service)
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
        if holder.returncode is None:
            holder.terminate()
        code = await holder.wait()
        await service.stop(2.0)
        await pool.close()
    if held < calls:
        raise RuntimeError(f"only {held} of {calls} calls answered and held (SIPp exit {code})")
    return grown // held, held


def _answered(service: VoiceService) -> int:
    assert service.b2bua is not None
    return sum(1 for call in service.b2bua.calls if call.cdr.answer_at is not None)


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    sipp.install()
    far_end = sipp.Uas()
    far_end.start()
    try:
        per_call, held = heap_per_call(count, far_end)
        print(f"{held} calls held: {per_call} bytes of Python heap per call")
    finally:
        far_end.stop()
