"""One bind of the load generator: an asyncio Protocol over an ESME-role SmppSession.

Like the simulator's side, ``data_received`` never awaits and the load writes
each bind once per batch. Submits in flight are kept by sequence number so a
response, a timeout or a lost connection settles (or requeues) the right part.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import structlog

from protocols.smpp.constants import CommandId
from protocols.smpp.pdu import (
    RESPONSE_CLASSES,
    BindReceiver,
    BindRequest,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    GenericNack,
    SubmitSm,
    Unbind,
    make_response,
)
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import (
    Bound,
    Closed,
    PduReceived,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
)
from protocols.smpp.session_state import Role

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from warpd.sim.esme import EsmeLoad

BIND_PDUS = {
    "transceiver": BindTransceiver,
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
}
_INITIAL_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


@dataclass(slots=True)
class Sent:
    """One part of one message, from its first submit to its settlement."""

    message: int
    part: int
    pdu: SubmitSm
    at: float = 0.0  # when the latest submit_sm for it was sent
    attempts: int = 0


class EsmeLink(asyncio.Protocol):
    def __init__(
        self, load: EsmeLoad, kind: str, session_config: SessionConfig, give_up: float
    ) -> None:
        self._load = load
        self.kind = kind
        self.transmits = kind != "receiver"
        self._loop = asyncio.get_running_loop()
        self.session = SmppSession(Role.ESME, session_config, now=self._loop.time())
        self.transport: asyncio.Transport | None = None
        self.in_flight: dict[int, Sent] = {}
        self.was_bound = False
        #: Loop time after which a link that never bound is not reconnected.
        self.give_up = give_up
        self.refused: int | None = None  # the bind_resp status when the bind was refused
        self.closed: asyncio.Future[str] = self._loop.create_future()
        self.paused_until = 0.0
        self.backoff = _INITIAL_BACKOFF
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are only alike
        config = self._load.config
        bind = BIND_PDUS[self.kind](
            system_id=config.system_id,
            password=config.password,
            system_type=config.system_type,
        )
        self.session.send(bind, self._loop.time())
        self.flush()

    def data_received(self, data: bytes) -> None:
        self._load.stamp = time.perf_counter()
        now = self._loop.time()
        try:
            self.session.receive_data(data, now)
            self.pump(now)
            self._load.flush(now)
        except Exception as exc:
            self._failed(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.close("connection lost" if exc is None else f"connection lost: {exc}")
        now = self._loop.time()
        try:
            self.pump(now)
            self._load.flush(now)
        except Exception as error:
            self._failed(error)

    # -- what the load calls -------------------------------------------------

    def submit(self, sent: Sent, now: float) -> None:
        pdu = self.session.send(sent.pdu, now)
        sent.at = self._load.stamp
        sent.attempts += 1
        self.in_flight[pdu.sequence_number] = sent

    def throttled(self, now: float) -> float:
        """Pause this bind (ESME_RTHROTTLED / ESME_RMSGQFUL); returns when it may send again.

        The answers to a window already in flight come in a burst: they fall
        in one pause, and the back-off doubles only for a refusal after it.
        """
        if now >= self.paused_until:
            self.paused_until = now + self.backoff
            self.backoff = min(self.backoff * 2, _MAX_BACKOFF)
        return self.paused_until

    def accepted(self) -> None:
        self.backoff = _INITIAL_BACKOFF

    def unbind(self) -> None:
        if self.session.may_send(CommandId.UNBIND):
            self.session.send(Unbind(), self._loop.time())
        self.flush()

    def flush(self) -> None:
        transport = self.transport
        data = self.session.data_to_send()
        if transport is None:
            return
        if data:
            transport.write(data)
        if self.session.closed:
            transport.close()
            return
        when = self.session.get_timer()
        if when is None or (self._timer is not None and self._timer_when <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- events ----------------------------------------------------------------

    def pump(self, now: float) -> None:
        load = self._load
        session = self.session
        while (event := session.next_event()) is not None:
            match event:
                case ResponseReceived(request=SubmitSm() as request, response=response):
                    sent = self.in_flight.pop(request.sequence_number, None)
                    if sent is not None:
                        load.on_response(self, sent, response, now)
                case ResponseReceived(request=request, response=response) if isinstance(
                    request, BindRequest
                ) and (response.command_status or isinstance(response, GenericNack)):
                    # A generic_nack refuses a bind even with status 0 (the session closes).
                    self.refused = response.command_status
                case PduReceived(pdu=pdu):
                    if isinstance(pdu, DeliverSm):
                        load.on_deliver(pdu, now)
                    if pdu.command_id in RESPONSE_CLASSES:  # alert_notification has none
                        session.send(make_response(pdu), now)
                case Bound():
                    self.was_bound = True
                    load.link_bound(self)
                case ResponseTimeout(request=SubmitSm() as request):
                    sent = self.in_flight.pop(request.sequence_number, None)
                    if sent is not None:
                        load.on_timeout(sent)
                case Closed(reason=reason):
                    lost = list(self.in_flight.values())
                    self.in_flight.clear()
                    load.link_closed(self, reason, lost)
                    if not self.closed.done():
                        self.closed.set_result(reason)
                case _:
                    pass  # stray responses, session refusals, Unbound (Closed follows)
        load.mark(self)

    def _on_timer(self) -> None:
        self._timer = None
        self._load.stamp = time.perf_counter()
        now = max(self._loop.time(), self._timer_when)
        try:
            self.session.handle_timer(now)
            self.pump(now)
            self._load.flush(now)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        # A bug here must end the run with a report, not leave it waiting forever;
        # the report first, in case logging is what failed.
        self._load.fail(f"internal error: {exc!r}")
        log.exception("sim_esme_link_failed")
