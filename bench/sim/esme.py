"""An ESME load generator: binds, keeps a window of submit_sm in flight, times resps and receipts.

Run: ``python -m bench.sim esme --port 2775 --binds 1 --window 10 --seconds 5``

Prints one JSON object: submits sent, submit_sm_resp ok/error, receipts,
submit->resp and submit->receipt percentiles (ms), the rate of responses over
the sending time (``rate``), receipts per second from the first receipt to
the last (``e2e_rate``), and this process's own CPU seconds. With ``--idle`` it only
binds (``--binds`` transceivers, each answering enquire_link), prints
``{"bound": N}`` and holds them until stdin closes: the memory scenario reads
the peer's RSS meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import cast

from protocols.record import replace
from protocols.smpp.codec import HEADER, HEADER_SIZE, decode, encode
from protocols.smpp.constants import CommandId
from protocols.smpp.dlr import parse_receipt
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import BindTransceiver, SubmitSm, make_response
from protocols.smpp.tlv import Tag, tlv_str

SUBMIT = SubmitSm(
    source_addr="Bench",
    source_addr_ton=5,
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="447700900123",
    registered_delivery=1,
    short_message=b"Your verification code is 493817",
)
_TEMPLATES = {True: encode(SUBMIT), False: encode(replace(SUBMIT, registered_delivery=0))}


@dataclass
class Load:
    host: str
    port: int
    system_id: str
    password: str
    binds: int
    window: int
    seconds: float
    count: int | None
    rate: float | None
    receipt_wait: float
    #: registered_delivery 1 on every submit_sm (a receipt asked for), else 0
    receipts: bool = True
    #: seconds per bucket of the per-interval figures (0: none), by submit time
    interval: float = 0.0


@dataclass
class Bucket:
    """Submits (of one interval, or of the whole run): what became of them, their latencies."""

    sent: int = 0
    ok: int = 0
    #: refused (a non-zero command_status); in an interval, also unanswered or unreceipted
    errors: int = 0
    receipts: int = 0
    resp_ms: list[float] = field(default_factory=list)
    receipt_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "receipts": self.receipts,
            "resp_p50_ms": percentile(self.resp_ms, 0.5),
            "resp_p99_ms": percentile(self.resp_ms, 0.99),
            "receipt_p50_ms": percentile(self.receipt_ms, 0.5),
            "receipt_p99_ms": percentile(self.receipt_ms, 0.99),
        }


@dataclass
class Tally(Bucket):
    """The whole run's figures, and (``Load.interval``) each interval's, for the soak."""

    #: message id (as the submit_sm_resp gave it) -> when its submit_sm went out
    by_id: dict[str, float] = field(default_factory=dict)
    first: float = 0.0
    last_resp: float = 0.0
    first_receipt: float = 0.0
    last_receipt: float = 0.0
    buckets: list[Bucket] = field(default_factory=list)
    interval: float = 0.0

    def bucket(self, sent: float) -> Bucket | None:
        """The interval a submit sent at ``sent`` counts in (None without intervals)."""
        if not self.buckets:
            return None
        # A submit let out just after the deadline (its slot freed late) counts in the last.
        index = min(int((sent - self.first) / self.interval), len(self.buckets) - 1)
        return self.buckets[index]

    def counting(self, sent: float) -> tuple[Bucket, ...]:
        """Where a submit sent at ``sent`` is counted: the run, and its interval if any."""
        bucket = self.bucket(sent)
        return (self,) if bucket is None else (self, bucket)


class Bind(asyncio.Protocol):
    def __init__(self, tally: Tally, window: int, receipts: bool = True) -> None:
        self.tally = tally
        self.template = _TEMPLATES[receipts]
        self.reader = PduReader()
        self.transport: asyncio.Transport | None = None
        self.bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.slots = asyncio.Semaphore(window)
        self.in_flight: dict[int, float] = {}
        self.sequence = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.bound.done():
            self.bound.set_exception(ConnectionError(f"closed before bind_resp: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def submit(self) -> None:
        self.sequence += 1
        pdu = bytearray(self.template)
        HEADER.pack_into(pdu, 0, len(pdu), CommandId.SUBMIT_SM, 0, self.sequence)
        sent = self.in_flight[self.sequence] = time.perf_counter()
        assert self.transport is not None
        self.transport.write(pdu)
        for counted in self.tally.counting(sent):
            counted.sent += 1

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        replies = []
        while (frame := self.reader.next_frame()) is not None:
            _, command_id, status, seq = HEADER.unpack_from(frame)
            if command_id == CommandId.SUBMIT_SM_RESP:
                self._resp(frame, status, seq)
            elif command_id == CommandId.DELIVER_SM:
                pdu = decode(frame)
                self._receipt(pdu.tlvs, pdu.short_message)  # type: ignore[attr-defined]
                replies.append(encode(make_response(pdu)))
            elif command_id == CommandId.ENQUIRE_LINK:
                replies.append(encode(make_response(decode(frame))))
            elif command_id == CommandId.BIND_TRANSCEIVER_RESP and not self.bound.done():
                self.bound.set_result(status)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _resp(self, frame: bytes, status: int, seq: int) -> None:
        sent = self.in_flight.pop(seq, None)
        if sent is None:
            return
        now = time.perf_counter()
        tally = self.tally
        tally.last_resp = now
        for counted in tally.counting(sent):
            counted.resp_ms.append((now - sent) * 1000)
            if status == 0:
                counted.ok += 1
            else:
                counted.errors += 1
        if status == 0:
            tally.by_id[frame[HEADER_SIZE:].split(b"\x00", 1)[0].decode()] = sent
        self.slots.release()

    def _receipt(self, tlvs: tuple[object, ...], text: bytes) -> None:
        message_id = tlv_str(tlvs, Tag.RECEIPTED_MESSAGE_ID)  # type: ignore[arg-type]
        if message_id is None:
            message_id = parse_receipt(text).message_id
        sent = self.tally.by_id.pop(message_id, None)
        if sent is not None:
            now = time.perf_counter()
            if self.tally.receipts == 0:
                self.tally.first_receipt = now
            self.tally.last_receipt = now
            for counted in self.tally.counting(sent):
                counted.receipts += 1
                counted.receipt_ms.append((now - sent) * 1000)


async def connect(load: Load, tally: Tally) -> Bind:
    loop = asyncio.get_running_loop()
    _, bind = await loop.create_connection(
        lambda: Bind(tally, load.window, load.receipts), load.host, load.port
    )
    assert bind.transport is not None
    bind.transport.write(
        encode(BindTransceiver(sequence_number=1, system_id=load.system_id, password=load.password))
    )
    status = await asyncio.wait_for(bind.bound, 30)
    if status != 0:
        raise SystemExit(f"bind refused with command_status {status:#x}")
    return bind


async def drive(bind: Bind, load: Load, tally: Tally, deadline: float, budget: list[int]) -> None:
    interval = load.binds / load.rate if load.rate else 0.0
    next_at = time.perf_counter()
    while time.perf_counter() < deadline and budget[0] != 0:
        await bind.slots.acquire()
        if bind.transport is None or bind.transport.is_closing():
            return
        if budget[0] == 0:  # another bind took the last one while this one waited
            bind.slots.release()
            return
        budget[0] -= 1
        bind.submit()
        if interval:
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        elif tally.sent % 64 == 0:
            await asyncio.sleep(0)  # let responses in between bursts


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def intervals(
    tally: Tally, binds: list[Bind], receipts: bool
) -> list[dict[str, float | int | None]]:
    """Each interval's figures once the run is over: a submit still unanswered, or
    accepted and still without its (asked for) receipt, is an error of its interval."""
    for sent in (*(s for b in binds for s in b.in_flight.values()),
                 *(tally.by_id.values() if receipts else ())):  # fmt: skip
        if (bucket := tally.bucket(sent)) is not None:
            bucket.errors += 1
    return [bucket.summary() for bucket in tally.buckets]


async def run(load: Load) -> dict[str, object]:
    tally = Tally(interval=load.interval)
    if load.interval:
        tally.buckets = [Bucket() for _ in range(max(1, math.ceil(load.seconds / load.interval)))]
    binds = [await connect(load, tally) for _ in range(load.binds)]
    budget = [load.count if load.count is not None else -1]
    tally.first = time.perf_counter()
    deadline = tally.first + load.seconds
    await asyncio.gather(*(drive(b, load, tally, deadline, budget) for b in binds))
    # Poll rather than wait on an event: the resps and receipts arrive in data_received,
    # and a 10 ms poll costs nothing beside them.
    drained = time.perf_counter() + 10
    while any(b.in_flight for b in binds) and time.perf_counter() < drained:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    until = time.perf_counter() + load.receipt_wait
    while tally.by_id and time.perf_counter() < until:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for bind in binds:
        if bind.transport is not None:
            bind.transport.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = max(tally.last_resp - tally.first, 1e-9)
    # End to end: receipts per second while they come back. Timed from the first receipt,
    # not the first submit, so the constant submit->receipt latency does not count as slowness.
    e2e = max(tally.last_receipt - tally.first_receipt, 1e-9)
    return {
        "sent": tally.sent,
        "ok": tally.ok,
        "errors": tally.errors,
        "receipts": tally.receipts,
        "elapsed": elapsed,
        "rate": tally.ok / elapsed,
        "e2e_elapsed": e2e,
        "e2e_rate": max(tally.receipts - 1, 0) / e2e,
        "resp_p50_ms": percentile(tally.resp_ms, 0.5),
        "resp_p99_ms": percentile(tally.resp_ms, 0.99),
        "receipt_p50_ms": percentile(tally.receipt_ms, 0.5),
        "receipt_p99_ms": percentile(tally.receipt_ms, 0.99),
        "cpu": usage.ru_utime + usage.ru_stime,
        **({"intervals": intervals(tally, binds, load.receipts)} if load.interval else {}),
    }


async def hold_idle(load: Load) -> None:
    tally = Tally()
    binds = []
    for _ in range(load.binds):
        binds.append(await connect(load, tally))
    print(json.dumps({"bound": len(binds)}), flush=True)
    # Hold until the harness closes our stdin (it has read the peer's memory by then).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for bind in binds:
        if bind.transport is not None:
            bind.transport.close()
