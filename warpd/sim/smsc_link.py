"""One ESME connection to the simulated SMSC: an asyncio Protocol over an SMSC-role SmppSession.

``data_received`` never awaits: it feeds the session, hands each event to the
simulator, and the simulator writes every connection it touched once at the
end of the batch (``flush``), so a read of 100 submit_sm costs one write.
Deliveries (receipts and MO) in flight are kept by sequence number; when the
link closes or a deliver_sm times out they go back to the simulator's outbox
for another bind, as a carrier retries them.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, cast

import structlog

from protocols.smpp.pdu import BindRequest, DataSm, SubmitSm
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import (
    BindRequested,
    Bound,
    Closed,
    PduReceived,
    PduRejected,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    StrayResponse,
    Unbound,
)
from protocols.smpp.session_state import BindState, Role

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from warpd.sim.outbox import Delivery
    from warpd.sim.smsc import SmscSimulator

_numbers = itertools.count(1)
_RECEIVING = frozenset({BindState.BOUND_RX, BindState.BOUND_TRX})


class SmscLink(asyncio.Protocol):
    """The simulator's side of one TCP (or TLS) connection."""

    def __init__(self, simulator: SmscSimulator, session_config: SessionConfig) -> None:
        self._sim = simulator
        self._loop = asyncio.get_running_loop()
        # Numbered across every simulator in the process: a log that several share
        # (a carrier stopped and started again) tells their links apart.
        self.number = next(_numbers)
        self.session = SmppSession(Role.SMSC, session_config, now=self._loop.time())
        self.transport: asyncio.Transport | None = None
        self.receiving = False
        self.bound_as: str | None = None  # the system_id of a completed bind, until it closes
        self.in_flight: dict[int, Delivery] = {}
        self.extra = bytearray()  # raw bytes (garbage) to write after the session's own
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._tokens: float | None = None  # throttle mode's bucket, full at first use
        self._tokens_at = 0.0

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self._sim.link_opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.session.receive_data(data, self._loop.time())
            self.pump()
        except Exception:
            # A bug in the simulator costs this connection, not the simulator.
            self.abort()
            log.exception("sim_smsc_link_failed")
        self._sim.flush()

    def eof_received(self) -> bool | None:
        return None  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.close("connection lost")
        self.pump()
        self._sim.flush()

    # -- what the simulator calls --------------------------------------------

    def pump(self) -> None:
        """Hand every pending session event to its handler."""
        session = self.session
        while (event := session.next_event()) is not None:
            # Most frequent first: match tries the cases in order.
            match event:
                case PduReceived():
                    self._on_pdu(event)
                case ResponseReceived():
                    self._on_response(event)
                case BindRequested():
                    self._on_bind(event)
                case Bound():
                    self._on_bound(event)
                case ResponseTimeout():
                    self._on_timeout(event)
                case StrayResponse():
                    self._sim.stats.stray_responses += 1
                case PduRejected():
                    self._sim.stats.rejected_pdus += 1
                case Closed():
                    self._on_closed(event)
                case Unbound():
                    self._sim.stats.unbinds += 1
                case _:
                    pass  # window notices: the simulator fills windows on every flush
        self._sim.mark(self)

    def deliver(self, delivery: Delivery, now: float) -> None:
        sent = self.session.send(delivery.pdu, now)
        self.in_flight[sent.sequence_number] = delivery

    def flush(self, silent: bool) -> None:
        """Write what the session (and ``extra``) holds; close the transport once CLOSED."""
        transport = self.transport
        data = self.session.data_to_send()
        if self.extra:
            data += self.extra
            self.extra.clear()
        if transport is None:
            return
        if data and not silent:
            transport.write(data)
        if self.session.closed:
            transport.close()
            return
        self._arm_timer()

    def take_token(self, now: float, tps: float) -> bool:
        """One submit from a bucket refilled at ``tps`` per second, holding ``tps``."""
        tokens = tps if self._tokens is None else self._tokens
        tokens = min(tps, tokens + (now - self._tokens_at) * tps)
        self._tokens_at = now
        allowed = tokens >= 1.0
        self._tokens = tokens - 1.0 if allowed else tokens
        return allowed

    def abort(self) -> None:
        """Drop the connection now, without unbind (a carrier's link going down)."""
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()
        # Closed now, not when connection_lost comes: nothing more is written to it,
        # and what it had in flight goes back to the outbox at once.
        self.session.close("dropped by the simulator")
        self.pump()

    # -- session timers: one TimerHandle, moved only when the deadline comes earlier --

    def _arm_timer(self) -> None:
        when = self.session.get_timer()
        if when is None:
            return
        if self._timer is not None:
            if self._timer_when <= when:
                return
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        # call_at may fire a hair early; the deadline it was set for has come.
        try:
            self.session.handle_timer(max(self._loop.time(), self._timer_when))
            self.pump()
        except Exception:
            self.abort()
            log.exception("sim_smsc_link_failed")
        self._sim.flush()

    # -- events ----------------------------------------------------------------

    def _on_bind(self, event: BindRequested) -> None:
        pdu = event.pdu
        assert isinstance(pdu, BindRequest)  # the session surfaces nothing else as one
        self.session.send(self._sim.answer_bind(pdu), self._loop.time())

    def _on_bound(self, event: Bound) -> None:
        self.receiving = event.state in _RECEIVING
        self.bound_as = event.system_id
        self._sim.link_bound(self)

    def _on_pdu(self, event: PduReceived) -> None:
        pdu = event.pdu
        if isinstance(pdu, SubmitSm | DataSm):
            self._sim.on_submit(self, pdu, self._loop.time())
        else:
            self.session.send(self._sim.answer_other(pdu), self._loop.time())

    def _on_response(self, event: ResponseReceived) -> None:
        delivery = self.in_flight.pop(event.request.sequence_number, None)
        if delivery is not None:
            self._sim.outbox.acknowledged(delivery, event.response)

    def _on_timeout(self, event: ResponseTimeout) -> None:
        delivery = self.in_flight.pop(event.request.sequence_number, None)
        if delivery is not None:
            self._sim.outbox.timed_out(delivery)

    def _on_closed(self, event: Closed) -> None:
        in_flight = list(self.in_flight.values())
        self.in_flight.clear()
        self._sim.link_closed(self, in_flight)
