"""Voice faults (issue 12): what a crash leaves in rtpengine, and one of two rtpengines dying
under held calls. Real rtpengine daemons, SIPp peers and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from media.client import NgClient
from protocols.ng.messages import Delete, Ice, ListCalls, Offer
from tests.integration.sms.test_crash import spawn, wait_listening
from tests.integration.voice.conftest import (
    HOST,
    SippFactory,
    cdrs,
    free_tcp_port,
    free_udp_port,
    provision,
)
from tests.media.conftest import RtpEngineDaemon, media
from tests.media.helpers import sdp
from warpd.config.schema import RtpEngineConfig, SipConfig
from warpd.store.migrate import load_migrations, migrate
from warpd.voice.cdr import Answered, Cdr, write
from warpd.voice.service import VoiceService

from .tally import TALLY, Fault, Hostile


async def listed(rtpengine: RtpEngineDaemon) -> set[str]:
    async with NgClient(*rtpengine.address) as client:
        return set((await client.request(ListCalls(limit=10_000))).calls)


async def test_rtpengine_sessions_of_calls_a_crash_left_are_deleted_at_start(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    """kill -9 leaves two things: the call's voice_active_calls row (closed with a CDR at the
    next start: tests/integration/voice/test_recovery.py) and its rtpengine session, which
    relays media for nobody until rtpengine's own timeout. The start deletes it too, and
    leaves sessions that are not its crashed calls alone."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)  # type: ignore[arg-type]
    now = dt.datetime.now(dt.UTC)
    crashed = [
        Cdr(uuid.uuid4(), "outbound", f"pbx-{n}@10.0.0.1", "100", "441234567890",
            now - dt.timedelta(seconds=65), account_id=prov.account_id, trunk_id=prov.trunk_id,
            dst_e164="441234567890", answer_at=now - dt.timedelta(seconds=60), currency="EUR")
        for n in range(3)
    ]  # fmt: skip
    await write(voice_pool, [Answered(c, "test") for c in crashed])
    other = f"not-ours-{uuid.uuid4()}"
    async with NgClient(*voice_rtpengine.address) as client:
        for call_id in [*(str(c.id) for c in crashed), other]:
            await client.request(
                Offer(call_id=call_id, from_tag="a", sdp=sdp(free_udp_port()), ice=Ice.REMOVE)
            )
    before = await listed(voice_rtpengine)
    assert {str(c.id) for c in crashed} | {other} <= before
    async with running_voice_on(voice_pool, [voice_rtpengine], tmp_path):
        pass
    after = await listed(voice_rtpengine)
    async with NgClient(*voice_rtpengine.address) as client:
        await client.request(Delete(call_id=other, delete_delay=0))
    rows = await cdrs(voice_pool)
    left = {str(c.id) for c in crashed} & after
    causes = [(r["hangup_by"], r["q850_cause"]) for r in rows]
    TALLY.hostile.append(
        Hostile("voice: rtpengine sessions of 3 calls a crash left, at the next start",
                f"{3 - len(left)} of 3 deleted, CDRs {causes}", not left)
    )  # fmt: skip
    assert not left, left
    assert other in after
    assert sorted((r["hangup_by"], r["q850_cause"]) for r in rows) == [("system", 41)] * 3
    async with voice_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM voice_active_calls") == 0


@contextlib.asynccontextmanager
async def running_voice_on(
    pool: asyncpg.Pool,
    rtpengines: list[RtpEngineDaemon],
    state_dir: Path,
    source_rate: float = 5000.0,  # the schema's default
) -> AsyncIterator[VoiceService]:
    """tests/integration/voice/conftest.py's running_voice, on several rtpengine instances."""
    service = VoiceService(
        SipConfig(
            enabled=True, listen=f"{HOST}:0", tcp_listen=f"{HOST}:0", gateway_timeout=2.0,
            options_interval=0.0, source_rate=source_rate,
        ),
        RtpEngineConfig(
            embedded=False, instances=tuple(f"{HOST}:{r.ng_port}" for r in rtpengines)
        ),
        pool, state_dir=state_dir, instance="test",
    )  # fmt: skip
    await service.start()
    try:
        yield service
    finally:
        await service.stop(1.0)


