"""The B2BUA switch: admits new calls and routes every SIP event to its call.

Events come from the transport (``on_event``) already matched to transactions
by the endpoint; this module matches them to calls: server INVITE keys (for
CANCEL), client transaction keys (B leg responses and timeouts) and dialogs
(in-dialog requests; a request with a To tag that matches no dialog gets 481,
RFC 3261 12.2.2). A new INVITE is admitted synchronously from the in-memory
``Directory`` (``admission``: a carrier's address makes it inbound, a trunk's
address or digest credentials outbound) and handed to its own ``Call`` task.
REGISTER goes to the registrar; OPTIONS is answered here, and sent to gateways
to find the dead ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from media.pool import RtpEnginePool
from protocols.sip.dialog import Dialog
from protocols.sip.dialogs import DialogAckTimeout, DialogTable
from protocols.sip.endpoint import Endpoint
from protocols.sip.errors import SipError
from protocols.sip.message import SipMessage, SipRequest, SipResponse, make_response
from protocols.sip.transaction import (
    Addr,
    CancelReceived,
    Event,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    TransactionKey,
    TransactionTerminated,
    TransactionTimeout,
    Transport,
    transport_of,
)
from protocols.sip.uas import UasPolicy, check_request
from warpd.billing.balances import Balances
from warpd.voice.admission import Admission, CallPlan, Refused, static_targets
from warpd.voice.auth import Refusal as AuthRefusal
from warpd.voice.auth import TrunkAuth
from warpd.voice.call import Call
from warpd.voice.cdr import Cdr, CdrWriter, close_cdr
from warpd.voice.inbox import MediaLost
from warpd.voice.legs import ALLOW, Side, contact_for, user_of
from warpd.voice.metrics import UNKNOWN, VoiceMetrics
from warpd.voice.overload import RETRY_AFTER, LagEstimate
from warpd.voice.registrar import RegisterPlan, Registrar, plan_register
from warpd.voice.trunks import Directory, Trunk

log = structlog.get_logger(__name__)

Owner = tuple[Call, Side]
# What the B2BUA implements: anything else is 501 (RFC 3261 8.2.1), a Require
# beyond session timers 420 (8.2.2.3).
POLICY = UasPolicy(
    allow=tuple(ALLOW.split(", ")),
    supported=("timer",),
)


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    advertised: str  # host:port written in Via, Contact and From
    # host:port of the TCP and TLS listeners, for the Contact on legs over them
    stream_advertised: tuple[tuple[Transport, str], ...] = ()
    instance: str = "warpd"
    gateway_timeout: float = 4.0  # no answer at all from a gateway: try the next
    ring_timeout: float = 120.0  # ringing without an answer: 480 to the PBX
    max_duration: float = 4 * 3600.0
    channel_status: int = 503
    register_min_expires: int = 60
    register_max_expires: int = 3600
    min_session_expires: int = 90
    carrier_session_expires: int = 1800  # asked of carriers (RFC 4028); 0: not asked
    info_dtmf: bool = True  # SIP INFO digits injected as RFC 4733 by RTPEngine
    overload_lag: float = 0.25  # loop lateness (s) past which new INVITEs get 503; 0: never


class B2bua:
    def __init__(
        self,
        *,
        settings: VoiceSettings,
        endpoint: Endpoint,
        media: RtpEnginePool,
        cdrs: CdrWriter,
        directory: Directory,
        metrics: VoiceMetrics,
        flush: Callable[[], None] = lambda: None,
        auth: TrunkAuth | None = None,
        registrar: Registrar | None = None,
        balances: Balances | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.media = media
        self.cdrs = cdrs
        self.admission = Admission(
            directory, settings.channel_status, settings.min_session_expires, balances
        )
        self.metrics = metrics
        self.flush = flush
        self.auth = auth
        self.registrar = registrar
        self.dialogs: DialogTable[Owner] = DialogTable()
        self.contact = contact_for(settings.advertised)
        self._contacts = {
            t: contact_for(host_port, t) for t, host_port in settings.stream_advertised
        }
        self.calls: set[Call] = set()
        self._invites: dict[TransactionKey, Call] = {}  # A-leg server INVITEs (CANCEL)
        self._clients: dict[TransactionKey, Call] = {}  # B-leg client transactions
        self._probes: dict[TransactionKey, int] = {}  # OPTIONS to gateways
        self._tasks: set[asyncio.Task[None]] = set()
        self.draining = False
        self.load = LagEstimate(settings.overload_lag)

    @property
    def directory(self) -> Directory:
        return self.admission.directory

    def trunk_name(self, trunk_id: int | None) -> str:
        trunk = None if trunk_id is None else self.directory.trunk(trunk_id)
        return UNKNOWN if trunk is None else trunk.name

    def gateway_name(self, gateway_id: int | None) -> str:
        gateway = None if gateway_id is None else self.directory.gateways.get(gateway_id)
        return UNKNOWN if gateway is None else gateway.name

    def new_id(self) -> str:
        return os.urandom(8).hex()

    def set_directory(self, directory: Directory) -> None:
        self.admission.set_directory(directory)

    # -- events from the transport ---------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, ResponseReceived):
            self._response(event)
        elif isinstance(event, TransactionTimeout):
            self._timeout(event)
        elif isinstance(event, CancelReceived):
            call = self._invites.get(event.key)
            if call is not None:
                self._post(call, Side.A, event)
        elif isinstance(event, TransactionTerminated):
            self._invites.pop(event.key, None)
            self._clients.pop(event.key, None)
            self._probes.pop(event.key, None)
        elif isinstance(event, MalformedMessage):
            self.metrics.malformed.labels(str(event.answered).lower()).inc()

    def on_ack_timeout(self, event: DialogAckTimeout[Owner]) -> None:
        call, side = event.owner
        self._post(call, side, event)

    def _post(self, call: Call, side: Side, event: object) -> None:
        if call in self.calls:
            call.post(side, event)  # type: ignore[arg-type]
        else:
            call.after_end(side, event)  # type: ignore[arg-type]

    def _request(self, event: RequestReceived) -> None:
        request, key = event.request, event.key
        if key is None:  # an ACK for a 2xx (the only request without a transaction)
            self.dialogs.receive_ack(request)
            return
        refusal = check_request(request, POLICY, forwarding=request.method == "INVITE")
        if refusal is not None:
            self.respond(key, request, refusal.status, reason=refusal.reason,
                         headers=refusal.headers)  # fmt: skip
            return
        if request.to.tag is not None:
            entry = self.dialogs.match_request(request)
            if entry is None:
                self.respond(key, request, 481)
            else:
                call, side = entry.owner
                self._post(call, side, event)
            return
        method = request.method
        if method == "INVITE":
            self._admit(request, key)
        elif method == "REGISTER":
            self._register(request, key)
        elif method == "OPTIONS":
            self.respond(key, request, 200, headers=(("Allow", ALLOW),))
        else:  # BYE, INFO, UPDATE outside any dialog
            self.respond(key, request, 481)

    def _response(self, event: ResponseReceived) -> None:
        if event.key is not None:
            gateway = self._probes.pop(event.key, None)
            if gateway is not None:
                self.admission.down.discard(gateway)  # any answer means alive
                return
            call = self._clients.get(event.key)
        else:
            entry = self.dialogs.match_response(event.response)
            call = None if entry is None else entry.owner[0]
        if call is not None:
            self._post(call, Side.B, event)

    def _timeout(self, event: TransactionTimeout) -> None:
        gateway = self._probes.pop(event.key, None)
        if gateway is not None:
            if gateway not in self.admission.down:
                log.warning("gateway_down", gateway_id=gateway)
            self.admission.down.add(gateway)
            return
        call = self._clients.get(event.key)
        if call is not None:
            self._post(call, Side.B, event)

    # -- admission -------------------------------------------------------------------

    def _admit(self, invite: SipRequest, key: TransactionKey) -> None:
        addr = self.source_of(key)
        directory = self.directory
        # A carrier's address and port make the call inbound; a trunk's address
        # (or digest credentials) outbound. Both may share an IP (one host, NAT).
        carrier = directory.gateway_for_source(addr[0], addr[1])
        trunk = None if carrier is not None else directory.trunk_for_source(addr[0])
        if carrier is None and trunk is None:
            trunk = self._authenticated(invite, key)
            if trunk is None:
                return
        self.metrics.attempts.labels(UNKNOWN if trunk is None else trunk.name).inc()
        cdr = Cdr(
            uuid.uuid4(), "outbound", invite.call_id, user_of(invite.from_.uri),
            user_of(invite.uri), dt.datetime.now(dt.UTC),
            account_id=None if trunk is None else trunk.account_id,
            trunk_id=None if trunk is None else trunk.id,
        )  # fmt: skip
        now = asyncio.get_running_loop().time()
        plan: CallPlan | Refused
        if self.draining:
            plan = Refused(503)
        elif self.load.overloaded:
            self.metrics.shed.inc()
            plan = Refused(503, (("Retry-After", str(RETRY_AFTER)),))
        elif trunk is not None:
            plan = self.admission.outbound(invite, trunk, cdr, now)
        else:
            assert carrier is not None
            plan = self.admission.inbound(invite, carrier, cdr, now, self._targets)
        if isinstance(plan, Refused):
            self._refuse(key, invite, cdr, plan.status, plan.headers)
            return
        call = Call(self, invite=invite, key=key, cdr=cdr, plan=plan, a_tag=self.new_id())
        self.calls.add(call)
        self._invites[key] = call
        assert cdr.trunk_id is not None
        self.admission.taken(cdr.trunk_id)
        self.metrics.active.inc()
        self.spawn(call.run())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _targets(self, trunk: Trunk) -> list[Addr]:
        now = dt.datetime.now(dt.UTC)
        bindings = [] if self.registrar is None else self.registrar.bindings(trunk.id, now)
        return [b.target() for b in bindings] or static_targets(trunk)

    def _authenticated(self, request: SipRequest, key: TransactionKey) -> Trunk | None:
        """A digest trunk whose credentials the request carries (or the refusal sent)."""
        result: Trunk | AuthRefusal = AuthRefusal(403, reason="Unknown Trunk")
        if self.auth is not None and self.directory.has_digest_trunks:
            now = asyncio.get_running_loop().time()
            result = self.auth.authenticate(
                request, self.directory, time.time(), source=self.source_of(key)[0], clock=now
            )
        if isinstance(result, AuthRefusal):
            self.respond(key, request, result.status, reason=result.reason,
                         headers=result.headers)  # fmt: skip
            if result.status not in (401, 407):
                self.metrics.refused(UNKNOWN, result.status)
            return None
        return result

    # -- REGISTER (RFC 3261 10.3) ------------------------------------------------------

    def _register(self, request: SipRequest, key: TransactionKey) -> None:
        addr = self.source_of(key)
        trunk = self.directory.trunk_for_source(addr[0]) or self._authenticated(request, key)
        if trunk is None:
            return
        if self.registrar is None:
            self.respond(key, request, 501)
            return
        settings = self.settings
        plan = plan_register(
            request, trunk.id, addr, dt.datetime.now(dt.UTC),
            min_expires=settings.register_min_expires, max_expires=settings.register_max_expires,
        )  # fmt: skip
        if plan.status != 200:
            extra = (("Min-Expires", str(plan.min_expires)),) if plan.min_expires else ()
            self.respond(key, request, plan.status, headers=extra)
            return
        self.spawn(self._store_binding(request, key, trunk, plan))

    async def _store_binding(
        self, request: SipRequest, key: TransactionKey, trunk: Trunk, plan: RegisterPlan
    ) -> None:
        """Answer 200 only once the binding is durable (it must survive a restart)."""
        assert self.registrar is not None
        try:
            await self.registrar.apply(trunk.id, plan, request.header("User-Agent"))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("register_store_failed", error=str(exc))
            self.respond(key, request, 500)
            return
        now = dt.datetime.now(dt.UTC)
        contacts = tuple(
            ("Contact", f"<{b.contact}>;expires={int((b.expires_at - now).total_seconds())}")
            for b in self.registrar.bindings(trunk.id, now)
        )
        self.respond(key, request, 200, headers=contacts)

    # -- OPTIONS probing of gateways ---------------------------------------------------

    def probe_gateways(self) -> None:
        """One OPTIONS per probed gateway; no answer within Timer F marks it down."""
        now = asyncio.get_running_loop().time()
        me = f"<sip:warpd@{self.settings.advertised}>;tag={self.new_id()}"
        for gateway in self.directory.gateways.values():
            if not gateway.probe:
                continue
            target = f"sip:{gateway.host}:{gateway.port}"
            options = SipRequest.build(
                "OPTIONS", target,
                [("Max-Forwards", "70"), ("From", me), ("To", f"<{target}>"),
                 ("Call-ID", self.new_id()), ("CSeq", "1 OPTIONS")],
            )  # fmt: skip
            self._probes[self.endpoint.send_request(options, gateway.addr, now)] = gateway.id
        self.flush()

    def _refuse(
        self,
        key: TransactionKey,
        invite: SipRequest,
        cdr: Cdr,
        status: int,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self.respond(key, invite, status, headers=headers)
        self.metrics.refused(self.trunk_name(cdr.trunk_id), status)
        cdr.sip_code, cdr.hangup_by = status, "system"
        close_cdr(cdr, cdr.start_at, None, cancelled=False)
        self.cdrs.put(cdr)

    # -- what calls use --------------------------------------------------------------

    def contact_on(self, addr: Addr) -> str:
        """warpd's Contact on a leg to or from ``addr``: by that leg's transport."""
        return self._contacts.get(transport_of(addr), self.contact)

    def source_of(self, key: TransactionKey) -> Addr:
        txn = self.endpoint.transaction(key)
        assert txn is not None, "admission runs while the INVITE transaction is alive"
        return txn.addr

    def send_request(self, call: Call | None, request: SipRequest, addr: Addr) -> TransactionKey:
        now = asyncio.get_running_loop().time()
        key = self.endpoint.send_request(request, addr, now)
        if call is not None:
            self._clients[key] = call
        self.flush()
        return key

    def sent_request(self, key: TransactionKey) -> SipRequest | None:
        txn = self.endpoint.transaction(key)
        return None if txn is None else txn.request

    def cancel(self, key: TransactionKey) -> None:
        self.endpoint.cancel(key, asyncio.get_running_loop().time())
        self.flush()

    def respond_a(self, call: Call, response: SipResponse) -> None:
        key = call.a.invite_key
        assert key is not None
        self.endpoint.respond(key, response, asyncio.get_running_loop().time())
        self.flush()

    def respond(
        self,
        key: TransactionKey,
        request: SipRequest,
        status: int,
        tag: str | None = None,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        try:
            response = make_response(
                request, status, reason, to_tag=tag or self.new_id(), headers=headers
            )
        except SipError as exc:
            log.warning("sip_response_failed", status=status, error=str(exc))
            return
        self.endpoint.respond(key, response, asyncio.get_running_loop().time())
        self.flush()

    def respond_with(self, key: TransactionKey, response: SipResponse) -> None:
        self.endpoint.respond(key, response, asyncio.get_running_loop().time())
        self.flush()

    def send_ack(self, ack: SipRequest, addr: Addr) -> SipRequest:
        sent = self.endpoint.send_ack(ack, addr)
        self.flush()
        return sent

    def send_stateless(self, message: SipMessage, addr: Addr) -> None:
        self.endpoint.send_stateless(message, addr)
        self.flush()

    def add_dialog(self, dialog: Dialog, call: Call, side: Side, addr: Addr) -> None:
        self.dialogs.add(dialog, (call, side), addr)

    def start_2xx(self, dialog: Dialog, response: SipResponse) -> None:
        self.dialogs.start_2xx(dialog.id, response, asyncio.get_running_loop().time())
        self.flush()

    def finished(self, call: Call) -> None:
        self.calls.discard(call)
        for leg in (call.a, call.b):
            if leg is not None and leg.dialog is not None:
                self.dialogs.remove(leg.dialog.id)
        cdr = call.cdr
        if cdr.trunk_id is not None:
            self.admission.released(cdr.trunk_id, cdr.account_id, cdr.price_micros)
        self.metrics.call_finished(
            cdr, self.trunk_name(cdr.trunk_id), self.gateway_name(cdr.gateway_id)
        )

    def media_lost(self, instances: set[str]) -> None:
        """End the calls whose media lived on an rtpengine that stopped answering."""
        for call in list(self.calls):
            if call.cdr.answer_at is not None and call.cdr.rtpengine_node in instances:
                call.post(Side.A, MediaLost(call.cdr.rtpengine_node or ""))

    async def idle(self) -> None:
        """Return once every call (and REGISTER write) in progress has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self, timeout: float) -> None:
        """Refuse new calls and wait for the current ones to end (or hang them up)."""
        self.draining = True
        if not self._tasks:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
