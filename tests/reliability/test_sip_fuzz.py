"""The socket fuzzer against warpd's SIP UDP listener (issue 12): the daemon with [sip] enabled
(its own rtpengine), seeded mutations of the RFC 3261 / RFC 4475 vectors as datagrams, for a
bounded time. Afterwards an OPTIONS still gets an answer and the daemon still runs.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.integration.voice.conftest import free_udp_ports
from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd

from .mutate import mutate
from .tally import TALLY, Fuzz, scaled
from .test_socket_fuzz import SEED

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sip"


def sip_seeds() -> list[bytes]:
    seeds = []
    for path in sorted(VECTORS.glob("*.sip")):
        raw = path.read_bytes()
        seeds.append(raw)
        seeds.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return seeds


def options(port: int, via_port: int) -> bytes:
    """An OPTIONS whose Via names the client's own port (answers go to the Via, RFC 3261 18.2.2)."""
    tag, call = uuid.uuid4().hex[:8], uuid.uuid4().hex
    return (
        f"OPTIONS sip:warpd@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{tag}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={tag}\r\nTo: <sip:warpd@127.0.0.1>\r\n"
        f"Call-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.answers.put_nowait(data)


@pytest_asyncio.fixture
async def with_sip(database_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    sip_port, ng_port = free_udp_ports(2)
    extra = (
        f"[sip]\nenabled = true\nlisten = '127.0.0.1:{sip_port}'\ntcp_listen = '127.0.0.1:0'\n"
        "reload_interval = 3600.0\n"
        f"[rtpengine]\nng_port = {ng_port}\nport_min = 46000\nport_max = 46499\n"
    )
    running = await start_warpd(database_dsn, tmp_path / "state", 0, extra=extra)
    yield running, sip_port
    await stop_warpd(running)


async def test_sip_udp_fuzz_leaves_warpd_serving(with_sip: tuple[Running, int]) -> None:
    running, port = with_sip
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    previous = loop.get_exception_handler()

    def handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        loop_errors.append(f"{ctx.get('message')}: {ctx.get('exception')!r}")
        lp.default_exception_handler(ctx)

    loop.set_exception_handler(handler)
    transport, client = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    mine = transport.get_extra_info("sockname")[1]
    try:
        transport.sendto(options(port, mine))
        async with asyncio.timeout(5):
            first = await client.answers.get()
        assert first.startswith(b"SIP/2.0 "), first[:80]
        seeds, rng, inputs = sip_seeds(), random.Random(SEED), 0
        deadline = time.monotonic() + scaled(3.0)
        while time.monotonic() < deadline:
            for _ in range(20):
                transport.sendto(mutate(rng, seeds)[:65000])
                inputs += 1
            await asyncio.sleep(0.005)  # the kernel's buffer, not the fuzzer, sets the pace
        await asyncio.sleep(0.5)
        probe = options(port, mine)
        call_id = probe.split(b"Call-ID: ", 1)[1].split(b"\r\n", 1)[0]
        transport.sendto(probe)
        async with asyncio.timeout(5):
            after = await client.answers.get()
            while call_id not in after:  # an answer to a fuzz input that named our port
                after = await client.answers.get()
    finally:
        transport.close()
        loop.set_exception_handler(previous)
    task: asyncio.Task[int] = running.daemon.task  # type: ignore[attr-defined]
    crashes = loop_errors + ([] if not task.done() else ["warpd exited"])
    TALLY.fuzz.append(Fuzz("SIP UDP listener", inputs, len(crashes), "; ".join(crashes)[:300]))
    assert after.startswith(b"SIP/2.0 "), after[:80]
    assert not task.done()
    assert crashes == [], crashes[:5]
