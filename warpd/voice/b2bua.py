"""The B2BUA switch: admits new calls and routes every SIP event to its call.

Events come from the transport (``on_event``) already matched to transactions
by the endpoint; this module matches them to calls: server INVITE keys (for
CANCEL), client transaction keys (B leg responses and timeouts) and dialogs
(in-dialog requests; a request with a To tag that matches no dialog gets 481,
RFC 3261 12.2.2). A new INVITE is admitted synchronously from the in-memory
``Directory`` (trunk by source address, number normalisation, limits, balance,
route, rate) and then handed to its own ``Call`` task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

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
)
from warpd.voice.auth import Refusal, TrunkAuth
from warpd.voice.call import Call, CallPlan
from warpd.voice.cdr import Cdr, CdrWriter
from warpd.voice.legs import ALLOW, Side, contact_for, user_of
from warpd.voice.limits import CallLimits, TokenBucket, admit
from warpd.voice.metrics import VoiceMetrics
from warpd.voice.rating import best_rate
from warpd.voice.routes import find_route, gateways_for
from warpd.voice.trunks import Directory, Trunk, caller_id, normalise

log = structlog.get_logger(__name__)

Owner = tuple[Call, Side]
_KNOWN = frozenset(
    (
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "INFO",
        "REGISTER",
        "UPDATE",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
    )
)


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    advertised: str  # host:port written in Via, Contact and From
    instance: str = "warpd"
    gateway_timeout: float = 4.0  # no answer at all from a gateway: try the next
    ring_timeout: float = 120.0  # ringing without an answer: 480 to the PBX
    max_duration: float = 4 * 3600.0
    channel_status: int = 503


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
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.media = media
        self.cdrs = cdrs
        self.directory = directory
        self.metrics = metrics
        self.flush = flush
        self.auth = auth
        self.dialogs: DialogTable[Owner] = DialogTable()
        self.contact = contact_for(settings.advertised)
        self.calls: set[Call] = set()
        self._invites: dict[TransactionKey, Call] = {}  # A-leg server INVITEs (CANCEL)
        self._clients: dict[TransactionKey, Call] = {}  # B-leg client transactions
        self._channels: dict[int, int] = {}
        self._buckets: dict[int, TokenBucket] = {}
        self._unposted: dict[int, int] = {}  # charges not yet in the directory's balances
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = itertools.count()  # round-robin routes rotate per call
        self.draining = False

    def new_id(self) -> str:
        return os.urandom(8).hex()

    def set_directory(self, directory: Directory) -> None:
        self.directory = directory
        self._unposted.clear()

    # -- events from the transport ---------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, ResponseReceived):
            self._response(event)
        elif isinstance(event, TransactionTimeout):
            call = self._clients.get(event.key)
            if call is not None:
                self._post(call, Side.B, event)
        elif isinstance(event, CancelReceived):
            call = self._invites.get(event.key)
            if call is not None:
                self._post(call, Side.A, event)
        elif isinstance(event, TransactionTerminated):
            self._invites.pop(event.key, None)
            self._clients.pop(event.key, None)
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
        elif method == "OPTIONS":
            self.respond(key, request, 200, headers=(("Allow", ALLOW),))
        elif method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self.respond(key, request, 481)
        elif method in _KNOWN:
            self.respond(key, request, 405, headers=(("Allow", ALLOW),))
        else:
            self.respond(key, request, 501, headers=(("Allow", ALLOW),))

    def _response(self, event: ResponseReceived) -> None:
        if event.key is not None:
            call = self._clients.get(event.key)
        else:
            entry = self.dialogs.match_response(event.response)
            call = None if entry is None else entry.owner[0]
        if call is not None:
            self._post(call, Side.B, event)

    # -- admission -------------------------------------------------------------------

    def _admit(self, invite: SipRequest, key: TransactionKey) -> None:
        addr = self.source_of(key)
        self.metrics.attempts.inc()
        trunk = self._trunk_of(invite, key, addr)
        if trunk is None:
            return
        cdr = Cdr(
            uuid.uuid4(),
            "outbound",
            invite.call_id,
            user_of(invite.from_.uri),
            user_of(invite.uri),
            dt.datetime.now(dt.UTC),
            account_id=trunk.account_id,
            trunk_id=trunk.id,
        )
        status, plan, extra = self._plan(invite, trunk, cdr)
        if plan is None:
            self._refuse(key, invite, cdr, status, extra)
            return
        call = Call(self, invite=invite, key=key, cdr=cdr, plan=plan, a_tag=self.new_id())
        self.calls.add(call)
        self._invites[key] = call
        self._channels[trunk.id] = self._channels.get(trunk.id, 0) + 1
        self.metrics.active.inc()
        task = asyncio.create_task(call.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _trunk_of(self, request: SipRequest, key: TransactionKey, addr: Addr) -> Trunk | None:
        """The IP trunk of the source address, else a digest trunk (or the refusal sent)."""
        trunk = self.directory.trunk_for_source(addr[0])
        if trunk is not None:
            return trunk
        result: Trunk | Refusal = Refusal(403, reason="Unknown Trunk")
        if self.auth is not None and self.directory.has_digest_trunks:
            result = self.auth.authenticate(request, self.directory, time.time())
        if isinstance(result, Refusal):
            self.respond(key, request, result.status, reason=result.reason,
                         headers=result.headers)  # fmt: skip
            if result.status not in (401, 407):
                self.metrics.failures.labels(str(result.status)).inc()
            return None
        return result

    def _plan(
        self, invite: SipRequest, trunk: Trunk, cdr: Cdr
    ) -> tuple[int, CallPlan | None, tuple[tuple[str, str], ...]]:
        directory = self.directory
        if self.draining:
            return 503, None, ()
        if not invite.contact or not invite.body:
            return (400 if not invite.contact else 488), None, ()
        max_forwards = invite.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            return 483, None, ()
        account = directory.accounts.get(trunk.account_id)
        dst = normalise(cdr.dst_raw, trunk)
        if account is None or not account.active:
            return 403, None, ()
        cdr.currency = account.currency
        if dst is None:
            return 484, None, ()
        cdr.dst_e164 = dst
        cdr.src_e164 = normalise(cdr.src_raw, trunk)
        now = asyncio.get_running_loop().time()
        bucket = self._buckets.get(trunk.id)
        if bucket is None or bucket.rate != trunk.max_cps:
            bucket = TokenBucket.full(trunk.max_cps, max(1.0, trunk.max_cps), now)
        allowed, self._buckets[trunk.id] = bucket.take(now)
        available = (
            account.balance_micros + account.credit_limit_micros - self._unposted.get(account.id, 0)
        )
        verdict = admit(
            CallLimits(trunk.max_channels, self.settings.channel_status),
            self._channels.get(trunk.id, 0),
            allowed,
            bucket.wait_for_token(now),
            available,
        )
        if not verdict.allowed:
            retry = (("Retry-After", str(verdict.retry_after)),) if verdict.retry_after else ()
            return verdict.status, None, retry
        route = find_route(directory, account.id, dst)
        rate = best_rate(directory.rates.get(account.rate_plan_id or 0, ()), dst)
        if route is None or rate is None:
            return (404 if route is None else 403), None, ()
        cdr.route_id = route.id
        gateways = gateways_for(directory, route, dst, turn=next(self._turns))
        if not gateways:
            return 503, None, ()
        caller = caller_id(directory, trunk, cdr.src_e164)
        hops = 70 if max_forwards is None else min(70, max_forwards - 1)
        return 0, CallPlan(tuple(gateways), dst, caller, rate, hops), ()

    def _refuse(
        self,
        key: TransactionKey,
        invite: SipRequest,
        cdr: Cdr,
        status: int,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self.respond(key, invite, status, headers=headers)
        self.metrics.failures.labels(str(status)).inc()
        cdr.end_at = cdr.start_at
        cdr.sip_code = status
        cdr.disposition = "CONGESTION" if status == 503 else "FAILED"
        cdr.hangup_by = "system"
        self.cdrs.put(cdr)

    # -- what calls use --------------------------------------------------------------

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

    def abandon(self, key: TransactionKey) -> None:
        """The call moved on; the transaction's late answers still reach the call."""

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
        trunk_id = call.cdr.trunk_id
        if trunk_id is not None:
            self._channels[trunk_id] = max(0, self._channels.get(trunk_id, 0) - 1)
        for leg in (call.a, call.b):
            if leg is not None and leg.dialog is not None:
                self.dialogs.remove(leg.dialog.id)
        account = call.cdr.account_id
        if account is not None and call.cdr.price_micros:
            self._unposted[account] = self._unposted.get(account, 0) + call.cdr.price_micros
        self.metrics.call_finished(call.cdr)

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