async def test_one_of_two_rtpengines_stopped_under_held_calls(
    voice_pool: asyncpg.Pool, sipp: SippFactory, tmp_path: Path
) -> None:
    """Calls on the dead instance end with a CDR (Q.850 41), calls on the other stay up,
    new calls all go through on the survivor, and nothing hangs afterwards."""
    first = RtpEngineDaemon(
        tmp_path / "rtpe-a", free_udp_port(), free_tcp_port(), media(2000), media(2199)
    )
    second = RtpEngineDaemon(
        tmp_path / "rtpe-b", free_udp_port(), free_tcp_port(), media(2200), media(2399)
    )
    first.start()
    second.start()
    held = 8
    try:
        async with voice_pool.acquire() as conn:
            prov = await provision(conn, gateways=1)  # type: ignore[arg-type]
        async with running_voice_on(voice_pool, [first, second], tmp_path) as voice:
            await sipp.uas(prov.gateway_ports[0])
            long_calls = await sipp.uac(voice.local_addr, calls=held, rate=50, hold_ms=30_000)
            async with asyncio.timeout(30):
                while voice.metrics.answered < held:  # noqa: ASYNC110 - a counter
                    await asyncio.sleep(0.05)
            on_first, on_second = len(await listed(first)), len(await listed(second))
            first.stop()
            new_calls = await sipp.uac(voice.local_addr, calls=6, rate=20, hold_ms=300)
            new_exit = await new_calls.wait(60)
            async with asyncio.timeout(30):
                while len(await cdrs(voice_pool)) < on_first + 6:  # noqa: ASYNC110 - rows
                    await asyncio.sleep(0.2)
            still_up = len(await listed(second))
        # Leaving the block stops the service: the calls still up are hung up within 1 s.
        await long_calls.stop()
    finally:
        first.stop()
        second.stop()
    rows = await cdrs(voice_pool)
    ended = [(r["hangup_by"], r["q850_cause"]) for r in rows]
    TALLY.faults.append(
        Fault("one of two rtpengines stopped under held calls (voice)", injected=1,
              offered=held + 6, acknowledged=held + 6,
              delivered=sum(1 for r in rows if r["disposition"] == "ANSWERED"),
              note=f"{on_first} calls on the dead instance ended {ended.count(('system', 41))}"
              f" with Q.850 41, {on_second} on the other stayed up; 6 new calls: SIPp exit "
              f"{new_exit}")
    )  # fmt: skip
    assert on_first + on_second == held, (on_first, on_second)
    assert on_first > 0, "the hash put no call on the first instance: nothing was tested"
    assert new_exit == 0, "new calls failed while one rtpengine was down"
    assert ended.count(("system", 41)) == on_first, ended
    assert still_up >= on_second, (still_up, on_second)
    assert len(rows) == held + 6


