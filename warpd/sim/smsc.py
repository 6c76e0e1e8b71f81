"""``warpd sim-smsc``: a carrier stand-in for the demo, the tests and bench/ (issue 8).

It accepts binds with one system_id/password, answers submit_sm and data_sm
with carrier ids after ``response_delay``, sends a receipt per message after
``receipt_delay`` with stats drawn from ``outcomes``, sends MO on request,
and plays the carrier faults of issue 12 on command (``set_mode``).

Receipts and MO wait in one outbox and go to any bound RX/TRX connection with
room in its window; one that is not acknowledged (the link closed, the
deliver_sm timed out, a temporary error) goes back to the outbox, as a
carrier retries it. Every delayed action sits in one heap behind one timer,
and every connection touched in a wake-up is written once at its end.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from protocols.smpp.constants import CommandId, CommandStatus, MessageState
from protocols.smpp.dlr import make_receipt_for
from protocols.smpp.flags import receipt_wanted
from protocols.smpp.pdu import (
    BindRequest,
    DataSm,
    DataSmResp,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    bind_response,
    make_response,
)
from protocols.smpp.session_events import SessionConfig
from warpd.sim.carrier import (
    NORMAL,
    MessageIds,
    Mode,
    ModeKind,
    Outcomes,
    garbage_pdu,
    status_name,
)
from warpd.sim.messages import body_of, mo_parts
from warpd.sim.outbox import Delivery, Outbox
from warpd.sim.smsc_config import ReceiptDue, SmscConfig
from warpd.sim.smsc_link import SmscLink
from warpd.sim.stats import EventLog, SmscStats
from warpd.sim.timers import Timers

log = structlog.get_logger(__name__)

_K = ModeKind
_NORMAL, _SILENT, _THROTTLE, _REJECT = _K.NORMAL, _K.SILENT, _K.THROTTLE, _K.REJECT
_SLOW, _GARBAGE, _RECEIPT_FIRST, _DROP = _K.SLOW, _K.GARBAGE, _K.RECEIPT_FIRST, _K.DROP
_THROTTLED = CommandStatus.ESME_RTHROTTLED
_FAILED_ANSWERS = {
    CommandId.QUERY_SM: CommandStatus.ESME_RQUERYFAIL,
    CommandId.CANCEL_SM: CommandStatus.ESME_RCANCELFAIL,
    CommandId.REPLACE_SM: CommandStatus.ESME_RREPLACEFAIL,
}
_STATUS_NAMES: dict[int, str] = {}


def _status_name(status: int) -> str:
    name = _STATUS_NAMES.get(status)
    if name is None:
        name = _STATUS_NAMES[status] = status_name(status)
    return name


class SmscSimulator:
    def __init__(self, config: SmscConfig | None = None) -> None:
        self.config = config = config or SmscConfig()
        self.stats = SmscStats()
        self.port = config.port
        self._mode = NORMAL
        self._links: set[SmscLink] = set()
        self.outbox = Outbox(self.stats, self._later)
        self._dirty: set[SmscLink] = set()
        # Ids count up from the start time in microseconds: unique across restarts too.
        self._ids = MessageIds(config.id_format, time.time_ns() // 1000)
        self._random = random.Random(config.seed)
        self._outcomes = Outcomes(config.outcomes, self._random)
        self._session_config = SessionConfig(
            window=config.window,
            response_timeout=config.deliver_timeout,
            enquire_link_interval=config.enquire_link_interval,
        )
        self._server: asyncio.Server | None = None
        self._timers: Timers | None = None
        self._log: EventLog | None = None
        self._log_flush: asyncio.TimerHandle | None = None
        self._submits = 0
        self._mo_ref = 0

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._timers = Timers(loop, self.flush)
        config = self.config
        context = None
        if config.tls_cert is not None and config.tls_key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.log is not None:
            self._log = EventLog(config.log)
            self._log_flush = loop.call_later(1.0, self._flush_log)
        self._server = await loop.create_server(
            lambda: SmscLink(self, self._session_config),
            config.host,
            self.port,  # after a stop, the port of the last run: the carrier comes back there
            ssl=context,
            reuse_address=True,
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sim_smsc_listening", host=config.host, port=self.port, tls=context is not None)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.abort()
        if server is not None:
            await server.wait_closed()
        if self._timers is not None:
            self._timers.clear()
        self.outbox.cancel_waiters()
        if self._log_flush is not None:
            self._log_flush.cancel()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Switch fault mode now; ``mode.duration`` switches back to normal after it."""
        self._mode = mode
        if mode.duration is not None:
            self._later(mode.duration, lambda: self._expire(mode))
        if mode.kind is _DROP:
            self._drop(mode)
        log.info("sim_smsc_mode", mode=mode.kind.value)
        self.flush()  # leaving silent: what waits in the outbox goes out now

    # -- what the links call -------------------------------------------------

    def link_opened(self, link: SmscLink) -> None:
        self._links.add(link)
        self.stats.connections += 1

    def link_bound(self, link: SmscLink) -> None:
        stats = self.stats
        stats.binds += 1
        system_id = link.bound_as or ""
        now = stats.bound_now[system_id] = stats.bound_now[system_id] + 1
        stats.max_concurrent_binds[system_id] = max(stats.max_concurrent_binds[system_id], now)
        if link.receiving:
            self.outbox.receiver_bound(link)

    def link_closed(self, link: SmscLink, in_flight: list[Delivery]) -> None:
        self._links.discard(link)
        if link.bound_as is not None:
            self.stats.bound_now[link.bound_as] -= 1
            link.bound_as = None  # counted once, however many ways the link ends
        self.outbox.link_closed(link, in_flight)

    def mark(self, link: SmscLink) -> None:
        self._dirty.add(link)

    def flush(self) -> None:
        """Hand waiting deliveries to receivers, then write every touched link once."""
        silent = self._mode.kind is _SILENT
        if not silent:
            self.outbox.dispatch(self._now(), self._dirty)
        dirty = self._dirty
        if dirty:
            for link in dirty:
                link.flush(silent)
            dirty.clear()

    def answer_bind(self, pdu: BindRequest) -> Pdu:
        config = self.config
        ok = hmac.compare_digest(
            pdu.system_id.encode("latin-1"), config.system_id.encode("latin-1")
        ) & hmac.compare_digest(pdu.password.encode("latin-1"), config.password.encode("latin-1"))
        if not ok:
            self.stats.binds_refused += 1
        status = 0 if ok else CommandStatus.ESME_RINVPASWD
        return bind_response(pdu, status, config.system_id)

    def answer_other(self, pdu: Pdu) -> Pdu:
        """submit_multi is taken (no receipts); query/cancel/replace fail: nothing is kept."""
        if pdu.command_id == CommandId.SUBMIT_MULTI:
            return make_response(pdu, message_id=self._ids.next_id())
        return make_response(pdu, _FAILED_ANSWERS.get(pdu.command_id, CommandStatus.ESME_RSYSERR))

    def on_submit(self, link: SmscLink, pdu: SubmitSm | DataSm, now: float) -> None:
        mode = self._mode
        kind = mode.kind
        if kind is not _NORMAL:
            if kind is _SILENT:
                return  # read, never answered
            if kind is _THROTTLE and mode.tps is not None:
                if not link.take_token(now, mode.tps):
                    self._answer(link, pdu, _THROTTLED, "", None)
                    return
            elif (kind is _THROTTLE or kind is _REJECT) and (
                mode.fraction >= 1.0 or self._random.random() < mode.fraction
            ):
                self._answer(link, pdu, _THROTTLED if kind is _THROTTLE else mode.status, "", None)
                return
            if kind is _GARBAGE:
                self._submits += 1
                if self._submits % mode.every == 0:
                    self.stats.garbage_sent += 1
                    link.extra += garbage_pdu(self.stats.garbage_sent, self._random.randbytes(8))
        config = self.config
        message_id = self._ids.next_id()
        receipt: ReceiptDue | None = None
        if pdu.registered_delivery & 0x03:
            stat, state = self._outcomes.draw()
            if receipt_wanted(pdu.registered_delivery, state is MessageState.DELIVERED):
                receipt = ReceiptDue(stat, state, time.time())
        if kind is _RECEIPT_FIRST and receipt is not None:
            self._queue_receipt(pdu, message_id, receipt)
            self.outbox.dispatch(now, self._dirty)  # into the session's buffer before the resp
            receipt = None
        delay = config.response_delay + (mode.extra_delay if kind is _SLOW else 0.0)
        if delay <= 0:
            self._answer(link, pdu, 0, message_id, receipt)
        else:
            self._later(delay, lambda: self._answer(link, pdu, 0, message_id, receipt))

    # -- on command ----------------------------------------------------------

    def queue_mo(
        self, source: str, destination: str, text: str, data_coding: int = 0
    ) -> list[asyncio.Future[None]]:
        """Queue an MO (split if long); each future completes when its part is acknowledged."""
        self._mo_ref = (self._mo_ref + 1) & 0xFF
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for pdu in mo_parts(source, destination, text, data_coding, self._mo_ref):
            future: asyncio.Future[None] = loop.create_future()
            futures.append(future)
            self.outbox.put(Delivery(pdu, future))
            self.stats.mo_sent += 1
            self._write_log("mo", source=source, destination=destination, body=pdu.short_message)
        self.flush()
        return futures

    async def send_mo(self, source: str, destination: str, text: str, data_coding: int = 0) -> None:
        """Send an MO to a bound RX/TRX and return once every part is acknowledged."""
        await asyncio.gather(*self.queue_mo(source, destination, text, data_coding))

    def send_receipt_for_unknown(
        self, stat: str = "DELIVRD", source: str = "WARPD", destination: str = "447700900001"
    ) -> str:
        """Queue a receipt for an id this simulator never issued; returns that id.

        ``source`` and ``destination`` are those of the (imaginary) submit_sm.
        """
        message_id = f"unknown-{self._ids.next_id()}"
        pdu = SubmitSm(source_addr=source, destination_addr=destination, registered_delivery=1)
        name, state = Outcomes({stat: 1.0}, self._random).draw()
        self.stats.receipts_for_unknown += 1
        self._queue_receipt(pdu, message_id, ReceiptDue(name, state, time.time()))
        self.flush()
        return message_id

    # -- internals -------------------------------------------------------------

    def _answer(
        self,
        link: SmscLink,
        pdu: SubmitSm | DataSm,
        status: int,
        message_id: str,
        receipt: ReceiptDue | None,
    ) -> None:
        session = link.session
        if session.closed or self._mode.kind is _SILENT:
            return  # the ESME never sees an answer: it resubmits, we send no receipt
        cls = SubmitSmResp if pdu.command_id == CommandId.SUBMIT_SM else DataSmResp
        response = cls(
            sequence_number=pdu.sequence_number, command_status=status, message_id=message_id
        )
        session.send(response, 0.0)  # a response starts no timer: the time is not read
        self._dirty.add(link)
        name = _status_name(status)
        self.stats.submits_by_status[name] += 1
        if self._log is not None:
            self._write_log(
                "submit",
                id=message_id,
                link=link.number,
                status=name,
                source=pdu.source_addr,
                destination=pdu.destination_addr,
                data_coding=pdu.data_coding,
                esm_class=pdu.esm_class,
                body=body_of(pdu),
            )
        if receipt is None:
            return
        if self.config.receipt_delay <= 0:
            self._queue_receipt(pdu, message_id, receipt)
        else:
            self._later(
                self.config.receipt_delay, lambda: self._queue_receipt(pdu, message_id, receipt)
            )

    def _queue_receipt(
        self, submit: SubmitSm | DataSm, message_id: str, receipt: ReceiptDue
    ) -> None:
        pdu = make_receipt_for(
            submit,
            message_id=message_id,
            stat=receipt.state,
            err=0 if receipt.state is MessageState.DELIVERED else 1,
            submit_date=datetime.fromtimestamp(receipt.submitted, UTC),
            done_date=datetime.now(UTC),
        )
        self.outbox.put(Delivery(pdu))
        if self._log is not None:
            self._write_log(
                "receipt", id=message_id, stat=receipt.stat, destination=pdu.destination_addr
            )

    def _drop(self, mode: Mode) -> None:
        if self._mode is not mode:
            return
        self.stats.drops += 1
        for link in list(self._links):
            link.abort()
        if mode.interval is None:
            self._mode = NORMAL
        else:
            self._later(mode.interval, lambda: self._drop(mode))

    def _expire(self, mode: Mode) -> None:
        if self._mode is mode:
            self._mode = NORMAL
            log.info("sim_smsc_mode", mode=NORMAL.kind.value)

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        self._timer_heap().call_at(self._now() + delay, callback)

    def _timer_heap(self) -> Timers:
        if self._timers is None:
            self._timers = Timers(asyncio.get_running_loop(), self.flush)
        return self._timers

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _write_log(self, kind: str, **fields: Any) -> None:
        if self._log is None:
            return
        body = fields.get("body")
        if isinstance(body, bytes):
            fields["body"] = body.hex()
        self._log.write({"kind": kind, **fields})

    def _flush_log(self) -> None:
        if self._log is not None:
            self._log.flush()
            self._log_flush = asyncio.get_running_loop().call_later(1.0, self._flush_log)
