"""Carrier connectors: warpd as the ESME, N binds per connector (Sinch: two, TLS on 3601).

Each bind keeps its own session, window and token bucket (the carrier's TPS
is per bind), reconnects with exponential back-off and jitter, and takes
messages from the dispatcher whenever its window and bucket have room. A
throttle (ESME_RTHROTTLED, ESME_RMSGQFUL) pauses that bind only and puts the
part back at the front; a permanent error moves it to the next connector of
its route; a response timeout or a dropped bind sends it again (at least
once: SMPP 3.4 gives no delivery guarantee for an unanswered submit_sm).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, Protocol

import structlog

from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    Pdu,
    SubmitSm,
    Unbind,
    make_response,
)
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import (
    Bound,
    Closed,
    Event,
    PduReceived,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
)
from protocols.smpp.session_state import Role
from warpd import tls
from warpd.smpp.transport import SessionProtocol
from warpd.sms.carrier_ids import carrier_id
from warpd.sms.catalog import Connector
from warpd.sms.dispatcher import Dispatcher
from warpd.sms.model import Outbound
from warpd.sms.parts import upstream_parts
from warpd.sms.stats import SmsStats

log = structlog.get_logger(__name__)

_RETRY_LATER = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
# A throttled bind waits this long before it sends again (smpp.md 4: pause the
# bind briefly; never hold one message back for a fixed minute).
THROTTLE_PAUSE = 1.0
BACKOFF_MIN, BACKOFF_MAX = 0.5, 60.0
CONNECT_TIMEOUT = 10.0
_BIND_PDUS = {
    "transceiver": BindTransceiver,
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
}

# A deliver_sm from the carrier (receipt or MO): resolved once it is stored,
# or None when there is nothing to store.
Inbound = Callable[[Connector, Pdu], "asyncio.Future[None] | None"]


class BindHealth(Enum):
    CONNECTING = "connecting"
    BOUND = "bound"
    BACKOFF = "backoff"
    # unbind sent: nothing more goes out on it (stopping, or its lease went).
    UNBINDING = "unbinding"
    # Every slot of the connector is leased to other instances (README
    # "Running several instances"): this bind waits for one to come free.
    STANDBY = "standby"
    STOPPED = "stopped"


class Slots(Protocol):
    """The cluster's bind leases: a connector's binds are counted over all instances."""

    async def acquire_slot(self, connector_id: int, binds: int, holder: CarrierBind) -> int: ...

    def set_up(self, connector_id: int, slot: int, up: bool) -> None: ...

    def release_slot(self, connector_id: int, slot: int) -> None: ...


class CarrierBind(SessionProtocol):
    def __init__(self, connector: CarrierConnector, index: int, bind_type: str) -> None:
        super().__init__()
        self.connector = connector
        self.index = index
        self.bind_type = bind_type
        self.health = BindHealth.CONNECTING
        self.last_error = ""
        self._inflight: dict[int, tuple[Outbound, int]] = {}
        self._tokens = 1.0
        self._refilled = 0.0
        self._paused_until = 0.0
        self._pump_at: asyncio.Handle | None = None
        self._pump_when = 0.0
        self._lost: asyncio.Future[None] | None = None
        self.slot: int | None = None
        # False once the cluster wants the slot back: the bind closes, then frees it.
        self._leased = False
        self.session = self._new_session()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def submits(self) -> bool:
        return self.health is BindHealth.BOUND and self.bind_type != "receiver"

    def _new_session(self) -> SmppSession:
        conf = self.connector.conf
        return SmppSession(
            Role.ESME,
            SessionConfig(
                window=conf.window_size,
                response_timeout=10.0,
                enquire_link_interval=30.0,
                session_init_timeout=None,
            ),
            now=self.now(),
        )

    # -- connection lifecycle ------------------------------------------------

    async def run(self) -> None:
        conf = self.connector.conf
        backoff = BACKOFF_MIN
        loop = asyncio.get_running_loop()
        while True:
            self.health = BindHealth.STANDBY
            self.slot = await self.connector.slots.acquire_slot(
                conf.id, len(self.connector.binds), self
            )
            self._leased = True
            self.health = BindHealth.CONNECTING
            self._lost = loop.create_future()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await loop.create_connection(
                        lambda: self, conf.host, conf.port, ssl=self.connector.ssl_context()
                    )
                await self._lost
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "connector_connect_failed",
                    connector=conf.name,
                    bind=self.index,
                    error=self.last_error,
                )
            if self.session.state.name != "CLOSED":
                self.session.close("connect failed")
            # lease_lost(): wait for a slot, not a back-off. The slot is freed only
            # now that the connection is closed, so no instance binds in its place
            # while this bind is still open at the carrier.
            given_back = not self._leased
            if self.slot is not None:
                self.connector.slots.release_slot(conf.id, self.slot)
                self.slot = None
            if self.health is BindHealth.BOUND:
                backoff = BACKOFF_MIN
            self.health = BindHealth.BACKOFF
            self.connector.bind_changed()
            if not given_back:
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, BACKOFF_MAX)

    def lease_lost(self) -> None:
        """The cluster wants this bind's slot back: unbind now, then wait for a slot."""
        self._leased = False
        if self.transport is not None:
            self.connector.spawn(self.unbind(2.0))
        elif self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._leased:  # the lease went while connecting
            transport.close()
            return
        conf = self.connector.conf
        self.session = self._new_session()
        self._inflight.clear()
        bind = _BIND_PDUS[self.bind_type](
            system_id=conf.system_id, password=conf.password, system_type=conf.system_type
        )
        self.session.send(bind, self.now())
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._pump_at is not None:
            self._pump_at.cancel()
            self._pump_at = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def unbind(self, timeout: float) -> None:
        if self.transport is None or self.session.closed:
            return
        lost = self._lost
        if self.session.may_send(CommandId.UNBIND):
            self.health = BindHealth.UNBINDING
            self.connector.bind_changed()
            self.session.send(Unbind(), self.now())
            self.flush()
        if lost is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(lost)
        if self.transport is not None:
            self.transport.close()

    # -- events --------------------------------------------------------------

    def handle_event(self, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            self._response(event.request, event.response)
        elif isinstance(event, PduReceived):
            self._inbound(event.pdu)
        elif isinstance(event, ResponseTimeout):
            entry = self._inflight.pop(event.request.sequence_number, None)
            if entry is not None:
                self.connector.dispatcher.retry_part(*entry)
        elif isinstance(event, Bound):
            self.health = BindHealth.BOUND
            self.last_error = ""
            self._tokens = 1.0
            self._refilled = self.now()
            log.info("connector_bound", connector=self.connector.conf.name, bind=self.index)
            self.connector.bind_changed()
        elif isinstance(event, Closed):
            self._closed(event)

    def _response(self, request: Pdu, response: Pdu) -> None:
        entry = self._inflight.pop(request.sequence_number, None)
        if entry is None:
            return
        outbound, part_no = entry
        status = response.command_status
        connector = self.connector
        dispatcher = connector.dispatcher
        connector.stats.responses[connector.conf.id, f"0x{status:08x}" if status else "ok"] += 1
        if status == 0:
            dispatcher.part_accepted(outbound, part_no, self.connector.carrier_key(response))
        elif status in _RETRY_LATER:
            self._paused_until = self.now() + THROTTLE_PAUSE
            self.connector.throttled += 1
            dispatcher.retry_part(outbound, part_no)
        else:
            log.debug(
                "submit_refused",
                connector=self.connector.conf.name,
                message_id=str(outbound.id),
                status=f"0x{status:08x}",
            )
            dispatcher.part_refused(outbound, part_no, status)

    def _inbound(self, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm | DataSm):
            self.session.send(make_response(pdu, CommandStatus.ESME_RINVCMDID), self.now())
            return
        stored = self.connector.inbound(self.connector.conf, pdu)
        if stored is None:  # nothing to keep (an intermediate receipt): answered at once
            self.session.send(make_response(pdu), self.now())
        else:
            stored.add_done_callback(lambda f: self._answer(pdu, f))

    def _answer(self, pdu: Pdu, stored: asyncio.Future[None]) -> None:
        if self.session.closed:
            return  # the carrier sends it again on its next bind
        # Not stored (PostgreSQL down, warpd stopping): a temporary error, so
        # the carrier offers it again rather than losing it.
        failed = stored.cancelled() or stored.exception() is not None
        status = CommandStatus.ESME_RX_T_APPN if failed else CommandStatus.ESME_ROK
        self.session.send(make_response(pdu, status), self.now())
        self.flush_soon()

    def _closed(self, event: Closed) -> None:
        dispatcher = self.connector.dispatcher
        for outbound, part_no in self._inflight.values():
            dispatcher.retry_part(outbound, part_no)
        self._inflight.clear()
        if self.health is BindHealth.BOUND:
            log.warning(
                "connector_unbound",
                connector=self.connector.conf.name,
                bind=self.index,
                reason=event.reason,
            )
        self.last_error = event.reason
        self.health = BindHealth.BACKOFF
        self.connector.bind_changed()

    # -- sending -------------------------------------------------------------

    def after_events(self) -> None:
        self.pump()

    def pump(self) -> None:
        """Send while the window, the token bucket and the queue allow."""
        # The session may have closed (EOF, unbind) before its Closed event reached
        # _closed: a send then raises NotAllowed into the caller, the group commit's
        # hand-off, and stops it. The Closed event hands the queue back.
        if not self.submits or self.transport is None or self.session.closed:
            return
        now = self.now()
        if now < self._paused_until:
            self._pump_later(self._paused_until)
            return
        conf = self.connector.conf
        self._tokens = min(max(conf.tps, 1.0), self._tokens + (now - self._refilled) * conf.tps)
        self._refilled = now
        session, dispatcher = self.session, self.connector.dispatcher
        sent = False
        while session.window_free > 0 and self._tokens >= 1.0:
            outbound = dispatcher.take(conf.id)
            if outbound is None:
                break
            self._send(outbound, now)
            sent = True
        if self._tokens < 1.0 and dispatcher.queued(conf.id):
            self._pump_later(now + (1.0 - self._tokens) / conf.tps)
        if sent:
            self.flush_soon()

    def _send(self, outbound: Outbound, now: float) -> None:
        if outbound.concat_ref is None:
            outbound.concat_ref = self.connector.next_ref()
        parts = upstream_parts(outbound, outbound.concat_ref)
        wanted = outbound.pending_parts
        if wanted is not None:
            parts = [p for p in parts if p.part_no in wanted]
        outbound.attempts += 1
        session = self.session
        room = min(session.window_free, max(1, int(self._tokens)))
        for part in parts[:room]:
            pdu = SubmitSm(
                source_addr_ton=outbound.source_ton,
                source_addr_npi=outbound.source_npi,
                source_addr=outbound.source_addr,
                dest_addr_ton=outbound.dest_ton,
                dest_addr_npi=outbound.dest_npi,
                destination_addr=outbound.destination_addr,
                esm_class=part.esm_class,
                registered_delivery=1,
                data_coding=outbound.data_coding,
                short_message=part.short_message,
                tlvs=part.tlvs,
            )
            sent = session.send(pdu, now)
            self._inflight[sent.sequence_number] = (outbound, part.part_no)
            self._tokens -= 1.0
        rest = parts[room:]
        outbound.pending_parts = tuple(p.part_no for p in rest)
        if rest:
            self.connector.dispatcher.push(outbound, front=True)

    def _pump_later(self, when: float) -> None:
        # The deadline is kept here: for a time already due, uvloop's call_at
        # returns a plain Handle, which has no when().
        if self._pump_at is None or self._pump_when > when:
            if self._pump_at is not None:
                self._pump_at.cancel()
            self._pump_when = when
            self._pump_at = self._loop.call_at(when, self._pump_timer)

    def _pump_timer(self) -> None:
        self._pump_at = None
        self.pump()


class CarrierConnector:
    """One row of ``connectors``: its binds, its health, the ids it hands out."""

    def __init__(
        self,
        conf: Connector,
        dispatcher: Dispatcher,
        inbound: Inbound,
        stats: SmsStats,
        slots: Slots,
    ) -> None:
        self.conf = conf
        self.slots = slots
        self.dispatcher = dispatcher
        self.inbound = inbound
        self.stats = stats
        self.throttled = 0
        self._ref = random.randrange(256)
        self._ssl: ssl.SSLContext | None = None
        types = ["transmitter", "receiver"] if conf.bind_type == "tx_rx_pair" else [conf.bind_type]
        self.binds = [
            CarrierBind(self, index, bind_type)
            for index in range(conf.binds)
            for bind_type in types
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[None]] = set()
        self._was_up = False

    @property
    def up(self) -> bool:
        return any(b.submits for b in self.binds)

    @property
    def in_flight(self) -> int:
        """submit_sm sent and not yet answered, over all binds."""
        return sum(b.in_flight for b in self.binds)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(b.run()) for b in self.binds]

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def stop(self, timeout: float) -> None:
        # Unbind first: cancelling a bind's task would cancel the future its
        # unbind waits on.
        await asyncio.gather(*(b.unbind(timeout) for b in self.binds))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for bind in self.binds:
            bind.health = BindHealth.STOPPED
        self.dispatcher.connector_down(self.conf.id)

    async def rebind(self, timeout: float) -> int:
        """Unbind and close every open bind (the admin API's rebind); each bind's run loop
        opens it again after its back-off, and its unanswered submits go back to the queue.
        How many binds were open."""
        open_binds = [b for b in self.binds if b.transport is not None]
        await asyncio.gather(*(b.unbind(timeout) for b in open_binds))
        return len(open_binds)

    def kick(self) -> None:
        for bind in self.binds:
            if bind.submits:
                bind.pump()

    def bind_changed(self) -> None:
        for bind in self.binds:
            if bind.slot is not None:
                self.slots.set_up(self.conf.id, bind.slot, bind.health is BindHealth.BOUND)
        up = self.up
        if up and not self._was_up:
            self.kick()
        elif not up and self._was_up:
            self.dispatcher.connector_down(self.conf.id)
        self._was_up = up

    def next_ref(self) -> int:
        # 8-bit references fit every split mode; unique per recent window is enough.
        self._ref = (self._ref + 1) & 0xFF
        return self._ref

    def carrier_key(self, response: Pdu) -> str:
        return carrier_id(getattr(response, "message_id", ""), self.conf.dlr_id_format, resp=True)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.conf.tls:
            return None
        if self._ssl is None:
            # The system's CAs, or the carrier's own (options.tls_ca, a PEM
            # path); options.tls_verify = false only for a lab carrier.
            options = self.conf.options
            verify = options.get("tls_verify", True) is not False
            self._ssl = tls.client_context(options.get("tls_ca"), verify=verify)
        return self._ssl
