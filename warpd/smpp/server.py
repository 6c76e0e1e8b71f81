"""The customer SMPP listener: enterprise ESMEs bind here (TX, RX, TRX; plain TCP or TLS).

A bind is decided only after its password is checked (scrypt, in a thread,
so the loop never stalls) against ``smpp_users``; an unknown system_id and a
wrong password get the same ESME_RINVPASWD after the same work. The IP
allow-list, the bind types, the bind limit, TLS-only users and the
account's state are checked next (ESME_RBINDFAIL). A failed bind is answered,
then closed.

Submits go through the acceptance path and are answered when committed; a
bind with ``smpp.window`` submits awaiting commit stops being read (TCP
back-pressure), and the user's token bucket answers ESME_RTHROTTLED. RX and
TRX binds take receipts and MO from the delivery router.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import structlog

from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.pdu import (
    BindRequest,
    CancelSm,
    DataSm,
    DataSmResp,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnsuccessSme,
    bind_response,
    make_response,
)
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import (
    BindRequested,
    Bound,
    Closed,
    Event,
    PduReceived,
    PduRejected,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
)
from protocols.smpp.session_state import BindState, Role
from warpd import tls
from warpd.auth.lockout import Lockout
from warpd.auth.passwords import hash_password, verify_password
from warpd.cluster.policy import throughput_share
from warpd.config import parse_listen
from warpd.config.schema import SmppConfig
from warpd.smpp.customer_pdus import deliver_sm_for, submission_from
from warpd.smpp.ops import QueryOps
from warpd.smpp.throttle import TokenBucket
from warpd.smpp.transport import SessionProtocol
from warpd.sms.catalog import SmppUser
from warpd.sms.journal import NewDelivery
from warpd.sms.model import Accepted, Refused

log = structlog.get_logger(__name__)

_BIND_TYPES = {
    CommandId.BIND_TRANSMITTER: "transmitter",
    CommandId.BIND_RECEIVER: "receiver",
    CommandId.BIND_TRANSCEIVER: "transceiver",
}
_RECEIVES = frozenset({BindState.BOUND_RX, BindState.BOUND_TRX})
# An answer to a failed bind waits this long: guessing passwords gets slow.
FAILED_BIND_DELAY = 0.5
# Wrong passwords within 5 minutes before binds are refused unchecked for a
# while (60 s, doubling): from one address, and for one system_id from anywhere.
IP_FAILURES, SYSTEM_ID_FAILURES = 10, 20
SYSTEM_ID = "warpd"


class CustomerBind(SessionProtocol):
    # A slice of a customer's burst is a fraction of a millisecond of acceptance.
    events_per_turn = 32

    def __init__(self, listener: CustomerListener, *, tls: bool) -> None:
        super().__init__()
        self.listener = listener
        self.tls = tls
        self.user: SmppUser | None = None
        cfg = listener.config
        self.session = SmppSession(
            Role.SMSC,
            SessionConfig(
                window=10,
                response_timeout=cfg.response_timeout,
                enquire_link_interval=cfg.enquire_link_interval,
                inactivity_timeout=cfg.inactivity_timeout or None,
                session_init_timeout=cfg.session_init_timeout,
            ),
            now=self.now(),
        )
        self._deliveries: dict[int, NewDelivery] = {}
        # Why reading is paused: a bind being decided, a full window of owed
        # responses, events left for the next loop turn. Reading resumes when
        # none is left.
        self._pauses: set[str] = set()
        self._receiving = False
        self._closed = asyncio.get_running_loop().create_future()

    # -- lifecycle -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.listener.sessions.add(self)
        self.flush()  # arms session_init_timer

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.listener.sessions.discard(self)
        if not self._closed.done():
            self._closed.set_result(None)

    async def unbind(self, timeout: float) -> None:
        """Graceful: unbind, wait for unbind_resp, close (SIGTERM)."""
        if self.transport is None:
            return
        if self.session.may_send(CommandId.UNBIND):
            self.session.send(Unbind(), self.now())
            self.flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._closed)
        if self.transport is not None:
            self.transport.close()

    # -- events ----------------------------------------------------------------

    def handle_event(self, event: Event) -> None:
        if isinstance(event, PduReceived):
            self._request(event.pdu)
        elif isinstance(event, ResponseReceived):
            delivery = self._deliveries.pop(event.request.sequence_number, None)
            if delivery is not None:
                status = event.response.command_status
                if status == 0:
                    self.listener.router.done(delivery)
                else:
                    self.listener.router.failed(delivery, f"deliver_sm_resp 0x{status:08x}")
        elif isinstance(event, ResponseTimeout):
            delivery = self._deliveries.pop(event.request.sequence_number, None)
            if delivery is not None:
                self.listener.router.failed(delivery, "no deliver_sm_resp")
        elif isinstance(event, BindRequested):
            assert isinstance(event.pdu, BindRequest)
            self.listener.spawn(self._bind(event.pdu))
        elif isinstance(event, Bound):
            self._bound(event)
        elif isinstance(event, Closed):
            self._gone()
        elif isinstance(event, PduRejected):
            self.listener.rejected += 1
            log.debug("smpp_pdu_rejected", peer=self.peer, error=str(event.error))

    async def _bind(self, pdu: BindRequest) -> None:
        if not self._connected():
            return
        self._pause("bind")
        status, user = await self.listener.authenticate(pdu, self.peer, tls=self.tls)
        if status:
            await asyncio.sleep(FAILED_BIND_DELAY)
        if not self._connected():
            if status == 0 and user is not None:
                self.listener.binds_changed(user.id)  # reserved, never opened
            return
        if status == 0 and user is not None:
            self.user = user
            self.listener.bind_counts[user.id] += 1
            self.listener.binds_changed(user.id)
            self.session.config = SessionConfig(
                window=user.window_size,
                response_timeout=self.session.config.response_timeout,
                enquire_link_interval=self.session.config.enquire_link_interval,
                inactivity_timeout=self.session.config.inactivity_timeout,
                session_init_timeout=self.session.config.session_init_timeout,
            )
        else:
            log.info(
                "smpp_bind_refused",
                peer=self.peer,
                system_id=pdu.system_id,
                status=f"0x{status:08x}",
            )
            self.listener.bind_failures += 1
        self.session.send(bind_response(pdu, status, SYSTEM_ID), self.now())
        self.process()
        self._resume("bind")

    def _connected(self) -> bool:
        return self.transport is not None

    def _pause(self, why: str) -> None:
        if not self._pauses and self.transport is not None:
            self.transport.pause_reading()
        self._pauses.add(why)

    def _resume(self, why: str) -> None:
        if why not in self._pauses:
            return
        self._pauses.discard(why)
        if not self._pauses and self.transport is not None:
            self.transport.resume_reading()

    def reading_paused(self, paused: bool) -> None:
        if paused:
            self._pause("turn")
        else:
            self._resume("turn")

    def _bound(self, event: Bound) -> None:
        user = self.user
        assert user is not None
        log.info(
            "smpp_bound",
            peer=self.peer,
            system_id=user.system_id,
            state=event.state.name,
            tls=self.tls,
        )
        if event.state in _RECEIVES:
            self._receiving = True
            self.listener.router.attach(user.id, self)
            self.listener.binds_changed(user.id)

    def _gone(self) -> None:
        user = self.user
        if user is None:
            return
        self.user = None
        self.listener.bind_counts[user.id] -= 1
        if self._receiving:
            self._receiving = False
            self.listener.router.detach(user.id, self, list(self._deliveries.values()))
            self._deliveries.clear()
        self.listener.binds_changed(user.id)

    # -- requests --------------------------------------------------------------

    def _request(self, pdu: Pdu) -> None:
        user = self.user
        assert user is not None  # the session surfaces requests only when bound
        if isinstance(pdu, SubmitSm | DataSm):
            self._submit(pdu, user)
        elif isinstance(pdu, SubmitMulti):
            self.listener.spawn(self._submit_multi(pdu, user))
        elif isinstance(pdu, QuerySm | CancelSm | ReplaceSm):
            self.listener.spawn(self._ancillary(pdu, user))
        else:
            self._answer(make_response(pdu, CommandStatus.ESME_RINVCMDID))

    def _submit(self, pdu: SubmitSm | DataSm, user: SmppUser) -> None:
        if not self.listener.bucket(user).take(self.now()):
            self.listener.throttled += 1
            self._answer(make_response(pdu, CommandStatus.ESME_RTHROTTLED))
            return
        try:
            sub = submission_from(pdu, user, self.listener.now_utc())
            future = self.listener.acceptance.submit_nowait(sub)
        except Refused as refusal:
            self._answer(make_response(pdu, refusal.command_status))
            return
        future.add_done_callback(lambda f: self._accepted(pdu, f))
        if self.session.owed >= self.listener.config.window:
            self._pause("window")

    def _accepted(self, pdu: SubmitSm | DataSm, future: asyncio.Future[Accepted]) -> None:
        if self.session.closed:
            return
        error = future.exception()
        if isinstance(error, Refused):
            response = make_response(pdu, error.command_status)
        elif error is not None:
            response = make_response(pdu, CommandStatus.ESME_RSYSERR)
        else:
            cls = SubmitSmResp if isinstance(pdu, SubmitSm) else DataSmResp
            response = cls(
                sequence_number=pdu.sequence_number, message_id=str(future.result().message_id)
            )
        self._answer(response)
        if "window" in self._pauses and self.session.owed < self.listener.config.window // 2 + 1:
            self._resume("window")

    async def _submit_multi(self, pdu: SubmitMulti, user: SmppUser) -> None:
        accepted: list[str] = []
        unsuccess: list[UnsuccessSme] = []
        for dest in pdu.dest_address:
            ton = getattr(dest, "dest_addr_ton", 0)
            npi = getattr(dest, "dest_addr_npi", 0)
            address = getattr(dest, "destination_addr", "")
            status: int = CommandStatus.ESME_RINVDSTADR
            if address and self.listener.bucket(user).take(self.now()):
                try:
                    sub = submission_from(
                        pdu, user, self.listener.now_utc(), dest=(address, ton, npi)
                    )
                    result = await self.listener.acceptance.submit(sub)
                    accepted.append(str(result.message_id))
                    continue
                except Refused as refusal:
                    status = refusal.command_status
            elif address:
                status = CommandStatus.ESME_RTHROTTLED
            unsuccess.append(UnsuccessSme(ton, npi, address, status))
        # submit_multi_resp has one message_id: the first accepted destination's.
        self._answer(
            SubmitMultiResp(
                sequence_number=pdu.sequence_number,
                command_status=0 if accepted else CommandStatus.ESME_RSUBMITFAIL,
                message_id=accepted[0] if accepted else "",
                unsuccess_sme=tuple(unsuccess),
            )
        )

    async def _ancillary(self, pdu: QuerySm | CancelSm | ReplaceSm, user: SmppUser) -> None:
        response = await self.listener.ops.answer(pdu, user)
        self._answer(response)

    def _answer(self, response: Pdu) -> None:
        if self.session.closed:
            return
        self.session.send(response, self.now())
        self.flush_soon()

    # -- deliveries ------------------------------------------------------------

    def pump(self) -> None:
        user = self.user
        session = self.session
        # Unbinding (SIGTERM, or the customer's unbind) still counts as receiving until the
        # connection closes, but the bind may no longer carry deliver_sm: what is queued
        # waits in the router for another bind, or in the table for the next run.
        if user is None or not self._receiving or not session.may_send(CommandId.DELIVER_SM):
            return
        router = self.listener.router
        sent = False
        while session.window_free > 0:
            delivery = router.take(user.id)
            if delivery is None:
                break
            pdu = deliver_sm_for(delivery.payload)
            numbered = session.send(pdu, self.now())
            self._deliveries[numbered.sequence_number] = delivery
            sent = True
        if sent:
            self.flush_soon()

    def after_events(self) -> None:
        if self._receiving:
            self.pump()


class CustomerListener:
    def __init__(self, core: Any, config: SmppConfig) -> None:
        self.core = core
        self.config = config
        self.acceptance = core.acceptance
        self.router = core.router
        self.membership = core.membership
        self.ops = QueryOps(core)
        self.sessions: set[CustomerBind] = set()
        self.bind_counts: defaultdict[int, int] = defaultdict(int)
        self._buckets: dict[int, TokenBucket] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dummy_hash = hash_password("not a password of anyone")
        self._tls: ssl.SSLContext | None = None
        self.addresses: list[tuple[str, int]] = []
        self.bind_failures = 0
        self.locked_out = 0
        # Password guessing: per source address, and per system_id (from anywhere).
        self.ip_lockout = Lockout(limit=IP_FAILURES)
        self.user_lockout = Lockout(limit=SYSTEM_ID_FAILURES)
        self.throttled = 0
        self.rejected = 0
        self.now_utc: Callable[[], Any] = core.now_utc

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listeners: list[tuple[str, ssl.SSLContext | None]] = []
        if self.config.listen:
            listeners.append((self.config.listen, None))
        if self.config.tls_listen:
            self._tls = self.tls_context()
            listeners.append((self.config.tls_listen, self._tls))
        for text, context in listeners:
            host, port = parse_listen(text)
            server = await loop.create_server(
                lambda c=context: CustomerBind(self, tls=c is not None),
                host,
                port,
                ssl=context,
                reuse_address=True,
                backlog=1024,
            )
            self._servers.append(server)
            for sock in server.sockets:
                self.addresses.append(sock.getsockname()[:2])
        log.info("smpp_listening", addresses=[f"{h}:{p}" for h, p in self.addresses])

    def tls_context(self) -> ssl.SSLContext:
        return tls.server_context(self.config.tls_cert, self.config.tls_key)

    def reload_tls(self, config: SmppConfig) -> None:
        """SIGHUP: new connections get the new certificate; bound ones keep theirs."""
        if self._tls is None or not config.tls_cert:
            return
        tls.reload_pair(self._tls, config.tls_cert, config.tls_key, name="smpp")

    def stop_accepting(self) -> None:
        for server in self._servers:
            server.close()

    async def stop(self, timeout: float) -> None:
        self.stop_accepting()
        await asyncio.gather(*(s.unbind(timeout) for s in list(self.sessions)))
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def bucket(self, user: SmppUser) -> TokenBucket:
        """The user's token bucket here: its share of the user's throughput, by binds."""
        share = throughput_share(self.bind_counts[user.id], self.membership.remote_binds(user.id))
        rate, burst = user.throughput_tps * share, max(1.0, user.burst * share)
        bucket = self._buckets.get(user.id)
        if bucket is None:
            bucket = TokenBucket(rate, burst)
            self._buckets[user.id] = bucket
        else:  # in place: a change of share keeps the tokens already earned
            bucket.rate, bucket.burst = rate, burst
        return bucket

    def binds_changed(self, smpp_user_id: int) -> None:
        """Tell the cluster how many binds (and receivers) this user has here now."""
        self.membership.customer_binds(
            smpp_user_id, self.bind_counts[smpp_user_id], self.router.receivers(smpp_user_id)
        )

    async def authenticate(
        self, pdu: BindRequest, peer: str, *, tls: bool
    ) -> tuple[int, SmppUser | None]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        system_key = f"system_id:{pdu.system_id}"
        if self.ip_lockout.locked(peer, now) or self.user_lockout.locked(system_key, now):
            self.locked_out += 1
            return CommandStatus.ESME_RBINDFAIL, None
        user = self.core.catalog.smpp_users.get(pdu.system_id)
        stored = user.password_hash if user is not None else self._dummy_hash
        ok = await loop.run_in_executor(None, verify_password, pdu.password, stored)
        if user is None or not ok:
            now = loop.time()
            for lockout, key in ((self.ip_lockout, peer), (self.user_lockout, system_key)):
                if lockout.failed(key, now):
                    log.warning("smpp_bind_locked_out", key=key, peer=peer)
            return CommandStatus.ESME_RINVPASWD, None
        self.ip_lockout.succeeded(peer)
        account = self.core.catalog.accounts.get(user.account_id)
        bind_type = _BIND_TYPES[CommandId(pdu.command_id)]
        if (
            not user.enabled
            or account is None
            or account.status != "active"
            or not user.allows(peer)
            or bind_type not in user.bind_types
            or (user.tls_required and not tls)
            or self.bind_counts[user.id] >= user.max_binds
        ):
            return CommandStatus.ESME_RBINDFAIL, None
        # max_binds counts the user's binds on every instance.
        if not await self.membership.reserve_customer_bind(
            user.id, user.max_binds, self.bind_counts[user.id]
        ):
            return CommandStatus.ESME_RBINDFAIL, None
        return CommandStatus.ESME_ROK, user