async def active_calls(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM voice_active_calls"))
    finally:
        await conn.close()


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():  # noqa: ASYNC110 - a database or ng poll
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_kill_9_with_calls_held_leaves_no_active_call_and_no_rtpengine_session(
    database_dsn: str, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    """warpd (its own process, the CLI) carries SIPp calls through rtpengine; kill -9 with the
    calls held; after the restart no voice_active_calls row is left, every call has its CDR
    (system, Q.850 41), and rtpengine holds none of their sessions."""
    conn = await asyncpg.connect(database_dsn)
    await migrate(conn, load_migrations())
    prov = await provision(conn, gateways=1)
    await conn.close()
    sip_port, http_port = free_udp_port(), free_tcp_port()
    config = tmp_path / "warpd.toml"
    config.write_text(
        f"[database]\ndsn = '{database_dsn}'\npool_max = 4\n[daemon]\nstate_dir = '{tmp_path}'\n"
        f"shutdown_timeout = 2.0\n[http]\nlisten = '{HOST}:{http_port}'\n[smpp]\nlisten = ''\n"
        f"[sip]\nenabled = true\nlisten = '{HOST}:{sip_port}'\ntcp_listen = '{HOST}:0'\n"
        "gateway_timeout = 2.0\n"
        f"options_interval = 0.0\n[rtpengine]\nembedded = false\n"
        f"instances = ['{HOST}:{voice_rtpengine.ng_port}']\n"
        "[cluster]\ninstance_id = 'voice-crash'\n[log]\nlevel = 'warning'\n"
    )
    args, out = ["--config", str(config), "run"], tmp_path / "warpd.out"
    warpd = spawn(args, out)
    calls = 5
    try:
        await wait_listening(http_port, warpd, 90)
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac((HOST, sip_port), calls=calls, rate=20, hold_ms=120_000)

        async def all_up() -> bool:
            return await active_calls(database_dsn) == calls

        await until(all_up, 60, f"{calls} answered calls")
        sessions = await listed(voice_rtpengine)
        warpd.send_signal(signal.SIGKILL)
        warpd.wait(10)
        await uac.stop()  # the PBX gives up on them; its BYEs would only get 481
        left_by_crash = await active_calls(database_dsn)
        warpd = spawn(args, out)
        await wait_listening(http_port, warpd, 90)

        async def none_active() -> bool:
            return await active_calls(database_dsn) == 0

        await until(none_active, 30, "no active call after the restart")
        after = await listed(voice_rtpengine)
    finally:
        warpd.send_signal(signal.SIGTERM)
        warpd.wait(20)
    rows = await asyncpg_rows(database_dsn)
    ours = {str(r["id"]) for r in rows}
    TALLY.faults.append(
        Fault("kill -9 with SIPp calls held (voice)", injected=1, offered=calls,
              acknowledged=calls, delivered=len(rows), lost=calls - len(rows),
              note=f"{left_by_crash} active rows after the kill, 0 after the restart; "
              f"rtpengine sessions of the dead calls: {len(ours & sessions)} before, "
              f"{len(ours & after)} after")
    )  # fmt: skip
    assert left_by_crash == calls
    assert len(rows) == calls
    assert [(r["hangup_by"], r["q850_cause"]) for r in rows] == [("system", 41)] * calls
    assert ours <= sessions, "the calls' media did not go through this rtpengine"
    assert not ours & after, ours & after


async def asyncpg_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch("SELECT * FROM voice_cdrs ORDER BY start_at"))
    finally:
        await conn.close()


def flood_request(method: str, port: int, n: int) -> bytes:
    target = "sip:441234567890@127.0.0.1" if method == "INVITE" else f"sip:{HOST}"
    return (
        f"{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-fl{n}\r\n"
        f"From: <sip:100@{HOST}>;tag=fl{n}\r\nTo: <sip:441234567890@{HOST}>\r\n"
        f"Call-ID: flood-{n}@{HOST}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:100@{HOST}:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


#: Where the carrier gateway (SIPp UAS) answers from, apart from both trunks' addresses.
GATEWAY_HOST = "127.0.0.4"


@pytest.mark.parametrize("flood_from", [HOST, GATEWAY_HOST], ids=["a-trunk", "the-gateway"])
async def test_an_invite_and_register_flood_from_one_address_spares_another_trunk(
    voice_pool: asyncpg.Pool,
    voice_rtpengine: RtpEngineDaemon,
    sipp: SippFactory,
    tmp_path: Path,
    flood_from: str,
) -> None:
    """2,000 INVITEs and REGISTERs from one address as fast as a socket sends them, while a
    PBX on another trunk (another address) places 10 calls: the flood is rate-limited at the
    transport (source_rate), every call of the other trunk completes. From the gateway's own
    address too (UDP sources are easily spoofed): the flood spends the address's request
    budget, and the gateway's responses have a budget of their own (response_rate)."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)  # type: ignore[arg-type]
        await conn.execute(
            "INSERT INTO sip_trunks (account_id, name, auth_mode, allowed_ips, max_channels,"
            " max_cps, country_code) VALUES ($1, 'pbx-b', 'ip', '{127.0.0.3/32}', 50, 100, '44')",
            prov.account_id,
        )
        await conn.execute("UPDATE carrier_gateways SET host = $1", GATEWAY_HOST)
    async with running_voice_on(voice_pool, [voice_rtpengine], tmp_path, 20.0) as voice:
        await sipp.uas(prov.gateway_ports[0], extra=["-i", GATEWAY_HOST])
        other = await sipp.uac(voice.local_addr, calls=10, rate=10, hold_ms=200,
                               extra=["-i", "127.0.0.3"])  # fmt: skip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            flood.bind((flood_from, 0))
            port = flood.getsockname()[1]
            for n in range(2000):
                flood.sendto(flood_request("INVITE" if n % 2 else "REGISTER", port, n),
                             voice.local_addr)  # fmt: skip
                if n % 100 == 0:
                    await asyncio.sleep(0)
        other_exit = await other.wait(60)
        assert voice.transport is not None
        dropped = voice.transport.dropped
    TALLY.hostile.append(
        Hostile(f"SIP INVITE + REGISTER flood (2,000 from {flood_from}, "
                f"{'a trunk' if flood_from == HOST else 'the gateway'}), another trunk calling",
                f"{dropped} dropped at the transport; the other trunk's 10 calls: SIPp exit "
                f"{other_exit}", other_exit == 0 and dropped >= 1500)
    )  # fmt: skip
    assert dropped >= 1500, dropped  # a burst of 40 at 20/s is let through, the rest dropped
    assert other_exit == 0, other.errors()
