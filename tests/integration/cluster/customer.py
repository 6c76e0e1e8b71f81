"""A customer's SMPP binds for the cluster tests: TX, RX or TRX, each to the instance it names.

Small on purpose (protocols/smpp's codec and framing over asyncio streams):
the tests choose which instance each bind goes to and which binds may receive
(a transmitter on A and a receiver on B), which sim-esme does not let them do.
Every message text is unique (``<tag>-<n>``), so the carrier's log tells how
often each one went upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

from protocols.record import replace
from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import RESPONSE_BIT, CommandId
from protocols.smpp.dlr import ReceiptError, parse_receipt
from protocols.smpp.flags import is_receipt
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLinkResp,
    Pdu,
    SubmitSm,
    Unbind,
    UnbindResp,
)
from protocols.smpp.tlv import Tag, tlv_str

BIND_PDUS = {"tx": BindTransmitter, "rx": BindReceiver, "trx": BindTransceiver}
NO_RESPONSE = -1  # the connection went before the submit_sm_resp: not acknowledged
INSUFFICIENT_FUNDS = 0x401  # warpd's vendor status (README "SMPP statuses warpd answers")


@dataclass(frozen=True, slots=True)
class Submitted:
    text: str
    status: int
    message_id: str
    via: str  # the bind's name: which instance acknowledged it


@dataclass(eq=False)
class CustomerBind:
    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    receipts: Counter[str] = field(default_factory=Counter)  # our message id -> times received
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _waiting: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)
    _sequence: int = 0
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, name: str, port: int, kind: str, system_id: str, password: str
    ) -> CustomerBind:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        bind = cls(name, reader, writer)
        bind._task = asyncio.create_task(bind._read())
        pdu = BIND_PDUS[kind](system_id=system_id, password=password)
        try:
            response = await bind._request(pdu, 5.0)
        except BaseException:
            await bind.close(unbind=False)
            raise
        if response.command_status:
            await bind.close(unbind=False)
            raise AssertionError(f"{name}: bind refused 0x{response.command_status:x}")
        return bind

    async def send(
        self, tag: str, count: int, *, rate: float, window: int = 20, start: int = 0
    ) -> list[Submitted]:
        """Submit ``count`` messages at about ``rate``/s, ``window`` awaiting their resp.

        Stops early when the connection goes; what was in flight then is
        NO_RESPONSE (ambiguous to a customer: committed or not).
        """
        loop = asyncio.get_running_loop()
        room = asyncio.Semaphore(window)
        results: list[Submitted] = []
        began = loop.time()

        async def one(text: str) -> None:
            try:
                pdu = SubmitSm(
                    source_addr_ton=5, source_addr="ACME", dest_addr_ton=1, dest_addr_npi=1,
                    destination_addr="447700900123", registered_delivery=1,
                    short_message=text.encode(),
                )  # fmt: skip
                response = await self._request(pdu, 10.0)
                message_id = getattr(response, "message_id", "")
                results.append(Submitted(text, response.command_status, message_id, self.name))
            except (ConnectionError, TimeoutError):
                results.append(Submitted(text, NO_RESPONSE, "", self.name))
            finally:
                room.release()

        async with asyncio.TaskGroup() as group:
            for n in range(start, start + count):
                await asyncio.sleep(max(0.0, began + (n - start) / rate - loop.time()))
                await room.acquire()
                if self.closed.is_set():
                    room.release()
                    break
                group.create_task(one(f"{tag}-{n}"))
        return results

    async def close(self, *, unbind: bool = True) -> None:
        """Unbind (when the link is still up) and close."""
        if unbind and not self.closed.is_set():
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self._request(Unbind(), 2.0)
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the connection ------------------------------------------------------

    async def _request(self, pdu: Pdu, timeout: float) -> Pdu:
        if self.closed.is_set():
            raise ConnectionError(f"{self.name}: closed")
        self._sequence = seq = self._sequence + 1
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        self._write(replace(pdu, sequence_number=seq))
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop(seq, None)

    def _write(self, pdu: Pdu) -> None:
        # The peer may be gone (an instance killed) before the reader has seen the EOF.
        if self.writer.transport.is_closing():
            raise ConnectionError(f"{self.name}: connection closing")
        self.writer.write(encode(pdu))

    async def _read(self) -> None:
        frames = PduReader()
        try:
            while data := await self.reader.read(65536):
                frames.feed(data)
                while (frame := frames.next_frame()) is not None:
                    self._on_pdu(decode(frame))
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.name}: connection lost"))

    def _on_pdu(self, pdu: Pdu) -> None:
        if pdu.command_id & RESPONSE_BIT:
            future = self._waiting.pop(pdu.sequence_number, None)
            if future is not None and not future.done():
                future.set_result(pdu)
            return
        seq = pdu.sequence_number
        if isinstance(pdu, DeliverSm):
            if is_receipt(pdu.esm_class):
                self.receipts[_receipt_id(pdu)] += 1
            self._write(DeliverSmResp(sequence_number=seq))
        elif pdu.command_id == CommandId.ENQUIRE_LINK:
            self._write(EnquireLinkResp(sequence_number=seq))
        elif pdu.command_id == CommandId.UNBIND:
            self._write(UnbindResp(sequence_number=seq))


def _receipt_id(pdu: DeliverSm) -> str:
    message_id = tlv_str(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
    if message_id:
        return message_id
    try:
        return parse_receipt(pdu.short_message).message_id
    except ReceiptError:
        return ""
