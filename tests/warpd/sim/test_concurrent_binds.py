"""The simulator counts binds open at once per system_id, as a carrier enforcing its limit does.

The cluster suite reads ``max_concurrent_binds`` to prove that several warpd
instances together never open more binds than a connector allows.
"""

from __future__ import annotations

import asyncio

from protocols.smpp.codec import decode, encode
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import BindTransceiver, Pdu, Unbind
from tests.warpd.sim.conftest import Start
from warpd.sim import SmscSimulator
from warpd.sim.carrier import Mode, ModeKind

Link = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _read_pdu(reader: asyncio.StreamReader) -> Pdu:
    frames = PduReader()
    async with asyncio.timeout(3):
        while (frame := frames.next_frame()) is None:
            data = await reader.read(4096)
            assert data, "closed before a PDU came"
            frames.feed(data)
    return decode(frame)


async def _bind(simulator: SmscSimulator, password: str = "sim") -> tuple[Link, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", simulator.port)
    writer.write(encode(BindTransceiver(sequence_number=1, system_id="sim", password=password)))
    response = await _read_pdu(reader)
    return (reader, writer), response.command_status


async def _until(check: object, seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_binds_open_at_once_are_counted_up_and_down(start_smsc: Start) -> None:
    smsc = await start_smsc()
    links = [(await _bind(smsc))[0] for _ in range(3)]
    stats = smsc.stats
    assert stats.bound_now == {"sim": 3}
    assert stats.max_concurrent_binds == {"sim": 3}
    # One unbinds cleanly, one drops its TCP connection: both stop counting.
    reader, writer = links[0]
    writer.write(encode(Unbind(sequence_number=2)))
    await _read_pdu(reader)
    links[1][1].transport.abort()
    await _until(lambda: stats.bound_now["sim"] == 1)
    # A new bind after those is the second open one, not the fourth.
    links.append((await _bind(smsc))[0])
    assert stats.bound_now == {"sim": 2}
    assert stats.max_concurrent_binds == {"sim": 3}  # the peak stays
    snapshot = stats.snapshot()
    assert snapshot["bound_now"] == {"sim": 2}
    assert snapshot["max_concurrent_binds"] == {"sim": 3}
    for _, writer in links:
        writer.close()
    await _until(lambda: stats.bound_now["sim"] == 0)


async def test_a_refused_bind_is_never_counted(start_smsc: Start) -> None:
    smsc = await start_smsc()
    (_, writer), status = await _bind(smsc, password="wrong")
    assert status != 0
    writer.close()
    assert smsc.stats.binds_refused == 1
    assert smsc.stats.max_concurrent_binds["sim"] == 0
    assert smsc.stats.bound_now["sim"] == 0


async def test_binds_the_simulator_drops_stop_counting_once(start_smsc: Start) -> None:
    smsc = await start_smsc()
    links = [(await _bind(smsc))[0] for _ in range(2)]
    smsc.set_mode(Mode(ModeKind.DROP))
    # abort() and then connection_lost both close the link: it is uncounted once.
    await _until(lambda: all(reader.at_eof() or reader.exception() for reader, _ in links))
    await asyncio.sleep(0.05)
    assert smsc.stats.bound_now["sim"] == 0
    assert smsc.stats.max_concurrent_binds["sim"] == 2
