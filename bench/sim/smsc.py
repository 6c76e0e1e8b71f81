"""A carrier SMSC for benchmarks: answers every submit_sm after a fixed delay, then a receipt.

Run: ``python -m bench.sim smsc --port 2776 --delay 0.02 --receipt-delay 0.2``

Any system_id and password bind (transmitter, receiver or transceiver). Each
submit_sm is answered ``--delay`` seconds after it arrived with an ESME_ROK
submit_sm_resp carrying a fresh id and, when its registered_delivery asks for
one, ``--receipt-delay`` seconds later a deliver_sm receipt (SMPP 3.4
Appendix B text with receipted_message_id and message_state) on the same
bind, as a carrier sends them. The receipt waits because a handset takes
time, and because a gateway that stores the id mapping after the resp
(Jasmin does, in Redis) would otherwise see receipts for ids it does not know
yet. PDUs due in the same millisecond go out in one write, from one timer per
queue, so the delays cost no call_later per message.

This is the stopgap (``WARPD_BENCH_SMSC=stopgap``); the scenarios run
``warpd sim-smsc`` by default (bench/loadgen.py).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import time
from pathlib import Path
from typing import cast

from protocols.smpp.codec import HEADER, HEADER_SIZE, decode, encode
from protocols.smpp.constants import CommandId, MessageState
from protocols.smpp.dlr import format_receipt, receipt_tlvs
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import DeliverSm, make_response

_BINDS = {CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER}


class Counters:
    def __init__(self) -> None:
        self.submits = 0
        self.receipts = 0


class SmscProtocol(asyncio.Protocol):
    def __init__(
        self,
        delay: float,
        receipt_delay: float,
        ids: collections.abc.Iterator[int],
        counters: Counters,
    ) -> None:
        self.delay, self.receipt_delay, self.ids, self.counters = (
            delay,
            receipt_delay,
            ids,
            counters,
        )
        self.reader = PduReader()
        self.resps = Outbox(self)
        self.receipts = Outbox(self)
        self.sequence = 0
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.stamp = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.resps.cancel()
        self.receipts.cancel()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        now = self.loop.time()
        immediate = []
        while (frame := self.reader.next_frame()) is not None:
            _, command_id, _, seq = HEADER.unpack_from(frame)
            if command_id == CommandId.SUBMIT_SM:
                self.counters.submits += 1
                pdu = decode(frame)
                self._answer(now, seq, bool(pdu.registered_delivery & 1))  # type: ignore[attr-defined]
            elif command_id in _BINDS:
                immediate.append(encode(make_response(decode(frame), system_id="benchsmsc")))
            elif command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
                immediate.append(encode(make_response(decode(frame))))
            # deliver_sm_resp and anything else: nothing to answer
        assert self.transport is not None
        if immediate:
            self.transport.write(b"".join(immediate))

    def _answer(self, now: float, seq: int, receipt: bool) -> None:
        message_id = f"{next(self.ids):x}"
        resp = bytearray(HEADER_SIZE) + message_id.encode() + b"\x00"
        HEADER.pack_into(resp, 0, len(resp), CommandId.SUBMIT_SM_RESP, 0, seq)
        self.resps.put(now + self.delay, bytes(resp))
        if receipt:
            self.counters.receipts += 1
            self.receipts.put(now + self.delay + self.receipt_delay, self._receipt(message_id))

    def _receipt(self, message_id: str) -> bytes:
        now = datetime.datetime.now(datetime.UTC)
        text = format_receipt(message_id, MessageState.DELIVERED, submit_date=now, done_date=now)
        self.sequence += 1
        pdu = DeliverSm(
            sequence_number=self.sequence,
            source_addr="447700900123",
            esm_class=0x04,
            short_message=text.encode(),
            tlvs=receipt_tlvs(message_id, MessageState.DELIVERED).tlvs(),
        )
        return encode(pdu)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class Outbox:
    """PDUs to write at a time each, in the order they are due (the delay is constant)."""

    def __init__(self, connection: SmscProtocol) -> None:
        self.connection = connection
        self.due: collections.deque[tuple[float, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None

    def put(self, when: float, pdu: bytes) -> None:
        self.due.append((when, pdu))
        if self.timer is None:
            self.timer = self.connection.loop.call_at(when, self._flush)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _flush(self) -> None:
        self.timer = None
        limit = self.connection.loop.time() + 0.001
        out = []
        while self.due and self.due[0][0] <= limit:
            out.append(self.due.popleft()[1])
        self.connection.write(b"".join(out))
        if self.due:
            self.timer = self.connection.loop.call_at(self.due[0][0], self._flush)


async def report(counters: Counters, path: Path) -> None:
    """Every 0.1 s, the submits so far and when (wall clock: read by another process)."""
    scratch = path.with_suffix(".tmp")
    while True:
        scratch.write_text(json.dumps({"submits": counters.submits, "at": time.time()}))
        scratch.replace(path)
        await asyncio.sleep(0.1)


async def serve(
    host: str, port: int, delay: float, receipt_delay: float, stats: Path | None
) -> None:
    loop = asyncio.get_running_loop()
    ids = iter(range(int(time.time()) << 20, 1 << 62))
    counters = Counters()
    server = await loop.create_server(
        lambda: SmscProtocol(delay, receipt_delay, ids, counters), host, port, backlog=2048
    )
    print(f"smsc on {host}:{port} delay={delay} receipt_delay={receipt_delay}", flush=True)
    async with server, asyncio.TaskGroup() as tasks:
        if stats is not None:
            tasks.create_task(report(counters, stats))
        await server.serve_forever()
